-- ---------------------------------------------------------------------------
-- On-call: pipeline schedules and deadlines (cron schedules in a time zone,
-- src/alert/cron.c).  The alert rule kind deadline, maintenance windows,
-- inhibition, retries, acknowledgement and escalation build on them in
-- 88_alert_eval.sql.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE FUNCTION smartetl.cron_next(schedule text, after timestamptz DEFAULT now(), timezone text DEFAULT 'UTC')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'smartetl_cron_next' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.cron_next(text, timestamptz, text) IS 'the first time a 5-field cron schedule runs after "after", in a time zone (wall-clock times; a time skipped by a DST change runs as timestamp AT TIME ZONE reads it, a repeated one once; every-hour schedules run every real hour); NULL when never within ten years';

-- API: Private
-- The latest time a schedule ran at or before "at" (NULL when never within ten years).
CREATE FUNCTION smartetl._cron_prev(schedule text, at timestamptz, timezone text DEFAULT 'UTC')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'smartetl_cron_prev' LANGUAGE C STABLE PARALLEL SAFE;

-- API: Private
-- Raise invalid_parameter_value unless the schedule parses and the zone exists.
CREATE FUNCTION smartetl._cron_check(schedule text, timezone text) RETURNS void
AS 'MODULE_PATHNAME', 'smartetl_cron_check' LANGUAGE C STABLE PARALLEL SAFE;

-- API: Private
-- Whether a schedule parses (pg_cron's "30 seconds" does not).
CREATE FUNCTION smartetl._cron_valid(schedule text) RETURNS boolean
AS 'MODULE_PATHNAME', 'smartetl_cron_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- API: Private
-- A pipeline's schedule and zone are checked when written, so that a
-- typo fails at UPDATE rather than silently never alerting.
CREATE FUNCTION smartetl._pipeline_schedule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._cron_check(NEW.schedule, NEW.schedule_timezone);
    RETURN NEW;
END $$;
CREATE TRIGGER pipeline_schedule_check BEFORE INSERT OR UPDATE OF schedule, schedule_timezone ON smartetl.pipeline
    FOR EACH ROW WHEN (NEW.schedule IS NOT NULL OR NEW.schedule_timezone IS NOT NULL)
    EXECUTE FUNCTION smartetl._pipeline_schedule_check();
-- a new schedule or deadline may move the next deadline: the worker recomputes it
CREATE TRIGGER pipeline_schedule_wake AFTER UPDATE OF schedule, schedule_timezone, deadline ON smartetl.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_alert_wake();

-- API: Public
-- Each scheduled pipeline with a deadline, at a time: the latest scheduled
-- start whose deadline has passed, whether a successful run finished since
-- that start (missed when none did: the run failed, still runs or never
-- started), the latest run, and the next deadline.
CREATE FUNCTION smartetl.deadline_status(at timestamptz DEFAULT now())
RETURNS TABLE (pipeline_id bigint, namespace text, pipeline text, schedule text, schedule_timezone text,
               deadline interval, scheduled_at timestamptz, deadline_at timestamptz,
               last_success_at timestamptz, last_run_id bigint, last_run_status smartetl.run_status,
               last_run_at timestamptz, missed boolean, next_deadline_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.namespace, p.name, p.schedule, z.tz, p.deadline,
           d.scheduled_at, d.scheduled_at + p.deadline, s.finished_at, l.run_id, l.status, l.run_at,
           d.scheduled_at IS NOT NULL AND (s.finished_at IS NULL OR s.finished_at < d.scheduled_at),
           smartetl.cron_next(p.schedule, at - p.deadline, z.tz) + p.deadline
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT coalesce(p.schedule_timezone, 'UTC') AS tz) z
    CROSS JOIN LATERAL (SELECT smartetl._cron_prev(p.schedule, at - p.deadline, z.tz) AS scheduled_at) d
    -- the latest successes by start; the one that finished last counts
    LEFT JOIN LATERAL (SELECT max(f.fin) FILTER (WHERE f.fin <= at) AS finished_at
                       FROM (SELECT coalesce(r.ended_at, r.started_at + r.duration, r.run_at) AS fin
                             FROM smartetl.run r
                             WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success' AND r.run_at <= at
                             ORDER BY r.run_at DESC LIMIT 5) f) s ON true
    LEFT JOIN LATERAL (SELECT r.run_id, r.status, r.run_at FROM smartetl.run r
                       WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at
                       ORDER BY r.run_at DESC LIMIT 1) l ON true
    WHERE p.schedule IS NOT NULL AND p.deadline IS NOT NULL
$$;
COMMENT ON FUNCTION smartetl.deadline_status(timestamptz) IS 'per pipeline with a schedule and a deadline: the latest scheduled start whose deadline passed by "at", whether it was missed (no success finished since that start), the latest run, the next deadline';

-- API: Public
-- Schedules from Airflow's REST API: the response of GET /api/v1/dags (or
-- /api/v2/dags, or one DAG's /details, or an array of DAG objects).  A DAG
-- is pipeline <dag_id>, as its runs are; DAGs that never ran are created,
-- so that a run that never starts is noticed too.  A cron expression or
-- preset (schedule_interval, else timetable_summary) becomes the schedule,
-- in the DAG's timezone ("Timezone('Europe/Paris')" in /details) else
-- options.timezone (Airflow's default_timezone, default UTC); a paused DAG,
-- or one scheduled by a timedelta, @once or a dataset, gets none.
-- options.deadline sets the deadline of DAGs that have none.
CREATE FUNCTION smartetl.sync_airflow_schedules(dags jsonb, options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ns text := coalesce(options->>'namespace', 'airflow');
    default_tz text := coalesce(options->>'timezone', 'UTC');
    dl interval := (options->>'deadline')::interval;
    d jsonb;
    sched text;
    tz text;
    changed integer := 0;
    n integer;
BEGIN
    IF jsonb_typeof(options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM smartetl._cron_check(NULL, default_tz);
    FOR d IN SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(dags->'dags') = 'array' THEN dags->'dags'
                                                     WHEN jsonb_typeof(dags) = 'array' THEN dags
                                                     ELSE jsonb_build_array(dags) END) e
    LOOP
        IF jsonb_typeof(d) <> 'object' OR nullif(d->>'dag_id', '') IS NULL THEN
            RAISE EXCEPTION 'invalid Airflow DAG: %', left(d::text, 200)
                USING ERRCODE = 'invalid_text_representation',
                      DETAIL = 'Each DAG needs a dag_id (GET /api/v1/dags returns {"dags": [...]}).';
        END IF;
        sched := CASE WHEN jsonb_typeof(d->'schedule_interval') = 'object'
                      THEN CASE WHEN d->'schedule_interval'->>'__type' = 'CronExpression'
                                THEN d->'schedule_interval'->>'value' END
                      WHEN jsonb_typeof(d->'schedule_interval') = 'string' THEN d->>'schedule_interval'
                      ELSE d->>'timetable_summary' END;
        IF NOT coalesce(smartetl._cron_valid(sched), false) OR coalesce((d->>'is_paused')::boolean, false)
           OR NOT coalesce((d->>'is_active')::boolean, true) THEN
            sched := NULL;
        END IF;
        tz := coalesce(substring(d->>'timezone' FROM '^Timezone\(''([^'']+)''\)$'), nullif(d->>'timezone', ''), default_tz);
        BEGIN
            PERFORM smartetl._cron_check(NULL, tz);
        EXCEPTION WHEN invalid_parameter_value THEN
            tz := default_tz;
        END;
        PERFORM smartetl._pipeline_ensure(ns, d->>'dag_id');
        UPDATE smartetl.pipeline p
        SET schedule = sched, schedule_timezone = CASE WHEN sched IS NOT NULL THEN tz END,
            deadline = coalesce(p.deadline, dl)
        WHERE p.namespace = ns AND p.name = d->>'dag_id'
          AND (p.schedule IS DISTINCT FROM sched
               OR p.schedule_timezone IS DISTINCT FROM CASE WHEN sched IS NOT NULL THEN tz END
               OR p.deadline IS DISTINCT FROM coalesce(p.deadline, dl));
        GET DIAGNOSTICS n = ROW_COUNT;
        changed := changed + n;
    END LOOP;
    RETURN changed;
END $$;
COMMENT ON FUNCTION smartetl.sync_airflow_schedules(jsonb, jsonb) IS 'set pipeline schedules from Airflow''s GET /api/v1/dags response (cron schedule_interval or timetable_summary, DAG timezone); options namespace (default airflow), timezone (default UTC), deadline; returns the pipelines changed';

-- API: Private
-- pg_cron's jobs (every user's: SECURITY DEFINER, as _pg_cron_runs) with
-- their schedules, for sync_pg_cron.  It only reads cron.job.
CREATE FUNCTION smartetl._pg_cron_jobs()
RETURNS TABLE (pipeline text, schedule text, active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE 'SELECT coalesce(j.jobname, ''job '' || j.jobid), j.schedule, j.active FROM cron.job j';
END $$;
