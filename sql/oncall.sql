-- On-call: schedules and deadlines (also across DST in Europe/Paris),
-- retries, inhibition, maintenance windows, acknowledgement and
-- escalation.  No worker runs in this database: evaluate_alerts() is
-- called by hand and deliveries stay queued.
SET timezone = 'UTC';

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
