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
    retry_at      timestamptz,
    full_at       timestamptz
);
COMMENT ON TABLE smartetl.alert_rule_state IS 'when each rule was last evaluated (full_at: over every pipeline rather than the changed ones), its last evaluation error, and, for a sql rule that ran into smartetl.rule_timeout, when it is tried again';

-- Incremental evaluation.  A pass evaluates the rules driven by runs
-- (smartetl.alert_rule_kinds().driven_by) for the pipelines whose runs or
-- settings changed since the last pass, freshness and deadline rules also
-- for the pipelines that became due by the clock (alert_rule_due), and
-- examines the alert groups whose alerts changed or whose timer came
-- (alert_group_due).  A full pass (every rule over every pipeline, every
-- group) runs when rules change, pipelines are renamed or deleted, runs
-- are truncated, and every 15 minutes as a safety net.

-- API: Private
-- The pipelines that changed since the last pass, appended by the triggers
-- on smartetl.run and smartetl.pipeline (pipeline_id NULL: a full pass is
-- needed).  No key, so that concurrent writers never wait for each other;
-- evaluate_alerts() deletes the rows it has seen, and rows committed after
-- that stay for the next pass.
CREATE TABLE smartetl.alert_changed (
    pipeline_id  bigint
);
COMMENT ON TABLE smartetl.alert_changed IS 'pipelines whose runs or settings changed since the last alert evaluation (NULL: evaluate everything); written by triggers, emptied by evaluate_alerts()';

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

-- API: Private
-- Whether a firing alert is kept out of notifications now: silenced,
-- inhibited by a root alert, in a maintenance window, or snoozed.
CREATE FUNCTION smartetl._alert_muted(a smartetl.alert) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN a.silenced OR a.inhibited_by IS NOT NULL OR a.muted_by IS NOT NULL
       OR coalesce(a.snoozed_until > pg_catalog.now(), false);

-- API: Private
-- Whether an alert's resolution waits: its maintenance window still runs
-- (the resolved notification goes out when the window ends).
CREATE FUNCTION smartetl._alert_held(a smartetl.alert) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN a.muted_by IS NOT NULL;

-- API: Private
-- What a notification adds to an alert's annotations: who acknowledged it
-- and is assigned, its escalation level, and the alerts it mutes
-- (inhibition).  Empty for most alerts, so their payloads do not change.
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

-- API: Private
-- A failed run's tries: how many failed tries its logical run had (same
-- external id, or same parent run, in the same pipeline; at least its
-- attempt number), and whether it will be retried: Airflow marked it
-- up_for_retry, its attrs say will_retry or attempt < max_attempts, or a
-- later attempt of it exists (running or finished).
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
-- Freshness of pipelines (pids, or all when NULL) at at_ts, both ways of
-- overdue_pipelines(): since the last run (missing_run) and since the last
-- success (freshness), each with when it is (or becomes) overdue.  The
-- same test as overdue_pipelines(), which evaluates every pipeline.
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
-- pipeline, within the last 48 hours, scored above threshold.  Driven by
-- runs: a run is scored when it arrives (run_anomaly_score, in the same
-- transaction), so a pass reads the scores of the changed pipelines only;
-- an alert whose run falls out of the 48 hours resolves in the next full
-- pass.  The rows of detect_anomalies(now() - 48 h, threshold) restricted
-- to each pipeline's latest success (a run stamped ahead of this clock
-- included, as no later pass would see it change).
CREATE FUNCTION smartetl._alert_cond_anomaly(r smartetl.alert_rule, pids bigint[])
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
CREATE FUNCTION smartetl._alert_conditions(r smartetl.alert_rule, pids bigint[] DEFAULT NULL)
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
-- Fire, refresh and resolve one rule's alerts: about the pipelines pids
-- only, or all of them when NULL.
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

-- API: Private
-- When a freshness or deadline rule is next due for each pipeline (pids,
-- or all when NULL) that no run changes first: when it becomes overdue,
-- when its next deadline passes.
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

-- API: Private
-- The notification of one group (contract: see 87_alert_payload.sql).
-- resolved_for: a channel's catch-up after a maintenance window, which
-- names the resolved alerts (fingerprints) that channel was told were firing.
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
-- When a group must next be examined by the clock: its group_wait,
-- group_interval or repeat_interval, its Alertmanager re-post (rules with
-- an alertmanager channel), the end of a snooze; NULL when nothing.
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

-- API: Private
-- Queue the notifications that are due; returns how many deliveries.
-- Examines every group (all_groups), or those in alert_group_due whose
-- time came, and sets each examined group's next due time.  Set-based:
-- the groups due are recorded notified, their notifications built and
-- queued, and their alerts marked in one statement each (a burst of
-- 10,000 new groups is 10,000 rows, not 10,000 loops).
CREATE FUNCTION smartetl._alert_notify(all_groups boolean DEFAULT true) RETURNS integer
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

-- API: Private
-- Inhibition: a firing alert whose rule allows it mutes the firing alerts
-- on pipelines below its own: children (pipelines whose latest 20 runs have
-- a run of it as parent: dbt invocation -> nodes, Airflow DAG run -> tasks,
-- OpenLineage parent facet) and, for inhibit = 'lineage', downstream
-- pipelines (readers of a dataset it wrote, by OpenLineage inputs and
-- outputs), transitively.  Each muted alert names its root: an alert that
-- nothing mutes; of two alerts below each other, the older is the root.
CREATE FUNCTION smartetl._alert_inhibit() RETURNS void
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

-- API: Private
-- Bring the inhibition graph (alert_io, alert_edge) up to date for the
-- pipelines pids, or rebuild it when NULL: the edges into a pipeline come
-- from its own latest runs (parents), the lineage edges from the datasets
-- of both ends.
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

-- API: Private
-- Channels whose maintenance window ended: each group that had
-- notifications held for such a channel sends it one catch-up: the alerts
-- still firing, and the resolution of those it had been told were firing;
-- nothing when everything fired and cleared during the window (no orphan
-- "resolved").  The held rows become 'skipped'.
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

-- API: Private
-- Escalation: each firing alert that is notified, unacknowledged and not
-- muted, whose rule names a policy, takes the policy's next step when its
-- delay has passed (counted from the previous step, or from the alert's
-- first notification): one notification of that alert to the step's
-- channels.  Returns how many deliveries.
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
                    smartetl._payload(ch.kind, n, ch.options))
            ON CONFLICT (channel, idempotency_key) DO NOTHING;
            queued := queued + 1;
        END LOOP;
    END LOOP;
    RETURN queued;
END $$;

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
CREATE FUNCTION smartetl.evaluate_alerts() RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT smartetl._evaluate_alerts(NULL)
$$;
COMMENT ON FUNCTION smartetl.evaluate_alerts() IS 'one evaluation pass: fire/resolve alerts from the enabled rules, apply silences, queue due notifications in smartetl.delivery; returns the number of deliveries queued';

-- API: Public
-- When the clock next makes an evaluation due, so that the worker wakes
-- then rather than at its next naptime: a pipeline's deadline (while a
-- deadline rule is enabled), a group's group_wait, group_interval,
-- repeat_interval or Alertmanager re-post, a silence or a maintenance
-- window starting or ending, a snooze ending, an escalation step.
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
