-- ---------------------------------------------------------------------------
-- Alerting, the evaluation: smartetl.evaluate_alerts() turns the rules into
-- alerts (fire, stay, resolve), applies silences and queues notifications
-- in smartetl.delivery with Alertmanager's timing: a group's first
-- notification waits group_wait, changes wait group_interval after the last
-- one, an unchanged firing group is re-sent after repeat_interval, and a
-- group whose alerts cleared gets a resolved notification.  The worker
-- calls it on every wake-up; pg_cron or a test may too.
-- ---------------------------------------------------------------------------

-- API: Private
-- Rule evaluations that are costly (anomaly scoring) run at most once a minute.
CREATE TABLE smartetl.alert_rule_state (
    rule_name     text PRIMARY KEY,
    evaluated_at  timestamptz NOT NULL,
    last_error    text,
    retry_at      timestamptz
);
COMMENT ON TABLE smartetl.alert_rule_state IS 'when each rule was last evaluated, its last evaluation error, and, for a sql rule that ran into smartetl.rule_timeout, when it is tried again';

-- API: Private
-- The pipeline's last five runs, for notifications.
CREATE FUNCTION smartetl._recent_history(p_pipeline_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('run_at', run_at, 'status', status,
                                                 'duration_s', round(duration_s::numeric, 1))
                              ORDER BY run_at DESC), '[]')
    FROM (SELECT run_at, status, duration_s FROM smartetl.run
          WHERE pipeline_id = p_pipeline_id ORDER BY run_at DESC NULLS LAST LIMIT 5) r
$$;

-- API: Private
-- Annotations of an alert about a pipeline's run.
CREATE FUNCTION smartetl._run_annotations(summary text, description text, p_run_id bigint,
                                          since timestamptz, p_pipeline_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'summary', summary, 'description', description, 'since', since,
        'run_id', p_run_id, 'host', r.host, 'error', r.error_message, 'error_template', t.template,
        'recent_history', smartetl._recent_history(p_pipeline_id)))
    FROM (SELECT 1) one
    LEFT JOIN smartetl.run r ON r.run_id = p_run_id
    LEFT JOIN smartetl.template t ON t.template_id = r.template_id
$$;

-- API: Private
-- What holds now for one rule: (pipeline, value, annotations) per alert.
CREATE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule)
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

-- API: Private
CREATE FUNCTION smartetl._silence_matches(matchers jsonb, labels jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(bool_and(CASE m.key
               WHEN 'rule' THEN labels->>'alertname' = m.value
               WHEN 'pipeline' THEN smartetl._glob_match(m.value, labels->>'pipeline')
               WHEN 'namespace' THEN smartetl._glob_match(m.value, labels->>'namespace')
               ELSE labels->>m.key = m.value END), true)
    FROM jsonb_each_text(matchers) m
$$;

-- API: Private
-- Fire, refresh and resolve one rule's alerts.
CREATE FUNCTION smartetl._alert_apply_rule(r smartetl.alert_rule) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH c AS (
        -- conditions about a pipeline, or about something else (a model) named by annotations.subject
        SELECT x.value, x.annotations - 'subject' AS annotations,
               jsonb_build_object('alertname', r.name, 'rule_kind', r.kind,
                                  'pipeline', coalesce(p.name, x.annotations->>'subject'),
                                  'namespace', coalesce(p.namespace, 'smartetl'), 'severity', r.severity) AS labels
        FROM smartetl._alert_conditions(r) x LEFT JOIN smartetl.pipeline p USING (pipeline_id)
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
      AND NOT EXISTS (SELECT 1 FROM keyed k WHERE k.fingerprint = a.fingerprint);
END $$;

-- API: Private
-- The notification of one group (contract: see 87_alert_payload.sql).
CREATE FUNCTION smartetl._alert_notification(p_group_key text, idempotency_key text, link text)
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
            'ends_at', a.resolved_at, 'labels', a.labels - 'rule_kind', 'annotations', a.annotations,
            'value', a.value) ORDER BY a.started_at, a.fingerprint),
        'link', link,
        'sent_at', now())
    FROM smartetl.alert a
    WHERE a.group_key = p_group_key
      AND ((a.state = 'firing' AND NOT a.silenced) OR (a.state = 'resolved' AND a.notified_state = 'firing'))
$$;

-- API: Private
-- Re-post a firing group to the rule's Alertmanager channels (every minute,
-- well within Alertmanager's default resolve_timeout of 5 minutes).
CREATE FUNCTION smartetl._alert_refresh_alertmanager(r smartetl.alert_rule, st smartetl.alert_group)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ch smartetl.channel;
    n jsonb;
    key text := md5(st.group_key) || '-' || st.seq || '-refresh-' || floor(extract(epoch FROM now()))::bigint;
    queued integer := 0;
BEGIN
    FOR ch IN SELECT * FROM smartetl.channel WHERE name = ANY (r.channels) AND kind = 'alertmanager' LOOP
        n := smartetl._alert_notification(st.group_key, key, NULL);
        INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
        VALUES (ch.name, st.group_key, key, n, smartetl._payload(ch.kind, n, ch.options))
        ON CONFLICT (channel, idempotency_key) DO NOTHING;
        queued := queued + 1;
    END LOOP;
    UPDATE smartetl.alert_group SET am_posted_at = now() WHERE group_key = st.group_key;
    RETURN queued;
END $$;

-- API: Private
-- Queue the notifications that are due; returns how many deliveries.
CREATE FUNCTION smartetl._alert_notify() RETURNS integer
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
               bool_or(a.state = 'firing' AND NOT a.silenced AND a.notified_state IS DISTINCT FROM 'firing') AS new_firing,
               bool_or(a.state = 'resolved' AND a.notified_state = 'firing') AS newly_resolved,
               bool_or(a.state = 'firing' AND NOT a.silenced) AS any_firing,
               min(a.started_at) FILTER (WHERE a.state = 'firing' AND NOT a.silenced
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
        UPDATE smartetl.alert a SET notified_state = a.state
        WHERE a.group_key = g.group_key
          AND ((a.state = 'firing' AND NOT a.silenced) OR (a.state = 'resolved' AND a.notified_state = 'firing'));
    END LOOP;
    RETURN queued;
END $$;

-- API: Public
CREATE FUNCTION smartetl.evaluate_alerts() RETURNS integer
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
COMMENT ON FUNCTION smartetl.evaluate_alerts() IS 'one evaluation pass: fire/resolve alerts from the enabled rules, apply silences, queue due notifications in smartetl.delivery; returns the number of deliveries queued';
