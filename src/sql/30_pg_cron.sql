-- ---------------------------------------------------------------------------
-- pg_cron: import cron.job_run_details as runs (each cron job a pipeline of
-- namespace 'pg_cron', each runid a run), incrementally.
-- ---------------------------------------------------------------------------

-- API: Private
-- Where each incremental import stopped.
CREATE TABLE smartetl.sync_state (
    source     text PRIMARY KEY,
    position   bigint NOT NULL,
    synced_at  timestamptz NOT NULL
);
COMMENT ON TABLE smartetl.sync_state IS 'high-water marks of incremental imports (sync_pg_cron)';

-- API: Private
-- The cron.job_run_details rows after runid after_runid, as the JSON lines
-- that sync_pg_cron ingests, and the next high-water mark: after the last
-- run read, or just before the first one still in progress (both from the
-- same snapshot).  SECURITY DEFINER because pg_cron's row security shows a
-- non-superuser only the runs of its own jobs, so an admin's sync would
-- skip (and move its mark past) every other user's runs.  It only reads
-- pg_cron's two tables; EXECUTE: smartetl_admin.
CREATE FUNCTION smartetl._pg_cron_runs(after_runid bigint, OUT next_position bigint, OUT payload text)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cron.job_run_details') IS NULL THEN
        RAISE EXCEPTION 'cron.job_run_details does not exist in this database'
            USING ERRCODE = 'undefined_table',
                  HINT = 'Install pg_cron 1.4 or later here (CREATE EXTENSION pg_cron) or call this in cron.database_name.';
    END IF;
    EXECUTE $q$
        SELECT coalesce(min(d.runid) FILTER (WHERE d.status NOT IN ('succeeded', 'failed')) - 1,
                        max(d.runid), $1),
               string_agg(jsonb_build_object(
                   'pipeline', coalesce(j.jobname, 'job ' || d.jobid),
                   'run_id', d.runid, 'status', d.status,
                   'start', d.start_time, 'end', d.end_time,
                   'error', CASE WHEN d.status = 'failed' THEN d.return_message END,
                   'database', d.database, 'username', d.username, 'command', d.command,
                   'job_pid', d.job_pid, 'return_message', d.return_message)::text, E'\n'
                   ORDER BY d.runid)
        FROM cron.job_run_details d LEFT JOIN cron.job j USING (jobid)
        WHERE d.runid > $1 $q$
    INTO next_position, payload USING coalesce(after_runid, 0);
END $$;

-- API: Public
CREATE FUNCTION smartetl.sync_pg_cron()
RETURNS smartetl.ingest_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    from_runid bigint;
    batch      record;
    result     smartetl.ingest_result;
    job        record;
    sched      text;
    tz         text := coalesce(nullif(current_setting('cron.timezone', true), ''), 'GMT');
BEGIN
    -- one import at a time; the import itself is idempotent anyway
    PERFORM smartetl._xact_lock('pg_cron_sync');
    SELECT position INTO from_runid FROM smartetl.sync_state WHERE source = 'pg_cron';

    -- from the high-water mark: every run after it, which includes the ones
    -- that were still running at the last import
    SELECT * INTO batch FROM smartetl._pg_cron_runs(from_runid);

    IF batch.payload IS NULL THEN
        result := (0, 0, 0, 0);
    ELSE
        result := smartetl.ingest('jsonl', batch.payload, jsonb_build_object(
            'namespace', 'pg_cron', 'source', 'cron.job_run_details',
            'status_map', jsonb_build_object('starting', 'running', 'connecting', 'running',
                                             'sending', 'running')));
    END IF;

    INSERT INTO smartetl.sync_state AS s (source, position, synced_at)
    VALUES ('pg_cron', batch.next_position, now())
    ON CONFLICT (source) DO UPDATE SET position = excluded.position, synced_at = excluded.synced_at;

    -- each job's schedule, in pg_cron's cron.timezone (GMT unless set), so a
    -- deadline rule notices a job that never starts; jobs pg_cron runs every
    -- few seconds, or inactive ones, have none
    FOR job IN SELECT * FROM smartetl._pg_cron_jobs() LOOP
        sched := CASE WHEN job.active AND smartetl._cron_valid(job.schedule) THEN job.schedule END;
        PERFORM smartetl._pipeline_ensure('pg_cron', job.pipeline);
        UPDATE smartetl.pipeline p SET schedule = sched, schedule_timezone = CASE WHEN sched IS NOT NULL THEN tz END
        WHERE p.namespace = 'pg_cron' AND p.name = job.pipeline
          AND (p.schedule IS DISTINCT FROM sched
               OR p.schedule_timezone IS DISTINCT FROM CASE WHEN sched IS NOT NULL THEN tz END);
    END LOOP;
    RETURN result;
END $$;
COMMENT ON FUNCTION smartetl.sync_pg_cron() IS 'import new and changed rows of cron.job_run_details (every user''s jobs) as runs (namespace pg_cron), and each job''s schedule (cron.job.schedule in cron.timezone) as its pipeline''s; safe to call every minute, also concurrently';
