-- Roles: readers read, writers ingest, only admins touch server files and retention.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(10);
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
RESET ROLE;

SET ROLE tap_writer;
SELECT is((smartetl.ingest('csv', E'job,run_id,status\nroles_job,2,failed\n')).inserted, 1::bigint,
          'a writer ingests');
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'a writer cannot read server files');
SELECT throws_ok($$DELETE FROM smartetl.run$$, '42501', NULL, 'a writer cannot delete runs');
RESET ROLE;

SET ROLE tap_admin;
SELECT lives_ok($$DELETE FROM smartetl.pipeline WHERE name = 'roles_job'$$, 'an admin deletes a pipeline');
SELECT is((SELECT count(*) FROM smartetl.run r WHERE NOT EXISTS
           (SELECT 1 FROM smartetl.pipeline p WHERE p.pipeline_id = r.pipeline_id)), 0::bigint,
          'deleting a pipeline deletes its runs');
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'without pg_read_server_files even an admin cannot read server files');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
