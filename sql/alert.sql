-- Alerting: rules and channels are checked when written; evaluate_alerts()
-- fires, groups, re-sends and resolves like Alertmanager.  No worker runs
-- in this database, so deliveries stay queued and every step is visible.
SET timezone = 'UTC';
-- bad channels
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c1', 'pager', 'http://127.0.0.1/x');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c1', 'webhook', 'ftp://127.0.0.1/x');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c1', 'slack', 'https://user:pw@hooks.example.com/x');
INSERT INTO smartetl.channel (name, kind, target, options) VALUES ('c1', 'email', 'smtp://127.0.0.1:25', '{"from": "etl@x", "to": ["not-an-address"]}');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c1', 'email', 'smtp://127.0.0.1:25');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('c1', 'notify', 'bad channel; drop');
-- good ones
INSERT INTO smartetl.channel (name, kind, target, options) VALUES
  ('hook', 'webhook', 'http://127.0.0.1:9/hook', '{"link_template": "http://grafana.local/d/smartetl?var-pipeline={pipeline}"}'),
  ('mail', 'email', 'smtp://127.0.0.1:2525', '{"from": "etl@example.com", "to": ["team@example.com"]}'),
  ('bus', 'notify', 'smartetl_alerts', '{}');
-- bad rules
INSERT INTO smartetl.alert_rule (name, kind, channels) VALUES ('r1', 'run_failed', '{hook,nowhere}');
INSERT INTO smartetl.alert_rule (name, kind, selector) VALUES ('r1', 'run_failed', '{"team": "x"}');
INSERT INTO smartetl.alert_rule (name, kind, group_by) VALUES ('r1', 'run_failed', '{host}');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('r1', 'sql', 'DELETE FROM smartetl.run RETURNING 1, 2');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('r1', 'sql', 'SELECT 1, 2; DROP TABLE smartetl.run');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('r1', 'sql', 'SELECT name FROM smartetl.pipeline');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('r1', 'sql', 'SELECT nme, 1 FROM smartetl.pipeline');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('r1', 'run_failed', 'SELECT 1');
INSERT INTO smartetl.alert_rule (name, kind) VALUES ('r1', 'cpu_high');
-- a channel in use cannot go
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait, group_interval, repeat_interval)
VALUES ('etl-failures', 'run_failed', '{hook,bus}', '{"namespace": "alerts", "pipeline": "job_*"}', '0', '0', '1 hour');
DELETE FROM smartetl.channel WHERE name = 'hook';

CREATE VIEW queued AS
SELECT d.channel, d.idempotency_key ~ '^[0-9a-f]{32}-[0-9]+$' AS key_ok,
       d.notification->>'status' AS status,
       (SELECT string_agg(a->'labels'->>'pipeline' || ':' || (a->>'status'), ', ' ORDER BY a->'labels'->>'pipeline')
        FROM jsonb_array_elements(d.notification->'alerts') a) AS alerts,
       d.notification->>'link' AS link, d.status AS delivery
FROM smartetl.delivery d ORDER BY d.delivery_id;

-- a failure fires; the notification is queued for both channels at once (group_wait 0)
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status,error\njob_a,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,Connection refused (10.0.0.7:5432)\nother,1,2024-05-01 10:00:00,2024-05-01 10:01:00,failed,boom\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts();
SELECT * FROM queued;
SELECT labels->>'pipeline' AS pipeline, state, notified_state, annotations->>'error_template' AS template,
       jsonb_array_length(annotations->'recent_history') AS history
FROM smartetl.alert;
-- nothing changed: nothing new (repeat_interval not reached)
SELECT smartetl.evaluate_alerts();
-- another failure of the same pipeline: still one alert, no new notification
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status,error\njob_a,2,2024-05-01 11:00:00,2024-05-01 11:01:00,failed,Connection refused (10.0.0.8:5432)\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts();
SELECT count(*) AS alerts, max(value) AS failed_in_a_row FROM smartetl.alert WHERE state = 'firing';
-- after repeat_interval it is sent again, with a new key
UPDATE smartetl.alert_group SET last_notified_at = last_notified_at - interval '2 hours';
SELECT smartetl.evaluate_alerts();
-- recovery: a resolved notification
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njob_a,3,2024-05-01 12:00:00,2024-05-01 12:01:00,success\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts();
SELECT * FROM queued;
SELECT count(DISTINCT idempotency_key) AS keys, count(*) AS deliveries FROM smartetl.delivery;

-- grouping: one notification for all pipelines of the rule when group_by is empty
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_by, group_wait)
VALUES ('all-failures', 'run_failed', '{bus}', '{"namespace": "alerts"}', '{}', '0');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njob_b,1,2024-05-01 12:00:00,2024-05-01 12:01:00,failed\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts();
SELECT * FROM queued WHERE channel = 'bus' AND alerts LIKE '%,%';

-- group_wait holds the first notification back
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, threshold, group_wait)
VALUES ('streaks', 'consecutive_failures', '{bus}', '{"pipeline": "job_c"}', 2, '1 hour');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njob_c,1,2024-05-01 12:00:00,2024-05-01 12:01:00,failed\njob_c,2,2024-05-01 13:00:00,2024-05-01 13:01:00,failed\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts() AS queued_now;
SELECT rule_name, state, notified_state FROM smartetl.alert WHERE rule_name = 'streaks';

-- silences: recorded, not sent
INSERT INTO smartetl.silence (matchers, ends_at, comment) VALUES ('{"pipeline": "job_d*"}', now() + interval '1 hour', 'maintenance');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njob_d1,1,2024-05-01 12:00:00,2024-05-01 12:01:00,failed\n', '{"namespace": "alerts"}');
SELECT smartetl.evaluate_alerts();
SELECT rule_name, state, silenced, notified_state FROM smartetl.alert WHERE labels->>'pipeline' = 'job_d1' ORDER BY 1;

-- a sql rule reads with a reader's rights and fires above its threshold
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, query, threshold, group_wait)
VALUES ('slow-loads', 'sql', '{bus}', '{"namespace": "alerts"}', 'SELECT p.name, max(r.duration_s) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) GROUP BY 1', 59, '0');
-- every pipeline so far ran 60 s (> 59): five alerts, one group each (group_by
-- pipeline), one channel; job_d1 is silenced, so 4 deliveries
SELECT smartetl.evaluate_alerts() AS queued;
SELECT labels->>'pipeline' AS pipeline, silenced FROM smartetl.alert a JOIN smartetl.delivery d
  ON d.group_key = a.group_key AND d.channel = 'bus' WHERE a.rule_name = 'slow-loads' ORDER BY 1;
SELECT labels->>'pipeline' AS pipeline, value FROM smartetl.alert WHERE rule_name = 'slow-loads' ORDER BY 1;
-- a broken rule is reported and the others still run
-- (its alerts are kept as they were: nothing resolved, nothing queued)
UPDATE smartetl.alert_rule SET query = 'SELECT p.name, 1 / (p.pipeline_id - p.pipeline_id) FROM smartetl.pipeline p' WHERE name = 'slow-loads';
SELECT smartetl.evaluate_alerts() AS queued;
SELECT count(*) FILTER (WHERE state = 'firing') AS firing, count(*) AS alerts FROM smartetl.alert WHERE rule_name = 'slow-loads';
SELECT rule_name, last_error FROM smartetl.alert_rule_state WHERE last_error IS NOT NULL;
-- disabling a rule resolves its alerts
-- (a resolution is a change of a notified group: it waits for group_interval,
-- 1 minute by default, so nothing is queued at once)
UPDATE smartetl.alert_rule SET enabled = false WHERE name IN ('slow-loads', 'streaks', 'all-failures');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT count(*) AS still_firing FROM smartetl.alert WHERE rule_name IN ('slow-loads', 'streaks', 'all-failures') AND state = 'firing';
-- a minute later: a resolved notification for each group that was notified
-- firing: slow-loads' four (job_d1 was silenced), all-failures' one; never
-- streaks' (held back by group_wait, never sent) -- 5
UPDATE smartetl.alert_group SET last_notified_at = last_notified_at - interval '2 minutes'
WHERE rule_name IN ('slow-loads', 'streaks', 'all-failures');
SELECT smartetl.evaluate_alerts() AS queued;
SELECT d.notification->'rule'->>'name' AS rule, count(*) AS resolved_notifications
FROM smartetl.delivery d WHERE d.notification->>'status' = 'resolved'
  AND d.notification->'rule'->>'name' IN ('slow-loads', 'streaks', 'all-failures') GROUP BY 1 ORDER BY 1;
-- firing groups are re-posted to Alertmanager every minute (its resolve_timeout is 5)
INSERT INTO smartetl.channel (name, kind, target) VALUES ('am', 'alertmanager', 'http://127.0.0.1:9/api/v2/alerts');
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait)
VALUES ('am-failures', 'run_failed', '{am}', '{"pipeline": "job_e"}', '0');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\njob_e,1,2024-05-01 12:00:00,2024-05-01 12:01:00,failed\n', '{"namespace": "alerts"}');
-- job_e matches am-failures (am) and etl-failures (hook, bus): 3 deliveries
SELECT smartetl.evaluate_alerts() AS queued;
SELECT smartetl.evaluate_alerts() AS nothing_yet;
UPDATE smartetl.alert_group SET am_posted_at = now() - interval '2 minutes', last_notified_at = now() - interval '2 minutes'
WHERE rule_name = 'am-failures';
SELECT smartetl.evaluate_alerts() AS refreshed;
SELECT count(*) AS posts, count(*) FILTER (WHERE idempotency_key ~ '-refresh-') AS refreshes,
       bool_and(jsonb_typeof(payload->'body') = 'array') AS alertmanager_arrays
FROM smartetl.delivery WHERE channel = 'am';
DROP VIEW queued;
