-- What a login role holding only smartetl_writer (or smartetl_admin, or
-- smartetl_reader) can do to the store, tried the way an attacker would:
-- impossible or far-future times in every format, records of one run that
-- contradict each other, durations that overflow, log ingestion without
-- superuser rights, deleting pipelines, a report over all of time,
-- retention of partitions it did not create.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
SET client_min_messages = warning;
CREATE ROLE regress_safe_writer LOGIN IN ROLE smartetl_writer;
CREATE ROLE regress_safe_admin LOGIN IN ROLE smartetl_admin;
CREATE ROLE regress_safe_reader LOGIN IN ROLE smartetl_reader;
RESET client_min_messages;
-- the runs of one pipeline, for everyone
CREATE FUNCTION runs_of(p text)
RETURNS TABLE (external_id text, status text, started_at timestamptz, ended_at timestamptz)
LANGUAGE sql AS $$
    SELECT r.external_id, r.status::text, r.started_at, r.ended_at
    FROM smartetl.run r JOIN smartetl.pipeline pl USING (pipeline_id)
    WHERE pl.name = p ORDER BY r.external_id, r.started_at $$;
SHOW smartetl.min_timestamp;
SHOW smartetl.max_future;

-- ---- A. times outside [min_timestamp, now() + max_future] -----------------
SET SESSION AUTHORIZATION regress_safe_writer;
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,1,2024-05-01,ok\nsafe_a,2,294276-12-31,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,3,4713-01-01 00:00:00+00 BC,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,end,status\nsafe_a,4,-99999999999,ok\n', '{"epoch_unit": "s"}');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,5,1969-12-31 23:59:59+00,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,6,2099-01-01,ok\n');
SELECT * FROM smartetl.ingest('jsonl', '{"job": "safe_a", "run_id": 7, "end_time": "2099-01-01T00:00:00Z", "status": "success"}');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "COMPLETE", "eventTime": "2099-01-01T00:00:00Z",
  "run": {"runId": "ol-2099"}, "job": {"namespace": "safe", "name": "safe_ol"}}');
SELECT * FROM smartetl.ingest('dbt', '{"metadata": {"generated_at": "2099-01-01T00:00:00Z", "invocation_id": "inv-2099"},
  "elapsed_time": 5, "results": []}');
SELECT * FROM smartetl.ingest('airflow', '{"dag_runs": [{"dag_id": "safe_dag", "dag_run_id": "r1", "state": "success",
  "start_date": "2099-01-01T00:00:00+00:00", "end_date": "2099-01-01T00:01:00+00:00"}]}');
SELECT * FROM smartetl.ingest('airflow', E'[2099-01-01T00:00:02.123+0000] {taskinstance.py:1234} INFO - Starting attempt 1 of 1\n');
SELECT * FROM smartetl.ingest('logline', E'2099-01-01 10:00:00 INFO from the future\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "safe_log"}');
-- the failed calls stored nothing
SELECT * FROM runs_of('safe_a');
SELECT count(*) FROM smartetl.pipeline WHERE name IN ('safe_ol', 'safe_dag', 'safe_log');

-- quarantine keeps the good rows and sets the bad ones aside, with line and field
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,10,2024-05-02,ok\nsafe_a,11,2099-01-01,ok\nsafe_a,12,1900-01-01,ok\n',
  '{"on_error": "quarantine", "source": "safe-a.csv"}');
SELECT line_no, field, raw, reason FROM smartetl.ingest_reject WHERE source = 'safe-a.csv' ORDER BY line_no;
SELECT * FROM smartetl.ingest('logline',
  E'2024-05-02 10:00:00 INFO kept\n2099-01-01 10:00:00 ERROR from the future\n  at frame one\n2024-05-02 10:00:01 INFO kept too\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "safe_log", "on_error": "quarantine", "source": "safe-a.log"}');
SELECT line_no, field, raw, reason FROM smartetl.ingest_reject WHERE source = 'safe-a.log';
SELECT line_no, ts, message FROM smartetl.log_event WHERE source = 'safe-a.log' ORDER BY line_no;

-- plain SQL writes are held to the same window, and to absolute limits
\set VERBOSITY terse
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at)
SELECT pipeline_id, 'sql-1', 'success', '2099-01-01' FROM smartetl.pipeline WHERE name = 'safe_a';
UPDATE smartetl.run SET ended_at = '294276-12-31' WHERE external_id = '10'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_a');
UPDATE smartetl.run SET started_at = '1969-01-01' WHERE external_id = '10'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_a');
\set VERBOSITY default
-- the window is the superuser's to set
SET smartetl.max_future = '30d';
SET smartetl.min_timestamp = '1900-01-01 00:00:00+00';

-- so a success dated ahead cannot hide a real failure from alerting
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_a,13,2024-05-03,failed\n');
SELECT pipeline, failed_at FROM smartetl.current_failures WHERE pipeline = 'safe_a';
RESET SESSION AUTHORIZATION;

-- a superuser may widen it, for history before 1970 say
SET smartetl.min_timestamp = '1960-01-01 00:00:00+00';
SET smartetl.min_timestamp = '1800-01-01 00:00:00+00';
SET SESSION AUTHORIZATION regress_safe_writer;
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_old,1,1965-06-01,ok\n');
RESET SESSION AUTHORIZATION;
RESET smartetl.min_timestamp;

-- a run stored before the limits existed (a 0.1.0 database: the run and
-- the rollup row bulk ingest gave it) no longer blocks the maintenance of
-- its pipeline: the rollup refresh skips such times
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\nsafe_legacy,1,2024-05-01,ok\n');
ALTER TABLE smartetl.run DROP CONSTRAINT run_time_limits;
ALTER TABLE smartetl.run DISABLE TRIGGER run_times_ins;
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at)
SELECT pipeline_id, '2', 'success', '294276-12-31 23:30:00+00' FROM smartetl.pipeline WHERE name = 'safe_legacy';
INSERT INTO smartetl.kpi_hourly (pipeline_id, bucket, runs, successes, failures, skipped, cancelled, running, retries, sla_breaches)
SELECT pipeline_id, '294276-12-31 23:00:00+00', 1, 1, 0, 0, 0, 0, 0, 0 FROM smartetl.pipeline WHERE name = 'safe_legacy';
ALTER TABLE smartetl.run ENABLE TRIGGER run_times_ins;
-- (as upgrade-steps-ingestsafe.sql adds it when such rows exist)
ALTER TABLE smartetl.run ADD CONSTRAINT run_time_limits CHECK (
    started_at >= '1900-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00' AND
    ended_at >= '1900-01-01 00:00:00+00' AND ended_at < '2200-01-01 00:00:00+00') NOT VALID;
SET SESSION AUTHORIZATION regress_safe_admin;
UPDATE smartetl.pipeline SET sla = interval '1 hour' WHERE name = 'safe_legacy';
UPDATE smartetl.run SET status = 'failed' WHERE external_id = '1'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_legacy');
-- the impossible run itself can only be repaired, or deleted
\set VERBOSITY terse
UPDATE smartetl.run SET attempt = 2 WHERE external_id = '2'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_legacy');
\set VERBOSITY default
UPDATE smartetl.run SET started_at = '2024-05-01 12:00:00+00' WHERE external_id = '2'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_legacy');
SELECT * FROM runs_of('safe_legacy');
DELETE FROM smartetl.run WHERE external_id = '2'
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'safe_legacy');
DELETE FROM smartetl.pipeline WHERE name = 'safe_legacy';
RESET SESSION AUTHORIZATION;
ALTER TABLE smartetl.run VALIDATE CONSTRAINT run_time_limits;
-- and the rollup refresh shrugs off such times however it is called
SET SESSION AUTHORIZATION regress_safe_writer;
SELECT smartetl._kpi_refresh(ARRAY[1, 1, 1]::bigint[],
                             ARRAY['294276-12-31 23:30:00+00', '4713-01-01 00:00:00+00 BC', 'infinity']::timestamptz[]);

-- ---- B. records of one run that contradict each other ---------------------
-- an end before the start given by an earlier line
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsafe_b,1,2024-05-02 10:00,,running\nsafe_b,1,,2024-05-01 10:00,failed\n');
-- or by the stored run
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsafe_b,2,2024-05-02 10:00,,running\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsafe_b,2,,2024-05-01 10:00,failed\n');
-- a start after the stored end
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsafe_b,3,2024-05-02 10:00,2024-05-02 11:00,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsafe_b,3,2024-05-03 10:00,,running\n');
SELECT * FROM smartetl.ingest('openlineage', E'{"eventType": "START", "eventTime": "2024-05-02T10:00:00Z", "run": {"runId": "b-ol"}, "job": {"namespace": "safe", "name": "safe_b_ol"}}\n{"eventType": "FAIL", "eventTime": "2024-05-01T10:00:00Z", "run": {"runId": "b-ol"}, "job": {"namespace": "safe", "name": "safe_b_ol"}}\n');
-- quarantined: the rest of the run's records still apply
SELECT * FROM smartetl.ingest('csv',
  E'job,run_id,start,end,status\nsafe_b,4,2024-05-02 10:00,,running\nsafe_b,4,,2024-05-01 10:00,failed\nsafe_b,4,,2024-05-02 12:00,failed\nsafe_b,2,,2024-05-01 09:00,ok\n',
  '{"on_error": "quarantine", "source": "safe-b.csv"}');
SELECT line_no, field, raw, reason FROM smartetl.ingest_reject WHERE source = 'safe-b.csv' ORDER BY line_no;
SELECT * FROM runs_of('safe_b');
-- durations that overflow the timestamp range
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,duration,status\nsafe_b,5,2024-05-02,178000000 years,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,duration,status\nsafe_b,5,2024-05-02,100 years,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,end,duration,status\nsafe_b,5,2024-05-02,200 years,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,duration,status\nsafe_b,5,2024-05-02,9223372036854,ok\nsafe_b,6,2024-05-02,60,ok\n',
  '{"on_error": "quarantine", "source": "safe-b2.csv", "duration_unit": "min"}');
SELECT line_no, field, reason FROM smartetl.ingest_reject WHERE source = 'safe-b2.csv';
SELECT * FROM runs_of('safe_b') WHERE external_id IN ('5', '6');

-- ---- C. writers ingest log lines, task logs and stack traces --------------
SELECT * FROM smartetl.ingest('logline', E'2024-03-15 10:00:00 ERROR job 17 failed\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "safe_w", "source": "w1.log"}');
-- again, now that the partition exists
SELECT * FROM smartetl.ingest('logline', E'2024-03-16 10:00:00 ERROR job 18 failed\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "safe_w", "source": "w2.log"}');
SELECT * FROM smartetl.ingest('airflow', $$[2024-03-15T00:00:02.123+0000] {taskinstance.py:1165} INFO - Dependencies all met for dep_context=non-requeueable deps ti=<TaskInstance: safe_dag.load manual__2024-03-15T00:00:00+00:00 [queued]>
[2024-03-15T00:00:02.200+0000] {taskinstance.py:1387} INFO - Starting attempt 1 of 1
[2024-03-15T00:00:09.000+0000] {taskinstance.py:1943} ERROR - Task failed with exception
Traceback (most recent call last):
ValueError: no rows
[2024-03-15T00:00:09.100+0000] {taskinstance.py:1400} INFO - Marking task as FAILED. dag_id=safe_dag, task_id=load, execution_date=20240315T000000, start_date=20240315T000002, end_date=20240315T000009
$$, '{"source": "w3.log"}');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "FAIL", "eventTime": "2024-03-15T00:00:00Z",
  "run": {"runId": "w-ol", "facets": {"errorMessage": {"message": "boom", "programmingLanguage": "python",
  "stackTrace": "Traceback (most recent call last):\n  boom"}}}, "job": {"namespace": "safe", "name": "safe_w_ol"}}',
  '{"source": "w4.json"}');
SELECT e.source, e.level, e.template_id IS NOT NULL AS templated, e.run_id IS NOT NULL AS linked
FROM smartetl.log_event e WHERE e.source LIKE 'w_.%' ORDER BY e.source, e.line_no;
RESET SESSION AUTHORIZATION;
-- the partition belongs to the extension's owner, not to the writer
SELECT c.relowner = x.extowner AS owned_by_extension_owner
FROM pg_class c, pg_extension x WHERE c.relname = 'log_event_202403' AND x.extname = 'smartetl';
-- the partition function is narrow: nothing outside the window
SET SESSION AUTHORIZATION regress_safe_writer;
\set VERBOSITY terse
SELECT smartetl._log_partitions_ensure('1900-01-01', '2199-12-01');
SELECT smartetl._log_partitions_ensure('2099-01-01', '2099-01-02');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;

-- ---- D. deleting a pipeline, and a report over all of time ----------------
SET SESSION AUTHORIZATION regress_safe_admin;
SELECT count(*) > 0 AS has_rollups FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'safe_b';
DELETE FROM smartetl.pipeline WHERE name IN ('safe_b', 'safe_a');
SELECT (SELECT count(*) FROM smartetl.kpi_hourly h WHERE NOT EXISTS
           (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = h.pipeline_id)) AS orphan_hours,
       (SELECT count(*) FROM smartetl.kpi_daily d WHERE NOT EXISTS
           (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = d.pipeline_id)) AS orphan_days;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_safe_reader;
SET statement_timeout = '10min';  -- a guard only: the assertion is the chart's size
-- (one column per month from 0001 to 9999 would be 108,000 columns)
SELECT length(r) > 0 AS has_report,
       (length(r) - length(replace(r, '<g class="col">', ''))) / length('<g class="col">') < 1000 AS bounded
FROM (SELECT smartetl.report_html('0001-01-01', '9999-01-01') AS r) s;
RESET statement_timeout;
RESET SESSION AUTHORIZATION;

-- ---- E. retention by a non-superuser admin --------------------------------
SET SESSION AUTHORIZATION regress_safe_writer;
SELECT * FROM smartetl.drop_log_partitions('2024-04-01');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_safe_admin;
SELECT * FROM smartetl.drop_log_partitions('2024-04-01');
SELECT count(*) FROM smartetl.log_event WHERE source LIKE 'w_.%';
RESET SESSION AUTHORIZATION;

DELETE FROM smartetl.pipeline WHERE name LIKE 'safe\_%';
DELETE FROM smartetl.ingest_reject WHERE source LIKE 'safe-%';
DROP FUNCTION runs_of(text);
DROP ROLE regress_safe_writer, regress_safe_admin, regress_safe_reader;
