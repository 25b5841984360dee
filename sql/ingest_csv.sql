-- csv: RFC 4180, header recognition, mapping, timestamps, statuses, idempotency.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

CREATE VIEW runs AS
SELECT p.namespace, p.name AS pipeline, r.external_id, r.attempt, r.status,
       r.started_at, r.ended_at, r.duration, r.rows_written, r.host, r.error_message, r.attrs
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id);

-- quotes, doubled quotes, an embedded newline and CRLF line ends
SELECT * FROM smartetl.ingest('csv',
  E'job_name,run_id,start_time,end_time,status,rows,error\r\n' ||
  E'load_orders,101,2024-05-01 00:00:00,2024-05-01 00:05:00,ok,1200,\r\n' ||
  E'load_orders,102,2024-05-02 00:00:00,2024-05-02 00:07:30.25,ERROR,,"timeout, ""db"" said:\r\nconnection reset"\r\n' ||
  E'load_orders,103,2024-05-03T00:00:00Z,,running,,\r\n');
SELECT pipeline, external_id, status, started_at, ended_at, duration, rows_written, error_message
FROM runs ORDER BY external_id;

-- the same payload again changes nothing
SELECT * FROM smartetl.ingest('csv',
  E'job_name,run_id,start_time,end_time,status,rows,error\r\n' ||
  E'load_orders,101,2024-05-01 00:00:00,2024-05-01 00:05:00,ok,1200,\r\n' ||
  E'load_orders,102,2024-05-02 00:00:00,2024-05-02 00:07:30.25,ERROR,,"timeout, ""db"" said:\r\nconnection reset"\r\n' ||
  E'load_orders,103,2024-05-03T00:00:00Z,,running,,\r\n');

-- later state wins (running -> failed) ...
SELECT * FROM smartetl.ingest('csv',
  E'job_name,run_id,start_time,end_time,status,error\nload_orders,103,2024-05-03T00:00:00Z,2024-05-03T00:02:00Z,failed,disk full\n');
-- ... but a replayed 'running' never reopens a finished run
SELECT * FROM smartetl.ingest('csv', E'job_name,run_id,status\nload_orders,103,running\n');
SELECT external_id, status, duration, error_message FROM runs WHERE external_id = '103';

-- in one payload, the later line wins
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\ndedupe,1,running\ndedupe,1,success\n');
SELECT pipeline, external_id, status FROM runs WHERE pipeline = 'dedupe';

-- attempts are separate runs
SELECT * FROM smartetl.ingest('csv', E'dag_id,run_id,try_number,state\nretry_dag,r1,1,up_for_retry\nretry_dag,r1,2,success\n');
SELECT pipeline, external_id, attempt, status FROM runs WHERE pipeline = 'retry_dag' ORDER BY attempt;

-- other delimiters, recognised header names, unmapped columns kept in attrs
SELECT * FROM smartetl.ingest('csv',
  E'Pipeline;Start Time;Elapsed;Result;Host;team\nnightly_dbt;2024-05-01 02:00:00;00:12:30;Succeeded;etl-1;finance\n',
  '{"delimiter": ";"}');
SELECT * FROM smartetl.ingest('csv', E'task\tstarted_at\tduration\tstatus\nshell_copy\t1714528800\t90\tdone\n',
  '{"delimiter": "\t"}');
SELECT pipeline, started_at, duration, status, host, attrs FROM runs
WHERE pipeline IN ('nightly_dbt', 'shell_copy') ORDER BY 1;

-- explicit mapping, namespace, status_map, epoch milliseconds, time zone
SELECT * FROM smartetl.ingest('csv',
  E'flow,exec,begin_ms,end_local,outcome\nspark_agg,e1,1714521600000,2024-05-01 02:10:00,timed_out\nspark_agg,e2,1714525200000,2024-05-01 03:05:00,KILL\n',
  '{"namespace": "spark", "timezone": "Europe/Paris",
    "columns": {"pipeline": "flow", "external_id": "exec", "started_at": "begin_ms",
                "ended_at": "end_local", "status": "outcome"},
    "status_map": {"timed_out": "failed", "KILL": "cancelled"}}');
SELECT namespace, pipeline, external_id, status, started_at, ended_at, duration FROM runs
WHERE namespace = 'spark' ORDER BY external_id;

-- epoch in microseconds from a custom origin (the Google Borg trace convention)
SELECT * FROM smartetl.ingest('csv', E'job,start_us,end_us,status\nborg_1,600000000,660500000,FINISH\n',
  '{"columns": {"started_at": "start_us", "ended_at": "end_us"}, "epoch_unit": "us",
    "epoch_origin": "2011-05-01 22:50:00+00"}');
SELECT pipeline, started_at, ended_at, duration FROM runs WHERE pipeline = 'borg_1';

-- durations in several notations, and a unit for bare numbers
SELECT * FROM smartetl.ingest('csv',
  E'job,started_at,duration,status\nd,2024-01-01 00:00:00,PT1M30S,ok\nd,2024-01-02 00:00:00,2 hours,ok\nd,2024-01-03 00:00:00,1500,ok\n',
  '{"duration_unit": "ms"}');
SELECT started_at::date, duration FROM runs WHERE pipeline = 'd' ORDER BY 1;

-- no run id: identity is pipeline + start time
SELECT * FROM smartetl.ingest('csv', E'job,start,status\ncron_x,2024-05-01 00:00:00,running\ncron_x,2024-05-01 01:00:00,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,start,status,error\ncron_x,2024-05-01 00:00:00,failed,exit 2\n');
SELECT started_at, status, error_message FROM runs WHERE pipeline = 'cron_x' ORDER BY 1;

-- a constant pipeline name from options; quoted empty string vs missing value
SELECT * FROM smartetl.ingest('csv', E'run_id,status,host,error\nk1,failed,"",\n', '{"pipeline": "from_options"}');
SELECT pipeline, host = '' AS host_is_empty_string, error_message IS NULL AS error_is_null FROM runs
WHERE pipeline = 'from_options';

-- task runs link to their parent, even when the child arrives first
SELECT * FROM smartetl.ingest('csv', E'job,run_id,parent_run_id,status\ndag_a.t1,c1,p1,success\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\ndag_a,p1,success\n');
SELECT c.external_id AS child, p.external_id AS parent
FROM smartetl.run c JOIN smartetl.run p ON p.run_id = c.parent_run_id;
-- the parent stored first, its children later: linked within the namespace only;
-- when run ids repeat across pipelines the child's parent_pipeline (an extra
-- column, kept in attrs) decides, else the first stored run of that id
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,status\nlink_a,x1,success\nlink_b,x1,success\n',
                                     '{"namespace": "links"}');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,parent_run_id,parent_pipeline,status\nlink_a.t,t1,x1,link_b,success\n',
                                     '{"namespace": "links"}');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,parent_run_id,status\nlink_a.u,u1,x1,success\n',
                                     '{"namespace": "links"}');
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,parent_run_id,status\nlink_other.t,o1,x1,success\n',
                                     '{"namespace": "links_other"}');
SELECT cp.namespace, c.external_id AS child, pp.name AS parent_pipeline
FROM smartetl.run c JOIN smartetl.pipeline cp USING (pipeline_id)
LEFT JOIN smartetl.run p ON p.run_id = c.parent_run_id LEFT JOIN smartetl.pipeline pp ON pp.pipeline_id = p.pipeline_id
WHERE cp.namespace LIKE 'links%' AND c.parent_external_id IS NOT NULL ORDER BY 1, 2;

-- a batch larger than its memory budget spills to disk and is read back
SET maintenance_work_mem = '1MB';
SET work_mem = '64kB';
SELECT * FROM smartetl.ingest('csv', (SELECT E'job,run_id,start,status,rows\n' ||
  string_agg(format('spill_%s,%s,2024-04-01 00:00:00+00,%s,%s', g % 3, g, CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'ok' END, g), E'\n')
  FROM generate_series(1, 30000) g));
SELECT * FROM smartetl.ingest('csv', (SELECT E'job,run_id,start,status,rows\n' ||
  string_agg(format('spill_%s,%s,2024-04-01 00:00:00+00,%s,%s', g % 3, g, CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'ok' END, g + 1), E'\n')
  FROM generate_series(1, 30000) g));
SELECT pipeline, count(*), count(*) FILTER (WHERE status = 'failed') AS failed, sum(rows_written)
FROM runs WHERE pipeline LIKE 'spill\_%' GROUP BY 1 ORDER BY 1;
RESET maintenance_work_mem;
RESET work_mem;

-- pipelines were created on first sight
SELECT namespace, name FROM smartetl.pipeline WHERE name NOT LIKE 'spill\_%' ORDER BY namespace, name;
DROP VIEW runs;
