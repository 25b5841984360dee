-- ---------------------------------------------------------------------------
-- pg_dump: the extension's tables hold the users' data (runs, templates,
-- rules, models...), and pg_dump leaves out the rows of an extension's tables
-- unless they are marked.  Every table of the schema is listed here; the
-- test test/backup/run.sh restores a dump and compares every row, and
-- test/sql/role_matrix.sql fails when a table is missing from this list.
-- Sequences are marked too, so restored ids continue.  (One statement per
-- table: each call updates pg_extension.)
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('smartetl.pipeline', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.run', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.log_event', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.ingest_reject', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_text', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_seen', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.sync_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_daily', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_monthly', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.failure_streak', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.run_anomaly_score', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.anomaly_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.channel', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.silence', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_group', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.delivery', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_changed', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_backlog', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule_due', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_group_due', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_eval_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_io', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_edge', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.maintenance_window', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.escalation_policy', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.model', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.prediction', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.api_key', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.source', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.source_file', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.ack_link_use', '');
-- marked so that no row of it is ever dumped: a restored database keeps the
-- secret its CREATE EXTENSION made (links issued before the dump stop working)
SELECT pg_catalog.pg_extension_config_dump('smartetl.ack_link_secret', 'WHERE false');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_revision', '');

-- API: Public
-- After restoring a dump: identity sequences are not extension members, so
-- pg_dump does not carry their positions; move each past its column's
-- highest value so new rows get new ids.  Admin only.
CREATE FUNCTION smartetl.after_restore() RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    top bigint;
BEGIN
    FOR c IN
        SELECT a.attrelid::regclass AS tbl, a.attname,
               pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) AS seq
        FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
        WHERE r.relnamespace = 'smartetl'::regnamespace AND r.relkind IN ('r', 'p')
          AND NOT r.relispartition AND a.attidentity <> '' AND NOT a.attisdropped
        ORDER BY 1, 2
    LOOP
        EXECUTE format('SELECT max(%I) FROM %s', c.attname, c.tbl) INTO top;
        IF top IS NOT NULL THEN
            PERFORM setval(c.seq, top);
            RETURN NEXT format('%s.%s: next id %s', c.tbl, c.attname, top + 1);
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION smartetl.after_restore() IS 'after restoring a pg_dump of the database: move each identity sequence past its column''s highest value (README, Backups)';
