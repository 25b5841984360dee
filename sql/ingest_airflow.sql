-- airflow: task logs (markers → runs, every line an event of its run) and
-- the REST API's dagRuns / taskInstances JSON.
SET timezone = 'UTC';
CREATE VIEW af_runs AS
SELECT p.name, r.external_id, r.attempt, r.status, r.started_at, r.ended_at, r.host,
       r.error_message, r.attrs->>'airflow_state' AS airflow_state,
       (SELECT pp.name || ' ' || pr.external_id FROM smartetl.run pr
        JOIN smartetl.pipeline pp USING (pipeline_id) WHERE pr.run_id = r.parent_run_id) AS parent
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'airflow';

-- Airflow 1.10/2.0 shape: comma milliseconds, env vars on their own lines,
-- a failed try (UP_FOR_RETRY) then a successful one in one input
\set retry_log `cat test/data/airflow/retry.log`
SELECT * FROM smartetl.ingest('airflow', :'retry_log', '{"source": "retry.log"}');
SELECT name, external_id, attempt, status, started_at, ended_at, host, error_message, airflow_state
FROM af_runs WHERE name = 'etl.load' ORDER BY attempt;
-- every line belongs to its try; the traceback is part of the ERROR entry
SELECT r.attempt, count(*) AS events, count(*) FILTER (WHERE e.level = 'ERROR') AS errors,
       max(e.attrs->>'continuation_lines') AS longest_continuation
FROM smartetl.log_event e JOIN smartetl.run r USING (run_id)
WHERE e.source = 'retry.log' GROUP BY 1 ORDER BY 1;
-- re-ingest: nothing new
SELECT * FROM smartetl.ingest('airflow', :'retry_log', '{"source": "retry.log"}');

-- Airflow 2.x shape: ISO time with +0000, quoted env vars, exception traceback
SELECT * FROM smartetl.ingest('airflow', $$[2024-05-01T00:00:02.123+0000] {taskinstance.py:1159} INFO - Dependencies all met for dep_context=requeueable deps ti=<TaskInstance: sales.group.extract scheduled__2024-04-30T00:00:00+00:00 map_index=2 [queued]>
[2024-05-01T00:00:02.130+0000] {taskinstance.py:1361} INFO - Starting attempt 3 of 4
[2024-05-01T00:00:02.200+0000] {taskinstance.py:1382} INFO - Executing <Task(PythonOperator): group.extract> on 2024-04-30 00:00:00+00:00
[2024-05-01T00:00:02.300+0000] {task_command.py:415} INFO - Running <TaskInstance: sales.group.extract scheduled__2024-04-30T00:00:00+00:00 map_index=2 [running]> on host worker-7
[2024-05-01T00:00:02.400+0000] {taskinstance.py:1660} INFO - Exporting env vars: AIRFLOW_CTX_DAG_OWNER='data' AIRFLOW_CTX_DAG_ID='sales' AIRFLOW_CTX_TASK_ID='group.extract' AIRFLOW_CTX_EXECUTION_DATE='2024-04-30T00:00:00+00:00' AIRFLOW_CTX_TRY_NUMBER='3' AIRFLOW_CTX_DAG_RUN_ID='scheduled__2024-04-30T00:00:00+00:00'
[2024-05-01T00:00:09.000+0000] {taskinstance.py:1943} ERROR - Task failed with exception
Traceback (most recent call last):
  File "/opt/airflow/dags/sales.py", line 12, in extract
    raise ValueError(f"bad batch {n}")
ValueError: bad batch 4711
[2024-05-01T00:00:09.010+0000] {taskinstance.py:1400} INFO - Marking task as FAILED. dag_id=sales, task_id=group.extract, map_index=2, execution_date=20240430T000000, start_date=20240501T000002, end_date=20240501T000009
[2024-05-01T00:00:09.100+0000] {local_task_job_runner.py:228} INFO - Task exited with return code 1
$$, '{"source": "sales.log"}');
SELECT name, external_id, attempt, status, started_at, ended_at, host, error_message, airflow_state
FROM af_runs WHERE name LIKE 'sales.%';
-- the error's template (written out, not the miner's own answer) groups
-- such failures whatever the batch number
SELECT t.template FROM smartetl.template t JOIN smartetl.run r USING (template_id)
JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'sales.group.extract';

-- a log still being written: the try is running
SELECT * FROM smartetl.ingest('airflow', $$[2024-05-02T00:00:02.130+0000] {taskinstance.py:1361} INFO - Starting attempt 1 of 1
[2024-05-02T00:00:02.300+0000] {task_command.py:415} INFO - Running <TaskInstance: sales.load scheduled__2024-05-01T00:00:00+00:00 [running]> on host worker-2
$$, '{"source": "load.log"}');
SELECT name, status, started_at, ended_at FROM af_runs WHERE name = 'sales.load';

-- REST API: DAG runs, then task instances; parents resolve within the DAG
-- (other_dag has a DAG run with the same run id)
\set dagruns `cat test/data/airflow/dagruns.json`
\set tis `cat test/data/airflow/tis.json`
SELECT * FROM smartetl.ingest('airflow', :'dagruns');
SELECT * FROM smartetl.ingest('airflow', :'tis');
SELECT name, external_id, attempt, status, started_at, ended_at, host, error_message, airflow_state, parent
FROM af_runs WHERE name LIKE 'the_best_movies%' OR name = 'other_dag' ORDER BY name, external_id;
-- a task instance not started yet is not a run
SELECT count(*) FROM af_runs WHERE name = 'the_best_movies.later';
-- the same list response again: unchanged
SELECT * FROM smartetl.ingest('airflow', :'tis');
-- JSON lines of responses, and a bare array of task instances
SELECT * FROM smartetl.ingest('airflow', E'{"dag_runs": [{"dag_id": "jl", "dag_run_id": "r1", "state": "success", "start_date": "2024-01-01T00:00:00Z", "end_date": "2024-01-01T00:01:00Z"}]}\n{"dag_runs": [{"dag_id": "jl", "dag_run_id": "r2", "state": "failed", "start_date": "2024-01-02T00:00:00Z", "end_date": "2024-01-02T00:01:00Z"}]}');
SELECT * FROM smartetl.ingest('airflow', '[{"dag_id": "jl", "task_id": "t", "dag_run_id": "r2", "state": "up_for_retry", "try_number": 1, "start_date": "2024-01-02T00:00:00Z", "end_date": "2024-01-02T00:00:30Z"}]');
SELECT name, external_id, attempt, status, airflow_state, parent FROM af_runs WHERE name LIKE 'jl%' ORDER BY 1, 2;

-- errors name the line and the field; nothing is stored
SELECT * FROM smartetl.ingest('airflow', '{"dag_runs": [{"dag_id": "x", "dag_run_id": "r", "state": "exploded", "start_date": "2024-01-01T00:00:00Z"}]}');
SELECT * FROM smartetl.ingest('airflow', '{"dag_runs": [{"dag_id": "x", "dag_run_id": "r", "state": "success", "start_date": "yesterday-ish"}]}');
SELECT * FROM smartetl.ingest('airflow', '{"dag_runs": {"dag_id": "x"}}');
SELECT * FROM smartetl.ingest('airflow', E'{"dag_runs": [\n{"dag_id": "x", "dag_run_id": "r",\n');
SELECT * FROM smartetl.ingest('airflow', '42');
SELECT * FROM smartetl.ingest('airflow', 'not an airflow log line');
SELECT count(*) FROM af_runs WHERE name = 'x';
-- quarantine keeps the good documents
SELECT * FROM smartetl.ingest('airflow', E'{"dag_runs": [{"dag_id": "q", "dag_run_id": "ok", "state": "success", "start_date": "2024-01-01T00:00:00Z"}]}\n{"dag_runs": [\n', '{"on_error": "quarantine"}');
SELECT line_no, reason FROM smartetl.ingest_reject WHERE format = 'airflow';
SELECT name, external_id, status FROM af_runs WHERE name = 'q';
DROP VIEW af_runs;
