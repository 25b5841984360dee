-- Incremental alert evaluation: ingest and run changes record the changed
-- pipelines; a pass evaluates run-driven rules for those pipelines only,
-- freshness and deadline rules also for pipelines whose due time came, and
-- a rule change makes the next pass a full one.  No worker runs here.
SET timezone = 'UTC';
DELETE FROM smartetl.alert_rule;
DELETE FROM smartetl.alert;
DELETE FROM smartetl.alert_group;
DELETE FROM smartetl.delivery;
INSERT INTO smartetl.channel (name, kind, target) VALUES ('inc-bus', 'notify', 'inc_bus');
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait, group_interval, repeat_interval)
VALUES ('inc-failures', 'run_failed', '{inc-bus}', '{"namespace": "inc"}', '0', '0', '3 hours');
-- a rule change asks for a full pass
SELECT count(*) > 0 AS full_pass_asked FROM smartetl.alert_changed WHERE pipeline_id IS NULL;
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status,error\nja,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\njb,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\njc,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\n', '{"namespace": "inc"}');
-- the ingest recorded its three pipelines
SELECT p.name, count(*) > 0 AS recorded FROM smartetl.alert_changed c JOIN smartetl.pipeline p USING (pipeline_id)
WHERE p.namespace = 'inc' GROUP BY 1 ORDER BY 1;
SELECT smartetl.evaluate_alerts() AS queued;
SELECT count(*) AS left_over FROM smartetl.alert_changed;
SELECT labels->>'pipeline' AS pipeline, state, value FROM smartetl.alert WHERE rule_name = 'inc-failures' ORDER BY 1;
CREATE TEMP TABLE seen AS SELECT labels->>'pipeline' AS pipeline, last_seen_at FROM smartetl.alert WHERE rule_name = 'inc-failures';
-- a pass after one new run re-evaluates that pipeline's alert only
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status,error\nja,2,2024-05-01 11:00:00,2024-05-01 11:01:00,failed,boom\n', '{"namespace": "inc"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT a.labels->>'pipeline' AS pipeline, a.value AS failed_in_a_row, a.last_seen_at > s.last_seen_at AS re_evaluated
FROM smartetl.alert a JOIN seen s ON s.pipeline = a.labels->>'pipeline' WHERE a.rule_name = 'inc-failures' ORDER BY 1;
-- each group is next examined at its repeat_interval
SELECT count(*) FILTER (WHERE d.due_at = g.last_notified_at + interval '3 hours') AS at_repeat_interval, count(*) AS groups
FROM smartetl.alert_group g JOIN smartetl.alert_group_due d USING (group_key) WHERE g.rule_name = 'inc-failures';
-- a change that nobody recorded is not seen by an incremental pass...
ALTER TABLE smartetl.run DISABLE TRIGGER run_alert_changed_update;
UPDATE smartetl.run SET status = 'success', error_message = NULL
WHERE pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'inc' AND name = 'jb');
ALTER TABLE smartetl.run ENABLE TRIGGER run_alert_changed_update;
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state FROM smartetl.alert WHERE rule_name = 'inc-failures' ORDER BY 1;
-- ...but a rule change makes the next pass a full one: jb resolves
UPDATE smartetl.alert_rule SET severity = 'warning' WHERE name = 'inc-failures';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state FROM smartetl.alert WHERE rule_name = 'inc-failures' ORDER BY 1;
-- a recorded change resolves without a full pass
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njc,2,2024-05-01 12:00:00,2024-05-01 12:01:00,success\n', '{"namespace": "inc"}');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state FROM smartetl.alert WHERE rule_name = 'inc-failures' ORDER BY 1;

-- freshness runs on its own schedule: a pipeline expected hourly whose
-- last success ended 79 minutes ago is due 11 minutes from now
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait)
VALUES ('inc-fresh', 'freshness', '{inc-bus}', '{"namespace": "incf"}', '0');
SELECT inserted FROM smartetl.ingest('csv', format(E'job,run_id,start,end,status\nfresh,1,%s,%s,success\nfresh,2,%s,%s,failed\n',
    now() - interval '80 minutes', now() - interval '79 minutes', now() - interval '10 minutes', now() - interval '9 minutes'),
    '{"namespace": "incf"}');
UPDATE smartetl.pipeline SET expected_interval = '1 hour' WHERE namespace = 'incf';
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT count(*) AS fresh_alerts FROM smartetl.alert WHERE rule_name = 'inc-fresh';
SELECT d.due_at = r.ended_at + interval '90 minutes' AS due_when_overdue
FROM smartetl.alert_rule_due d JOIN smartetl.run r ON r.pipeline_id = d.pipeline_id AND r.status = 'success'
WHERE d.rule_name = 'inc-fresh';
-- time passes (the success moves 30 minutes back, unrecorded): not due yet, nothing
ALTER TABLE smartetl.run DISABLE TRIGGER run_alert_changed_update;
UPDATE smartetl.run SET started_at = started_at - interval '30 minutes', ended_at = ended_at - interval '30 minutes'
WHERE pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'incf') AND status = 'success';
ALTER TABLE smartetl.run ENABLE TRIGGER run_alert_changed_update;
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT count(*) AS fresh_alerts FROM smartetl.alert WHERE rule_name = 'inc-fresh';
-- its due time comes, with no ingest: it fires
UPDATE smartetl.alert_rule_due SET due_at = now() - interval '1 second' WHERE rule_name = 'inc-fresh';
SELECT count(*) AS changed FROM smartetl.alert_changed;
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, state, annotations->>'overdue' AS overdue FROM smartetl.alert WHERE rule_name = 'inc-fresh';

-- anomaly rules are driven by runs: a run is scored when it is ingested,
-- and the next pass evaluates its pipeline, with no clock to wait for.
-- 30 hourly runs of about a minute, the latest 2 hours ago...
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait)
VALUES ('inc-slow', 'duration_anomaly', '{inc-bus}', '{"namespace": "inca"}', '0');
SELECT inserted FROM smartetl.ingest('csv',
    (SELECT E'job,run_id,start,end,status\n' || string_agg(format(E'slow,%s,%s,%s,success\n', i,
                date_trunc('minute', now()) - (32 - i) * interval '1 hour',
                date_trunc('minute', now()) - (32 - i) * interval '1 hour' + (60 + i % 5) * interval '1 second'), '')
     FROM generate_series(1, 30) i),
    '{"namespace": "inca"}');
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT count(*) AS slow_alerts FROM smartetl.alert WHERE rule_name = 'inc-slow';
CREATE TEMP TABLE slow_pass AS SELECT evaluated_at FROM smartetl.alert_rule_state WHERE rule_name = 'inc-slow';
-- ...then one that took 10 minutes: scored at ingest (detect_anomalies
-- lists it), and one pass later, on the same clock, the alert fires with
-- that score
SELECT inserted FROM smartetl.ingest('csv', format(E'job,run_id,start,end,status\nslow,31,%s,%s,success\n',
    date_trunc('minute', now()) - interval '20 minutes', date_trunc('minute', now()) - interval '10 minutes'),
    '{"namespace": "inca"}');
SELECT a.kind, a.value, round(a.score) > 4 AS above_threshold
FROM smartetl.detect_anomalies(now() - interval '1 hour', now() + interval '1 hour') a
WHERE a.pipeline = 'slow';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT a.labels->>'pipeline' AS pipeline, a.state, a.annotations->>'summary' AS summary,
       a.value = d.score AS value_is_score, (a.annotations->>'run_id')::bigint = d.run_id AS about_that_run,
       s.evaluated_at - p.evaluated_at < interval '5 minutes' AS within_5_minutes
FROM smartetl.alert a
CROSS JOIN smartetl.detect_anomalies(now() - interval '1 hour', now() + interval '1 hour') d
CROSS JOIN slow_pass p
JOIN smartetl.alert_rule_state s ON s.rule_name = a.rule_name
WHERE a.rule_name = 'inc-slow' AND d.pipeline = 'slow';
SELECT count(*) AS queued_for_it FROM smartetl.delivery WHERE group_key LIKE 'inc-slow/%';
-- the next run is normal: the alert resolves in the pass after it
SELECT inserted FROM smartetl.ingest('csv', format(E'job,run_id,start,end,status\nslow,32,%s,%s,success\n',
    date_trunc('minute', now()) - interval '5 minutes', date_trunc('minute', now()) - interval '4 minutes'),
    '{"namespace": "inca"}');
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT state FROM smartetl.alert WHERE rule_name = 'inc-slow';

-- chunked evaluation (the worker's passes, smartetl.evaluation_chunk): a
-- burst is evaluated a chunk of changed pipelines per pass; the pipelines
-- of the inhibition graph go into the first chunk together, so the children
-- of a parent failing in the same burst are muted before anything is sent
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait)
VALUES ('chk-failures', 'run_failed', '{inc-bus}', '{"namespace": "chk"}', '0');
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT inserted FROM smartetl.ingest('csv',
    (SELECT E'job,run_id,start,end,status,error\n' || string_agg(format(E'iso%s,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\n', i), '')
     FROM generate_series(1, 10) i), '{"namespace": "chk"}');
SELECT inserted FROM smartetl.ingest('dbt', jsonb_build_object(
    'metadata', jsonb_build_object('dbt_version', '1.9.0', 'generated_at', '2025-05-02T03:00:10Z', 'invocation_id', 'chk-inv'),
    'elapsed_time', 12.5,
    'results', (SELECT jsonb_agg(jsonb_build_object('status', 'error', 'unique_id', 'model.chk.m' || lpad(i::text, 2, '0'),
                                                    'execution_time', 0.5, 'timing', '[]'::jsonb, 'adapter_response', '{}'::jsonb,
                                                    'message', 'boom', 'failures', NULL))
                FROM generate_series(1, 20) i))::text, '{"namespace": "chk"}');
-- the first pass of chunk 3 takes the 21 pipelines of the graph and no other
SELECT smartetl._evaluate_alerts(3) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
SELECT count(*) FILTER (WHERE inhibited_by IS NULL) AS roots, count(*) FILTER (WHERE inhibited_by IS NOT NULL) AS muted
FROM smartetl.alert WHERE rule_name = 'chk-failures' AND state = 'firing';
-- then 3 isolated pipelines a pass until the backlog is empty
SELECT smartetl._evaluate_alerts(3) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
SELECT smartetl._evaluate_alerts(3) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
SELECT smartetl._evaluate_alerts(3) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
SELECT smartetl._evaluate_alerts(3) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
-- as one pass would have it: 31 alerts, 20 muted, one notification per
-- group that has an unmuted alert, each group notified once
SELECT count(*) AS alerts, count(*) FILTER (WHERE inhibited_by IS NOT NULL) AS muted,
       (SELECT count(*) FROM smartetl.delivery WHERE group_key LIKE 'chk-failures/%') AS deliveries,
       (SELECT count(DISTINCT group_key) FROM smartetl.delivery WHERE group_key LIKE 'chk-failures/%') AS groups_notified
FROM smartetl.alert WHERE rule_name = 'chk-failures' AND state = 'firing';
-- a rule grouping by namespace (not pipeline): a namespace's pipelines stay
-- in one chunk, so its group's first notification has all of them
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_by, group_wait)
VALUES ('chk-by-ns', 'run_failed', '{inc-bus}', '{"namespace": "chk2"}', '{namespace}', '0');
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT inserted FROM smartetl.ingest('csv',
    (SELECT E'job,run_id,start,end,status,error\n' || string_agg(format(E'ns%s,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\n', i), '')
     FROM generate_series(1, 5) i), '{"namespace": "chk2"}');
SELECT inserted FROM smartetl.ingest('csv',
    (SELECT E'job,run_id,start,end,status,error\n' || string_agg(format(E'other%s,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\n', i), '')
     FROM generate_series(1, 4) i), '{"namespace": "chk3"}');
SELECT smartetl._evaluate_alerts(2) AS queued;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;
SELECT jsonb_array_length(notification->'alerts') AS alerts FROM smartetl.delivery WHERE group_key LIKE 'chk-by-ns/%';
-- evaluate_alerts() takes whatever a chunked pass left
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT count(*) AS backlog FROM smartetl.alert_backlog;

DELETE FROM smartetl.alert_rule;
DELETE FROM smartetl.alert;
DELETE FROM smartetl.alert_group;
DELETE FROM smartetl.delivery;
DELETE FROM smartetl.channel WHERE name = 'inc-bus';
DELETE FROM smartetl.pipeline WHERE namespace IN ('inc', 'incf', 'inca', 'chk', 'chk2', 'chk3');
