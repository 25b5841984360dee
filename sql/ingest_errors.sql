-- Bad input: clear errors naming the line and column, nothing half-stored.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
CREATE FUNCTION run_count() RETURNS bigint LANGUAGE sql AS
  $$SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name IN ('ok_job', 'good', 'bad')$$;
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\nok_job,1,success\n');

-- a malformed value on line 3 stops the call: line 2 is not stored either
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,status\ngood,1,2024-05-01,ok\nbad,2,2024-13-45,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status,rows\ngood,1,ok,10\nbad,2,ok,ten\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\ngood,1,ok\nbad,2,exploded\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nbad,2,2024-05-02,2024-05-01,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status,duration\nbad,2,ok,-5\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status,attempt\nbad,2,ok,first\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\ngood,1,ok\nbad,2\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\ngood,1,ok\nbad,"2,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\nbad,2 "x",ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\nbad,"2"x,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,status\n,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,status\nno_identity,ok\n');
SELECT run_count();

-- header problems
SELECT * FROM smartetl.ingest('csv', E'job,run_id\nx,1\n');
SELECT * FROM smartetl.ingest('csv', E'run_id,status\n1,ok\n');
SELECT * FROM smartetl.ingest('csv', E'job,status\nx,ok\n', '{"columns": {"external_id": "missing_col"}}');
SELECT * FROM smartetl.ingest('csv', E'job,status\nx,ok\n', '{"columns": {"colour": "job"}}');

-- empty input, header only, blank lines
SELECT * FROM smartetl.ingest('csv', '');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\n');
SELECT * FROM smartetl.ingest('jsonl', E'\n  \n');
SELECT * FROM smartetl.ingest('logline', '', '{"log_format": "<Level> <Content>"}');

-- unknown format, unknown or ill-typed options
SELECT * FROM smartetl.ingest('xml', 'x');
SELECT * FROM smartetl.ingest('csv', 'x', '{"delimter": ";"}');
SELECT * FROM smartetl.ingest('jsonl', 'x', '{"delimiter": ";"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"delimiter": ";;"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"delimiter": "\""}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"header": "yes"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"header": false}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"on_error": "ignore"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"timezone": "Mars/Olympus"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"epoch_unit": "days"}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"max_line_bytes": 0}');
SELECT * FROM smartetl.ingest('csv', 'x', '{"status_map": ["ok"]}');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\nx,1,meh\n', '{"status_map": {"meh": "so-so"}}');
SELECT * FROM smartetl.ingest('csv', 'x', '[1, 2]');
SELECT * FROM smartetl.ingest('logline', 'x');

-- a line longer than max_line_bytes
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\n' || repeat('x', 100) || E',1,ok\n', '{"max_line_bytes": 64}');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\nshort,1,ok\n' || repeat('x', 100) || E',2,ok\n',
  '{"max_line_bytes": 64, "on_error": "quarantine", "source": "long"}');
SELECT line_no, raw, reason FROM smartetl.ingest_reject WHERE source = 'long';

-- quarantine: good rows stored, each bad one kept with line, raw text and reason
SELECT * FROM smartetl.ingest('csv',
  E'job,run_id,start,status,rows\nqc,1,2024-05-01,ok,1\nqc,2,someday,ok,2\nqc,3,2024-05-03,ok,-3\nqc,4\nqc,5,2024-05-05,failed,5\n',
  '{"on_error": "quarantine", "source": "q.csv"}');
SELECT line_no, field, raw, reason FROM smartetl.ingest_reject WHERE source = 'q.csv' ORDER BY line_no;
SELECT external_id, status FROM smartetl.run WHERE external_id IN ('1','2','3','4','5')
  AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'qc') ORDER BY 1;

-- invalid UTF-8 and NUL bytes in a server-side file
SELECT lo_from_bytea(0, convert_to(E'job,run_id,status\ngood,1,ok\n', 'UTF8') || '\xfffe2c312c6f6b0a'::bytea) AS lo \gset
SELECT lo_export(:lo, '/tmp/smartetl_bad_utf8.csv');
SELECT * FROM smartetl.ingest_file('/tmp/smartetl_bad_utf8.csv', 'csv');
SELECT lo_unlink(:lo);
SELECT lo_from_bytea(0, convert_to(E'job,run_id,status\ngood,1,ok\nnul', 'UTF8') || '\x002c322c6f6b0a'::bytea) AS lo \gset
SELECT lo_export(:lo, '/tmp/smartetl_nul.csv');
SELECT * FROM smartetl.ingest_file('/tmp/smartetl_nul.csv', 'csv');
SELECT * FROM smartetl.ingest_file('/tmp/smartetl_nul.csv', 'csv', '{"on_error": "quarantine", "source": "nul"}');
SELECT line_no, raw, reason FROM smartetl.ingest_reject WHERE source = 'nul';
SELECT lo_unlink(:lo);
SELECT * FROM smartetl.ingest_file('/tmp/does/not/exist.csv', 'csv');

-- a writer without pg_read_server_files cannot read server files; with it, it can
SET client_min_messages = warning;
CREATE ROLE regress_file_writer LOGIN IN ROLE smartetl_writer;
RESET client_min_messages;
SELECT lo_from_bytea(0, convert_to(E'job,run_id,status\nfrom_file,1,ok\n', 'UTF8')) AS lo \gset
SELECT lo_export(:lo, '/tmp/smartetl_writer_file.csv');
SELECT lo_unlink(:lo);
SET SESSION AUTHORIZATION regress_file_writer;
SELECT * FROM smartetl.ingest_file('/etc/passwd', 'csv');
SELECT * FROM smartetl.ingest_file('/tmp/smartetl_writer_file.csv', 'csv');
SELECT (smartetl.ingest('csv', E'job,run_id,status\nby_writer,1,ok\n')).inserted;
RESET SESSION AUTHORIZATION;
GRANT pg_read_server_files TO regress_file_writer;
SET SESSION AUTHORIZATION regress_file_writer;
SELECT * FROM smartetl.ingest_file('/tmp/smartetl_writer_file.csv', 'csv');
SELECT r.external_id, r.status FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'from_file';
RESET SESSION AUTHORIZATION;
DROP ROLE regress_file_writer;
