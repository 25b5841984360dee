-- smartetl upgrade script 0.1.0 -> 0.2.0, run by ALTER EXTENSION smartetl UPDATE.
--
-- EVERY SCHEMA CHANGE MADE SINCE 0.1.0 GOES HERE, IN ORDER, APPENDED AT THE END.
-- Whoever changes src/sql/*.sql (the pieces of the fresh install script
-- smartetl--0.2.0.sql) appends, in the same commit, the statements that take
-- a 0.1.0 database with its data to the same state:
--   new table / view / function / type / index    -> the same CREATE statement
--   changed function body or signature             -> CREATE OR REPLACE FUNCTION
--                                                     (DROP FUNCTION first if the
--                                                     signature or result type changed)
--   changed view                                   -> CREATE OR REPLACE VIEW (or DROP + CREATE)
--   new column                                     -> ALTER TABLE ... ADD COLUMN (put the
--                                                     column LAST in the CREATE TABLE of the
--                                                     piece too, so both give the same order)
--   changed constraint / default / comment / grant -> ALTER TABLE / COMMENT ON / GRANT ...
--   new rows in a settings table                   -> INSERT ... ON CONFLICT DO NOTHING
--   new C function                                 -> CREATE FUNCTION ... AS 'MODULE_PATHNAME', 'symbol'
-- Keep every C symbol that 0.1.0's SQL names in the library (a stub that
-- raises an error is enough): a database still at 0.1.0 runs the new library
-- between the package upgrade and ALTER EXTENSION UPDATE.
-- Existing rows must survive: no DROP TABLE / TRUNCATE of user data; migrate it.
-- The whole script runs in one transaction; no CREATE INDEX CONCURRENTLY.
--
-- Check: bash test/upgrade/run.sh (also a stage of scripts/test.sh) installs
-- 0.1.0 from git tag v0.1.0 with data, runs ALTER EXTENSION smartetl UPDATE,
-- and requires the schema to equal a fresh 0.2.0 install and every row,
-- model and alert to survive.  See src/sql/upgrade/README.md.

\echo Use "ALTER EXTENSION smartetl UPDATE TO '0.2.0'" to load this file. \quit


-- ---- templates: an append-only store that learning never blocks on (security issue)
ALTER TABLE smartetl.template RENAME TO template_v010;
ALTER INDEX smartetl.template_pkey RENAME TO template_v010_pkey;
-- a new sequence rather than REVOKE, so its ACL is the fresh install's (none)
ALTER SEQUENCE smartetl.template_revision RENAME TO template_revision_v010;
CREATE SEQUENCE smartetl.template_id_seq;
CREATE SEQUENCE smartetl.template_revision;
SELECT setval('smartetl.template_revision', last_value, is_called) FROM smartetl.template_revision_v010;
DROP SEQUENCE smartetl.template_revision_v010;
CREATE TABLE smartetl.template_text (
    template_id  bigint NOT NULL CHECK (template_id > 0),
    revision     bigint NOT NULL DEFAULT nextval('smartetl.template_revision'),
    template     text NOT NULL,
    PRIMARY KEY (template_id, revision)
);
COMMENT ON TABLE smartetl.template_text IS 'each template''s texts, one row per revision (append-only; read smartetl.template)';
-- API: Private
CREATE TABLE smartetl.template_seen (
    template_id  bigint NOT NULL,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    occurrences  bigint NOT NULL
);
CREATE INDEX template_seen_id ON smartetl.template_seen (template_id);
COMMENT ON TABLE smartetl.template_seen IS 'occurrence deltas per template (append-only; read smartetl.template)';

-- API: Public
-- Ids never change once given; a template's text may still generalise.
CREATE VIEW smartetl.template AS
SELECT t.template_id, t.template, t.revision, s.first_seen, s.last_seen,
       coalesce(s.occurrences, 0)::bigint AS occurrences
FROM (SELECT DISTINCT ON (template_id) template_id, template, revision
      FROM smartetl.template_text ORDER BY template_id, revision DESC) t
LEFT JOIN (SELECT template_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                  sum(occurrences) AS occurrences
           FROM smartetl.template_seen GROUP BY template_id) s USING (template_id);
COMMENT ON VIEW smartetl.template IS 'mined log/error message templates (variables as <*>); ids never change once given';

-- API: Public
-- Fold the occurrence deltas into one row per template.  SECURITY DEFINER:
-- no role may write the template tables directly; this rewrites only the
-- counts, as their owner.  Skips when another session is compacting; never
-- waits for ingesting sessions (they only insert).
CREATE FUNCTION smartetl.template_compact() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1397572949, 2) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM smartetl.template_seen s
        WHERE s.template_id IN (SELECT template_id FROM smartetl.template_seen
                                GROUP BY template_id HAVING count(*) > 1)
        RETURNING s.*
    ), folded AS (
        INSERT INTO smartetl.template_seen (template_id, first_seen, last_seen, occurrences)
        SELECT template_id, min(first_seen), max(last_seen), sum(occurrences)
        FROM gone GROUP BY template_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded) INTO folded;
    RETURN folded;
END $$;
COMMENT ON FUNCTION smartetl.template_compact() IS 'fold template occurrence deltas; returns the number of rows removed (the alert worker calls it)';

-- A DELETE or TRUNCATE of templates (by their owner) makes every backend
-- rebuild its miner.
-- API: Private
CREATE FUNCTION smartetl._template_touched() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'smartetl_template_touched';
CREATE TRIGGER template_text_changed AFTER DELETE OR UPDATE OR TRUNCATE ON smartetl.template_text
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._template_touched();

INSERT INTO smartetl.template_text (template_id, revision, template)
SELECT template_id, revision, template FROM smartetl.template_v010;
INSERT INTO smartetl.template_seen (template_id, first_seen, last_seen, occurrences)
SELECT template_id, first_seen, last_seen, occurrences FROM smartetl.template_v010;
SELECT setval('smartetl.template_id_seq', max(template_id)) FROM smartetl.template_v010 HAVING count(*) > 0;
CREATE OR REPLACE FUNCTION smartetl._run_check_references() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    SELECT 'pipeline_id' AS col, n.pipeline_id AS val INTO bad FROM new_runs n
    WHERE NOT EXISTS (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = n.pipeline_id)
    UNION ALL
    SELECT 'parent_run_id', n.parent_run_id FROM new_runs n
    WHERE n.parent_run_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM smartetl.run r WHERE r.run_id = n.parent_run_id)
    UNION ALL
    SELECT 'template_id', n.template_id FROM new_runs n
    WHERE n.template_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM smartetl.template_text t WHERE t.template_id = n.template_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'run.% = % references no existing row', bad.col, bad.val
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Load runs with smartetl.ingest(), which creates their pipelines.';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE VIEW smartetl.current_failures AS
SELECT p.pipeline_id, p.namespace, p.name AS pipeline, last.run_id, last.run_at AS failed_at,
       streak.since, streak.failed_runs, last.error_message, t.template
FROM smartetl.pipeline p
CROSS JOIN LATERAL (
    SELECT r.run_id, r.run_at, r.status, r.error_message, r.template_id FROM smartetl.run r
    WHERE r.pipeline_id = p.pipeline_id AND r.status IN ('success', 'failed')
    ORDER BY r.run_at DESC LIMIT 1) last
CROSS JOIN LATERAL (
    SELECT min(r.run_at) AS since, count(*) AS failed_runs FROM smartetl.run r
    WHERE r.pipeline_id = p.pipeline_id AND r.status = 'failed'
      AND r.run_at > coalesce((SELECT max(s.run_at) FROM smartetl.run s
                               WHERE s.pipeline_id = p.pipeline_id AND s.status = 'success'), '-infinity')) streak
LEFT JOIN smartetl.template t ON t.template_id = last.template_id
WHERE last.status = 'failed';
DROP TABLE smartetl.template_v010;
ALTER FUNCTION smartetl.log_template(text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION smartetl.log_template_id(text) SECURITY INVOKER RESET search_path;
COMMENT ON FUNCTION smartetl.log_template(text) IS 'the mined template of a message (variables as <*>), learning it if new (writers); readers get the matching template, or the masked message';
COMMENT ON FUNCTION smartetl.log_template_id(text) IS 'the id in smartetl.template of a message''s template, learning it if new (writers); readers get the matching id or NULL';
REVOKE ALL ON FUNCTION smartetl.template_compact(), smartetl._template_touched() FROM PUBLIC;
GRANT SELECT ON smartetl.template, smartetl.template_text, smartetl.template_seen TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.template_compact() TO smartetl_admin;

-- ---- pg_dump keeps the rows of the extension's tables (95_dump.sql)
SELECT pg_catalog.pg_extension_config_dump('smartetl.pipeline', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.run', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.log_event', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.ingest_reject', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_text', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.template_seen', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.sync_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_daily', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.channel', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.silence', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_group', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.delivery', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.model', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.prediction', '');
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
REVOKE ALL ON FUNCTION smartetl.after_restore() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.after_restore() TO smartetl_admin;
