-- smartetl.sync_pg_cron() against the real pg_cron of the test cluster: a
-- job that fails and one that succeeds run once (pg_cron's granularity is a
-- minute), then their runs are imported, once, even by concurrent calls.
-- Not in a transaction: pg_cron must see the jobs and commit its runs.  So
-- that a failure midway never leaves jobs, runs or the role behind for the
-- files after this one (or the next run), the same cleanup runs first and
-- last, and the body runs with ON_ERROR_STOP off: an error there is
-- printed, its test missing from the plan fails the file, and the cleanup
-- still runs.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE FUNCTION pg_temp.cleanup() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'smartetl\_tap\_%';
    DELETE FROM smartetl.pipeline WHERE namespace = 'pg_cron';
    DELETE FROM smartetl.sync_state WHERE source = 'pg_cron';
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tap_cron_admin') THEN
        REVOKE USAGE ON SCHEMA cron FROM tap_cron_admin;
        DROP OWNED BY tap_cron_admin;
        DROP ROLE tap_cron_admin;
    END IF;
END $$;
-- what an interrupted run may have left
SELECT pg_temp.cleanup();
SELECT plan(9);
\set ON_ERROR_STOP 0
-- the sync is run by an admin that is not a superuser: pg_cron's row
-- security shows such a role only its own jobs' runs, and these belong to
-- the superuser that schedules them
CREATE ROLE tap_cron_admin LOGIN IN ROLE smartetl_admin;
GRANT USAGE ON SCHEMA cron TO tap_cron_admin;
SELECT cron.schedule('smartetl_tap_fail', '* * * * *', 'SELECT 1/0') AS fail_job \gset
SELECT cron.schedule('smartetl_tap_ok', '* * * * *', 'SELECT 1') AS ok_job \gset

-- wait (at most 130 s) until both have finished at least once
DO $$
BEGIN
    FOR i IN 1..260 LOOP
        EXIT WHEN (SELECT count(DISTINCT jobid) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                   WHERE j.jobname LIKE 'smartetl\_tap\_%' AND d.status IN ('succeeded', 'failed')) = 2;
        PERFORM pg_sleep(0.5);
    END LOOP;
END $$;
SELECT is((SELECT count(DISTINCT jobid) FROM cron.job_run_details WHERE jobid IN (:fail_job, :ok_job)
           AND status IN ('succeeded', 'failed')), 2::bigint, 'pg_cron ran both jobs');
SET SESSION AUTHORIZATION tap_cron_admin;
SELECT is((SELECT count(*) FROM cron.job_run_details WHERE jobid IN (:fail_job, :ok_job)), 0::bigint,
          'pg_cron hides the superuser''s runs from the admin');
SELECT ok((smartetl.sync_pg_cron()).inserted >= 2, 'a non-superuser admin''s sync imports them');
RESET SESSION AUTHORIZATION;
-- no more runs: the check of "imported exactly once" below compares with them
SELECT cron.unschedule(:fail_job), cron.unschedule(:ok_job);
SELECT results_eq(
    $$SELECT r.status::text, r.error_message LIKE '%division by zero%', r.template_id IS NOT NULL
      FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'pg_cron' AND p.name = 'smartetl_tap_fail' LIMIT 1$$,
    $$VALUES ('failed', true, true)$$,
    'the failing job is a failed run with its error and error template');
SELECT is((SELECT status::text FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'pg_cron' AND p.name = 'smartetl_tap_ok' LIMIT 1), 'success',
          'the other job is a successful run');
SELECT ok((SELECT bool_and(r.started_at IS NOT NULL AND r.ended_at IS NOT NULL AND r.attrs ? 'command')
           FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'pg_cron' AND p.name LIKE 'smartetl\_tap\_%'),
          'runs keep start, end and the command');

-- again, and from two sessions at once: nothing is imported twice
SELECT format('dbname=%s port=%s host=%s user=%s', current_database(), current_setting('port'),
              current_setting('unix_socket_directories'), current_user) AS conn \gset
SELECT count(*) AS runs_before FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
WHERE p.namespace = 'pg_cron' \gset
SELECT dblink_connect('c' || i, :'conn') FROM generate_series(1, 2) i;
SELECT dblink_send_query('c' || i, 'SELECT (smartetl.sync_pg_cron()).inserted') FROM generate_series(1, 2) i;
SELECT is(count(*), 2::bigint, 'two concurrent syncs both succeed')
FROM generate_series(1, 2) i, LATERAL dblink_get_result('c' || i) AS r(inserted bigint);
SELECT dblink_disconnect('c' || i) FROM generate_series(1, 2) i;
SELECT results_eq(
    $$SELECT r.external_id::bigint FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'pg_cron' AND p.name LIKE 'smartetl\_tap\_%' ORDER BY 1$$,
    format('SELECT runid FROM cron.job_run_details WHERE jobid IN (%s, %s) ORDER BY 1', :fail_job, :ok_job),
    'each pg_cron run is imported exactly once');
SELECT is((SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'pg_cron' AND r.external_id IS NULL), 0::bigint, 'runs carry the pg_cron runid');
SELECT * FROM finish();
-- whatever happened above
RESET SESSION AUTHORIZATION;
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) c;
\set ON_ERROR_STOP 1
SELECT pg_temp.cleanup();
