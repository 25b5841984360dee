-- Template mining: templates, stable ids, persistence, ingestion fills template_id.
-- Ids are printed relative to the sequence's position at the start, so this
-- file does not depend on what earlier files learned.
SET timezone = 'UTC';
SELECT coalesce((SELECT last_value FROM smartetl.template_id_seq WHERE is_called), 0) AS base \gset

SELECT smartetl.log_template('Connection from 10.0.3.12:5432 closed after 1532 ms');
SELECT smartetl.log_template('Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6');
SELECT smartetl.log_template('Task attempt_2015_0001_m_000002_0 failed: java.io.IOException: Disk quota exceeded on /data/tmp/spill_17.out');
SELECT smartetl.log_template('GET https://api.example.com/v1/orders?page=3 returned 503 in 2.5s');
SELECT smartetl.log_template('Job 9f1c2a4e-8d3b-4c6e-9a7f-1b2c3d4e5f60 finished at 2024-05-01T02:00:00Z');

-- the same shape gets the same id, another shape another id
SELECT smartetl.log_template_id('Connection from 10.0.3.12:5432 closed after 1532 ms') - :base AS a,
       smartetl.log_template_id('Connection from 192.168.1.7:6432 closed after 12 ms') - :base AS b,
       smartetl.log_template_id('Received block blk_42 of size 7 from /10.0.0.1') - :base AS c;
SELECT template_id - :base AS id, template, occurrences FROM smartetl.template
WHERE template_id > :base ORDER BY template_id;

-- state lives in the table: a new session (cache rebuilt) gives the same ids
\c
SET timezone = 'UTC';
SELECT smartetl.log_template_id('Connection from 172.16.0.2:5432 closed after 99 ms') - :base AS same_as_before,
       smartetl.log_template_id('Job 00000000-0000-0000-0000-000000000000 finished at 2025-01-01T00:00:00Z') - :base AS job;

-- a template learned in a rolled-back transaction is forgotten
BEGIN;
SELECT smartetl.log_template_id('Checkpoint starting: time') IS NOT NULL AS in_rolled_back_txn;
ROLLBACK;
SELECT smartetl.log_template_id('Vacuum of table orders skipped: lock not available') IS NOT NULL AS learned;
SELECT count(*) FILTER (WHERE template LIKE 'Checkpoint%') AS rolled_back,
       count(*) FILTER (WHERE template LIKE 'Vacuum%') AS kept
FROM smartetl.template WHERE template_id > :base;

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
SELECT e.line_no, t.template
FROM smartetl.log_event e LEFT JOIN smartetl.template t USING (template_id)
WHERE e.source = 'tpl.log' ORDER BY 1;
SELECT template, occurrences, first_seen, last_seen FROM smartetl.template
WHERE template LIKE 'Disk quota%';
SELECT template, occurrences FROM smartetl.template WHERE template LIKE 'Timeout%';

-- a dry run learns nothing
SELECT count(*) AS before FROM smartetl.template \gset
SELECT (smartetl.ingest('logline', E'2024-05-01 10:00:00 ERROR Something entirely different happened here\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "dry_run": true}')).inserted;
SELECT count(*) = :before AS unchanged FROM smartetl.template;

-- Attacks on learning (the security issue): savepoints, caught exceptions,
-- direct writes, readers, the limit.
-- a template learned in a rolled-back savepoint leaves no hole behind:
-- learning afterwards, in this and in a new session, keeps working
BEGIN;
SAVEPOINT s;
SELECT smartetl.log_template_id('phantom one two') IS NOT NULL AS phantom;
ROLLBACK TO s;
SELECT smartetl.log_template_id('after the phantom three four') IS NOT NULL AS after;
COMMIT;
SELECT count(*) FILTER (WHERE template LIKE 'phantom%') AS phantom_rows,
       count(*) FILTER (WHERE template LIKE 'after the phantom%') AS after_rows
FROM smartetl.template;
\c
SET timezone = 'UTC';
SELECT smartetl.log_template_id('after the phantom three four') =
       (SELECT template_id FROM smartetl.template WHERE template LIKE 'after the phantom%') AS same_id_new_session;
SELECT (smartetl.ingest('csv', E'job,run_id,status,error\ntpl_after,1,failed,Brand new failure 17 after the phantom\n')).inserted;

-- a DO block that catches a failing ingest (which learned a template first)
DO $$
BEGIN
    PERFORM smartetl.ingest('csv', E'job,run_id,status,error\ntpl_caught,1,failed,Caught failure 5 in block\n' ||
                                   E'tpl_caught,2,failed,Another caught failure 6 in block\n');
    RAISE EXCEPTION 'abort after learning';
EXCEPTION WHEN raise_exception THEN
    NULL;
END $$;
SELECT (smartetl.ingest('csv', E'job,run_id,status,error\ntpl_caught2,1,failed,Learning still works 8 after the caught error\n')).inserted;
\c
SET timezone = 'UTC';
SELECT count(*) AS caught_rows FROM smartetl.template WHERE template LIKE '%caught failure%';
SELECT t.template FROM smartetl.run r JOIN smartetl.template t USING (template_id)
WHERE r.pipeline_id IN (SELECT pipeline_id FROM smartetl.pipeline WHERE name IN ('tpl_after', 'tpl_caught2')) ORDER BY 1;

-- writers (and admins) cannot write the template tables; readers only look up
CREATE ROLE tpl_writer LOGIN IN ROLE smartetl_writer;
CREATE ROLE tpl_reader LOGIN IN ROLE smartetl_reader;
CREATE ROLE tpl_admin LOGIN IN ROLE smartetl_admin;
SET ROLE tpl_writer;
INSERT INTO smartetl.template_text VALUES (99999, 1, 'forged');
UPDATE smartetl.template_text SET template = 'forged';
INSERT INTO smartetl.template_seen VALUES (1, now(), now(), 1000000);
INSERT INTO smartetl.template (template_id, template) VALUES (99999, 'forged');
-- a writer learns, through ingest and directly
SELECT (smartetl.ingest('csv', E'job,run_id,status,error\ntpl_w,1,failed,Writer learned failure 42 here\n')).inserted;
SELECT smartetl.log_template('Writer direct message number 7') AS writer_learns;
SET ROLE tpl_admin;
DELETE FROM smartetl.template_text;
SELECT smartetl.template_compact() IS NOT NULL AS admin_may_compact;
SET ROLE tpl_reader;
SELECT count(*) AS before FROM smartetl.template \gset
SELECT smartetl.log_template('Writer direct message number 99') AS reader_matches,
       smartetl.log_template_id('Writer direct message number 99') =
       (SELECT template_id FROM smartetl.template WHERE template = 'Writer direct message number <*>') AS reader_same_id;
SELECT smartetl.log_template('Reader novel text 12 never stored') AS reader_masked,
       smartetl.log_template_id('Reader novel text 12 never stored') AS reader_null_id;
SELECT count(*) = :before AS reader_learned_nothing FROM smartetl.template;
RESET ROLE;

-- at the limit, new messages still get a template, with a warning
SELECT count(*) AS n FROM smartetl.template \gset
BEGIN;
SET LOCAL smartetl.template_limit = 1;
SELECT smartetl.log_template('Writer direct message number 8') AS matched_at_limit;
SELECT smartetl.log_template_id('Completely unseen shape alpha beta gamma') IS NOT NULL AS has_id,
       smartetl.log_template('Another unseen shape delta epsilon') AS catch_all;
ROLLBACK;
SELECT count(*) = :n AS rolled_back FROM smartetl.template;

-- compaction folds the deltas and keeps the counts
SELECT smartetl.log_template('Writer direct message number 9'), smartetl.log_template('Writer direct message number 10');
SELECT sum(occurrences) AS occ FROM smartetl.template \gset
SELECT smartetl.template_compact() > 0 AS folded;
SELECT sum(occurrences) = :occ AS same_counts,
       (SELECT count(*) FROM smartetl.template_seen) = (SELECT count(DISTINCT template_id) FROM smartetl.template_seen) AS one_row_each
FROM smartetl.template;

-- Occurrences are counted in memory and stored once per statement (and at
-- commit): one delta row per template for a statement of many messages
SELECT count(*) AS seen_rows FROM smartetl.template_seen \gset
SELECT count(DISTINCT smartetl.log_template_id('Bulk count message ' || g)) AS templates
FROM generate_series(1, 1000) g;
SELECT count(*) - :seen_rows AS new_seen_rows,
       (SELECT occurrences FROM smartetl.template WHERE template = 'Bulk count message <*>') AS occurrences
FROM smartetl.template_seen;
-- inside a transaction: a statement's counts are stored by the next
-- learning statement at the same savepoint level; a rolled-back
-- savepoint's counts vanish, a released one's join its parent's, and a
-- rolled-back transaction's are never stored
BEGIN;
SELECT count(smartetl.log_template_id('Savepoint count ' || g || ' message')) FROM generate_series(1, 5) g;
SAVEPOINT a;
SELECT count(smartetl.log_template_id('Savepoint count ' || g || ' message')) FROM generate_series(1, 100) g;
ROLLBACK TO a;
SAVEPOINT b;
SELECT count(smartetl.log_template_id('Savepoint count ' || g || ' message')) FROM generate_series(1, 10) g;
SAVEPOINT c;
SELECT count(smartetl.log_template_id('Savepoint count ' || g || ' message')) FROM generate_series(1, 1000) g;
ROLLBACK TO c;
RELEASE b;
RELEASE a;
SELECT occurrences AS stored_so_far FROM smartetl.template WHERE template = 'Savepoint count <*> message';
SELECT smartetl.log_template_id('Savepoint count 0 message') IS NOT NULL AS one_more;
SELECT occurrences AS stored_after_next_statement FROM smartetl.template WHERE template = 'Savepoint count <*> message';
COMMIT;
SELECT occurrences AS committed FROM smartetl.template WHERE template = 'Savepoint count <*> message';
BEGIN;
SELECT count(smartetl.log_template_id('Savepoint count ' || g || ' message')) FROM generate_series(1, 50) g;
ROLLBACK;
SELECT occurrences AS after_rollback FROM smartetl.template WHERE template = 'Savepoint count <*> message';
-- a caught error inside a function rolls back its counts too
DO $$
BEGIN
    PERFORM smartetl.log_template_id('Savepoint count ' || g || ' message') FROM generate_series(1, 7) g;
    RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
    PERFORM smartetl.log_template_id('Savepoint count 1 message');
END $$;
SELECT occurrences AS after_caught_error FROM smartetl.template WHERE template = 'Savepoint count <*> message';
-- a read-only transaction looks messages up, as a reader does
BEGIN READ ONLY;
SELECT smartetl.log_template_id('Savepoint count 2 message') =
       (SELECT template_id FROM smartetl.template WHERE template = 'Savepoint count <*> message') AS read_only_lookup,
       smartetl.log_template_id('Read only novel shape 5 here') IS NULL AS read_only_no_learning;
COMMIT;
SELECT occurrences AS unchanged_by_read_only FROM smartetl.template WHERE template = 'Savepoint count <*> message';
-- a dry run mines (the miner is exercised) but stores and keeps nothing
SELECT count(*) AS before FROM smartetl.template \gset
SELECT (smartetl.ingest('logline', E'2024-05-01 10:00:00 ERROR Dry run only shape 1 here\n2024-05-01 10:00:01 ERROR Dry run only shape 2 here\n',
  '{"log_format": "<Date> <Time> <Level> <Content>", "dry_run": true}')).inserted;
SELECT count(*) = :before AS dry_unchanged,
       smartetl.log_template('Dry run only shape 3 here') AS learned_later_from_scratch
FROM smartetl.template;

DELETE FROM smartetl.pipeline WHERE name IN ('tpl_after', 'tpl_caught2', 'tpl_w');
DROP ROLE tpl_writer, tpl_reader, tpl_admin;
