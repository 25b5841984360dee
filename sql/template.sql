-- Template mining: templates, stable ids, persistence, ingestion fills template_id.
SET timezone = 'UTC';

SELECT smartetl.log_template('Connection from 10.0.3.12:5432 closed after 1532 ms');
SELECT smartetl.log_template('Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6');
SELECT smartetl.log_template('Task attempt_2015_0001_m_000002_0 failed: java.io.IOException: Disk quota exceeded on /data/tmp/spill_17.out');
SELECT smartetl.log_template('GET https://api.example.com/v1/orders?page=3 returned 503 in 2.5s');
SELECT smartetl.log_template('Job 9f1c2a4e-8d3b-4c6e-9a7f-1b2c3d4e5f60 finished at 2024-05-01T02:00:00Z');

-- the same shape gets the same id; ids are dense from 1
SELECT smartetl.log_template_id('Connection from 10.0.3.12:5432 closed after 1532 ms') AS a,
       smartetl.log_template_id('Connection from 192.168.1.7:6432 closed after 12 ms') AS b,
       smartetl.log_template_id('Received block blk_42 of size 7 from /10.0.0.1') AS c;
SELECT template_id, template, occurrences FROM smartetl.template ORDER BY template_id;

-- state lives in the table: a new session (cache rebuilt) gives the same ids
\c
SET timezone = 'UTC';
SELECT smartetl.log_template_id('Connection from 172.16.0.2:5432 closed after 99 ms') AS same_as_before,
       smartetl.log_template_id('Job 00000000-0000-0000-0000-000000000000 finished at 2025-01-01T00:00:00Z') AS job;

-- a template learned in a rolled-back transaction is forgotten, its id reused
BEGIN;
SELECT smartetl.log_template_id('Checkpoint starting: time') AS in_rolled_back_txn;
ROLLBACK;
SELECT smartetl.log_template_id('Vacuum of table orders skipped: lock not available') AS next_id;
SELECT count(*) AS templates, max(template_id) AS max_id FROM smartetl.template;

-- ingestion fills template_id on run errors and log events
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status,error\n' ||
  E'tpl_job,1,failed,Timeout after 3600 seconds waiting for lock 77\n' ||
  E'tpl_job,2,failed,Timeout after 120 seconds waiting for lock 9\n' ||
  E'tpl_job,3,success,\n');
SELECT r.external_id, t.template FROM smartetl.run r LEFT JOIN smartetl.template t USING (template_id)
WHERE r.pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'tpl_job') ORDER BY 1;

SELECT * FROM smartetl.ingest('logline', $$2024-05-01 10:00:00 ERROR Disk quota exceeded on /data/a.csv
2024-05-01 10:00:01 ERROR Disk quota exceeded on /data/b/c.csv
  at Loader.write(Loader.java:12)
2024-05-01 10:00:02 INFO Loaded 120 rows in 35 ms
$$, '{"log_format": "<Date> <Time> <Level> <Content>", "source": "tpl.log"}');
SELECT e.line_no, t.template, e.template_id = t.template_id AS linked
FROM smartetl.log_event e JOIN smartetl.template t USING (template_id)
WHERE e.source = 'tpl.log' ORDER BY 1;
SELECT template, occurrences, first_seen, last_seen FROM smartetl.template
WHERE template LIKE 'Disk quota%';
SELECT template, occurrences FROM smartetl.template WHERE template LIKE 'Timeout%';

-- a dry run learns nothing
SELECT count(*) AS before FROM smartetl.template \gset
SELECT (smartetl.ingest('logline', E'2024-05-01 10:00:00 ERROR Something entirely different happened here\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "dry_run": true}')).inserted;
SELECT count(*) = :before AS unchanged FROM smartetl.template;
