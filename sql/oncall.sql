-- On-call: schedules and deadlines (also across DST in Europe/Paris),
-- retries, inhibition, maintenance windows, acknowledgement and
-- escalation.  No worker runs in this database: evaluate_alerts() is
-- called by hand and deliveries stay queued.
SET timezone = 'UTC';
-- the earlier tests' rules and alerts would add their own deliveries (re-posts, repeats)
DELETE FROM smartetl.alert_rule;
DELETE FROM smartetl.alert;
DELETE FROM smartetl.alert_group;
DELETE FROM smartetl.delivery;

-- cron schedules: wall-clock times in a zone; PostgreSQL's reading of a
-- skipped or repeated local time; every-hour schedules follow real hours
SELECT s AS schedule, a AS after, smartetl.cron_next(s, a, 'Europe/Paris') AS next,
       smartetl.cron_next(s, a, 'Europe/Paris') AT TIME ZONE 'Europe/Paris' AS paris
FROM (VALUES ('30 2 * * *', timestamptz '2025-03-29 12:00+00'),   -- skipped: 02:30 is read as 03:30 CEST
             ('30 2 * * *', '2025-03-30 01:30+00'),
             ('0 6 * * *', '2025-03-29 12:00+00'),
             ('0 6 * * *', '2025-03-30 12:00+00'),
             ('0 * * * *', '2025-03-30 00:00+00'),                 -- 01:00 CET, then 03:00 CEST
             ('30 2 * * *', '2025-10-25 12:00+00'),                -- repeated: the second 02:30 (CET)
             ('0 * * * *', '2025-10-26 00:00+00'),                 -- 02:00 CEST, then 02:00 CET
             ('0 * * * *', '2025-10-26 01:00+00'),
             ('0 6 * * *', '2025-10-25 12:00+00'),
             ('0 6 * * *', '2025-10-26 12:00+00'),
             ('@daily', '2025-01-01 00:00+00'),
             ('0 0 $ 2 *', '2025-01-01 00:00+00'),
             ('0 9 1,15 * mon', '2025-01-02 00:00+00'),
             ('0 0 29 2 *', '2025-01-01 00:00+00')) v(s, a);
SELECT '2025-03-30 02:30'::timestamp AT TIME ZONE 'Europe/Paris' AS skipped_as_sql,
       '2025-10-26 02:30'::timestamp AT TIME ZONE 'Europe/Paris' AS repeated_as_sql;
-- hourly across both changes: 23 and 25 runs on those days
SELECT d::date AS day, count(*) AS hourly_runs
FROM (VALUES (date '2025-03-30'), ('2025-10-26')) v(d),
     LATERAL (WITH RECURSIVE t(x) AS (
                  SELECT smartetl.cron_next('0 * * * *', (d::timestamp AT TIME ZONE 'Europe/Paris') - interval '1 second', 'Europe/Paris')
                  UNION ALL SELECT smartetl.cron_next('0 * * * *', x, 'Europe/Paris') FROM t
                  WHERE x < ((d + 1)::timestamp AT TIME ZONE 'Europe/Paris') - interval '1 hour')
              SELECT x FROM t) r
GROUP BY 1 ORDER BY 1;
-- bad schedules and zones fail when written
SELECT smartetl.cron_next('61 * * * *');
SELECT smartetl.cron_next('0 0 30 2 *');
SELECT smartetl.cron_next('@reboot');
SELECT smartetl.cron_next('0 6 * * *', now(), 'Mars/Olympus');
INSERT INTO smartetl.pipeline (namespace, name, schedule) VALUES ('oncall', 'typo', '0 6 * * * *');

-- deadlines: the latest deadline that passed, whether a success finished since its scheduled start
INSERT INTO smartetl.pipeline (namespace, name, schedule, schedule_timezone, deadline) VALUES
    ('oncall', 'paris_daily', '0 6 * * *', 'Europe/Paris', '30 minutes'),
    ('oncall', 'paris_skipped', '30 2 * * *', 'Europe/Paris', '1 hour');
UPDATE smartetl.pipeline SET schedule_timezone = 'Paris' WHERE name = 'paris_daily';
CREATE VIEW ds AS
SELECT pipeline, scheduled_at, deadline_at, missed, next_deadline_at FROM smartetl.deadline_status(current_setting('oncall.at')::timestamptz)
WHERE namespace = 'oncall' ORDER BY pipeline;
SET oncall.at = '2025-03-30 04:29:59+00';   -- 06:29:59 CEST on the spring-forward day
SELECT * FROM ds;
SET oncall.at = '2025-03-30 04:30:00+00';
SELECT * FROM ds;
-- a success that finished after the scheduled start meets it (late or not)
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nparis_daily,d1,2025-03-30 04:05:00+00,2025-03-30 04:20:00+00,success\nparis_skipped,s1,2025-03-30 03:00:00+00,2025-03-30 03:10:00+00,success\n', '{"namespace": "oncall"}');
SELECT * FROM ds;
SET oncall.at = '2025-10-26 05:30:00+00';   -- 06:30 CET on the fall-back day
SELECT * FROM ds;

-- schedules from Airflow's REST API (GET /api/v1/dags, and a DAG's /details with its timezone)
SELECT smartetl.sync_airflow_schedules('{"dags": [
   {"dag_id": "sales_daily", "is_paused": false, "is_active": true, "schedule_interval": {"__type": "CronExpression", "value": "0 6 * * *"}},
   {"dag_id": "hourly_sync", "is_paused": false, "schedule_interval": {"__type": "CronExpression", "value": "@hourly"}},
   {"dag_id": "every_2h", "is_paused": false, "schedule_interval": {"__type": "TimeDelta", "days": 0, "seconds": 7200, "microseconds": 0}},
   {"dag_id": "paused_one", "is_paused": true, "schedule_interval": {"__type": "CronExpression", "value": "0 1 * * *"}},
   {"dag_id": "airflow3", "timetable_summary": "30 5 * * 1-5"}], "total_entries": 5}',
   '{"namespace": "af", "deadline": "45 minutes"}') AS changed;
SELECT smartetl.sync_airflow_schedules('{"dag_id": "sales_daily", "timezone": "Timezone(''Europe/Paris'')",
   "schedule_interval": {"__type": "CronExpression", "value": "0 6 * * *"}}', '{"namespace": "af"}') AS changed;
SELECT name, schedule, schedule_timezone, deadline FROM smartetl.pipeline WHERE namespace = 'af' ORDER BY name;

-- the rule: a deadline passing with no run at all fires at once; a success resolves it
INSERT INTO smartetl.channel (name, kind, target) VALUES ('oncall-bus', 'notify', 'oncall_alerts');
INSERT INTO smartetl.pipeline (namespace, name, schedule, deadline) VALUES ('oncall', 'nightly', '0 0 * * *', '1 second');
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait)
VALUES ('deadlines', 'deadline', '{"namespace": "oncall", "pipeline": "nightly"}', '{oncall-bus}', '0');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state, notified_state, value > 0 AS late,
       annotations->>'description' LIKE 'scheduled % UTC (0 0 * * *), a successful run was due by 00:00; no run started since' AS description,
       annotations->>'deadline_at' IS NOT NULL AS deadline_at
FROM smartetl.alert WHERE rule_name = 'deadlines';
-- the worker wakes for the next deadline (or sooner)
SELECT smartetl.next_alert_due() <= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day 1 second' AS wakes_in_time;
SELECT inserted FROM smartetl.ingest('csv', format(E'job,run_id,start,end,status\nnightly,n1,%s,%s,success\n', now() - interval '100 ms', now()), '{"namespace": "oncall"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT state, notified_state FROM smartetl.alert WHERE rule_name = 'deadlines';
SELECT kind, evaluated_every, takes_query FROM smartetl.alert_rule_kinds() ORDER BY kind;
-- every kind names its condition: a function (alert_rule, bigint[]) returning
-- (pipeline_id, value, annotations), which _alert_conditions calls
SELECT k.kind, k.condition,
       (SELECT pg_get_function_result(p.oid) FROM pg_proc p
        WHERE p.oid = to_regprocedure(k.condition || '(smartetl.alert_rule,bigint[])')) AS returns
FROM smartetl.alert_rule_kinds() k ORDER BY k.kind;
-- the dispatch gives what the kind's function gives
SELECT (SELECT count(*) FROM smartetl._alert_conditions(r)) AS via_registry,
       (SELECT count(*) FROM smartetl._alert_cond_deadline(r, NULL)) AS via_function
FROM smartetl.alert_rule r WHERE r.name = 'deadlines';

-- retries: a failed try that will be retried does not notify; the last one does, "after 3 tries"
CREATE VIEW sent AS
SELECT d.channel, d.notification->'rule'->>'name' AS rule, d.notification->>'status' AS status,
       (SELECT string_agg(a->'annotations'->>'summary', '; ' ORDER BY a->'labels'->>'pipeline')
        FROM jsonb_array_elements(d.notification->'alerts') a) AS summaries
FROM smartetl.delivery d ORDER BY d.delivery_id;
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait)
VALUES ('task-failures', 'run_failed', '{"namespace": "airflow", "pipeline": "etl.*"}', '{oncall-bus}', '0');
CREATE FUNCTION pg_temp.try(task text, n int, state text) RETURNS integer LANGUAGE sql AS $$
    SELECT (smartetl.ingest('airflow', jsonb_build_object('task_instances', jsonb_build_array(jsonb_build_object(
        'dag_id', 'etl', 'task_id', task, 'dag_run_id', 'scheduled__2025-05-01', 'try_number', n, 'max_tries', 2,
        'state', state, 'start_date', '2025-05-01T00:0' || n || ':00+00:00', 'end_date', '2025-05-01T00:0' || n || ':30+00:00')))::text)).inserted
        + smartetl.evaluate_alerts()
$$;
-- load fails twice, then succeeds on its third try: no notification at all
SELECT pg_temp.try('load', 1, 'up_for_retry') AS try1, pg_temp.try('load', 2, 'up_for_retry') AS try2,
       pg_temp.try('load', 3, 'success') AS try3;
SELECT count(*) AS alerts FROM smartetl.alert WHERE rule_name = 'task-failures';
-- publish fails three times: one notification, after the last try
SELECT pg_temp.try('publish', 1, 'up_for_retry') AS try1, pg_temp.try('publish', 2, 'up_for_retry') AS try2,
       pg_temp.try('publish', 3, 'failed') AS try3;
SELECT * FROM sent WHERE rule = 'task-failures';
-- after_tries: notify from the second failed try on, even if retries remain
UPDATE smartetl.alert_rule SET after_tries = 2 WHERE name = 'task-failures';
SELECT pg_temp.try('report', 1, 'up_for_retry') AS try1, pg_temp.try('report', 2, 'up_for_retry') AS try2;
SELECT labels->>'pipeline' AS pipeline, state, annotations->>'tries' AS tries, annotations->>'description' AS description
FROM smartetl.alert WHERE rule_name = 'task-failures' ORDER BY 1;
UPDATE smartetl.alert_rule SET enabled = false WHERE name = 'task-failures';

-- inhibition: a dbt invocation failing with 20 failed nodes gives one notification, listing what it muted
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait)
VALUES ('dbt-failures', 'run_failed', '{"namespace": "ocdbt"}', '{oncall-bus}', '0');
SELECT inserted FROM smartetl.ingest('dbt', jsonb_build_object(
    'metadata', jsonb_build_object('dbt_version', '1.9.0', 'generated_at', '2025-05-02T03:00:10Z', 'invocation_id', 'inv-20'),
    'elapsed_time', 12.5,
    'results', (SELECT jsonb_agg(jsonb_build_object('status', 'error', 'unique_id', 'model.shop.m' || lpad(i::text, 2, '0'),
                                                    'execution_time', 0.5, 'timing', '[]'::jsonb, 'adapter_response', '{}'::jsonb,
                                                    'message', 'relation "raw.src' || i || '" does not exist', 'failures', NULL))
                FROM generate_series(1, 20) i))::text, '{"namespace": "ocdbt"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT count(*) FILTER (WHERE inhibited_by IS NULL) AS roots, count(*) FILTER (WHERE inhibited_by IS NOT NULL) AS muted
FROM smartetl.alert WHERE rule_name = 'dbt-failures' AND state = 'firing';
SELECT d.channel, d.notification->>'status' AS status, d.notification->'alerts'->0->'annotations'->>'summary' AS summary,
       jsonb_array_length(d.notification->'alerts') AS alerts,
       jsonb_array_length(d.notification->'alerts'->0->'annotations'->'muted_alerts') AS muted_listed,
       position('Also muted (downstream of this one): 20 alerts: model.shop.m01, model.shop.m02, '
                IN smartetl._payload('email', d.notification)->>'text') > 0 AS email_lists_them,
       position('Also muted' IN (smartetl._payload('slack', d.notification)->'body')::text) > 0 AS slack_lists_them
FROM smartetl.delivery d WHERE d.notification->'rule'->>'name' = 'dbt-failures';
-- dataset lineage: a pipeline reading a dataset that a failed pipeline writes is downstream
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait)
VALUES ('lineage-failures', 'run_failed', '{"namespace": "lake"}', '{oncall-bus}', '0');
SELECT inserted FROM smartetl.ingest('openlineage', $$[
 {"eventType": "FAIL", "eventTime": "2025-05-02T04:00:00Z", "run": {"runId": "ol-up-1"}, "job": {"namespace": "lake", "name": "ingest_orders"},
  "outputs": [{"namespace": "s3://lake", "name": "orders"}]},
 {"eventType": "FAIL", "eventTime": "2025-05-02T04:10:00Z", "run": {"runId": "ol-down-1"}, "job": {"namespace": "lake", "name": "orders_report"},
  "inputs": [{"namespace": "s3://lake", "name": "orders"}]}]$$);
SELECT smartetl.evaluate_alerts() AS queued;
SELECT a.labels->>'pipeline' AS pipeline, r.labels->>'pipeline' AS muted_by_alert_on
FROM smartetl.alert a LEFT JOIN smartetl.alert r ON r.alert_id = a.inhibited_by
WHERE a.rule_name = 'lineage-failures' ORDER BY 1;
-- with inhibit = 'children', dataset lineage no longer mutes
UPDATE smartetl.alert_rule SET inhibit = 'children' WHERE name = 'lineage-failures';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT count(*) FILTER (WHERE inhibited_by IS NOT NULL) AS muted FROM smartetl.alert WHERE rule_name = 'lineage-failures';

-- maintenance windows: Alertmanager time_intervals in a location
INSERT INTO smartetl.maintenance_window (name, time_intervals, rules) VALUES
    ('bad', '[{"times": [{"start_time": "22:00", "end_time": "21:00"}]}]', '{x}');
INSERT INTO smartetl.maintenance_window (name, time_intervals, rules) VALUES
    ('bad', '[{"weekdays": ["funday"]}]', '{x}');
INSERT INTO smartetl.maintenance_window (name, time_intervals, timezone, rules) VALUES
    ('weekend-nights', '[{"times": [{"start_time": "22:00", "end_time": "24:00"}, {"start_time": "00:00", "end_time": "02:00"}],
                          "weekdays": ["saturday:sunday"], "location": "Europe/Paris"}]', 'UTC', '{nothing}'),
    ('month-end', '[{"days_of_month": ["-2:-1"], "months": ["january:march"]}]', 'UTC', '{nothing}');
SELECT at, smartetl.maintenance_window_active('weekend-nights', at) AS weekend_nights,
       smartetl.maintenance_window_active('month-end', at) AS month_end
-- Sat 21:59 CET, Sat 22:00 CET, Sun 01:30 CET, Sun 03:30 CEST (the clocks went from 02:00 to 03:00), ...
FROM unnest(ARRAY['2025-03-29 20:59+00', '2025-03-29 21:00+00', '2025-03-30 00:30+00', '2025-03-30 01:30+00',
                  '2025-03-30 23:59+00', '2025-03-31 00:00+00', '2025-02-27 12:00+00', '2025-04-30 12:00+00']::timestamptz[]) at;
SELECT smartetl._window_next_change(w, '2025-03-29 12:00+00') AS next_change FROM smartetl.maintenance_window w WHERE name = 'weekend-nights';

-- a window starting and ending with alerts firing through it: recorded as muted,
-- still-firing alerts notify when it ends, cleared ones send nothing
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait)
VALUES ('win-failures', 'run_failed', '{"namespace": "win"}', '{oncall-bus}', '0');
INSERT INTO smartetl.maintenance_window (name, time_intervals, rules, comment)
VALUES ('upgrade', '[{}]', '{win-failures}', 'always on until disabled');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nwin_a,1,2025-05-03 01:00:00+00,2025-05-03 01:01:00+00,failed\nwin_b,1,2025-05-03 01:00:00+00,2025-05-03 01:01:00+00,failed\n', '{"namespace": "win"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state, muted_by, notified_state FROM smartetl.alert WHERE rule_name = 'win-failures' ORDER BY 1;
-- win_b recovers during the window
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nwin_b,2,2025-05-03 02:00:00+00,2025-05-03 02:01:00+00,success\n', '{"namespace": "win"}');
SELECT smartetl.evaluate_alerts() AS queued;
-- the window ends
UPDATE smartetl.maintenance_window SET enabled = false WHERE name = 'upgrade';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT * FROM sent WHERE rule = 'win-failures';
SELECT labels->>'pipeline' AS pipeline, state, muted_by, notified_state FROM smartetl.alert WHERE rule_name = 'win-failures' ORDER BY 1;

-- a channel's window: deliveries are held; at its end the channel hears what still fires
INSERT INTO smartetl.channel (name, kind, target) VALUES ('oncall-night', 'notify', 'oncall_night');
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_by, group_wait, group_interval)
VALUES ('night-failures', 'run_failed', '{"namespace": "night"}', '{oncall-night}', '{}', '0', '0');
INSERT INTO smartetl.maintenance_window (name, time_intervals, channels) VALUES ('quiet-night', '[{}]', '{oncall-night}');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nnight_a,1,2025-05-03 01:00:00+00,2025-05-03 01:01:00+00,failed\nnight_b,1,2025-05-03 01:00:00+00,2025-05-03 01:01:00+00,failed\n', '{"namespace": "night"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nnight_b,2,2025-05-03 02:00:00+00,2025-05-03 02:01:00+00,success\n', '{"namespace": "night"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT status, count(*) FROM smartetl.delivery WHERE channel = 'oncall-night' GROUP BY 1 ORDER BY 1;
UPDATE smartetl.maintenance_window SET enabled = false WHERE name = 'quiet-night';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT d.status, d.notification->>'status' AS notification,
       (SELECT string_agg(a->'labels'->>'pipeline' || ':' || (a->>'status'), ', ' ORDER BY a->'labels'->>'pipeline')
        FROM jsonb_array_elements(d.notification->'alerts') a) AS alerts
FROM smartetl.delivery d WHERE d.channel = 'oncall-night' ORDER BY d.delivery_id;

-- acknowledgement and escalation: an unacknowledged alert escalates on time, an acknowledged one does not
INSERT INTO smartetl.channel (name, kind, target) VALUES ('oncall-pager', 'notify', 'oncall_pager');
INSERT INTO smartetl.escalation_policy (name, steps) VALUES ('bad', '[{"after": "soon", "channels": ["oncall-pager"]}]');
INSERT INTO smartetl.escalation_policy (name, steps) VALUES ('bad', '[{"after": "5 minutes", "channels": ["nowhere"]}]');
INSERT INTO smartetl.escalation_policy (name, steps, repeat)
VALUES ('page-then-repeat', '[{"after": "10 minutes", "channels": ["oncall-pager"]}]', 1);
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait, escalation_policy)
VALUES ('esc-failures', 'run_failed', '{"namespace": "esc"}', '{oncall-bus}', '0', 'nowhere');
INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait, escalation_policy)
VALUES ('esc-failures', 'run_failed', '{"namespace": "esc"}', '{oncall-bus}', '0', 'page-then-repeat');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nesc_acked,1,2025-05-04 01:00:00+00,2025-05-04 01:01:00+00,failed\nesc_ignored,1,2025-05-04 01:00:00+00,2025-05-04 01:01:00+00,failed\n', '{"namespace": "esc"}');
SELECT smartetl.evaluate_alerts() AS queued;
-- someone acknowledges one of them (the on-call role may; a reader may not)
CREATE ROLE oncall_person LOGIN IN ROLE smartetl_oncall;
CREATE ROLE oncall_reader LOGIN IN ROLE smartetl_reader;
SET ROLE oncall_reader;
SELECT smartetl.ack(alert_id, 'mallory') FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_acked';
RESET ROLE;
SET ROLE oncall_person;
SELECT (smartetl.ack(alert_id, 'alice', 'looking at the loader')).acked_by FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_acked';
SELECT (smartetl.assign(alert_id, 'bob')).assignee FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_acked';
SELECT smartetl.ack(424242, 'alice');
SELECT pipeline, state, muted, acked_by, ack_comment, assignee, escalation_level FROM smartetl.alert_status WHERE rule = 'esc-failures' ORDER BY 2, 1;
RESET ROLE;
-- not yet: the first step waits 10 minutes after the first notification
SELECT smartetl.evaluate_alerts() AS queued;
UPDATE smartetl.alert SET notified_at = notified_at - interval '11 minutes' WHERE rule_name = 'esc-failures';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT channel, d.notification->'escalation' AS escalation,
       (SELECT string_agg(a->'labels'->>'pipeline', ', ') FROM jsonb_array_elements(d.notification->'alerts') a) AS alerts
FROM smartetl.delivery d WHERE d.group_key LIKE 'esc-failures/%' AND channel = 'oncall-pager' ORDER BY delivery_id;
-- the repeat, 10 minutes later; then the policy is exhausted
UPDATE smartetl.alert SET escalated_at = escalated_at - interval '11 minutes' WHERE rule_name = 'esc-failures';
SELECT smartetl.evaluate_alerts() AS queued;
UPDATE smartetl.alert SET escalated_at = escalated_at - interval '11 minutes' WHERE rule_name = 'esc-failures';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, escalation_level FROM smartetl.alert WHERE rule_name = 'esc-failures' ORDER BY 1;
-- later notifications show who acknowledged and who is assigned
UPDATE smartetl.alert_group SET last_notified_at = last_notified_at - interval '5 hours' WHERE rule_name = 'esc-failures';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT a->'annotations'->>'acked_by' AS acked_by, a->'annotations'->>'assignee' AS assignee,
       position('Acknowledged by alice at ' IN smartetl._payload('email', d.notification)->>'text') > 0 AS email_shows_ack,
       position('Assigned to bob' IN (smartetl._payload('teams', d.notification)->'body')::text) > 0 AS teams_shows_assignee
FROM smartetl.delivery d, jsonb_array_elements(d.notification->'alerts') a
WHERE d.channel = 'oncall-bus' AND d.group_key LIKE 'esc-failures/%' AND a->'labels'->>'pipeline' = 'esc_acked'
ORDER BY d.delivery_id DESC LIMIT 1;
-- snooze: no notification until then
SELECT (smartetl.snooze(alert_id, now() + interval '1 hour', 'carol')).snoozed_until > now() AS snoozed
FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_ignored';
SELECT pipeline, muted LIKE 'snoozed until %' AS snoozed FROM smartetl.alert_status WHERE pipeline = 'esc_ignored';
SELECT smartetl.snooze(alert_id, now() + interval '40 days') FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_ignored';
SELECT (smartetl.unack(alert_id)).acked_by IS NULL AS unacked FROM smartetl.alert WHERE labels->>'pipeline' = 'esc_acked';
DROP ROLE oncall_person;
DROP ROLE oncall_reader;

-- leave the database as later tests expect it
DROP VIEW ds;
DROP VIEW sent;
DELETE FROM smartetl.maintenance_window;
UPDATE smartetl.alert_rule SET escalation_policy = NULL;
DELETE FROM smartetl.escalation_policy;
DELETE FROM smartetl.pipeline WHERE namespace IN ('oncall', 'af', 'ocdbt', 'lake', 'win', 'night', 'esc')
   OR (namespace = 'airflow' AND name LIKE 'etl%');
