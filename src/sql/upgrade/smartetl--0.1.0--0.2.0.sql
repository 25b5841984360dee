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

-- ---- sql alert rules sandboxed (src/alert/rule_query.c)
-- a sql rule that ran out of smartetl.rule_timeout waits until retry_at
ALTER TABLE smartetl.alert_rule_state ADD COLUMN retry_at timestamptz;
COMMENT ON TABLE smartetl.alert_rule_state IS 'when each rule was last evaluated, its last evaluation error, and, for a sql rule that ran into smartetl.rule_timeout, when it is tried again';
COMMENT ON TABLE smartetl.alert_rule IS 'alert rules: kind, selector {"namespace", "pipeline" (glob * ?), "tags" [all of]}, threshold (consecutive failures, anomaly score, risk, drift, or the sql rule''s value), severity, channels, group_by labels (pipeline, namespace, severity), group_wait / group_interval / repeat_interval as in Alertmanager; kind sql runs query, a read-only SELECT returning pipeline text and value double precision, as smartetl_reader within smartetl.rule_timeout';

-- the text checker (plpgsql) becomes the parse-tree checker (C)
CREATE OR REPLACE FUNCTION smartetl._rule_query_check(rule_name text, q text) RETURNS void
AS 'MODULE_PATHNAME', 'smartetl_rule_query_check' LANGUAGE C VOLATILE;

CREATE FUNCTION smartetl._rule_query_rows(rule_name text, q text)
RETURNS TABLE (pipeline text, value double precision)
AS 'MODULE_PATHNAME', 'smartetl_rule_query_rows' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION smartetl._rule_query_rows(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._rule_query_rows(text, text) TO smartetl_admin;

CREATE OR REPLACE FUNCTION smartetl._rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
    bad text;
BEGIN
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('run_failed', 'consecutive_failures', 'duration_anomaly',
                                            'volume_anomaly', 'freshness', 'risk', 'model_drift', 'sql') THEN
        RAISE EXCEPTION 'unknown kind % for alert rule "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rule kinds are run_failed, consecutive_failures, duration_anomaly, volume_anomaly, freshness, risk, model_drift and sql.';
    END IF;
    SELECT string_agg(c, ', ') INTO missing
    FROM unnest(NEW.channels) c WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" names unknown channel %', NEW.name, missing
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the channel in smartetl.channel first.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(NEW.selector) k
    WHERE k NOT IN ('namespace', 'pipeline', 'tags');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" has unknown selector key %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Selector keys are namespace, pipeline (glob) and tags (array).';
    END IF;
    SELECT string_agg(g, ', ') INTO bad FROM unnest(NEW.group_by) g
    WHERE g NOT IN ('pipeline', 'namespace', 'severity');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" groups by unknown label %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'group_by labels are pipeline, namespace and severity.';
    END IF;
    IF NEW.kind = 'sql' THEN
        PERFORM smartetl._rule_query_check(NEW.name, NEW.query);
        -- a changed query is tried at once, even if the old one ran out of time
        UPDATE smartetl.alert_rule_state SET retry_at = NULL WHERE rule_name = NEW.name AND retry_at IS NOT NULL;
    ELSIF NEW.query IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" of kind % takes no query', NEW.name, NEW.kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF r.kind IN ('run_failed', 'consecutive_failures') THEN
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed', cf.pipeline),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                   cf.run_id, cf.since, cf.pipeline_id)
        FROM smartetl.current_failures cf
        WHERE r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3);
    ELSIF r.kind IN ('duration_anomaly', 'volume_anomaly') THEN
        RETURN QUERY
        SELECT a.pipeline_id, a.score,
               smartetl._run_annotations(
                   format('%s: abnormal %s', a.pipeline, a.kind),
                   format('%s of the latest run is %s, expected %s (%s .. %s), score %s', a.kind,
                          round(a.value::numeric, 1), round(a.expected::numeric, 1),
                          round(a.expected_low::numeric, 1), round(a.expected_high::numeric, 1),
                          round(a.score::numeric, 1)),
                   a.run_id, a.run_at, a.pipeline_id)
        FROM smartetl.detect_anomalies(now() - interval '48 hours', now(), coalesce(r.threshold, 4)) a
        WHERE a.kind = CASE r.kind WHEN 'duration_anomaly' THEN 'duration' ELSE 'volume' END
          AND a.run_id = (SELECT x.run_id FROM smartetl.run x WHERE x.pipeline_id = a.pipeline_id
                          AND x.status = 'success' ORDER BY x.run_at DESC LIMIT 1);
    ELSIF r.kind = 'freshness' THEN
        RETURN QUERY
        SELECT o.pipeline_id, extract(epoch FROM now() - o.last_at)::float8,
               jsonb_build_object('summary', format('%s: %s', o.pipeline,
                                                    CASE o.kind WHEN 'missing_run' THEN 'no run' ELSE 'no success' END),
                                  'description', format('nothing since %s, expected every %s',
                                                        to_char(o.last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                                        o.expected_interval),
                                  'since', o.last_at, 'overdue', o.kind,
                                  'recent_history', smartetl._recent_history(o.pipeline_id))
        FROM smartetl.overdue_pipelines(now()) o;
    ELSIF r.kind = 'risk' THEN
        RETURN QUERY
        SELECT k.pipeline_id, k.risk,
               jsonb_build_object('summary', format('%s: failure risk %s within a day', k.pipeline, round(k.risk::numeric, 2)),
                                  'description', 'main reasons: ' || (SELECT string_agg(x->>'feature', ', ') FROM jsonb_array_elements(k.reasons) x),
                                  'reasons', k.reasons, 'recent_history', smartetl._recent_history(k.pipeline_id))
        FROM smartetl.risk_ranking(interval '1 day') k
        WHERE k.risk >= coalesce(r.threshold, 0.5);
    ELSIF r.kind = 'model_drift' THEN
        RETURN QUERY
        SELECT NULL::bigint, d.max_psi,
               jsonb_build_object('subject', 'model:' || m.name,
                                  'summary', format('model %s (%s) drifted: PSI %s on %s', m.model_id, m.name,
                                                    round(d.max_psi::numeric, 2), d.worst),
                                  'description', format('live ROC-AUC %s vs %s at training',
                                                        round(q.live_roc_auc::numeric, 3), round(q.training_roc_auc::numeric, 3)))
        FROM smartetl.model m
        CROSS JOIN LATERAL (SELECT max(psi) AS max_psi, (array_agg(feature ORDER BY psi DESC NULLS LAST))[1] AS worst
                            FROM smartetl.model_drift(m.model_id)) d
        LEFT JOIN smartetl.prediction_quality q ON q.model_id = m.model_id AND q.resolved_predictions >= 50
        WHERE m.status = 'champion' AND m.kind = 'risk'
          AND (d.max_psi > coalesce(r.threshold, 0.25) OR q.live_roc_auc < q.training_roc_auc - 0.1);
    ELSIF r.kind = 'sql' THEN
        -- the query runs sandboxed (as smartetl_reader, read-only, time-limited),
        -- never pasted into this statement
        RETURN QUERY
        SELECT p.pipeline_id, q.value,
               jsonb_build_object('summary', format('%s: %s', p.name, q.value),
                                  'recent_history', smartetl._recent_history(p.pipeline_id))
        FROM smartetl._rule_query_rows(r.name, r.query) q JOIN smartetl.pipeline p ON p.name = q.pipeline
        WHERE r.threshold IS NULL OR q.value > r.threshold;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION smartetl.evaluate_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl.alert_rule;
    started timestamptz;
    detail text;
    err text;
BEGIN
    -- one evaluation at a time, whoever calls it
    PERFORM pg_advisory_xact_lock(1397572948, 1000);
    PERFORM smartetl.resolve_predictions();
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        -- costly kinds run at most every 5 minutes (anomaly scoring rebuilds
        -- 120 days of baselines; risk scores every pipeline), and a sql rule
        -- that ran out of time waits until retry_at
        IF EXISTS (SELECT 1 FROM smartetl.alert_rule_state s
                   WHERE s.rule_name = r.name
                     AND ((r.kind IN ('duration_anomaly', 'volume_anomaly', 'risk', 'model_drift')
                           AND s.evaluated_at > now() - interval '5 minutes')
                          OR s.retry_at > now())) THEN
            CONTINUE;
        END IF;
        started := clock_timestamp();
        BEGIN
            PERFORM smartetl._alert_apply_rule(r);
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at)
            VALUES (r.name, now(), NULL, NULL)
            ON CONFLICT (rule_name) DO UPDATE SET evaluated_at = now(), last_error = NULL, retry_at = NULL;
        EXCEPTION WHEN OTHERS THEN
            -- one broken rule must not stop the others
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            err := SQLERRM || coalesce(': ' || nullif(detail, ''), '');
            RAISE WARNING 'smartetl: alert rule "%" failed: %', r.name, err;
            -- a sql rule that used up smartetl.rule_timeout would hold up every
            -- evaluation, and the notifications queued after it: it waits 5 minutes
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at)
            VALUES (r.name, now(), err,
                    CASE WHEN r.kind = 'sql'
                              AND clock_timestamp() - started
                                  >= coalesce(current_setting('smartetl.rule_timeout', true), '5s')::interval
                         THEN now() + interval '5 minutes' END)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = excluded.last_error, retry_at = excluded.retry_at;
        END;
    END LOOP;
    -- rules deleted or disabled: their alerts resolve
    UPDATE smartetl.alert SET state = 'resolved', resolved_at = now()
    WHERE state = 'firing' AND rule_name NOT IN (SELECT name FROM smartetl.alert_rule WHERE enabled);
    UPDATE smartetl.alert a SET silenced = s.hit
    FROM (SELECT a2.alert_id, EXISTS (SELECT 1 FROM smartetl.silence s
                                      WHERE now() >= s.starts_at AND now() < s.ends_at
                                        AND smartetl._silence_matches(s.matchers, a2.labels)) AS hit
          FROM smartetl.alert a2 WHERE a2.state = 'firing') s
    WHERE a.alert_id = s.alert_id AND a.silenced IS DISTINCT FROM s.hit;
    RETURN smartetl._alert_notify();
END $$;

-- ---- the evaluation folds template occurrence deltas
CREATE OR REPLACE FUNCTION smartetl.evaluate_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl.alert_rule;
    started timestamptz;
    detail text;
    err text;
BEGIN
    -- one evaluation at a time, whoever calls it
    PERFORM pg_advisory_xact_lock(1397572948, 1000);
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        -- costly kinds run at most every 5 minutes (anomaly scoring rebuilds
        -- 120 days of baselines; risk scores every pipeline), and a sql rule
        -- that ran out of time waits until retry_at
        IF EXISTS (SELECT 1 FROM smartetl.alert_rule_state s
                   WHERE s.rule_name = r.name
                     AND ((r.kind IN ('duration_anomaly', 'volume_anomaly', 'risk', 'model_drift')
                           AND s.evaluated_at > now() - interval '5 minutes')
                          OR s.retry_at > now())) THEN
            CONTINUE;
        END IF;
        started := clock_timestamp();
        BEGIN
            PERFORM smartetl._alert_apply_rule(r);
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at)
            VALUES (r.name, now(), NULL, NULL)
            ON CONFLICT (rule_name) DO UPDATE SET evaluated_at = now(), last_error = NULL, retry_at = NULL;
        EXCEPTION WHEN OTHERS THEN
            -- one broken rule must not stop the others
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            err := SQLERRM || coalesce(': ' || nullif(detail, ''), '');
            RAISE WARNING 'smartetl: alert rule "%" failed: %', r.name, err;
            -- a sql rule that used up smartetl.rule_timeout would hold up every
            -- evaluation, and the notifications queued after it: it waits 5 minutes
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at)
            VALUES (r.name, now(), err,
                    CASE WHEN r.kind = 'sql'
                              AND clock_timestamp() - started
                                  >= coalesce(current_setting('smartetl.rule_timeout', true), '5s')::interval
                         THEN now() + interval '5 minutes' END)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = excluded.last_error, retry_at = excluded.retry_at;
        END;
    END LOOP;
    -- rules deleted or disabled: their alerts resolve
    UPDATE smartetl.alert SET state = 'resolved', resolved_at = now()
    WHERE state = 'firing' AND rule_name NOT IN (SELECT name FROM smartetl.alert_rule WHERE enabled);
    UPDATE smartetl.alert a SET silenced = s.hit
    FROM (SELECT a2.alert_id, EXISTS (SELECT 1 FROM smartetl.silence s
                                      WHERE now() >= s.starts_at AND now() < s.ends_at
                                        AND smartetl._silence_matches(s.matchers, a2.labels)) AS hit
          FROM smartetl.alert a2 WHERE a2.state = 'firing') s
    WHERE a.alert_id = s.alert_id AND a.silenced IS DISTINCT FROM s.hit;
    RETURN smartetl._alert_notify();
END $$;



-- ---- failure risk never worse than the baselines (issue 12): baselines as
-- candidates of the registry, rolling-origin evaluation and backtest(),
-- features that do not drift (the 0.1.0 ones stay for 0.1.0's models,
-- which score as before), reasons in plain words
ALTER TABLE smartetl.model DROP CONSTRAINT model_algorithm_check;
ALTER TABLE smartetl.model ADD CONSTRAINT model_algorithm_check CHECK (algorithm IN ('xgboost', 'linear', 'baseline'));
ALTER TABLE smartetl.model ADD COLUMN note text;
COMMENT ON TABLE smartetl.model IS 'model registry: failure-risk candidates (name risk:<horizon in seconds>: the learned model and the baselines of each training, metrics out of time by rolling origin) and smartetl.train() models (metrics on the held-out part); ROC-AUC, PR-AUC, Brier, log loss, reliability table; or RMSE/R2; the training sample''s per-feature PSI reference, the serialized booster, weights or baseline; one champion per name, and in note why it serves or not';
CREATE FUNCTION smartetl._risk_feature_names_v1() RETURNS text[]
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_names' LANGUAGE C IMMUTABLE;
-- The current features (and labels) of a pipeline at each time; with
-- active, only the times it had a run known within active before.
CREATE FUNCTION smartetl._risk_rows(pipeline_id bigint, times timestamptz[], horizon interval, active interval)
RETURNS TABLE (at timestamptz, label double precision, features double precision[])
AS 'MODULE_PATHNAME', 'smartetl_risk_rows' LANGUAGE C STABLE;
CREATE OR REPLACE FUNCTION smartetl._risk_feature_names() RETURNS text[]
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_names2' LANGUAGE C IMMUTABLE;
CREATE FUNCTION smartetl._risk_backtest(query text, horizon interval, step interval, "from" timestamptz,
                                        until timestamptz, algorithms text[], options jsonb, final boolean)
RETURNS TABLE (candidate text, algorithm text, served boolean, model bytea, metrics jsonb,
               calibration double precision[], reference double precision[], train_rows integer,
               test_rows integer, train_seconds double precision, peak_rss_kb bigint)
AS 'MODULE_PATHNAME', 'smartetl_risk_backtest' LANGUAGE C VOLATILE;
DROP FUNCTION smartetl.risk_features(text, timestamptz);
CREATE FUNCTION smartetl.risk_features(pipeline text, at timestamptz DEFAULT now(), horizon interval DEFAULT '1 day')
RETURNS TABLE (feature text, value double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT n.feature, n.value
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL smartetl._risk_rows(p.pipeline_id, ARRAY[at], horizon, NULL) r
    CROSS JOIN LATERAL unnest(smartetl._risk_feature_names(), r.features) WITH ORDINALITY n(feature, value, i)
    WHERE p.name = pipeline
    ORDER BY n.i
$$;
COMMENT ON FUNCTION smartetl.risk_features(text, timestamptz, interval) IS 'the failure-risk features of a pipeline at a time for a horizon, from its runs known before that time only';

CREATE FUNCTION smartetl._risk_step(horizon interval) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN least(greatest(horizon / 4, interval '1 hour'), interval '1 day');

-- API: Private
-- Labelled samples drawn the way failure_risk and risk_ranking are asked:
-- every pipeline at every multiple of step (since the Unix epoch, so
-- midnights UTC for a day) from its first run on, days without runs
-- included, while it has had a run within active; label 1 when a run of
-- it that started within horizon after the time failed.  Times from since
-- (default: the first run) to until - horizon, so every label is known.
CREATE FUNCTION smartetl._risk_samples_v2(horizon interval, step interval, until timestamptz,
                                          active interval DEFAULT '30 days', since timestamptz DEFAULT NULL)
RETURNS TABLE (t timestamptz, pipeline_id bigint, label double precision, features double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.at, p.pipeline_id, r.label, r.features
    FROM (SELECT run.pipeline_id, greatest(min(coalesce(run.ended_at, run.run_at)), since) AS first_at
          FROM smartetl.run WHERE run.run_at IS NOT NULL GROUP BY 1) p
    CROSS JOIN LATERAL smartetl._risk_rows(p.pipeline_id,
        ARRAY(SELECT g FROM generate_series(
                  to_timestamp(ceil(extract(epoch FROM p.first_at) / extract(epoch FROM step)) * extract(epoch FROM step)),
                  until - horizon, step) g),
        horizon, active) r
$$;

CREATE FUNCTION smartetl._risk_candidate_description(candidate text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE candidate
    WHEN 'fail_rate_7d' THEN 'baseline: failure rate of the last 7 days'
    WHEN 'fail_count_7d' THEN 'baseline: failure count of the last 7 days'
    WHEN 'last_failed' THEN 'baseline: last outcome repeated'
    WHEN 'xgboost' THEN 'gradient-boosted trees (XGBoost) on the history features'
    WHEN 'linear' THEN 'logistic regression (liblinear) on the history features'
    ELSE candidate END;

-- API: Private
-- A metric for a sentence: three decimals, or "undefined" (a single class).
CREATE FUNCTION smartetl._risk_num(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(round((v #>> '{}')::numeric, 3)::text, 'undefined');

-- API: Private
-- Why a candidate of a training is served or not, from its metrics and
-- those of the others of the same evaluation (candidate name -> metrics).
CREATE FUNCTION smartetl._risk_note(candidate text, served boolean, metrics jsonb, everyone jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN served AND learned THEN
            format('champion: ROC-AUC %s out of time against %s for the best baseline (%s), a gain of %s with a standard error of %s, over %s folds and %s pipeline-times from %s; served with Platt calibration',
                   smartetl._risk_num(metrics->'roc_auc'), smartetl._risk_num(everyone->best->'roc_auc'),
                   smartetl._risk_candidate_description(best), smartetl._risk_num(metrics->'gain_over_baseline'),
                   smartetl._risk_num(metrics->'gain_se'), jsonb_array_length(metrics->'folds'),
                   metrics->>'pipeline_times', metrics->>'evaluated_from')
        WHEN served THEN
            format('champion: %s, calibrated; ROC-AUC %s out of time over %s folds and %s pipeline-times from %s%s',
                   smartetl._risk_candidate_description(candidate), smartetl._risk_num(metrics->'roc_auc'),
                   jsonb_array_length(metrics->'folds'), metrics->>'pipeline_times', metrics->>'evaluated_from',
                   coalesce('; no learned model beat it by ' || smartetl._risk_num(metrics->'min_gain')
                            || ' beyond its standard error ('
                            || (SELECT string_agg(format('%s: ROC-AUC %s, gain %s, standard error %s', k,
                                                         smartetl._risk_num(v->'roc_auc'),
                                                         smartetl._risk_num(v->'gain_over_baseline'),
                                                         smartetl._risk_num(v->'gain_se')), '; ' ORDER BY k)
                                FROM jsonb_each(everyone) e(k, v) WHERE v ? 'gain_over_baseline') || ')', ''))
        WHEN learned THEN
            format('not served: ROC-AUC %s out of time against %s for the best baseline (%s), a gain of %s with a standard error of %s; a learned model is served when its gain minus its standard error reaches %s',
                   smartetl._risk_num(metrics->'roc_auc'), smartetl._risk_num(everyone->best->'roc_auc'),
                   smartetl._risk_candidate_description(best), smartetl._risk_num(metrics->'gain_over_baseline'),
                   smartetl._risk_num(metrics->'gain_se'), smartetl._risk_num(metrics->'min_gain'))
        ELSE format('not served: %s, ROC-AUC %s out of time', smartetl._risk_candidate_description(candidate),
                    smartetl._risk_num(metrics->'roc_auc'))
        END
    FROM (SELECT candidate IN ('xgboost', 'linear') AS learned,
                 replace(metrics->>'best_baseline', 'baseline:', '') AS best) c
$$;

DROP FUNCTION smartetl._promote_if_better(bigint, text);
CREATE OR REPLACE FUNCTION smartetl.train_risk_model(horizon interval DEFAULT '1 day', algorithm text DEFAULT 'xgboost',
                                          options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval := coalesce((options->>'step')::interval, smartetl._risk_step(horizon));
    until timestamptz := coalesce((options->>'until')::timestamptz, now());
    active interval := coalesce((options->>'active')::interval, interval '30 days');
    model_name text := smartetl._risk_model_name(horizon);
    algorithms text[];
    learned_id bigint;
BEGIN
    IF algorithm NOT IN ('xgboost', 'linear', 'auto') THEN
        RAISE EXCEPTION 'unknown algorithm "%"', algorithm USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Risk models are xgboost, linear, or auto (both, the better one served).';
    END IF;
    algorithms := CASE algorithm WHEN 'auto' THEN ARRAY['xgboost', 'linear'] ELSE ARRAY[algorithm] END;
    -- the candidates of this training replace those of the previous one
    UPDATE smartetl.model SET status = 'retired' WHERE name = model_name AND status IN ('champion', 'candidate');
    WITH b AS (
        SELECT replace(x.candidate, 'baseline:', '') AS cand, x.algorithm AS alg, x.served, x.model AS bytes,
               x.metrics AS m, x.calibration AS cal, x.reference AS ref, x.train_rows AS ntrain,
               x.test_rows AS ntest, x.train_seconds AS secs, x.peak_rss_kb AS rss
        FROM smartetl._risk_backtest(
                 format('SELECT t, pipeline_id, label, features FROM smartetl._risk_samples_v2(%L, %L, %L, %L) ORDER BY t, pipeline_id',
                        horizon, step, until, active),
                 horizon, step, (options->>'from')::timestamptz, NULL, algorithms, options, true) x
    ), everyone AS (
        SELECT jsonb_object_agg(b.cand, b.m) AS all_metrics FROM b
    ), ins AS (
        INSERT INTO smartetl.model AS mm (name, kind, algorithm, horizon, status, training_rows, test_rows, feature_names,
                                          metrics, reference, model, train_seconds, peak_rss_kb, calibration, options, note)
        SELECT model_name, 'risk', b.alg, horizon, CASE WHEN b.served THEN 'champion' ELSE 'candidate' END,
               b.ntrain, b.ntest, smartetl._risk_feature_names(), b.m, b.ref, b.bytes, b.secs, b.rss, b.cal,
               options || jsonb_build_object('step', step, 'active', active)
                       || CASE WHEN b.alg = 'baseline' THEN jsonb_build_object('baseline', b.cand) ELSE '{}' END,
               smartetl._risk_note(b.cand, b.served, b.m, everyone.all_metrics)
        FROM b, everyone
        ORDER BY b.alg = 'baseline' DESC, b.cand
        RETURNING mm.model_id AS id, mm.algorithm AS alg, mm.metrics AS m
    )
    SELECT ins.id INTO learned_id FROM ins WHERE ins.alg <> 'baseline'
    ORDER BY (ins.m->>'roc_auc')::float8 DESC NULLS LAST, ins.id LIMIT 1;
    RETURN learned_id;
END $$;
COMMENT ON FUNCTION smartetl.train_risk_model(interval, text, jsonb) IS
'train a failure-risk model on samples of every pipeline every step (label: a run started within horizon after the sample failed), evaluate it by rolling origin against the baselines (7-day failure rate and count, last outcome), register all of them and serve the learned model only when it beats the best baseline out of time by min_gain beyond its standard error, else the best baseline (calibrated); returns the learned model''s id. algorithm: xgboost, linear or auto (both). options: step, until, active (30 days), from (first evaluated time), folds (3), validation_share (0.3), min_gain (0.02), bootstrap (200), max_depth, eta, n_rounds, min_child_weight, subsample, colsample_bytree, scale_pos_weight, C';

CREATE FUNCTION smartetl.backtest(horizon interval DEFAULT '1 day', "from" timestamptz DEFAULT NULL,
                                  "to" timestamptz DEFAULT NULL)
RETURNS TABLE (candidate text, description text, roc_auc double precision, pr_auc double precision,
               brier double precision, pipeline_times integer, positives integer, folds integer,
               would_serve boolean, reliability jsonb, metrics jsonb)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(b.candidate, 'baseline:', ''), smartetl._risk_candidate_description(replace(b.candidate, 'baseline:', '')),
           (b.metrics->>'roc_auc')::float8, (b.metrics->>'pr_auc')::float8, (b.metrics->>'brier')::float8,
           (b.metrics->>'pipeline_times')::int, (b.metrics->>'test_positives')::int,
           jsonb_array_length(b.metrics->'folds'), b.served, b.metrics->'calibration', b.metrics
    FROM smartetl._risk_backtest(
             format('SELECT t, pipeline_id, label, features FROM smartetl._risk_samples_v2(%L, %L, %L) ORDER BY t, pipeline_id',
                    horizon, smartetl._risk_step(horizon), least(coalesce("to", now()), now())),
             horizon, smartetl._risk_step(horizon), "from", NULL, ARRAY['xgboost', 'linear'], '{}', false) b
$$;
COMMENT ON FUNCTION smartetl.backtest(interval, timestamptz, timestamptz) IS
'what a risk model is worth on this history before trusting it: a rolling-origin backtest (3 successive cut points from "from", default the latest 30 % of the history, up to "to" minus the horizon; each fold trained only on labels known before it, calibrated only on earlier folds), one row per candidate (the baselines, XGBoost, logistic regression) with ROC-AUC, PR-AUC, Brier score, pipeline-times scored, failures among them, the reliability table, and the candidate train_risk_model would serve; trains models but stores nothing';

CREATE FUNCTION smartetl._risk_age(hours double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN hours < 1 THEN round(hours * 60) || ' minutes'
            WHEN hours < 48 THEN round(hours) || ' hour' || CASE WHEN round(hours) = 1 THEN '' ELSE 's' END
            ELSE round(hours / 24) || ' days' END;

-- API: Private
-- When a time was, for a sentence written at `at`: "04:10" within a day, else "May 3 04:10".
CREATE FUNCTION smartetl._risk_when(ts timestamptz, at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN at - ts < interval '1 day' THEN to_char(ts, 'HH24:MI') ELSE to_char(ts, 'FMMon FMDD HH24:MI') END;

-- API: Private
-- One risk feature of a pipeline at a time as a sentence with its value
-- ("failed on 3 of the last 7 days", "2 failures in a row since 04:10").
CREATE FUNCTION smartetl._risk_reason(p_pipeline_id bigint, at timestamptz, horizon interval, feature text,
                                      value double precision)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE feature
        WHEN 'fail_rate_7d' THEN CASE WHEN value = 0 THEN 'none of its runs failed in the last 7 days'
                                      ELSE round(value * 100) || ' % of its runs failed in the last 7 days' END
        WHEN 'fail_count_7d' THEN CASE WHEN value = 0 THEN 'no failure in the last 7 days'
                                       ELSE n || ' failure' || s || ' in the last 7 days' END
        WHEN 'last_failed' THEN CASE WHEN value > 0 THEN 'the last run failed' ELSE 'the last run succeeded' END
        WHEN 'fail_count_1d' THEN CASE WHEN value = 0 THEN 'no failure in the last 24 hours'
                                       ELSE n || ' failure' || s || ' in the last 24 hours' END
        WHEN 'fail_days_7d' THEN 'failed on ' || n || ' of the last 7 days'
        WHEN 'consecutive_failures' THEN
            CASE WHEN value = 0 THEN 'the last run succeeded'
                 ELSE CASE WHEN value = 1 THEN 'the last run failed' ELSE n || ' failures in a row' END
                      || coalesce(CASE WHEN value = 1 THEN ', at ' ELSE ' since ' END || (
                     SELECT smartetl._risk_when(min(f.run_at), at) FROM smartetl.run f
                     WHERE f.pipeline_id = p_pipeline_id AND f.status = 'failed'
                       AND coalesce(f.ended_at, f.run_at) < at
                       AND coalesce(f.ended_at, f.run_at) > coalesce((
                           SELECT max(coalesce(o.ended_at, o.run_at)) FROM smartetl.run o
                           WHERE o.pipeline_id = p_pipeline_id AND o.status = 'success'
                             AND coalesce(o.ended_at, o.run_at) < at), '-infinity')), '') END
        WHEN 'successes_since_failure' THEN CASE WHEN value >= 100 THEN 'at least 100 successful runs since the last failure'
                                                 ELSE n || ' successful run' || s || ' since the last failure' END
        WHEN 'hours_since_failure' THEN CASE WHEN value >= 168 THEN 'no failure for over a week'
                                             ELSE 'last failure ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'hours_since_success' THEN CASE WHEN value >= 168 THEN 'no success for over a week'
                                             ELSE 'last success ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'hours_since_run' THEN CASE WHEN value >= 168 THEN 'no run for over a week'
                                         ELSE 'last run ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'runs_per_day_7d' THEN CASE WHEN value >= 1.5 THEN 'runs ' || round(value) || ' times a day'
                                         WHEN value > 0.75 THEN 'runs about once a day'
                                         WHEN value > 0 THEN 'runs about every ' || round(1 / value) || ' days'
                                         ELSE 'no run in the last 7 days' END
        WHEN 'runs_1d' THEN n || ' run' || s || ' in the last 24 hours'
        WHEN 'expected_runs_horizon' THEN 'about ' || round(value::numeric, 1) || ' runs expected in the next '
                                          || smartetl._risk_age(extract(epoch FROM horizon) / 3600)
        WHEN 'fail_rate_30d' THEN CASE WHEN value = 0 THEN 'none of its runs failed in the last 30 days'
                                       ELSE round(value * 100) || ' % of its runs failed in the last 30 days' END
        WHEN 'failures_per_day_30d' THEN round(value::numeric, 2) || ' failures a day over the last 30 days'
        WHEN 'failed_same_window_1w' THEN CASE WHEN value > 0 THEN 'failed in the same window a week ago'
                                               ELSE 'did not fail in the same window a week ago' END
        WHEN 'failed_same_window_1d' THEN CASE WHEN value > 0 THEN 'failed in the same window a day ago'
                                               ELSE 'did not fail in the same window a day ago' END
        WHEN 'weekly_repeat' THEN 'failed at this time of the week in ' || round(value * 100) || ' % of the past weeks'
        WHEN 'daily_repeat' THEN 'failed at this time of day on ' || round(value * 100) || ' % of the past days'
        WHEN 'cancel_rate_7d' THEN round(value * 100) || ' % of its runs were cancelled in the last 7 days'
        WHEN 'retry_rate_7d' THEN round(value * 100) || ' % of its runs were retries in the last 7 days'
        WHEN 'duration_z' THEN 'the last run took ' || CASE WHEN value >= 0 THEN 'longer' ELSE 'less time' END
                               || ' than usual (robust z-score ' || round(value::numeric, 1) || ')'
        WHEN 'duration_trend_7d' THEN 'duration trending ' || CASE WHEN value >= 0 THEN 'up ' ELSE 'down ' END
                                      || abs(round(value * 100)) || ' % over 7 days'
        WHEN 'volume_z' THEN 'the last run wrote ' || CASE WHEN value >= 0 THEN 'more' ELSE 'fewer' END
                             || ' rows than usual (robust z-score ' || round(value::numeric, 1) || ')'
        WHEN 'new_templates_1d' THEN CASE WHEN value = 0 THEN 'no new error template since yesterday'
                                          ELSE 'new error template since yesterday: ' || coalesce(tpl, '?') END
        WHEN 'new_templates_7d' THEN CASE WHEN value = 0 THEN 'no new error template in the last 7 days'
                                          ELSE n || ' new error template' || s || ' in the last 7 days, the latest: '
                                               || coalesce(tpl, '?') END
        WHEN 'templates_7d' THEN n || ' distinct error template' || s || ' in the last 7 days'
        WHEN 'host_changed' THEN CASE WHEN value > 0 THEN 'the last run ran on another host than the one before'
                                      ELSE 'the last run ran on the same host as the one before' END
        ELSE feature || ' = ' || round(value::numeric, 4) END
    FROM (SELECT round(value)::bigint AS n, CASE WHEN round(value) = 1 THEN '' ELSE 's' END AS s) w
    LEFT JOIN LATERAL (
        -- the latest failed run's error template that this pipeline had not seen before
        SELECT (SELECT tt.template FROM smartetl.template_text tt WHERE tt.template_id = f.template_id
                ORDER BY tt.revision DESC LIMIT 1) AS tpl
        FROM smartetl.run f
        WHERE feature IN ('new_templates_1d', 'new_templates_7d') AND value > 0
          AND f.pipeline_id = p_pipeline_id AND f.status = 'failed' AND f.template_id IS NOT NULL
          AND coalesce(f.ended_at, f.run_at) < at
          AND coalesce(f.ended_at, f.run_at) >= at - CASE feature WHEN 'new_templates_1d' THEN interval '1 day' ELSE interval '7 days' END
          AND NOT EXISTS (SELECT 1 FROM smartetl.run e
                          WHERE e.pipeline_id = p_pipeline_id AND e.template_id = f.template_id
                            AND (coalesce(e.ended_at, e.run_at), e.run_id) < (coalesce(f.ended_at, f.run_at), f.run_id))
        ORDER BY coalesce(f.ended_at, f.run_at) DESC LIMIT 1) t ON true
$$;

-- API: Private
-- The main reasons of a pipeline's risk, as [{reason, feature, value,
-- contribution}]: the three current features with the largest
-- contributions (TreeSHAP, linear terms) when the model gives them; for a
-- baseline (lead: its feature) or a 0.1.0 model, the lead feature and
-- then the notable facts (a failure streak, failing days, a new error
-- template, a duration trend, frequent runs).
CREATE FUNCTION smartetl._risk_reasons(p_pipeline_id bigint, at timestamptz, horizon interval,
                                       features double precision[], contributions double precision[], lead text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_agg(jsonb_build_object('reason', smartetl._risk_reason(p_pipeline_id, at, horizon, t.n, t.v),
                                        'feature', t.n, 'value', round(t.v::numeric, 4),
                                        'contribution', round(t.c::numeric, 4)) ORDER BY t.rank)
    FROM (SELECT u.n, u.v, u.c,
                 CASE WHEN contributions IS NOT NULL THEN -abs(u.c)
                      WHEN u.n = lead THEN -1
                      ELSE array_position(ARRAY['consecutive_failures', 'new_templates_1d', 'fail_days_7d',
                                                'duration_trend_7d', 'weekly_repeat', 'runs_per_day_7d'], u.n) END AS rank
          FROM unnest(smartetl._risk_feature_names(), features, contributions) u(n, v, c)
          WHERE u.n IS NOT NULL
            AND CASE WHEN contributions IS NOT NULL THEN u.c IS NOT NULL
                     WHEN u.n = lead THEN true
                     ELSE (u.n IN ('consecutive_failures', 'new_templates_1d', 'fail_days_7d') AND u.v > 0)
                          OR (u.n = 'duration_trend_7d' AND abs(u.v) >= 0.2)
                          OR (u.n = 'weekly_repeat' AND u.v >= 0.5)
                          OR (u.n = 'runs_per_day_7d' AND u.v >= 2) END
          ORDER BY 4 LIMIT 3) t
$$;

DROP FUNCTION smartetl.risk_ranking(interval);
DROP FUNCTION smartetl._score(bigint[], interval, timestamptz, boolean);
CREATE FUNCTION smartetl._score(p_pipeline_ids bigint[], horizon interval, at timestamptz, explain boolean)
RETURNS TABLE (pipeline_id bigint, probability double precision, reasons jsonb, detail jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m smartetl.model := smartetl._champion(smartetl._risk_model_name(horizon));
    v1 boolean;
BEGIN
    IF m.model_id IS NULL THEN
        RAISE EXCEPTION 'no failure-risk model for horizon %', horizon
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train one: SELECT smartetl.train_risk_model(%L);', horizon);
    END IF;
    -- a model 0.1.0 trained reads the 0.1.0 features
    v1 := m.feature_names = smartetl._risk_feature_names_v1();
    RETURN QUERY
    WITH f AS (
        SELECT p.pid, r.features AS current,
               CASE WHEN v1 THEN (SELECT o.features FROM smartetl._risk_feature_rows(p.pid, ARRAY[_score.at]) o)
                    ELSE r.features END AS model_features
        FROM unnest(p_pipeline_ids) p(pid)
        CROSS JOIN LATERAL smartetl._risk_rows(p.pid, ARRAY[_score.at], _score.horizon, NULL) r
    ), scored AS (
        SELECT f.pid, f.current, f.model_features,
               smartetl._calibrate((smartetl._model_predict(m.model_id, m.algorithm, m.model, f.model_features))[1],
                                   m.calibration) AS prob,
               CASE WHEN explain THEN smartetl._model_contributions(m.model_id, m.algorithm, m.model, f.model_features) END AS contrib
        FROM f
    ), explained AS (
        SELECT s.pid, s.prob,
               CASE WHEN explain THEN smartetl._risk_reasons(s.pid, _score.at, _score.horizon, s.current,
                                                             CASE WHEN NOT v1 AND m.algorithm <> 'baseline' THEN s.contrib END,
                                                             m.options->>'baseline') END AS reasons,
               CASE WHEN explain THEN jsonb_build_object(
                   'model_id', m.model_id, 'algorithm', m.algorithm,
                   'served', CASE WHEN m.algorithm = 'baseline'
                                  THEN smartetl._risk_candidate_description(m.options->>'baseline') || ' (calibrated)'
                                  ELSE m.algorithm END,
                   'features', (SELECT jsonb_object_agg(u.n, round(u.v::numeric, 4))
                                FROM unnest(smartetl._risk_feature_names(), s.current) u(n, v)),
                   'contributions', (SELECT jsonb_object_agg(u.n, round(u.c::numeric, 4))
                                     FROM unnest(m.feature_names, s.contrib) u(n, c) WHERE u.n IS NOT NULL),
                   'bias', round(s.contrib[cardinality(s.contrib)]::numeric, 4)) END AS detail
        FROM scored s
    ), logged AS (
        INSERT INTO smartetl.prediction (model_id, pipeline_id, at, horizon, probability, reasons)
        SELECT m.model_id, e.pid, _score.at, _score.horizon, e.prob, e.reasons FROM explained e
    )
    SELECT e.pid, e.prob, e.reasons, e.detail FROM explained e;
END $$;

CREATE OR REPLACE FUNCTION smartetl.failure_risk(pipeline text, horizon interval DEFAULT '1 day', at timestamptz DEFAULT now())
RETURNS double precision
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.probability FROM smartetl._score(
        ARRAY(SELECT p.pipeline_id FROM smartetl.pipeline p WHERE p.name = failure_risk.pipeline LIMIT 1),
        horizon, at, false) s
$$;
COMMENT ON FUNCTION smartetl.failure_risk(text, interval, timestamptz) IS 'calibrated probability that the pipeline has a failed run starting within horizon after at, from the champion for the horizon (a learned model, or the best baseline when no learned model beat it out of time: see smartetl.model.note); logged in smartetl.prediction';

CREATE FUNCTION smartetl.risk_ranking(horizon interval DEFAULT '1 day')
RETURNS TABLE (pipeline_id bigint, namespace text, pipeline text, risk double precision, reasons text, detail jsonb)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.namespace, p.name, s.probability,
           (SELECT string_agg(x->>'reason', '; ' ORDER BY i) FROM jsonb_array_elements(s.reasons) WITH ORDINALITY r(x, i)),
           s.detail || jsonb_build_object('reasons', s.reasons)
    FROM smartetl._score(ARRAY(SELECT pipeline_id FROM smartetl.pipeline), horizon, now(), true) s
    JOIN smartetl.pipeline p USING (pipeline_id)
    ORDER BY s.probability DESC, p.name
$$;
COMMENT ON FUNCTION smartetl.risk_ranking(interval) IS 'every pipeline by failure risk within horizon, with its main reasons in plain words ("failed on 3 of the last 7 days; 2 failures in a row since 04:10"); detail: the model, each reason''s feature, value and contribution, every feature and every contribution (SHAP for xgboost, linear terms for linear)';

CREATE OR REPLACE FUNCTION smartetl.model_drift(p_model_id bigint, recent interval DEFAULT '7 days')
RETURNS TABLE (feature text, psi double precision, drifted boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH m AS (SELECT * FROM smartetl.model WHERE model_id = p_model_id AND kind = 'risk'),
    recent_rows AS (
        -- a model 0.1.0 trained: its own features and samples
        SELECT s.features
        FROM m, smartetl._risk_samples(interval '0',
                                       coalesce((m.options->>'step')::interval, least(m.horizon, interval '1 day')), now()) s
        WHERE m.feature_names = smartetl._risk_feature_names_v1() AND s.t > now() - recent
        UNION ALL
        SELECT s.features
        FROM m, smartetl._risk_samples_v2(m.horizon, coalesce((m.options->>'step')::interval, smartetl._risk_step(m.horizon)),
                                          now() + m.horizon, coalesce((m.options->>'active')::interval, interval '30 days'),
                                          now() - recent) s
        WHERE m.feature_names IS DISTINCT FROM smartetl._risk_feature_names_v1()),
    psi AS (
        SELECT smartetl._model_psi(m.reference, (SELECT array_agg(x) FROM recent_rows, unnest(features) x),
                                   cardinality(m.feature_names)) AS values, m.feature_names
        FROM m WHERE EXISTS (SELECT 1 FROM recent_rows))
    SELECT u.n, u.v, u.v > 0.25 FROM psi, unnest(psi.feature_names, psi.values) u(n, v)
$$;
COMMENT ON FUNCTION smartetl.model_drift(bigint, interval) IS 'population stability index of each feature between the model''s training sample and the samples of the recent interval (> 0.25: drifted); see prediction_quality for live versus training accuracy';

CREATE OR REPLACE FUNCTION smartetl.export_model(p_model_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('format', 'smartetl-model/1', 'name', name, 'kind', kind, 'algorithm', algorithm,
                              'horizon_s', extract(epoch FROM horizon), 'trained_at', trained_at,
                              'training_rows', training_rows, 'test_rows', test_rows,
                              'feature_names', to_jsonb(feature_names), 'metrics', metrics,
                              'reference', to_jsonb(reference), 'calibration', to_jsonb(calibration),
                              'options', options, 'query', query, 'label', label, 'note', note,
                              'model', encode(model, 'base64'))
    FROM smartetl.model WHERE model_id = p_model_id
$$;
COMMENT ON FUNCTION smartetl.export_model(bigint) IS 'a model as JSON (the serialized booster, weights or baseline in base64), for import_model() on another server';

CREATE OR REPLACE FUNCTION smartetl.import_model(doc jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    names text[] := ARRAY(SELECT jsonb_array_elements_text(doc->'feature_names'));
BEGIN
    IF doc->>'format' IS DISTINCT FROM 'smartetl-model/1' THEN
        RAISE EXCEPTION 'not a smartetl model export' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Expected "format": "smartetl-model/1", found %s.', coalesce(doc->>'format', 'none'));
    END IF;
    IF doc->>'kind' = 'risk' AND names IS DISTINCT FROM smartetl._risk_feature_names()
       AND names IS DISTINCT FROM smartetl._risk_feature_names_v1() THEN
        RAISE EXCEPTION 'the model''s features are not this version''s risk features'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smartetl.model (name, kind, algorithm, horizon, training_rows, test_rows, feature_names, metrics,
                                reference, model, train_seconds, calibration, options, query, label, note)
    VALUES (doc->>'name', doc->>'kind', doc->>'algorithm', make_interval(secs => (doc->>'horizon_s')::float8),
            (doc->>'training_rows')::int, (doc->>'test_rows')::int, names, doc->'metrics',
            ARRAY(SELECT jsonb_array_elements_text(doc->'reference')::float8), decode(doc->>'model', 'base64'),
            0, CASE WHEN jsonb_typeof(doc->'calibration') = 'array'
                    THEN ARRAY(SELECT jsonb_array_elements_text(doc->'calibration')::float8) END,
            coalesce(doc->'options', '{}'), doc->>'query', doc->>'label', 'imported: ' || coalesce(doc->>'note', ''))
    RETURNING model_id INTO id;
    -- the bytes must load and score one row
    PERFORM smartetl._model_predict(id, m.algorithm, m.model, array_fill(0::float8, ARRAY[cardinality(m.feature_names)]))
    FROM smartetl.model m WHERE m.model_id = id;
    RETURN id;
END $$;
DROP VIEW smartetl.current_risk;
CREATE VIEW smartetl.current_risk AS
SELECT DISTINCT ON (pr.pipeline_id, pr.horizon)
       pr.pipeline_id, p.namespace, p.name AS pipeline, pr.horizon, pr.at, pr.probability AS risk,
       (SELECT string_agg(coalesce(x->>'reason', x->>'feature'), '; ' ORDER BY i)
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(pr.reasons) = 'array' THEN pr.reasons END)
             WITH ORDINALITY r(x, i)) AS reasons,
       pr.model_id, pr.reasons AS detail
FROM smartetl.prediction pr
JOIN smartetl.model m ON m.model_id = pr.model_id AND m.status = 'champion'
JOIN smartetl.pipeline p USING (pipeline_id)
ORDER BY pr.pipeline_id, pr.horizon, pr.at DESC, pr.prediction_id DESC;
COMMENT ON VIEW smartetl.current_risk IS 'each pipeline''s latest risk from the champion model, per horizon (what risk_ranking or failure_risk last logged), with its reasons in plain words and, in detail, each reason''s feature, value and contribution: for dashboards and readers, who cannot write predictions';

-- the risk alert describes itself with the reasons in words
CREATE OR REPLACE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF r.kind IN ('run_failed', 'consecutive_failures') THEN
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed', cf.pipeline),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                   cf.run_id, cf.since, cf.pipeline_id)
        FROM smartetl.current_failures cf
        WHERE r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3);
    ELSIF r.kind IN ('duration_anomaly', 'volume_anomaly') THEN
        RETURN QUERY
        SELECT a.pipeline_id, a.score,
               smartetl._run_annotations(
                   format('%s: abnormal %s', a.pipeline, a.kind),
                   format('%s of the latest run is %s, expected %s (%s .. %s), score %s', a.kind,
                          round(a.value::numeric, 1), round(a.expected::numeric, 1),
                          round(a.expected_low::numeric, 1), round(a.expected_high::numeric, 1),
                          round(a.score::numeric, 1)),
                   a.run_id, a.run_at, a.pipeline_id)
        FROM smartetl.detect_anomalies(now() - interval '48 hours', now(), coalesce(r.threshold, 4)) a
        WHERE a.kind = CASE r.kind WHEN 'duration_anomaly' THEN 'duration' ELSE 'volume' END
          AND a.run_id = (SELECT x.run_id FROM smartetl.run x WHERE x.pipeline_id = a.pipeline_id
                          AND x.status = 'success' ORDER BY x.run_at DESC LIMIT 1);
    ELSIF r.kind = 'freshness' THEN
        RETURN QUERY
        SELECT o.pipeline_id, extract(epoch FROM now() - o.last_at)::float8,
               jsonb_build_object('summary', format('%s: %s', o.pipeline,
                                                    CASE o.kind WHEN 'missing_run' THEN 'no run' ELSE 'no success' END),
                                  'description', format('nothing since %s, expected every %s',
                                                        to_char(o.last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                                        o.expected_interval),
                                  'since', o.last_at, 'overdue', o.kind,
                                  'recent_history', smartetl._recent_history(o.pipeline_id))
        FROM smartetl.overdue_pipelines(now()) o;
    ELSIF r.kind = 'risk' THEN
        RETURN QUERY
        SELECT k.pipeline_id, k.risk,
               jsonb_build_object('summary', format('%s: failure risk %s within a day', k.pipeline, round(k.risk::numeric, 2)),
                                  'description', coalesce('main reasons: ' || k.reasons, 'no reasons given'),
                                  'reasons', k.detail->'reasons', 'recent_history', smartetl._recent_history(k.pipeline_id))
        FROM smartetl.risk_ranking(interval '1 day') k
        WHERE k.risk >= coalesce(r.threshold, 0.5);
    ELSIF r.kind = 'model_drift' THEN
        RETURN QUERY
        SELECT NULL::bigint, d.max_psi,
               jsonb_build_object('subject', 'model:' || m.name,
                                  'summary', format('model %s (%s) drifted: PSI %s on %s', m.model_id, m.name,
                                                    round(d.max_psi::numeric, 2), d.worst),
                                  'description', format('live ROC-AUC %s vs %s at training',
                                                        round(q.live_roc_auc::numeric, 3), round(q.training_roc_auc::numeric, 3)))
        FROM smartetl.model m
        CROSS JOIN LATERAL (SELECT max(psi) AS max_psi, (array_agg(feature ORDER BY psi DESC NULLS LAST))[1] AS worst
                            FROM smartetl.model_drift(m.model_id)) d
        LEFT JOIN smartetl.prediction_quality q ON q.model_id = m.model_id AND q.resolved_predictions >= 50
        WHERE m.status = 'champion' AND m.kind = 'risk'
          AND (d.max_psi > coalesce(r.threshold, 0.25) OR q.live_roc_auc < q.training_roc_auc - 0.1);
    ELSIF r.kind = 'sql' THEN
        -- the query runs sandboxed (as smartetl_reader, read-only, time-limited),
        -- never pasted into this statement
        RETURN QUERY
        SELECT p.pipeline_id, q.value,
               jsonb_build_object('summary', format('%s: %s', p.name, q.value),
                                  'recent_history', smartetl._recent_history(p.pipeline_id))
        FROM smartetl._rule_query_rows(r.name, r.query) q JOIN smartetl.pipeline p ON p.name = q.pipeline
        WHERE r.threshold IS NULL OR q.value > r.threshold;
    END IF;
END $$;

REVOKE ALL ON FUNCTION smartetl._risk_feature_names_v1(), smartetl._risk_rows(bigint, timestamptz[], interval, interval),
    smartetl._risk_backtest(text, interval, interval, timestamptz, timestamptz, text[], jsonb, boolean),
    smartetl.risk_features(text, timestamptz, interval), smartetl._risk_step(interval),
    smartetl._risk_samples_v2(interval, interval, timestamptz, interval, timestamptz),
    smartetl._risk_candidate_description(text), smartetl._risk_num(jsonb), smartetl._risk_note(text, boolean, jsonb, jsonb),
    smartetl.backtest(interval, timestamptz, timestamptz), smartetl._risk_age(double precision),
    smartetl._risk_when(timestamptz, timestamptz), smartetl._risk_reason(bigint, timestamptz, interval, text, double precision),
    smartetl._risk_reasons(bigint, timestamptz, interval, double precision[], double precision[], text),
    smartetl._score(bigint[], interval, timestamptz, boolean), smartetl.risk_ranking(interval)
    FROM PUBLIC;
GRANT SELECT (note) ON smartetl.model TO smartetl_reader;
GRANT SELECT ON smartetl.current_risk TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.risk_features(text, timestamptz, interval),
                          smartetl._risk_rows(bigint, timestamptz[], interval, interval),
                          smartetl._risk_feature_names_v1()
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.backtest(interval, timestamptz, timestamptz), smartetl.risk_ranking(interval),
                          smartetl._risk_samples_v2(interval, interval, timestamptz, interval, timestamptz),
                          smartetl._risk_backtest(text, interval, interval, timestamptz, timestamptz, text[], jsonb, boolean),
                          smartetl._risk_step(interval), smartetl._risk_note(text, boolean, jsonb, jsonb),
                          smartetl._risk_num(jsonb), smartetl._risk_candidate_description(text),
                          smartetl._risk_age(double precision), smartetl._risk_when(timestamptz, timestamptz),
                          smartetl._risk_reason(bigint, timestamptz, interval, text, double precision),
                          smartetl._risk_reasons(bigint, timestamptz, interval, double precision[], double precision[], text),
                          smartetl._score(bigint[], interval, timestamptz, boolean)
    TO smartetl_admin;
