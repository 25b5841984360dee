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


-- ---- ingest integrity: time window, contradicting records, writer log ingest, retention and pg_cron for admins
-- upgrade-steps-ingestsafe.sql: from a 0.1.0 schema to the ingestsafe
-- branch (time window, merge checks, writer log ingest, retention and
-- pg_cron sync for non-superuser admins, rollups of deleted pipelines,
-- bounded report).  Plain SQL for the lead to merge into the upgrade
-- script (MODULE_PATHNAME is substituted there; to try the file with psql,
-- replace it with $libdir/smartetl); every step can run twice.

-- ---- the window of accepted times (src/ingest/time_window.c) -------------
CREATE OR REPLACE FUNCTION smartetl._time_window(OUT min_ts timestamptz, OUT max_ts timestamptz)
RETURNS record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'smartetl_time_window';

-- Absolute limits on run times.  Added NOT VALID first: a 0.1.0 database
-- may hold runs outside them (which broke the rollup refresh); they are
-- validated at once when there are none, else a warning says how many.
DO $$
DECLARE
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'smartetl.run'::regclass AND conname = 'run_time_limits') THEN
        ALTER TABLE smartetl.run ADD CONSTRAINT run_time_limits CHECK (
            started_at >= '1900-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00' AND
            ended_at >= '1900-01-01 00:00:00+00' AND ended_at < '2200-01-01 00:00:00+00') NOT VALID;
    END IF;
    SELECT count(*) INTO n FROM smartetl.run
    WHERE NOT (started_at >= '1900-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00')
       OR NOT (ended_at >= '1900-01-01 00:00:00+00' AND ended_at < '2200-01-01 00:00:00+00');
    IF n = 0 THEN
        ALTER TABLE smartetl.run VALIDATE CONSTRAINT run_time_limits;
    ELSE
        RAISE WARNING '% runs have times before 1900 or after 2199', n
            USING HINT = 'Correct or delete them (SELECT * FROM smartetl.run WHERE NOT (started_at >= ''1900-01-01'' AND started_at < ''2200-01-01'') OR NOT (ended_at >= ''1900-01-01'' AND ended_at < ''2200-01-01'')), then ALTER TABLE smartetl.run VALIDATE CONSTRAINT run_time_limits.';
    END IF;
END $$;
-- rollup rows for such times can only be bogus (and no refresh touches them)
DELETE FROM smartetl.kpi_hourly WHERE NOT (bucket >= '1900-01-01 00:00:00+00' AND bucket < '2200-01-01 00:00:00+00');
DELETE FROM smartetl.kpi_daily WHERE NOT (bucket >= '1900-01-01 00:00:00+00' AND bucket < '2200-01-01 00:00:00+00');

CREATE OR REPLACE FUNCTION smartetl._run_check_times() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w   record;
    bad record;
BEGIN
    SELECT * INTO w FROM smartetl._time_window();
    IF TG_OP = 'INSERT' THEN
        SELECT n.run_id, n.pipeline_id, n.started_at, n.ended_at INTO bad FROM new_runs n
        WHERE n.started_at NOT BETWEEN w.min_ts AND w.max_ts
           OR n.ended_at NOT BETWEEN w.min_ts AND w.max_ts
        LIMIT 1;
    ELSE
        SELECT n.run_id, n.pipeline_id, n.started_at, n.ended_at INTO bad
        FROM new_runs n JOIN old_runs o USING (run_id)
        WHERE (n.started_at IS DISTINCT FROM o.started_at AND n.started_at NOT BETWEEN w.min_ts AND w.max_ts)
           OR (n.ended_at IS DISTINCT FROM o.ended_at AND n.ended_at NOT BETWEEN w.min_ts AND w.max_ts)
        LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'a run of pipeline "%" has a time outside the accepted window',
                        (SELECT p.name FROM smartetl.pipeline p WHERE p.pipeline_id = bad.pipeline_id)
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('Run %s: started_at %s, ended_at %s; the window is now %s to %s.', bad.run_id,
                                  coalesce(bad.started_at::text, 'NULL'), coalesce(bad.ended_at::text, 'NULL'),
                                  w.min_ts, w.max_ts),
                  HINT = 'smartetl.min_timestamp and smartetl.max_future (superuser settings) set the window.';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS run_times_ins ON smartetl.run;
DROP TRIGGER IF EXISTS run_times_upd ON smartetl.run;
CREATE TRIGGER run_times_ins AFTER INSERT ON smartetl.run
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_times();
CREATE TRIGGER run_times_upd AFTER UPDATE ON smartetl.run
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT
    EXECUTE FUNCTION smartetl._run_check_times();

-- the rollup refresh skips times outside the limits
CREATE OR REPLACE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1397572948, k)
    FROM (SELECT DISTINCT (p % 64)::int4 AS k FROM unnest(pipeline_ids) p WHERE p IS NOT NULL ORDER BY 1) s;

    WITH touched AS (
        SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc('hour', t) AS bucket
        FROM unnest(pipeline_ids, times) u(p, t)
        WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
    ), fresh AS (
        SELECT t.pipeline_id, t.bucket,
               count(r.run_id) AS runs,
               count(*) FILTER (WHERE r.status = 'success') AS successes,
               count(*) FILTER (WHERE r.status = 'failed') AS failures,
               count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
               count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE r.status = 'running') AS running,
               count(*) FILTER (WHERE r.attempt > 1) AS retries,
               count(*) FILTER (WHERE r.duration > p.sla) AS sla_breaches,
               smartetl.qsketch_agg(r.duration_s) FILTER (WHERE r.status IN ('success', 'failed'))
                   AS duration,
               sum(r.rows_read)::bigint AS rows_read,
               sum(r.rows_written)::bigint AS rows_written,
               sum(r.bytes)::bigint AS bytes
        FROM touched t
        JOIN smartetl.pipeline p ON p.pipeline_id = t.pipeline_id
        LEFT JOIN smartetl.run r ON r.pipeline_id = t.pipeline_id
             AND r.run_at >= t.bucket AND r.run_at < t.bucket + interval '1 hour'
             AND smartetl._utc_trunc('hour', r.run_at) = t.bucket
        GROUP BY t.pipeline_id, t.bucket
    ), gone AS (
        DELETE FROM smartetl.kpi_hourly h USING fresh f
        WHERE h.pipeline_id = f.pipeline_id AND h.bucket = f.bucket AND f.runs = 0
    )
    INSERT INTO smartetl.kpi_hourly AS h
    SELECT * FROM fresh WHERE runs > 0
    ON CONFLICT (pipeline_id, bucket) DO UPDATE SET
        runs = excluded.runs, successes = excluded.successes, failures = excluded.failures,
        skipped = excluded.skipped, cancelled = excluded.cancelled, running = excluded.running,
        retries = excluded.retries, sla_breaches = excluded.sla_breaches,
        duration = excluded.duration, rows_read = excluded.rows_read,
        rows_written = excluded.rows_written, bytes = excluded.bytes;

    WITH touched AS (
        SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc('day', t) AS bucket
        FROM unnest(pipeline_ids, times) u(p, t)
        WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
    ), fresh AS (
        SELECT t.pipeline_id, t.bucket,
               coalesce(sum(h.runs), 0)::bigint AS runs, sum(h.successes)::bigint AS successes,
               sum(h.failures)::bigint AS failures, sum(h.skipped)::bigint AS skipped,
               sum(h.cancelled)::bigint AS cancelled, sum(h.running)::bigint AS running,
               sum(h.retries)::bigint AS retries, sum(h.sla_breaches)::bigint AS sla_breaches,
               smartetl.qsketch_merge(h.duration) AS duration,
               sum(h.rows_read)::bigint AS rows_read, sum(h.rows_written)::bigint AS rows_written,
               sum(h.bytes)::bigint AS bytes
        FROM touched t
        LEFT JOIN smartetl.kpi_hourly h ON h.pipeline_id = t.pipeline_id
             AND h.bucket >= t.bucket AND h.bucket < t.bucket + interval '1 day'
             AND smartetl._utc_trunc('day', h.bucket) = t.bucket
        GROUP BY t.pipeline_id, t.bucket
    ), gone AS (
        DELETE FROM smartetl.kpi_daily d USING fresh f
        WHERE d.pipeline_id = f.pipeline_id AND d.bucket = f.bucket AND f.runs = 0
    )
    INSERT INTO smartetl.kpi_daily AS d
    SELECT * FROM fresh WHERE runs > 0
    ON CONFLICT (pipeline_id, bucket) DO UPDATE SET
        runs = excluded.runs, successes = excluded.successes, failures = excluded.failures,
        skipped = excluded.skipped, cancelled = excluded.cancelled, running = excluded.running,
        retries = excluded.retries, sla_breaches = excluded.sla_breaches,
        duration = excluded.duration, rows_read = excluded.rows_read,
        rows_written = excluded.rows_written, bytes = excluded.bytes;
END $$;

-- ---- deleting a pipeline takes its rollup rows along ---------------------
CREATE OR REPLACE FUNCTION smartetl._pipeline_delete_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM smartetl.run r USING old_pipelines o WHERE r.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.log_event e USING old_pipelines o WHERE e.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_hourly k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_daily k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    RETURN NULL;
END $$;
-- rollup rows of pipelines deleted before this step
DELETE FROM smartetl.kpi_hourly h WHERE NOT EXISTS (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = h.pipeline_id);
DELETE FROM smartetl.kpi_daily d WHERE NOT EXISTS (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = d.pipeline_id);

-- ---- log partitions: created for writers, dropped by admins --------------
CREATE OR REPLACE FUNCTION smartetl._log_partitions_ensure(from_ts timestamptz, to_ts timestamptz)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w     record;
    month timestamptz;
    part  text;
BEGIN
    SELECT * INTO w FROM smartetl._time_window();
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts > to_ts
       OR from_ts < w.min_ts OR to_ts > w.max_ts THEN
        RAISE EXCEPTION 'log event times % to % are outside the accepted window', from_ts, to_ts
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('The window is now %s to %s.', w.min_ts, w.max_ts),
                  HINT = 'smartetl.min_timestamp and smartetl.max_future (superuser settings) set the window.';
    END IF;
    month := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE month <= to_ts LOOP
        part := 'log_event_' || to_char(month AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass('smartetl.' || part) IS NULL THEN
            -- serialise concurrent creators of the same partition
            PERFORM pg_advisory_xact_lock(hashtext('smartetl.' || part));
            IF to_regclass('smartetl.' || part) IS NULL THEN
                EXECUTE format('CREATE TABLE smartetl.%I PARTITION OF smartetl.log_event '
                               'FOR VALUES FROM (%L) TO (%L)',
                               part, month, month + interval '1 month');
            END IF;
        END IF;
        month := month + interval '1 month';
    END LOOP;
END $$;
CREATE OR REPLACE FUNCTION smartetl.drop_log_partitions(older_than timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass::text AS part,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'smartetl.log_event'::regclass
    LOOP
        IF r.upper <= older_than THEN
            EXECUTE format('DROP TABLE %s', r.part);
            RETURN NEXT r.part;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION smartetl.drop_log_partitions(timestamptz) IS 'retention: drop log_event partitions wholly older than the given time; returns their names';

-- ---- pg_cron sync for a non-superuser admin ------------------------------
CREATE OR REPLACE FUNCTION smartetl._pg_cron_runs(after_runid bigint, OUT next_position bigint, OUT payload text)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cron.job_run_details') IS NULL THEN
        RAISE EXCEPTION 'cron.job_run_details does not exist in this database'
            USING ERRCODE = 'undefined_table',
                  HINT = 'Install pg_cron 1.4 or later here (CREATE EXTENSION pg_cron) or call this in cron.database_name.';
    END IF;
    EXECUTE $q$
        SELECT coalesce(min(d.runid) FILTER (WHERE d.status NOT IN ('succeeded', 'failed')) - 1,
                        max(d.runid), $1),
               string_agg(jsonb_build_object(
                   'pipeline', coalesce(j.jobname, 'job ' || d.jobid),
                   'run_id', d.runid, 'status', d.status,
                   'start', d.start_time, 'end', d.end_time,
                   'error', CASE WHEN d.status = 'failed' THEN d.return_message END,
                   'database', d.database, 'username', d.username, 'command', d.command,
                   'job_pid', d.job_pid, 'return_message', d.return_message)::text, E'\n'
                   ORDER BY d.runid)
        FROM cron.job_run_details d LEFT JOIN cron.job j USING (jobid)
        WHERE d.runid > $1 $q$
    INTO next_position, payload USING coalesce(after_runid, 0);
END $$;
CREATE OR REPLACE FUNCTION smartetl.sync_pg_cron()
RETURNS smartetl.ingest_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    from_runid bigint;
    batch      record;
    result     smartetl.ingest_result;
BEGIN
    -- one import at a time; the import itself is idempotent anyway
    PERFORM pg_advisory_xact_lock(1397572950, 1);
    SELECT position INTO from_runid FROM smartetl.sync_state WHERE source = 'pg_cron';

    -- from the high-water mark: every run after it, which includes the ones
    -- that were still running at the last import
    SELECT * INTO batch FROM smartetl._pg_cron_runs(from_runid);

    IF batch.payload IS NULL THEN
        result := (0, 0, 0, 0);
    ELSE
        result := smartetl.ingest('jsonl', batch.payload, jsonb_build_object(
            'namespace', 'pg_cron', 'source', 'cron.job_run_details',
            'status_map', jsonb_build_object('starting', 'running', 'connecting', 'running',
                                             'sending', 'running')));
    END IF;

    INSERT INTO smartetl.sync_state AS s (source, position, synced_at)
    VALUES ('pg_cron', batch.next_position, now())
    ON CONFLICT (source) DO UPDATE SET position = excluded.position, synced_at = excluded.synced_at;
    RETURN result;
END $$;
COMMENT ON FUNCTION smartetl.sync_pg_cron() IS 'import new and changed rows of cron.job_run_details (every user''s jobs) as runs (namespace pg_cron); safe to call every minute, also concurrently';

-- ---- the report charts only the data's extent ----------------------------
CREATE OR REPLACE FUNCTION smartetl.report_html(from_ts timestamptz, to_ts timestamptz) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- the rollups' range: whole UTC hours covering [from_ts, to_ts)
    h0 timestamptz;
    h1 timestamptz;
    c0 timestamptz;      -- the span of the runs chart (see below)
    c1 timestamptz;
    unit text;           -- bucket of the runs chart: day, week or month
    utc constant text := 'YYYY-MM-DD HH24:MI "UTC"';
    int_fmt constant text := 'FM999,999,999,999,999,990';
    multi_ns boolean;
    s record;
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    rates float8[];
    notes text[];
    n_anomalies bigint;
    n_overdue bigint;
    n_errors bigint;
    head text;
    summary text;
    runs_chart text;
    pipelines text;
    rate_chart text;
    errors text;
    anomalies text;
    hours_chart text;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'invalid report range: % to %', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two finite times, the first before the second, e.g. now() - interval ''30 days'', now().';
    END IF;
    h0 := smartetl._utc_trunc('hour', from_ts);
    h1 := smartetl._utc_trunc('hour', to_ts);
    IF h1 < to_ts THEN
        h1 := h1 + interval '1 hour';
    END IF;
    -- A range far wider than the data (say year 1 to 9999, which anyone
    -- may ask for) would chart one column per empty month, thousands of
    -- them: beyond about three years, chart only the hours that hold runs
    -- (the rollups' first and last in the range; an index lookup each).
    -- Everything else in the report already costs what the data costs.
    c0 := h0;
    c1 := h1;
    IF h1 - h0 > interval '1100 days' THEN
        SELECT coalesce(min(k.bucket), h0), coalesce(max(k.bucket) + interval '1 hour', h1) INTO c0, c1
        FROM smartetl.kpi_hourly k WHERE k.bucket >= h0 AND k.bucket < h1;
    END IF;
    unit := CASE WHEN c1 - c0 <= interval '92 days' THEN 'day'
                 WHEN c1 - c0 <= interval '1100 days' THEN 'week' ELSE 'month' END;

    -- ---- title -----------------------------------------------------------
    head := format(
        '<!DOCTYPE html>' || E'\n' ||
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        '<meta name="generator" content="smartetl %s">'
        '<title>ETL run report: %s to %s</title>' || E'\n' ||
        '<style>'
        ':root{color-scheme:light;--ok:#3b6ea8;--fail:#d9480f;--muted:#5f6b7a;--line:#d8dee6}'
        'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;'
        'margin:0 auto;max-width:1100px;padding:24px;color:#1d2733;background:#fff;line-height:1.4}'
        'h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:0 0 10px;padding-top:8px;border-top:1px solid var(--line)}'
        'h3{font-size:1.05em;margin:14px 0 6px}section{margin:22px 0}'
        '.meta,.note,.empty{color:var(--muted)}.empty{font-style:italic}'
        '.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:0;padding:0}'
        '.tile{box-sizing:border-box;flex:1 1 140px;border:1px solid var(--line);border-radius:6px;padding:10px 16px;margin:0}'
        '.tile dt{font-size:.85em;color:var(--muted)}.tile dd{margin:0;font-size:1.5em;font-weight:600;white-space:nowrap}'
        '.tile.bad dd{color:var(--fail)}'
        'table{border-collapse:collapse;width:100%%;font-size:.92em}'
        'th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}'
        'th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}'
        'td.t{white-space:nowrap}td.msg{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;'
        'font-size:.9em;overflow-wrap:anywhere}td.name{overflow-wrap:anywhere;min-width:13em}'
        '.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:.85em;font-weight:600}'
        '.badge.stale,.badge.bad{background:#fde2d6;color:#9a3412}.badge.fresh{background:#e0ecf8;color:#1e4f85}'
        '.ns{color:var(--muted)}'
        'svg.chart{display:block;width:100%%;max-width:1000px;height:auto;font-size:12px}'
        'svg.chart text{fill:#1d2733}svg.chart .tick{fill:var(--muted);font-size:11px}'
        'svg.chart .axis-label{font-weight:600}svg.chart .grid{stroke:#e6eaef}svg.chart .axis{stroke:#8792a2}'
        'svg.chart .value{fill:var(--muted)}'
        '@media print{body{padding:0}section{break-inside:avoid}}'
        '</style></head>' || E'\n' ||
        '<body><header><h1>ETL run report</h1>'
        '<p class="meta">Runs from <time datetime="%s">%s</time> to <time datetime="%s">%s</time>'
        ' &middot; database %s &middot; generated <time datetime="%s">%s</time> by smartetl %s</p></header>' || E'\n',
        smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), '')),
        to_char(from_ts AT TIME ZONE 'UTC', utc), to_char(to_ts AT TIME ZONE 'UTC', utc),
        to_char(from_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(from_ts AT TIME ZONE 'UTC', utc),
        to_char(to_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(to_ts AT TIME ZONE 'UTC', utc),
        smartetl._html_escape(current_database()),
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
        smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), '')));

    -- ---- headline numbers --------------------------------------------------
    SELECT coalesce(sum(b.runs), 0)::bigint AS runs, coalesce(sum(b.failures), 0)::bigint AS failures,
           sum(b.failures)::float8 / nullif(sum(b.successes) + sum(b.failures), 0) AS failure_rate,
           count(DISTINCT b.pipeline_id) AS pipelines,
           smartetl.qsketch_mean(smartetl.qsketch_merge(b.duration)) AS mean_s,
           sum(b.rows_written)::bigint AS rows_written,
           count(DISTINCT p.namespace) > 1 AS multi_ns
    INTO s FROM smartetl._kpi_buckets(from_ts, to_ts) b LEFT JOIN smartetl.pipeline p USING (pipeline_id);
    multi_ns := s.multi_ns;  -- then pipelines are shown as namespace/name

    summary := format(
        '<section id="summary" aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>'
        '<dl class="tiles">'
        '<div class="tile"><dt>Runs</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failures</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failure rate</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Pipelines</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Mean duration</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Rows written</dt><dd>%s</dd></div>'
        '</dl>%s</section>' || E'\n',
        to_char(s.runs, int_fmt),
        CASE WHEN s.failures > 0 THEN ' bad' ELSE '' END, to_char(s.failures, int_fmt),
        CASE WHEN s.failure_rate > 0.05 THEN ' bad' ELSE '' END,
        coalesce(to_char(s.failure_rate * 100, 'FM990.0') || ' %', '&ndash;'),
        to_char(s.pipelines, int_fmt),
        smartetl._report_duration(s.mean_s),
        coalesce(to_char(s.rows_written, int_fmt), '&ndash;'),
        CASE WHEN s.runs = 0 THEN '<p class="empty">No runs in this range.</p>'
             ELSE format('<p class="note">Counts and durations cover whole UTC hours, %s to %s; '
                         'the failure rate is failed / finished (succeeded or failed) runs; '
                         'durations are those of finished runs.</p>',
                         to_char(h0 AT TIME ZONE 'UTC', utc), to_char(h1 AT TIME ZONE 'UTC', utc)) END);

    -- ---- runs per day (week, month) ---------------------------------------
    IF s.runs = 0 THEN
        runs_chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(CASE unit WHEN 'day' THEN to_char(d, 'YYYY-MM-DD (Dy)')
                                   WHEN 'week' THEN 'week of ' || to_char(d, 'YYYY-MM-DD')
                                   ELSE to_char(d, 'YYYY-MM') END ORDER BY d),
               array_agg(CASE WHEN (rn - 1) % greatest(ceil(cnt / 12.0)::int, 1) = 0
                              THEN to_char(d, CASE unit WHEN 'month' THEN 'YYYY-MM' ELSE 'MM-DD' END) END ORDER BY d),
               array_agg(coalesce(k.runs, 0) ORDER BY d), array_agg(coalesce(k.failures, 0) ORDER BY d)
        INTO labels, ticks, totals, fails
        FROM (SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS cnt
              FROM generate_series(date_trunc(unit, c0 AT TIME ZONE 'UTC'), c1 AT TIME ZONE 'UTC' - interval '1 microsecond',
                                   ('1 ' || unit)::interval) d) g
        LEFT JOIN (SELECT date_trunc(unit, b.bucket AT TIME ZONE 'UTC') AS period,
                          sum(b.runs)::bigint AS runs, sum(b.failures)::bigint AS failures
                   FROM smartetl._kpi_buckets(from_ts, to_ts) b GROUP BY 1) k ON k.period = g.d;
        runs_chart := smartetl._report_columns('chart-runs',
            format('Runs per %s', unit),
            format('Stacked columns: runs per UTC %s from %s to %s, %s runs in all, of which %s failed (failed part on top).',
                   unit, labels[1], labels[array_upper(labels, 1)], to_char(s.runs, int_fmt), to_char(s.failures, int_fmt)),
            format('%s (UTC)', initcap(unit)), 'Runs', labels, ticks, totals, fails);
    END IF;
    runs_chart := format('<section id="runs-per-day" aria-labelledby="runs-per-day-h"><h2 id="runs-per-day-h">Runs per %s</h2>%s</section>' || E'\n',
                         unit, runs_chart);

    -- ---- per pipeline ------------------------------------------------------
    SELECT string_agg(format(
               '<tr><td class="name">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td>'
               '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="t">%s</td><td>%s</td></tr>',
               -- long names wrap after the namespace and at underscores first
               CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(k.namespace) || '/</span><wbr>' ELSE '' END
                   || replace(smartetl._html_escape(k.pipeline), '_', '_<wbr>'),
               to_char(k.runs, int_fmt), to_char(k.failures, int_fmt),
               coalesce(to_char((1 - k.success_rate) * 100, 'FM990.0') || ' %', '&ndash;'),
               smartetl._report_duration(k.mean_duration_s), smartetl._report_duration(k.p95_duration_s),
               coalesce(to_char(k.rows_written, int_fmt), '&ndash;'),
               coalesce(to_char(k.last_success AT TIME ZONE 'UTC', utc), 'never'),
               CASE WHEN k.stale THEN format('<span class="badge stale" title="no success for %s, expected every %s">stale</span>',
                                             smartetl._report_duration(extract(epoch FROM k.freshness_lag)::float8),
                                             smartetl._report_duration(extract(epoch FROM k.expected_interval)::float8))
                    WHEN NOT k.stale THEN '<span class="badge fresh">fresh</span>'
                    ELSE '&ndash;' END),
               '' ORDER BY k.namespace, k.pipeline),
           array_agg(CASE WHEN multi_ns THEN k.namespace || '/' ELSE '' END || k.pipeline
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(1 - k.success_rate ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(CASE WHEN k.success_rate IS NULL THEN 'no finished runs' END
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline)
    INTO pipelines, labels, rates, notes
    FROM smartetl.pipeline_kpi(from_ts, to_ts) k;
    pipelines := format(
        '<section id="pipelines" aria-labelledby="pipelines-h"><h2 id="pipelines-h">Pipelines</h2>%s</section>' || E'\n',
        CASE WHEN pipelines IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             ELSE '<table><thead><tr><th scope="col">Pipeline</th><th scope="col" class="num">Runs</th>'
                  '<th scope="col" class="num">Failures</th><th scope="col" class="num">Failure rate</th>'
                  '<th scope="col" class="num">Mean time</th><th scope="col" class="num">p95 time</th>'
                  '<th scope="col" class="num">Rows written</th><th scope="col">Last success</th>'
                  '<th scope="col">Freshness</th></tr></thead><tbody>' || pipelines || '</tbody></table>'
                  '<p class="note">Execution times of finished runs (p95 within 0.5 %); stale: no success for more than '
                  '1.5 times the pipeline''s expected interval (set, or the median gap of its recent runs).</p>' END);

    -- ---- failure rate per pipeline -----------------------------------------
    rate_chart := format(
        '<section id="failure-rate" aria-labelledby="failure-rate-h"><h2 id="failure-rate-h">Failure rate per pipeline</h2>%s</section>' || E'\n',
        CASE WHEN labels IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             WHEN coalesce((SELECT max(r) FROM unnest(rates) r), 0) = 0
                 THEN '<p class="empty">No failed runs in this range.</p>'
             ELSE smartetl._report_rate_bars('chart-failure-rate', 'Failure rate per pipeline',
                      format('Horizontal bars: failed / finished runs of each of the %s pipelines, highest first; highest %s.',
                             array_length(labels, 1), to_char(rates[1] * 100, 'FM990.0') || ' % (' || labels[1] || ')'),
                      'Failure rate (failed / finished runs)', 'Pipeline', labels, rates, notes) END);

    -- ---- frequent errors ---------------------------------------------------
    SELECT count(*),
           string_agg(format('<tr><td class="num">%s</td><td class="msg">%s</td><td class="num">%s</td>'
                             '<td class="name">%s</td><td class="t">%s</td><td class="t">%s</td></tr>',
                             e.rank, CASE WHEN length(e.template) > 400
                                          THEN smartetl._html_escape(left(e.template, 399)) || '&hellip;'
                                          ELSE smartetl._html_escape(e.template) END,
                             to_char(e.occurrences, int_fmt),
                             coalesce((SELECT string_agg(smartetl._html_escape(pn), ', ' ORDER BY o)
                                       FROM unnest(e.pipeline_names[1:5]) WITH ORDINALITY u(pn, o)), '&ndash;')
                                 || CASE WHEN cardinality(e.pipeline_names) > 5
                                         THEN format(' and %s more', cardinality(e.pipeline_names) - 5) ELSE '' END,
                             to_char(e.first_seen AT TIME ZONE 'UTC', utc), to_char(e.last_seen AT TIME ZONE 'UTC', utc)),
                      '' ORDER BY e.rank) FILTER (WHERE e.rank <= 20)
    INTO n_errors, errors
    FROM (SELECT f.*, row_number() OVER (ORDER BY f.occurrences DESC, f.template_id) AS rank
          FROM smartetl.frequent_errors(from_ts, to_ts) f) e;
    errors := format(
        '<section id="errors" aria-labelledby="errors-h"><h2 id="errors-h">Frequent errors</h2>%s</section>' || E'\n',
        CASE WHEN n_errors = 0 THEN '<p class="empty">No errors in this range.</p>'
             ELSE '<table><thead><tr><th scope="col" class="num">#</th><th scope="col">Error template</th>'
                  '<th scope="col" class="num">Count</th><th scope="col">Pipelines</th>'
                  '<th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead><tbody>'
                  || errors || '</tbody></table>'
                  || format('<p class="note">%s of failed runs'' errors and ERROR-level log events, grouped by template '
                            '(variable parts as &lt;*&gt;).</p>',
                            CASE WHEN n_errors > 20 THEN format('The 20 most frequent of %s templates', n_errors)
                                 ELSE format('%s template%s', n_errors, CASE WHEN n_errors > 1 THEN 's' ELSE '' END) END) END);

    -- ---- anomalies ---------------------------------------------------------
    -- abnormal runs of the range, and pipelines overdue at its end (or now,
    -- for a range that ends in the future, as pipeline_kpi's freshness does)
    WITH a AS (
        SELECT a.*, p.namespace, row_number() OVER (ORDER BY a.run_at DESC, a.run_id, a.kind) AS rn
        FROM smartetl.detect_anomalies(from_ts, to_ts) a JOIN smartetl.pipeline p USING (pipeline_id)
    )
    SELECT count(*),
           string_agg(format('<tr><td class="t">%s</td><td class="name">%s</td><td>%s</td><td class="num">%s</td>'
                             '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             to_char(a.run_at AT TIME ZONE 'UTC', utc),
                             CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(a.namespace) || '/</span>' ELSE '' END
                                 || smartetl._html_escape(a.pipeline),
                             CASE a.kind WHEN 'duration' THEN 'duration' WHEN 'volume' THEN 'rows written'
                                         ELSE smartetl._html_escape(a.kind) END,
                             CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.value)
                                  ELSE to_char(a.value, 'FM999,999,999,999,999,990') END,
                             CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.expected)
                                  ELSE to_char(a.expected, 'FM999,999,999,999,999,990') END,
                             CASE WHEN a.kind = 'duration'
                                  THEN smartetl._report_duration(a.expected_low) || ' &ndash; ' || smartetl._report_duration(a.expected_high)
                                  ELSE to_char(a.expected_low, 'FM999,999,999,999,999,990') || ' &ndash; '
                                       || to_char(a.expected_high, 'FM999,999,999,999,999,990') END,
                             to_char(a.score, 'FMS990.0')), '' ORDER BY a.rn) FILTER (WHERE a.rn <= 50)
    INTO n_anomalies, anomalies FROM a;
    anomalies := CASE WHEN n_anomalies = 0 THEN ''
        ELSE '<h3>Abnormal runs</h3><table><thead><tr><th scope="col">Run at</th><th scope="col">Pipeline</th>'
             '<th scope="col">What</th><th scope="col" class="num">Value</th><th scope="col" class="num">Expected</th>'
             '<th scope="col" class="num">Normal range</th><th scope="col" class="num">Score</th></tr></thead><tbody>'
             || anomalies || '</tbody></table>'
             || format('<p class="note">%s whose duration or rows written are abnormal against earlier runs of the same '
                       'pipeline (robust score beyond &plusmn;4).</p>',
                       CASE WHEN n_anomalies > 50 THEN format('The latest 50 of %s runs', n_anomalies)
                            WHEN n_anomalies = 1 THEN 'One run' ELSE format('%s runs', n_anomalies) END) END;
    WITH o AS (SELECT o.*, p.namespace FROM smartetl.overdue_pipelines(least(to_ts, now())) o JOIN smartetl.pipeline p USING (pipeline_id))
    SELECT count(*),
           anomalies || CASE WHEN count(*) = 0 THEN '' ELSE
               '<h3>Overdue pipelines</h3><table><thead><tr><th scope="col">Pipeline</th><th scope="col">Problem</th>'
               '<th scope="col">Last</th><th scope="col" class="num">Expected every</th>'
               '<th scope="col" class="num">Overdue by</th></tr></thead><tbody>'
               || string_agg(format('<tr><td class="name">%s</td><td>%s</td><td class="t">%s</td><td class="num">%s</td>'
                                    '<td class="num">%s</td></tr>',
                                    CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(o.namespace) || '/</span>' ELSE '' END
                                        || smartetl._html_escape(o.pipeline),
                                    CASE o.kind WHEN 'missing_run' THEN 'no run' WHEN 'freshness' THEN 'no success'
                                                ELSE smartetl._html_escape(o.kind) END,
                                    to_char(o.last_at AT TIME ZONE 'UTC', utc),
                                    smartetl._report_duration(extract(epoch FROM o.expected_interval)::float8),
                                    smartetl._report_duration(extract(epoch FROM o.overdue_by)::float8)),
                             '' ORDER BY o.namespace, o.pipeline, o.kind)
               || '</tbody></table>'
               || format('<p class="note">At %s, no run or no success for more than 1.5 expected intervals.</p>',
                         to_char(least(to_ts, now()) AT TIME ZONE 'UTC', utc)) END
    INTO n_overdue, anomalies FROM o;
    anomalies := format(
        '<section id="anomalies" aria-labelledby="anomalies-h"><h2 id="anomalies-h">Anomalies</h2>%s</section>' || E'\n',
        CASE WHEN n_anomalies + n_overdue = 0 THEN '<p class="empty">No anomalies in this range.</p>'
             ELSE CASE WHEN n_anomalies = 0 THEN '<p class="empty">No abnormal run durations or volumes in this range.</p>' ELSE '' END
                  || anomalies
                  || CASE WHEN n_overdue = 0 THEN '<p class="empty">No overdue pipelines at the end of the range.</p>' ELSE '' END END);

    -- ---- busiest hours -----------------------------------------------------
    IF s.runs = 0 THEN
        hours_chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(format('%s:00-%s:59 UTC', lpad(hr::text, 2, '0'), lpad(hr::text, 2, '0')) ORDER BY hr),
               array_agg(lpad(hr::text, 2, '0') ORDER BY hr),
               array_agg(coalesce(k.runs, 0) ORDER BY hr), array_agg(coalesce(k.failures, 0) ORDER BY hr)
        INTO labels, ticks, totals, fails
        FROM generate_series(0, 23) hr
        LEFT JOIN (SELECT extract(hour FROM h.bucket AT TIME ZONE 'UTC')::int AS hour,
                          sum(h.runs)::bigint AS runs, sum(h.failures)::bigint AS failures
                   FROM smartetl.kpi_hourly h WHERE h.bucket >= h0 AND h.bucket < h1 GROUP BY 1) k ON k.hour = hr;
        hours_chart := smartetl._report_columns('chart-hours', 'Runs by hour of day (UTC)',
            format('Stacked columns: runs started in each hour of the day (UTC) over the range; the busiest hour is %s with %s runs.',
                   (SELECT lpad((i - 1)::text, 2, '0') || ':00' FROM generate_subscripts(totals, 1) i ORDER BY totals[i] DESC, i LIMIT 1),
                   to_char((SELECT max(t) FROM unnest(totals) t), int_fmt)),
            'Hour of day (UTC)', 'Runs', labels, ticks, totals, fails);
    END IF;
    hours_chart := format(
        '<section id="busiest-hours" aria-labelledby="busiest-hours-h"><h2 id="busiest-hours-h">Busiest hours</h2>%s</section>' || E'\n',
        hours_chart);

    RETURN head || summary || runs_chart || pipelines || rate_chart || errors || anomalies || hours_chart
        || '<footer><p class="meta">smartetl report &middot; all times UTC &middot; no scripts, no external resources.</p></footer>'
        || '</body></html>' || E'\n';
END $$;

-- ---- grants ------------------------------------------------------------------
REVOKE ALL ON FUNCTION smartetl._time_window(), smartetl._run_check_times(),
                       smartetl._pg_cron_runs(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._log_partitions_ensure(timestamptz, timestamptz),
                          smartetl._time_window()
    TO smartetl_writer;
-- reading server files also takes superuser or pg_read_server_files (checked in C)
GRANT EXECUTE ON FUNCTION smartetl.ingest_file(text, text, jsonb) TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._pg_cron_runs(bigint) TO smartetl_admin;
-- admins have it through smartetl_writer now
REVOKE EXECUTE ON FUNCTION smartetl.ingest_file(text, text, jsonb) FROM smartetl_admin;

-- ---- HTTP intake and followed files
-- ---- intake: HTTP intake API keys and followed files (issue 14)
-- Plain SQL bringing a 0.1.0 schema to the intake branch's; the same objects as
-- src/sql/26_intake.sql, plus the REVOKE that 90_grants.sql applies at install.
-- API: Private
-- Only a salted SHA-256 of each token is kept.  No role may write this table:
-- create_api_key() and revoke_api_key() write it as the extension's owner
-- after checking the caller; admins may read the columns that are not secret.
CREATE TABLE smartetl.api_key (
    key_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         regrole NOT NULL,
    namespaces   text[],
    salt         bytea NOT NULL,
    hash         bytea NOT NULL,
    created_by   name NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
COMMENT ON TABLE smartetl.api_key IS 'API keys of the HTTP intake: role, allowed namespaces (NULL = all), when created, last used, revoked; the token itself is never stored';

-- API: Public
CREATE FUNCTION smartetl.create_api_key(name text, role regrole, namespaces text[] DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_create_api_key';
COMMENT ON FUNCTION smartetl.create_api_key(text, regrole, text[]) IS 'a new API key for the HTTP intake: returns its token once (only a hash is stored); the key ingests with the rights of role, only into namespaces when given';

-- API: Public
CREATE FUNCTION smartetl.revoke_api_key(name text)
RETURNS void
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'smartetl_revoke_api_key';
COMMENT ON FUNCTION smartetl.revoke_api_key(text) IS 'revoke an API key: its token stops working at once';

-- API: Public
-- A server-side file or glob the intake worker follows.  Like ingest_file(),
-- only for superusers and members of pg_read_server_files (checked by the
-- trigger below); the worker stores the rows as the role that registered it.
CREATE TABLE smartetl.source (
    source_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path           text NOT NULL UNIQUE CHECK (path LIKE '/%'),
    format         text NOT NULL,      -- one of smartetl.ingest_formats(): the trigger's dry run checks it
    options        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    enabled        boolean NOT NULL DEFAULT true,
    owner          regrole NOT NULL DEFAULT current_user::regrole,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_ingest_at timestamptz,
    last_error     text,
    last_error_at  timestamptz
);
COMMENT ON TABLE smartetl.source IS 'server-side files (path or glob) the intake worker follows: format and ingest options ("start": "end" skips existing content); owner = the registering role, whose rights the rows are stored with';

-- API: Public
-- One row per followed file (by device and inode, so a renamed file keeps its
-- place); the position is committed with the rows it covers.
CREATE TABLE smartetl.source_file (
    source_id   bigint NOT NULL REFERENCES smartetl.source ON DELETE CASCADE,
    dev         bigint NOT NULL,
    inode       bigint NOT NULL,
    path        text NOT NULL,
    label       text NOT NULL,
    position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    line_no     bigint NOT NULL DEFAULT 0 CHECK (line_no >= 0),
    head        bytea,
    tail_sha    bytea,
    size        bigint,
    mtime       timestamptz,
    rotated     boolean NOT NULL DEFAULT false,
    done        boolean NOT NULL DEFAULT false,
    last_error  text,
    last_error_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, dev, inode)
);
COMMENT ON TABLE smartetl.source_file IS 'followed files: where each was last seen, bytes and lines stored (position, line_no), its first bytes and a hash of the 4 kB before position (head, tail_sha: to recognise truncation and copies), whether it was rotated away, last error; label = smartetl.log_event.source of its lines';

-- API: Private
-- Registering a file makes the worker read it: the same right as
-- ingest_file(), checked here for every insert and update.
CREATE FUNCTION smartetl._source_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(current_user, 'pg_read_server_files', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to follow a server-side file'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only superusers and members of pg_read_server_files may register files.';
    END IF;
    NEW.owner := current_user::regrole;
    -- unknown or mistyped options fail now rather than in the worker
    BEGIN
        PERFORM smartetl.ingest(NEW.format, '', (NEW.options - 'start') || '{"dry_run": true}');
    EXCEPTION
        WHEN SQLSTATE '02000' THEN      -- no records: the options are fine
            NULL;
        WHEN data_exception THEN        -- the empty input itself (no csv header, ...)
            IF SQLSTATE = '22023' THEN  -- invalid_parameter_value: a bad option
                RAISE;
            END IF;
    END;
    IF NEW.options ? 'start' AND NOT (NEW.options->>'start' IN ('beginning', 'end')) THEN
        RAISE EXCEPTION 'option "start" must be "beginning" or "end"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER source_check BEFORE INSERT OR UPDATE OF path, format, options, enabled, owner
    ON smartetl.source FOR EACH ROW EXECUTE FUNCTION smartetl._source_check();

-- admins register files (the trigger also wants pg_read_server_files) and
-- read keys and file states; no role writes keys or file states directly
GRANT SELECT (key_id, name, role, namespaces, created_by, created_at, revoked_at, last_used_at)
    ON smartetl.api_key TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.create_api_key(text, regrole, text[]),
                          smartetl.revoke_api_key(text)
    TO smartetl_admin;
GRANT SELECT, INSERT, DELETE ON smartetl.source TO smartetl_admin;
GRANT UPDATE (path, format, options, enabled) ON smartetl.source TO smartetl_admin;
GRANT SELECT, DELETE ON smartetl.source_file TO smartetl_admin;

REVOKE ALL ON FUNCTION smartetl.create_api_key(text, regrole, text[]), smartetl.revoke_api_key(text),
                       smartetl._source_check() FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('smartetl.api_key', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.source', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.source_file', '');

-- ---- report_html as section functions over shared formatting helpers (85_report.sql)
-- The output is unchanged; _duration_text is the one duration format
-- (_report_duration and the alert texts use it).
-- API: Private
-- A duration in seconds for people: 0.25 s, 42.5 s, 3 min 07 s, 2 h 05 min,
-- 3 d 04 h; "unknown" when NULL or NaN, "infinite" (after a minus sign when
-- negative) from 10^15 s on.  The one duration format of smartetl: the
-- report passes HTML entities, plain-text messages plain words.
CREATE FUNCTION smartetl._duration_text(seconds double precision, unknown text, infinite text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds IS NULL OR seconds = 'NaN' THEN unknown ELSE
    CASE WHEN seconds < 0 THEN '-' ELSE '' END || CASE
    WHEN abs(seconds) < 0.95 THEN pg_catalog.to_char(abs(seconds), 'FM0.00') || ' s'
    WHEN round(abs(seconds)::numeric, 1) < 60 THEN pg_catalog.to_char(abs(seconds), 'FM990.0') || ' s'
    WHEN round(abs(seconds)) < 3600 THEN
        pg_catalog.format('%s min %s s', round(abs(seconds))::bigint / 60,
                          pg_catalog.lpad((round(abs(seconds))::bigint % 60)::text, 2, '0'))
    WHEN round(abs(seconds) / 60) < 1440 THEN
        pg_catalog.format('%s h %s min', round(abs(seconds) / 60)::bigint / 60,
                          pg_catalog.lpad((round(abs(seconds) / 60)::bigint % 60)::text, 2, '0'))
    WHEN abs(seconds) < 1e15 THEN
        pg_catalog.format('%s d %s h', round(abs(seconds) / 3600)::bigint / 24,
                          pg_catalog.lpad((round(abs(seconds) / 3600)::bigint % 24)::text, 2, '0'))
    ELSE infinite END END;
COMMENT ON FUNCTION smartetl._duration_text(double precision, text, text) IS
'seconds as a short human duration (42.5 s, 3 min 07 s, 2 h 05 min, 3 d 04 h), with the given words for unknown and infinite';

-- API: Private
-- A duration in seconds for people, as HTML text: 0.25 s, 42.5 s, 3 min 07 s,
-- 2 h 05 min, 3 d 04 h (&ndash; when unknown).
CREATE OR REPLACE FUNCTION smartetl._report_duration(seconds double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN smartetl._duration_text(seconds, '&ndash;', '&infin;');
COMMENT ON FUNCTION smartetl._report_duration(double precision) IS
'seconds as a short human duration in HTML (42.5 s, 3 min 07 s, 2 h 05 min, 3 d 04 h; &ndash; when NULL)';

-- API: Private
-- An interval as _report_duration shows it.
CREATE FUNCTION smartetl._report_interval(i interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN smartetl._report_duration(EXTRACT(epoch FROM i)::double precision);
COMMENT ON FUNCTION smartetl._report_interval(interval) IS
'report_html: an interval as a short human duration in HTML';

-- API: Private
-- A count or amount with thousands separators (1,234,567), rounded to a
-- whole number as to_char rounds its argument's type.
CREATE FUNCTION smartetl._report_number(n anyelement) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.to_char($1, 'FM999,999,999,999,999,990') $$;
COMMENT ON FUNCTION smartetl._report_number(anyelement) IS
'report_html: a number with thousands separators, no decimals';

-- API: Private
-- A rate (0..1) as a percentage with one decimal (12.5 %); NULL when NULL.
CREATE FUNCTION smartetl._report_percent(rate double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(rate * 100, 'FM990.0') || ' %';
COMMENT ON FUNCTION smartetl._report_percent(double precision) IS
'report_html: a rate (0..1) as a percentage with one decimal; NULL when NULL';

-- API: Private
-- A time as the report prints it (2024-05-01 13:07 UTC), and as the
-- datetime attribute of <time> (2024-05-01T13:07:00Z).
CREATE FUNCTION smartetl._report_utc(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
COMMENT ON FUNCTION smartetl._report_utc(timestamptz) IS
'report_html: a time in UTC to the minute (2024-05-01 13:07 UTC)';
CREATE FUNCTION smartetl._report_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION smartetl._report_iso(timestamptz) IS
'report_html: a time as ISO 8601 in UTC (2024-05-01T13:07:00Z), for datetime attributes';

-- API: Private
-- A pipeline's name as HTML: "namespace/" first (muted) when the report
-- spans several namespaces; with wrap, long names may break after the
-- namespace and at underscores.
CREATE FUNCTION smartetl._report_pipeline(namespace text, pipeline text, multi_ns boolean,
                                          wrap boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN multi_ns THEN '<span class="ns">' || smartetl._html_escape(namespace) || '/</span>'
                               || CASE WHEN wrap THEN '<wbr>' ELSE '' END
            ELSE '' END
       || CASE WHEN wrap THEN pg_catalog.replace(smartetl._html_escape(pipeline), '_', '_<wbr>')
               ELSE smartetl._html_escape(pipeline) END;
COMMENT ON FUNCTION smartetl._report_pipeline(text, text, boolean, boolean) IS
'report_html: a pipeline name in HTML, with its namespace when several are shown';

-- ---- page blocks ----------------------------------------------------------

-- API: Private
-- One section of the page: <section id> with its <h2> (title is HTML).
CREATE FUNCTION smartetl._report_section(id text, title text, body text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.format('<section id="%s" aria-labelledby="%s-h"><h2 id="%s-h">%s</h2>%s</section>',
                         id, id, id, title, body) || E'\n';
COMMENT ON FUNCTION smartetl._report_section(text, text, text) IS
'report_html: a <section> with its heading (title and body are HTML)';

-- API: Private
-- A table: one header cell per column (HTML), each row of cells (HTML, a
-- two-dimensional array, one row per row) in that order.  A column's class
-- (num, name, t, msg or NULL) styles its cells; num columns have right-
-- aligned headers too.
CREATE FUNCTION smartetl._report_table(headings text[], classes text[], cells text[]) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT '<table><thead><tr>'
           || (SELECT pg_catalog.string_agg(pg_catalog.format('<th scope="col"%s>%s</th>',
                                                               CASE WHEN classes[c] = 'num' THEN ' class="num"' ELSE '' END,
                                                               headings[c]), '' ORDER BY c)
               FROM pg_catalog.generate_subscripts(headings, 1) c)
           || '</tr></thead><tbody>'
           || coalesce((SELECT pg_catalog.string_agg('<tr>' || (
                                   SELECT pg_catalog.string_agg(pg_catalog.format('<td%s>%s</td>',
                                              CASE WHEN classes[c] IS NOT NULL THEN ' class="' || classes[c] || '"' ELSE '' END,
                                              cells[r][c]), '' ORDER BY c)
                                   FROM pg_catalog.generate_subscripts(headings, 1) c) || '</tr>', '' ORDER BY r)
                        FROM pg_catalog.generate_subscripts(cells, 1) r), '')
           || '</tbody></table>';
END;
COMMENT ON FUNCTION smartetl._report_table(text[], text[], text[]) IS
'report_html: an HTML table from column headings, column classes and a two-dimensional array of cells';

-- API: Private
-- The opening of an inline SVG chart: size, accessible title and description.
CREATE FUNCTION smartetl._report_svg_open(chart_id text, w integer, h integer, title text, description text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT pg_catalog.format(
            '<svg class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" '
            'aria-labelledby="%s-title %s-desc" aria-label="%s" xmlns="http://www.w3.org/2000/svg">'
            '<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>',
            e.id, w, h, w, h, e.id, e.id, e.title, e.id, e.title, e.id, smartetl._html_escape(description))
        FROM (SELECT smartetl._html_escape(chart_id) AS id, smartetl._html_escape(title) AS title) e);
COMMENT ON FUNCTION smartetl._report_svg_open(text, integer, integer, text, text) IS
'report_html: the <svg> opening tag of a chart with its <title> and <desc>';

-- API: Private
-- A chart's two axis labels: the x label centred at (x, x_y), the y label
-- turned a quarter left and centred at (y_x, y_mid).
CREATE FUNCTION smartetl._report_axis_labels(x numeric, x_y integer, x_label text,
                                             y_x integer, y_mid numeric, y_label text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.format('<text class="axis-label" x="%s" y="%s" text-anchor="middle">%s</text>'
                         '<text class="axis-label" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>',
                         x, x_y, smartetl._html_escape(x_label), y_x, y_mid, y_x, y_mid, smartetl._html_escape(y_label));
COMMENT ON FUNCTION smartetl._report_axis_labels(numeric, integer, text, integer, numeric, text) IS
'report_html: the x and y axis labels of a chart';

-- API: Private
-- A column chart as inline SVG: one stacked column per label, the failed
-- part of each total in the failure colour on top of the rest.  Labels are
-- raw text (escaped here); tick_labels are the ones printed under the axis
-- (NULL: none under that column).  Every column has a tooltip <title>.
CREATE OR REPLACE FUNCTION smartetl._report_columns(chart_id text, title text, description text,
                                         x_label text, y_label text, labels text[],
                                         tick_labels text[], totals bigint[], failed bigint[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w  constant int := 1000;
    h  constant int := 300;
    ml constant int := 64;   -- room for the y ticks and the y axis label
    mr constant int := 12;
    mt constant int := 30;   -- room for the legend
    mb constant int := 52;   -- room for the x ticks and the x axis label
    pw constant numeric := w - ml - mr;
    ph constant numeric := h - mt - mb;
    n      int := coalesce(array_length(labels, 1), 0);
    top    numeric;
    step   numeric;
    slot   numeric;
    bw     numeric;
    out    text;
BEGIN
    SELECT greatest(max(t), 1) INTO top FROM unnest(totals) t;
    -- a "nice" tick step (1, 2 or 5 x 10^k) giving at most 5 steps
    step := greatest(1, power(10, floor(log(top / 5.0))));
    step := CASE WHEN top / step <= 5 THEN step WHEN top / (2 * step) <= 5 THEN 2 * step
                 WHEN top / (5 * step) <= 5 THEN 5 * step ELSE 10 * step END;
    top := ceil(top / step) * step;
    slot := pw / greatest(n, 1);
    bw := greatest(slot * 0.8, 1);

    out := smartetl._report_svg_open(chart_id, w, h, title, description);
    -- legend
    out := out || format('<g class="legend" aria-hidden="true">'
                         '<rect x="%s" y="8" width="12" height="12" fill="#3b6ea8"/>'
                         '<text x="%s" y="18">succeeded or other</text>'
                         '<rect x="%s" y="8" width="12" height="12" fill="#d9480f"/>'
                         '<text x="%s" y="18">failed</text></g>',
                         w - mr - 210, w - mr - 194, w - mr - 70, w - mr - 54);
    -- y grid lines and ticks
    out := out || (SELECT string_agg(format(
                    '<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>'
                    '<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>',
                    ml, w - mr, y, y, ml - 6, y + 4, smartetl._report_number(v)), '' ORDER BY v)
                   FROM generate_series(0::numeric, top, step) v
                   CROSS JOIN LATERAL (SELECT round(mt + ph - v / top * ph, 1) AS y) yy);
    -- columns: the non-failed part below, the failed part on top
    out := out || coalesce((SELECT string_agg(format(
                    '<g class="col"><title>%s: %s runs, %s failed</title>%s%s</g>',
                    smartetl._html_escape(labels[i]), smartetl._report_number(t), smartetl._report_number(f),
                    CASE WHEN t - f > 0 THEN format('<rect class="bar ok" x="%s" y="%s" width="%s" height="%s" fill="#3b6ea8"/>',
                         x, round(mt + ph - t / top * ph, 2), round(bw, 2), round((t - f) / top * ph, 2)) ELSE '' END,
                    CASE WHEN f > 0 THEN format('<rect class="bar failed" x="%s" y="%s" width="%s" height="%s" fill="#d9480f"/>',
                         x, round(mt + ph - f / top * ph, 2), round(bw, 2), round(f / top * ph, 2)) ELSE '' END),
                    '' ORDER BY i)
                   FROM generate_subscripts(labels, 1) i
                   CROSS JOIN LATERAL (SELECT coalesce(totals[i], 0)::numeric AS t,
                                              least(coalesce(failed[i], 0), coalesce(totals[i], 0))::numeric AS f,
                                              round(ml + (i - 1) * slot + (slot - bw) / 2, 2) AS x) c), '');
    -- x axis, its ticks and the axis labels
    out := out || format('<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>', ml, w - mr, mt + ph, mt + ph);
    out := out || coalesce((SELECT string_agg(format('<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>',
                                                    round(ml + (i - 0.5) * slot, 2), mt + ph + 16,
                                                    smartetl._html_escape(tick_labels[i])), '' ORDER BY i)
                            FROM generate_subscripts(labels, 1) i WHERE tick_labels[i] IS NOT NULL), '');
    out := out || smartetl._report_axis_labels(round(ml + pw / 2, 2), h - 8, x_label,
                                               16, round(mt + ph / 2, 2), y_label);
    RETURN out || '</svg>';
END $$;
COMMENT ON FUNCTION smartetl._report_columns(text, text, text, text, text, text[], text[], bigint[], bigint[]) IS
'report_html: an inline SVG column chart of run counts, failed part stacked on top, with title, description, grid and axis labels';

-- API: Private
-- A horizontal bar chart of rates (0..1) as inline SVG, one bar per label,
-- the value printed after the bar (note: printed instead when the rate is
-- NULL).  Labels are raw text, escaped here and shortened to fit.
CREATE OR REPLACE FUNCTION smartetl._report_rate_bars(chart_id text, title text, description text,
                                           x_label text, y_label text, labels text[],
                                           rates double precision[], notes text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w   constant int := 1000;
    ml  constant int := 230;  -- room for the pipeline names and the y axis label
    mr  constant int := 90;   -- room for the value after the longest bar
    mt  constant int := 10;
    mb  constant int := 48;
    row_h constant int := 22;
    n   int := coalesce(array_length(labels, 1), 0);
    ph  int := greatest(n, 1) * row_h;
    h   int := mt + ph + mb;
    pw  constant numeric := w - ml - mr;
    top numeric;
    out text;
BEGIN
    -- the axis ends at the first of 5 %, 10 %, 20 %, 25 %, 50 %, 100 % above every rate
    SELECT min(c) INTO top FROM unnest('{0.05,0.1,0.2,0.25,0.5,1}'::numeric[]) c
    WHERE c >= (SELECT coalesce(max(r), 0) FROM unnest(rates) r WHERE r <= 1);
    top := coalesce(top, 1);

    out := smartetl._report_svg_open(chart_id, w, h, title, description);
    -- x grid lines and ticks (5 steps)
    out := out || (SELECT string_agg(format(
                    '<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>'
                    '<text class="tick" x="%s" y="%s" text-anchor="middle">%s %%</text>',
                    x, x, mt, mt + ph, x, mt + ph + 16, to_char(v * 100, 'FM990.##')), '' ORDER BY v)
                   FROM generate_series(0::numeric, 5) k
                   CROSS JOIN LATERAL (SELECT top * k / 5 AS v) vv
                   CROSS JOIN LATERAL (SELECT round(ml + v / top * pw, 2) AS x) xx);
    out := out || coalesce((SELECT string_agg(format(
                    '<g class="row"><title>%s: %s</title>'
                    '<text class="label" x="%s" y="%s" text-anchor="end">%s</text>%s'
                    '<text class="value" x="%s" y="%s">%s</text></g>',
                    smartetl._html_escape(labels[i]),
                    coalesce(smartetl._report_percent(r) || ' failed', smartetl._html_escape(notes[i]), 'no data'),
                    ml - 8, y + 15,
                    CASE WHEN length(labels[i]) > 30 THEN smartetl._html_escape(left(labels[i], 29)) || '&hellip;'
                         ELSE smartetl._html_escape(labels[i]) END,
                    CASE WHEN bl > 0 THEN format('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="#d9480f"/>',
                                                 ml, y + 4, bl, row_h - 8) ELSE '' END,
                    ml + bl + 6, y + 15,
                    coalesce(smartetl._report_percent(r), smartetl._html_escape(notes[i]), '')),
                    '' ORDER BY i)
                   FROM generate_subscripts(labels, 1) i
                   CROSS JOIN LATERAL (SELECT rates[i] AS r, mt + (i - 1) * row_h AS y) rr
                   CROSS JOIN LATERAL (SELECT round(least(coalesce(r, 0)::numeric, top) / top * pw, 2) AS bl) bb), '');
    out := out || format('<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>', ml, ml, mt, mt + ph);
    out := out || smartetl._report_axis_labels(round(ml + pw / 2, 2), h - 8, x_label,
                                               14, round(mt + ph / 2.0, 2), y_label);
    RETURN out || '</svg>';
END $$;
COMMENT ON FUNCTION smartetl._report_rate_bars(text, text, text, text, text, text[], double precision[], text[]) IS
'report_html: an inline SVG horizontal bar chart of rates (0..1) with title, description, grid and axis labels';

-- ---- the facts of one report ----------------------------------------------

-- API: Private
CREATE TYPE smartetl._report_range AS (
    from_ts       timestamptz,   -- the range asked for, [from_ts, to_ts)
    to_ts         timestamptz,
    h0            timestamptz,   -- the rollups' range: whole UTC hours covering it
    h1            timestamptz,
    c0            timestamptz,   -- the span of the runs chart
    c1            timestamptz,
    unit          text,          -- the runs chart's bucket: day, week or month
    runs          bigint,        -- headline totals, from the rollups
    failures      bigint,
    failure_rate  double precision,
    pipelines     bigint,
    mean_s        double precision,
    rows_written  bigint,
    multi_ns      boolean        -- several namespaces: names are shown as namespace/name
);
COMMENT ON TYPE smartetl._report_range IS 'report_html: the facts every section of one report shares (smartetl._report_range())';

-- API: Private
-- The facts of the report of [from_ts, to_ts), read once.
CREATE FUNCTION smartetl._report_range(from_ts timestamptz, to_ts timestamptz)
RETURNS smartetl._report_range
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl._report_range;
BEGIN
    r.from_ts := from_ts;
    r.to_ts := to_ts;
    r.h0 := smartetl._utc_trunc('hour', from_ts);
    r.h1 := smartetl._utc_trunc('hour', to_ts);
    IF r.h1 < to_ts THEN
        r.h1 := r.h1 + interval '1 hour';
    END IF;
    -- A range far wider than the data (say year 1 to 9999, which anyone
    -- may ask for) would chart one column per empty month, thousands of
    -- them: beyond about three years, chart only the hours that hold runs
    -- (the rollups' first and last in the range; an index lookup each).
    -- Everything else in the report already costs what the data costs.
    r.c0 := r.h0;
    r.c1 := r.h1;
    IF r.h1 - r.h0 > interval '1100 days' THEN
        SELECT coalesce(min(k.bucket), r.h0), coalesce(max(k.bucket) + interval '1 hour', r.h1) INTO r.c0, r.c1
        FROM smartetl.kpi_hourly k WHERE k.bucket >= r.h0 AND k.bucket < r.h1;
    END IF;
    r.unit := CASE WHEN r.c1 - r.c0 <= interval '92 days' THEN 'day'
                   WHEN r.c1 - r.c0 <= interval '1100 days' THEN 'week' ELSE 'month' END;

    SELECT coalesce(sum(b.runs), 0)::bigint, coalesce(sum(b.failures), 0)::bigint,
           sum(b.failures)::float8 / nullif(sum(b.successes) + sum(b.failures), 0),
           count(DISTINCT b.pipeline_id),
           smartetl.qsketch_mean(smartetl.qsketch_merge(b.duration)),
           sum(b.rows_written)::bigint,
           count(DISTINCT p.namespace) > 1
    INTO r.runs, r.failures, r.failure_rate, r.pipelines, r.mean_s, r.rows_written, r.multi_ns
    FROM smartetl._kpi_buckets(from_ts, to_ts) b LEFT JOIN smartetl.pipeline p USING (pipeline_id);
    RETURN r;
END $$;
COMMENT ON FUNCTION smartetl._report_range(timestamptz, timestamptz) IS
'report_html: the facts of one report (hour-rounded range, runs chart span and unit, headline totals)';

-- ---- sections -------------------------------------------------------------

-- API: Private
-- The document head (title, inline style) and the page header.
CREATE FUNCTION smartetl._report_head(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ext_version text := smartetl._html_escape(coalesce((SELECT extversion FROM pg_extension WHERE extname = 'smartetl'), ''));
BEGIN
    RETURN format(
        '<!DOCTYPE html>' || E'\n' ||
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        '<meta name="generator" content="smartetl %s">'
        '<title>ETL run report: %s to %s</title>' || E'\n' ||
        '<style>'
        ':root{color-scheme:light;--ok:#3b6ea8;--fail:#d9480f;--muted:#5f6b7a;--line:#d8dee6}'
        'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;'
        'margin:0 auto;max-width:1100px;padding:24px;color:#1d2733;background:#fff;line-height:1.4}'
        'h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:0 0 10px;padding-top:8px;border-top:1px solid var(--line)}'
        'h3{font-size:1.05em;margin:14px 0 6px}section{margin:22px 0}'
        '.meta,.note,.empty{color:var(--muted)}.empty{font-style:italic}'
        '.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:0;padding:0}'
        '.tile{box-sizing:border-box;flex:1 1 140px;border:1px solid var(--line);border-radius:6px;padding:10px 16px;margin:0}'
        '.tile dt{font-size:.85em;color:var(--muted)}.tile dd{margin:0;font-size:1.5em;font-weight:600;white-space:nowrap}'
        '.tile.bad dd{color:var(--fail)}'
        'table{border-collapse:collapse;width:100%%;font-size:.92em}'
        'th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}'
        'th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}'
        'td.t{white-space:nowrap}td.msg{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;'
        'font-size:.9em;overflow-wrap:anywhere}td.name{overflow-wrap:anywhere;min-width:13em}'
        '.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:.85em;font-weight:600}'
        '.badge.stale,.badge.bad{background:#fde2d6;color:#9a3412}.badge.fresh{background:#e0ecf8;color:#1e4f85}'
        '.ns{color:var(--muted)}'
        'svg.chart{display:block;width:100%%;max-width:1000px;height:auto;font-size:12px}'
        'svg.chart text{fill:#1d2733}svg.chart .tick{fill:var(--muted);font-size:11px}'
        'svg.chart .axis-label{font-weight:600}svg.chart .grid{stroke:#e6eaef}svg.chart .axis{stroke:#8792a2}'
        'svg.chart .value{fill:var(--muted)}'
        '@media print{body{padding:0}section{break-inside:avoid}}'
        '</style></head>' || E'\n' ||
        '<body><header><h1>ETL run report</h1>'
        '<p class="meta">Runs from <time datetime="%s">%s</time> to <time datetime="%s">%s</time>'
        ' &middot; database %s &middot; generated <time datetime="%s">%s</time> by smartetl %s</p></header>' || E'\n',
        ext_version, smartetl._report_utc(r.from_ts), smartetl._report_utc(r.to_ts),
        smartetl._report_iso(r.from_ts), smartetl._report_utc(r.from_ts),
        smartetl._report_iso(r.to_ts), smartetl._report_utc(r.to_ts),
        smartetl._html_escape(current_database()),
        smartetl._report_iso(now()), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
        ext_version);
END $$;
COMMENT ON FUNCTION smartetl._report_head(smartetl._report_range) IS
'report_html: the document head (inline style) and the page header';

-- API: Private
-- Headline numbers as tiles.
CREATE FUNCTION smartetl._report_summary(r smartetl._report_range) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT smartetl._report_section('summary', 'Summary', format(
        '<dl class="tiles">'
        '<div class="tile"><dt>Runs</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failures</dt><dd>%s</dd></div>'
        '<div class="tile%s"><dt>Failure rate</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Pipelines</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Mean duration</dt><dd>%s</dd></div>'
        '<div class="tile"><dt>Rows written</dt><dd>%s</dd></div>'
        '</dl>%s',
        smartetl._report_number(r.runs),
        CASE WHEN r.failures > 0 THEN ' bad' ELSE '' END, smartetl._report_number(r.failures),
        CASE WHEN r.failure_rate > 0.05 THEN ' bad' ELSE '' END,
        coalesce(smartetl._report_percent(r.failure_rate), '&ndash;'),
        smartetl._report_number(r.pipelines),
        smartetl._report_duration(r.mean_s),
        coalesce(smartetl._report_number(r.rows_written), '&ndash;'),
        CASE WHEN r.runs = 0 THEN '<p class="empty">No runs in this range.</p>'
             ELSE format('<p class="note">Counts and durations cover whole UTC hours, %s to %s; '
                         'the failure rate is failed / finished (succeeded or failed) runs; '
                         'durations are those of finished runs.</p>',
                         smartetl._report_utc(r.h0), smartetl._report_utc(r.h1)) END))
$$;
COMMENT ON FUNCTION smartetl._report_summary(smartetl._report_range) IS
'report_html: the Summary section (headline numbers)';

-- API: Private
-- Runs per day (week or month, by the length of the range), failed on top.
CREATE FUNCTION smartetl._report_runs(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    chart text;
BEGIN
    IF r.runs = 0 THEN
        chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(CASE r.unit WHEN 'day' THEN to_char(d, 'YYYY-MM-DD (Dy)')
                                     WHEN 'week' THEN 'week of ' || to_char(d, 'YYYY-MM-DD')
                                     ELSE to_char(d, 'YYYY-MM') END ORDER BY d),
               array_agg(CASE WHEN (rn - 1) % greatest(ceil(cnt / 12.0)::int, 1) = 0
                              THEN to_char(d, CASE r.unit WHEN 'month' THEN 'YYYY-MM' ELSE 'MM-DD' END) END ORDER BY d),
               array_agg(coalesce(k.runs, 0) ORDER BY d), array_agg(coalesce(k.failures, 0) ORDER BY d)
        INTO labels, ticks, totals, fails
        FROM (SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS cnt
              FROM generate_series(date_trunc(r.unit, r.c0 AT TIME ZONE 'UTC'), r.c1 AT TIME ZONE 'UTC' - interval '1 microsecond',
                                   ('1 ' || r.unit)::interval) d) g
        LEFT JOIN (SELECT date_trunc(r.unit, b.bucket AT TIME ZONE 'UTC') AS period,
                          sum(b.runs)::bigint AS runs, sum(b.failures)::bigint AS failures
                   FROM smartetl._kpi_buckets(r.from_ts, r.to_ts) b GROUP BY 1) k ON k.period = g.d;
        chart := smartetl._report_columns('chart-runs',
            format('Runs per %s', r.unit),
            format('Stacked columns: runs per UTC %s from %s to %s, %s runs in all, of which %s failed (failed part on top).',
                   r.unit, labels[1], labels[array_upper(labels, 1)],
                   smartetl._report_number(r.runs), smartetl._report_number(r.failures)),
            format('%s (UTC)', initcap(r.unit)), 'Runs', labels, ticks, totals, fails);
    END IF;
    RETURN smartetl._report_section('runs-per-day', format('Runs per %s', r.unit), chart);
END $$;
COMMENT ON FUNCTION smartetl._report_runs(smartetl._report_range) IS
'report_html: the Runs per day (week, month) section';

-- API: Private
-- The per-pipeline KPI table and the failure-rate chart: two sections
-- over one pipeline_kpi() call.
CREATE FUNCTION smartetl._report_pipelines(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cells text[];
    labels text[];
    rates float8[];
    notes text[];
BEGIN
    SELECT array_agg(ARRAY[
               smartetl._report_pipeline(k.namespace, k.pipeline, r.multi_ns, wrap => true),
               smartetl._report_number(k.runs), smartetl._report_number(k.failures),
               coalesce(smartetl._report_percent(1 - k.success_rate), '&ndash;'),
               smartetl._report_duration(k.mean_duration_s), smartetl._report_duration(k.p95_duration_s),
               coalesce(smartetl._report_number(k.rows_written), '&ndash;'),
               coalesce(smartetl._report_utc(k.last_success), 'never'),
               CASE WHEN k.stale THEN format('<span class="badge stale" title="no success for %s, expected every %s">stale</span>',
                                             smartetl._report_interval(k.freshness_lag),
                                             smartetl._report_interval(k.expected_interval))
                    WHEN NOT k.stale THEN '<span class="badge fresh">fresh</span>'
                    ELSE '&ndash;' END]
               ORDER BY k.namespace, k.pipeline),
           array_agg(CASE WHEN r.multi_ns THEN k.namespace || '/' ELSE '' END || k.pipeline
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(1 - k.success_rate ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(CASE WHEN k.success_rate IS NULL THEN 'no finished runs' END
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline)
    INTO cells, labels, rates, notes
    FROM smartetl.pipeline_kpi(r.from_ts, r.to_ts) k;

    RETURN smartetl._report_section('pipelines', 'Pipelines',
        CASE WHEN cells IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             ELSE smartetl._report_table(
                      '{Pipeline,Runs,Failures,"Failure rate","Mean time","p95 time","Rows written","Last success",Freshness}',
                      '{name,num,num,num,num,num,num,t,NULL}', cells)
                  || '<p class="note">Execution times of finished runs (p95 within 0.5 %); stale: no success for more than '
                     '1.5 times the pipeline''s expected interval (set, or the median gap of its recent runs).</p>' END)
        || smartetl._report_section('failure-rate', 'Failure rate per pipeline',
        CASE WHEN labels IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             WHEN coalesce((SELECT max(x) FROM unnest(rates) x), 0) = 0
                 THEN '<p class="empty">No failed runs in this range.</p>'
             ELSE smartetl._report_rate_bars('chart-failure-rate', 'Failure rate per pipeline',
                      format('Horizontal bars: failed / finished runs of each of the %s pipelines, highest first; highest %s.',
                             array_length(labels, 1), smartetl._report_percent(rates[1]) || ' (' || labels[1] || ')'),
                      'Failure rate (failed / finished runs)', 'Pipeline', labels, rates, notes) END);
END $$;
COMMENT ON FUNCTION smartetl._report_pipelines(smartetl._report_range) IS
'report_html: the Pipelines (KPI table) and Failure rate per pipeline sections';

-- API: Private
-- The 20 most frequent error templates of the range.
CREATE FUNCTION smartetl._report_errors(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    cells text[];
BEGIN
    SELECT count(*),
           array_agg(ARRAY[
               e.rank::text,
               CASE WHEN length(e.template) > 400 THEN smartetl._html_escape(left(e.template, 399)) || '&hellip;'
                    ELSE smartetl._html_escape(e.template) END,
               smartetl._report_number(e.occurrences),
               coalesce((SELECT string_agg(smartetl._html_escape(pn), ', ' ORDER BY o)
                         FROM unnest(e.pipeline_names[1:5]) WITH ORDINALITY u(pn, o)), '&ndash;')
                   || CASE WHEN cardinality(e.pipeline_names) > 5
                           THEN format(' and %s more', cardinality(e.pipeline_names) - 5) ELSE '' END,
               smartetl._report_utc(e.first_seen), smartetl._report_utc(e.last_seen)]
               ORDER BY e.rank) FILTER (WHERE e.rank <= 20)
    INTO n, cells
    FROM (SELECT f.*, row_number() OVER (ORDER BY f.occurrences DESC, f.template_id) AS rank
          FROM smartetl.frequent_errors(r.from_ts, r.to_ts) f) e;
    RETURN smartetl._report_section('errors', 'Frequent errors',
        CASE WHEN n = 0 THEN '<p class="empty">No errors in this range.</p>'
             ELSE smartetl._report_table('{#,"Error template",Count,Pipelines,"First seen","Last seen"}',
                                         '{num,msg,num,name,t,t}', cells)
                  || format('<p class="note">%s of failed runs'' errors and ERROR-level log events, grouped by template '
                            '(variable parts as &lt;*&gt;).</p>',
                            CASE WHEN n > 20 THEN format('The 20 most frequent of %s templates', n)
                                 ELSE format('%s template%s', n, CASE WHEN n > 1 THEN 's' ELSE '' END) END) END);
END $$;
COMMENT ON FUNCTION smartetl._report_errors(smartetl._report_range) IS
'report_html: the Frequent errors section';

-- API: Private
-- Abnormal runs of the range (the latest 50), and pipelines overdue at its
-- end (or now, for a range that ends in the future, as pipeline_kpi's
-- freshness does).
CREATE FUNCTION smartetl._report_anomalies(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_anomalies bigint;
    n_overdue bigint;
    abnormal text[];
    overdue text[];
    body text := '';
BEGIN
    WITH a AS (
        SELECT a.*, p.namespace, row_number() OVER (ORDER BY a.run_at DESC, a.run_id, a.kind) AS rn
        FROM smartetl.detect_anomalies(r.from_ts, r.to_ts) a JOIN smartetl.pipeline p USING (pipeline_id)
    )
    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_utc(a.run_at),
               smartetl._report_pipeline(a.namespace, a.pipeline, r.multi_ns),
               CASE a.kind WHEN 'duration' THEN 'duration' WHEN 'volume' THEN 'rows written'
                           ELSE smartetl._html_escape(a.kind) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.value)
                    ELSE smartetl._report_number(a.value) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.expected)
                    ELSE smartetl._report_number(a.expected) END,
               CASE WHEN a.kind = 'duration'
                    THEN smartetl._report_duration(a.expected_low) || ' &ndash; ' || smartetl._report_duration(a.expected_high)
                    ELSE smartetl._report_number(a.expected_low) || ' &ndash; ' || smartetl._report_number(a.expected_high) END,
               to_char(a.score, 'FMS990.0')] ORDER BY a.rn) FILTER (WHERE a.rn <= 50)
    INTO n_anomalies, abnormal FROM a;
    IF n_anomalies > 0 THEN
        body := '<h3>Abnormal runs</h3>'
            || smartetl._report_table('{"Run at",Pipeline,What,Value,Expected,"Normal range",Score}',
                                      '{t,name,NULL,num,num,num,num}', abnormal)
            || format('<p class="note">%s whose duration or rows written are abnormal against earlier runs of the same '
                      'pipeline (robust score beyond &plusmn;4).</p>',
                      CASE WHEN n_anomalies > 50 THEN format('The latest 50 of %s runs', n_anomalies)
                           WHEN n_anomalies = 1 THEN 'One run' ELSE format('%s runs', n_anomalies) END);
    END IF;

    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_pipeline(p.namespace, o.pipeline, r.multi_ns),
               CASE o.kind WHEN 'missing_run' THEN 'no run' WHEN 'freshness' THEN 'no success'
                           ELSE smartetl._html_escape(o.kind) END,
               smartetl._report_utc(o.last_at),
               smartetl._report_interval(o.expected_interval),
               smartetl._report_interval(o.overdue_by)] ORDER BY p.namespace, o.pipeline, o.kind)
    INTO n_overdue, overdue
    FROM smartetl.overdue_pipelines(least(r.to_ts, now())) o JOIN smartetl.pipeline p USING (pipeline_id);
    IF n_overdue > 0 THEN
        body := body || '<h3>Overdue pipelines</h3>'
            || smartetl._report_table('{Pipeline,Problem,Last,"Expected every","Overdue by"}',
                                      '{name,NULL,t,num,num}', overdue)
            || format('<p class="note">At %s, no run or no success for more than 1.5 expected intervals.</p>',
                      smartetl._report_utc(least(r.to_ts, now())));
    END IF;

    RETURN smartetl._report_section('anomalies', 'Anomalies',
        CASE WHEN n_anomalies + n_overdue = 0 THEN '<p class="empty">No anomalies in this range.</p>'
             ELSE CASE WHEN n_anomalies = 0 THEN '<p class="empty">No abnormal run durations or volumes in this range.</p>' ELSE '' END
                  || body
                  || CASE WHEN n_overdue = 0 THEN '<p class="empty">No overdue pipelines at the end of the range.</p>' ELSE '' END END);
END $$;
COMMENT ON FUNCTION smartetl._report_anomalies(smartetl._report_range) IS
'report_html: the Anomalies section (abnormal runs, overdue pipelines)';

-- API: Private
-- Runs by UTC hour of the day over the range.
CREATE FUNCTION smartetl._report_hours(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    labels text[];
    ticks text[];
    totals bigint[];
    fails bigint[];
    chart text;
BEGIN
    IF r.runs = 0 THEN
        chart := '<p class="empty">No runs in this range.</p>';
    ELSE
        SELECT array_agg(format('%s:00-%s:59 UTC', lpad(hr::text, 2, '0'), lpad(hr::text, 2, '0')) ORDER BY hr),
               array_agg(lpad(hr::text, 2, '0') ORDER BY hr),
               array_agg(coalesce(k.runs, 0) ORDER BY hr), array_agg(coalesce(k.failures, 0) ORDER BY hr)
        INTO labels, ticks, totals, fails
        FROM generate_series(0, 23) hr
        LEFT JOIN (SELECT extract(hour FROM h.bucket AT TIME ZONE 'UTC')::int AS hour,
                          sum(h.runs)::bigint AS runs, sum(h.failures)::bigint AS failures
                   FROM smartetl.kpi_hourly h WHERE h.bucket >= r.h0 AND h.bucket < r.h1 GROUP BY 1) k ON k.hour = hr;
        chart := smartetl._report_columns('chart-hours', 'Runs by hour of day (UTC)',
            format('Stacked columns: runs started in each hour of the day (UTC) over the range; the busiest hour is %s with %s runs.',
                   (SELECT lpad((i - 1)::text, 2, '0') || ':00' FROM generate_subscripts(totals, 1) i ORDER BY totals[i] DESC, i LIMIT 1),
                   smartetl._report_number((SELECT max(t) FROM unnest(totals) t))),
            'Hour of day (UTC)', 'Runs', labels, ticks, totals, fails);
    END IF;
    RETURN smartetl._report_section('busiest-hours', 'Busiest hours', chart);
END $$;
COMMENT ON FUNCTION smartetl._report_hours(smartetl._report_range) IS
'report_html: the Busiest hours section';

-- ---- the report -----------------------------------------------------------

-- API: Public
CREATE OR REPLACE FUNCTION smartetl.report_html(from_ts timestamptz, to_ts timestamptz) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r smartetl._report_range;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'invalid report range: % to %', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two finite times, the first before the second, e.g. now() - interval ''30 days'', now().';
    END IF;
    r := smartetl._report_range(from_ts, to_ts);
    RETURN smartetl._report_head(r) || smartetl._report_summary(r) || smartetl._report_runs(r)
        || smartetl._report_pipelines(r) || smartetl._report_errors(r) || smartetl._report_anomalies(r)
        || smartetl._report_hours(r)
        || '<footer><p class="meta">smartetl report &middot; all times UTC &middot; no scripts, no external resources.</p></footer>'
        || '</body></html>' || E'\n';
END $$;
COMMENT ON FUNCTION smartetl.report_html(timestamptz, timestamptz) IS
'a self-contained HTML report (inline CSS and SVG, no script, no external assets) of the runs in [from, to): headline numbers, runs per day, per-pipeline KPIs (pipeline_kpi), failure rate per pipeline, frequent errors, anomalies and overdue pipelines, busiest UTC hours; database text is HTML-escaped';

REVOKE ALL ON FUNCTION smartetl._duration_text(double precision, text, text), smartetl._report_interval(interval),
                       smartetl._report_number(anyelement), smartetl._report_percent(double precision),
                       smartetl._report_utc(timestamptz), smartetl._report_iso(timestamptz),
                       smartetl._report_pipeline(text, text, boolean, boolean),
                       smartetl._report_section(text, text, text), smartetl._report_table(text[], text[], text[]),
                       smartetl._report_svg_open(text, integer, integer, text, text),
                       smartetl._report_axis_labels(numeric, integer, text, integer, numeric, text),
                       smartetl._report_range(timestamptz, timestamptz),
                       smartetl._report_head(smartetl._report_range), smartetl._report_summary(smartetl._report_range),
                       smartetl._report_runs(smartetl._report_range), smartetl._report_pipelines(smartetl._report_range),
                       smartetl._report_errors(smartetl._report_range), smartetl._report_anomalies(smartetl._report_range),
                       smartetl._report_hours(smartetl._report_range)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._duration_text(double precision, text, text), smartetl._report_interval(interval),
                          smartetl._report_number(anyelement), smartetl._report_percent(double precision),
                          smartetl._report_utc(timestamptz), smartetl._report_iso(timestamptz),
                          smartetl._report_pipeline(text, text, boolean, boolean),
                          smartetl._report_section(text, text, text), smartetl._report_table(text[], text[], text[]),
                          smartetl._report_svg_open(text, integer, integer, text, text),
                          smartetl._report_axis_labels(numeric, integer, text, integer, numeric, text),
                          smartetl._report_range(timestamptz, timestamptz),
                          smartetl._report_head(smartetl._report_range), smartetl._report_summary(smartetl._report_range),
                          smartetl._report_runs(smartetl._report_range), smartetl._report_pipelines(smartetl._report_range),
                          smartetl._report_errors(smartetl._report_range), smartetl._report_anomalies(smartetl._report_range),
                          smartetl._report_hours(smartetl._report_range)
    TO smartetl_reader;

-- ---- advisory lock keys, the staleness factor and the rollup columns defined once
-- advisory locks by purpose (07_locks.sql; the keys are in src/locks.h)
-- API: Private
CREATE FUNCTION smartetl._xact_lock(purpose text, item integer DEFAULT 0) RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_xact_lock';
COMMENT ON FUNCTION smartetl._xact_lock(text, integer) IS
'take smartetl''s transaction-level advisory lock for a purpose (smartetl._lock_keys()), waiting for it';

-- API: Private
CREATE FUNCTION smartetl._try_xact_lock(purpose text, item integer DEFAULT 0) RETURNS boolean
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_try_xact_lock';
COMMENT ON FUNCTION smartetl._try_xact_lock(text, integer) IS
'take smartetl''s transaction-level advisory lock for a purpose if it is free; false without waiting otherwise';

-- API: Private
-- Ingest's per-pipeline locks, each once and in order (no deadlock).
CREATE FUNCTION smartetl._lock_pipelines(pipeline_ids bigint[]) RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_lock_pipelines';
COMMENT ON FUNCTION smartetl._lock_pipelines(bigint[]) IS
'take the "pipeline" advisory locks of these pipelines, as ingest does, in ascending order';

-- API: Private
CREATE FUNCTION smartetl._lock_keys()
RETURNS TABLE (purpose text, class integer, first_sub integer, items integer, description text)
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartetl_lock_keys';
COMMENT ON FUNCTION smartetl._lock_keys() IS
'smartetl''s advisory locks (src/locks.h): pg_locks shows one as classid = class, objid = the sub-key, objsubid = 2; items NULL = any sub-key';

-- the staleness factor (60_kpi.sql)
-- API: Private
-- A pipeline is stale, and overdue, when its last success (or run) is
-- older than this many expected intervals: pipeline_kpi's and the
-- freshness view's "stale", overdue_pipelines, the anomalies view and the
-- report all read it here.
CREATE FUNCTION smartetl._stale_factor() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1.5;
COMMENT ON FUNCTION smartetl._stale_factor() IS
'how many expected intervals without a success (or a run) make a pipeline stale or overdue (1.5)';

-- the rollup columns and the statements written from them (50_rollup.sql)
-- API: Private
-- The rollup columns, defined once: every column of kpi_hourly and
-- kpi_daily after (pipeline_id, bucket), in table order, and how a bucket's
-- runs make it.  Expressions are SQL over r, a run (a row of smartetl.run,
-- or of ingest's batch of new runs, which has the same column names), and
-- p, its pipeline:
--   count   the runs for which condition holds (all runs: NULL)
--   sum     the sum of value (NULL when every value is)
--   sketch  smartetl.qsketch_agg(value) of the runs for which condition holds
-- A new rollup column: add it to both tables (50_rollup.sql) and here;
-- _kpi_rollup_sql() writes every statement that fills the rollups
-- (smartetl._kpi_refresh and the bulk path, src/kpi/rollup.c) from this list,
-- and sql/definitions.sql checks the list against the tables.
CREATE FUNCTION smartetl._kpi_rollup_columns(OUT name text, OUT kind text, OUT value text, OUT condition text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $def$
    VALUES ('runs',         'count',  NULL,                             NULL),
           ('successes',    'count',  NULL,                             $c$r.status = 'success'$c$),
           ('failures',     'count',  NULL,                             $c$r.status = 'failed'$c$),
           ('skipped',      'count',  NULL,                             $c$r.status = 'skipped'$c$),
           ('cancelled',    'count',  NULL,                             $c$r.status = 'cancelled'$c$),
           ('running',      'count',  NULL,                             $c$r.status = 'running'$c$),
           ('retries',      'count',  NULL,                             $c$r.attempt > 1$c$),
           ('sla_breaches', 'count',  NULL,                             $c$r.duration > p.sla$c$),
           ('duration',     'sketch', $c$date_part('epoch', r.duration)$c$, $c$r.status IN ('success', 'failed')$c$),
           ('rows_read',    'sum',    $c$r.rows_read$c$,                 NULL),
           ('rows_written', 'sum',    $c$r.rows_written$c$,              NULL),
           ('bytes',        'sum',    $c$r.bytes$c$,                     NULL)
$def$;
COMMENT ON FUNCTION smartetl._kpi_rollup_columns() IS
'the KPI rollup columns (kpi_hourly, kpi_daily) and how a bucket''s runs make each: the one definition _kpi_rollup_sql() writes its statements from';

-- API: Private
-- The statements that fill the rollups, written from _kpi_rollup_columns():
--   refresh_hourly  recompute the hours of the (pipeline_ids, times) pairs
--                   (the arguments of _kpi_refresh, whose body this is) from
--                   smartetl.run, deleting buckets left without runs
--   refresh_daily   recompute the days of the same pairs from kpi_hourly
--   add_hourly, add_daily
--                   add the new runs of relation `source` (ingest's batch;
--                   runs that are all new) to their buckets: counts and sums
--                   add, sketches merge
-- The refreshes join on both the time range (index scans for a few
-- buckets) and the bucket equality (a hash join for a bulk load's many).
-- Times outside the absolute limits of smartetl.run (run_time_limits) are
-- skipped: no run can be in their buckets, and bucket + 1 hour could
-- overflow at the ends of the timestamp range (a run stored before the
-- limits existed must not make every later change of its pipeline fail).
CREATE FUNCTION smartetl._kpi_rollup_sql(step text, source text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;        -- the column names
    from_runs text;   -- each column from the runs r of a bucket
    merged text;      -- each column from the hourly rows h of a day
    replaced text;    -- ON CONFLICT: the new value
    added text;       -- ON CONFLICT: the stored value k plus the new one
    unit text;
BEGIN
    SELECT string_agg(c.name, ', ' ORDER BY c.ord),
           string_agg(CASE c.kind
                          WHEN 'count' THEN 'count(r.status)'
                          WHEN 'sum' THEN 'sum(' || c.value || ')'
                          WHEN 'sketch' THEN 'smartetl.qsketch_agg(' || c.value || ')' END
                      || coalesce(' FILTER (WHERE ' || c.condition || ')', '')
                      || CASE c.kind WHEN 'sum' THEN '::bigint' ELSE '' END
                      || ' AS ' || c.name, ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN 'coalesce(sum(h.%1$s), 0)::bigint AS %1$s'
                                         WHEN 'sum' THEN 'sum(h.%1$s)::bigint AS %1$s'
                                         WHEN 'sketch' THEN 'smartetl.qsketch_merge(h.%1$s) AS %1$s' END,
                             c.name), ', ' ORDER BY c.ord),
           string_agg(format('%1$s = excluded.%1$s', c.name), ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN '%1$s = k.%1$s + excluded.%1$s'
                                         WHEN 'sum' THEN '%1$s = CASE WHEN k.%1$s IS NULL AND excluded.%1$s IS NULL THEN NULL '
                                                         'ELSE coalesce(k.%1$s, 0) + coalesce(excluded.%1$s, 0) END'
                                         WHEN 'sketch' THEN '%1$s = smartetl.qsketch_combine(k.%1$s, excluded.%1$s)' END,
                             c.name), ', ' ORDER BY c.ord)
    INTO cols, from_runs, merged, replaced, added
    FROM smartetl._kpi_rollup_columns() WITH ORDINALITY c(name, kind, value, condition, ord);

    unit := CASE WHEN step IN ('refresh_hourly', 'add_hourly') THEN 'hour' ELSE 'day' END;
    CASE step
    WHEN 'refresh_hourly', 'refresh_daily' THEN
        RETURN format($q$
WITH touched AS (
    SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc(%1$L, t) AS bucket
    FROM unnest(pipeline_ids, times) u(p, t)
    WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
), fresh AS (
    SELECT t.pipeline_id, t.bucket, %2$s
    FROM touched t
    %3$s
    GROUP BY t.pipeline_id, t.bucket
), gone AS (
    DELETE FROM smartetl.%4$I k USING fresh f
    WHERE k.pipeline_id = f.pipeline_id AND k.bucket = f.bucket AND f.runs = 0
)
INSERT INTO smartetl.%4$I AS k (pipeline_id, bucket, %5$s)
SELECT pipeline_id, bucket, %5$s FROM fresh WHERE runs > 0
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            unit,
            CASE unit WHEN 'hour' THEN from_runs ELSE merged END,
            CASE unit
            WHEN 'hour' THEN
                'JOIN smartetl.pipeline p ON p.pipeline_id = t.pipeline_id '
                'LEFT JOIN smartetl.run r ON r.pipeline_id = t.pipeline_id '
                'AND r.run_at >= t.bucket AND r.run_at < t.bucket + interval ''1 hour'' '
                'AND smartetl._utc_trunc(''hour'', r.run_at) = t.bucket'
            ELSE
                'LEFT JOIN smartetl.kpi_hourly h ON h.pipeline_id = t.pipeline_id '
                'AND h.bucket >= t.bucket AND h.bucket < t.bucket + interval ''1 day'' '
                'AND smartetl._utc_trunc(''day'', h.bucket) = t.bucket' END,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' ELSE 'kpi_daily' END, cols, replaced);
    WHEN 'add_hourly', 'add_daily' THEN
        RETURN format($q$
INSERT INTO smartetl.%1$I AS k (pipeline_id, bucket, %2$s)
SELECT p.pipeline_id, smartetl._utc_trunc(%3$L, coalesce(r.started_at, r.ended_at)) AS bucket, %4$s
FROM %5$I r JOIN smartetl.pipeline p
  ON p.namespace OPERATOR(pg_catalog.=) r.namespace AND p.name OPERATOR(pg_catalog.=) r.pipeline
WHERE coalesce(r.started_at, r.ended_at) IS NOT NULL
GROUP BY 1, 2
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' ELSE 'kpi_daily' END, cols, unit, from_runs, source, added);
    ELSE
        RAISE EXCEPTION 'unknown rollup step "%"', step USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;
COMMENT ON FUNCTION smartetl._kpi_rollup_sql(text, text) IS
'the SQL of one step filling the KPI rollups (refresh_hourly, refresh_daily, add_hourly, add_daily), written from _kpi_rollup_columns()';

-- API: Private
-- smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]):
-- recompute the rollups of the given (pipeline, time) pairs.  Takes the
-- ingest locks of those pipelines first, so that of two transactions
-- changing one pipeline the later recomputes after the earlier committed.
-- Every call is planned for its own key count (plan_cache_mode below), with
-- memory enough to sort a bulk load's keys without spilling.  Its two
-- statements are written by _kpi_rollup_sql() here, when the extension is
-- created (the upgrade script does the same), so they are static SQL whose
-- parse trees plpgsql keeps: a statement trigger pays only the planning.
DO $do$
BEGIN
    EXECUTE pg_catalog.format($create$
CREATE OR REPLACE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $body$
BEGIN
    PERFORM smartetl._lock_pipelines(pipeline_ids);
%s;
%s;
END $body$$create$, smartetl._kpi_rollup_sql('refresh_hourly'), smartetl._kpi_rollup_sql('refresh_daily'));
END $do$;

-- Functions whose one change is a lock or factor written by name instead of
-- by number: the same one-line change applied to the definition in place
-- (each must match once, or the update stops).
DO $$
DECLARE
    f record;
    def text;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('smartetl.template_compact()', 'pg_try_advisory_xact_lock(1397572949, 2)',
         'smartetl._try_xact_lock(''template_compact'')'),
        ('smartetl._log_partitions_ensure(timestamptz, timestamptz)', 'pg_advisory_xact_lock(hashtext(''smartetl.'' || part))',
         'smartetl._xact_lock(''log_partition'', hashtext(''smartetl.'' || part))'),
        ('smartetl.sync_pg_cron()', 'pg_advisory_xact_lock(1397572950, 1)', 'smartetl._xact_lock(''pg_cron_sync'')'),
        ('smartetl.evaluate_alerts()', 'pg_advisory_xact_lock(1397572948, 1000)', 'smartetl._xact_lock(''alert_evaluation'')'),
        ('smartetl.pipeline_kpi(timestamptz, timestamptz)', 'lag.v > ei.expected * 1.5',
         'lag.v > ei.expected * smartetl._stale_factor()'),
        ('smartetl.overdue_pipelines(timestamptz)', 'e.expected * 1.5', 'e.expected * smartetl._stale_factor()')
        ) v(fn, old, new)
    LOOP
        def := pg_get_functiondef(f.fn::regprocedure);
        IF strpos(def, f.old) = 0 THEN
            RAISE EXCEPTION 'upgrade: % no longer contains "%"', f.fn, f.old;
        END IF;
        EXECUTE replace(def, f.old, f.new);
    END LOOP;
END $$;
-- API: Public
CREATE OR REPLACE VIEW smartetl.anomalies AS
SELECT a.kind, a.pipeline_id, a.pipeline, a.run_id, a.run_at AS at, a.value, a.expected,
       a.expected_low, a.expected_high, a.score, a.baseline
FROM smartetl.detect_anomalies(now() - interval '168 hours', now()) a
UNION ALL
SELECT o.kind, o.pipeline_id, o.pipeline, NULL, o.last_at,
       extract(epoch FROM now() - o.last_at), extract(epoch FROM o.expected_interval),
       NULL, extract(epoch FROM o.expected_interval * smartetl._stale_factor()), NULL, 'expected_interval'
FROM smartetl.overdue_pipelines(now()) o;
-- API: Public
-- A pipeline that never succeeded counts from its first run.
CREATE OR REPLACE VIEW smartetl.freshness AS
SELECT p.pipeline_id, p.namespace, p.name AS pipeline, lr.first_run, lr.last_run, ls.last_success,
       e.expected_interval,
       extract(epoch FROM now() - coalesce(ls.last_success, lr.first_run)) AS lag_s,
       now() - coalesce(ls.last_success, lr.first_run) > e.expected_interval * smartetl._stale_factor() AS stale
FROM smartetl.pipeline p
CROSS JOIN LATERAL (SELECT min(r.run_at) AS first_run, max(r.run_at) AS last_run FROM smartetl.run r
                    WHERE r.pipeline_id = p.pipeline_id) lr
CROSS JOIN LATERAL (SELECT max(coalesce(r.ended_at, r.run_at)) AS last_success FROM smartetl.run r
                    WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success') ls
CROSS JOIN LATERAL (SELECT smartetl._expected_interval(p.pipeline_id, now()) AS expected_interval) e
WHERE lr.last_run IS NOT NULL;
-- the report's notes print the factor
-- API: Private
-- The per-pipeline KPI table and the failure-rate chart: two sections
-- over one pipeline_kpi() call.
CREATE OR REPLACE FUNCTION smartetl._report_pipelines(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cells text[];
    labels text[];
    rates float8[];
    notes text[];
BEGIN
    SELECT array_agg(ARRAY[
               smartetl._report_pipeline(k.namespace, k.pipeline, r.multi_ns, wrap => true),
               smartetl._report_number(k.runs), smartetl._report_number(k.failures),
               coalesce(smartetl._report_percent(1 - k.success_rate), '&ndash;'),
               smartetl._report_duration(k.mean_duration_s), smartetl._report_duration(k.p95_duration_s),
               coalesce(smartetl._report_number(k.rows_written), '&ndash;'),
               coalesce(smartetl._report_utc(k.last_success), 'never'),
               CASE WHEN k.stale THEN format('<span class="badge stale" title="no success for %s, expected every %s">stale</span>',
                                             smartetl._report_interval(k.freshness_lag),
                                             smartetl._report_interval(k.expected_interval))
                    WHEN NOT k.stale THEN '<span class="badge fresh">fresh</span>'
                    ELSE '&ndash;' END]
               ORDER BY k.namespace, k.pipeline),
           array_agg(CASE WHEN r.multi_ns THEN k.namespace || '/' ELSE '' END || k.pipeline
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(1 - k.success_rate ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline),
           array_agg(CASE WHEN k.success_rate IS NULL THEN 'no finished runs' END
                     ORDER BY 1 - k.success_rate DESC NULLS LAST, k.namespace, k.pipeline)
    INTO cells, labels, rates, notes
    FROM smartetl.pipeline_kpi(r.from_ts, r.to_ts) k;

    RETURN smartetl._report_section('pipelines', 'Pipelines',
        CASE WHEN cells IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             ELSE smartetl._report_table(
                      '{Pipeline,Runs,Failures,"Failure rate","Mean time","p95 time","Rows written","Last success",Freshness}',
                      '{name,num,num,num,num,num,num,t,NULL}', cells)
                  || format('<p class="note">Execution times of finished runs (p95 within 0.5 %%); stale: no success for more than '
                            '%s times the pipeline''s expected interval (set, or the median gap of its recent runs).</p>',
                            smartetl._stale_factor()) END)
        || smartetl._report_section('failure-rate', 'Failure rate per pipeline',
        CASE WHEN labels IS NULL THEN '<p class="empty">No pipeline ran in this range.</p>'
             WHEN coalesce((SELECT max(x) FROM unnest(rates) x), 0) = 0
                 THEN '<p class="empty">No failed runs in this range.</p>'
             ELSE smartetl._report_rate_bars('chart-failure-rate', 'Failure rate per pipeline',
                      format('Horizontal bars: failed / finished runs of each of the %s pipelines, highest first; highest %s.',
                             array_length(labels, 1), smartetl._report_percent(rates[1]) || ' (' || labels[1] || ')'),
                      'Failure rate (failed / finished runs)', 'Pipeline', labels, rates, notes) END);
END $$;
-- API: Private
-- Abnormal runs of the range (the latest 50), and pipelines overdue at its
-- end (or now, for a range that ends in the future, as pipeline_kpi's
-- freshness does).
CREATE OR REPLACE FUNCTION smartetl._report_anomalies(r smartetl._report_range) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_anomalies bigint;
    n_overdue bigint;
    abnormal text[];
    overdue text[];
    body text := '';
BEGIN
    WITH a AS (
        SELECT a.*, p.namespace, row_number() OVER (ORDER BY a.run_at DESC, a.run_id, a.kind) AS rn
        FROM smartetl.detect_anomalies(r.from_ts, r.to_ts) a JOIN smartetl.pipeline p USING (pipeline_id)
    )
    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_utc(a.run_at),
               smartetl._report_pipeline(a.namespace, a.pipeline, r.multi_ns),
               CASE a.kind WHEN 'duration' THEN 'duration' WHEN 'volume' THEN 'rows written'
                           ELSE smartetl._html_escape(a.kind) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.value)
                    ELSE smartetl._report_number(a.value) END,
               CASE WHEN a.kind = 'duration' THEN smartetl._report_duration(a.expected)
                    ELSE smartetl._report_number(a.expected) END,
               CASE WHEN a.kind = 'duration'
                    THEN smartetl._report_duration(a.expected_low) || ' &ndash; ' || smartetl._report_duration(a.expected_high)
                    ELSE smartetl._report_number(a.expected_low) || ' &ndash; ' || smartetl._report_number(a.expected_high) END,
               to_char(a.score, 'FMS990.0')] ORDER BY a.rn) FILTER (WHERE a.rn <= 50)
    INTO n_anomalies, abnormal FROM a;
    IF n_anomalies > 0 THEN
        body := '<h3>Abnormal runs</h3>'
            || smartetl._report_table('{"Run at",Pipeline,What,Value,Expected,"Normal range",Score}',
                                      '{t,name,NULL,num,num,num,num}', abnormal)
            || format('<p class="note">%s whose duration or rows written are abnormal against earlier runs of the same '
                      'pipeline (robust score beyond &plusmn;4).</p>',
                      CASE WHEN n_anomalies > 50 THEN format('The latest 50 of %s runs', n_anomalies)
                           WHEN n_anomalies = 1 THEN 'One run' ELSE format('%s runs', n_anomalies) END);
    END IF;

    SELECT count(*),
           array_agg(ARRAY[
               smartetl._report_pipeline(p.namespace, o.pipeline, r.multi_ns),
               CASE o.kind WHEN 'missing_run' THEN 'no run' WHEN 'freshness' THEN 'no success'
                           ELSE smartetl._html_escape(o.kind) END,
               smartetl._report_utc(o.last_at),
               smartetl._report_interval(o.expected_interval),
               smartetl._report_interval(o.overdue_by)] ORDER BY p.namespace, o.pipeline, o.kind)
    INTO n_overdue, overdue
    FROM smartetl.overdue_pipelines(least(r.to_ts, now())) o JOIN smartetl.pipeline p USING (pipeline_id);
    IF n_overdue > 0 THEN
        body := body || '<h3>Overdue pipelines</h3>'
            || smartetl._report_table('{Pipeline,Problem,Last,"Expected every","Overdue by"}',
                                      '{name,NULL,t,num,num}', overdue)
            || format('<p class="note">At %s, no run or no success for more than %s expected intervals.</p>',
                      smartetl._report_utc(least(r.to_ts, now())), smartetl._stale_factor());
    END IF;

    RETURN smartetl._report_section('anomalies', 'Anomalies',
        CASE WHEN n_anomalies + n_overdue = 0 THEN '<p class="empty">No anomalies in this range.</p>'
             ELSE CASE WHEN n_anomalies = 0 THEN '<p class="empty">No abnormal run durations or volumes in this range.</p>' ELSE '' END
                  || body
                  || CASE WHEN n_overdue = 0 THEN '<p class="empty">No overdue pipelines at the end of the range.</p>' ELSE '' END END);
END $$;
REVOKE ALL ON FUNCTION smartetl._xact_lock(text, integer), smartetl._try_xact_lock(text, integer),
                       smartetl._lock_pipelines(bigint[]), smartetl._lock_keys(), smartetl._stale_factor(),
                       smartetl._kpi_rollup_columns(), smartetl._kpi_rollup_sql(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._lock_keys(), smartetl._stale_factor() TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._kpi_rollup_columns(), smartetl._kpi_rollup_sql(text, text) TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._xact_lock(text, integer) TO smartetl_admin;

-- ---- ingest formats: one table (src/ingest/formats.c), shown by ingest_formats()
CREATE FUNCTION smartetl.ingest_formats()
RETURNS TABLE (format text, description text, options text[], default_namespace text)
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartetl_ingest_formats';
COMMENT ON FUNCTION smartetl.ingest_formats() IS 'the formats smartetl.ingest and ingest_file read: what each is, the option keys it accepts, the namespace of the pipelines it creates by default';
COMMENT ON FUNCTION smartetl.ingest(text, text, jsonb) IS 'parse a payload in one of the formats of smartetl.ingest_formats() into runs or log events; idempotent; options->>''on_error'' = ''quarantine'' keeps bad rows in smartetl.ingest_reject';
REVOKE ALL ON FUNCTION smartetl.ingest_formats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.ingest_formats() TO smartetl_reader;

-- ---- on-call: pipeline schedules and deadlines (src/alert/cron.c) ----------
ALTER TABLE smartetl.pipeline ADD COLUMN schedule text;
ALTER TABLE smartetl.pipeline ADD COLUMN schedule_timezone text;
ALTER TABLE smartetl.pipeline ADD COLUMN deadline interval CHECK (deadline > interval '0');
COMMENT ON COLUMN smartetl.pipeline.schedule IS 'when the pipeline is scheduled to start: a 5-field cron expression (minute hour day-of-month month day-of-week) or @daily, @hourly ...; checked when written';
COMMENT ON COLUMN smartetl.pipeline.schedule_timezone IS 'the time zone of schedule (a pg_timezone_names name; NULL means UTC)';
COMMENT ON COLUMN smartetl.pipeline.deadline IS 'how long after each scheduled start a successful run must have finished (rule kind deadline)';
-- API: Public
CREATE FUNCTION smartetl.cron_next(schedule text, after timestamptz DEFAULT now(), timezone text DEFAULT 'UTC')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'smartetl_cron_next' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.cron_next(text, timestamptz, text) IS 'the first time a 5-field cron schedule runs after "after", in a time zone (wall-clock times; a time skipped by a DST change runs as timestamp AT TIME ZONE reads it, a repeated one once; every-hour schedules run every real hour); NULL when never within ten years';

-- API: Private
-- The latest time a schedule ran at or before "at" (NULL when never within ten years).
CREATE FUNCTION smartetl._cron_prev(schedule text, at timestamptz, timezone text DEFAULT 'UTC')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'smartetl_cron_prev' LANGUAGE C STABLE PARALLEL SAFE;

-- API: Private
-- Raise invalid_parameter_value unless the schedule parses and the zone exists.
CREATE FUNCTION smartetl._cron_check(schedule text, timezone text) RETURNS void
AS 'MODULE_PATHNAME', 'smartetl_cron_check' LANGUAGE C STABLE PARALLEL SAFE;

-- API: Private
-- Whether a schedule parses (pg_cron's "30 seconds" does not).
CREATE FUNCTION smartetl._cron_valid(schedule text) RETURNS boolean
AS 'MODULE_PATHNAME', 'smartetl_cron_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- API: Private
-- A pipeline's schedule and zone are checked when written, so that a
-- typo fails at UPDATE rather than silently never alerting.
CREATE FUNCTION smartetl._pipeline_schedule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._cron_check(NEW.schedule, NEW.schedule_timezone);
    RETURN NEW;
END $$;
CREATE TRIGGER pipeline_schedule_check BEFORE INSERT OR UPDATE OF schedule, schedule_timezone ON smartetl.pipeline
    FOR EACH ROW WHEN (NEW.schedule IS NOT NULL OR NEW.schedule_timezone IS NOT NULL)
    EXECUTE FUNCTION smartetl._pipeline_schedule_check();
-- a new schedule or deadline may move the next deadline: the worker recomputes it
CREATE TRIGGER pipeline_schedule_wake AFTER UPDATE OF schedule, schedule_timezone, deadline ON smartetl.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_alert_wake();
REVOKE ALL ON FUNCTION smartetl.cron_next(text, timestamptz, text), smartetl._cron_prev(text, timestamptz, text),
                       smartetl._cron_check(text, text), smartetl._cron_valid(text),
                       smartetl._pipeline_schedule_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.cron_next(text, timestamptz, text),
                          smartetl._cron_prev(text, timestamptz, text)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._cron_check(text, text), smartetl._cron_valid(text) TO smartetl_writer;

-- ---- on-call: the rule kind deadline, one registry of rule kinds, the next due time for the worker
-- the kinds are checked against smartetl.alert_rule_kinds() by alert_rule_check
ALTER TABLE smartetl.alert_rule DROP CONSTRAINT alert_rule_kind_check;
CREATE FUNCTION smartetl.alert_rule_kinds()
RETURNS TABLE (kind text, evaluated_every interval, takes_query boolean, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('run_failed', interval '0', false,
            'the latest finished run of a pipeline failed (once its retries are exhausted)'),
           ('consecutive_failures', interval '0', false,
            'at least threshold (default 3) runs of a pipeline failed in a row'),
           ('duration_anomaly', interval '5 minutes', false,
            'the latest successful run took abnormally long or short (robust score above threshold, default 4)'),
           ('volume_anomaly', interval '5 minutes', false,
            'the latest successful run wrote an abnormal number of rows (robust score above threshold, default 4)'),
           ('freshness', interval '0', false,
            'no run, or no success, for longer than the interval the pipeline usually keeps'),
           ('deadline', interval '0', false,
            'no successful run finished since a scheduled start whose deadline passed (pipeline schedule and deadline)'),
           ('risk', interval '5 minutes', false,
            'the predicted risk of failure within a day is above threshold (default 0.5)'),
           ('model_drift', interval '5 minutes', false,
            'the champion risk model drifted (PSI above threshold, default 0.25) or lost accuracy'),
           ('sql', interval '0', true,
            'query, a read-only SELECT of (pipeline, value), run as smartetl_reader; fires above threshold')
$$;
COMMENT ON FUNCTION smartetl.alert_rule_kinds() IS 'the alert rule kinds: how often each is evaluated at most, whether it takes a query, what it fires on';

CREATE OR REPLACE FUNCTION smartetl._rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
    bad text;
BEGIN
    IF NEW.kind IS NULL
       OR NOT EXISTS (SELECT 1 FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
        RAISE EXCEPTION 'unknown kind % for alert rule "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rule kinds are ' || (SELECT regexp_replace(string_agg(x.kind, ', '), ', ([^,]*)$', ' and \1') FROM smartetl.alert_rule_kinds() x) || '.';
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
    IF (SELECT x.takes_query FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
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
    ELSIF r.kind = 'deadline' THEN
        -- the latest deadline that passed with no success finished since its
        -- scheduled start, whether the run failed, still runs or never started
        RETURN QUERY
        SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
               smartetl._run_annotations(
                   format('%s missed its %s deadline', ds.pipeline,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
                   format('scheduled %s %s (%s), a successful run was due by %s; %s',
                          to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                          ds.schedule_timezone, ds.schedule,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                          CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                    AND ds.last_run_status IS DISTINCT FROM 'running'
                               THEN 'no run started since'
                               WHEN ds.last_run_status = 'running'
                               THEN format('the run started at %s is still running',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                               ELSE format('the run started at %s ended %s',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                           ds.last_run_status) END),
                   CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
                   ds.deadline_at, ds.pipeline_id)
               || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
        FROM smartetl.deadline_status(now()) ds
        WHERE ds.missed;
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
    PERFORM smartetl._xact_lock('alert_evaluation');
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        -- costly kinds run at most every 5 minutes (anomaly scoring rebuilds
        -- 120 days of baselines; risk scores every pipeline: evaluated_every
        -- in smartetl.alert_rule_kinds()), and a sql rule
        -- that ran out of time waits until retry_at
        IF EXISTS (SELECT 1 FROM smartetl.alert_rule_state s
                   WHERE s.rule_name = r.name
                     AND (s.evaluated_at > now() - (SELECT k.evaluated_every FROM smartetl.alert_rule_kinds() k
                                                    WHERE k.kind = r.kind)
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

CREATE FUNCTION smartetl.deadline_status(at timestamptz DEFAULT now())
RETURNS TABLE (pipeline_id bigint, namespace text, pipeline text, schedule text, schedule_timezone text,
               deadline interval, scheduled_at timestamptz, deadline_at timestamptz,
               last_success_at timestamptz, last_run_id bigint, last_run_status smartetl.run_status,
               last_run_at timestamptz, missed boolean, next_deadline_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.namespace, p.name, p.schedule, z.tz, p.deadline,
           d.scheduled_at, d.scheduled_at + p.deadline, s.finished_at, l.run_id, l.status, l.run_at,
           d.scheduled_at IS NOT NULL AND (s.finished_at IS NULL OR s.finished_at < d.scheduled_at),
           smartetl.cron_next(p.schedule, at - p.deadline, z.tz) + p.deadline
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT coalesce(p.schedule_timezone, 'UTC') AS tz) z
    CROSS JOIN LATERAL (SELECT smartetl._cron_prev(p.schedule, at - p.deadline, z.tz) AS scheduled_at) d
    -- the latest successes by start; the one that finished last counts
    LEFT JOIN LATERAL (SELECT max(f.fin) FILTER (WHERE f.fin <= at) AS finished_at
                       FROM (SELECT coalesce(r.ended_at, r.started_at + r.duration, r.run_at) AS fin
                             FROM smartetl.run r
                             WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success' AND r.run_at <= at
                             ORDER BY r.run_at DESC LIMIT 5) f) s ON true
    LEFT JOIN LATERAL (SELECT r.run_id, r.status, r.run_at FROM smartetl.run r
                       WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at
                       ORDER BY r.run_at DESC LIMIT 1) l ON true
    WHERE p.schedule IS NOT NULL AND p.deadline IS NOT NULL
$$;

COMMENT ON FUNCTION smartetl.deadline_status(timestamptz) IS 'per pipeline with a schedule and a deadline: the latest scheduled start whose deadline passed by "at", whether it was missed (no success finished since that start), the latest run, the next deadline';
CREATE FUNCTION smartetl.sync_airflow_schedules(dags jsonb, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ns text := coalesce(options->>'namespace', 'airflow');
    default_tz text := coalesce(options->>'timezone', 'UTC');
    dl interval := (options->>'deadline')::interval;
    d jsonb;
    sched text;
    tz text;
    changed integer := 0;
    n integer;
BEGIN
    IF jsonb_typeof(options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM smartetl._cron_check(NULL, default_tz);
    FOR d IN SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(dags->'dags') = 'array' THEN dags->'dags'
                                                     WHEN jsonb_typeof(dags) = 'array' THEN dags
                                                     ELSE jsonb_build_array(dags) END) e
    LOOP
        IF jsonb_typeof(d) <> 'object' OR nullif(d->>'dag_id', '') IS NULL THEN
            RAISE EXCEPTION 'invalid Airflow DAG: %', left(d::text, 200)
                USING ERRCODE = 'invalid_text_representation',
                      DETAIL = 'Each DAG needs a dag_id (GET /api/v1/dags returns {"dags": [...]}).';
        END IF;
        sched := CASE WHEN jsonb_typeof(d->'schedule_interval') = 'object'
                      THEN CASE WHEN d->'schedule_interval'->>'__type' = 'CronExpression'
                                THEN d->'schedule_interval'->>'value' END
                      WHEN jsonb_typeof(d->'schedule_interval') = 'string' THEN d->>'schedule_interval'
                      ELSE d->>'timetable_summary' END;
        IF NOT coalesce(smartetl._cron_valid(sched), false) OR coalesce((d->>'is_paused')::boolean, false)
           OR NOT coalesce((d->>'is_active')::boolean, true) THEN
            sched := NULL;
        END IF;
        tz := coalesce(substring(d->>'timezone' FROM '^Timezone\(''([^'']+)''\)$'), nullif(d->>'timezone', ''), default_tz);
        BEGIN
            PERFORM smartetl._cron_check(NULL, tz);
        EXCEPTION WHEN invalid_parameter_value THEN
            tz := default_tz;
        END;
        PERFORM smartetl._pipeline_ensure(ns, d->>'dag_id');
        UPDATE smartetl.pipeline p
        SET schedule = sched, schedule_timezone = CASE WHEN sched IS NOT NULL THEN tz END,
            deadline = coalesce(p.deadline, dl)
        WHERE p.namespace = ns AND p.name = d->>'dag_id'
          AND (p.schedule IS DISTINCT FROM sched
               OR p.schedule_timezone IS DISTINCT FROM CASE WHEN sched IS NOT NULL THEN tz END
               OR p.deadline IS DISTINCT FROM coalesce(p.deadline, dl));
        GET DIAGNOSTICS n = ROW_COUNT;
        changed := changed + n;
    END LOOP;
    RETURN changed;
END $$;
COMMENT ON FUNCTION smartetl.sync_airflow_schedules(jsonb, jsonb) IS 'set pipeline schedules from Airflow''s GET /api/v1/dags response (cron schedule_interval or timetable_summary, DAG timezone); options namespace (default airflow), timezone (default UTC), deadline; returns the pipelines changed';
CREATE FUNCTION smartetl._pg_cron_jobs()
RETURNS TABLE (pipeline text, schedule text, active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE 'SELECT coalesce(j.jobname::text, ''job '' || j.jobid), j.schedule::text, j.active FROM cron.job j';
END $$;

CREATE OR REPLACE FUNCTION smartetl.sync_pg_cron()
RETURNS smartetl.ingest_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    from_runid bigint;
    batch      record;
    result     smartetl.ingest_result;
    job        record;
    sched      text;
    tz         text := coalesce(nullif(current_setting('cron.timezone', true), ''), 'GMT');
BEGIN
    -- one import at a time; the import itself is idempotent anyway
    PERFORM smartetl._xact_lock('pg_cron_sync');
    SELECT position INTO from_runid FROM smartetl.sync_state WHERE source = 'pg_cron';

    -- from the high-water mark: every run after it, which includes the ones
    -- that were still running at the last import
    SELECT * INTO batch FROM smartetl._pg_cron_runs(from_runid);

    IF batch.payload IS NULL THEN
        result := (0, 0, 0, 0);
    ELSE
        result := smartetl.ingest('jsonl', batch.payload, jsonb_build_object(
            'namespace', 'pg_cron', 'source', 'cron.job_run_details',
            'status_map', jsonb_build_object('starting', 'running', 'connecting', 'running',
                                             'sending', 'running')));
    END IF;

    INSERT INTO smartetl.sync_state AS s (source, position, synced_at)
    VALUES ('pg_cron', batch.next_position, now())
    ON CONFLICT (source) DO UPDATE SET position = excluded.position, synced_at = excluded.synced_at;

    -- each job's schedule, in pg_cron's cron.timezone (GMT unless set), so a
    -- deadline rule notices a job that never starts; jobs pg_cron runs every
    -- few seconds, or inactive ones, have none
    FOR job IN SELECT * FROM smartetl._pg_cron_jobs() LOOP
        sched := CASE WHEN job.active AND smartetl._cron_valid(job.schedule) THEN job.schedule END;
        PERFORM smartetl._pipeline_ensure('pg_cron', job.pipeline);
        UPDATE smartetl.pipeline p SET schedule = sched, schedule_timezone = CASE WHEN sched IS NOT NULL THEN tz END
        WHERE p.namespace = 'pg_cron' AND p.name = job.pipeline
          AND (p.schedule IS DISTINCT FROM sched
               OR p.schedule_timezone IS DISTINCT FROM CASE WHEN sched IS NOT NULL THEN tz END);
    END LOOP;
    RETURN result;
END $$;
COMMENT ON FUNCTION smartetl.sync_pg_cron() IS 'import new and changed rows of cron.job_run_details (every user''s jobs) as runs (namespace pg_cron), and each job''s schedule (cron.job.schedule in cron.timezone) as its pipeline''s; safe to call every minute, also concurrently';
CREATE FUNCTION smartetl.next_alert_due(after timestamptz DEFAULT now()) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(x.t) FROM (
        SELECT ds.next_deadline_at AS t
        FROM smartetl.deadline_status(after) ds
        WHERE EXISTS (SELECT 1 FROM smartetl.alert_rule r WHERE r.enabled AND r.kind = 'deadline')
        UNION ALL
        SELECT CASE WHEN st.last_notified_at IS NULL THEN g.first_pending + r.group_wait
                    WHEN g.changed THEN st.last_notified_at + r.group_interval
                    WHEN g.any_firing THEN least(st.last_notified_at + r.repeat_interval,
                                                 coalesce(st.am_posted_at, st.last_notified_at) + interval '1 minute') END
        FROM (SELECT a.group_key, min(a.rule_name) AS rule_name,
                     min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT a.silenced
                                               AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending,
                     bool_or((a.state = 'firing' AND NOT a.silenced AND a.notified_state IS DISTINCT FROM 'firing')
                             OR (a.state = 'resolved' AND a.notified_state = 'firing')) AS changed,
                     bool_or(a.state = 'firing' AND NOT a.silenced) AS any_firing
              FROM smartetl.alert a
              WHERE a.state = 'firing' OR a.notified_state = 'firing'
              GROUP BY a.group_key) g
        JOIN smartetl.alert_rule r ON r.name = g.rule_name
        LEFT JOIN smartetl.alert_group st ON st.group_key = g.group_key
        UNION ALL
        SELECT s.starts_at FROM smartetl.silence s
        UNION ALL
        SELECT s.ends_at FROM smartetl.silence s
    ) x
    WHERE x.t > after
$$;
COMMENT ON FUNCTION smartetl.next_alert_due(timestamptz) IS 'the next time after "after" at which an evaluation is due by the clock (a deadline, group_wait, group_interval, repeat_interval, a silence starting or ending); the alert worker wakes then';
REVOKE ALL ON FUNCTION smartetl.alert_rule_kinds(), smartetl.deadline_status(timestamptz),
                       smartetl.next_alert_due(timestamptz), smartetl.sync_airflow_schedules(jsonb, jsonb),
                       smartetl._pg_cron_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.alert_rule_kinds(), smartetl.deadline_status(timestamptz) TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.next_alert_due(timestamptz), smartetl.sync_airflow_schedules(jsonb, jsonb),
                          smartetl._pg_cron_jobs()
    TO smartetl_admin;

-- ---- on-call: retries, inhibition; alert and rule columns for windows, acknowledgement and escalation
ALTER TABLE smartetl.alert_rule ADD COLUMN after_tries integer CHECK (after_tries >= 1);
-- (no default while adding: a default recorded as the column's "missing value" would differ from a fresh install)
ALTER TABLE smartetl.alert_rule ADD COLUMN inhibit text CHECK (inhibit IN ('off', 'children', 'lineage'));
UPDATE smartetl.alert_rule SET inhibit = 'lineage';
ALTER TABLE smartetl.alert_rule ALTER COLUMN inhibit SET DEFAULT 'lineage', ALTER COLUMN inhibit SET NOT NULL;
ALTER TABLE smartetl.alert_rule ADD COLUMN escalation_policy text;
ALTER TABLE smartetl.alert ADD COLUMN inhibited_by bigint;
ALTER TABLE smartetl.alert ADD COLUMN muted_by text;
ALTER TABLE smartetl.alert ADD COLUMN acked_by text;
ALTER TABLE smartetl.alert ADD COLUMN acked_at timestamptz;
ALTER TABLE smartetl.alert ADD COLUMN ack_comment text;
ALTER TABLE smartetl.alert ADD COLUMN assignee text;
ALTER TABLE smartetl.alert ADD COLUMN snoozed_until timestamptz;
ALTER TABLE smartetl.alert ADD COLUMN escalation_level integer;
UPDATE smartetl.alert SET escalation_level = 0;
ALTER TABLE smartetl.alert ALTER COLUMN escalation_level SET DEFAULT 0, ALTER COLUMN escalation_level SET NOT NULL;
ALTER TABLE smartetl.alert ADD COLUMN escalated_at timestamptz;
ALTER TABLE smartetl.alert ADD COLUMN notified_at timestamptz;
COMMENT ON COLUMN smartetl.alert_rule.after_tries IS 'run_failed, consecutive_failures: a failed try that will be retried (Airflow up_for_retry, attrs.will_retry, attempt < attrs.max_attempts, or a later attempt of the same run) fires only from this try on; NULL: only once retries are exhausted';
COMMENT ON COLUMN smartetl.alert_rule.inhibit IS 'what this rule''s firing alerts mute: off; children (alerts on pipelines whose runs are children of the alert''s pipeline''s runs); lineage (children, and pipelines downstream by OpenLineage datasets)';
COMMENT ON COLUMN smartetl.alert_rule.escalation_policy IS 'the smartetl.escalation_policy whose steps notify further channels while an alert stays unacknowledged';
COMMENT ON COLUMN smartetl.alert.silenced IS 'muted by a silence (smartetl.silence) now';
COMMENT ON COLUMN smartetl.alert.inhibited_by IS 'the firing alert on a parent or upstream pipeline that mutes this one (rule option inhibit)';
COMMENT ON COLUMN smartetl.alert.muted_by IS 'the maintenance window that mutes this alert now';
COMMENT ON COLUMN smartetl.alert.acked_by IS 'who acknowledged the alert (smartetl.ack); stops its escalation';
COMMENT ON COLUMN smartetl.alert.snoozed_until IS 'no notification about this alert before this time (smartetl.snooze)';
COMMENT ON COLUMN smartetl.alert.escalation_level IS 'how many escalation steps have notified so far';
COMMENT ON COLUMN smartetl.alert.notified_at IS 'when the alert was first notified as firing (escalation counts from then)';
CREATE FUNCTION smartetl._alert_muted(a smartetl.alert) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN a.silenced OR a.inhibited_by IS NOT NULL OR a.muted_by IS NOT NULL
       OR coalesce(a.snoozed_until > pg_catalog.now(), false);

CREATE FUNCTION smartetl._alert_held(a smartetl.alert) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN a.muted_by IS NOT NULL;

CREATE FUNCTION smartetl._alert_extras(a smartetl.alert) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'acked_by', a.acked_by, 'acked_at', a.acked_at, 'ack_comment', a.ack_comment, 'assignee', a.assignee,
        'snoozed_until', CASE WHEN a.snoozed_until > now() THEN a.snoozed_until END,
        'escalation_level', nullif(a.escalation_level, 0),
        'muted_alerts', (SELECT jsonb_agg(jsonb_build_object('alert_id', m.alert_id, 'rule', m.rule_name,
                                                             'pipeline', m.labels->>'pipeline',
                                                             'summary', m.annotations->>'summary')
                                          ORDER BY m.labels->>'pipeline', m.alert_id)
                         FROM smartetl.alert m WHERE m.inhibited_by = a.alert_id AND m.state = 'firing')))
$$;

CREATE FUNCTION smartetl._run_retry(p_run_id bigint, OUT tries integer, OUT will_retry boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT greatest(r.attempt,
                    (SELECT count(*) FROM smartetl.run o
                     WHERE o.pipeline_id = r.pipeline_id AND o.status = 'failed' AND o.run_at <= r.run_at
                       AND (o.external_id = r.external_id OR o.parent_run_id = r.parent_run_id)))::integer,
           coalesce(lower(r.attrs->>'airflow_state') = 'up_for_retry', false)
           OR coalesce(lower(r.attrs->>'will_retry') = 'true', false)
           OR coalesce(r.attrs->>'max_attempts' ~ '^[0-9]{1,9}$' AND r.attempt < (r.attrs->>'max_attempts')::integer, false)
           OR EXISTS (SELECT 1 FROM smartetl.run n
                      WHERE n.pipeline_id = r.pipeline_id AND n.run_id <> r.run_id
                        AND ((n.external_id = r.external_id AND n.attempt > r.attempt)
                             OR (n.parent_run_id = r.parent_run_id AND n.run_at > r.run_at)))
    FROM smartetl.run r WHERE r.run_id = p_run_id
$$;

CREATE OR REPLACE FUNCTION smartetl._alert_rows(n jsonb)
RETURNS TABLE (ord bigint, status text, resolved boolean, summary text, description text,
               namespace text, pipeline text, host text, severity text, since text,
               starts_at text, ends_at text, value text, error_template text, error text,
               history jsonb, labels jsonb, annotations jsonb, fingerprint text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.ord, x.st, x.st = 'resolved',
           coalesce(nullif(btrim(x.ann->>'summary'), ''),
                    concat_ws(' ', coalesce(nullif(x.l->>'pipeline', ''), nullif(n->'group_labels'->>'pipeline', '')),
                              CASE WHEN n->'rule'->>'kind' = 'run_failed' THEN 'failed' END),
                    nullif(n->'rule'->>'name', ''), 'alert'),
           -- on-call additions (smartetl._alert_extras): acknowledgement, assignee, inhibited alerts
           nullif(concat_ws(E'\n', nullif(btrim(x.ann->>'description'), ''),
                            'Acknowledged by ' || nullif(x.ann->>'acked_by', '')
                                || coalesce(' at ' || smartetl._alert_human_ts(x.ann->>'acked_at'), '')
                                || coalesce(': ' || nullif(x.ann->>'ack_comment', ''), ''),
                            'Assigned to ' || nullif(x.ann->>'assignee', ''),
                            'Escalation step ' || (x.ann->>'escalation_level'),
                            (SELECT format('Also muted (downstream of this one): %s alert%s: %s', count(*),
                                           CASE WHEN count(*) = 1 THEN '' ELSE 's' END,
                                           string_agg(coalesce(m->>'pipeline', '?'), ', ' ORDER BY o))
                             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.ann->'muted_alerts') = 'array'
                                                            THEN x.ann->'muted_alerts' ELSE '[]' END)
                                  WITH ORDINALITY AS e(m, o)
                             HAVING count(*) > 0)), ''),
           coalesce(nullif(x.l->>'namespace', ''), nullif(n->'group_labels'->>'namespace', '')),
           coalesce(nullif(x.l->>'pipeline', ''), nullif(n->'group_labels'->>'pipeline', '')),
           coalesce(nullif(x.ann->>'host', ''), nullif(x.l->>'host', '')),
           lower(coalesce(nullif(x.l->>'severity', ''), nullif(n->'rule'->>'severity', ''))),
           nullif(x.ann->>'since', ''),
           nullif(a.al->>'starts_at', ''),
           nullif(a.al->>'ends_at', ''),
           coalesce(nullif(x.ann->>'value', ''), nullif(a.al->>'value', '')),
           nullif(btrim(x.ann->>'error_template'), ''),
           nullif(btrim(x.ann->>'error'), ''),
           CASE WHEN jsonb_typeof(x.ann->'recent_history') = 'array' THEN x.ann->'recent_history' ELSE '[]' END,
           x.l, x.ann,
           nullif(a.al->>'fingerprint', '')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n->'alerts') = 'array' THEN n->'alerts' ELSE '[]' END)
         WITH ORDINALITY AS a(al, ord)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN jsonb_typeof(a.al->'labels') = 'object' THEN a.al->'labels' ELSE '{}' END AS l,
               CASE WHEN jsonb_typeof(a.al->'annotations') = 'object' THEN a.al->'annotations' ELSE '{}' END AS ann,
               CASE WHEN lower(coalesce(nullif(a.al->>'status', ''), n->>'status')) = 'resolved'
                    THEN 'resolved' ELSE 'firing' END AS st
    ) x
    WHERE jsonb_typeof(a.al) = 'object'
    ORDER BY a.ord
$$;

CREATE OR REPLACE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF r.kind IN ('run_failed', 'consecutive_failures') THEN
        -- a try that will be retried waits for the last one, or for after_tries
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed%s', cf.pipeline, CASE WHEN t.tries > 1 THEN format(' after %s tries', t.tries) ELSE '' END),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
                   || CASE WHEN t.tries > 1 THEN format(', after %s tries%s', t.tries,
                                                         CASE WHEN t.will_retry THEN ' (retrying)' ELSE '' END)
                           ELSE '' END,
                   cf.run_id, cf.since, cf.pipeline_id)
               || CASE WHEN t.tries > 1 THEN jsonb_build_object('tries', t.tries) ELSE '{}' END
        FROM smartetl.current_failures cf
        CROSS JOIN LATERAL smartetl._run_retry(cf.run_id) t
        WHERE (r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3))
          AND (NOT t.will_retry OR coalesce(t.tries >= r.after_tries, false));
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
    ELSIF r.kind = 'deadline' THEN
        -- the latest deadline that passed with no success finished since its
        -- scheduled start, whether the run failed, still runs or never started
        RETURN QUERY
        SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
               smartetl._run_annotations(
                   format('%s missed its %s deadline', ds.pipeline,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
                   format('scheduled %s %s (%s), a successful run was due by %s; %s',
                          to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                          ds.schedule_timezone, ds.schedule,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                          CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                    AND ds.last_run_status IS DISTINCT FROM 'running'
                               THEN 'no run started since'
                               WHEN ds.last_run_status = 'running'
                               THEN format('the run started at %s is still running',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                               ELSE format('the run started at %s ended %s',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                           ds.last_run_status) END),
                   CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
                   ds.deadline_at, ds.pipeline_id)
               || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
        FROM smartetl.deadline_status(now()) ds
        WHERE ds.missed;
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

CREATE OR REPLACE FUNCTION smartetl._alert_notification(p_group_key text, idempotency_key text, link text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'idempotency_key', idempotency_key,
        'group_key', p_group_key,
        'status', CASE WHEN bool_or(a.state = 'firing') THEN 'firing' ELSE 'resolved' END,
        'rule', jsonb_build_object('name', min(a.rule_name), 'kind', min(a.labels->>'rule_kind'),
                                   'severity', min(a.labels->>'severity')),
        'group_labels', (SELECT g.labels FROM smartetl.alert_group g WHERE g.group_key = p_group_key),
        'alerts', jsonb_agg(jsonb_build_object(
            'fingerprint', a.fingerprint, 'status', a.state, 'starts_at', a.started_at,
            'ends_at', a.resolved_at, 'labels', a.labels - 'rule_kind',
            'annotations', a.annotations || smartetl._alert_extras(a),
            'value', a.value) ORDER BY a.started_at, a.fingerprint),
        'link', link,
        'sent_at', now())
    FROM smartetl.alert a
    WHERE a.group_key = p_group_key
      AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
           OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)))
$$;

CREATE OR REPLACE FUNCTION smartetl._alert_notify() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
    r smartetl.alert_rule;
    st smartetl.alert_group;
    ch smartetl.channel;
    n jsonb;
    key text;
    due boolean;
    queued integer := 0;
BEGIN
    FOR g IN
        SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE a.state = 'firing' OR a.notified_state = 'firing'
        GROUP BY a.group_key
    LOOP
        SELECT * INTO r FROM smartetl.alert_rule WHERE name = g.rule_name;
        SELECT * INTO st FROM smartetl.alert_group WHERE group_key = g.group_key;
        IF r.name IS NULL THEN
            CONTINUE;
        END IF;
        -- Alertmanager's timing: group_wait, then group_interval, then repeat_interval
        due := CASE
                WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END;
        IF NOT coalesce(due, false) THEN
            -- Alertmanager forgets alerts not re-posted within resolve_timeout
            IF g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute' THEN
                queued := queued + smartetl._alert_refresh_alertmanager(r, st);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
        VALUES (g.group_key, g.rule_name,
                (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1)
        ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1
        RETURNING * INTO st;
        key := md5(g.group_key) || '-' || st.seq;
        FOR ch IN SELECT * FROM smartetl.channel WHERE name = ANY (r.channels) ORDER BY name LOOP
            n := smartetl._alert_notification(g.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                             '{namespace}', coalesce(g.labels->>'namespace', '')));
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
            VALUES (ch.name, g.group_key, key, n,
                    CASE WHEN ch.kind = 'notify'
                         THEN jsonb_build_object('content_type', 'application/json', 'body', n)
                         ELSE smartetl._payload(ch.kind, n, ch.options) END)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
        UPDATE smartetl.alert a SET notified_state = a.state,
                                    notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
        WHERE a.group_key = g.group_key
          AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
               OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    END LOOP;
    RETURN queued;
END $$;

CREATE FUNCTION smartetl._alert_inhibit() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT count(*) FROM smartetl.alert WHERE state = 'firing') < 2 THEN
        UPDATE smartetl.alert SET inhibited_by = NULL WHERE inhibited_by IS NOT NULL;
        RETURN;
    END IF;
    WITH RECURSIVE f AS (
        SELECT a.alert_id, a.started_at, r.inhibit, p.pipeline_id
        FROM smartetl.alert a
        JOIN smartetl.alert_rule r ON r.name = a.rule_name
        JOIN smartetl.pipeline p ON p.namespace = a.labels->>'namespace' AND p.name = a.labels->>'pipeline'
        WHERE a.state = 'firing'
    ), recent AS (
        -- each pipeline's latest runs say who its parents and datasets are
        SELECT r.run_id, r.pipeline_id, r.parent_run_id, r.attrs
        FROM smartetl.pipeline p
        CROSS JOIN LATERAL (SELECT x.run_id, x.pipeline_id, x.parent_run_id, x.attrs FROM smartetl.run x
                            WHERE x.pipeline_id = p.pipeline_id ORDER BY x.run_at DESC LIMIT 20) r
    ), io AS (
        SELECT DISTINCT x.pipeline_id, d.dir, d.ds
        FROM recent x
        CROSS JOIN LATERAL (SELECT 'in' AS dir, e AS ds
                            FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(x.attrs->'inputs') = 'array'
                                                                THEN x.attrs->'inputs' ELSE '[]' END) e
                            UNION ALL
                            SELECT 'out', e
                            FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(x.attrs->'outputs') = 'array'
                                                                THEN x.attrs->'outputs' ELSE '[]' END) e) d
    ), edge AS (
        SELECT DISTINCT pr.pipeline_id AS up, c.pipeline_id AS down, false AS lineage
        FROM recent c JOIN smartetl.run pr ON pr.run_id = c.parent_run_id
        WHERE pr.pipeline_id <> c.pipeline_id
        UNION
        SELECT DISTINCT w.pipeline_id, rd.pipeline_id, true
        FROM io w JOIN io rd ON rd.ds = w.ds AND rd.dir = 'in'
        WHERE w.dir = 'out' AND w.pipeline_id <> rd.pipeline_id
    ), below (src, pipeline_id, depth) AS (
        SELECT f.alert_id, f.pipeline_id, 0 FROM f WHERE f.inhibit <> 'off'
        UNION
        SELECT b.src, e.down, b.depth + 1
        FROM below b JOIN f ON f.alert_id = b.src
        JOIN edge e ON e.up = b.pipeline_id AND (f.inhibit = 'lineage' OR NOT e.lineage)
        WHERE b.depth < 10
    ), pair AS (
        SELECT DISTINCT s.alert_id AS src, s.started_at AS s_started, t.alert_id AS target, t.started_at AS t_started
        FROM below b
        JOIN f s ON s.alert_id = b.src
        JOIN f t ON t.pipeline_id = b.pipeline_id AND t.pipeline_id <> s.pipeline_id
        WHERE b.depth > 0
    ), kept AS (
        -- of two alerts below each other, the older one mutes the other
        SELECT p.* FROM pair p
        WHERE NOT EXISTS (SELECT 1 FROM pair q WHERE q.src = p.target AND q.target = p.src
                          AND (q.s_started, q.src) < (p.s_started, p.src))
    ), roots AS (
        SELECT k.target, min(k.src) AS root FROM kept k
        WHERE NOT EXISTS (SELECT 1 FROM kept r WHERE r.target = k.src)
        GROUP BY k.target
    )
    UPDATE smartetl.alert a SET inhibited_by = i.root
    FROM (SELECT a2.alert_id, x.root FROM smartetl.alert a2
          LEFT JOIN roots x ON x.target = a2.alert_id
          WHERE a2.state = 'firing' OR a2.inhibited_by IS NOT NULL) i
    WHERE a.alert_id = i.alert_id AND a.inhibited_by IS DISTINCT FROM i.root;
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
    PERFORM smartetl._xact_lock('alert_evaluation');
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        -- costly kinds run at most every 5 minutes (anomaly scoring rebuilds
        -- 120 days of baselines; risk scores every pipeline: evaluated_every
        -- in smartetl.alert_rule_kinds()), and a sql rule
        -- that ran out of time waits until retry_at
        IF EXISTS (SELECT 1 FROM smartetl.alert_rule_state s
                   WHERE s.rule_name = r.name
                     AND (s.evaluated_at > now() - (SELECT k.evaluated_every FROM smartetl.alert_rule_kinds() k
                                                    WHERE k.kind = r.kind)
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
    PERFORM smartetl._alert_inhibit();
    RETURN smartetl._alert_notify();
END $$;

CREATE OR REPLACE FUNCTION smartetl.next_alert_due(after timestamptz DEFAULT now()) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(x.t) FROM (
        SELECT ds.next_deadline_at AS t
        FROM smartetl.deadline_status(after) ds
        WHERE EXISTS (SELECT 1 FROM smartetl.alert_rule r WHERE r.enabled AND r.kind = 'deadline')
        UNION ALL
        SELECT CASE WHEN st.last_notified_at IS NULL THEN g.first_pending + r.group_wait
                    WHEN g.changed THEN st.last_notified_at + r.group_interval
                    WHEN g.any_firing THEN least(st.last_notified_at + r.repeat_interval,
                                                 coalesce(st.am_posted_at, st.last_notified_at) + interval '1 minute') END
        FROM (SELECT a.group_key, min(a.rule_name) AS rule_name,
                     min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                               AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending,
                     bool_or((a.state = 'firing' AND NOT smartetl._alert_muted(a)
                              AND a.notified_state IS DISTINCT FROM 'firing')
                             OR (a.state = 'resolved' AND a.notified_state = 'firing'
                                 AND NOT smartetl._alert_held(a))) AS changed,
                     bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing
              FROM smartetl.alert a
              WHERE a.state = 'firing' OR a.notified_state = 'firing'
              GROUP BY a.group_key) g
        JOIN smartetl.alert_rule r ON r.name = g.rule_name
        LEFT JOIN smartetl.alert_group st ON st.group_key = g.group_key
        UNION ALL
        SELECT s.starts_at FROM smartetl.silence s
        UNION ALL
        SELECT s.ends_at FROM smartetl.silence s
    ) x
    WHERE x.t > after
$$;
REVOKE ALL ON FUNCTION smartetl._alert_muted(smartetl.alert), smartetl._alert_held(smartetl.alert),
                       smartetl._alert_extras(smartetl.alert), smartetl._run_retry(bigint),
                       smartetl._alert_inhibit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._alert_muted(smartetl.alert), smartetl._alert_held(smartetl.alert),
                          smartetl._alert_extras(smartetl.alert), smartetl._run_retry(bigint),
                          smartetl._alert_inhibit()
    TO smartetl_admin;

-- ---- on-call: maintenance windows, acknowledgement, assignment, snooze, escalation; role smartetl_oncall
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'smartetl_oncall') THEN
        CREATE ROLE smartetl_oncall NOLOGIN;
    END IF;
END $$;
GRANT smartetl_reader TO smartetl_oncall;
GRANT smartetl_oncall TO smartetl_admin;
ALTER TABLE smartetl.delivery DROP CONSTRAINT delivery_status_check;
ALTER TABLE smartetl.delivery ADD CONSTRAINT delivery_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'retrying', 'dead', 'muted', 'skipped'));
COMMENT ON TABLE smartetl.delivery IS 'the outbox: one row per notification and channel; pending -> sent, or retrying with exponential backoff and jitter (Retry-After honoured) -> dead after smartetl.max_attempts; per channel and group, notifications are sent in order; muted: held while the channel is in a maintenance window, skipped once the window ended (superseded by a catch-up notification, or nothing left to say)';
CREATE TABLE smartetl.maintenance_window (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    time_intervals  jsonb NOT NULL CHECK (jsonb_typeof(time_intervals) = 'array'),
    timezone        text NOT NULL DEFAULT 'UTC',
    rules           text[] NOT NULL DEFAULT '{}',
    selector        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(selector) = 'object'),
    channels        text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    comment         text,
    created_by      text NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (rules <> '{}' OR selector <> '{}' OR channels <> '{}')
);
COMMENT ON TABLE smartetl.maintenance_window IS 'recurring maintenance windows: time_intervals as Alertmanager''s ([{"times": [{"start_time": "22:00", "end_time": "24:00"}], "weekdays": ["monday:friday"], "days_of_month": ["1:5", "-1"], "months": ["january:march"], "years": ["2026"], "location": "Europe/Paris"}], any interval matching), in timezone unless an interval names its location; while one holds, alerts of rules and of pipelines matching selector are recorded as muted, and deliveries to channels are held; when it ends, alerts still firing are notified and alerts that cleared meanwhile send nothing';

CREATE TABLE smartetl.escalation_policy (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    steps       jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) > 0),
    repeat      integer NOT NULL DEFAULT 0 CHECK (repeat BETWEEN 0 AND 100),
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartetl.escalation_policy IS 'escalation policies: steps [{"after": "15 minutes", "channels": ["pager"]}, ...] notified in turn while an alert stays unacknowledged, each "after" the previous step (the first after the alert''s first notification); the list runs again repeat more times';

CREATE FUNCTION smartetl._window_value(v text, kind text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN v ~ '^-?[0-9]{1,4}$' THEN v::integer
            WHEN kind = 'weekdays' THEN array_position(ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday',
                                                             'friday', 'saturday'], lower(btrim(v))) - 1
            WHEN kind = 'months' THEN array_position(ARRAY['january', 'february', 'march', 'april', 'may', 'june', 'july',
                                                           'august', 'september', 'october', 'november', 'december'],
                                                     lower(btrim(v))) END;

CREATE FUNCTION smartetl._window_in(ranges jsonb, kind text, x integer, dim integer DEFAULT 31) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ranges IS NULL OR jsonb_typeof(ranges) <> 'array' OR jsonb_array_length(ranges) = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ranges) r,
                      LATERAL (SELECT smartetl._window_value(split_part(r, ':', 1), kind) AS lo,
                                      smartetl._window_value(coalesce(nullif(split_part(r, ':', 2), ''), split_part(r, ':', 1)), kind) AS hi) b,
                      LATERAL (SELECT CASE WHEN kind = 'days_of_month' AND b.lo < 0 THEN dim + 1 + b.lo ELSE b.lo END AS lo,
                                      CASE WHEN kind = 'days_of_month' AND b.hi < 0 THEN dim + 1 + b.hi ELSE b.hi END AS hi) n
                      -- a weekday range may wrap (saturday:monday)
                      WHERE x BETWEEN n.lo AND n.hi OR (kind = 'weekdays' AND n.lo > n.hi AND (x >= n.lo OR x <= n.hi)))
$$;

CREATE FUNCTION smartetl._time_interval_active(ti jsonb, at timestamptz, tz text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (ti->'times' IS NULL OR jsonb_array_length(ti->'times') = 0
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(ti->'times') t
                       WHERE l.minute >= split_part(t->>'start_time', ':', 1)::int * 60 + split_part(t->>'start_time', ':', 2)::int
                         AND l.minute < split_part(t->>'end_time', ':', 1)::int * 60 + split_part(t->>'end_time', ':', 2)::int))
       AND smartetl._window_in(ti->'weekdays', 'weekdays', extract(dow FROM l.ts)::int)
       AND smartetl._window_in(ti->'days_of_month', 'days_of_month', extract(day FROM l.ts)::int,
                               extract(day FROM date_trunc('month', l.ts) + interval '1 month - 1 day')::int)
       AND smartetl._window_in(ti->'months', 'months', extract(month FROM l.ts)::int)
       AND smartetl._window_in(ti->'years', 'years', extract(year FROM l.ts)::int)
    FROM (SELECT x.ts, extract(hour FROM x.ts)::int * 60 + extract(minute FROM x.ts)::int AS minute
          FROM (SELECT at AT TIME ZONE coalesce(ti->>'location', tz) AS ts) x) l
$$;

CREATE FUNCTION smartetl.maintenance_window_active(name text, at timestamptz DEFAULT now()) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(bool_or(w.enabled AND smartetl._time_interval_active(ti, at, w.timezone)), false)
    FROM smartetl.maintenance_window w CROSS JOIN LATERAL jsonb_array_elements(w.time_intervals) ti
    WHERE w.name = maintenance_window_active.name
$$;
COMMENT ON FUNCTION smartetl.maintenance_window_active(text, timestamptz) IS 'whether the named maintenance window holds at a time';
CREATE FUNCTION smartetl._window_next_change(w smartetl.maintenance_window, after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(c.t) FROM (
        SELECT (d.day + make_interval(hours => split_part(x.hm, ':', 1)::int, mins => split_part(x.hm, ':', 2)::int))
               AT TIME ZONE z.tz AS t
        FROM jsonb_array_elements(w.time_intervals) ti
        CROSS JOIN LATERAL (SELECT coalesce(ti->>'location', w.timezone) AS tz) z
        CROSS JOIN LATERAL (SELECT date_trunc('day', after AT TIME ZONE z.tz) + k * interval '1 day' AS day
                            FROM generate_series(0, 1) k) d
        CROSS JOIN LATERAL (SELECT t->>'start_time' AS hm FROM jsonb_array_elements(coalesce(ti->'times', '[]')) t
                            UNION ALL SELECT t->>'end_time' FROM jsonb_array_elements(coalesce(ti->'times', '[]')) t
                            UNION ALL SELECT '24:00') x
    ) c WHERE c.t > after
$$;

CREATE FUNCTION smartetl._window_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    PERFORM smartetl._cron_check(NULL, NEW.timezone);
    SELECT string_agg(coalesce(ti->>'location', '') || ' ' || left(ti::text, 80), '; ') INTO bad
    FROM jsonb_array_elements(NEW.time_intervals) ti
    WHERE jsonb_typeof(ti) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(ti) k WHERE k NOT IN ('times', 'weekdays', 'days_of_month', 'months', 'years', 'location'))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ti->'times') = 'array' THEN ti->'times' ELSE '[{}]' END) t
                  WHERE coalesce(t->>'start_time', '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
                     OR coalesce(t->>'end_time', '') !~ '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$'
                     OR t->>'end_time' <= t->>'start_time')
          AND ti ? 'times'
       OR EXISTS (SELECT 1 FROM (VALUES ('weekdays'), ('days_of_month'), ('months'), ('years')) f(k),
                  LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(ti->f.k) = 'array' THEN ti->f.k ELSE '[]' END) r
                  WHERE smartetl._window_value(split_part(r, ':', 1), f.k) IS NULL
                     OR smartetl._window_value(coalesce(nullif(split_part(r, ':', 2), ''), split_part(r, ':', 1)), f.k) IS NULL);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid time_intervals in maintenance window "%"', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Bad interval: ' || bad || '.',
                  HINT = 'Use Alertmanager''s form: [{"times": [{"start_time": "HH:MM", "end_time": "HH:MM"}], "weekdays": ["monday:friday"], "days_of_month": ["1", "-1"], "months": ["1:3"], "years": ["2026"], "location": "Europe/Paris"}].';
    END IF;
    FOR bad IN SELECT DISTINCT ti->>'location' FROM jsonb_array_elements(NEW.time_intervals) ti WHERE ti ? 'location' LOOP
        PERFORM smartetl._cron_check(NULL, bad);
    END LOOP;
    SELECT string_agg(c, ', ') INTO bad FROM unnest(NEW.channels) c WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'maintenance window "%" names unknown channel %', NEW.name, bad USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(NEW.selector) k WHERE k NOT IN ('namespace', 'pipeline', 'tags');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'maintenance window "%" has unknown selector key %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Selector keys are namespace, pipeline (glob) and tags (array).';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN NEW;
END $$;
CREATE TRIGGER maintenance_window_check BEFORE INSERT OR UPDATE ON smartetl.maintenance_window
    FOR EACH ROW EXECUTE FUNCTION smartetl._window_check();
CREATE FUNCTION smartetl._escalation_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
    step jsonb;
    wait interval;
BEGIN
    FOR step IN SELECT e FROM jsonb_array_elements(NEW.steps) e LOOP
        BEGIN
            wait := (step->>'after')::interval;
        EXCEPTION WHEN others THEN
            wait := NULL;
        END;
        IF jsonb_typeof(step) <> 'object' OR jsonb_typeof(step->'channels') IS DISTINCT FROM 'array'
           OR jsonb_array_length(step->'channels') = 0 OR wait IS NULL OR wait <= interval '0' THEN
            bad := step::text;
        END IF;
    END LOOP;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid steps in escalation policy "%"', NEW.name
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Bad step: ' || bad || '.',
                  HINT = 'Each step is {"after": "15 minutes", "channels": ["pager"]}.';
    END IF;
    SELECT string_agg(DISTINCT c, ', ') INTO bad
    FROM jsonb_array_elements(NEW.steps) s, jsonb_array_elements_text(s->'channels') c
    WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'escalation policy "%" names unknown channel %', NEW.name, bad
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create the channel in smartetl.channel first.';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN NEW;
END $$;
CREATE TRIGGER escalation_policy_check BEFORE INSERT OR UPDATE ON smartetl.escalation_policy
    FOR EACH ROW EXECUTE FUNCTION smartetl._escalation_check();
CREATE FUNCTION smartetl.ack(alert_id bigint, by text, comment text DEFAULT NULL) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    UPDATE smartetl.alert x SET acked_by = coalesce(nullif(btrim(ack.by), ''), session_user::text),
                                acked_at = now(), ack_comment = nullif(btrim(ack.comment), '')
    WHERE x.alert_id = ack.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', ack.alert_id
            USING ERRCODE = 'no_data_found', HINT = 'See smartetl.alert_status for the firing alerts and their ids.';
    END IF;
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.ack(bigint, text, text) IS 'acknowledge a firing alert (by whom, why): shown in its later notifications and in smartetl.alert_status; stops its escalation';
CREATE FUNCTION smartetl.unack(alert_id bigint) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    -- escalation resumes, its next step counted from now
    UPDATE smartetl.alert x SET acked_by = NULL, acked_at = NULL, ack_comment = NULL,
                                escalated_at = CASE WHEN x.notified_at IS NOT NULL THEN now() END
    WHERE x.alert_id = unack.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', unack.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.unack(bigint) IS 'withdraw the acknowledgement of a firing alert: its escalation resumes';
CREATE FUNCTION smartetl.assign(alert_id bigint, "to" text) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    UPDATE smartetl.alert x SET assignee = nullif(btrim(assign."to"), '')
    WHERE x.alert_id = assign.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', assign.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.assign(bigint, text) IS 'assign a firing alert to someone (NULL or empty: nobody); shown in its later notifications and in smartetl.alert_status';
CREATE FUNCTION smartetl.snooze(alert_id bigint, until timestamptz, by text DEFAULT NULL) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    IF until > now() + interval '30 days' THEN
        RAISE EXCEPTION 'cannot snooze an alert for more than 30 days'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a silence (smartetl.silence) for longer.';
    END IF;
    UPDATE smartetl.alert x SET snoozed_until = snooze.until,
                                ack_comment = coalesce(x.ack_comment, 'snoozed by ' || coalesce(nullif(btrim(snooze.by), ''), session_user::text))
    WHERE x.alert_id = snooze.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', snooze.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.snooze(bigint, timestamptz, text) IS 'no notification and no escalation for a firing alert until a time (at most 30 days ahead); NULL or a past time ends the snooze';
CREATE VIEW smartetl.alert_status AS
SELECT a.alert_id, a.rule_name AS rule, a.labels->>'namespace' AS namespace, a.labels->>'pipeline' AS pipeline,
       a.labels->>'severity' AS severity, a.state, a.started_at, a.resolved_at, a.annotations->>'summary' AS summary,
       CASE WHEN a.silenced THEN 'silence'
            WHEN a.muted_by IS NOT NULL THEN 'maintenance window ' || a.muted_by
            WHEN a.inhibited_by IS NOT NULL THEN 'inhibited by alert ' || a.inhibited_by
            WHEN a.snoozed_until > now() THEN 'snoozed until ' || to_char(a.snoozed_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
       END AS muted,
       a.acked_by, a.acked_at, a.ack_comment, a.assignee, a.escalation_level, a.notified_state
FROM smartetl.alert a
WHERE a.state = 'firing' OR a.resolved_at > now() - interval '1 day';
COMMENT ON VIEW smartetl.alert_status IS 'firing alerts and those resolved in the last day: why muted (silence, maintenance window, inhibition, snooze), acknowledged by whom, assigned to whom, escalation step';
CREATE OR REPLACE FUNCTION smartetl._rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
    bad text;
BEGIN
    IF NEW.kind IS NULL
       OR NOT EXISTS (SELECT 1 FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
        RAISE EXCEPTION 'unknown kind % for alert rule "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rule kinds are ' || (SELECT regexp_replace(string_agg(x.kind, ', '), ', ([^,]*)$', ' and \1') FROM smartetl.alert_rule_kinds() x) || '.';
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
    IF (SELECT x.takes_query FROM smartetl.alert_rule_kinds() x WHERE x.kind = NEW.kind) THEN
        PERFORM smartetl._rule_query_check(NEW.name, NEW.query);
        -- a changed query is tried at once, even if the old one ran out of time
        UPDATE smartetl.alert_rule_state SET retry_at = NULL WHERE rule_name = NEW.name AND retry_at IS NOT NULL;
    ELSIF NEW.query IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%" of kind % takes no query', NEW.name, NEW.kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.escalation_policy IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM smartetl.escalation_policy e WHERE e.name = NEW.escalation_policy) THEN
        RAISE EXCEPTION 'alert rule "%" names unknown escalation policy "%"', NEW.name, NEW.escalation_policy
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it in smartetl.escalation_policy first.';
    END IF;
    RETURN NEW;
END $$;
DROP FUNCTION smartetl._alert_notification(text, text, text);
CREATE FUNCTION smartetl._alert_notification(p_group_key text, idempotency_key text, link text,
                                             resolved_for text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'idempotency_key', idempotency_key,
        'group_key', p_group_key,
        'status', CASE WHEN bool_or(a.state = 'firing') THEN 'firing' ELSE 'resolved' END,
        'rule', jsonb_build_object('name', min(a.rule_name), 'kind', min(a.labels->>'rule_kind'),
                                   'severity', min(a.labels->>'severity')),
        'group_labels', (SELECT g.labels FROM smartetl.alert_group g WHERE g.group_key = p_group_key),
        'alerts', jsonb_agg(jsonb_build_object(
            'fingerprint', a.fingerprint, 'status', a.state, 'starts_at', a.started_at,
            'ends_at', a.resolved_at, 'labels', a.labels - 'rule_kind',
            'annotations', a.annotations || smartetl._alert_extras(a),
            'value', a.value) ORDER BY a.started_at, a.fingerprint),
        'link', link,
        'sent_at', now())
    FROM smartetl.alert a
    WHERE a.group_key = p_group_key
      AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
           OR (resolved_for IS NULL AND a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a))
           OR (a.state = 'resolved' AND a.fingerprint = ANY (resolved_for)
               AND NOT EXISTS (SELECT 1 FROM smartetl.alert f WHERE f.fingerprint = a.fingerprint AND f.state = 'firing')
               AND a.resolved_at = (SELECT max(l.resolved_at) FROM smartetl.alert l WHERE l.fingerprint = a.fingerprint)))
$$;

CREATE OR REPLACE FUNCTION smartetl._alert_notify() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
    r smartetl.alert_rule;
    st smartetl.alert_group;
    ch smartetl.channel;
    n jsonb;
    key text;
    due boolean;
    win text;
    queued integer := 0;
BEGIN
    FOR g IN
        SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE a.state = 'firing' OR a.notified_state = 'firing'
        GROUP BY a.group_key
    LOOP
        SELECT * INTO r FROM smartetl.alert_rule WHERE name = g.rule_name;
        SELECT * INTO st FROM smartetl.alert_group WHERE group_key = g.group_key;
        IF r.name IS NULL THEN
            CONTINUE;
        END IF;
        -- Alertmanager's timing: group_wait, then group_interval, then repeat_interval
        due := CASE
                WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END;
        IF NOT coalesce(due, false) THEN
            -- Alertmanager forgets alerts not re-posted within resolve_timeout
            IF g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute' THEN
                queued := queued + smartetl._alert_refresh_alertmanager(r, st);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
        VALUES (g.group_key, g.rule_name,
                (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1)
        ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1
        RETURNING * INTO st;
        key := md5(g.group_key) || '-' || st.seq;
        FOR ch IN SELECT * FROM smartetl.channel WHERE name = ANY (r.channels) ORDER BY name LOOP
            n := smartetl._alert_notification(g.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                             '{namespace}', coalesce(g.labels->>'namespace', '')));
            -- a channel in a maintenance window: recorded as muted, caught up when it ends
            win := (SELECT w.name FROM smartetl.maintenance_window w
                    WHERE w.enabled AND ch.name = ANY (w.channels) AND smartetl.maintenance_window_active(w.name)
                    ORDER BY w.name LIMIT 1);
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload, status, last_error)
            VALUES (ch.name, g.group_key, key, n,
                    CASE WHEN ch.kind = 'notify'
                         THEN jsonb_build_object('content_type', 'application/json', 'body', n)
                         ELSE smartetl._payload(ch.kind, n, ch.options) END,
                    CASE WHEN win IS NULL THEN 'pending' ELSE 'muted' END,
                    'muted by maintenance window ' || win)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
        UPDATE smartetl.alert a SET notified_state = a.state,
                                    notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
        WHERE a.group_key = g.group_key
          AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
               OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    END LOOP;
    RETURN queued;
END $$;

CREATE FUNCTION smartetl._alert_window_catch_up() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    ch smartetl.channel;
    told text[];
    n jsonb;
    key text;
    queued integer := 0;
BEGIN
    FOR m IN SELECT d.channel, d.group_key, max(d.delivery_id) AS last_muted
             FROM smartetl.delivery d WHERE d.status = 'muted' GROUP BY 1, 2 ORDER BY 3 LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM smartetl.maintenance_window w
                              WHERE w.enabled AND m.channel = ANY (w.channels)
                                AND smartetl.maintenance_window_active(w.name));
        SELECT * INTO ch FROM smartetl.channel WHERE name = m.channel;
        -- what the channel last heard about the group, before the window
        SELECT coalesce(array_agg(a->>'fingerprint') FILTER (WHERE a->>'status' = 'firing'), '{}') INTO told
        FROM (SELECT d.notification FROM smartetl.delivery d
              WHERE d.channel = m.channel AND d.group_key = m.group_key AND d.status NOT IN ('muted', 'skipped')
              ORDER BY d.delivery_id DESC LIMIT 1) last
        CROSS JOIN LATERAL jsonb_array_elements(last.notification->'alerts') a;
        key := md5(m.group_key) || '-window-' || m.last_muted;
        n := smartetl._alert_notification(m.group_key, key,
                 (SELECT replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                                 '{namespace}', coalesce(g.labels->>'namespace', ''))
                  FROM smartetl.alert_group g WHERE g.group_key = m.group_key), told);
        IF ch.name IS NOT NULL AND jsonb_typeof(n->'alerts') = 'array' THEN
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
            VALUES (ch.name, m.group_key, key, n,
                    CASE WHEN ch.kind = 'notify'
                         THEN jsonb_build_object('content_type', 'application/json', 'body', n)
                         ELSE smartetl._payload(ch.kind, n, ch.options) END)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END IF;
        UPDATE smartetl.delivery SET status = 'skipped',
               last_error = last_error || CASE WHEN jsonb_typeof(n->'alerts') = 'array' THEN '; caught up after the window'
                                               ELSE '; nothing left to send after the window' END
        WHERE channel = m.channel AND group_key = m.group_key AND status = 'muted';
    END LOOP;
    RETURN queued;
END $$;

CREATE FUNCTION smartetl._alert_escalate() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    ch smartetl.channel;
    n jsonb;
    key text;
    queued integer := 0;
BEGIN
    FOR e IN
        SELECT a.alert_id, a.group_key, a.fingerprint, a.labels, a.escalation_level AS level, p.name AS policy,
               p.steps->(a.escalation_level % jsonb_array_length(p.steps)) AS step
        FROM smartetl.alert a
        JOIN smartetl.alert_rule r ON r.name = a.rule_name AND r.enabled
        JOIN smartetl.escalation_policy p ON p.name = r.escalation_policy
        WHERE a.state = 'firing' AND a.acked_by IS NULL AND a.notified_at IS NOT NULL
          AND NOT smartetl._alert_muted(a)
          AND a.escalation_level < jsonb_array_length(p.steps) * (p.repeat + 1)
          AND coalesce(a.escalated_at, a.notified_at)
              + (p.steps->(a.escalation_level % jsonb_array_length(p.steps))->>'after')::interval <= now()
        ORDER BY a.alert_id
    LOOP
        UPDATE smartetl.alert SET escalation_level = e.level + 1, escalated_at = now() WHERE alert_id = e.alert_id;
        key := md5(e.group_key) || '-escalation-' || e.alert_id || '-' || (e.level + 1);
        FOR ch IN SELECT * FROM smartetl.channel
                  WHERE name IN (SELECT jsonb_array_elements_text(e.step->'channels')) ORDER BY name LOOP
            n := smartetl._alert_notification(e.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(e.labels->>'pipeline', '')),
                             '{namespace}', coalesce(e.labels->>'namespace', '')));
            n := n || jsonb_build_object(
                     'alerts', (SELECT jsonb_agg(x) FROM jsonb_array_elements(n->'alerts') x
                                WHERE x->>'fingerprint' = e.fingerprint),
                     'escalation', jsonb_build_object('policy', e.policy, 'level', e.level + 1));
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
            VALUES (ch.name, e.group_key, key, n,
                    CASE WHEN ch.kind = 'notify'
                         THEN jsonb_build_object('content_type', 'application/json', 'body', n)
                         ELSE smartetl._payload(ch.kind, n, ch.options) END)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
    END LOOP;
    RETURN queued;
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
    PERFORM smartetl._xact_lock('alert_evaluation');
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        -- costly kinds run at most every 5 minutes (anomaly scoring rebuilds
        -- 120 days of baselines; risk scores every pipeline: evaluated_every
        -- in smartetl.alert_rule_kinds()), and a sql rule
        -- that ran out of time waits until retry_at
        IF EXISTS (SELECT 1 FROM smartetl.alert_rule_state s
                   WHERE s.rule_name = r.name
                     AND (s.evaluated_at > now() - (SELECT k.evaluated_every FROM smartetl.alert_rule_kinds() k
                                                    WHERE k.kind = r.kind)
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
    -- maintenance windows of rules and pipelines: alerts are recorded as muted
    -- (firing ones, and resolved ones whose resolution is still to be sent)
    UPDATE smartetl.alert a SET muted_by = m.win
    FROM (SELECT a2.alert_id,
                 (SELECT w.name FROM smartetl.maintenance_window w
                  WHERE w.enabled AND (a2.rule_name = ANY (w.rules)
                                       OR (w.selector <> '{}' AND p.pipeline_id IS NOT NULL
                                           AND smartetl._selector_matches(w.selector, p)))
                    AND smartetl.maintenance_window_active(w.name)
                  ORDER BY w.name LIMIT 1) AS win
          FROM smartetl.alert a2
          LEFT JOIN smartetl.pipeline p ON p.namespace = a2.labels->>'namespace' AND p.name = a2.labels->>'pipeline'
          WHERE a2.state = 'firing' OR (a2.state = 'resolved' AND a2.notified_state = 'firing')
             OR a2.muted_by IS NOT NULL) m
    WHERE a.alert_id = m.alert_id AND a.muted_by IS DISTINCT FROM m.win;
    PERFORM smartetl._alert_inhibit();
    RETURN smartetl._alert_window_catch_up() + smartetl._alert_notify() + smartetl._alert_escalate();
END $$;

CREATE OR REPLACE FUNCTION smartetl.next_alert_due(after timestamptz DEFAULT now()) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(x.t) FROM (
        SELECT ds.next_deadline_at AS t
        FROM smartetl.deadline_status(after) ds
        WHERE EXISTS (SELECT 1 FROM smartetl.alert_rule r WHERE r.enabled AND r.kind = 'deadline')
        UNION ALL
        SELECT CASE WHEN st.last_notified_at IS NULL THEN g.first_pending + r.group_wait
                    WHEN g.changed THEN st.last_notified_at + r.group_interval
                    WHEN g.any_firing THEN least(st.last_notified_at + r.repeat_interval,
                                                 coalesce(st.am_posted_at, st.last_notified_at) + interval '1 minute') END
        FROM (SELECT a.group_key, min(a.rule_name) AS rule_name,
                     min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                               AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending,
                     bool_or((a.state = 'firing' AND NOT smartetl._alert_muted(a)
                              AND a.notified_state IS DISTINCT FROM 'firing')
                             OR (a.state = 'resolved' AND a.notified_state = 'firing'
                                 AND NOT smartetl._alert_held(a))) AS changed,
                     bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing
              FROM smartetl.alert a
              WHERE a.state = 'firing' OR a.notified_state = 'firing'
              GROUP BY a.group_key) g
        JOIN smartetl.alert_rule r ON r.name = g.rule_name
        LEFT JOIN smartetl.alert_group st ON st.group_key = g.group_key
        UNION ALL
        SELECT s.starts_at FROM smartetl.silence s
        UNION ALL
        SELECT s.ends_at FROM smartetl.silence s
        UNION ALL
        SELECT smartetl._window_next_change(w, after) FROM smartetl.maintenance_window w WHERE w.enabled
        UNION ALL
        SELECT a.snoozed_until FROM smartetl.alert a WHERE a.state = 'firing'
        UNION ALL
        -- the next escalation step of each unacknowledged alert
        SELECT coalesce(a.escalated_at, a.notified_at)
               + (p.steps->(a.escalation_level % jsonb_array_length(p.steps))->>'after')::interval
        FROM smartetl.alert a
        JOIN smartetl.alert_rule r ON r.name = a.rule_name AND r.enabled
        JOIN smartetl.escalation_policy p ON p.name = r.escalation_policy
        WHERE a.state = 'firing' AND a.acked_by IS NULL AND a.notified_at IS NOT NULL
          AND a.escalation_level < jsonb_array_length(p.steps) * (p.repeat + 1)
    ) x
    WHERE x.t > after
$$;
COMMENT ON FUNCTION smartetl.next_alert_due(timestamptz) IS 'the next time after "after" at which an evaluation is due by the clock (a deadline, group_wait, group_interval, repeat_interval, a silence or maintenance window starting or ending, a snooze ending, an escalation step); the alert worker wakes then';
SELECT pg_catalog.pg_extension_config_dump('smartetl.maintenance_window', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.escalation_policy', '');
REVOKE ALL ON FUNCTION smartetl._window_value(text, text), smartetl._window_in(jsonb, text, integer, integer),
                       smartetl._time_interval_active(jsonb, timestamptz, text),
                       smartetl.maintenance_window_active(text, timestamptz),
                       smartetl._window_next_change(smartetl.maintenance_window, timestamptz), smartetl._window_check(),
                       smartetl._escalation_check(), smartetl.ack(bigint, text, text), smartetl.unack(bigint),
                       smartetl.assign(bigint, text), smartetl.snooze(bigint, timestamptz, text),
                       smartetl._alert_notification(text, text, text, text[]), smartetl._alert_window_catch_up(),
                       smartetl._alert_escalate() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._alert_notification(text, text, text, text[]) TO smartetl_admin;
GRANT SELECT ON smartetl.maintenance_window TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.maintenance_window TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.maintenance_window_active(text, timestamptz),
                          smartetl._window_value(text, text), smartetl._window_in(jsonb, text, integer, integer),
                          smartetl._time_interval_active(jsonb, timestamptz, text)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._window_next_change(smartetl.maintenance_window, timestamptz),
                          smartetl._alert_window_catch_up()
    TO smartetl_admin;
GRANT SELECT ON smartetl.escalation_policy, smartetl.alert_status TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.escalation_policy TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.ack(bigint, text, text), smartetl.unack(bigint),
                          smartetl.assign(bigint, text), smartetl.snooze(bigint, timestamptz, text)
    TO smartetl_oncall;
GRANT EXECUTE ON FUNCTION smartetl._alert_escalate() TO smartetl_admin;

-- ---- channel kinds: one registry (smartetl.alert_channel_kinds) --------------
-- The channel check, the payload dispatch and the hints read the registry; the
-- table's CHECK on kind goes (the trigger checks it).
ALTER TABLE smartetl.channel DROP CONSTRAINT channel_kind_check;
CREATE FUNCTION smartetl._channel_options_email(channel text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(a, ', ') INTO bad
    FROM (SELECT options->>'from' AS a
          UNION ALL SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(options->'to') = 'array'
                                                          THEN options->'to' ELSE '[]' END)) s
    WHERE a IS NULL OR a !~ '^[^@[:space:]<>]+@[^@[:space:]<>]+$';
    IF bad IS NOT NULL OR jsonb_typeof(options->'to') IS DISTINCT FROM 'array'
       OR jsonb_array_length(options->'to') = 0 THEN
        RAISE EXCEPTION 'invalid addresses for email channel "%"', channel
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('options need "from" and a non-empty "to" array of addresses; bad: %s.',
                                  coalesce(bad, 'to')),
                  HINT = 'For example {"from": "etl@example.com", "to": ["team@example.com"]}.';
    END IF;
END $$;

CREATE FUNCTION smartetl._payload_notify(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('content_type', 'application/json', 'body', n);
COMMENT ON FUNCTION smartetl._payload_notify(jsonb, jsonb) IS 'the body of a notify channel: the notification as JSON';

CREATE FUNCTION smartetl.alert_channel_kinds()
RETURNS TABLE (kind text, transport text, formatter text, options_check text,
               target_pattern text, target_form text, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.kind, k.transport, k.formatter, k.options_check, t.pattern, t.form, k.description
    FROM (VALUES
        (1, 'teams', 'http', 'smartetl._payload_teams', NULL,
         'Microsoft Teams (incoming webhook or Workflows URL): an Adaptive Card'),
        (2, 'slack', 'http', 'smartetl._payload_slack', NULL,
         'Slack incoming webhook: a Block Kit message with a text fallback'),
        (3, 'webhook', 'http', 'smartetl._payload_webhook', NULL,
         'any HTTP endpoint: the notification as JSON, signed (HMAC-SHA256) when the channel has a secret'),
        (4, 'alertmanager', 'http', 'smartetl._payload_alertmanager', NULL,
         'Prometheus Alertmanager (its /api/v2/alerts URL): one alert per smartetl alert'),
        (5, 'email', 'smtp', 'smartetl._payload_email', 'smartetl._channel_options_email',
         'e-mail through an SMTP server: plain text and HTML'),
        (6, 'notify', 'notify', 'smartetl._payload_notify', NULL,
         'NOTIFY on the target channel of the database, with the notification as JSON')
    ) k(ord, kind, transport, formatter, options_check, description)
    JOIN (VALUES
        ('http', '^https?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?(/[^[:space:]]*)?$',
         'an http:// or https:// URL without credentials'),
        ('smtp', '^smtps?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?/?$', 'smtp://host:port or smtps://host:port'),
        ('notify', '^[A-Za-z_][A-Za-z0-9_]{0,62}$', 'a LISTEN channel name (an identifier)')
    ) t(transport, pattern, form) USING (transport)
    ORDER BY k.ord
$$;
COMMENT ON FUNCTION smartetl.alert_channel_kinds() IS
'the alert channel kinds: transport (http, smtp, notify), payload formatter, option check, the form of the target, what it sends';

CREATE OR REPLACE FUNCTION smartetl._channel_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
BEGIN
    SELECT * INTO k FROM smartetl.alert_channel_kinds() x WHERE x.kind = NEW.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown channel kind % for channel "%"', coalesce(quote_literal(NEW.kind), 'NULL'), NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Channel kinds are ' || (SELECT regexp_replace(string_agg(x.kind, ', '), ', ([^,]*)$', ' and \1')
                                                  FROM smartetl.alert_channel_kinds() x) || '.';
    END IF;
    IF NEW.target !~ k.target_pattern AND k.transport = 'http' THEN
        RAISE EXCEPTION 'invalid target for % channel "%"', NEW.kind, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Expected %s, found %L.', k.target_form, NEW.target),
                  HINT = 'Put a token or password in the secret column, not in the URL.';
    ELSIF NEW.target !~ k.target_pattern THEN
        RAISE EXCEPTION 'invalid target for % channel "%"', NEW.kind, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Expected %s, found %L.', k.target_form, NEW.target);
    END IF;
    IF k.options_check IS NOT NULL THEN
        EXECUTE format('SELECT %s($1, $2)', k.options_check) USING NEW.name, NEW.options;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION smartetl._payload(kind text, n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := (SELECT k.formatter FROM smartetl.alert_channel_kinds() k WHERE k.kind = _payload.kind);
    result jsonb;
BEGIN
    IF f IS NULL THEN
        RAISE EXCEPTION 'unknown alert channel kind: %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The channel kinds are ' || (SELECT regexp_replace(string_agg(k.kind, ', '), ', ([^,]*)$', ' and \1')
                                                      FROM smartetl.alert_channel_kinds() k) || '.';
    END IF;
    -- f comes from the registry above, never from a caller
    EXECUTE format('SELECT %s($1, $2)', f) INTO result USING n, opts;
    RETURN result;
END $$;
COMMENT ON FUNCTION smartetl._payload(text, jsonb, jsonb) IS
'the request body of a notification for a channel kind, built by the kind''s formatter (smartetl.alert_channel_kinds)';

REVOKE ALL ON FUNCTION smartetl._channel_options_email(text, jsonb), smartetl._payload_notify(jsonb, jsonb),
                       smartetl.alert_channel_kinds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._payload_notify(jsonb, jsonb), smartetl._channel_options_email(text, jsonb)
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.alert_channel_kinds() TO smartetl_reader;


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
        -- a try that will be retried waits for the last one, or for after_tries
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed%s', cf.pipeline, CASE WHEN t.tries > 1 THEN format(' after %s tries', t.tries) ELSE '' END),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
                   || CASE WHEN t.tries > 1 THEN format(', after %s tries%s', t.tries,
                                                         CASE WHEN t.will_retry THEN ' (retrying)' ELSE '' END)
                           ELSE '' END,
                   cf.run_id, cf.since, cf.pipeline_id)
               || CASE WHEN t.tries > 1 THEN jsonb_build_object('tries', t.tries) ELSE '{}' END
        FROM smartetl.current_failures cf
        CROSS JOIN LATERAL smartetl._run_retry(cf.run_id) t
        WHERE (r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3))
          AND (NOT t.will_retry OR coalesce(t.tries >= r.after_tries, false));
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
    ELSIF r.kind = 'deadline' THEN
        -- the latest deadline that passed with no success finished since its
        -- scheduled start, whether the run failed, still runs or never started
        RETURN QUERY
        SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
               smartetl._run_annotations(
                   format('%s missed its %s deadline', ds.pipeline,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
                   format('scheduled %s %s (%s), a successful run was due by %s; %s',
                          to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                          ds.schedule_timezone, ds.schedule,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                          CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                    AND ds.last_run_status IS DISTINCT FROM 'running'
                               THEN 'no run started since'
                               WHEN ds.last_run_status = 'running'
                               THEN format('the run started at %s is still running',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                               ELSE format('the run started at %s ended %s',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                           ds.last_run_status) END),
                   CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
                   ds.deadline_at, ds.pipeline_id)
               || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
        FROM smartetl.deadline_status(now()) ds
        WHERE ds.missed;
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

-- ---------------------------------------------------------------------------
-- acklinks: signed one-click acknowledge links (86_oncall_ack_link.sql, the
-- Acknowledge buttons of 87_alert_payload.sql, annotations.ack_url in
-- 88_alert_eval.sql's _alert_notification, 90_dump.sql, 90_grants.sql)
-- ---------------------------------------------------------------------------
-- API: Private
CREATE FUNCTION smartetl._random_bytes(n integer) RETURNS bytea
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_random_bytes';
COMMENT ON FUNCTION smartetl._random_bytes(integer) IS 'n bytes from the server''s strong random source';

-- API: Private
-- The signing secret, one row.  No role may read it (no grant, admins
-- included); the C signer and verifier read it directly.  pg_dump leaves
-- its row out (90_dump.sql): a restored database makes its own secret, so a
-- backup never holds it and links issued before stop working.
CREATE TABLE smartetl.ack_link_secret (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartetl.ack_link_secret IS 'the secret acknowledge links are signed with (HMAC-SHA256; made when the extension is created, readable by its owner only, never dumped); replacing it invalidates every link issued';
INSERT INTO smartetl.ack_link_secret (secret) VALUES (smartetl._random_bytes(32));

-- API: Private
-- Links used: a link acknowledges once (its nonce is recorded), whatever
-- happens to the alert afterwards (unack).  Rows whose link has expired
-- are deleted by the next use of any link.
CREATE TABLE smartetl.ack_link_use (
    nonce       text PRIMARY KEY,
    alert_id    bigint NOT NULL,
    used_by     text NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
COMMENT ON TABLE smartetl.ack_link_use IS 'acknowledge links already used (by nonce): which alert, who (the name typed on the page, else "link"), when, until when the link was valid';

-- API: Private
CREATE FUNCTION smartetl._ack_link_token(alert_id bigint, expires timestamptz) RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'smartetl_ack_link_token';
COMMENT ON FUNCTION smartetl._ack_link_token(bigint, timestamptz) IS 'a new signed acknowledge token for an alert, valid until expires: <alert id>.<expires, Unix s>.<nonce>.<HMAC-SHA256>';

-- API: Private
CREATE FUNCTION smartetl._ack_link_verify(token text, OUT alert_id bigint, OUT expires timestamptz,
                                          OUT nonce text, OUT signed boolean)
LANGUAGE C STRICT STABLE
AS 'MODULE_PATHNAME', 'smartetl_ack_link_verify';
COMMENT ON FUNCTION smartetl._ack_link_verify(text) IS 'an acknowledge token taken apart (NULL fields when malformed) and whether this installation signed it (constant-time); the expiry is not checked';

-- API: Public
-- A signed acknowledge link for a firing, unacknowledged alert; NULL when
-- smartetl.public_url is empty.
CREATE FUNCTION smartetl.ack_link(alert_id bigint) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base text := rtrim(coalesce(current_setting('smartetl.public_url', true), ''), '/');
    a smartetl.alert;
BEGIN
    IF base = '' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = ack_link.alert_id;
    IF NOT FOUND OR a.state <> 'firing' THEN
        RAISE EXCEPTION 'no firing alert %', ack_link.alert_id
            USING ERRCODE = 'no_data_found', HINT = 'See smartetl.alert_status for the firing alerts and their ids.';
    END IF;
    IF a.acked_by IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already acknowledged by %', a.alert_id, a.acked_by
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN base || '/ack/'
        || smartetl._ack_link_token(a.alert_id, now() + current_setting('smartetl.ack_link_ttl')::interval);
END $$;
COMMENT ON FUNCTION smartetl.ack_link(bigint) IS 'a signed one-click acknowledge link for a firing, unacknowledged alert (<smartetl.public_url>/ack/<token>, valid for smartetl.ack_link_ttl, once); NULL when smartetl.public_url is empty';

-- API: Private
-- What a notification adds to an alert's annotations for the link:
-- {"ack_url": ...} for a firing, unacknowledged alert when
-- smartetl.public_url is set, else {} (so nothing changes without it).
CREATE FUNCTION smartetl._alert_ack_link(a smartetl.alert) RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN a.state = 'firing' AND a.acked_by IS NULL
                     AND coalesce(current_setting('smartetl.public_url', true), '') <> ''
                THEN jsonb_build_object('ack_url', smartetl.ack_link(a.alert_id))
                ELSE '{}'::jsonb END
$$;

-- API: Private
-- A page of the acknowledge link: self-contained HTML, no script.
CREATE FUNCTION smartetl._ack_link_html(title text, body text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '<!DOCTYPE html>' || E'\n'
        || '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        || '<meta name="robots" content="noindex,nofollow"><title>' || smartetl._html_escape(title) || ' - smartetl</title>'
        || '<style>body{margin:0;padding:24px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;'
        || 'font-size:15px;line-height:1.5;color:#1f2328;background:#f6f8fa}main{max-width:620px;margin:0 auto;'
        || 'padding:20px 24px;background:#fff;border:1px solid #d0d7de;border-radius:6px}h1{font-size:20px;margin:0 0 12px}'
        || 'table{border-collapse:collapse}td{padding:3px 14px 3px 0;vertical-align:top}td:first-child{color:#57606a}'
        || 'input{font-size:15px;padding:6px 8px;width:60%}button{font-size:15px;padding:8px 16px;margin-top:12px;'
        || 'color:#fff;background:#1f883d;border:0;border-radius:6px;cursor:pointer}.note{color:#57606a;font-size:13px}</style>'
        || '</head><body><main><h1>' || smartetl._html_escape(title) || '</h1>' || E'\n'
        || body || E'\n</main></body></html>\n'
$$;

-- API: Private
-- The answer of the intake to GET (confirm = false) or POST (confirm =
-- true) of /ack/<token>: an HTTP status and an HTML page.  Nothing but a
-- POST of a valid link of a firing, unacknowledged alert changes anything:
-- malformed 400, bad signature 403, expired 410, already used 409, alert
-- gone 404, alert resolved or acknowledged 409.  by: the name typed on the
-- page (else "link").  Called by the intake worker only.
CREATE FUNCTION smartetl._ack_link_page(token text, confirm boolean, by text DEFAULT NULL,
                                        OUT status integer, OUT page text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v record;
    a smartetl.alert;
    u smartetl.ack_link_use;
    who text := nullif(left(btrim(regexp_replace(coalesce(by, ''), '[[:cntrl:]]+', ' ', 'g')), 100), '');
    facts text;
    utc constant text := 'YYYY-MM-DD HH24:MI:SS "UTC"';
BEGIN
    SELECT * INTO v FROM smartetl._ack_link_verify(coalesce(token, ''));
    IF v.alert_id IS NULL THEN
        status := 400;
        page := smartetl._ack_link_html('Not an acknowledge link',
            '<p>This address is not a complete acknowledge link. If it was cut in two (some mail programs break long '
            || 'lines), copy the whole link from the notification.</p>');
        RETURN;
    END IF;
    IF NOT v.signed THEN
        status := 403;
        page := smartetl._ack_link_html('Invalid acknowledge link',
            '<p>This link''s signature does not match: it was altered, or it comes from another smartetl '
            || 'installation, or its signing secret was replaced. Nothing was acknowledged.</p>');
        RETURN;
    END IF;
    IF v.expires <= now() THEN
        status := 410;
        page := smartetl._ack_link_html('Expired acknowledge link',
            format('<p>This link expired at %s. Nothing was acknowledged. Use the link of a later notification, or '
                   || '<code>SELECT smartetl.ack(%s, ''your name'')</code>.</p>',
                   to_char(v.expires AT TIME ZONE 'UTC', utc), v.alert_id));
        RETURN;
    END IF;
    SELECT * INTO u FROM smartetl.ack_link_use x WHERE x.nonce = v.nonce;
    IF FOUND THEN
        status := 409;
        page := smartetl._ack_link_html('Acknowledge link already used',
            format('<p>This link was used by %s at %s; a link acknowledges once. Nothing changed.</p>',
                   smartetl._html_escape(u.used_by), to_char(u.used_at AT TIME ZONE 'UTC', utc)));
        RETURN;
    END IF;
    -- the POST locks the alert: of two at once, the second sees the first's acknowledgement
    IF confirm THEN
        SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = v.alert_id FOR UPDATE;
    ELSE
        SELECT * INTO a FROM smartetl.alert x WHERE x.alert_id = v.alert_id;
    END IF;
    IF a.alert_id IS NULL THEN
        status := 404;
        page := smartetl._ack_link_html('Alert not found',
            format('<p>Alert %s no longer exists. Nothing was acknowledged.</p>', v.alert_id));
        RETURN;
    END IF;
    facts := '<table>'
        || format('<tr><td>Alert</td><td>%s</td></tr>', a.alert_id)
        || coalesce('<tr><td>Summary</td><td>' || smartetl._html_escape(nullif(a.annotations->>'summary', '')) || '</td></tr>', '')
        || format('<tr><td>Rule</td><td>%s</td></tr>', smartetl._html_escape(a.rule_name))
        || coalesce('<tr><td>Pipeline</td><td>'
                    || smartetl._html_escape(nullif(concat_ws('/', a.labels->>'namespace', a.labels->>'pipeline'), '')) || '</td></tr>', '')
        || coalesce('<tr><td>Severity</td><td>' || smartetl._html_escape(nullif(a.labels->>'severity', '')) || '</td></tr>', '')
        || format('<tr><td>Firing since</td><td>%s</td></tr>', to_char(a.started_at AT TIME ZONE 'UTC', utc))
        || '</table>';
    IF a.state <> 'firing' THEN
        status := 409;
        page := smartetl._ack_link_html('Alert already resolved',
            format('<p>This alert resolved at %s; there is nothing to acknowledge.</p>',
                   to_char(a.resolved_at AT TIME ZONE 'UTC', utc)) || facts);
        RETURN;
    END IF;
    IF a.acked_by IS NOT NULL THEN
        status := 409;
        page := smartetl._ack_link_html('Alert already acknowledged',
            format('<p>This alert was acknowledged by %s at %s. Nothing changed.</p>',
                   smartetl._html_escape(a.acked_by), to_char(a.acked_at AT TIME ZONE 'UTC', utc)) || facts);
        RETURN;
    END IF;
    IF NOT confirm THEN
        -- opening the link changes nothing: link previews and mail scanners fetch it too
        status := 200;
        page := smartetl._ack_link_html('Acknowledge this alert?',
            facts
            || '<form method="post" action="" autocomplete="on"><p><label>Your name (shown as who acknowledged): '
            || '<br><input type="text" name="by" maxlength="100" autocomplete="name"></label><br>'
            || '<button type="submit">Acknowledge</button></p></form>'
            || format('<p class="note">Opening this page changes nothing; the alert is acknowledged when you press the '
                      || 'button. Acknowledging stops its escalation. This link works once, until %s.</p>',
                      to_char(v.expires AT TIME ZONE 'UTC', utc)));
        RETURN;
    END IF;
    DELETE FROM smartetl.ack_link_use x WHERE x.expires_at < now();
    INSERT INTO smartetl.ack_link_use (nonce, alert_id, used_by, expires_at)
    VALUES (v.nonce, a.alert_id, coalesce(who, 'link'), v.expires);
    a := smartetl.ack(a.alert_id, coalesce(who, 'link'), 'acknowledged with a signed link');
    status := 200;
    page := smartetl._ack_link_html('Alert acknowledged',
        format('<p>Alert %s is acknowledged by %s at %s; its escalation stops, and its next notifications say so. '
               || '<code>SELECT smartetl.unack(%s)</code> withdraws it.</p>',
               a.alert_id, smartetl._html_escape(a.acked_by), to_char(a.acked_at AT TIME ZONE 'UTC', utc), a.alert_id)
        || facts);
END $$;
COMMENT ON FUNCTION smartetl._ack_link_page(text, boolean, text) IS 'the HTTP status and HTML page for GET (confirm false: a confirmation page, changes nothing) or POST (confirm true: acknowledges) of an acknowledge link';

-- API: Private
-- An alert's signed acknowledge link (annotations.ack_url, smartetl.ack_link)
-- when it is an http(s) URL like n.link, else NULL: the builders then add
-- an "Acknowledge" button or link to that alert, and nothing otherwise.
CREATE FUNCTION smartetl._alert_ack_url(ann jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ann->>'ack_url' ~* '^https?://[^\s<>"]+$' AND pg_catalog.length(ann->>'ack_url') <= 3000
            THEN ann->>'ack_url' END;
COMMENT ON FUNCTION smartetl._alert_ack_url(jsonb) IS 'an alert''s annotations.ack_url when it is an http(s) URL of at most 3000 characters, else NULL';

CREATE OR REPLACE FUNCTION smartetl._payload_slack(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 10;
    o        jsonb := coalesce(opts, '{}');
    resolved boolean;
    sev      text;
    title    text;
    link     text;
    mention  text;
    emoji    text;
    intro    text;
    blocks   jsonb;
    fields   jsonb;
    txt      text;
    total    int := 0;
    r        record;
BEGIN
    PERFORM smartetl._alert_check(n);
    resolved := smartetl._alert_resolved(n);
    sev := smartetl._alert_severity(n);
    title := smartetl._alert_title(n, o);
    link := smartetl._alert_link(n);
    mention := CASE WHEN NOT resolved THEN smartetl._alert_slack_mention(o->>'mention') END;
    emoji := CASE WHEN resolved THEN ':white_check_mark:' WHEN sev = 'critical' THEN ':red_circle:'
                  WHEN sev = 'warning' THEN ':warning:' WHEN sev = 'info' THEN ':information_source:'
                  ELSE ':bell:' END;

    -- header (plain_text: shown as is, never parsed)
    blocks := jsonb_build_array(jsonb_build_object('type', 'header',
        'text', jsonb_build_object('type', 'plain_text', 'emoji', true,
                                   'text', smartetl._alert_trunc(emoji || ' ' || title, 150))));

    SELECT count(*) INTO total FROM smartetl._alert_rows(n);
    intro := concat_ws(' ', mention,
        CASE WHEN resolved THEN '*Resolved*' ELSE '*Firing*' END
        || coalesce(' - rule *' || smartetl._alert_slack_escape(nullif(n->'rule'->>'name', '')) || '*', '')
        || coalesce(' (' || smartetl._alert_slack_escape(nullif(n->'rule'->>'kind', '')) || ')', '')
        || coalesce(', severity *' || smartetl._alert_slack_escape(sev) || '*', '')
        || format(', %s alert%s', total, CASE WHEN total = 1 THEN '' ELSE 's' END));
    blocks := blocks || jsonb_build_object('type', 'section',
        'text', jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(intro, 3000, true)));

    FOR r IN SELECT * FROM smartetl._alert_rows(n) LIMIT max_alerts LOOP
        -- what: summary, status, description
        txt := CASE WHEN r.resolved THEN ':white_check_mark:' ELSE ':rotating_light:' END
               || ' *' || smartetl._alert_slack_escape(r.summary) || '* - '
               || CASE WHEN r.resolved
                       THEN 'resolved' || coalesce(' at ' || smartetl._alert_slack_escape(smartetl._alert_human_ts(r.ends_at)), '')
                       ELSE 'firing' END
               || coalesce(E'\n' || smartetl._alert_slack_escape(r.description), '');
        -- where, how bad, since when, how many runs
        SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'mrkdwn',
                   'text', smartetl._alert_trunc('*' || f.label || E'*\n' || smartetl._alert_slack_escape(f.val), 2000, true))
                   ORDER BY f.i), '[]')
        INTO fields
        FROM (VALUES (1, 'Pipeline', concat_ws('/', r.namespace, r.pipeline)),
                     (2, 'Severity', r.severity),
                     (3, 'Since', smartetl._alert_human_ts(coalesce(r.since, r.starts_at))),
                     (4, 'Runs', smartetl._alert_runs_text(r.history)),
                     (5, 'Value', r.value),
                     (6, 'Host', r.host)) AS f(i, label, val)
        WHERE nullif(f.val, '') IS NOT NULL;
        blocks := blocks || (jsonb_build_object('type', 'section',
                      'text', jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true)))
                  || CASE WHEN jsonb_array_length(fields) > 0 THEN jsonb_build_object('fields', fields) ELSE '{}' END
                  -- a signed acknowledge link: a button beside the alert
                  || CASE WHEN NOT r.resolved AND smartetl._alert_ack_url(r.annotations) IS NOT NULL
                          THEN jsonb_build_object('accessory', jsonb_build_object('type', 'button',
                                   'action_id', 'smartetl_ack_' || r.ord, 'style', 'primary',
                                   'url', smartetl._alert_ack_url(r.annotations),
                                   'text', jsonb_build_object('type', 'plain_text', 'text', 'Acknowledge', 'emoji', true)))
                          ELSE '{}' END);
        -- the error: template and last message as code blocks
        IF r.error_template IS NOT NULL OR r.error IS NOT NULL THEN
            txt := concat_ws(E'\n',
                       CASE WHEN r.error_template IS NOT NULL
                            THEN E'*Error template*\n' || smartetl._alert_slack_code(r.error_template, 1400) END,
                       CASE WHEN r.error IS NOT NULL AND r.error IS DISTINCT FROM r.error_template
                            THEN E'*Last error*\n' || smartetl._alert_slack_code(r.error, 1400) END);
            blocks := blocks || jsonb_build_object('type', 'section',
                'text', jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true)));
        END IF;
        -- recent runs, one line
        SELECT '*Recent runs:* ' || string_agg(
                   CASE WHEN h.failed THEN ':x: ' WHEN h.status = 'success' THEN ':white_check_mark: ' ELSE ':grey_question: ' END
                   || smartetl._alert_slack_escape(h.run_at || ' ' || h.status || coalesce(' (' || h.duration || ')', '')),
                   ' | ' ORDER BY h.ord)
        INTO txt
        FROM smartetl._alert_history(r.history, 10) h;
        IF txt IS NOT NULL THEN
            blocks := blocks || jsonb_build_object('type', 'context', 'elements',
                jsonb_build_array(jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true))));
        END IF;
    END LOOP;

    IF total > max_alerts THEN
        blocks := blocks || jsonb_build_object('type', 'context', 'elements', jsonb_build_array(
            jsonb_build_object('type', 'mrkdwn', 'text', format('_%s more alerts not shown_', total - max_alerts))));
    END IF;

    txt := concat_ws(' | ', 'smartetl',
                     'group ' || smartetl._alert_slack_code(nullif(n->>'group_key', ''), 400, true),
                     'key ' || smartetl._alert_slack_code(nullif(n->>'idempotency_key', ''), 400, true),
                     'sent ' || smartetl._alert_slack_escape(smartetl._alert_human_ts(n->>'sent_at')));
    blocks := blocks || jsonb_build_object('type', 'context', 'elements',
        jsonb_build_array(jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true))));

    IF link IS NOT NULL THEN
        blocks := blocks || jsonb_build_object('type', 'actions', 'elements', jsonb_build_array(
            jsonb_build_object('type', 'button', 'action_id', 'smartetl_open_link', 'url', link,
                               'text', jsonb_build_object('type', 'plain_text', 'text', 'Open dashboard', 'emoji', true))));
    END IF;

    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'text', smartetl._alert_trunc(concat_ws(' ', mention, smartetl._alert_slack_escape(title)), 3000, true),
            'blocks', blocks),
        'idempotency_key', n->'idempotency_key');
END $$;

CREATE OR REPLACE FUNCTION smartetl._payload_teams(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 8;
    o        jsonb := coalesce(opts, '{}');
    resolved boolean;
    sev      text;
    link     text;
    total    int;
    body     jsonb;
    items    jsonb;
    facts    jsonb;
    r        record;
BEGIN
    PERFORM smartetl._alert_check(n);
    resolved := smartetl._alert_resolved(n);
    sev := smartetl._alert_severity(n);
    link := smartetl._alert_link(n);
    SELECT count(*) INTO total FROM smartetl._alert_rows(n);

    body := jsonb_build_array(
        jsonb_build_object('type', 'TextBlock', 'size', 'Large', 'weight', 'Bolder', 'wrap', true,
                           'color', CASE WHEN resolved THEN 'Good' ELSE 'Attention' END,
                           'text', smartetl._alert_md_escape(smartetl._alert_trunc(smartetl._alert_title(n, o), 300))),
        jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'spacing', 'None', 'wrap', true,
                           'text', smartetl._alert_md_escape(concat_ws(', ',
                               CASE WHEN resolved THEN 'Resolved' ELSE 'Firing' END,
                               'rule ' || nullif(n->'rule'->>'name', '')
                                   || coalesce(' (' || nullif(n->'rule'->>'kind', '') || ')', ''),
                               'severity ' || sev,
                               format('%s alert%s', total, CASE WHEN total = 1 THEN '' ELSE 's' END)))));

    FOR r IN SELECT * FROM smartetl._alert_rows(n) LIMIT max_alerts LOOP
        items := jsonb_build_array(jsonb_build_object('type', 'TextBlock', 'weight', 'Bolder', 'wrap', true,
            'color', CASE WHEN r.resolved THEN 'Good' ELSE 'Attention' END,
            'text', smartetl._alert_md_escape(smartetl._alert_trunc(
                        CASE WHEN r.resolved THEN 'RESOLVED: ' ELSE 'FIRING: ' END || r.summary, 300))));
        IF r.description IS NOT NULL THEN
            items := items || jsonb_build_object('type', 'TextBlock', 'wrap', true, 'spacing', 'Small',
                'text', smartetl._alert_md_escape(smartetl._alert_trunc(r.description, 1000)));
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('title', f.label,
                   'value', smartetl._alert_md_escape(smartetl._alert_trunc(f.val, 300))) ORDER BY f.i), '[]')
        INTO facts
        FROM (VALUES (1, 'Status', CASE WHEN r.resolved THEN 'resolved' ELSE 'firing' END),
                     (2, 'Pipeline', concat_ws('/', r.namespace, r.pipeline)),
                     (3, 'Host', r.host),
                     (4, 'Severity', r.severity),
                     (5, 'Since', smartetl._alert_human_ts(coalesce(r.since, r.starts_at))),
                     (6, 'Resolved at', CASE WHEN r.resolved THEN smartetl._alert_human_ts(r.ends_at) END),
                     (7, 'Runs', smartetl._alert_runs_text(r.history)),
                     (8, 'Value', r.value)) AS f(i, label, val)
        WHERE nullif(f.val, '') IS NOT NULL;
        IF jsonb_array_length(facts) > 0 THEN
            items := items || jsonb_build_object('type', 'FactSet', 'facts', facts);
        END IF;
        IF r.error_template IS NOT NULL THEN
            items := items
                || jsonb_build_object('type', 'TextBlock', 'text', 'Error template', 'weight', 'Bolder',
                                      'size', 'Small', 'spacing', 'Medium')
                || jsonb_build_object('type', 'TextBlock', 'wrap', true, 'fontType', 'Monospace', 'spacing', 'Small',
                                      'text', smartetl._alert_md_escape(smartetl._alert_trunc(r.error_template, 600)));
        END IF;
        IF r.error IS NOT NULL AND r.error IS DISTINCT FROM r.error_template THEN
            items := items
                || jsonb_build_object('type', 'TextBlock', 'text', 'Last error', 'weight', 'Bolder',
                                      'size', 'Small', 'spacing', 'Medium')
                || jsonb_build_object('type', 'TextBlock', 'wrap', true, 'fontType', 'Monospace', 'spacing', 'Small',
                                      'text', smartetl._alert_md_escape(smartetl._alert_trunc(r.error, 600)));
        END IF;
        SELECT jsonb_agg(jsonb_build_object('title', smartetl._alert_md_escape(h.run_at),
                   'value', smartetl._alert_md_escape(h.status || coalesce(', ' || h.duration, ''))) ORDER BY h.ord)
        INTO facts
        FROM smartetl._alert_history(r.history, 5) h;
        IF facts IS NOT NULL THEN
            items := items
                || jsonb_build_object('type', 'TextBlock', 'text', 'Recent runs', 'weight', 'Bolder',
                                      'size', 'Small', 'spacing', 'Medium')
                || jsonb_build_object('type', 'FactSet', 'spacing', 'Small', 'facts', facts);
        END IF;
        IF NOT r.resolved AND smartetl._alert_ack_url(r.annotations) IS NOT NULL THEN
            items := items || jsonb_build_object('type', 'ActionSet', 'actions', jsonb_build_array(
                jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Acknowledge',
                                   'url', smartetl._alert_ack_url(r.annotations))));
        END IF;
        body := body || jsonb_build_object('type', 'Container', 'separator', true, 'spacing', 'Medium', 'items', items);
    END LOOP;

    IF total > max_alerts THEN
        body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'wrap', true,
                                           'text', format('%s more alerts not shown', total - max_alerts));
    END IF;
    body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'size', 'Small', 'wrap', true,
        'separator', true,
        'text', smartetl._alert_md_escape(concat_ws(' | ', 'smartetl',
                    'group ' || smartetl._alert_trunc(nullif(n->>'group_key', ''), 300),
                    'key ' || smartetl._alert_trunc(nullif(n->>'idempotency_key', ''), 300),
                    'sent ' || smartetl._alert_human_ts(n->>'sent_at'))));

    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'type', 'message',
            'attachments', jsonb_build_array(jsonb_build_object(
                'contentType', 'application/vnd.microsoft.card.adaptive',
                'contentUrl', NULL,
                'content', jsonb_build_object(
                    '$schema', 'http://adaptivecards.io/schemas/adaptive-card.json',
                    'type', 'AdaptiveCard',
                    'version', '1.4',
                    'body', body,
                    'actions', CASE WHEN link IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(
                        jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Open dashboard', 'url', link)) END,
                    'msteams', jsonb_build_object('width', 'Full'))))),
        'idempotency_key', n->'idempotency_key');
END $$;

CREATE OR REPLACE FUNCTION smartetl._payload_email(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 50;
    o        jsonb := coalesce(opts, '{}');
    resolved boolean;
    sev      text;
    title    text;
    link     text;
    total    int;
    color    text;
    intro    text;
    t        text[] := '{}';
    h        text[] := '{}';
    facts    text;
    hist_t   text;
    hist_h   text;
    r        record;
    result   jsonb;
    esc_link text;
    td       constant text := 'padding:4px 12px 4px 0;vertical-align:top;';
    pre      constant text := 'margin:4px 0 12px 0;padding:8px 10px;background:#f6f8fa;border:1px solid #e1e4e8;'
                              'border-radius:4px;font-family:Menlo,Consolas,monospace;font-size:13px;'
                              'white-space:pre-wrap;word-break:break-all;';
BEGIN
    PERFORM smartetl._alert_check(n);
    resolved := smartetl._alert_resolved(n);
    sev := smartetl._alert_severity(n);
    title := smartetl._alert_title(n, o);
    link := smartetl._alert_link(n);
    esc_link := smartetl._html_escape(link);
    SELECT count(*) INTO total FROM smartetl._alert_rows(n);
    color := CASE WHEN resolved THEN '#2e7d32' WHEN sev = 'critical' THEN '#c62828'
                  WHEN sev = 'warning' THEN '#ef6c00' ELSE '#1565c0' END;
    intro := concat_ws(', ',
                 CASE WHEN resolved THEN 'RESOLVED' ELSE 'FIRING' END,
                 'rule ' || nullif(n->'rule'->>'name', '') || coalesce(' (' || nullif(n->'rule'->>'kind', '') || ')', ''),
                 'severity ' || sev,
                 format('%s alert%s', total, CASE WHEN total = 1 THEN '' ELSE 's' END));

    t := ARRAY[title, repeat('=', least(length(title), 72)), '', intro];
    IF nullif(n->>'group_key', '') IS NOT NULL THEN
        t := t || ('Group: ' || (n->>'group_key'));
    END IF;
    h := ARRAY['<!DOCTYPE html>',
               '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
               '<title>' || smartetl._html_escape(title) || '</title></head>',
               '<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;'
                   || 'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;">',
               '<div style="max-width:760px;">',
               format('<div style="border-left:6px solid %s;padding:8px 14px;background:#f6f8fa;">', color),
               format('<h1 style="margin:0;font-size:20px;color:%s;">%s</h1>', color, smartetl._html_escape(title)),
               format('<p style="margin:4px 0 0 0;color:#57606a;">%s%s</p>', smartetl._html_escape(intro),
                      coalesce('<br>Group: <code>' || smartetl._html_escape(nullif(n->>'group_key', '')) || '</code>', '')),
               '</div>'];

    FOR r IN SELECT * FROM smartetl._alert_rows(n) LIMIT max_alerts LOOP
        -- plain text
        t := t || ''::text
               || format('[%s] %s - %s', r.ord, r.summary, CASE WHEN r.resolved THEN 'RESOLVED' ELSE 'FIRING' END);
        SELECT string_agg(format('    %-12s %s', f.label || ':', f.val), E'\n' ORDER BY f.i)
        INTO facts
        FROM (VALUES (1, 'Where', concat_ws(' on ', nullif(concat_ws('/', r.namespace, r.pipeline), ''), r.host)),
                     (2, 'Since', smartetl._alert_human_ts(coalesce(r.since, r.starts_at))
                                  || CASE WHEN r.since IS NOT NULL AND r.starts_at IS NOT NULL
                                          THEN ' (alert started ' || smartetl._alert_human_ts(r.starts_at) || ')' ELSE '' END),
                     (3, 'Resolved', CASE WHEN r.resolved THEN coalesce(smartetl._alert_human_ts(r.ends_at), 'yes') END),
                     (4, 'Severity', r.severity),
                     (5, 'Runs', smartetl._alert_runs_text(r.history)),
                     (6, 'Value', r.value)) AS f(i, label, val)
        WHERE nullif(f.val, '') IS NOT NULL;
        t := t || facts;
        IF NOT r.resolved AND smartetl._alert_ack_url(r.annotations) IS NOT NULL THEN
            t := t || ('    Acknowledge: ' || smartetl._alert_ack_url(r.annotations));
        END IF;
        IF r.description IS NOT NULL THEN
            t := t || ('    ' || replace(smartetl._alert_trunc(r.description, 4000), E'\n', E'\n    '));
        END IF;
        IF r.error_template IS NOT NULL THEN
            t := t || '    Error template:'::text
                   || ('        ' || replace(smartetl._alert_trunc(r.error_template, 4000), E'\n', E'\n        '));
        END IF;
        IF r.error IS NOT NULL AND r.error IS DISTINCT FROM r.error_template THEN
            t := t || '    Last error:'::text
                   || ('        ' || replace(smartetl._alert_trunc(r.error, 4000), E'\n', E'\n        '));
        END IF;
        SELECT string_agg(format('        %-21s %-10s %s', x.run_at, x.status, coalesce(x.duration, '')), E'\n' ORDER BY x.ord),
               string_agg(format('<tr><td style="%s">%s</td><td style="%scolor:%s;font-weight:600;">%s</td>'
                                 '<td style="%stext-align:right;">%s</td></tr>',
                                 td, smartetl._html_escape(x.run_at), td,
                                 CASE WHEN x.failed THEN '#c62828' WHEN x.status = 'success' THEN '#2e7d32' ELSE '#57606a' END,
                                 smartetl._html_escape(x.status), td, coalesce(smartetl._html_escape(x.duration), '&ndash;')),
                          '' ORDER BY x.ord)
        INTO hist_t, hist_h
        FROM smartetl._alert_history(r.history, 10) x;
        IF hist_t IS NOT NULL THEN
            t := t || '    Recent runs:'::text || rtrim(hist_t);
        END IF;

        -- HTML
        h := h || format('<h2 style="margin:20px 0 4px 0;font-size:16px;">'
                         '<span style="display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px;'
                         'font-size:12px;color:#ffffff;background:%s;">%s</span>%s</h2>',
                         CASE WHEN r.resolved THEN '#2e7d32' ELSE color END,
                         CASE WHEN r.resolved THEN 'RESOLVED' ELSE 'FIRING' END,
                         smartetl._html_escape(r.summary));
        IF r.description IS NOT NULL THEN
            h := h || format('<p style="margin:0 0 8px 0;white-space:pre-wrap;">%s</p>',
                             smartetl._html_escape(smartetl._alert_trunc(r.description, 4000)));
        END IF;
        SELECT string_agg(format('<tr><td style="%scolor:#57606a;white-space:nowrap;">%s</td><td style="%s">%s</td></tr>',
                                 td, f.label, td, smartetl._html_escape(f.val)), '' ORDER BY f.i)
        INTO facts
        FROM (VALUES (1, 'Pipeline', concat_ws('/', r.namespace, r.pipeline)),
                     (2, 'Host', r.host),
                     (3, 'Since', smartetl._alert_human_ts(coalesce(r.since, r.starts_at))),
                     (4, 'Alert started', smartetl._alert_human_ts(r.starts_at)),
                     (5, 'Resolved', CASE WHEN r.resolved THEN coalesce(smartetl._alert_human_ts(r.ends_at), 'yes') END),
                     (6, 'Severity', r.severity),
                     (7, 'Runs', smartetl._alert_runs_text(r.history)),
                     (8, 'Value', r.value)) AS f(i, label, val)
        WHERE nullif(f.val, '') IS NOT NULL;
        IF facts IS NOT NULL THEN
            h := h || ('<table role="presentation" style="border-collapse:collapse;font-size:14px;">' || facts || '</table>');
        END IF;
        IF NOT r.resolved AND smartetl._alert_ack_url(r.annotations) IS NOT NULL THEN
            h := h || format('<p style="margin:8px 0;"><a href="%s" style="display:inline-block;padding:6px 12px;'
                             'background:#1f883d;color:#ffffff;text-decoration:none;border-radius:4px;">Acknowledge</a></p>',
                             smartetl._html_escape(smartetl._alert_ack_url(r.annotations)));
        END IF;
        IF r.error_template IS NOT NULL THEN
            h := h || '<p style="margin:12px 0 0 0;font-weight:600;">Error template</p>'::text
                   || format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(r.error_template, 4000)));
        END IF;
        IF r.error IS NOT NULL AND r.error IS DISTINCT FROM r.error_template THEN
            h := h || '<p style="margin:12px 0 0 0;font-weight:600;">Last error</p>'::text
                   || format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(r.error, 4000)));
        END IF;
        IF hist_h IS NOT NULL THEN
            h := h || '<p style="margin:12px 0 4px 0;font-weight:600;">Recent runs</p>'::text
                   || ('<table style="border-collapse:collapse;font-size:13px;"><tr>'
                       || format('<th style="%stext-align:left;color:#57606a;">Run</th>', td)
                       || format('<th style="%stext-align:left;color:#57606a;">Status</th>', td)
                       || format('<th style="%stext-align:right;color:#57606a;">Duration</th></tr>', td)
                       || hist_h || '</table>');
        END IF;
    END LOOP;

    IF total > max_alerts THEN
        t := t || ''::text || format('... and %s more alerts', total - max_alerts);
        h := h || format('<p style="color:#57606a;">&hellip; and %s more alerts</p>', total - max_alerts);
    END IF;
    IF link IS NOT NULL THEN
        t := t || ''::text || ('Dashboard: ' || link);
        h := h || format('<p style="margin:20px 0;"><a href="%s" style="display:inline-block;padding:8px 14px;'
                         'background:%s;color:#ffffff;text-decoration:none;border-radius:4px;">Open dashboard</a>'
                         '<br><span style="font-size:12px;color:#57606a;word-break:break-all;">%s</span></p>',
                         esc_link, color, esc_link);
    END IF;
    t := t || ''::text || '-- '::text
           || concat_ws(', ', 'smartetl notification ' || nullif(n->>'idempotency_key', ''),
                        'sent ' || smartetl._alert_human_ts(n->>'sent_at'));
    h := h || format('<p style="margin-top:24px;font-size:12px;color:#57606a;border-top:1px solid #d0d7de;padding-top:8px;">%s</p>',
                     smartetl._html_escape(concat_ws(', ', 'smartetl notification ' || nullif(n->>'idempotency_key', ''),
                                                     'sent ' || smartetl._alert_human_ts(n->>'sent_at'))))
           || '</div></body></html>'::text;

    result := jsonb_build_object(
        'content_type', 'multipart/alternative',
        'subject', smartetl._alert_trunc(title, 250),
        'text', array_to_string(t, E'\n') || E'\n',
        'html', array_to_string(h, E'\n') || E'\n',
        'idempotency_key', n->'idempotency_key');
    IF nullif(o->>'from', '') IS NOT NULL THEN
        result := result || jsonb_build_object('from', o->>'from');
    END IF;
    IF jsonb_typeof(o->'to') = 'array' THEN
        result := result || jsonb_build_object('to', o->'to');
    ELSIF nullif(o->>'to', '') IS NOT NULL THEN
        result := result || jsonb_build_object('to', jsonb_build_array(o->>'to'));
    END IF;
    RETURN result;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_notification(p_group_key text, idempotency_key text, link text,
                                             resolved_for text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'idempotency_key', idempotency_key,
        'group_key', p_group_key,
        'status', CASE WHEN bool_or(a.state = 'firing') THEN 'firing' ELSE 'resolved' END,
        'rule', jsonb_build_object('name', min(a.rule_name), 'kind', min(a.labels->>'rule_kind'),
                                   'severity', min(a.labels->>'severity')),
        'group_labels', (SELECT g.labels FROM smartetl.alert_group g WHERE g.group_key = p_group_key),
        'alerts', jsonb_agg(jsonb_build_object(
            'fingerprint', a.fingerprint, 'status', a.state, 'starts_at', a.started_at,
            'ends_at', a.resolved_at, 'labels', a.labels - 'rule_kind',
            'annotations', a.annotations || smartetl._alert_extras(a) || smartetl._alert_ack_link(a),
            'value', a.value) ORDER BY a.started_at, a.fingerprint),
        'link', link,
        'sent_at', now())
    FROM smartetl.alert a
    WHERE a.group_key = p_group_key
      AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
           OR (resolved_for IS NULL AND a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a))
           OR (a.state = 'resolved' AND a.fingerprint = ANY (resolved_for)
               AND NOT EXISTS (SELECT 1 FROM smartetl.alert f WHERE f.fingerprint = a.fingerprint AND f.state = 'firing')
               AND a.resolved_at = (SELECT max(l.resolved_at) FROM smartetl.alert l WHERE l.fingerprint = a.fingerprint)))
$$;
SELECT pg_catalog.pg_extension_config_dump('smartetl.ack_link_use', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.ack_link_secret', 'WHERE false');
REVOKE ALL ON FUNCTION smartetl._random_bytes(integer), smartetl._ack_link_token(bigint, timestamptz),
                       smartetl._ack_link_verify(text), smartetl.ack_link(bigint),
                       smartetl._alert_ack_link(smartetl.alert), smartetl._ack_link_html(text, text),
                       smartetl._ack_link_page(text, boolean, text), smartetl._alert_ack_url(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl._alert_ack_url(jsonb) TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.ack_link(bigint), smartetl._ack_link_token(bigint, timestamptz)
    TO smartetl_oncall;
GRANT EXECUTE ON FUNCTION smartetl._alert_ack_link(smartetl.alert) TO smartetl_admin;
GRANT SELECT ON smartetl.ack_link_use TO smartetl_admin;



-- ---------------------------------------------------------------------------
-- alertscale (issue 13): incremental alert evaluation
-- ---------------------------------------------------------------------------
DROP FUNCTION smartetl.alert_rule_kinds();

CREATE FUNCTION smartetl.alert_rule_kinds()
RETURNS TABLE (kind text, evaluated_every interval, takes_query boolean, description text,
              driven_by text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('run_failed', interval '0', false,
            'the latest finished run of a pipeline failed (once its retries are exhausted)', 'runs'),
           ('consecutive_failures', interval '0', false,
            'at least threshold (default 3) runs of a pipeline failed in a row', 'runs'),
           ('duration_anomaly', interval '5 minutes', false,
            'the latest successful run took abnormally long or short (robust score above threshold, default 4)', 'clock'),
           ('volume_anomaly', interval '5 minutes', false,
            'the latest successful run wrote an abnormal number of rows (robust score above threshold, default 4)', 'clock'),
           ('freshness', interval '0', false,
            'no run, or no success, for longer than the interval the pipeline usually keeps', 'runs and clock'),
           ('deadline', interval '0', false,
            'no successful run finished since a scheduled start whose deadline passed (pipeline schedule and deadline)', 'runs and clock'),
           ('risk', interval '5 minutes', false,
            'the predicted risk of failure within a day is above threshold (default 0.5)', 'clock'),
           ('model_drift', interval '5 minutes', false,
            'the champion risk model drifted (PSI above threshold, default 0.25) or lost accuracy', 'clock'),
           ('sql', interval '0', true,
            'query, a read-only SELECT of (pipeline, value), run as smartetl_reader; fires above threshold', 'clock')
$$;

COMMENT ON FUNCTION smartetl.alert_rule_kinds() IS 'the alert rule kinds: how often each is evaluated at most, whether it takes a query, what it fires on, what makes it evaluated (runs: the pipelines whose runs changed; runs and clock: those, and each pipeline when it becomes due; clock: the whole rule every evaluated_every)';

CREATE INDEX alert_firing_pipeline ON smartetl.alert ((labels->>'pipeline'), rule_name) WHERE state = 'firing';

CREATE INDEX alert_inhibited ON smartetl.alert (inhibited_by) WHERE inhibited_by IS NOT NULL;

CREATE INDEX alert_silenced ON smartetl.alert (alert_id) WHERE silenced AND state = 'firing';

CREATE INDEX alert_muted ON smartetl.alert (alert_id) WHERE muted_by IS NOT NULL;

CREATE INDEX delivery_muted ON smartetl.delivery (channel, group_key) WHERE status = 'muted';

ALTER TABLE smartetl.alert_rule_state ADD COLUMN full_at timestamptz;

COMMENT ON TABLE smartetl.alert_rule_state IS 'when each rule was last evaluated (full_at: over every pipeline rather than the changed ones), its last evaluation error, and, for a sql rule that ran into smartetl.rule_timeout, when it is tried again';

CREATE TABLE smartetl.alert_changed (
    pipeline_id  bigint
);
COMMENT ON TABLE smartetl.alert_changed IS 'pipelines whose runs or settings changed since the last alert evaluation (NULL: evaluate everything); written by triggers, emptied by evaluate_alerts()';

-- API: Private
CREATE TABLE smartetl.alert_rule_due (
    rule_name    text NOT NULL,
    pipeline_id  bigint NOT NULL,
    due_at       timestamptz NOT NULL,
    PRIMARY KEY (rule_name, pipeline_id)
);
COMMENT ON TABLE smartetl.alert_rule_due IS 'when a freshness or deadline rule must next be evaluated for a pipeline with no new run (it becomes overdue, its next deadline passes)';
CREATE INDEX alert_rule_due_at ON smartetl.alert_rule_due (rule_name, due_at);

-- API: Private
CREATE TABLE smartetl.alert_group_due (
    group_key  text PRIMARY KEY,
    due_at     timestamptz NOT NULL
);
COMMENT ON TABLE smartetl.alert_group_due IS 'when each alert group must next be examined for a notification: -infinity after its alerts or its notification state changed, else its group_wait, group_interval, repeat_interval, Alertmanager re-post or snooze end';
CREATE INDEX alert_group_due_at ON smartetl.alert_group_due (due_at);

-- API: Private
CREATE TABLE smartetl.alert_eval_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    full_at    timestamptz NOT NULL
);
COMMENT ON TABLE smartetl.alert_eval_state IS 'when the last full alert evaluation ran';

-- API: Private
-- The pipeline graph of inhibition, kept up to date for the changed
-- pipelines: datasets read and written by each pipeline's latest 20 runs,
-- and the edges parent -> child (runs whose parent run is of another
-- pipeline) and writer -> reader (lineage).
CREATE TABLE smartetl.alert_io (
    pipeline_id  bigint NOT NULL,
    dir          text NOT NULL,
    ds           text NOT NULL,
    PRIMARY KEY (pipeline_id, dir, ds)
);
CREATE INDEX alert_io_ds ON smartetl.alert_io (ds, dir);
COMMENT ON TABLE smartetl.alert_io IS 'datasets read (in) and written (out) by the latest 20 runs of each pipeline (OpenLineage inputs and outputs), for inhibition';
-- API: Private
CREATE TABLE smartetl.alert_edge (
    up       bigint NOT NULL,
    down     bigint NOT NULL,
    lineage  boolean NOT NULL,
    PRIMARY KEY (up, down, lineage)
);
CREATE INDEX alert_edge_down ON smartetl.alert_edge (down);
COMMENT ON TABLE smartetl.alert_edge IS 'pipeline graph for inhibition: up is the parent (lineage false) or the upstream writer (lineage true) of down';

-- API: Private
-- Runs inserted, updated or deleted: their pipelines changed.
CREATE FUNCTION smartetl._alert_run_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO smartetl.alert_changed (pipeline_id) SELECT DISTINCT n.pipeline_id FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO smartetl.alert_changed (pipeline_id)
        SELECT n.pipeline_id FROM new_rows n UNION SELECT o.pipeline_id FROM old_rows o;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO smartetl.alert_changed (pipeline_id) SELECT DISTINCT o.pipeline_id FROM old_rows o;
    ELSE
        INSERT INTO smartetl.alert_changed (pipeline_id) VALUES (NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_alert_changed_insert AFTER INSERT ON smartetl.run
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_run_changed();
CREATE TRIGGER run_alert_changed_update AFTER UPDATE ON smartetl.run
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_run_changed();
CREATE TRIGGER run_alert_changed_delete AFTER DELETE ON smartetl.run
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_run_changed();
CREATE TRIGGER run_alert_changed_truncate AFTER TRUNCATE ON smartetl.run
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_run_changed();

-- API: Private
-- Pipelines created or changed (tags, intervals, schedules): they changed;
-- renamed or deleted: their alerts are found by name, so a full pass.
CREATE FUNCTION smartetl._alert_pipeline_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO smartetl.alert_changed (pipeline_id) SELECT n.pipeline_id FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO smartetl.alert_changed (pipeline_id)
        SELECT DISTINCT CASE WHEN n.namespace = o.namespace AND n.name = o.name THEN n.pipeline_id END
        FROM new_rows n JOIN old_rows o USING (pipeline_id)
        WHERE n IS DISTINCT FROM o;
    ELSE
        INSERT INTO smartetl.alert_changed (pipeline_id) VALUES (NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER pipeline_alert_changed_insert AFTER INSERT ON smartetl.pipeline
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_pipeline_changed();
CREATE TRIGGER pipeline_alert_changed_update AFTER UPDATE ON smartetl.pipeline
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_pipeline_changed();
CREATE TRIGGER pipeline_alert_changed_delete AFTER DELETE OR TRUNCATE ON smartetl.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_pipeline_changed();

-- API: Private
-- Rules written: the next pass is a full one.
CREATE FUNCTION smartetl._alert_rules_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO smartetl.alert_changed (pipeline_id) VALUES (NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER alert_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smartetl.alert_rule
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_rules_changed();

-- API: Private
-- Alerts or groups whose notification state changed (fired, resolved,
-- muted, unmuted, notified, or edited by hand): the group is examined by
-- the next pass.
CREATE FUNCTION smartetl._alert_group_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'alert_group' THEN
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT o.group_key, '-infinity'::timestamptz FROM old_rows o
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT n.group_key, '-infinity'::timestamptz FROM new_rows n
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at;
    ELSE
        -- value, annotations and last_seen_at alone notify nobody
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT x.group_key, '-infinity'::timestamptz
        FROM (SELECT n.group_key FROM new_rows n JOIN old_rows o USING (alert_id)
              WHERE (n.group_key, n.state, n.notified_state, n.silenced, n.inhibited_by, n.muted_by,
                     n.snoozed_until, n.started_at, n.resolved_at, n.notified_at, n.acked_by,
                     n.escalation_level, n.escalated_at)
                    IS DISTINCT FROM
                    (o.group_key, o.state, o.notified_state, o.silenced, o.inhibited_by, o.muted_by,
                     o.snoozed_until, o.started_at, o.resolved_at, o.notified_at, o.acked_by,
                     o.escalation_level, o.escalated_at)
              UNION ALL
              SELECT o.group_key FROM new_rows n JOIN old_rows o USING (alert_id)
              WHERE n.group_key <> o.group_key) x
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alert_group_changed_insert AFTER INSERT ON smartetl.alert
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_group_changed();
CREATE TRIGGER alert_group_changed_update AFTER UPDATE ON smartetl.alert
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_group_changed();
CREATE TRIGGER alert_group_state_changed_update AFTER UPDATE ON smartetl.alert_group
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_group_changed();
CREATE TRIGGER alert_group_state_changed_delete AFTER DELETE ON smartetl.alert_group
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION smartetl._alert_group_changed();

CREATE FUNCTION smartetl._alert_freshness(pids bigint[], at_ts timestamptz)
RETURNS TABLE (pipeline_id bigint, pipeline text, kind text, last_at timestamptz,
               expected_interval interval, overdue boolean, due_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.name, k.kind, k.last_at, e.expected,
           at_ts - k.last_at > e.expected * smartetl._stale_factor(),
           k.last_at + e.expected * smartetl._stale_factor()
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT smartetl._expected_interval(p.pipeline_id, at_ts) AS expected) e
    CROSS JOIN LATERAL (
        SELECT min(r.run_at) AS first_run, max(r.run_at) AS last_run,
               max(coalesce(r.ended_at, r.run_at)) FILTER (WHERE r.status = 'success') AS last_success
        FROM smartetl.run r WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) h
    CROSS JOIN LATERAL (VALUES ('missing_run'::text, h.last_run),
                               ('freshness', coalesce(h.last_success, h.first_run))) k(kind, last_at)
    WHERE (pids IS NULL OR p.pipeline_id = ANY (pids))
      AND e.expected IS NOT NULL AND k.last_at IS NOT NULL
$$;

DROP FUNCTION smartetl._alert_conditions(smartetl.alert_rule);

CREATE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule, pids bigint[] DEFAULT NULL)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    IF r.kind IN ('run_failed', 'consecutive_failures') THEN
        -- a try that will be retried waits for the last one, or for after_tries
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed%s', cf.pipeline, CASE WHEN t.tries > 1 THEN format(' after %s tries', t.tries) ELSE '' END),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
                   || CASE WHEN t.tries > 1 THEN format(', after %s tries%s', t.tries,
                                                         CASE WHEN t.will_retry THEN ' (retrying)' ELSE '' END)
                           ELSE '' END,
                   cf.run_id, cf.since, cf.pipeline_id)
               || CASE WHEN t.tries > 1 THEN jsonb_build_object('tries', t.tries) ELSE '{}' END
        FROM smartetl.current_failures cf
        CROSS JOIN LATERAL smartetl._run_retry(cf.run_id) t
        WHERE (pids IS NULL OR cf.pipeline_id = ANY (pids))
          AND (r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3))
          AND (NOT t.will_retry OR coalesce(t.tries >= r.after_tries, false));
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
        FROM smartetl._alert_freshness(pids, now()) o
        WHERE o.overdue;
    ELSIF r.kind = 'deadline' THEN
        -- the latest deadline that passed with no success finished since its
        -- scheduled start, whether the run failed, still runs or never started
        RETURN QUERY
        SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
               smartetl._run_annotations(
                   format('%s missed its %s deadline', ds.pipeline,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
                   format('scheduled %s %s (%s), a successful run was due by %s; %s',
                          to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                          ds.schedule_timezone, ds.schedule,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                          CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                    AND ds.last_run_status IS DISTINCT FROM 'running'
                               THEN 'no run started since'
                               WHEN ds.last_run_status = 'running'
                               THEN format('the run started at %s is still running',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                               ELSE format('the run started at %s ended %s',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                           ds.last_run_status) END),
                   CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
                   ds.deadline_at, ds.pipeline_id)
               || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
        FROM smartetl.deadline_status(now()) ds
        WHERE ds.missed AND (pids IS NULL OR ds.pipeline_id = ANY (pids));
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

DROP FUNCTION smartetl._alert_apply_rule(smartetl.alert_rule);

CREATE FUNCTION smartetl._alert_apply_rule(r smartetl.alert_rule, pids bigint[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    WITH c AS (
        -- conditions about a pipeline, or about something else (a model) named by annotations.subject
        SELECT x.value, x.annotations - 'subject' AS annotations,
               jsonb_build_object('alertname', r.name, 'rule_kind', r.kind,
                                  'pipeline', coalesce(p.name, x.annotations->>'subject'),
                                  'namespace', coalesce(p.namespace, 'smartetl'), 'severity', r.severity) AS labels
        FROM smartetl._alert_conditions(r, pids) x LEFT JOIN smartetl.pipeline p USING (pipeline_id)
        WHERE (p.pipeline_id IS NULL AND x.pipeline_id IS NULL) OR smartetl._selector_matches(r.selector, p)
    ), keyed AS (
        SELECT c.*, md5(c.labels::text) AS fingerprint,
               r.name || '/' || (SELECT coalesce(string_agg(g || '=' || coalesce(c.labels->>g, ''), ',' ORDER BY g), '')
                                 FROM unnest(r.group_by) g) AS group_key
        FROM c
    ), refreshed AS (
        UPDATE smartetl.alert a SET last_seen_at = now(), value = k.value, annotations = k.annotations
        FROM keyed k WHERE a.fingerprint = k.fingerprint AND a.state = 'firing'
    ), fired AS (
        INSERT INTO smartetl.alert (fingerprint, rule_name, group_key, labels, annotations, value,
                                    state, started_at, last_seen_at)
        SELECT k.fingerprint, r.name, k.group_key, k.labels, k.annotations, k.value, 'firing', now(), now()
        FROM keyed k
        WHERE NOT EXISTS (SELECT 1 FROM smartetl.alert a WHERE a.fingerprint = k.fingerprint AND a.state = 'firing')
    )
    UPDATE smartetl.alert a SET state = 'resolved', resolved_at = now()
    WHERE a.rule_name = r.name AND a.state = 'firing'
      AND (pids IS NULL
           OR (a.labels->>'pipeline' = ANY (ARRAY(SELECT p.name FROM smartetl.pipeline p WHERE p.pipeline_id = ANY (pids)))
               AND EXISTS (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = ANY (pids)
                           AND p.name = a.labels->>'pipeline' AND p.namespace = a.labels->>'namespace')))
      AND NOT EXISTS (SELECT 1 FROM keyed k WHERE k.fingerprint = a.fingerprint);
END $$;

CREATE FUNCTION smartetl._alert_rule_due_set(r smartetl.alert_rule, pids bigint[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    DELETE FROM smartetl.alert_rule_due d WHERE d.rule_name = r.name AND (pids IS NULL OR d.pipeline_id = ANY (pids));
    INSERT INTO smartetl.alert_rule_due (rule_name, pipeline_id, due_at)
    SELECT r.name, x.pipeline_id, min(x.t)
    FROM (SELECT f.pipeline_id, greatest(f.due_at, now() + interval '1 second') AS t
          FROM smartetl._alert_freshness(pids, now()) f
          WHERE r.kind = 'freshness' AND NOT f.overdue
          UNION ALL
          SELECT ds.pipeline_id, ds.next_deadline_at
          FROM smartetl.deadline_status(now()) ds
          WHERE r.kind = 'deadline' AND (pids IS NULL OR ds.pipeline_id = ANY (pids))) x
    JOIN smartetl.pipeline p ON p.pipeline_id = x.pipeline_id
    WHERE x.t IS NOT NULL AND smartetl._selector_matches(r.selector, p)
    GROUP BY x.pipeline_id;
END $$;

CREATE FUNCTION smartetl._alert_group_next_due(p_group_key text) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT least(
        CASE WHEN st.last_notified_at IS NULL THEN g.first_pending + r.group_wait
             WHEN g.changed THEN st.last_notified_at + r.group_interval
             WHEN g.any_firing THEN least(st.last_notified_at + r.repeat_interval,
                                          CASE WHEN EXISTS (SELECT 1 FROM smartetl.channel c
                                                            WHERE c.name = ANY (r.channels) AND c.kind = 'alertmanager')
                                               THEN coalesce(st.am_posted_at, st.last_notified_at) + interval '1 minute' END) END,
        g.snooze_end)
    FROM (SELECT min(a.rule_name) AS rule_name,
                 min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                           AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending,
                 bool_or((a.state = 'firing' AND NOT smartetl._alert_muted(a)
                          AND a.notified_state IS DISTINCT FROM 'firing')
                         OR (a.state = 'resolved' AND a.notified_state = 'firing'
                             AND NOT smartetl._alert_held(a))) AS changed,
                 bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
                 min(a.snoozed_until) FILTER (WHERE a.state = 'firing' AND a.snoozed_until > now()) AS snooze_end
          FROM smartetl.alert a
          WHERE a.group_key = p_group_key AND (a.state = 'firing' OR a.notified_state = 'firing')) g
    JOIN smartetl.alert_rule r ON r.name = g.rule_name
    LEFT JOIN smartetl.alert_group st ON st.group_key = p_group_key
$$;

DROP FUNCTION smartetl._alert_notify();

CREATE FUNCTION smartetl._alert_notify(all_groups boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    todo text[];
    g record;
    r smartetl.alert_rule;
    st smartetl.alert_group;
    ch smartetl.channel;
    n jsonb;
    key text;
    due boolean;
    win text;
    queued integer := 0;
BEGIN
    IF all_groups THEN
        DELETE FROM smartetl.alert_group_due;
    ELSE
        WITH d AS (DELETE FROM smartetl.alert_group_due d WHERE d.due_at <= now() RETURNING d.group_key)
        SELECT array_agg(d.group_key) INTO todo FROM d;
        IF todo IS NULL THEN
            RETURN 0;
        END IF;
    END IF;
    FOR g IN
        SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE (a.state = 'firing' OR a.notified_state = 'firing')
          AND (all_groups OR a.group_key = ANY (todo))
        GROUP BY a.group_key
    LOOP
        SELECT * INTO r FROM smartetl.alert_rule WHERE name = g.rule_name;
        SELECT * INTO st FROM smartetl.alert_group WHERE group_key = g.group_key;
        IF r.name IS NULL THEN
            CONTINUE;
        END IF;
        -- examined now; next time by its timers (or when its alerts change)
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT g.group_key, t FROM smartetl._alert_group_next_due(g.group_key) t WHERE t IS NOT NULL
        ON CONFLICT (group_key) DO UPDATE SET due_at = least(d.due_at, excluded.due_at);
        -- Alertmanager's timing: group_wait, then group_interval, then repeat_interval
        due := CASE
                WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END;
        IF NOT coalesce(due, false) THEN
            -- Alertmanager forgets alerts not re-posted within resolve_timeout
            IF g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute'
               AND EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = ANY (r.channels) AND c.kind = 'alertmanager') THEN
                queued := queued + smartetl._alert_refresh_alertmanager(r, st);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
        VALUES (g.group_key, g.rule_name,
                (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1)
        ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1
        RETURNING * INTO st;
        key := md5(g.group_key) || '-' || st.seq;
        FOR ch IN SELECT * FROM smartetl.channel WHERE name = ANY (r.channels) ORDER BY name LOOP
            n := smartetl._alert_notification(g.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                             '{namespace}', coalesce(g.labels->>'namespace', '')));
            -- a channel in a maintenance window: recorded as muted, caught up when it ends
            win := (SELECT w.name FROM smartetl.maintenance_window w
                    WHERE w.enabled AND ch.name = ANY (w.channels) AND smartetl.maintenance_window_active(w.name)
                    ORDER BY w.name LIMIT 1);
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload, status, last_error)
            VALUES (ch.name, g.group_key, key, n,
                    CASE WHEN ch.kind = 'notify'
                         THEN jsonb_build_object('content_type', 'application/json', 'body', n)
                         ELSE smartetl._payload(ch.kind, n, ch.options) END,
                    CASE WHEN win IS NULL THEN 'pending' ELSE 'muted' END,
                    'muted by maintenance window ' || win)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
        UPDATE smartetl.alert a SET notified_state = a.state,
                                    notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
        WHERE a.group_key = g.group_key
          AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
               OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    END LOOP;
    RETURN queued;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_inhibit() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- only alerts on pipelines of the graph (alert_edge) can mute or be muted
    WITH RECURSIVE f AS (
        SELECT a.alert_id, a.started_at, r.inhibit, p.pipeline_id
        FROM (SELECT e.up AS pipeline_id FROM smartetl.alert_edge e
              UNION SELECT e.down FROM smartetl.alert_edge e) g
        JOIN smartetl.pipeline p ON p.pipeline_id = g.pipeline_id
        JOIN smartetl.alert a ON a.labels->>'pipeline' = p.name AND a.labels->>'namespace' = p.namespace
                             AND a.state = 'firing'
        JOIN smartetl.alert_rule r ON r.name = a.rule_name
    ), edge AS (
        SELECT e.up, e.down, e.lineage FROM smartetl.alert_edge e
    ), below (src, pipeline_id, depth) AS (
        SELECT f.alert_id, f.pipeline_id, 0 FROM f WHERE f.inhibit <> 'off'
        UNION
        SELECT b.src, e.down, b.depth + 1
        FROM below b JOIN f ON f.alert_id = b.src
        JOIN edge e ON e.up = b.pipeline_id AND (f.inhibit = 'lineage' OR NOT e.lineage)
        WHERE b.depth < 10
    ), pair AS (
        SELECT DISTINCT s.alert_id AS src, s.started_at AS s_started, t.alert_id AS target, t.started_at AS t_started
        FROM below b
        JOIN f s ON s.alert_id = b.src
        JOIN f t ON t.pipeline_id = b.pipeline_id AND t.pipeline_id <> s.pipeline_id
        WHERE b.depth > 0
    ), kept AS (
        -- of two alerts below each other, the older one mutes the other
        SELECT p.* FROM pair p
        WHERE NOT EXISTS (SELECT 1 FROM pair q WHERE q.src = p.target AND q.target = p.src
                          AND (q.s_started, q.src) < (p.s_started, p.src))
    ), roots AS (
        SELECT k.target, min(k.src) AS root FROM kept k
        WHERE NOT EXISTS (SELECT 1 FROM kept r WHERE r.target = k.src)
        GROUP BY k.target
    )
    UPDATE smartetl.alert a SET inhibited_by = i.root
    FROM (SELECT a2.alert_id, x.root
          FROM (SELECT f.alert_id FROM f UNION SELECT a3.alert_id FROM smartetl.alert a3
                                             WHERE a3.inhibited_by IS NOT NULL) a2
          LEFT JOIN roots x ON x.target = a2.alert_id) i
    WHERE a.alert_id = i.alert_id AND a.inhibited_by IS DISTINCT FROM i.root;
END $$;

CREATE FUNCTION smartetl._alert_edges_refresh(pids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    IF pids IS NULL THEN
        DELETE FROM smartetl.alert_io;
        DELETE FROM smartetl.alert_edge;
    ELSE
        DELETE FROM smartetl.alert_io i WHERE i.pipeline_id = ANY (pids);
        DELETE FROM smartetl.alert_edge e WHERE e.down = ANY (pids) OR (e.lineage AND e.up = ANY (pids));
    END IF;
    WITH recent AS (
        -- each pipeline's latest runs say who its parents and datasets are
        SELECT r.run_id, r.pipeline_id, r.parent_run_id, r.attrs
        FROM smartetl.pipeline p
        CROSS JOIN LATERAL (SELECT x.run_id, x.pipeline_id, x.parent_run_id, x.attrs FROM smartetl.run x
                            WHERE x.pipeline_id = p.pipeline_id ORDER BY x.run_at DESC LIMIT 20) r
        WHERE pids IS NULL OR p.pipeline_id = ANY (pids)
    ), io AS (
        INSERT INTO smartetl.alert_io (pipeline_id, dir, ds)
        SELECT DISTINCT x.pipeline_id, d.dir, d.ds
        FROM recent x
    CROSS JOIN LATERAL (SELECT 'in' AS dir, e AS ds
                        FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(x.attrs->'inputs') = 'array'
                                                            THEN x.attrs->'inputs' ELSE '[]' END) e
                        UNION ALL
                        SELECT 'out', e
                        FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(x.attrs->'outputs') = 'array'
                                                            THEN x.attrs->'outputs' ELSE '[]' END) e) d
    )
    -- (a data-modifying WITH runs to completion, referenced or not)
    INSERT INTO smartetl.alert_edge (up, down, lineage)
    SELECT DISTINCT pr.pipeline_id, c.pipeline_id, false
    FROM recent c JOIN smartetl.run pr ON pr.run_id = c.parent_run_id
    WHERE pr.pipeline_id <> c.pipeline_id
    ON CONFLICT DO NOTHING;
    -- lineage edges from the datasets, once the changed pipelines' are in
    INSERT INTO smartetl.alert_edge (up, down, lineage)
    SELECT DISTINCT w.pipeline_id, rd.pipeline_id, true
    FROM smartetl.alert_io w JOIN smartetl.alert_io rd ON rd.ds = w.ds AND rd.dir = 'in'
    WHERE w.dir = 'out' AND w.pipeline_id <> rd.pipeline_id
      AND (pids IS NULL OR w.pipeline_id = ANY (pids) OR rd.pipeline_id = ANY (pids))
    ON CONFLICT DO NOTHING;
END $$;

CREATE OR REPLACE FUNCTION smartetl.evaluate_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    r smartetl.alert_rule;
    k record;
    rs smartetl.alert_rule_state;
    full_pass boolean;
    changed bigint[];
    pids bigint[];
    evaluated boolean := false;
    started timestamptz;
    detail text;
    err text;
BEGIN
    -- one evaluation at a time, whoever calls it
    PERFORM smartetl._xact_lock('alert_evaluation');
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    -- the pipelines changed since the last pass (rows committed after this
    -- statement stay for the next one); a full pass when asked for, and
    -- every 15 minutes as a safety net
    WITH d AS (DELETE FROM smartetl.alert_changed RETURNING pipeline_id)
    SELECT coalesce(bool_or(d.pipeline_id IS NULL), false),
           coalesce(array_agg(DISTINCT d.pipeline_id) FILTER (WHERE d.pipeline_id IS NOT NULL), '{}')
    INTO full_pass, changed FROM d;
    full_pass := full_pass OR NOT EXISTS (SELECT 1 FROM smartetl.alert_eval_state e
                                          WHERE e.full_at > now() - interval '15 minutes' AND e.full_at <= now());
    IF full_pass THEN
        INSERT INTO smartetl.alert_eval_state (singleton, full_at) VALUES (true, now())
        ON CONFLICT (singleton) DO UPDATE SET full_at = excluded.full_at;
        PERFORM smartetl._alert_edges_refresh(NULL);
    ELSIF changed <> '{}' THEN
        PERFORM smartetl._alert_edges_refresh(changed);
    END IF;
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        SELECT * INTO k FROM smartetl.alert_rule_kinds() x WHERE x.kind = r.kind;
        SELECT * INTO rs FROM smartetl.alert_rule_state x WHERE x.rule_name = r.name;
        IF k.driven_by = 'clock' THEN
            -- the whole rule, at most every evaluated_every (anomaly scoring
            -- rebuilds 120 days of baselines; risk scores every pipeline);
            -- a sql rule that ran out of time waits until retry_at
            CONTINUE WHEN rs.evaluated_at > now() - k.evaluated_every OR rs.retry_at > now();
            pids := NULL;
        ELSIF full_pass OR rs.full_at IS NULL THEN
            pids := NULL;
        ELSE
            -- the pipelines whose runs changed, and those due by the clock
            pids := changed;
            IF k.driven_by = 'runs and clock' THEN
                pids := pids || ARRAY(SELECT d.pipeline_id FROM smartetl.alert_rule_due d
                                      WHERE d.rule_name = r.name AND d.due_at <= now()
                                        AND d.pipeline_id <> ALL (changed));
            END IF;
            CONTINUE WHEN pids = '{}';
        END IF;
        started := clock_timestamp();
        evaluated := true;
        BEGIN
            PERFORM smartetl._alert_apply_rule(r, pids);
            IF k.driven_by = 'runs and clock' THEN
                PERFORM smartetl._alert_rule_due_set(r, pids);
            END IF;
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at, full_at)
            VALUES (r.name, now(), NULL, NULL, CASE WHEN pids IS NULL THEN now() END)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = NULL, retry_at = NULL,
                full_at = coalesce(excluded.full_at, alert_rule_state.full_at);
        EXCEPTION WHEN OTHERS THEN
            -- one broken rule must not stop the others
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            err := SQLERRM || coalesce(': ' || nullif(detail, ''), '');
            RAISE WARNING 'smartetl: alert rule "%" failed: %', r.name, err;
            -- a sql rule that used up smartetl.rule_timeout would hold up every
            -- evaluation, and the notifications queued after it: it waits 5
            -- minutes; the changes it missed make its next evaluation a full one
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at, full_at)
            VALUES (r.name, now(), err,
                    CASE WHEN r.kind = 'sql'
                              AND clock_timestamp() - started
                                  >= coalesce(current_setting('smartetl.rule_timeout', true), '5s')::interval
                         THEN now() + interval '5 minutes' END, NULL)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = excluded.last_error, retry_at = excluded.retry_at, full_at = NULL;
        END;
    END LOOP;
    IF full_pass THEN
        -- rules deleted or disabled: their alerts resolve
        UPDATE smartetl.alert SET state = 'resolved', resolved_at = now()
        WHERE state = 'firing' AND rule_name NOT IN (SELECT name FROM smartetl.alert_rule WHERE enabled);
    END IF;
    -- silences: the alerts silenced now, and, while a silence holds, every
    -- firing alert (without one, nothing else can be silenced)
    UPDATE smartetl.alert a SET silenced = s.hit
    FROM (SELECT a2.alert_id, EXISTS (SELECT 1 FROM smartetl.silence s
                                      WHERE now() >= s.starts_at AND now() < s.ends_at
                                        AND smartetl._silence_matches(s.matchers, a2.labels)) AS hit
          FROM (SELECT x.* FROM smartetl.alert x WHERE x.silenced AND x.state = 'firing'
                UNION ALL
                SELECT x.* FROM smartetl.alert x
                WHERE x.state = 'firing' AND NOT x.silenced
                  AND EXISTS (SELECT 1 FROM smartetl.silence s WHERE now() >= s.starts_at AND now() < s.ends_at)) a2) s
    WHERE a.alert_id = s.alert_id AND a.silenced IS DISTINCT FROM s.hit;
    -- maintenance windows of rules and pipelines: alerts are recorded as muted
    -- (firing ones, and resolved ones whose resolution is still to be sent);
    -- while no such window is active, only the muted ones can change
    UPDATE smartetl.alert a SET muted_by = m.win
    FROM (SELECT a2.alert_id,
                 (SELECT w.name FROM smartetl.maintenance_window w
                  WHERE w.enabled AND (a2.rule_name = ANY (w.rules)
                                       OR (w.selector <> '{}' AND p.pipeline_id IS NOT NULL
                                           AND smartetl._selector_matches(w.selector, p)))
                    AND smartetl.maintenance_window_active(w.name)
                  ORDER BY w.name LIMIT 1) AS win
          FROM (SELECT x.* FROM smartetl.alert x WHERE x.muted_by IS NOT NULL
                UNION ALL
                SELECT x.* FROM smartetl.alert x
                WHERE (x.state = 'firing' OR (x.state = 'resolved' AND x.notified_state = 'firing'))
                  AND x.muted_by IS NULL
                  AND EXISTS (SELECT 1 FROM smartetl.maintenance_window w
                              WHERE w.enabled AND (w.rules <> '{}' OR w.selector <> '{}')
                                AND smartetl.maintenance_window_active(w.name))) a2
          LEFT JOIN smartetl.pipeline p ON p.namespace = a2.labels->>'namespace' AND p.name = a2.labels->>'pipeline') m
    WHERE a.alert_id = m.alert_id AND a.muted_by IS DISTINCT FROM m.win;
    -- inhibition changes only with the alerts and the graph
    IF full_pass OR evaluated OR changed <> '{}' THEN
        PERFORM smartetl._alert_inhibit();
    END IF;
    RETURN smartetl._alert_window_catch_up() + smartetl._alert_notify(full_pass) + smartetl._alert_escalate();
END $$;

COMMENT ON FUNCTION smartetl.evaluate_alerts() IS 'one evaluation pass: fire/resolve alerts from the enabled rules, apply silences, queue due notifications in smartetl.delivery; returns the number of deliveries queued';

REVOKE ALL ON FUNCTION smartetl.alert_rule_kinds(), smartetl._alert_freshness(bigint[], timestamptz),
                       smartetl._alert_conditions(smartetl.alert_rule, bigint[]),
                       smartetl._alert_apply_rule(smartetl.alert_rule, bigint[]),
                       smartetl._alert_rule_due_set(smartetl.alert_rule, bigint[]),
                       smartetl._alert_group_next_due(text), smartetl._alert_notify(boolean),
                       smartetl._alert_edges_refresh(bigint[]), smartetl._alert_run_changed(),
                       smartetl._alert_pipeline_changed(), smartetl._alert_rules_changed(),
                       smartetl._alert_group_changed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.alert_rule_kinds() TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._alert_conditions(smartetl.alert_rule, bigint[]),
                          smartetl._alert_apply_rule(smartetl.alert_rule, bigint[]),
                          smartetl._alert_notify(boolean)
    TO smartetl_admin;

-- incremental alert evaluation (88_alert_eval.sql): writers record the
-- pipelines they change (the triggers on run and pipeline; admins through
-- the rule trigger too); the evaluation's own state is admins'
GRANT INSERT ON smartetl.alert_changed TO smartetl_writer;
GRANT SELECT, DELETE ON smartetl.alert_changed TO smartetl_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.alert_rule_due, smartetl.alert_group_due,
                                        smartetl.alert_eval_state, smartetl.alert_io, smartetl.alert_edge
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._alert_freshness(bigint[], timestamptz),
                          smartetl._alert_rule_due_set(smartetl.alert_rule, bigint[]),
                          smartetl._alert_group_next_due(text), smartetl._alert_edges_refresh(bigint[])
    TO smartetl_admin;
-- the incremental evaluation's tables are dumped like every table of the extension
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_changed', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_rule_due', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_group_due', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_eval_state', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_io', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_edge', '');

-- ---- the risk rule's plain-word reasons inside the incremental _alert_conditions
CREATE OR REPLACE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule, pids bigint[] DEFAULT NULL)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    IF r.kind IN ('run_failed', 'consecutive_failures') THEN
        -- a try that will be retried waits for the last one, or for after_tries
        RETURN QUERY
        SELECT cf.pipeline_id, cf.failed_runs::float8,
               smartetl._run_annotations(
                   format('%s failed%s', cf.pipeline, CASE WHEN t.tries > 1 THEN format(' after %s tries', t.tries) ELSE '' END),
                   format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                          cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
                   || CASE WHEN t.tries > 1 THEN format(', after %s tries%s', t.tries,
                                                         CASE WHEN t.will_retry THEN ' (retrying)' ELSE '' END)
                           ELSE '' END,
                   cf.run_id, cf.since, cf.pipeline_id)
               || CASE WHEN t.tries > 1 THEN jsonb_build_object('tries', t.tries) ELSE '{}' END
        FROM smartetl.current_failures cf
        CROSS JOIN LATERAL smartetl._run_retry(cf.run_id) t
        WHERE (pids IS NULL OR cf.pipeline_id = ANY (pids))
          AND (r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3))
          AND (NOT t.will_retry OR coalesce(t.tries >= r.after_tries, false));
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
        FROM smartetl._alert_freshness(pids, now()) o
        WHERE o.overdue;
    ELSIF r.kind = 'deadline' THEN
        -- the latest deadline that passed with no success finished since its
        -- scheduled start, whether the run failed, still runs or never started
        RETURN QUERY
        SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
               smartetl._run_annotations(
                   format('%s missed its %s deadline', ds.pipeline,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
                   format('scheduled %s %s (%s), a successful run was due by %s; %s',
                          to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                          ds.schedule_timezone, ds.schedule,
                          to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                          CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                    AND ds.last_run_status IS DISTINCT FROM 'running'
                               THEN 'no run started since'
                               WHEN ds.last_run_status = 'running'
                               THEN format('the run started at %s is still running',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                               ELSE format('the run started at %s ended %s',
                                           to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                           ds.last_run_status) END),
                   CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
                   ds.deadline_at, ds.pipeline_id)
               || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
        FROM smartetl.deadline_status(now()) ds
        WHERE ds.missed AND (pids IS NULL OR ds.pipeline_id = ANY (pids));
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


-- ---------------------------------------------------------------------------
-- structure2 (issue 11): the Slack, Teams and e-mail formatters render the
-- facts of smartetl._alert_facts; each rule kind's condition is its own
-- function, named in alert_rule_kinds() (new column "condition") and called
-- by _alert_conditions; _payload('notify', ...) at the call sites
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- The facts of a notification, gathered once: what every formatter below
-- shows, each in its receiver's shape (Slack mrkdwn, Adaptive Card, e-mail
-- text and HTML).  A formatter renders these facts and computes none.
-- ---------------------------------------------------------------------------

-- API: Private
-- One alert of a notification: the row of smartetl._alert_rows, then the
-- facts derived from it for people.
CREATE TYPE smartetl._alert_item AS (
    ord            bigint,
    status         text,
    resolved       boolean,
    summary        text,
    description    text,
    namespace      text,
    pipeline       text,
    host           text,
    severity       text,
    since          text,
    starts_at      text,
    ends_at        text,
    value          text,
    error_template text,
    error          text,
    history        jsonb,
    labels         jsonb,
    annotations    jsonb,
    fingerprint    text,
    place          text,     -- namespace/pipeline
    since_human    text,     -- since (else starts_at) for people
    started_human  text,     -- starts_at for people
    resolved_human text,     -- ends_at for people, resolved alerts only
    runs           text,     -- "F of last N runs failed"
    ack_url        text,     -- the acknowledge link, firing alerts only
    last_error     text      -- the error when it is not the error template
);
COMMENT ON TYPE smartetl._alert_item IS
'one alert of a notification with the facts the payload formatters show (smartetl._alert_facts)';

-- API: Private
-- A group notification: what it says of itself, and its alerts.
CREATE TYPE smartetl._alert_notice AS (
    resolved    boolean,
    severity    text,
    title       text,       -- raw, one line (smartetl._alert_title)
    link        text,       -- an http(s) URL or NULL
    rule        text,
    rule_kind   text,
    group_key   text,
    key         text,       -- the idempotency key
    sent        text,       -- sent_at for people
    total       integer,    -- how many alerts
    alerts_text text,       -- "N alert(s)"
    about       text,       -- "rule R (kind), severity S, N alerts"
    alerts      smartetl._alert_item[]
);
COMMENT ON TYPE smartetl._alert_notice IS
'the facts of a group notification that the payload formatters render (smartetl._alert_facts)';

-- API: Private
-- The facts of notification n (a JSON object, else invalid_parameter_value)
-- for a channel with options opts (title_prefix).
CREATE FUNCTION smartetl._alert_facts(n jsonb, opts jsonb) RETURNS smartetl._alert_notice
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f smartetl._alert_notice;
BEGIN
    PERFORM smartetl._alert_check(n);
    f.resolved := smartetl._alert_resolved(n);
    f.severity := smartetl._alert_severity(n);
    f.title := smartetl._alert_title(n, coalesce(opts, '{}'));
    f.link := smartetl._alert_link(n);
    f.rule := nullif(n->'rule'->>'name', '');
    f.rule_kind := nullif(n->'rule'->>'kind', '');
    f.group_key := nullif(n->>'group_key', '');
    f.key := nullif(n->>'idempotency_key', '');
    f.sent := smartetl._alert_human_ts(n->>'sent_at');
    f.alerts := ARRAY(
        SELECT ROW(r.*, concat_ws('/', r.namespace, r.pipeline),
                   smartetl._alert_human_ts(coalesce(r.since, r.starts_at)),
                   smartetl._alert_human_ts(r.starts_at),
                   CASE WHEN r.resolved THEN smartetl._alert_human_ts(r.ends_at) END,
                   smartetl._alert_runs_text(r.history),
                   CASE WHEN NOT r.resolved THEN smartetl._alert_ack_url(r.annotations) END,
                   CASE WHEN r.error IS DISTINCT FROM r.error_template THEN r.error END)::smartetl._alert_item
        FROM smartetl._alert_rows(n) r ORDER BY r.ord);
    f.total := cardinality(f.alerts);
    f.alerts_text := format('%s alert%s', f.total, CASE WHEN f.total = 1 THEN '' ELSE 's' END);
    f.about := concat_ws(', ', 'rule ' || f.rule || coalesce(' (' || f.rule_kind || ')', ''),
                         'severity ' || f.severity, f.alerts_text);
    RETURN f;
END $$;
COMMENT ON FUNCTION smartetl._alert_facts(jsonb, jsonb) IS
'the facts of a group notification (title, status, severity, counts, link, and per alert its place, times, runs, acknowledge link, errors), gathered once for the payload formatters';

-- API: Private
-- A section block of mrkdwn text (cut to Slack's 3000 characters).
CREATE FUNCTION smartetl._alert_slack_section(txt text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'section',
                          'text', jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true)));
COMMENT ON FUNCTION smartetl._alert_slack_section(text) IS 'a Slack section block of mrkdwn text, cut to 3000 characters';

-- API: Private
-- A context block of one mrkdwn text (cut to 3000 characters).
CREATE FUNCTION smartetl._alert_slack_context(txt text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'context', 'elements', jsonb_build_array(
           jsonb_build_object('type', 'mrkdwn', 'text', smartetl._alert_trunc(txt, 3000, true))));
COMMENT ON FUNCTION smartetl._alert_slack_context(text) IS 'a Slack context block of one mrkdwn text, cut to 3000 characters';

-- API: Private
-- The blocks of one alert: what (summary, status, description) with its
-- fields and an Acknowledge button, the error as code blocks, the recent
-- runs on one line.
CREATE FUNCTION smartetl._payload_slack_alert(a smartetl._alert_item) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fields jsonb;
    runs   text;
    blocks jsonb;
BEGIN
    -- where, how bad, since when, how many runs
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'mrkdwn',
               'text', smartetl._alert_trunc('*' || f.label || E'*\n' || smartetl._alert_slack_escape(f.val), 2000, true))
               ORDER BY f.i), '[]')
    INTO fields
    FROM (VALUES (1, 'Pipeline', a.place), (2, 'Severity', a.severity), (3, 'Since', a.since_human),
                 (4, 'Runs', a.runs), (5, 'Value', a.value), (6, 'Host', a.host)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    blocks := jsonb_build_array(smartetl._alert_slack_section(
                  CASE WHEN a.resolved THEN ':white_check_mark:' ELSE ':rotating_light:' END
                  || ' *' || smartetl._alert_slack_escape(a.summary) || '* - '
                  || CASE WHEN a.resolved
                          THEN 'resolved' || coalesce(' at ' || smartetl._alert_slack_escape(a.resolved_human), '')
                          ELSE 'firing' END
                  || coalesce(E'\n' || smartetl._alert_slack_escape(a.description), ''))
              || CASE WHEN jsonb_array_length(fields) > 0 THEN jsonb_build_object('fields', fields) ELSE '{}' END
              || CASE WHEN a.ack_url IS NOT NULL
                      THEN jsonb_build_object('accessory', jsonb_build_object('type', 'button',
                               'action_id', 'smartetl_ack_' || a.ord, 'style', 'primary', 'url', a.ack_url,
                               'text', jsonb_build_object('type', 'plain_text', 'text', 'Acknowledge', 'emoji', true)))
                      ELSE '{}' END);
    IF a.error_template IS NOT NULL OR a.last_error IS NOT NULL THEN
        blocks := blocks || smartetl._alert_slack_section(concat_ws(E'\n',
                      E'*Error template*\n' || smartetl._alert_slack_code(a.error_template, 1400),
                      E'*Last error*\n' || smartetl._alert_slack_code(a.last_error, 1400)));
    END IF;
    SELECT '*Recent runs:* ' || string_agg(
               CASE WHEN h.failed THEN ':x: ' WHEN h.status = 'success' THEN ':white_check_mark: ' ELSE ':grey_question: ' END
               || smartetl._alert_slack_escape(h.run_at || ' ' || h.status || coalesce(' (' || h.duration || ')', '')),
               ' | ' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    IF runs IS NOT NULL THEN
        blocks := blocks || smartetl._alert_slack_context(runs);
    END IF;
    RETURN blocks;
END $$;
COMMENT ON FUNCTION smartetl._payload_slack_alert(smartetl._alert_item) IS
'the Slack blocks of one alert: summary and status with fields and an Acknowledge button, error code blocks, recent runs';

-- API: Private
CREATE OR REPLACE FUNCTION smartetl._payload_slack(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 10;
    f       smartetl._alert_notice := smartetl._alert_facts(n, opts);
    mention text := CASE WHEN NOT f.resolved THEN smartetl._alert_slack_mention(opts->>'mention') END;
    emoji   text := CASE WHEN f.resolved THEN ':white_check_mark:' WHEN f.severity = 'critical' THEN ':red_circle:'
                         WHEN f.severity = 'warning' THEN ':warning:' WHEN f.severity = 'info' THEN ':information_source:'
                         ELSE ':bell:' END;
    blocks  jsonb;
    a       smartetl._alert_item;
BEGIN
    -- header (plain_text: shown as is, never parsed), then what fires
    blocks := jsonb_build_array(
        jsonb_build_object('type', 'header', 'text', jsonb_build_object('type', 'plain_text', 'emoji', true,
                           'text', smartetl._alert_trunc(emoji || ' ' || f.title, 150))),
        smartetl._alert_slack_section(concat_ws(' ', mention,
            CASE WHEN f.resolved THEN '*Resolved*' ELSE '*Firing*' END
            || coalesce(' - rule *' || smartetl._alert_slack_escape(f.rule) || '*', '')
            || coalesce(' (' || smartetl._alert_slack_escape(f.rule_kind) || ')', '')
            || coalesce(', severity *' || smartetl._alert_slack_escape(f.severity) || '*', '')
            || ', ' || f.alerts_text)));
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        blocks := blocks || smartetl._payload_slack_alert(a);
    END LOOP;
    IF f.total > max_alerts THEN
        blocks := blocks || smartetl._alert_slack_context(format('_%s more alerts not shown_', f.total - max_alerts));
    END IF;
    blocks := blocks || smartetl._alert_slack_context(concat_ws(' | ', 'smartetl',
                            'group ' || smartetl._alert_slack_code(f.group_key, 400, true),
                            'key ' || smartetl._alert_slack_code(f.key, 400, true),
                            'sent ' || smartetl._alert_slack_escape(f.sent)));
    IF f.link IS NOT NULL THEN
        blocks := blocks || jsonb_build_object('type', 'actions', 'elements', jsonb_build_array(
            jsonb_build_object('type', 'button', 'action_id', 'smartetl_open_link', 'url', f.link,
                               'text', jsonb_build_object('type', 'plain_text', 'text', 'Open dashboard', 'emoji', true))));
    END IF;
    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'text', smartetl._alert_trunc(concat_ws(' ', mention, smartetl._alert_slack_escape(f.title)), 3000, true),
            'blocks', blocks),
        'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_slack(jsonb, jsonb) IS
'Slack Incoming Webhook body (Block Kit): fallback text, header, summary, per alert fields/error/recent runs (at most 10 alerts), context, link button';

-- API: Private
-- A small bold heading TextBlock of a card section.
CREATE FUNCTION smartetl._alert_teams_heading(label text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('type', 'TextBlock', 'text', label, 'weight', 'Bolder', 'size', 'Small', 'spacing', 'Medium');
COMMENT ON FUNCTION smartetl._alert_teams_heading(text) IS 'a small bold Adaptive Card TextBlock heading';

-- API: Private
-- An error in monospace (cut to 600 characters), under its heading.
CREATE FUNCTION smartetl._alert_teams_code(label text, s text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN s IS NOT NULL THEN jsonb_build_array(smartetl._alert_teams_heading(label),
           jsonb_build_object('type', 'TextBlock', 'wrap', true, 'fontType', 'Monospace', 'spacing', 'Small',
                              'text', smartetl._alert_md_escape(smartetl._alert_trunc(s, 600))))
       ELSE '[]' END;
COMMENT ON FUNCTION smartetl._alert_teams_code(text, text) IS
'a heading and a monospace Adaptive Card TextBlock of s (cut to 600 characters), nothing when s is NULL';

-- API: Private
-- The Container of one alert: status and summary, description, facts,
-- error template and last error, recent runs, an Acknowledge button.
CREATE FUNCTION smartetl._payload_teams_alert(a smartetl._alert_item) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    items jsonb;
    facts jsonb;
    runs  jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object('title', f.label,
               'value', smartetl._alert_md_escape(smartetl._alert_trunc(f.val, 300))) ORDER BY f.i), '[]')
    INTO facts
    FROM (VALUES (1, 'Status', a.status), (2, 'Pipeline', a.place), (3, 'Host', a.host), (4, 'Severity', a.severity),
                 (5, 'Since', a.since_human), (6, 'Resolved at', a.resolved_human), (7, 'Runs', a.runs),
                 (8, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT jsonb_agg(jsonb_build_object('title', smartetl._alert_md_escape(h.run_at),
               'value', smartetl._alert_md_escape(h.status || coalesce(', ' || h.duration, ''))) ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 5) h;
    items := jsonb_build_array(jsonb_build_object('type', 'TextBlock', 'weight', 'Bolder', 'wrap', true,
        'color', CASE WHEN a.resolved THEN 'Good' ELSE 'Attention' END,
        'text', smartetl._alert_md_escape(smartetl._alert_trunc(
                    CASE WHEN a.resolved THEN 'RESOLVED: ' ELSE 'FIRING: ' END || a.summary, 300))));
    IF a.description IS NOT NULL THEN
        items := items || jsonb_build_object('type', 'TextBlock', 'wrap', true, 'spacing', 'Small',
            'text', smartetl._alert_md_escape(smartetl._alert_trunc(a.description, 1000)));
    END IF;
    IF jsonb_array_length(facts) > 0 THEN
        items := items || jsonb_build_object('type', 'FactSet', 'facts', facts);
    END IF;
    items := items || smartetl._alert_teams_code('Error template', a.error_template)
                   || smartetl._alert_teams_code('Last error', a.last_error);
    IF runs IS NOT NULL THEN
        items := items || smartetl._alert_teams_heading('Recent runs')
                       || jsonb_build_object('type', 'FactSet', 'spacing', 'Small', 'facts', runs);
    END IF;
    IF a.ack_url IS NOT NULL THEN
        items := items || jsonb_build_object('type', 'ActionSet', 'actions', jsonb_build_array(
            jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Acknowledge', 'url', a.ack_url)));
    END IF;
    RETURN jsonb_build_object('type', 'Container', 'separator', true, 'spacing', 'Medium', 'items', items);
END $$;
COMMENT ON FUNCTION smartetl._payload_teams_alert(smartetl._alert_item) IS
'the Adaptive Card Container of one alert: status and summary, description, facts, errors, recent runs, Acknowledge button';

-- API: Private
CREATE OR REPLACE FUNCTION smartetl._payload_teams(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 8;
    f    smartetl._alert_notice := smartetl._alert_facts(n, opts);
    body jsonb;
    a    smartetl._alert_item;
BEGIN
    body := jsonb_build_array(
        jsonb_build_object('type', 'TextBlock', 'size', 'Large', 'weight', 'Bolder', 'wrap', true,
                           'color', CASE WHEN f.resolved THEN 'Good' ELSE 'Attention' END,
                           'text', smartetl._alert_md_escape(smartetl._alert_trunc(f.title, 300))),
        jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'spacing', 'None', 'wrap', true,
                           'text', smartetl._alert_md_escape(concat_ws(', ',
                               CASE WHEN f.resolved THEN 'Resolved' ELSE 'Firing' END, f.about))));
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        body := body || smartetl._payload_teams_alert(a);
    END LOOP;
    IF f.total > max_alerts THEN
        body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'wrap', true,
                                           'text', format('%s more alerts not shown', f.total - max_alerts));
    END IF;
    body := body || jsonb_build_object('type', 'TextBlock', 'isSubtle', true, 'size', 'Small', 'wrap', true,
        'separator', true,
        'text', smartetl._alert_md_escape(concat_ws(' | ', 'smartetl', 'group ' || smartetl._alert_trunc(f.group_key, 300),
                                                    'key ' || smartetl._alert_trunc(f.key, 300), 'sent ' || f.sent)));
    RETURN jsonb_build_object(
        'content_type', 'application/json',
        'body', jsonb_build_object(
            'type', 'message',
            'attachments', jsonb_build_array(jsonb_build_object(
                'contentType', 'application/vnd.microsoft.card.adaptive',
                'contentUrl', NULL,
                'content', jsonb_build_object(
                    '$schema', 'http://adaptivecards.io/schemas/adaptive-card.json',
                    'type', 'AdaptiveCard',
                    'version', '1.4',
                    'body', body,
                    'actions', CASE WHEN f.link IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(
                        jsonb_build_object('type', 'Action.OpenUrl', 'title', 'Open dashboard', 'url', f.link)) END,
                    'msteams', jsonb_build_object('width', 'Full'))))),
        'idempotency_key', n->'idempotency_key');
END $$;
COMMENT ON FUNCTION smartetl._payload_teams(jsonb, jsonb) IS
'Microsoft Teams Workflows webhook body: a message with one Adaptive Card 1.4 (title, facts, error template, recent runs, Open dashboard action)';

-- API: Private
-- The plain-text lines of one alert (NULL lines are left out when joined).
CREATE FUNCTION smartetl._payload_email_alert_text(a smartetl._alert_item) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    facts text;
    runs  text;
BEGIN
    SELECT string_agg(format('    %-12s %s', f.label || ':', f.val), E'\n' ORDER BY f.i)
    INTO facts
    FROM (VALUES (1, 'Where', concat_ws(' on ', nullif(a.place, ''), a.host)),
                 (2, 'Since', a.since_human || CASE WHEN a.since IS NOT NULL AND a.starts_at IS NOT NULL
                                                    THEN ' (alert started ' || a.started_human || ')' ELSE '' END),
                 (3, 'Resolved', CASE WHEN a.resolved THEN coalesce(a.resolved_human, 'yes') END),
                 (4, 'Severity', a.severity), (5, 'Runs', a.runs), (6, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT string_agg(format('        %-21s %-10s %s', h.run_at, h.status, coalesce(h.duration, '')), E'\n' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    RETURN ARRAY['', format('[%s] %s - %s', a.ord, a.summary, CASE WHEN a.resolved THEN 'RESOLVED' ELSE 'FIRING' END),
                 facts,
                 '    Acknowledge: ' || a.ack_url,
                 '    ' || replace(smartetl._alert_trunc(a.description, 4000), E'\n', E'\n    ')]
           || CASE WHEN a.error_template IS NOT NULL THEN ARRAY['    Error template:',
                   '        ' || replace(smartetl._alert_trunc(a.error_template, 4000), E'\n', E'\n        ')] END
           || CASE WHEN a.last_error IS NOT NULL THEN ARRAY['    Last error:',
                   '        ' || replace(smartetl._alert_trunc(a.last_error, 4000), E'\n', E'\n        ')] END
           || CASE WHEN runs IS NOT NULL THEN ARRAY['    Recent runs:', rtrim(runs)] END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email_alert_text(smartetl._alert_item) IS
'the plain-text lines of one alert in an e-mail: status line, facts, acknowledge link, description, errors, recent runs';

-- API: Private
-- The HTML of one alert (color: the notification's, for a firing alert).
CREATE FUNCTION smartetl._payload_email_alert_html(a smartetl._alert_item, color text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    td    constant text := 'padding:4px 12px 4px 0;vertical-align:top;';
    pre   constant text := 'margin:4px 0 12px 0;padding:8px 10px;background:#f6f8fa;border:1px solid #e1e4e8;'
                           'border-radius:4px;font-family:Menlo,Consolas,monospace;font-size:13px;'
                           'white-space:pre-wrap;word-break:break-all;';
    facts text;
    runs  text;
BEGIN
    SELECT string_agg(format('<tr><td style="%scolor:#57606a;white-space:nowrap;">%s</td><td style="%s">%s</td></tr>',
                             td, f.label, td, smartetl._html_escape(f.val)), '' ORDER BY f.i)
    INTO facts
    FROM (VALUES (1, 'Pipeline', a.place), (2, 'Host', a.host), (3, 'Since', a.since_human),
                 (4, 'Alert started', a.started_human),
                 (5, 'Resolved', CASE WHEN a.resolved THEN coalesce(a.resolved_human, 'yes') END),
                 (6, 'Severity', a.severity), (7, 'Runs', a.runs), (8, 'Value', a.value)) AS f(i, label, val)
    WHERE nullif(f.val, '') IS NOT NULL;
    SELECT string_agg(format('<tr><td style="%s">%s</td><td style="%scolor:%s;font-weight:600;">%s</td>'
                             '<td style="%stext-align:right;">%s</td></tr>',
                             td, smartetl._html_escape(h.run_at), td,
                             CASE WHEN h.failed THEN '#c62828' WHEN h.status = 'success' THEN '#2e7d32' ELSE '#57606a' END,
                             smartetl._html_escape(h.status), td, coalesce(smartetl._html_escape(h.duration), '&ndash;')),
                      '' ORDER BY h.ord)
    INTO runs
    FROM smartetl._alert_history(a.history, 10) h;
    RETURN ARRAY[format('<h2 style="margin:20px 0 4px 0;font-size:16px;">'
                        '<span style="display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px;'
                        'font-size:12px;color:#ffffff;background:%s;">%s</span>%s</h2>',
                        CASE WHEN a.resolved THEN '#2e7d32' ELSE color END,
                        CASE WHEN a.resolved THEN 'RESOLVED' ELSE 'FIRING' END, smartetl._html_escape(a.summary)),
                 '<p style="margin:0 0 8px 0;white-space:pre-wrap;">'
                     || smartetl._html_escape(smartetl._alert_trunc(a.description, 4000)) || '</p>',
                 '<table role="presentation" style="border-collapse:collapse;font-size:14px;">' || facts || '</table>',
                 '<p style="margin:8px 0;"><a href="' || smartetl._html_escape(a.ack_url) || '" style="display:inline-block;'
                     || 'padding:6px 12px;background:#1f883d;color:#ffffff;text-decoration:none;border-radius:4px;">'
                     || 'Acknowledge</a></p>']
           || CASE WHEN a.error_template IS NOT NULL THEN ARRAY['<p style="margin:12px 0 0 0;font-weight:600;">Error template</p>',
                   format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(a.error_template, 4000)))] END
           || CASE WHEN a.last_error IS NOT NULL THEN ARRAY['<p style="margin:12px 0 0 0;font-weight:600;">Last error</p>',
                   format('<pre style="%s">%s</pre>', pre, smartetl._html_escape(smartetl._alert_trunc(a.last_error, 4000)))] END
           || CASE WHEN runs IS NOT NULL THEN ARRAY['<p style="margin:12px 0 4px 0;font-weight:600;">Recent runs</p>',
                   format('<table style="border-collapse:collapse;font-size:13px;"><tr><th style="%1$stext-align:left;'
                          'color:#57606a;">Run</th><th style="%1$stext-align:left;color:#57606a;">Status</th>'
                          '<th style="%1$stext-align:right;color:#57606a;">Duration</th></tr>%2$s</table>', td, runs)] END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email_alert_html(smartetl._alert_item, text) IS
'the HTML of one alert in an e-mail: status badge and summary, description, facts table, Acknowledge button, errors, recent runs';

-- API: Private
-- The plain-text part: title, intro, the alerts, the link, the signature.
CREATE FUNCTION smartetl._payload_email_text(f smartetl._alert_notice, intro text, signature text, max_alerts integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text[] := ARRAY[f.title, repeat('=', least(length(f.title), 72)), '', intro, 'Group: ' || f.group_key];
    a smartetl._alert_item;
BEGIN
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        t := t || smartetl._payload_email_alert_text(a);
    END LOOP;
    IF f.total > max_alerts THEN
        t := t || ARRAY['', format('... and %s more alerts', f.total - max_alerts)];
    END IF;
    t := t || CASE WHEN f.link IS NOT NULL THEN ARRAY['', 'Dashboard: ' || f.link] END || ARRAY['', '-- ', signature];
    RETURN array_to_string(t, E'\n') || E'\n';
END $$;
COMMENT ON FUNCTION smartetl._payload_email_text(smartetl._alert_notice, text, text, integer) IS
'the plain-text part of an alert e-mail';

-- API: Private
-- The HTML part, inline styles only: title and intro in a colored box, the
-- alerts, the dashboard button, the signature.
CREATE FUNCTION smartetl._payload_email_html(f smartetl._alert_notice, intro text, signature text, max_alerts integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    color    text := CASE WHEN f.resolved THEN '#2e7d32' WHEN f.severity = 'critical' THEN '#c62828'
                          WHEN f.severity = 'warning' THEN '#ef6c00' ELSE '#1565c0' END;
    esc_link text := smartetl._html_escape(f.link);
    h        text[];
    a        smartetl._alert_item;
BEGIN
    h := ARRAY['<!DOCTYPE html>',
               '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
               '<title>' || smartetl._html_escape(f.title) || '</title></head>',
               '<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;'
                   || 'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;">',
               '<div style="max-width:760px;">',
               format('<div style="border-left:6px solid %s;padding:8px 14px;background:#f6f8fa;">', color),
               format('<h1 style="margin:0;font-size:20px;color:%s;">%s</h1>', color, smartetl._html_escape(f.title)),
               format('<p style="margin:4px 0 0 0;color:#57606a;">%s%s</p>', smartetl._html_escape(intro),
                      coalesce('<br>Group: <code>' || smartetl._html_escape(f.group_key) || '</code>', '')),
               '</div>'];
    FOREACH a IN ARRAY f.alerts[1:max_alerts] LOOP
        h := h || smartetl._payload_email_alert_html(a, color);
    END LOOP;
    IF f.total > max_alerts THEN
        h := h || format('<p style="color:#57606a;">&hellip; and %s more alerts</p>', f.total - max_alerts);
    END IF;
    IF f.link IS NOT NULL THEN
        h := h || format('<p style="margin:20px 0;"><a href="%s" style="display:inline-block;padding:8px 14px;'
                         'background:%s;color:#ffffff;text-decoration:none;border-radius:4px;">Open dashboard</a>'
                         '<br><span style="font-size:12px;color:#57606a;word-break:break-all;">%s</span></p>',
                         esc_link, color, esc_link);
    END IF;
    h := h || format('<p style="margin-top:24px;font-size:12px;color:#57606a;border-top:1px solid #d0d7de;padding-top:8px;">%s</p>',
                     smartetl._html_escape(signature))
           || '</div></body></html>'::text;
    RETURN array_to_string(h, E'\n') || E'\n';
END $$;
COMMENT ON FUNCTION smartetl._payload_email_html(smartetl._alert_notice, text, text, integer) IS
'the HTML part of an alert e-mail (inline styles, every text escaped)';

-- API: Private
CREATE OR REPLACE FUNCTION smartetl._payload_email(n jsonb, opts jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_alerts constant int := 50;
    f         smartetl._alert_notice := smartetl._alert_facts(n, opts);
    intro     text := concat_ws(', ', CASE WHEN f.resolved THEN 'RESOLVED' ELSE 'FIRING' END, f.about);
    signature text := concat_ws(', ', 'smartetl notification ' || f.key, 'sent ' || f.sent);
BEGIN
    RETURN jsonb_build_object(
               'content_type', 'multipart/alternative',
               'subject', smartetl._alert_trunc(f.title, 250),
               'text', smartetl._payload_email_text(f, intro, signature, max_alerts),
               'html', smartetl._payload_email_html(f, intro, signature, max_alerts),
               'idempotency_key', n->'idempotency_key')
           || CASE WHEN nullif(opts->>'from', '') IS NOT NULL THEN jsonb_build_object('from', opts->>'from') ELSE '{}' END
           || CASE WHEN jsonb_typeof(opts->'to') = 'array' THEN jsonb_build_object('to', opts->'to')
                   WHEN nullif(opts->>'to', '') IS NOT NULL THEN jsonb_build_object('to', jsonb_build_array(opts->>'to'))
                   ELSE '{}' END;
END $$;
COMMENT ON FUNCTION smartetl._payload_email(jsonb, jsonb) IS
'e-mail message: subject ([FIRING]/[RESOLVED] title), plain-text and inline-styled HTML parts (multipart/alternative), from/to from the channel options';

DROP FUNCTION smartetl.alert_rule_kinds();

CREATE FUNCTION smartetl.alert_rule_kinds()
RETURNS TABLE (kind text, evaluated_every interval, takes_query boolean, description text,
              driven_by text, condition text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('run_failed', interval '0', false,
            'the latest finished run of a pipeline failed (once its retries are exhausted)', 'runs',
            'smartetl._alert_cond_failures'),
           ('consecutive_failures', interval '0', false,
            'at least threshold (default 3) runs of a pipeline failed in a row', 'runs',
            'smartetl._alert_cond_failures'),
           ('duration_anomaly', interval '5 minutes', false,
            'the latest successful run took abnormally long or short (robust score above threshold, default 4)', 'clock',
            'smartetl._alert_cond_anomaly'),
           ('volume_anomaly', interval '5 minutes', false,
            'the latest successful run wrote an abnormal number of rows (robust score above threshold, default 4)', 'clock',
            'smartetl._alert_cond_anomaly'),
           ('freshness', interval '0', false,
            'no run, or no success, for longer than the interval the pipeline usually keeps', 'runs and clock',
            'smartetl._alert_cond_freshness'),
           ('deadline', interval '0', false,
            'no successful run finished since a scheduled start whose deadline passed (pipeline schedule and deadline)', 'runs and clock',
            'smartetl._alert_cond_deadline'),
           ('risk', interval '5 minutes', false,
            'the predicted risk of failure within a day is above threshold (default 0.5)', 'clock',
            'smartetl._alert_cond_risk'),
           ('model_drift', interval '5 minutes', false,
            'the champion risk model drifted (PSI above threshold, default 0.25) or lost accuracy', 'clock',
            'smartetl._alert_cond_model_drift'),
           ('sql', interval '0', true,
            'query, a read-only SELECT of (pipeline, value), run as smartetl_reader; fires above threshold', 'clock',
            'smartetl._alert_cond_sql')
$$;
COMMENT ON FUNCTION smartetl.alert_rule_kinds() IS 'the alert rule kinds: how often each is evaluated at most, whether it takes a query, what it fires on, what makes it evaluated (runs: the pipelines whose runs changed; runs and clock: those, and each pipeline when it becomes due; clock: the whole rule every evaluated_every), the function that evaluates its condition';

-- ---------------------------------------------------------------------------
-- Rule conditions, one function per kind (named in smartetl.alert_rule_kinds,
-- "condition"): what holds now for rule r, one row (pipeline_id, value,
-- annotations) per alert, for the pipelines pids only, or all when NULL
-- (kinds driven by the clock always evaluate everything).  plpgsql with
-- custom plans, so that pids NULL or not plan apart.
-- ---------------------------------------------------------------------------

-- API: Private
-- run_failed and consecutive_failures: the current failures of each
-- pipeline (threshold in a row for consecutive_failures); a try that will
-- be retried waits for the last one, or for after_tries.
CREATE FUNCTION smartetl._alert_cond_failures(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT cf.pipeline_id, cf.failed_runs::float8,
           smartetl._run_annotations(
               format('%s failed%s', cf.pipeline, CASE WHEN t.tries > 1 THEN format(' after %s tries', t.tries) ELSE '' END),
               format('%s run(s) of %s/%s failed in a row since %s', cf.failed_runs, cf.namespace,
                      cf.pipeline, to_char(cf.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
               || CASE WHEN t.tries > 1 THEN format(', after %s tries%s', t.tries,
                                                     CASE WHEN t.will_retry THEN ' (retrying)' ELSE '' END)
                       ELSE '' END,
               cf.run_id, cf.since, cf.pipeline_id)
           || CASE WHEN t.tries > 1 THEN jsonb_build_object('tries', t.tries) ELSE '{}' END
    FROM smartetl.current_failures cf
    CROSS JOIN LATERAL smartetl._run_retry(cf.run_id) t
    WHERE (pids IS NULL OR cf.pipeline_id = ANY (pids))
      AND (r.kind = 'run_failed' OR cf.failed_runs >= coalesce(r.threshold, 3))
      AND (NOT t.will_retry OR coalesce(t.tries >= r.after_tries, false));
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_failures(smartetl.alert_rule, bigint[]) IS
'the condition of run_failed and consecutive_failures rules: pipelines whose latest runs failed (retries exhausted)';

-- API: Private
-- duration_anomaly and volume_anomaly: the latest successful run of a
-- pipeline scored above threshold.
CREATE FUNCTION smartetl._alert_cond_anomaly(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
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
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_anomaly(smartetl.alert_rule, bigint[]) IS
'the condition of duration_anomaly and volume_anomaly rules: the latest successful run scored above threshold';

-- API: Private
-- freshness: no run, or no success, for longer than the pipeline's
-- expected interval times the staleness factor.
CREATE FUNCTION smartetl._alert_cond_freshness(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT o.pipeline_id, extract(epoch FROM now() - o.last_at)::float8,
           jsonb_build_object('summary', format('%s: %s', o.pipeline,
                                                CASE o.kind WHEN 'missing_run' THEN 'no run' ELSE 'no success' END),
                              'description', format('nothing since %s, expected every %s',
                                                    to_char(o.last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                                                    o.expected_interval),
                              'since', o.last_at, 'overdue', o.kind,
                              'recent_history', smartetl._recent_history(o.pipeline_id))
    FROM smartetl._alert_freshness(pids, now()) o
    WHERE o.overdue;
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_freshness(smartetl.alert_rule, bigint[]) IS
'the condition of freshness rules: pipelines overdue for a run or a success';

-- API: Private
-- deadline: the latest deadline that passed with no success finished since
-- its scheduled start, whether the run failed, still runs or never started.
CREATE FUNCTION smartetl._alert_cond_deadline(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT ds.pipeline_id, extract(epoch FROM now() - ds.deadline_at)::float8,
           smartetl._run_annotations(
               format('%s missed its %s deadline', ds.pipeline,
                      to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI')),
               format('scheduled %s %s (%s), a successful run was due by %s; %s',
                      to_char(ds.scheduled_at AT TIME ZONE ds.schedule_timezone, 'YYYY-MM-DD HH24:MI'),
                      ds.schedule_timezone, ds.schedule,
                      to_char(ds.deadline_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                      CASE WHEN ds.last_run_at IS NULL OR ds.last_run_at < ds.scheduled_at
                                AND ds.last_run_status IS DISTINCT FROM 'running'
                           THEN 'no run started since'
                           WHEN ds.last_run_status = 'running'
                           THEN format('the run started at %s is still running',
                                       to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'))
                           ELSE format('the run started at %s ended %s',
                                       to_char(ds.last_run_at AT TIME ZONE ds.schedule_timezone, 'HH24:MI'),
                                       ds.last_run_status) END),
               CASE WHEN ds.last_run_at >= ds.scheduled_at OR ds.last_run_status = 'running' THEN ds.last_run_id END,
               ds.deadline_at, ds.pipeline_id)
           || jsonb_build_object('scheduled_at', ds.scheduled_at, 'deadline_at', ds.deadline_at)
    FROM smartetl.deadline_status(now()) ds
    WHERE ds.missed AND (pids IS NULL OR ds.pipeline_id = ANY (pids));
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_deadline(smartetl.alert_rule, bigint[]) IS
'the condition of deadline rules: pipelines with no success since a scheduled start whose deadline passed';

-- API: Private
-- risk: the predicted risk of failure within a day above threshold.
CREATE FUNCTION smartetl._alert_cond_risk(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT k.pipeline_id, k.risk,
           jsonb_build_object('summary', format('%s: failure risk %s within a day', k.pipeline, round(k.risk::numeric, 2)),
                              'description', coalesce('main reasons: ' || k.reasons, 'no reasons given'),
                              'reasons', k.detail->'reasons', 'recent_history', smartetl._recent_history(k.pipeline_id))
    FROM smartetl.risk_ranking(interval '1 day') k
    WHERE k.risk >= coalesce(r.threshold, 0.5);
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_risk(smartetl.alert_rule, bigint[]) IS
'the condition of risk rules: pipelines whose predicted risk of failure within a day is above threshold';

-- API: Private
-- model_drift: the champion risk model drifted or lost accuracy (an alert
-- about the model, named by annotations.subject).
CREATE FUNCTION smartetl._alert_cond_model_drift(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
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
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_model_drift(smartetl.alert_rule, bigint[]) IS
'the condition of model_drift rules: the champion risk model drifted (PSI above threshold) or lost accuracy';

-- API: Private
-- sql: the rule's query, run sandboxed (as smartetl_reader, read-only,
-- time-limited), never pasted into this statement; fires above threshold.
CREATE FUNCTION smartetl._alert_cond_sql(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT p.pipeline_id, q.value,
           jsonb_build_object('summary', format('%s: %s', p.name, q.value),
                              'recent_history', smartetl._recent_history(p.pipeline_id))
    FROM smartetl._rule_query_rows(r.name, r.query) q JOIN smartetl.pipeline p ON p.name = q.pipeline
    WHERE r.threshold IS NULL OR q.value > r.threshold;
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_sql(smartetl.alert_rule, bigint[]) IS
'the condition of sql rules: the rows of the rule''s sandboxed query above threshold';

-- API: Private
-- What holds now for one rule: the condition function of its kind
-- (smartetl.alert_rule_kinds), called once per rule and pass.
CREATE OR REPLACE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule, pids bigint[] DEFAULT NULL)
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := (SELECT k.condition FROM smartetl.alert_rule_kinds() k WHERE k.kind = r.kind);
BEGIN
    IF f IS NULL THEN
        RAISE EXCEPTION 'unknown alert rule kind: %', coalesce(quote_literal(r.kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- f comes from the registry, never from a caller
    RETURN QUERY EXECUTE format('SELECT * FROM %s($1, $2)', f) USING r, pids;
END $$;
COMMENT ON FUNCTION smartetl._alert_conditions(smartetl.alert_rule, bigint[]) IS
'what holds now for a rule (pipeline_id, value, annotations per alert), from the condition function of its kind (smartetl.alert_rule_kinds)';

CREATE OR REPLACE FUNCTION smartetl._alert_notify(all_groups boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    todo text[];
    g record;
    r smartetl.alert_rule;
    st smartetl.alert_group;
    ch smartetl.channel;
    n jsonb;
    key text;
    due boolean;
    win text;
    queued integer := 0;
BEGIN
    IF all_groups THEN
        DELETE FROM smartetl.alert_group_due;
    ELSE
        WITH d AS (DELETE FROM smartetl.alert_group_due d WHERE d.due_at <= now() RETURNING d.group_key)
        SELECT array_agg(d.group_key) INTO todo FROM d;
        IF todo IS NULL THEN
            RETURN 0;
        END IF;
    END IF;
    FOR g IN
        SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE (a.state = 'firing' OR a.notified_state = 'firing')
          AND (all_groups OR a.group_key = ANY (todo))
        GROUP BY a.group_key
    LOOP
        SELECT * INTO r FROM smartetl.alert_rule WHERE name = g.rule_name;
        SELECT * INTO st FROM smartetl.alert_group WHERE group_key = g.group_key;
        IF r.name IS NULL THEN
            CONTINUE;
        END IF;
        -- examined now; next time by its timers (or when its alerts change)
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT g.group_key, t FROM smartetl._alert_group_next_due(g.group_key) t WHERE t IS NOT NULL
        ON CONFLICT (group_key) DO UPDATE SET due_at = least(d.due_at, excluded.due_at);
        -- Alertmanager's timing: group_wait, then group_interval, then repeat_interval
        due := CASE
                WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END;
        IF NOT coalesce(due, false) THEN
            -- Alertmanager forgets alerts not re-posted within resolve_timeout
            IF g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute'
               AND EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = ANY (r.channels) AND c.kind = 'alertmanager') THEN
                queued := queued + smartetl._alert_refresh_alertmanager(r, st);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
        VALUES (g.group_key, g.rule_name,
                (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1)
        ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1
        RETURNING * INTO st;
        key := md5(g.group_key) || '-' || st.seq;
        FOR ch IN SELECT * FROM smartetl.channel WHERE name = ANY (r.channels) ORDER BY name LOOP
            n := smartetl._alert_notification(g.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                             '{namespace}', coalesce(g.labels->>'namespace', '')));
            -- a channel in a maintenance window: recorded as muted, caught up when it ends
            win := (SELECT w.name FROM smartetl.maintenance_window w
                    WHERE w.enabled AND ch.name = ANY (w.channels) AND smartetl.maintenance_window_active(w.name)
                    ORDER BY w.name LIMIT 1);
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload, status, last_error)
            VALUES (ch.name, g.group_key, key, n,
                    smartetl._payload(ch.kind, n, ch.options),
                    CASE WHEN win IS NULL THEN 'pending' ELSE 'muted' END,
                    'muted by maintenance window ' || win)
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
        UPDATE smartetl.alert a SET notified_state = a.state,
                                    notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
        WHERE a.group_key = g.group_key
          AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
               OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    END LOOP;
    RETURN queued;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_window_catch_up() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    ch smartetl.channel;
    told text[];
    n jsonb;
    key text;
    queued integer := 0;
BEGIN
    FOR m IN SELECT d.channel, d.group_key, max(d.delivery_id) AS last_muted
             FROM smartetl.delivery d WHERE d.status = 'muted' GROUP BY 1, 2 ORDER BY 3 LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM smartetl.maintenance_window w
                              WHERE w.enabled AND m.channel = ANY (w.channels)
                                AND smartetl.maintenance_window_active(w.name));
        SELECT * INTO ch FROM smartetl.channel WHERE name = m.channel;
        -- what the channel last heard about the group, before the window
        SELECT coalesce(array_agg(a->>'fingerprint') FILTER (WHERE a->>'status' = 'firing'), '{}') INTO told
        FROM (SELECT d.notification FROM smartetl.delivery d
              WHERE d.channel = m.channel AND d.group_key = m.group_key AND d.status NOT IN ('muted', 'skipped')
              ORDER BY d.delivery_id DESC LIMIT 1) last
        CROSS JOIN LATERAL jsonb_array_elements(last.notification->'alerts') a;
        key := md5(m.group_key) || '-window-' || m.last_muted;
        n := smartetl._alert_notification(m.group_key, key,
                 (SELECT replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                                 '{namespace}', coalesce(g.labels->>'namespace', ''))
                  FROM smartetl.alert_group g WHERE g.group_key = m.group_key), told);
        IF ch.name IS NOT NULL AND jsonb_typeof(n->'alerts') = 'array' THEN
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
            VALUES (ch.name, m.group_key, key, n,
                    smartetl._payload(ch.kind, n, ch.options))
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END IF;
        UPDATE smartetl.delivery SET status = 'skipped',
               last_error = last_error || CASE WHEN jsonb_typeof(n->'alerts') = 'array' THEN '; caught up after the window'
                                               ELSE '; nothing left to send after the window' END
        WHERE channel = m.channel AND group_key = m.group_key AND status = 'muted';
    END LOOP;
    RETURN queued;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_escalate() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    ch smartetl.channel;
    n jsonb;
    key text;
    queued integer := 0;
BEGIN
    FOR e IN
        SELECT a.alert_id, a.group_key, a.fingerprint, a.labels, a.escalation_level AS level, p.name AS policy,
               p.steps->(a.escalation_level % jsonb_array_length(p.steps)) AS step
        FROM smartetl.alert a
        JOIN smartetl.alert_rule r ON r.name = a.rule_name AND r.enabled
        JOIN smartetl.escalation_policy p ON p.name = r.escalation_policy
        WHERE a.state = 'firing' AND a.acked_by IS NULL AND a.notified_at IS NOT NULL
          AND NOT smartetl._alert_muted(a)
          AND a.escalation_level < jsonb_array_length(p.steps) * (p.repeat + 1)
          AND coalesce(a.escalated_at, a.notified_at)
              + (p.steps->(a.escalation_level % jsonb_array_length(p.steps))->>'after')::interval <= now()
        ORDER BY a.alert_id
    LOOP
        UPDATE smartetl.alert SET escalation_level = e.level + 1, escalated_at = now() WHERE alert_id = e.alert_id;
        key := md5(e.group_key) || '-escalation-' || e.alert_id || '-' || (e.level + 1);
        FOR ch IN SELECT * FROM smartetl.channel
                  WHERE name IN (SELECT jsonb_array_elements_text(e.step->'channels')) ORDER BY name LOOP
            n := smartetl._alert_notification(e.group_key, key,
                     replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(e.labels->>'pipeline', '')),
                             '{namespace}', coalesce(e.labels->>'namespace', '')));
            n := n || jsonb_build_object(
                     'alerts', (SELECT jsonb_agg(x) FROM jsonb_array_elements(n->'alerts') x
                                WHERE x->>'fingerprint' = e.fingerprint),
                     'escalation', jsonb_build_object('policy', e.policy, 'level', e.level + 1));
            INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
            VALUES (ch.name, e.group_key, key, n,
                    smartetl._payload(ch.kind, n, ch.options))
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
    END LOOP;
    RETURN queued;
END $$;

REVOKE ALL ON FUNCTION
    smartetl.alert_rule_kinds(), smartetl._alert_facts(jsonb, jsonb),
    smartetl._alert_slack_section(text), smartetl._alert_slack_context(text),
    smartetl._alert_teams_heading(text), smartetl._alert_teams_code(text, text),
    smartetl._payload_slack_alert(smartetl._alert_item), smartetl._payload_teams_alert(smartetl._alert_item),
    smartetl._payload_email_alert_text(smartetl._alert_item),
    smartetl._payload_email_alert_html(smartetl._alert_item, text),
    smartetl._payload_email_text(smartetl._alert_notice, text, text, integer),
    smartetl._payload_email_html(smartetl._alert_notice, text, text, integer),
    smartetl._alert_cond_failures(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_anomaly(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_freshness(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_deadline(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_risk(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_model_drift(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_sql(smartetl.alert_rule, bigint[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.alert_rule_kinds() TO smartetl_reader;
GRANT EXECUTE ON FUNCTION
    smartetl._alert_facts(jsonb, jsonb),
    smartetl._alert_slack_section(text), smartetl._alert_slack_context(text),
    smartetl._alert_teams_heading(text), smartetl._alert_teams_code(text, text),
    smartetl._payload_slack_alert(smartetl._alert_item), smartetl._payload_teams_alert(smartetl._alert_item),
    smartetl._payload_email_alert_text(smartetl._alert_item),
    smartetl._payload_email_alert_html(smartetl._alert_item, text),
    smartetl._payload_email_text(smartetl._alert_notice, text, text, integer),
    smartetl._payload_email_html(smartetl._alert_notice, text, text, integer),
    smartetl._alert_cond_failures(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_anomaly(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_freshness(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_deadline(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_risk(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_model_drift(smartetl.alert_rule, bigint[]),
    smartetl._alert_cond_sql(smartetl.alert_rule, bigint[])
    TO smartetl_admin;

-- ---- burst delivery (issue 13): notifications queued as a set, one statement per step
-- API: Private
-- Queue the notifications that are due; returns how many deliveries.
-- Examines every group (all_groups), or those in alert_group_due whose
-- time came, and sets each examined group's next due time.  Set-based:
-- the groups due are recorded notified, their notifications built and
-- queued, and their alerts marked in one statement each (a burst of
-- 10,000 new groups is 10,000 rows, not 10,000 loops).
CREATE OR REPLACE FUNCTION smartetl._alert_notify(all_groups boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    todo text[];
    due_groups text[];
    refresh_groups text[];
    x record;
    payload_sql text;
    queued integer := 0;
BEGIN
    IF all_groups THEN
        DELETE FROM smartetl.alert_group_due;
    ELSE
        WITH d AS (DELETE FROM smartetl.alert_group_due d WHERE d.due_at <= now() RETURNING d.group_key)
        SELECT array_agg(d.group_key) INTO todo FROM d;
        IF todo IS NULL THEN
            RETURN 0;
        END IF;
    END IF;
    -- examine the groups (those of a rule that exists): each is due next by
    -- its timers (or when its alerts change); which are due now, with
    -- Alertmanager's timing: group_wait, then group_interval, then
    -- repeat_interval; which only need their Alertmanager re-post
    -- (Alertmanager forgets alerts not re-posted within resolve_timeout)
    WITH g AS (
        SELECT a.group_key, min(a.rule_name) AS rule_name,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE (a.state = 'firing' OR a.notified_state = 'firing')
          AND (all_groups OR a.group_key = ANY (todo))
        GROUP BY a.group_key
    ), e AS (
        SELECT g.group_key,
               coalesce(CASE
                   WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                   WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                   ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END, false) AS due,
               g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute'
               AND EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = ANY (r.channels) AND c.kind = 'alertmanager')
               AS refresh
        FROM g
        JOIN smartetl.alert_rule r ON r.name = g.rule_name
        LEFT JOIN smartetl.alert_group st ON st.group_key = g.group_key
    ), next_due AS (
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT e.group_key, t FROM e CROSS JOIN LATERAL smartetl._alert_group_next_due(e.group_key) t
        WHERE t IS NOT NULL
        ON CONFLICT (group_key) DO UPDATE SET due_at = least(d.due_at, excluded.due_at)
    )
    SELECT coalesce(array_agg(e.group_key ORDER BY e.group_key) FILTER (WHERE e.due), '{}'),
           coalesce(array_agg(e.group_key ORDER BY e.group_key) FILTER (WHERE NOT e.due AND e.refresh), '{}')
    INTO due_groups, refresh_groups
    FROM e;
    FOR x IN SELECT r, st
             FROM (SELECT a.group_key, min(a.rule_name) AS rule_name FROM smartetl.alert a
                   WHERE a.group_key = ANY (refresh_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
                   GROUP BY a.group_key) g
             JOIN smartetl.alert_rule r ON r.name = g.rule_name
             JOIN smartetl.alert_group st ON st.group_key = g.group_key
             ORDER BY g.group_key LOOP
        queued := queued + smartetl._alert_refresh_alertmanager(x.r, x.st);
    END LOOP;
    IF due_groups = '{}' THEN
        RETURN queued;
    END IF;
    -- the groups notified now
    INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
    SELECT g.group_key, g.rule_name,
           (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1
    FROM (SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels
          FROM smartetl.alert a
          WHERE a.group_key = ANY (due_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
          GROUP BY a.group_key) g
    JOIN smartetl.alert_rule r ON r.name = g.rule_name
    ORDER BY g.group_key
    ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1;
    -- their notifications, one per channel of the rule, built by the channel
    -- kind's formatter (smartetl.alert_channel_kinds()); a channel in a
    -- maintenance window: recorded as muted, caught up when it ends
    SELECT 'CASE x.kind WHEN ''notify'' THEN pg_catalog.jsonb_build_object(''content_type'', ''application/json'', ''body'', x.n) '
           || string_agg(format('WHEN %L THEN %s(x.n, x.options) ', k.kind, k.formatter), '' ORDER BY k.kind)
           || 'ELSE smartetl._payload(x.kind, x.n, x.options) END'
    INTO payload_sql
    FROM smartetl.alert_channel_kinds() k WHERE k.kind <> 'notify';
    -- the formatters come from the registry, never from a caller
    EXECUTE format($q$
        INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload, status, last_error)
        SELECT x.channel, x.group_key, x.key, x.n, %s,
               CASE WHEN x.win IS NULL THEN 'pending' ELSE 'muted' END, 'muted by maintenance window ' || x.win
        FROM (SELECT ch.name AS channel, ch.kind, ch.options, g.group_key, k.key,
                     smartetl._alert_notification(g.group_key, k.key,
                         replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                                 '{namespace}', coalesce(g.labels->>'namespace', ''))) AS n,
                     (SELECT w.name FROM smartetl.maintenance_window w
                      WHERE w.enabled AND ch.name = ANY (w.channels) AND smartetl.maintenance_window_active(w.name)
                      ORDER BY w.name LIMIT 1) AS win
              FROM (SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels
                    FROM smartetl.alert a
                    WHERE a.group_key = ANY ($1) AND (a.state = 'firing' OR a.notified_state = 'firing')
                    GROUP BY a.group_key) g
              JOIN smartetl.alert_rule r ON r.name = g.rule_name
              JOIN smartetl.alert_group st ON st.group_key = g.group_key
              CROSS JOIN LATERAL (SELECT md5(g.group_key) || '-' || st.seq AS key) k
              JOIN smartetl.channel ch ON ch.name = ANY (r.channels)
              ORDER BY g.group_key, ch.name) x
        ORDER BY x.group_key, x.channel
        ON CONFLICT (channel, idempotency_key) DO NOTHING$q$, payload_sql)
    USING due_groups;
    queued := queued + (SELECT count(*)
                        FROM (SELECT a.group_key, min(a.rule_name) AS rule_name FROM smartetl.alert a
                              WHERE a.group_key = ANY (due_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
                              GROUP BY a.group_key) g
                        JOIN smartetl.alert_rule r ON r.name = g.rule_name
                        JOIN smartetl.channel ch ON ch.name = ANY (r.channels));
    UPDATE smartetl.alert a SET notified_state = a.state,
                                notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
    WHERE a.group_key = ANY (due_groups)
      AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
           OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    RETURN queued;
END $$;

CREATE OR REPLACE FUNCTION smartetl._alert_group_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'alert_group' THEN
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT o.group_key, '-infinity'::timestamptz FROM old_rows o
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT n.group_key, '-infinity'::timestamptz FROM new_rows n
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at;
    ELSE
        -- value, annotations and last_seen_at alone notify nobody.  Planned
        -- for each statement (EXECUTE): a plan kept from a one-row update
        -- would join the 10,000 rows of a burst's update in a nested loop
        EXECUTE $q$
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT DISTINCT x.group_key, '-infinity'::timestamptz
        FROM (SELECT n.group_key FROM new_rows n JOIN old_rows o USING (alert_id)
              WHERE (n.group_key, n.state, n.notified_state, n.silenced, n.inhibited_by, n.muted_by,
                     n.snoozed_until, n.started_at, n.resolved_at, n.notified_at, n.acked_by,
                     n.escalation_level, n.escalated_at)
                    IS DISTINCT FROM
                    (o.group_key, o.state, o.notified_state, o.silenced, o.inhibited_by, o.muted_by,
                     o.snoozed_until, o.started_at, o.resolved_at, o.notified_at, o.acked_by,
                     o.escalation_level, o.escalated_at)
              UNION ALL
              SELECT o.group_key FROM new_rows n JOIN old_rows o USING (alert_id)
              WHERE n.group_key <> o.group_key) x
        ON CONFLICT (group_key) DO UPDATE SET due_at = excluded.due_at$q$;
    END IF;
    RETURN NULL;
END $$;

-- the worker's claim: the oldest due deliveries first, without reading the sent ones
CREATE INDEX delivery_claim ON smartetl.delivery (delivery_id) WHERE status IN ('pending', 'retrying');

-- _alert_notify: every channel kind, notify too, rendered by its registry formatter
CREATE OR REPLACE FUNCTION smartetl._alert_notify(all_groups boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    todo text[];
    due_groups text[];
    refresh_groups text[];
    x record;
    payload_sql text;
    queued integer := 0;
BEGIN
    IF all_groups THEN
        DELETE FROM smartetl.alert_group_due;
    ELSE
        WITH d AS (DELETE FROM smartetl.alert_group_due d WHERE d.due_at <= now() RETURNING d.group_key)
        SELECT array_agg(d.group_key) INTO todo FROM d;
        IF todo IS NULL THEN
            RETURN 0;
        END IF;
    END IF;
    -- examine the groups (those of a rule that exists): each is due next by
    -- its timers (or when its alerts change); which are due now, with
    -- Alertmanager's timing: group_wait, then group_interval, then
    -- repeat_interval; which only need their Alertmanager re-post
    -- (Alertmanager forgets alerts not re-posted within resolve_timeout)
    WITH g AS (
        SELECT a.group_key, min(a.rule_name) AS rule_name,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)
                       AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing'
                       AND NOT smartetl._alert_held(a)) AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT smartetl._alert_muted(a)) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT smartetl._alert_muted(a)
                                         AND a.notified_state IS DISTINCT FROM 'firing') AS first_pending
        FROM smartetl.alert a
        WHERE (a.state = 'firing' OR a.notified_state = 'firing')
          AND (all_groups OR a.group_key = ANY (todo))
        GROUP BY a.group_key
    ), e AS (
        SELECT g.group_key,
               coalesce(CASE
                   WHEN st.last_notified_at IS NULL THEN g.new_firing AND g.first_pending + r.group_wait <= now()
                   WHEN g.new_firing OR g.newly_resolved THEN st.last_notified_at + r.group_interval <= now()
                   ELSE g.any_firing AND st.last_notified_at + r.repeat_interval <= now() END, false) AS due,
               g.any_firing AND st.last_notified_at IS NOT NULL
               AND coalesce(st.am_posted_at, st.last_notified_at) < now() - interval '1 minute'
               AND EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = ANY (r.channels) AND c.kind = 'alertmanager')
               AS refresh
        FROM g
        JOIN smartetl.alert_rule r ON r.name = g.rule_name
        LEFT JOIN smartetl.alert_group st ON st.group_key = g.group_key
    ), next_due AS (
        INSERT INTO smartetl.alert_group_due AS d (group_key, due_at)
        SELECT e.group_key, t FROM e CROSS JOIN LATERAL smartetl._alert_group_next_due(e.group_key) t
        WHERE t IS NOT NULL
        ON CONFLICT (group_key) DO UPDATE SET due_at = least(d.due_at, excluded.due_at)
    )
    SELECT coalesce(array_agg(e.group_key ORDER BY e.group_key) FILTER (WHERE e.due), '{}'),
           coalesce(array_agg(e.group_key ORDER BY e.group_key) FILTER (WHERE NOT e.due AND e.refresh), '{}')
    INTO due_groups, refresh_groups
    FROM e;
    FOR x IN SELECT r, st
             FROM (SELECT a.group_key, min(a.rule_name) AS rule_name FROM smartetl.alert a
                   WHERE a.group_key = ANY (refresh_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
                   GROUP BY a.group_key) g
             JOIN smartetl.alert_rule r ON r.name = g.rule_name
             JOIN smartetl.alert_group st ON st.group_key = g.group_key
             ORDER BY g.group_key LOOP
        queued := queued + smartetl._alert_refresh_alertmanager(x.r, x.st);
    END LOOP;
    IF due_groups = '{}' THEN
        RETURN queued;
    END IF;
    -- the groups notified now
    INSERT INTO smartetl.alert_group AS ag (group_key, rule_name, labels, last_notified_at, seq)
    SELECT g.group_key, g.rule_name,
           (SELECT coalesce(jsonb_object_agg(l, g.labels->>l), '{}') FROM unnest(r.group_by) l), now(), 1
    FROM (SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels
          FROM smartetl.alert a
          WHERE a.group_key = ANY (due_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
          GROUP BY a.group_key) g
    JOIN smartetl.alert_rule r ON r.name = g.rule_name
    ORDER BY g.group_key
    ON CONFLICT (group_key) DO UPDATE SET last_notified_at = now(), am_posted_at = now(), seq = ag.seq + 1;
    -- their notifications, one per channel of the rule, built by the channel
    -- kind's formatter (smartetl.alert_channel_kinds()); a channel in a
    -- maintenance window: recorded as muted, caught up when it ends
    SELECT 'CASE x.kind '
           || string_agg(format('WHEN %L THEN %s(x.n, x.options) ', k.kind, k.formatter), '' ORDER BY k.kind)
           || 'ELSE smartetl._payload(x.kind, x.n, x.options) END'
    INTO payload_sql
    FROM smartetl.alert_channel_kinds() k;
    -- the formatters come from the registry, never from a caller
    EXECUTE format($q$
        INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload, status, last_error)
        SELECT x.channel, x.group_key, x.key, x.n, %s,
               CASE WHEN x.win IS NULL THEN 'pending' ELSE 'muted' END, 'muted by maintenance window ' || x.win
        FROM (SELECT ch.name AS channel, ch.kind, ch.options, g.group_key, k.key,
                     smartetl._alert_notification(g.group_key, k.key,
                         replace(replace(ch.options->>'link_template', '{pipeline}', coalesce(g.labels->>'pipeline', '')),
                                 '{namespace}', coalesce(g.labels->>'namespace', ''))) AS n,
                     (SELECT w.name FROM smartetl.maintenance_window w
                      WHERE w.enabled AND ch.name = ANY (w.channels) AND smartetl.maintenance_window_active(w.name)
                      ORDER BY w.name LIMIT 1) AS win
              FROM (SELECT a.group_key, min(a.rule_name) AS rule_name, min(a.labels::text)::jsonb AS labels
                    FROM smartetl.alert a
                    WHERE a.group_key = ANY ($1) AND (a.state = 'firing' OR a.notified_state = 'firing')
                    GROUP BY a.group_key) g
              JOIN smartetl.alert_rule r ON r.name = g.rule_name
              JOIN smartetl.alert_group st ON st.group_key = g.group_key
              CROSS JOIN LATERAL (SELECT md5(g.group_key) || '-' || st.seq AS key) k
              JOIN smartetl.channel ch ON ch.name = ANY (r.channels)
              ORDER BY g.group_key, ch.name) x
        ORDER BY x.group_key, x.channel
        ON CONFLICT (channel, idempotency_key) DO NOTHING$q$, payload_sql)
    USING due_groups;
    queued := queued + (SELECT count(*)
                        FROM (SELECT a.group_key, min(a.rule_name) AS rule_name FROM smartetl.alert a
                              WHERE a.group_key = ANY (due_groups) AND (a.state = 'firing' OR a.notified_state = 'firing')
                              GROUP BY a.group_key) g
                        JOIN smartetl.alert_rule r ON r.name = g.rule_name
                        JOIN smartetl.channel ch ON ch.name = ANY (r.channels));
    UPDATE smartetl.alert a SET notified_state = a.state,
                                notified_at = coalesce(a.notified_at, CASE WHEN a.state = 'firing' THEN now() END)
    WHERE a.group_key = ANY (due_groups)
      AND ((a.state = 'firing' AND NOT smartetl._alert_muted(a))
           OR (a.state = 'resolved' AND a.notified_state = 'firing' AND NOT smartetl._alert_held(a)));
    RETURN queued;
END $$;

-- ---- anomalies scored at ingest (issue 13): per-run scores kept in
-- run_anomaly_score, baseline windows per pipeline in anomaly_state, filled by
-- _anomaly_refresh from _kpi_refresh and bulk ingest; detect_anomalies reads them
-- API: Private (window aggregate, src/kpi/anomaly_scan.c)
CREATE FUNCTION smartetl._anomaly_scan_add(internal, double precision[], double precision, double precision,
                                           timestamptz, boolean) RETURNS internal
AS 'MODULE_PATHNAME', 'anomaly_scan_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._anomaly_scan_row(internal) RETURNS double precision[]
AS 'MODULE_PATHNAME', 'anomaly_scan_row' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- API: Private
CREATE AGGREGATE smartetl._anomaly_scan(double precision[], double precision, double precision,
                                        timestamptz, boolean) (
    SFUNC = smartetl._anomaly_scan_add,
    STYPE = internal,
    FINALFUNC = smartetl._anomaly_scan_row,
    FINALFUNC_MODIFY = READ_ONLY
);
COMMENT ON AGGREGATE smartetl._anomaly_scan(double precision[], double precision, double precision, timestamptz, boolean) IS
'window aggregate over one pipeline''s successful runs in time order (seed windows, log duration, log volume, run_at, is_last): each run''s {center, scale, baseline runs, seasonal} per kind, and on the last run the windows to keep';

-- API: Public
-- Each successful run's anomaly baseline and score, per kind, computed when
-- the run arrives (from the pipeline's earlier runs only, so a score never
-- changes unless earlier runs do).  A kind's columns are NULL where the run
-- was not scored (no baseline yet, or no value).
CREATE TABLE smartetl.run_anomaly_score (
    run_id            bigint NOT NULL,
    pipeline_id       bigint NOT NULL,
    run_at            timestamptz NOT NULL,
    duration_s        double precision,
    duration_expected double precision,
    duration_scale    double precision,
    duration_score    double precision,
    duration_runs     integer,
    duration_seasonal boolean,
    rows_written      double precision,
    volume_expected   double precision,
    volume_scale      double precision,
    volume_score      double precision,
    volume_runs       integer,
    volume_seasonal   boolean,
    -- one index serves the rescoring of a pipeline and detect_anomalies (a
    -- range per pipeline); every index more costs a bulk load one insert per run
    PRIMARY KEY (pipeline_id, run_at, run_id)
);
COMMENT ON TABLE smartetl.run_anomaly_score IS
'per successful run and kind (duration, volume): the baseline (expected = median of log(1 + x) of earlier runs, scale = robust spread of their residuals), the score (log(1 + x) - expected) / scale and the baseline''s run count and kind; kept by _anomaly_refresh as runs change';

-- API: Private
-- Per pipeline: the baseline windows after its last scored run (run_at =
-- last_at), so that newer runs are scored without reading the history.
CREATE TABLE smartetl.anomaly_state (
    pipeline_id bigint NOT NULL PRIMARY KEY,
    last_at     timestamptz NOT NULL,
    windows     double precision[] NOT NULL
);
COMMENT ON TABLE smartetl.anomaly_state IS
'per pipeline, the anomaly baseline windows (src/kpi/anomaly_scan.c) after its latest successful run (last_at): the seed of the next scoring';

-- API: Private
-- Score the runs of changed pipelines: called with the (pipeline, run time)
-- pairs of changed runs, by _kpi_refresh (runs changed with SQL) and by
-- bulk ingest for its new runs (src/kpi/rollup.c).  A pipeline whose
-- changes are all later than its last scored run continues from its kept
-- windows over the new runs only; any other change (a late, corrected or
-- deleted run) rescans the pipeline from its first run, so the scores
-- never depend on the order runs arrived in, and rewrites the scores from
-- its earliest change on (a run's score depends on earlier runs only, so
-- the ones before stay as they are).  Every statement is set-based over
-- the changed pipelines (a bulk DELETE or UPDATE of many pipelines' runs
-- costs one pass over their runs), and reads each pipeline's runs through
-- run_pipeline_time (the OFFSET 0 keeps the lateral subquery a
-- per-pipeline index range, whatever the statistics of a table loaded in
-- the same transaction say).  A bulk load sorts all its new runs: memory
-- as _kpi_refresh has; no JIT (the work is in the C aggregate and the
-- writes, and a bulk change's estimate would compile it on every call).
CREATE FUNCTION smartetl._anomaly_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB' SET jit = off AS $$
DECLARE
    changed bigint[];           -- the changed pipelines
    rescan_from timestamptz[];  -- per changed pipeline: rescanned, scores rewritten from then on; NULL: continued
    any_rescan boolean;
BEGIN
    SELECT array_agg(c.p ORDER BY c.p),
           array_agg(CASE WHEN s.pipeline_id IS NULL OR c.t <= s.last_at THEN c.t END ORDER BY c.p),
           bool_or(s.pipeline_id IS NULL OR c.t <= s.last_at)
    INTO changed, rescan_from, any_rescan
    FROM (SELECT p, min(t) AS t FROM unnest(pipeline_ids, times) u(p, t)
          WHERE p IS NOT NULL AND t IS NOT NULL GROUP BY p) c
    LEFT JOIN smartetl.anomaly_state s ON s.pipeline_id = c.p;
    IF changed IS NULL THEN
        RETURN;
    END IF;
    IF any_rescan THEN
        DELETE FROM smartetl.run_anomaly_score k USING unnest(changed, rescan_from) u(p, t)
        WHERE k.pipeline_id = u.p AND k.run_at >= u.t;
        DELETE FROM smartetl.anomaly_state k USING unnest(changed, rescan_from) u(p, t)
        WHERE k.pipeline_id = u.p AND u.t IS NOT NULL;
    END IF;
    WITH scan AS MATERIALIZED (
        SELECT r.run_id, r.pipeline_id, r.run_at, r.duration_s, r.rows_written, r.is_last, r.from_t,
               smartetl._anomaly_scan(r.seed, r.lx_d, r.lx_v, r.run_at, r.is_last)
                   OVER (PARTITION BY r.pipeline_id ORDER BY r.run_at, r.run_id ROWS UNBOUNDED PRECEDING) AS o
        FROM (SELECT r.run_id, c.pipeline_id, r.run_at, r.duration_s, r.rows_written::float8 AS rows_written, s.windows AS seed,
                     c.from_t,
                     CASE WHEN r.duration_s >= 0 THEN ln(1 + r.duration_s) END AS lx_d,
                     CASE WHEN r.rows_written::float8 >= 0 THEN ln(1 + r.rows_written::float8) END AS lx_v,
                     lead(r.run_id) OVER (PARTITION BY c.pipeline_id ORDER BY r.run_at, r.run_id) IS NULL AS is_last
              FROM unnest(changed, rescan_from) c(pipeline_id, from_t)
              LEFT JOIN smartetl.anomaly_state s ON s.pipeline_id = c.pipeline_id
              CROSS JOIN LATERAL (
                  SELECT r.run_id, r.run_at, r.duration_s, r.rows_written FROM smartetl.run r
                  WHERE r.pipeline_id = c.pipeline_id AND r.status = 'success'
                    AND r.run_at > coalesce(s.last_at, '-infinity') OFFSET 0) r) r
    ), scored AS (
        INSERT INTO smartetl.run_anomaly_score
        SELECT run_id, pipeline_id, run_at,
               duration_s, o[1], o[2], (ln(1 + duration_s) - o[1]) / o[2], o[3]::int, o[4] = 1,
               rows_written, o[5], o[6], (ln(1 + rows_written) - o[5]) / o[6], o[7]::int, o[8] = 1
        FROM scan WHERE (o[1] IS NOT NULL OR o[5] IS NOT NULL) AND (from_t IS NULL OR run_at >= from_t)
    )
    INSERT INTO smartetl.anomaly_state AS k (pipeline_id, last_at, windows)
    SELECT pipeline_id, run_at, o[9:] FROM scan WHERE is_last
    ON CONFLICT (pipeline_id) DO UPDATE SET last_at = excluded.last_at, windows = excluded.windows;
END $$;
COMMENT ON FUNCTION smartetl._anomaly_refresh(bigint[], timestamptz[]) IS
'score the successful runs of the changed (pipeline, time) pairs into run_anomaly_score: from the kept windows when every change is newer than the pipeline''s last scored run, else the whole pipeline again (scores rewritten from the earliest change on)';

-- API: Public
CREATE OR REPLACE FUNCTION smartetl.detect_anomalies(from_ts timestamptz, to_ts timestamptz,
                                          threshold double precision DEFAULT 4.0)
RETURNS TABLE (
    run_id        bigint,
    pipeline_id   bigint,
    pipeline      text,
    run_at        timestamptz,
    kind          text,
    value         double precision,
    expected      double precision,
    expected_low  double precision,
    expected_high double precision,
    score         double precision,
    baseline      text,
    baseline_runs integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.run_id, s.pipeline_id, p.name, s.run_at, m.kind, m.x,
           exp(m.center) - 1,
           greatest(exp(m.center - threshold * m.scale) - 1, 0),
           exp(m.center + threshold * m.scale) - 1,
           m.score,
           CASE WHEN m.seasonal THEN 'hour_of_week' ELSE 'recent_runs' END, m.n
    FROM smartetl.pipeline p
    JOIN smartetl.run_anomaly_score s
      ON s.pipeline_id = p.pipeline_id AND s.run_at >= from_ts AND s.run_at < to_ts
    CROSS JOIN LATERAL (VALUES ('duration', s.duration_s, s.duration_expected, s.duration_scale, s.duration_score,
                                s.duration_seasonal, s.duration_runs),
                               ('volume', s.rows_written, s.volume_expected, s.volume_scale, s.volume_score,
                                s.volume_seasonal, s.volume_runs)) m(kind, x, center, scale, score, seasonal, n)
    WHERE m.center IS NOT NULL AND abs(m.score) > threshold
    ORDER BY s.run_at, s.run_id, m.kind
$$;
COMMENT ON FUNCTION smartetl.detect_anomalies(timestamptz, timestamptz, double precision) IS
'successful runs in [from, to) whose duration or volume is abnormal against a robust baseline of earlier runs only (median/MAD of log(1+x), hour-of-week when there is enough history, else the last 30 runs); reads the scores kept as runs arrive (run_anomaly_score)';

-- API: Private
-- smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]):
-- recompute the rollups of the given (pipeline, time) pairs.  Takes the
-- ingest locks of those pipelines first, so that of two transactions
-- changing one pipeline the later recomputes after the earlier committed.
-- Every call is planned for its own key count (plan_cache_mode below), with
-- memory enough to sort a bulk load's keys without spilling.  Its two
-- statements are written by _kpi_rollup_sql() here, when the extension is
-- created (the upgrade script does the same), so they are static SQL whose
-- parse trees plpgsql keeps: a statement trigger pays only the planning.
-- The changed runs are then scored for anomalies (70_anomaly.sql) with the
-- same owner's rights.
DO $do$
BEGIN
    EXECUTE pg_catalog.format($create$
CREATE OR REPLACE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $body$
BEGIN
    PERFORM smartetl._lock_pipelines(pipeline_ids);
%s;
%s;
    PERFORM smartetl._anomaly_refresh(pipeline_ids, times);
END $body$$create$, smartetl._kpi_rollup_sql('refresh_hourly'), smartetl._kpi_rollup_sql('refresh_daily'));
END $do$;

SELECT pg_catalog.pg_extension_config_dump('smartetl.run_anomaly_score', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.anomaly_state', '');
REVOKE ALL ON FUNCTION smartetl._anomaly_scan_add(internal, double precision[], double precision, double precision, timestamptz, boolean),
                       smartetl._anomaly_scan_row(internal),
                       smartetl._anomaly_scan(double precision[], double precision, double precision, timestamptz, boolean),
                       smartetl._anomaly_refresh(bigint[], timestamptz[]) FROM PUBLIC;
GRANT SELECT ON smartetl.run_anomaly_score TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.run_anomaly_score, smartetl.anomaly_state TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._anomaly_refresh(bigint[], timestamptz[]),
                          smartetl._anomaly_scan(double precision[], double precision, double precision, timestamptz, boolean)
    TO smartetl_writer;
-- score the runs stored before the update
SELECT smartetl._anomaly_refresh(array_agg(pipeline_id), array_agg('-infinity'::timestamptz))
FROM smartetl.pipeline;

-- the alert workers' state, from shared memory
CREATE FUNCTION smartetl.alert_worker_status()
RETURNS TABLE (pid integer, started_at timestamptz, settings_loaded_at timestamptz, last_cycle_at timestamptz)
AS 'MODULE_PATHNAME', 'smartetl_alert_worker_status' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION smartetl.alert_worker_status() IS 'the alert workers serving this database: pid, start, when they last read the settings, when their last cycle ended (none without shared_preload_libraries)';
REVOKE ALL ON FUNCTION smartetl.alert_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smartetl.alert_worker_status() TO smartetl_reader;

-- kpi3: KPIs from rollups (issue 13).  A monthly rollup (kpi_monthly) and
-- the failure streaks kept per pipeline (failure_streak, _streak_refresh),
-- read by pipeline_kpi through _kpi_spans and _failure_streaks; the rollup
-- refresh reads each touched bucket through an OFFSET 0 LATERAL index range
-- and deletes emptied buckets by ctid, whatever the statistics say.
-- API: Public
-- Whole months, so that a year per pipeline is a dozen rows to merge
-- (pipeline_kpi through _kpi_spans, the metrics view's totals).
CREATE TABLE smartetl.kpi_monthly (LIKE smartetl.kpi_hourly INCLUDING ALL);
COMMENT ON TABLE smartetl.kpi_monthly IS 'kpi_daily merged per UTC month (bucket = month start)';
-- API: Private
-- Failure streaks, kept as runs change: each maximal set of a pipeline's
-- failed runs that the same success ends (the first success later than
-- them; among successes at one time, the one that finished first), or
-- that no success ends yet.  _failure_streaks reads it for any range
-- (recounting in the index only the streaks cut by the range's ends), so
-- pipeline_kpi's MTTR, MTBF and longest streak cost the streaks, not one
-- index probe per failed run.
CREATE TABLE smartetl.failure_streak (
    pipeline_id   bigint NOT NULL,
    began         timestamptz NOT NULL,
    last_failed   timestamptz NOT NULL,
    failed_runs   bigint NOT NULL,
    recovered_at  timestamptz,
    recovered     timestamptz,
    PRIMARY KEY (pipeline_id, began)
);
COMMENT ON TABLE smartetl.failure_streak IS
'per pipeline, each streak of consecutive failed runs: the first (began) and last failed run''s run_at, how many, and the success that ended it (its run_at, recovered_at, and when it finished, recovered; NULL while it lasts); kept by _streak_refresh as runs change';
CREATE INDEX failure_streak_last_failed ON smartetl.failure_streak (last_failed);
-- API: Private
-- Redo the failure streaks of the changed (pipeline, run time) pairs: by
-- _kpi_refresh (runs changed with SQL) and by bulk ingest for its new runs
-- (src/kpi/rollup.c).  A streak ended by a success before a pipeline's
-- earliest change t cannot change; every later streak (ended at or after
-- t, or lasting) is deleted and recounted from the runs since the start of
-- the earliest of them (or t): for runs arriving in order, the pipeline's
-- last streak and its new runs.  Runs are read per pipeline through
-- run_pipeline_time in a LATERAL subquery kept out of the join planning
-- (OFFSET 0), whatever the statistics of a table loaded in the same
-- transaction say.  In the window's order (time, successes first at one
-- time, then the earlier finish), a failed run's streak is the number of
-- successes before it; the success numbered one more ends it.
CREATE OR REPLACE FUNCTION smartetl._streak_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB' SET jit = off AS $$
DECLARE
    changed bigint[];          -- the changed pipelines
    redo_from timestamptz[];   -- per changed pipeline: streaks and runs from then on
BEGIN
    SELECT array_agg(c.p ORDER BY c.p), array_agg(least(c.t, k.began) ORDER BY c.p)
    INTO changed, redo_from
    FROM (SELECT p, min(t) AS t FROM unnest(pipeline_ids, times) u(p, t)
          WHERE p IS NOT NULL AND t IS NOT NULL GROUP BY p) c
    CROSS JOIN LATERAL (
        SELECT min(k.began) AS began FROM smartetl.failure_streak k
        WHERE k.pipeline_id = c.p AND (k.recovered_at IS NULL OR k.recovered_at >= c.t) OFFSET 0) k;
    IF changed IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM smartetl.failure_streak k
    WHERE k.ctid = ANY (ARRAY(
        SELECT g.tid FROM unnest(changed, redo_from) u(p, t)
        CROSS JOIN LATERAL (SELECT g.ctid AS tid FROM smartetl.failure_streak g
                            WHERE g.pipeline_id = u.p AND g.began >= u.t OFFSET 0) g));
    INSERT INTO smartetl.failure_streak (pipeline_id, began, last_failed, failed_runs, recovered_at, recovered)
    SELECT pipeline_id, min(run_at) FILTER (WHERE failed), max(run_at) FILTER (WHERE failed),
           count(*) FILTER (WHERE failed), max(run_at) FILTER (WHERE NOT failed),
           max(done) FILTER (WHERE NOT failed)
    FROM (SELECT u.p AS pipeline_id, r.run_at, r.failed, r.done,
                 count(*) FILTER (WHERE NOT r.failed)
                     OVER (PARTITION BY u.p ORDER BY r.run_at, r.failed, r.done ROWS UNBOUNDED PRECEDING)
                 - CASE WHEN r.failed THEN 0 ELSE 1 END AS streak
          FROM unnest(changed, redo_from) u(p, t)
          CROSS JOIN LATERAL (
              SELECT r.run_at, r.status = 'failed' AS failed, coalesce(r.ended_at, r.run_at) AS done
              FROM smartetl.run r
              WHERE r.pipeline_id = u.p AND r.run_at >= u.t AND r.status IN ('failed', 'success') OFFSET 0) r) s
    GROUP BY pipeline_id, streak
    HAVING bool_or(failed);
END $$;
COMMENT ON FUNCTION smartetl._streak_refresh(bigint[], timestamptz[]) IS
'redo the failure streaks (failure_streak) of the changed (pipeline, run time) pairs: every streak not ended before a pipeline''s earliest change is recounted from the runs';
-- API: Private
-- The statements that fill the rollups, written from _kpi_rollup_columns():
--   refresh_hourly  recompute the hours of the (pipeline_ids, times) pairs
--                   (the arguments of _kpi_refresh, whose body this is) from
--                   smartetl.run, deleting buckets left without runs
--   refresh_daily   recompute the days of the same pairs from kpi_hourly
--   refresh_monthly recompute the months of the same pairs from kpi_daily
--   add_hourly, add_daily, add_monthly
--                   add the new runs of relation `source` (ingest's batch;
--                   runs that are all new) to their buckets: counts and sums
--                   add, sketches merge
-- The refreshes read each touched bucket through a LATERAL subquery kept
-- out of the join planning (OFFSET 0, an aggregate): one index range per
-- bucket (run_pipeline_time, the rollup's primary key), and the emptied
-- buckets are deleted by their ctids, whatever the statistics say.  The
-- rollup ranges are row comparisons on (pipeline_id, bucket), which only
-- the primary key can serve: on separate columns a planner that takes the
-- table for empty may pick the bucket index, a scan of every pipeline's
-- rows of that day per key.  After
-- autovacuum has seen smartetl.run or the rollups empty (reltuples = 0 with
-- pages), a large load or DELETE in one transaction looks empty to the
-- planner, which joined the keys and the table as a nested loop with a
-- whole scan per key (minutes for the Borg trace; BENCHMARKS.md).
-- Times outside the absolute limits of smartetl.run (run_time_limits) are
-- skipped: no run can be in their buckets, and bucket + 1 hour could
-- overflow at the ends of the timestamp range (a run stored before the
-- limits existed must not make every later change of its pipeline fail).
CREATE OR REPLACE FUNCTION smartetl._kpi_rollup_sql(step text, source text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;        -- the column names
    from_runs text;   -- each column from the runs r of a bucket
    merged text;      -- each column from the hourly rows h of a day
    replaced text;    -- ON CONFLICT: the new value
    added text;       -- ON CONFLICT: the stored value k plus the new one
    unit text;
BEGIN
    SELECT string_agg(c.name, ', ' ORDER BY c.ord),
           string_agg(CASE c.kind
                          WHEN 'count' THEN 'count(r.status)'
                          WHEN 'sum' THEN 'sum(' || c.value || ')'
                          WHEN 'sketch' THEN 'smartetl.qsketch_agg(' || c.value || ')' END
                      || coalesce(' FILTER (WHERE ' || c.condition || ')', '')
                      || CASE c.kind WHEN 'sum' THEN '::bigint' ELSE '' END
                      || ' AS ' || c.name, ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN 'coalesce(sum(h.%1$s), 0)::bigint AS %1$s'
                                         WHEN 'sum' THEN 'sum(h.%1$s)::bigint AS %1$s'
                                         WHEN 'sketch' THEN 'smartetl.qsketch_merge(h.%1$s) AS %1$s' END,
                             c.name), ', ' ORDER BY c.ord),
           string_agg(format('%1$s = excluded.%1$s', c.name), ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN '%1$s = k.%1$s + excluded.%1$s'
                                         WHEN 'sum' THEN '%1$s = CASE WHEN k.%1$s IS NULL AND excluded.%1$s IS NULL THEN NULL '
                                                         'ELSE coalesce(k.%1$s, 0) + coalesce(excluded.%1$s, 0) END'
                                         WHEN 'sketch' THEN '%1$s = smartetl.qsketch_combine(k.%1$s, excluded.%1$s)' END,
                             c.name), ', ' ORDER BY c.ord)
    INTO cols, from_runs, merged, replaced, added
    FROM smartetl._kpi_rollup_columns() WITH ORDINALITY c(name, kind, value, condition, ord);

    unit := CASE WHEN step IN ('refresh_hourly', 'add_hourly') THEN 'hour'
                 WHEN step IN ('refresh_daily', 'add_daily') THEN 'day' ELSE 'month' END;
    CASE step
    WHEN 'refresh_hourly', 'refresh_daily', 'refresh_monthly' THEN
        RETURN format($q$
WITH touched AS (
    SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc(%1$L, t) AS bucket
    FROM unnest(pipeline_ids, times) u(p, t)
    WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
), fresh AS (
    SELECT t.pipeline_id, t.bucket, x.*
    FROM touched t
    %3$s
    CROSS JOIN LATERAL (SELECT %2$s %7$s OFFSET 0) x
), gone AS (
    DELETE FROM smartetl.%4$I k
    WHERE k.ctid = ANY (ARRAY(
        SELECT g.tid FROM fresh f
        CROSS JOIN LATERAL (SELECT g.ctid AS tid FROM smartetl.%4$I g
                            WHERE (g.pipeline_id, g.bucket) >= (f.pipeline_id, f.bucket)
                              AND (g.pipeline_id, g.bucket) <= (f.pipeline_id, f.bucket) OFFSET 0) g
        WHERE f.runs = 0))
)
INSERT INTO smartetl.%4$I AS k (pipeline_id, bucket, %5$s)
SELECT pipeline_id, bucket, %5$s FROM fresh WHERE runs > 0
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            unit,
            CASE unit WHEN 'hour' THEN from_runs ELSE merged END,
            CASE unit
            WHEN 'hour' THEN
                'CROSS JOIN LATERAL (SELECT p.sla FROM smartetl.pipeline p '
                'WHERE p.pipeline_id = t.pipeline_id OFFSET 0) p'
            ELSE '' END,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' WHEN 'day' THEN 'kpi_daily' ELSE 'kpi_monthly' END, cols, replaced,
            CASE unit
            WHEN 'hour' THEN
                'FROM smartetl.run r WHERE r.pipeline_id = t.pipeline_id '
                'AND r.run_at >= t.bucket AND r.run_at < t.bucket + interval ''1 hour'''
            WHEN 'day' THEN
                'FROM smartetl.kpi_hourly h WHERE (h.pipeline_id, h.bucket) >= (t.pipeline_id, t.bucket) '
                'AND (h.pipeline_id, h.bucket) < (t.pipeline_id, t.bucket + interval ''1 day'')'
            ELSE
                'FROM smartetl.kpi_daily h WHERE (h.pipeline_id, h.bucket) >= (t.pipeline_id, t.bucket) '
                'AND (h.pipeline_id, h.bucket) < (t.pipeline_id, t.bucket + interval ''1 month'')' END);
    WHEN 'add_hourly', 'add_daily', 'add_monthly' THEN
        RETURN format($q$
INSERT INTO smartetl.%1$I AS k (pipeline_id, bucket, %2$s)
SELECT p.pipeline_id, smartetl._utc_trunc(%3$L, coalesce(r.started_at, r.ended_at)) AS bucket, %4$s
FROM %5$I r JOIN smartetl.pipeline p
  ON p.namespace OPERATOR(pg_catalog.=) r.namespace AND p.name OPERATOR(pg_catalog.=) r.pipeline
WHERE coalesce(r.started_at, r.ended_at) IS NOT NULL
GROUP BY 1, 2
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' WHEN 'day' THEN 'kpi_daily' ELSE 'kpi_monthly' END,
            cols, unit, from_runs, source, added);
    ELSE
        RAISE EXCEPTION 'unknown rollup step "%"', step USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;
COMMENT ON FUNCTION smartetl._kpi_rollup_sql(text, text) IS
'the SQL of one step filling the KPI rollups (refresh_hourly, refresh_daily, refresh_monthly, add_hourly, add_daily, add_monthly), written from _kpi_rollup_columns()';

-- API: Private
-- smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]):
-- recompute the rollups of the given (pipeline, time) pairs.  Takes the
-- ingest locks of those pipelines first, so that of two transactions
-- changing one pipeline the later recomputes after the earlier committed.
-- Every call is planned for its own key count (plan_cache_mode below), with
-- memory enough to sort a bulk load's keys without spilling.  Its three
-- statements are written by _kpi_rollup_sql() here, when the extension is
-- created (the upgrade script does the same), so they are static SQL whose
-- parse trees plpgsql keeps: a statement trigger pays only the planning.
-- The changed runs' failure streaks are then redone (60_kpi.sql) and the
-- runs scored for anomalies (70_anomaly.sql) with the same owner's rights.
DO $do$
BEGIN
    EXECUTE pg_catalog.format($create$
CREATE OR REPLACE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $body$
BEGIN
    PERFORM smartetl._lock_pipelines(pipeline_ids);
%s;
%s;
%s;
    PERFORM smartetl._streak_refresh(pipeline_ids, times);
    PERFORM smartetl._anomaly_refresh(pipeline_ids, times);
END $body$$create$, smartetl._kpi_rollup_sql('refresh_hourly'), smartetl._kpi_rollup_sql('refresh_daily'),
    smartetl._kpi_rollup_sql('refresh_monthly'));
END $do$;
-- API: Private
-- Failure incidents in a range: each streak of consecutive failed runs of a
-- pipeline, when it began, how many runs it lasted and when the success
-- that ended it finished (NULL while it lasts, or when that success is not
-- before to_ts).  Only the failed runs of the range count: a streak cut by
-- from_ts begins at its first failed run in the range, one cut by to_ts is
-- counted up to it (index lookups in run_failed_time, at most two streaks
-- per pipeline); every other streak is read as kept in failure_streak (a
-- plain scan: the two kinds are two parts of a UNION ALL).
CREATE OR REPLACE FUNCTION smartetl._failure_streaks(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (pipeline_id bigint, began timestamptz, failed_runs bigint, recovered timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.pipeline_id, k.began, k.failed_runs, k.recovered
    FROM smartetl.failure_streak k
    WHERE k.began >= from_ts AND k.recovered_at < to_ts
    UNION ALL
    SELECT k.pipeline_id, e.began, e.n, CASE WHEN k.recovered_at < to_ts THEN k.recovered END
    FROM smartetl.failure_streak k
    CROSS JOIN LATERAL (
        SELECT min(f.run_at) AS began, count(*) AS n FROM smartetl.run f
        WHERE f.pipeline_id = k.pipeline_id AND f.status = 'failed'
          AND f.run_at >= greatest(k.began, from_ts) AND f.run_at <= k.last_failed AND f.run_at < to_ts) e
    WHERE k.last_failed >= from_ts AND k.began < to_ts
      AND (k.began < from_ts OR k.recovered_at IS NULL OR k.recovered_at >= to_ts) AND e.n > 0
$$;
-- API: Public
CREATE OR REPLACE FUNCTION smartetl.pipeline_kpi(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (
    pipeline_id            bigint,
    namespace              text,
    pipeline               text,
    runs                   bigint,
    failures               bigint,
    success_rate           double precision,
    mean_duration_s        double precision,
    p50_duration_s         double precision,
    p95_duration_s         double precision,
    p99_duration_s         double precision,
    rows_read              bigint,
    rows_written           bigint,
    throughput_rows_s      double precision,
    retries                bigint,
    mttr                   interval,
    mtbf                   interval,
    longest_failure_streak bigint,
    last_success           timestamptz,
    expected_interval      interval,
    freshness_lag          interval,
    stale                  boolean,
    sla_breaches           bigint,
    top_error_template_id  bigint,
    top_error              text,
    top_error_count        bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH agg AS (
        SELECT b.pipeline_id, sum(b.runs)::bigint AS runs, sum(b.successes)::bigint AS successes,
               sum(b.failures)::bigint AS failures, sum(b.retries)::bigint AS retries,
               sum(b.sla_breaches)::bigint AS sla_breaches,
               smartetl.qsketch_merge(b.duration) AS duration,
               sum(b.rows_read)::bigint AS rows_read, sum(b.rows_written)::bigint AS rows_written
        FROM smartetl._kpi_spans(from_ts, to_ts) b
        GROUP BY b.pipeline_id
    ), streaks AS (
        SELECT s.pipeline_id, avg(s.recovered - s.began) AS mttr,
               (max(s.began) - min(s.began)) / nullif(count(*) - 1, 0) AS mtbf,
               max(s.failed_runs) AS longest
        FROM smartetl._failure_streaks(from_ts, to_ts) s
        GROUP BY s.pipeline_id
    )
    SELECT a.pipeline_id, p.namespace, p.name, a.runs, a.failures,
           a.successes::float8 / nullif(a.successes + a.failures, 0),
           smartetl.qsketch_mean(a.duration),
           q[1], q[2], q[3],
           a.rows_read, a.rows_written,
           a.rows_written / nullif(smartetl.qsketch_mean(a.duration) * smartetl.qsketch_count(a.duration), 0),
           a.retries,
           st.mttr, st.mtbf, st.longest,
           ls.last_success, ei.expected, lag.v,
           lag.v > ei.expected * smartetl._stale_factor(),
           a.sla_breaches,
           te.template_id, te.template, te.n
    FROM agg a
    JOIN smartetl.pipeline p USING (pipeline_id)
    CROSS JOIN LATERAL (SELECT smartetl.quantiles(a.duration, '{0.5,0.95,0.99}') AS q) qq
    LEFT JOIN streaks st ON st.pipeline_id = a.pipeline_id
    LEFT JOIN LATERAL (
        SELECT coalesce(r.ended_at, r.run_at) AS last_success FROM smartetl.run r
        WHERE r.pipeline_id = a.pipeline_id AND r.status = 'success' AND r.run_at < to_ts
        ORDER BY r.run_at DESC LIMIT 1) ls ON true
    CROSS JOIN LATERAL (SELECT smartetl._expected_interval(a.pipeline_id, to_ts) AS expected) ei
    CROSS JOIN LATERAL (
        SELECT least(to_ts, now()) - coalesce(ls.last_success,
            (SELECT min(r.run_at) FROM smartetl.run r WHERE r.pipeline_id = a.pipeline_id)) AS v) lag
    LEFT JOIN LATERAL (
        SELECT r.template_id, t.template, count(*) AS n FROM smartetl.run r
        JOIN smartetl.template t USING (template_id)
        WHERE r.pipeline_id = a.pipeline_id AND r.run_at >= from_ts AND r.run_at < to_ts
          AND r.status = 'failed'
        GROUP BY r.template_id, t.template ORDER BY n DESC, r.template_id LIMIT 1) te ON true
    ORDER BY p.namespace, p.name
$$;
-- API: Private
-- Rollup rows covering [from_ts, to_ts) for totals per pipeline (not per
-- period): whole UTC months from kpi_monthly, the days around them from
-- kpi_daily, the hours at either end from kpi_hourly.  An end beyond every
-- run (the first or last hour holding runs, an index lookup each) is taken
-- as unbounded, so a range wider than the data reads whole months only:
-- the same runs, fewer rows (a year of 300 pipelines: 3,900 instead of
-- 110,000).  _kpi_buckets keeps days and hours for charts per day or week.
CREATE OR REPLACE FUNCTION smartetl._kpi_spans(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF smartetl.kpi_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH ends AS (
        SELECT CASE WHEN smartetl._utc_trunc('hour', from_ts) <= (SELECT min(bucket) FROM smartetl.kpi_hourly)
                    THEN '-infinity' ELSE smartetl._utc_trunc('hour', from_ts) END AS h0,
               CASE WHEN to_ts > (SELECT max(bucket) FROM smartetl.kpi_hourly)
                    THEN 'infinity' ELSE to_ts END AS h1
    ), days AS (
        SELECT h0, h1,
               smartetl._utc_trunc('day', h0 + interval '1 day' - interval '1 microsecond') AS d0,
               smartetl._utc_trunc('day', h1) AS d1
        FROM ends
    ), span AS (
        SELECT h0, h1, d0, d1,
               smartetl._utc_trunc('month', d0 + interval '1 month' - interval '1 microsecond') AS m0,
               smartetl._utc_trunc('month', d1) AS m1
        FROM days
    )
    -- each part is one index range (an OR of ranges would scan them all)
    SELECT m.* FROM span, smartetl.kpi_monthly m
    WHERE m.bucket >= m0 AND m.bucket < m1
    UNION ALL
    SELECT d.* FROM span, smartetl.kpi_daily d
    WHERE d.bucket >= d0 AND d.bucket < CASE WHEN m0 < m1 THEN m0 ELSE d1 END
    UNION ALL
    SELECT d.* FROM span, smartetl.kpi_daily d
    WHERE d.bucket >= CASE WHEN m0 < m1 THEN m1 ELSE 'infinity' END AND d.bucket < d1
    UNION ALL
    SELECT h.* FROM span, smartetl.kpi_hourly h
    WHERE h.bucket >= h0 AND h.bucket < CASE WHEN d0 < d1 THEN d0 ELSE h1 END
    UNION ALL
    SELECT h.* FROM span, smartetl.kpi_hourly h
    WHERE h.bucket >= CASE WHEN d0 < d1 THEN d1 ELSE 'infinity' END AND h.bucket < h1
$$;
CREATE OR REPLACE FUNCTION smartetl._pipeline_delete_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM smartetl.run r USING old_pipelines o WHERE r.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.log_event e USING old_pipelines o WHERE e.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_hourly k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_daily k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.kpi_monthly k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    DELETE FROM smartetl.failure_streak k USING old_pipelines o WHERE k.pipeline_id = o.pipeline_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE VIEW smartetl.metrics AS
SELECT p.namespace, p.name AS pipeline,
       coalesce(tot.runs, 0)::bigint AS runs_total, coalesce(tot.failures, 0)::bigint AS failures_total,
       smartetl.quantile(week.duration, 0.5) AS duration_p50_seconds,
       smartetl.quantile(week.duration, 0.95) AS duration_p95_seconds,
       smartetl.quantile(week.duration, 0.99) AS duration_p99_seconds,
       f.lag_s::float8 AS freshness_seconds,
       CASE WHEN f.stale THEN 1 ELSE 0 END AS stale,
       CASE WHEN cf.pipeline_id IS NOT NULL THEN 1 ELSE 0 END AS failing,
       (SELECT count(*) FROM smartetl.alert a
        WHERE a.state = 'firing' AND a.labels->>'pipeline' = p.name AND a.labels->>'namespace' = p.namespace) AS open_alerts
FROM smartetl.pipeline p
LEFT JOIN (SELECT m.pipeline_id, sum(m.runs) AS runs, sum(m.failures) AS failures FROM smartetl.kpi_monthly m
           GROUP BY m.pipeline_id) tot ON tot.pipeline_id = p.pipeline_id
LEFT JOIN (SELECT b.pipeline_id, smartetl.qsketch_merge(b.duration) AS duration
           FROM smartetl._kpi_spans(now() - interval '167 hours' - interval '1 microsecond', 'infinity') b
           GROUP BY b.pipeline_id) week ON week.pipeline_id = p.pipeline_id
LEFT JOIN smartetl.freshness f ON f.pipeline_id = p.pipeline_id
LEFT JOIN smartetl.current_failures cf ON cf.pipeline_id = p.pipeline_id;
-- a pipeline's last success (the latest end, else start, of a successful
-- run: freshness, overdue_pipelines) is one probe, not a scan of its runs
CREATE INDEX run_success_done ON smartetl.run (pipeline_id, (coalesce(ended_at, run_at))) INCLUDE (run_at)
    WHERE status = 'success';
-- the latest runs of all pipelines (the dashboard's recent runs: the first
-- thousand of a range, newest first, without sorting the range).  On the
-- expression rather than the stored run_at, so that no query on run_at
-- (ingest, the rollup and state refreshes) can take it for a pipeline's
-- range when the statistics say run is empty: it would scan every pipeline
-- per key.  The dashboard orders by the expression.
CREATE INDEX run_time ON smartetl.run ((coalesce(started_at, ended_at)), run_id);
DROP INDEX smartetl.run_pipeline_time;
CREATE INDEX run_pipeline_time ON smartetl.run (pipeline_id, run_at DESC) INCLUDE (status, attempt);
DROP INDEX smartetl.run_failed_time;
CREATE INDEX run_failed_time ON smartetl.run (pipeline_id, run_at) INCLUDE (template_id) WHERE status = 'failed';
CREATE OR REPLACE FUNCTION smartetl.overdue_pipelines(at_ts timestamptz DEFAULT now())
RETURNS TABLE (pipeline_id bigint, pipeline text, kind text, last_at timestamptz,
               expected_interval interval, overdue_by interval)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.name, k.kind, k.last_at, e.expected,
           justify_interval(at_ts - k.last_at - e.expected * smartetl._stale_factor())
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT smartetl._expected_interval(p.pipeline_id, at_ts) AS expected) e
    CROSS JOIN LATERAL (
        SELECT (SELECT min(r.run_at) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) AS first_run,
               (SELECT max(r.run_at) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) AS last_run,
               (SELECT max(coalesce(r.ended_at, r.run_at)) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success' AND r.run_at <= at_ts) AS last_success) h
    CROSS JOIN LATERAL (VALUES ('missing_run'::text, h.last_run),
                               ('freshness', coalesce(h.last_success, h.first_run))) k(kind, last_at)
    WHERE e.expected IS NOT NULL AND k.last_at IS NOT NULL
      AND at_ts - k.last_at > e.expected * smartetl._stale_factor()
$$;
-- the runs scored far out (|score| > 3; the default threshold is 4), so that
-- detect_anomalies over a range reads those instead of every score in it
CREATE INDEX run_anomaly_score_far ON smartetl.run_anomaly_score (run_at)
    WHERE abs(duration_score) > 3 OR abs(volume_score) > 3;
CREATE OR REPLACE FUNCTION smartetl.detect_anomalies(from_ts timestamptz, to_ts timestamptz,
                                          threshold double precision DEFAULT 4.0)
RETURNS TABLE (
    run_id        bigint,
    pipeline_id   bigint,
    pipeline      text,
    run_at        timestamptz,
    kind          text,
    value         double precision,
    expected      double precision,
    expected_low  double precision,
    expected_high double precision,
    score         double precision,
    baseline      text,
    baseline_runs integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.run_id, s.pipeline_id, p.name, s.run_at, m.kind, m.x,
           exp(m.center) - 1,
           greatest(exp(m.center - threshold * m.scale) - 1, 0),
           exp(m.center + threshold * m.scale) - 1,
           m.score,
           CASE WHEN m.seasonal THEN 'hour_of_week' ELSE 'recent_runs' END, m.n
    FROM smartetl.pipeline p
    JOIN (-- a threshold of 3 or more: the far scores only (run_anomaly_score_far)
          SELECT s.* FROM smartetl.run_anomaly_score s
          WHERE threshold >= 3 AND s.run_at >= from_ts AND s.run_at < to_ts
            AND (abs(s.duration_score) > 3 OR abs(s.volume_score) > 3)
          UNION ALL
          -- a lower one: every score of the range, per pipeline
          SELECT s.* FROM smartetl.pipeline q
          JOIN smartetl.run_anomaly_score s
            ON s.pipeline_id = q.pipeline_id AND s.run_at >= from_ts AND s.run_at < to_ts
          WHERE threshold < 3) s ON s.pipeline_id = p.pipeline_id
    CROSS JOIN LATERAL (VALUES ('duration', s.duration_s, s.duration_expected, s.duration_scale, s.duration_score,
                                s.duration_seasonal, s.duration_runs),
                               ('volume', s.rows_written, s.volume_expected, s.volume_scale, s.volume_score,
                                s.volume_seasonal, s.volume_runs)) m(kind, x, center, scale, score, seasonal, n)
    WHERE m.center IS NOT NULL AND abs(m.score) > threshold
    ORDER BY s.run_at, s.run_id, m.kind
$$;
SELECT pg_catalog.pg_extension_config_dump('smartetl.kpi_monthly', '');
SELECT pg_catalog.pg_extension_config_dump('smartetl.failure_streak', '');
REVOKE ALL ON FUNCTION smartetl._streak_refresh(bigint[], timestamptz[]),
                       smartetl._kpi_spans(timestamptz, timestamptz) FROM PUBLIC;
GRANT SELECT ON smartetl.kpi_monthly, smartetl.failure_streak TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._kpi_spans(timestamptz, timestamptz) TO smartetl_reader;
GRANT INSERT, UPDATE ON smartetl.kpi_monthly TO smartetl_writer;
GRANT DELETE ON smartetl.kpi_monthly TO smartetl_admin;
GRANT SELECT, INSERT, DELETE ON smartetl.failure_streak TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._streak_refresh(bigint[], timestamptz[]) TO smartetl_writer;
-- fill the new rollup and streaks from what is stored: the months of every
-- daily row (the refresh statement, written from the rollup columns, in a
-- function dropped again), the streaks of every pipeline from its first run
DO $do$
BEGIN
    EXECUTE pg_catalog.format($create$
CREATE FUNCTION smartetl._kpi3_fill_months(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET work_mem = '64MB' AS $body$
BEGIN
%s;
END $body$$create$, smartetl._kpi_rollup_sql('refresh_monthly'));
END $do$;
SELECT smartetl._kpi3_fill_months(array_agg(pipeline_id), array_agg(bucket)) FROM smartetl.kpi_daily;
DROP FUNCTION smartetl._kpi3_fill_months(bigint[], timestamptz[]);
SELECT smartetl._streak_refresh(array_agg(pipeline_id), array_agg('-infinity'::timestamptz))
FROM smartetl.pipeline;

-- alert3: duration_anomaly and volume_anomaly driven by runs (scores read
-- from run_anomaly_score for the changed pipelines)
CREATE OR REPLACE FUNCTION smartetl.alert_rule_kinds()
RETURNS TABLE (kind text, evaluated_every interval, takes_query boolean, description text,
              driven_by text, condition text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('run_failed', interval '0', false,
            'the latest finished run of a pipeline failed (once its retries are exhausted)', 'runs',
            'smartetl._alert_cond_failures'),
           ('consecutive_failures', interval '0', false,
            'at least threshold (default 3) runs of a pipeline failed in a row', 'runs',
            'smartetl._alert_cond_failures'),
           ('duration_anomaly', interval '0', false,
            'the latest successful run took abnormally long or short (robust score above threshold, default 4)', 'runs',
            'smartetl._alert_cond_anomaly'),
           ('volume_anomaly', interval '0', false,
            'the latest successful run wrote an abnormal number of rows (robust score above threshold, default 4)', 'runs',
            'smartetl._alert_cond_anomaly'),
           ('freshness', interval '0', false,
            'no run, or no success, for longer than the interval the pipeline usually keeps', 'runs and clock',
            'smartetl._alert_cond_freshness'),
           ('deadline', interval '0', false,
            'no successful run finished since a scheduled start whose deadline passed (pipeline schedule and deadline)', 'runs and clock',
            'smartetl._alert_cond_deadline'),
           ('risk', interval '5 minutes', false,
            'the predicted risk of failure within a day is above threshold (default 0.5)', 'clock',
            'smartetl._alert_cond_risk'),
           ('model_drift', interval '5 minutes', false,
            'the champion risk model drifted (PSI above threshold, default 0.25) or lost accuracy', 'clock',
            'smartetl._alert_cond_model_drift'),
           ('sql', interval '0', true,
            'query, a read-only SELECT of (pipeline, value), run as smartetl_reader; fires above threshold', 'clock',
            'smartetl._alert_cond_sql')
$$;
COMMENT ON FUNCTION smartetl.alert_rule_kinds() IS 'the alert rule kinds: how often each is evaluated at most, whether it takes a query, what it fires on, what makes it evaluated (runs: the pipelines whose runs changed; runs and clock: those, and each pipeline when it becomes due; clock: the whole rule every evaluated_every), the function that evaluates its condition';
-- duration_anomaly and volume_anomaly: the latest successful run of a
-- pipeline, within the last 48 hours, scored above threshold.  Driven by
-- runs: a run is scored when it arrives (run_anomaly_score, in the same
-- transaction), so a pass reads the scores of the changed pipelines only;
-- an alert whose run falls out of the 48 hours resolves in the next full
-- pass.  The rows of detect_anomalies(now() - 48 h, threshold) restricted
-- to each pipeline's latest success (a run stamped ahead of this clock
-- included, as no later pass would see it change).
CREATE OR REPLACE FUNCTION smartetl._alert_cond_anomaly(r smartetl.alert_rule, pids bigint[])
RETURNS TABLE (pipeline_id bigint, value double precision, annotations jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    thr double precision := coalesce(r.threshold, 4);
BEGIN
    RETURN QUERY
    SELECT s.pipeline_id, m.score,
           smartetl._run_annotations(
               format('%s: abnormal %s', p.name, m.kind),
               format('%s of the latest run is %s, expected %s (%s .. %s), score %s', m.kind,
                      round(m.x::numeric, 1), round((exp(m.center) - 1)::numeric, 1),
                      round(greatest(exp(m.center - thr * m.scale) - 1, 0)::numeric, 1),
                      round((exp(m.center + thr * m.scale) - 1)::numeric, 1),
                      round(m.score::numeric, 1)),
               s.run_id, s.run_at, s.pipeline_id)
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT x.run_id, x.run_at FROM smartetl.run x
                        WHERE x.pipeline_id = p.pipeline_id AND x.status = 'success'
                        ORDER BY x.run_at DESC LIMIT 1) l
    JOIN smartetl.run_anomaly_score s ON s.pipeline_id = p.pipeline_id AND s.run_at = l.run_at AND s.run_id = l.run_id
    CROSS JOIN LATERAL (SELECT CASE r.kind WHEN 'duration_anomaly' THEN 'duration' ELSE 'volume' END AS kind) k
    CROSS JOIN LATERAL (SELECT k.kind,
                               CASE k.kind WHEN 'duration' THEN s.duration_s ELSE s.rows_written END AS x,
                               CASE k.kind WHEN 'duration' THEN s.duration_expected ELSE s.volume_expected END AS center,
                               CASE k.kind WHEN 'duration' THEN s.duration_scale ELSE s.volume_scale END AS scale,
                               CASE k.kind WHEN 'duration' THEN s.duration_score ELSE s.volume_score END AS score) m
    WHERE (pids IS NULL OR p.pipeline_id = ANY (pids))
      AND l.run_at >= now() - interval '48 hours'
      AND m.center IS NOT NULL AND abs(m.score) > thr;
END $$;
COMMENT ON FUNCTION smartetl._alert_cond_anomaly(smartetl.alert_rule, bigint[]) IS
'the condition of duration_anomaly and volume_anomaly rules: the latest successful run (of the last 48 hours) scored above threshold, read from run_anomaly_score';

-- alert3: chunked evaluation (smartetl.evaluation_chunk): the backlog of
-- changed pipelines, the chunk's choice, the pass over a chunk; the public
-- evaluate_alerts() takes them all
-- API: Private
-- A pass of the alert worker evaluates at most smartetl.evaluation_chunk
-- changed pipelines and commits, so that the first notifications of a
-- burst are sent while the rest is evaluated: the pipelines it took from
-- alert_changed (inhibition graph refreshed) but has not evaluated yet
-- wait here for the next passes.
CREATE TABLE smartetl.alert_backlog (
    pipeline_id  bigint PRIMARY KEY
);
COMMENT ON TABLE smartetl.alert_backlog IS 'changed pipelines whose inhibition graph is refreshed but whose rules a chunked evaluation (the alert worker, smartetl.evaluation_chunk) has not evaluated yet';
SELECT pg_catalog.pg_extension_config_dump('smartetl.alert_backlog', '');
-- API: Private
-- The changed pipelines a pass evaluates: those just taken from
-- alert_changed (their graph refreshed) and those left in alert_backlog by
-- earlier passes; all of them when chunk is NULL, else about chunk of them
-- and the rest left in the backlog.  A chunk never splits what must be
-- evaluated together: every backlog pipeline in the inhibition graph
-- (alert_edge, or muted by an alert now) goes into the first chunk, so
-- that a parent failing in the same burst mutes its children before they
-- are notified; and the pipelines an alert group of a run-driven rule can
-- span stay together (one namespace when a rule groups by namespace but
-- not pipeline, every one when a rule groups by neither).
CREATE FUNCTION smartetl._alert_backlog_take(changed bigint[], chunk integer) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    whole boolean;
    by_namespace boolean;
    taken bigint[];
BEGIN
    INSERT INTO smartetl.alert_backlog (pipeline_id)
    SELECT DISTINCT c FROM unnest(changed) c ON CONFLICT DO NOTHING;
    IF chunk IS NULL THEN
        WITH d AS (DELETE FROM smartetl.alert_backlog RETURNING pipeline_id)
        SELECT coalesce(array_agg(d.pipeline_id), '{}') INTO taken FROM d;
        RETURN taken;
    END IF;
    SELECT coalesce(bool_or(NOT r.group_by && '{pipeline,namespace}'), false),
           coalesce(bool_or(NOT 'pipeline' = ANY (r.group_by)), false)
    INTO whole, by_namespace
    FROM smartetl.alert_rule r JOIN smartetl.alert_rule_kinds() k ON k.kind = r.kind
    WHERE r.enabled AND k.driven_by <> 'clock';
    WITH muted AS (
        -- pipelines with a muted alert: the first pass's inhibition may unmute it
        SELECT DISTINCT a.labels->>'namespace' AS namespace, a.labels->>'pipeline' AS name
        FROM smartetl.alert a WHERE a.inhibited_by IS NOT NULL AND a.state = 'firing'
    ), b AS (
        SELECT b.pipeline_id,
               CASE WHEN whole THEN '' WHEN by_namespace THEN coalesce(p.namespace, '') ELSE b.pipeline_id::text END AS unit,
               EXISTS (SELECT 1 FROM smartetl.alert_edge e WHERE e.up = b.pipeline_id)
               OR EXISTS (SELECT 1 FROM smartetl.alert_edge e WHERE e.down = b.pipeline_id)
               OR m.name IS NOT NULL AS graph
        FROM smartetl.alert_backlog b
        LEFT JOIN smartetl.pipeline p USING (pipeline_id)
        LEFT JOIN muted m ON m.namespace = p.namespace AND m.name = p.name
    ), u AS (
        SELECT b.unit, count(*) AS n, min(b.pipeline_id) AS first, bool_or(b.graph) AS graph FROM b GROUP BY b.unit
    ), c AS (
        SELECT u.unit, u.graph,
               sum(u.n) OVER (ORDER BY u.graph DESC, u.first ROWS UNBOUNDED PRECEDING) - u.n AS before
        FROM u
    ), d AS (
        DELETE FROM smartetl.alert_backlog x
        USING b JOIN c USING (unit)
        WHERE x.pipeline_id = b.pipeline_id AND (c.graph OR c.before < chunk)
        RETURNING x.pipeline_id
    )
    SELECT coalesce(array_agg(d.pipeline_id), '{}') INTO taken FROM d;
    RETURN taken;
END $$;
COMMENT ON FUNCTION smartetl._alert_backlog_take(bigint[], integer) IS
'the changed pipelines one evaluation pass takes: all (chunk NULL), or about chunk of them with the inhibition graph''s and each alert group''s pipelines kept together, the rest left in alert_backlog';

-- API: Private
-- One pass (evaluate_alerts), over at most about chunk changed pipelines
-- when chunk is not NULL (the alert worker: smartetl.evaluation_chunk),
-- the others left in alert_backlog for the next passes.
CREATE FUNCTION smartetl._evaluate_alerts(chunk integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    r smartetl.alert_rule;
    k record;
    rs smartetl.alert_rule_state;
    full_pass boolean;
    changed bigint[];
    pids bigint[];
    evaluated boolean := false;
    started timestamptz;
    detail text;
    err text;
BEGIN
    -- one evaluation at a time, whoever calls it
    PERFORM smartetl._xact_lock('alert_evaluation');
    -- fold template occurrence deltas (cheap when already folded)
    PERFORM smartetl.template_compact();
    PERFORM smartetl.resolve_predictions();
    -- the pipelines changed since the last pass (rows committed after this
    -- statement stay for the next one); a full pass when asked for, and
    -- every 15 minutes as a safety net
    WITH d AS (DELETE FROM smartetl.alert_changed RETURNING pipeline_id)
    SELECT coalesce(bool_or(d.pipeline_id IS NULL), false),
           coalesce(array_agg(DISTINCT d.pipeline_id) FILTER (WHERE d.pipeline_id IS NOT NULL), '{}')
    INTO full_pass, changed FROM d;
    full_pass := full_pass OR NOT EXISTS (SELECT 1 FROM smartetl.alert_eval_state e
                                          WHERE e.full_at > now() - interval '15 minutes' AND e.full_at <= now());
    IF full_pass THEN
        INSERT INTO smartetl.alert_eval_state (singleton, full_at) VALUES (true, now())
        ON CONFLICT (singleton) DO UPDATE SET full_at = excluded.full_at;
        PERFORM smartetl._alert_edges_refresh(NULL);
        DELETE FROM smartetl.alert_backlog;
    ELSE
        IF changed <> '{}' THEN
            PERFORM smartetl._alert_edges_refresh(changed);
        END IF;
        -- a chunk of them (and of those earlier chunks left), or all
        IF (chunk IS NOT NULL AND changed <> '{}') OR EXISTS (SELECT 1 FROM smartetl.alert_backlog) THEN
            changed := smartetl._alert_backlog_take(changed, chunk);
        END IF;
    END IF;
    FOR r IN SELECT * FROM smartetl.alert_rule WHERE enabled ORDER BY name LOOP
        SELECT * INTO k FROM smartetl.alert_rule_kinds() x WHERE x.kind = r.kind;
        SELECT * INTO rs FROM smartetl.alert_rule_state x WHERE x.rule_name = r.name;
        IF k.driven_by = 'clock' THEN
            -- the whole rule, at most every evaluated_every (anomaly scoring
            -- rebuilds 120 days of baselines; risk scores every pipeline);
            -- a sql rule that ran out of time waits until retry_at
            CONTINUE WHEN rs.evaluated_at > now() - k.evaluated_every OR rs.retry_at > now();
            pids := NULL;
        ELSIF full_pass OR rs.full_at IS NULL THEN
            pids := NULL;
        ELSE
            -- the pipelines whose runs changed, and those due by the clock
            pids := changed;
            IF k.driven_by = 'runs and clock' THEN
                pids := pids || ARRAY(SELECT d.pipeline_id FROM smartetl.alert_rule_due d
                                      WHERE d.rule_name = r.name AND d.due_at <= now()
                                        AND d.pipeline_id <> ALL (changed));
            END IF;
            CONTINUE WHEN pids = '{}';
        END IF;
        started := clock_timestamp();
        evaluated := true;
        BEGIN
            PERFORM smartetl._alert_apply_rule(r, pids);
            IF k.driven_by = 'runs and clock' THEN
                PERFORM smartetl._alert_rule_due_set(r, pids);
            END IF;
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at, full_at)
            VALUES (r.name, now(), NULL, NULL, CASE WHEN pids IS NULL THEN now() END)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = NULL, retry_at = NULL,
                full_at = coalesce(excluded.full_at, alert_rule_state.full_at);
        EXCEPTION WHEN OTHERS THEN
            -- one broken rule must not stop the others
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            err := SQLERRM || coalesce(': ' || nullif(detail, ''), '');
            RAISE WARNING 'smartetl: alert rule "%" failed: %', r.name, err;
            -- a sql rule that used up smartetl.rule_timeout would hold up every
            -- evaluation, and the notifications queued after it: it waits 5
            -- minutes; the changes it missed make its next evaluation a full one
            INSERT INTO smartetl.alert_rule_state (rule_name, evaluated_at, last_error, retry_at, full_at)
            VALUES (r.name, now(), err,
                    CASE WHEN r.kind = 'sql'
                              AND clock_timestamp() - started
                                  >= coalesce(current_setting('smartetl.rule_timeout', true), '5s')::interval
                         THEN now() + interval '5 minutes' END, NULL)
            ON CONFLICT (rule_name) DO UPDATE
            SET evaluated_at = now(), last_error = excluded.last_error, retry_at = excluded.retry_at, full_at = NULL;
        END;
    END LOOP;
    IF full_pass THEN
        -- rules deleted or disabled: their alerts resolve
        UPDATE smartetl.alert SET state = 'resolved', resolved_at = now()
        WHERE state = 'firing' AND rule_name NOT IN (SELECT name FROM smartetl.alert_rule WHERE enabled);
    END IF;
    -- silences: the alerts silenced now, and, while a silence holds, every
    -- firing alert (without one, nothing else can be silenced)
    UPDATE smartetl.alert a SET silenced = s.hit
    FROM (SELECT a2.alert_id, EXISTS (SELECT 1 FROM smartetl.silence s
                                      WHERE now() >= s.starts_at AND now() < s.ends_at
                                        AND smartetl._silence_matches(s.matchers, a2.labels)) AS hit
          FROM (SELECT x.* FROM smartetl.alert x WHERE x.silenced AND x.state = 'firing'
                UNION ALL
                SELECT x.* FROM smartetl.alert x
                WHERE x.state = 'firing' AND NOT x.silenced
                  AND EXISTS (SELECT 1 FROM smartetl.silence s WHERE now() >= s.starts_at AND now() < s.ends_at)) a2) s
    WHERE a.alert_id = s.alert_id AND a.silenced IS DISTINCT FROM s.hit;
    -- maintenance windows of rules and pipelines: alerts are recorded as muted
    -- (firing ones, and resolved ones whose resolution is still to be sent);
    -- while no such window is active, only the muted ones can change
    UPDATE smartetl.alert a SET muted_by = m.win
    FROM (SELECT a2.alert_id,
                 (SELECT w.name FROM smartetl.maintenance_window w
                  WHERE w.enabled AND (a2.rule_name = ANY (w.rules)
                                       OR (w.selector <> '{}' AND p.pipeline_id IS NOT NULL
                                           AND smartetl._selector_matches(w.selector, p)))
                    AND smartetl.maintenance_window_active(w.name)
                  ORDER BY w.name LIMIT 1) AS win
          FROM (SELECT x.* FROM smartetl.alert x WHERE x.muted_by IS NOT NULL
                UNION ALL
                SELECT x.* FROM smartetl.alert x
                WHERE (x.state = 'firing' OR (x.state = 'resolved' AND x.notified_state = 'firing'))
                  AND x.muted_by IS NULL
                  AND EXISTS (SELECT 1 FROM smartetl.maintenance_window w
                              WHERE w.enabled AND (w.rules <> '{}' OR w.selector <> '{}')
                                AND smartetl.maintenance_window_active(w.name))) a2
          LEFT JOIN smartetl.pipeline p ON p.namespace = a2.labels->>'namespace' AND p.name = a2.labels->>'pipeline') m
    WHERE a.alert_id = m.alert_id AND a.muted_by IS DISTINCT FROM m.win;
    -- inhibition changes only with the alerts and the graph
    IF full_pass OR evaluated OR changed <> '{}' THEN
        PERFORM smartetl._alert_inhibit();
    END IF;
    RETURN smartetl._alert_window_catch_up() + smartetl._alert_notify(full_pass) + smartetl._alert_escalate();
END $$;
COMMENT ON FUNCTION smartetl._evaluate_alerts(integer) IS 'one evaluation pass over every changed pipeline (chunk NULL) or about chunk of them (the alert worker), the rest left in alert_backlog; returns the number of deliveries queued';

-- API: Public
CREATE OR REPLACE FUNCTION smartetl.evaluate_alerts() RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT smartetl._evaluate_alerts(NULL)
$$;
COMMENT ON FUNCTION smartetl.evaluate_alerts() IS 'one evaluation pass: fire/resolve alerts from the enabled rules, apply silences, queue due notifications in smartetl.delivery; returns the number of deliveries queued';
REVOKE ALL ON FUNCTION smartetl._evaluate_alerts(integer), smartetl._alert_backlog_take(bigint[], integer) FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON smartetl.alert_backlog TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._evaluate_alerts(integer), smartetl._alert_backlog_take(bigint[], integer)
    TO smartetl_admin;
