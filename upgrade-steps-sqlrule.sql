-- Upgrade steps of branch sqlrule (sandboxed sql alert rules, src/alert/rule_query.c):
-- plain SQL that brings a 0.1.0 schema to this branch's.  Generated from
-- src/sql/86_alert_model.sql and src/sql/88_alert_eval.sql; to be merged into
-- the upgrade script.

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
