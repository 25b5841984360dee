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
