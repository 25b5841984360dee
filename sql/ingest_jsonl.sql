-- jsonl: one JSON object per line, same mapping as csv, nested paths, attrs.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

SELECT * FROM smartetl.ingest('jsonl', $$
{"pipeline": "api_sync", "run_id": "a1", "status": "success", "start": "2024-05-01T00:00:00Z", "duration": 12.5, "rows": 10, "env": {"region": "eu"}}

{"pipeline": "api_sync", "run_id": "a2", "status": "FAILED", "start": 1714525200, "error": "HTTP 503 from upstream", "tags": ["x", "y"]}
{"pipeline": "api_sync", "run_id": "a3", "status": "running", "start": "2024-05-01 02:00:00", "rows": null, "host": "w-2"}
$$);
SELECT p.name, r.external_id, r.status, r.started_at, r.duration, r.rows_written, r.host,
       r.error_message, r.attrs
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'api_sync'
ORDER BY r.external_id;

-- nested keys through dotted paths (e.g. Vector / Fluent Bit envelopes)
SELECT * FROM smartetl.ingest('jsonl',
  '{"job": {"name": "vector_job", "ns": "logs"}, "run": {"id": "v1", "state": "ok", "t0": "2024-05-02T10:00:00Z", "t1": "2024-05-02T10:00:42Z"}}',
  '{"columns": {"pipeline": "job.name", "namespace": "job.ns", "external_id": "run.id",
                "status": "run.state", "started_at": "run.t0", "ended_at": "run.t1"}}');
SELECT p.namespace, p.name, r.external_id, r.status, r.duration, r.attrs
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'logs';

-- re-ingest is idempotent; a newer state updates
SELECT * FROM smartetl.ingest('jsonl',
  '{"job": {"name": "vector_job", "ns": "logs"}, "run": {"id": "v1", "state": "ok", "t0": "2024-05-02T10:00:00Z", "t1": "2024-05-02T10:00:42Z"}}',
  '{"columns": {"pipeline": "job.name", "namespace": "job.ns", "external_id": "run.id",
                "status": "run.state", "started_at": "run.t0", "ended_at": "run.t1"}}');
SELECT * FROM smartetl.ingest('jsonl', '{"pipeline": "api_sync", "run_id": "a3", "status": "error", "end": "2024-05-01T02:30:00Z", "error": "killed"}');
SELECT external_id, status, duration, error_message FROM smartetl.run WHERE external_id = 'a3';

-- duplicate keys: the last one wins, as in jsonb
SELECT * FROM smartetl.ingest('jsonl', '{"pipeline": "dup", "run_id": "d", "status": "running", "status": "success"}');
SELECT status FROM smartetl.run WHERE external_id = 'd';

-- errors name the line and what was wrong
SELECT * FROM smartetl.ingest('jsonl', E'{"pipeline": "p", "run_id": "1", "status": "ok"}\n{"pipeline": "p", "run_id": "2", "status": "ok"\n');
SELECT * FROM smartetl.ingest('jsonl', E'["not", "an", "object"]\n');
SELECT * FROM smartetl.ingest('jsonl', E'{"pipeline": "p", "run_id": "1", "status": "ok", "start": "yesterday-ish"}\n');
SELECT * FROM smartetl.ingest('jsonl', E'{"pipeline": "p", "run_id": "1", "status": "ok", "rows": -5}\n');
SELECT * FROM smartetl.ingest('jsonl', E'{"pipeline": "p", "status": "ok"}\n');
SELECT * FROM smartetl.ingest('jsonl', E'{"pipeline": "p", "run_id": "1", "status": "ok", "note": "\\u0000"}\n');
SELECT count(*) AS runs_of_p FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'p';

-- quarantine keeps the good lines and records the bad ones
SELECT * FROM smartetl.ingest('jsonl',
  E'{"pipeline": "q", "run_id": "1", "status": "ok"}\n{"pipeline": "q", "run_id": "2", "status": "meh"}\n{broken\n{"pipeline": "q", "run_id": "3", "status": "failed"}\n',
  '{"on_error": "quarantine", "source": "q.jsonl"}');
SELECT format, source, line_no, field, raw, reason FROM smartetl.ingest_reject WHERE source = 'q.jsonl' ORDER BY line_no;
SELECT external_id, status FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'q' ORDER BY 1;
