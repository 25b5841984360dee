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

