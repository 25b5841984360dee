-- Roles: readers read, writers ingest, only admins touch server files and retention.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(21);
CREATE ROLE tap_reader LOGIN IN ROLE smartetl_reader;
CREATE ROLE tap_writer LOGIN IN ROLE smartetl_writer;
CREATE ROLE tap_admin LOGIN IN ROLE smartetl_admin;
SELECT smartetl.ingest('csv', E'job,run_id,status\nroles_job,1,success\n');

SET ROLE tap_reader;
SELECT is((SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'roles_job'), 1::bigint, 'a reader sees runs');
SELECT throws_ok($$SELECT smartetl.ingest('csv', E'job,run_id,status\nx,1,ok\n')$$, '42501', NULL,
                 'a reader cannot ingest');
SELECT throws_ok($$SELECT * FROM smartetl.ingest_reject$$, '42501', NULL, 'a reader cannot read rejected input');
SELECT throws_ok($$DELETE FROM smartetl.run$$, '42501', NULL, 'a reader cannot delete runs');
-- channel targets and secrets: admins only, through no view or function
SELECT throws_ok($$SELECT target, secret FROM smartetl.channel$$, '42501', NULL, 'a reader cannot read channels');
SELECT throws_ok($$SELECT payload FROM smartetl.delivery$$, '42501', NULL, 'a reader cannot read the outbox');
SELECT throws_ok($$SELECT smartetl.test_channel('x')$$, '42501', NULL, 'a reader cannot send through a channel');
SELECT is((SELECT count(*) FROM information_schema.column_privileges
           WHERE table_schema = 'smartetl' AND column_name IN ('secret', 'target')
             AND grantee IN ('smartetl_reader', 'smartetl_writer', 'PUBLIC')), 0::bigint,
          'no reader or writer privilege on any channel target or secret column');
SELECT lives_ok($$SELECT count(*) FROM smartetl.alert$$, 'a reader sees alerts');
RESET ROLE;

SET ROLE tap_writer;
SELECT throws_ok($$INSERT INTO smartetl.channel (name, kind, target) VALUES ('w', 'webhook', 'http://127.0.0.1/x')$$,
                 '42501', NULL, 'a writer cannot create channels');
SELECT throws_ok($$SELECT secret FROM smartetl.channel$$, '42501', NULL, 'a writer cannot read secrets');
SELECT is((smartetl.ingest('csv', E'job,run_id,status\nroles_job,2,failed\n')).inserted, 1::bigint,
          'a writer ingests');
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'a writer cannot read server files');
-- log lines need a new monthly partition (created for the writer) and learn templates
SELECT is((smartetl.ingest('logline', E'1998-02-01 10:00:00 ERROR job 17 failed\n1998-02-01 10:00:01 INFO retry',
                           '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "roles_job", "source": "roles.log"}')).inserted,
          2::bigint, 'a writer ingests log lines');
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE source = 'roles.log' AND template_id IS NOT NULL), 2::bigint,
          'with their templates');
SELECT throws_ok($$SELECT smartetl.ingest('csv', E'job,run_id,start,status\nroles_job,3,2099-01-01,success\n')$$,
                 '22008', NULL, 'a writer cannot store a run dated years ahead');
SELECT throws_ok($$DELETE FROM smartetl.run$$, '42501', NULL, 'a writer cannot delete runs');
RESET ROLE;

SET ROLE tap_admin;
SELECT lives_ok($$DELETE FROM smartetl.pipeline WHERE name = 'roles_job'$$, 'an admin deletes a pipeline');
SELECT is((SELECT count(*) FROM smartetl.run r WHERE NOT EXISTS
           (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = r.pipeline_id)), 0::bigint,
          'deleting a pipeline deletes its runs');
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'without pg_read_server_files even an admin cannot read server files');
SELECT lives_ok($$INSERT INTO smartetl.channel (name, kind, target, secret)
                  VALUES ('roles_hook', 'webhook', 'http://127.0.0.1:9/x', 'token')$$,
                'an admin creates a channel with a secret');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
