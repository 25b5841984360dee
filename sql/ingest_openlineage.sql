-- openlineage: RunEvents as runs; out-of-order events converge.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
CREATE VIEW ol_runs AS
SELECT p.namespace, p.name, r.external_id, r.status, r.started_at, r.ended_at, r.duration,
       r.rows_read, r.rows_written, r.bytes, r.error_message, r.parent_external_id
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace LIKE 'ol\_%';

-- COMPLETE before START, in separate calls
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "COMPLETE", "eventTime": "2024-05-01T02:10:00Z",
  "run": {"runId": "r-1"}, "job": {"namespace": "ol_airflow", "name": "etl.load"},
  "outputs": [{"namespace": "pg", "name": "dw.orders", "outputFacets": {"outputStatistics": {"rowCount": 1200, "size": 65536}}},
              {"namespace": "pg", "name": "dw.items", "outputFacets": {"outputStatistics": {"rowCount": 34}}}],
  "inputs": [{"namespace": "s3", "name": "raw/orders.csv", "inputFacets": {"inputStatistics": {"rowCount": 1300}}}],
  "producer": "https://example.com/producer", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "START", "eventTime": "2024-05-01T02:00:00Z",
  "run": {"runId": "r-1"}, "job": {"namespace": "ol_airflow", "name": "etl.load"}}');
SELECT * FROM ol_runs WHERE external_id = 'r-1';

-- the same two events in one payload, in either order, give the same row
SELECT * FROM smartetl.ingest('openlineage', E'{"eventType": "START", "eventTime": "2024-05-02T02:00:00Z", "run": {"runId": "r-2"}, "job": {"namespace": "ol_airflow", "name": "etl.load"}}\n{"eventType": "COMPLETE", "eventTime": "2024-05-02T02:05:00Z", "run": {"runId": "r-2"}, "job": {"namespace": "ol_airflow", "name": "etl.load"}}\n');
SELECT * FROM smartetl.ingest('openlineage', E'{"eventType": "COMPLETE", "eventTime": "2024-05-03T02:05:00Z", "run": {"runId": "r-3"}, "job": {"namespace": "ol_airflow", "name": "etl.load"}}\n{"eventType": "START", "eventTime": "2024-05-03T02:00:00Z", "run": {"runId": "r-3"}, "job": {"namespace": "ol_airflow", "name": "etl.load"}}\n');
SELECT external_id, status, started_at, ended_at, duration FROM ol_runs WHERE external_id IN ('r-2', 'r-3') ORDER BY 1;

-- FAIL with an error facet, a parent run, and an array of events
SELECT * FROM smartetl.ingest('openlineage', $$[
 {"eventType": "START", "eventTime": "2024-05-04T01:00:00Z", "run": {"runId": "dag-run-7"},
  "job": {"namespace": "ol_airflow", "name": "sales_dag"}},
 {"eventType": "FAIL", "eventTime": "2024-05-04T01:03:00Z",
  "run": {"runId": "task-run-9", "facets": {
     "parent": {"run": {"runId": "dag-run-7"}, "job": {"namespace": "ol_airflow", "name": "sales_dag"}},
     "errorMessage": {"message": "division by zero", "programmingLanguage": "python",
                      "stackTrace": "Traceback (most recent call last):\n  File \"t.py\", line 3"}}},
  "job": {"namespace": "ol_airflow", "name": "sales_dag.transform"}}
]$$);
SELECT c.external_id, c.status, c.error_message, p.external_id AS parent,
       (SELECT template FROM smartetl.template t WHERE t.template_id = c.template_id) AS template,
       (SELECT e.level || ' ' || e.component || ': ' || e.message FROM smartetl.log_event e
        WHERE e.run_id = c.run_id) AS stack_trace_event
FROM smartetl.run c JOIN smartetl.run p ON p.run_id = c.parent_run_id
JOIN smartetl.run r ON r.run_id = c.run_id
WHERE c.external_id = 'task-run-9';

-- errors name the line or JSON path
SELECT * FROM smartetl.ingest('openlineage', E'{"eventType": "START",\n "eventTime": "2024-05-01T00:00:00Z",\n "run": {"runId": "x"\n');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "START", "eventTime": "2024-05-01T00:00:00Z", "job": {"namespace": "ol_x", "name": "j"}}');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "EXPLODED", "eventTime": "2024-05-01T00:00:00Z", "run": {"runId": "x"}, "job": {"namespace": "ol_x", "name": "j"}}');
SELECT * FROM smartetl.ingest('openlineage', '{"eventType": "START", "eventTime": "2024-05-01T00:00:00Z", "run": {"runId": "x"}, "job": {"namespace": "ol_x"}}');
SELECT * FROM smartetl.ingest('openlineage', '"just a string"');
DROP VIEW ol_runs;
