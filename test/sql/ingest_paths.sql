-- Documented ingest paths no other test walks, each against an oracle
-- written here: dry_run for every run format (it reports what the real call
-- then does, and stores nothing), the csv quote option, extra_columns (attrs
-- or ignore) for csv and jsonl, empty input for openlineage, dbt and
-- airflow, and NUL bytes and invalid UTF-8 in server-side files of every
-- non-CSV format (an error naming the line, or a reject with on_error
-- quarantine).  The files go to $SMARTETL_TEST_TMP (scripts/test.sh makes
-- one that it removes) or /tmp, under names unique to this session, and
-- are removed at the end.
\set ON_ERROR_STOP 1
\getenv tmpdir SMARTETL_TEST_TMP
\if :{?tmpdir}
\else
\set tmpdir /tmp
\endif
SET client_min_messages = warning;
SET timezone = 'UTC';
BEGIN;
SELECT plan(40);

-- what ingest stores, as one row of counts
CREATE FUNCTION pg_temp.stored() RETURNS text LANGUAGE sql AS $$
    SELECT format('runs %s, pipelines %s, log events %s, templates %s, rejects %s, hourly rollups %s',
                  (SELECT count(*) FROM smartetl.run), (SELECT count(*) FROM smartetl.pipeline),
                  (SELECT count(*) FROM smartetl.log_event), (SELECT count(*) FROM smartetl.template),
                  (SELECT count(*) FROM smartetl.ingest_reject), (SELECT count(*) FROM smartetl.kpi_hourly))
$$;
-- an error as "SQLSTATE: message (detail)", or "no error"
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || coalesce(' (' || nullif(det, '') || ')', '');
END $$;

CREATE TEMP TABLE doc (format text, payload text, options jsonb);
INSERT INTO doc VALUES
  ('csv', E'job,run_id,start_time,end_time,status,rows,error\n'
          'tap_dry_csv,1,2025-01-06 00:00:00,2025-01-06 00:05:00,ok,10,\n'
          'tap_dry_csv,2,2025-01-07 00:00:00,2025-01-07 00:07:00,failed,,disk full on /dev/sdb1\n'
          'tap_dry_csv,3,not a time,2025-01-08 00:01:00,ok,1,\n', '{"on_error": "quarantine"}'),
  ('jsonl', E'{"job": "tap_dry_jsonl", "run_id": "1", "status": "ok", "start": "2025-01-06T01:00:00Z", "end": "2025-01-06T01:02:00Z"}\n'
            '{"job": "tap_dry_jsonl", "run_id": "2", "status": "failed", "start": "2025-01-06T02:00:00Z", "error": "timeout after 30 s"}\n'
            '{"job": "tap_dry_jsonl", "run_id": "3", "status": "exploded"}\n', '{"on_error": "quarantine"}'),
  ('openlineage', E'{"eventType": "COMPLETE", "eventTime": "2025-01-06T01:00:00Z", "run": {"runId": "tap-ol-0"}, "job": {"namespace": "tap_dry", "name": "ol.load"}}\n'
                  '{"eventType": "FAIL", "eventTime": "2025-01-06T02:05:00Z", "run": {"runId": "tap-ol-1", "facets": {"errorMessage": {"message": "division by zero", "programmingLanguage": "python", "stackTrace": "Traceback (most recent call last):\\n  File \\"t.py\\", line 3"}}}, "job": {"namespace": "tap_dry", "name": "ol.load"}}\n', '{}'),
  ('dbt', $${"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
             "dbt_version": "1.9.0", "generated_at": "2025-01-06T03:00:10Z", "invocation_id": "tap-dry-inv"},
             "elapsed_time": 10.5,
             "results": [{"status": "success", "unique_id": "model.tapdry.orders", "execution_time": 4.2,
                          "timing": [{"name": "execute", "started_at": "2025-01-06T03:00:01Z", "completed_at": "2025-01-06T03:00:05Z"}],
                          "adapter_response": {"rows_affected": 12}, "message": "SELECT 12"},
                         {"status": "error", "unique_id": "model.tapdry.revenue", "execution_time": 0.3, "timing": [],
                          "adapter_response": {}, "message": "Database Error: division by zero"}]}$$, '{}'),
  ('airflow', $$[2025-01-06T00:00:02.130+0000] {taskinstance.py:1361} INFO - Starting attempt 1 of 4
[2025-01-06T00:00:02.300+0000] {task_command.py:415} INFO - Running <TaskInstance: tapdry.extract scheduled__2025-01-05T00:00:00+00:00 [running]> on host worker-7
[2025-01-06T00:00:04.000+0000] {taskinstance.py:1937} ERROR - Task failed with exception
Traceback (most recent call last):
  File "/opt/dags/extract.py", line 9, in run
ValueError: bad row 17
[2025-01-06T00:00:05.000+0000] {taskinstance.py:1400} INFO - Marking task as FAILED. dag_id=tapdry, task_id=extract, execution_date=20250105T000000, start_date=20250106T000002, end_date=20250106T000005$$, '{}'),
  ('airflow', $${"dag_runs": [{"dag_id": "tapdry_rest", "dag_run_id": "r1", "state": "success", "start_date": "2025-01-06T00:00:00Z", "end_date": "2025-01-06T00:01:00Z"},
                              {"dag_id": "tapdry_rest", "dag_run_id": "r2", "state": "failed", "start_date": "2025-01-07T00:00:00Z", "end_date": "2025-01-07T00:01:00Z"}]}$$, '{}');

-- dry_run: the counts the real call then returns, and nothing stored
CREATE TEMP TABLE dry AS
SELECT d.format, d.payload, d.options, pg_temp.stored() AS before,
       (smartetl.ingest(d.format, d.payload, d.options || '{"dry_run": true}')).* FROM doc d;
SELECT is(pg_temp.stored(), (SELECT min(before) FROM dry), 'dry_run stores nothing, in any run format (' || pg_temp.stored() || ')');
SELECT is((SELECT count(DISTINCT before) FROM dry), 1::bigint, 'nothing was stored between the dry runs either');
SELECT is((SELECT row(r.*)::text FROM smartetl.ingest(d.format, d.payload, d.options) r),
          row(d.inserted, d.updated, d.unchanged, d.rejected)::text,
          d.format || ': dry_run reported what the real ingest does (' || row(d.inserted, d.updated, d.unchanged, d.rejected)::text || ')')
FROM dry d ORDER BY d.format, d.payload;
SELECT ok(bool_and(inserted > 0), 'every dry run had something to insert') FROM dry;
SELECT is((SELECT count(*) FROM smartetl.ingest_reject WHERE format IN ('csv', 'jsonl')),
          (SELECT sum(rejected)::bigint FROM dry), 'the real calls stored the rejects the dry runs reported');

-- dry_run where the real call updates: a run given by several records of
-- one payload (applied in line order, as if in separate calls), and a run
-- already stored.
CREATE TEMP TABLE dry_update (label text, format text, payload text);
INSERT INTO dry_update VALUES
  ('csv: a running record then its end, in one payload', 'csv',
   E'job,run_id,start_time,end_time,status\ntap_dry_upd,1,2025-01-06 00:00:00,,running\ntap_dry_upd,1,2025-01-06 00:00:00,2025-01-06 00:05:00,ok\n'),
  ('openlineage: START then FAIL of one run, in one payload', 'openlineage',
   E'{"eventType": "START", "eventTime": "2025-01-06T03:00:00Z", "run": {"runId": "tap-ol-upd"}, "job": {"namespace": "tap_dry", "name": "ol.upd"}}\n'
   '{"eventType": "FAIL", "eventTime": "2025-01-06T03:05:00Z", "run": {"runId": "tap-ol-upd"}, "job": {"namespace": "tap_dry", "name": "ol.upd"}}\n'),
  ('csv: a stored run that failed after all', 'csv',
   E'job,run_id,start_time,end_time,status\ntap_dry_csv,1,2025-01-06 00:00:00,2025-01-06 00:06:00,failed\n');
SELECT is((SELECT row(r.*)::text FROM smartetl.ingest(u.format, u.payload) r), d.counts,
          u.label || ': dry_run reported what the real ingest does (' || d.counts || ')')
FROM dry_update u
CROSS JOIN LATERAL (SELECT row(r.*)::text AS counts FROM smartetl.ingest(u.format, u.payload, '{"dry_run": true}') r) d
ORDER BY u.label;

-- "dry_run": "parse" only parses and validates: every valid record counts
-- as an insert, nothing is looked up or stored; other values are refused
SELECT is((SELECT row(r.*)::text FROM smartetl.ingest(u.format, u.payload, '{"dry_run": "parse"}') r), '(2,0,0,0)',
          'dry_run "parse" counts both records of one run as inserts')
FROM dry_update u WHERE u.label LIKE 'csv: a running record%';
SELECT is(pg_temp.error_of($$SELECT smartetl.ingest('csv', E'job,run_id,status\nx,1,ok\n', '{"dry_run": "yes"}')$$),
          '22023: option "dry_run" must be true, false or "parse"', 'another dry_run value is refused, naming the choices');

-- a dry run leaves the caller's subtransactions as they were: a PL/pgSQL
-- block's exception handler still rolls back to its own savepoint
SELECT lives_ok($t$DO $d$ BEGIN
    BEGIN
      PERFORM smartetl.ingest('csv', E'job,run_id,status\ntap_dry_do,1,ok\n', '{"dry_run": true}');
      PERFORM smartetl.ingest('csv', E'job,run_id,status\ntap_dry_do,2,ok\n');
      PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
  END $d$$t$, 'a dry run inside a PL/pgSQL block whose handler then runs');
SELECT is((SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'tap_dry_do'),
          0::bigint, 'the handler rolled back the real ingest after the dry run, and the dry run left nothing');

-- the csv quote option: another quote byte, doubled inside a field, and the
-- usual one then an ordinary character
SELECT is((SELECT row(r.*)::text FROM smartetl.ingest('csv',
              E'job,run_id,status,error\ntap_quote,1,failed,''disk full, "sdb1" is at 100 %, it''''s over''\n',
              '{"quote": "''"}') r), '(1,0,0,0)', 'csv with quote '''' ingests');
SELECT is((SELECT error_message FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'tap_quote'),
          'disk full, "sdb1" is at 100 %, it''s over', 'the quoted field keeps its comma, its double quotes and its doubled quote');
SELECT is(pg_temp.error_of($$SELECT smartetl.ingest('csv', E'job,run_id,status\nx,1,ok\n', '{"quote": "ab"}')$$) LIKE '22023: %quote%',
          true, 'a quote of more than one byte is refused');

-- extra_columns: columns that feed no field go to attrs, or nowhere
SELECT smartetl.ingest('csv', E'job,run_id,status,ticket,team\ntap_extra_csv,1,ok,OPS-17,data\n');
SELECT smartetl.ingest('csv', E'job,run_id,status,ticket,team\ntap_extra_csv_ignored,1,ok,OPS-17,data\n', '{"extra_columns": "ignore"}');
SELECT smartetl.ingest('jsonl', E'{"job": "tap_extra_jsonl", "run_id": "1", "status": "ok", "ticket": {"id": 17, "queue": "OPS"}, "retries_left": 2}\n');
SELECT smartetl.ingest('jsonl', E'{"job": "tap_extra_jsonl_ignored", "run_id": "1", "status": "ok", "ticket": {"id": 17}}\n', '{"extra_columns": "ignore"}');
SELECT results_eq(
    $$SELECT p.name, coalesce(r.attrs, '{}') FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.name LIKE 'tap\_extra\_%' ORDER BY 1$$,
    $$VALUES ('tap_extra_csv', '{"ticket": "OPS-17", "team": "data"}'::jsonb),
             ('tap_extra_csv_ignored', '{}'::jsonb),
             ('tap_extra_jsonl', '{"ticket": {"id": 17, "queue": "OPS"}, "retries_left": 2}'::jsonb),
             ('tap_extra_jsonl_ignored', '{}'::jsonb)$$,
    'extra columns are kept in attrs by default (values as the source typed them), dropped with "ignore"');
SELECT is(pg_temp.error_of($$SELECT smartetl.ingest('csv', E'job,run_id,status\nx,1,ok\n', '{"extra_columns": "keep"}')$$),
          '22023: option "extra_columns" must be "attrs" or "ignore"', 'another extra_columns value is refused');

-- empty input (nothing, or only blank lines) is an error that stores nothing
SELECT is(pg_temp.error_of(format('SELECT smartetl.ingest(%L, %L)', f, p)) ~ ('^[0-9A-Z]{5}: (' || f || ' input holds no records|invalid ' || f || ' input on line [0-9]+)'),
          true, f || ': empty input' || CASE WHEN p = '' THEN '' ELSE ' (blank lines)' END || ' is an error naming the format')
FROM unnest(ARRAY['openlineage', 'dbt', 'airflow']) f, unnest(ARRAY['', E'\n  \n']) p;

-- NUL bytes and invalid UTF-8 in files: an error naming the line and the
-- byte (the first bad one, just after the line's prefix)
\set prefix '{"job": "tap_bytes", "run_id": "2", "status": "ok", "e": "'
SELECT octet_length(:'prefix') + 1 AS bad_byte \gset
SELECT :'tmpdir' || '/smartetl_tap_' || pg_backend_pid() || '_' || txid_current() AS stem \gset
CREATE TEMP TABLE bad_file (kind text, path text, lo oid);
INSERT INTO bad_file
SELECT k.kind, :'stem' || '_' || k.kind || '.txt',
       lo_from_bytea(0, convert_to(E'{"job": "tap_bytes", "run_id": "1", "status": "ok"}\n' || :'prefix', 'UTF8')
                        || k.bytes || convert_to(E'"}\n', 'UTF8'))
FROM (VALUES ('nul', '\x00'::bytea), ('utf8', '\xfffe'::bytea)) k(kind, bytes);
SELECT lo_export(lo, path) FROM bad_file;
SELECT is(pg_temp.error_of(format('SELECT smartetl.ingest_file(%L, %L, %L)', b.path, f,
                                  CASE f WHEN 'logline' THEN '{"log_format": "<Content>"}' ELSE '{}' END)),
          CASE b.kind WHEN 'nul' THEN '22P02: invalid ' || f || ' input on line 2 (The line contains a NUL byte at byte ' || :bad_byte || '.)'
                      ELSE '22021: invalid ' || f || ' input on line 2 (The line is not valid UTF8 at byte ' || :bad_byte || '.)' END,
          f || ' file with ' || CASE b.kind WHEN 'nul' THEN 'a NUL byte' ELSE 'invalid UTF-8' END || ' on line 2: an error naming the line and byte')
FROM bad_file b, unnest(ARRAY['jsonl', 'logline', 'openlineage', 'dbt', 'airflow']) f
ORDER BY b.kind, f;
SELECT is((SELECT row(r.*)::text FROM bad_file b, smartetl.ingest_file(b.path, 'jsonl', '{"on_error": "quarantine", "source": "tap_bytes"}') r
           WHERE b.kind = 'utf8'), '(1,0,0,1)', 'jsonl with on_error quarantine: the good line stored, the bad one rejected');
SELECT is((SELECT string_agg(line_no || ' ' || reason, '; ') FROM smartetl.ingest_reject WHERE source = 'tap_bytes'),
          '2 line is not valid UTF8 at byte ' || :bad_byte, 'the reject names the line and the byte');
SELECT lo_unlink(lo) FROM bad_file;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', 'rm -f ' || string_agg(quote_literal(path), ' ')) FROM bad_file \gexec

SELECT * FROM finish();
ROLLBACK;
