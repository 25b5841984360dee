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
    RETURN QUERY EXECUTE 'SELECT coalesce(j.jobname::text, ''job '' || j.jobid), j.schedule::text, j.active FROM cron.job j';
END $$;

-- API: Public
-- Maintenance windows: named recurring time intervals with Alertmanager's
-- time_intervals semantics that mute the alerts of some rules, the alerts
-- of some pipelines (selector) and/or every delivery to some channels.
CREATE TABLE smartetl.maintenance_window (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    time_intervals  jsonb NOT NULL CHECK (jsonb_typeof(time_intervals) = 'array'),
    timezone        text NOT NULL DEFAULT 'UTC',
    rules           text[] NOT NULL DEFAULT '{}',
    selector        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(selector) = 'object'),
    channels        text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    comment         text,
    created_by      text NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (rules <> '{}' OR selector <> '{}' OR channels <> '{}')
);
COMMENT ON TABLE smartetl.maintenance_window IS 'recurring maintenance windows: time_intervals as Alertmanager''s ([{"times": [{"start_time": "22:00", "end_time": "24:00"}], "weekdays": ["monday:friday"], "days_of_month": ["1:5", "-1"], "months": ["january:march"], "years": ["2026"], "location": "Europe/Paris"}], any interval matching), in timezone unless an interval names its location; while one holds, alerts of rules and of pipelines matching selector are recorded as muted, and deliveries to channels are held; when it ends, alerts still firing are notified and alerts that cleared meanwhile send nothing';

-- API: Private
-- A name or number of a time_intervals range end: weekdays 0-6 from
-- sunday, months 1-12 from january, else the integer.
CREATE FUNCTION smartetl._window_value(v text, kind text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN v ~ '^-?[0-9]{1,4}$' THEN v::integer
            WHEN kind = 'weekdays' THEN array_position(ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday',
                                                             'friday', 'saturday'], lower(btrim(v))) - 1
            WHEN kind = 'months' THEN array_position(ARRAY['january', 'february', 'march', 'april', 'may', 'june', 'july',
                                                           'august', 'september', 'october', 'november', 'december'],
                                                     lower(btrim(v))) END;

-- API: Private
-- Does value x fall in one of the ranges ("a", "a:b") of a time_intervals
-- field?  days_of_month count negative values from the month's end
-- (-1 is its last day, dim its length).
CREATE FUNCTION smartetl._window_in(ranges jsonb, kind text, x integer, dim integer DEFAULT 31) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ranges IS NULL OR jsonb_typeof(ranges) <> 'array' OR jsonb_array_length(ranges) = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ranges) r,
                      LATERAL (SELECT smartetl._window_value(split_part(r, ':', 1), kind) AS lo,
                                      smartetl._window_value(coalesce(nullif(split_part(r, ':', 2), ''), split_part(r, ':', 1)), kind) AS hi) b,
                      LATERAL (SELECT CASE WHEN kind = 'days_of_month' AND b.lo < 0 THEN dim + 1 + b.lo ELSE b.lo END AS lo,
                                      CASE WHEN kind = 'days_of_month' AND b.hi < 0 THEN dim + 1 + b.hi ELSE b.hi END AS hi) n
                      -- a weekday range may wrap (saturday:monday)
                      WHERE x BETWEEN n.lo AND n.hi OR (kind = 'weekdays' AND n.lo > n.hi AND (x >= n.lo OR x <= n.hi)))
$$;

-- API: Private
-- Does one time interval hold at a time (its location, else tz)?
CREATE FUNCTION smartetl._time_interval_active(ti jsonb, at timestamptz, tz text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (ti->'times' IS NULL OR jsonb_array_length(ti->'times') = 0
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(ti->'times') t
                       WHERE l.minute >= split_part(t->>'start_time', ':', 1)::int * 60 + split_part(t->>'start_time', ':', 2)::int
                         AND l.minute < split_part(t->>'end_time', ':', 1)::int * 60 + split_part(t->>'end_time', ':', 2)::int))
       AND smartetl._window_in(ti->'weekdays', 'weekdays', extract(dow FROM l.ts)::int)
       AND smartetl._window_in(ti->'days_of_month', 'days_of_month', extract(day FROM l.ts)::int,
                               extract(day FROM date_trunc('month', l.ts) + interval '1 month - 1 day')::int)
       AND smartetl._window_in(ti->'months', 'months', extract(month FROM l.ts)::int)
       AND smartetl._window_in(ti->'years', 'years', extract(year FROM l.ts)::int)
    FROM (SELECT x.ts, extract(hour FROM x.ts)::int * 60 + extract(minute FROM x.ts)::int AS minute
          FROM (SELECT at AT TIME ZONE coalesce(ti->>'location', tz) AS ts) x) l
$$;

-- API: Public
-- Is a maintenance window in force at a time?
CREATE FUNCTION smartetl.maintenance_window_active(name text, at timestamptz DEFAULT now()) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(bool_or(w.enabled AND smartetl._time_interval_active(ti, at, w.timezone)), false)
    FROM smartetl.maintenance_window w CROSS JOIN LATERAL jsonb_array_elements(w.time_intervals) ti
    WHERE w.name = maintenance_window_active.name
$$;
COMMENT ON FUNCTION smartetl.maintenance_window_active(text, timestamptz) IS 'whether the named maintenance window holds at a time';

-- API: Private
-- The next time after "after" at which a window may start or end: its
-- intervals' start and end times today and tomorrow, and the next local
-- midnights (day, month and year fields change then), in each location.
CREATE FUNCTION smartetl._window_next_change(w smartetl.maintenance_window, after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(c.t) FROM (
        SELECT (d.day + make_interval(hours => split_part(x.hm, ':', 1)::int, mins => split_part(x.hm, ':', 2)::int))
               AT TIME ZONE z.tz AS t
        FROM jsonb_array_elements(w.time_intervals) ti
        CROSS JOIN LATERAL (SELECT coalesce(ti->>'location', w.timezone) AS tz) z
        CROSS JOIN LATERAL (SELECT date_trunc('day', after AT TIME ZONE z.tz) + k * interval '1 day' AS day
                            FROM generate_series(0, 1) k) d
        CROSS JOIN LATERAL (SELECT t->>'start_time' AS hm FROM jsonb_array_elements(coalesce(ti->'times', '[]')) t
                            UNION ALL SELECT t->>'end_time' FROM jsonb_array_elements(coalesce(ti->'times', '[]')) t
                            UNION ALL SELECT '24:00') x
    ) c WHERE c.t > after
$$;

-- API: Private
CREATE FUNCTION smartetl._window_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    PERFORM smartetl._cron_check(NULL, NEW.timezone);
    SELECT string_agg(coalesce(ti->>'location', '') || ' ' || left(ti::text, 80), '; ') INTO bad
    FROM jsonb_array_elements(NEW.time_intervals) ti
    WHERE jsonb_typeof(ti) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(ti) k WHERE k NOT IN ('times', 'weekdays', 'days_of_month', 'months', 'years', 'location'))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ti->'times') = 'array' THEN ti->'times' ELSE '[{}]' END) t
                  WHERE coalesce(t->>'start_time', '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
                     OR coalesce(t->>'end_time', '') !~ '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$'
                     OR t->>'end_time' <= t->>'start_time')
          AND ti ? 'times'
       OR EXISTS (SELECT 1 FROM (VALUES ('weekdays'), ('days_of_month'), ('months'), ('years')) f(k),
                  LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(ti->f.k) = 'array' THEN ti->f.k ELSE '[]' END) r
                  WHERE smartetl._window_value(split_part(r, ':', 1), f.k) IS NULL
                     OR smartetl._window_value(coalesce(nullif(split_part(r, ':', 2), ''), split_part(r, ':', 1)), f.k) IS NULL);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid time_intervals in maintenance window "%"', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Bad interval: ' || bad || '.',
                  HINT = 'Use Alertmanager''s form: [{"times": [{"start_time": "HH:MM", "end_time": "HH:MM"}], "weekdays": ["monday:friday"], "days_of_month": ["1", "-1"], "months": ["1:3"], "years": ["2026"], "location": "Europe/Paris"}].';
    END IF;
    FOR bad IN SELECT DISTINCT ti->>'location' FROM jsonb_array_elements(NEW.time_intervals) ti WHERE ti ? 'location' LOOP
        PERFORM smartetl._cron_check(NULL, bad);
    END LOOP;
    SELECT string_agg(c, ', ') INTO bad FROM unnest(NEW.channels) c WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'maintenance window "%" names unknown channel %', NEW.name, bad USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(NEW.selector) k WHERE k NOT IN ('namespace', 'pipeline', 'tags');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'maintenance window "%" has unknown selector key %', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Selector keys are namespace, pipeline (glob) and tags (array).';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN NEW;
END $$;
CREATE TRIGGER maintenance_window_check BEFORE INSERT OR UPDATE ON smartetl.maintenance_window
    FOR EACH ROW EXECUTE FUNCTION smartetl._window_check();

-- API: Public
-- Escalation policies: while an alert of a rule naming the policy fires
-- unacknowledged (and not muted), each step notifies its channels "after"
-- the previous one (the first: after the alert was first notified); the
-- whole list runs again "repeat" more times.
CREATE TABLE smartetl.escalation_policy (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    steps       jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) > 0),
    repeat      integer NOT NULL DEFAULT 0 CHECK (repeat BETWEEN 0 AND 100),
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartetl.escalation_policy IS 'escalation policies: steps [{"after": "15 minutes", "channels": ["pager"]}, ...] notified in turn while an alert stays unacknowledged, each "after" the previous step (the first after the alert''s first notification); the list runs again repeat more times';

-- API: Private
CREATE FUNCTION smartetl._escalation_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
    step jsonb;
    wait interval;
BEGIN
    FOR step IN SELECT e FROM jsonb_array_elements(NEW.steps) e LOOP
        BEGIN
            wait := (step->>'after')::interval;
        EXCEPTION WHEN others THEN
            wait := NULL;
        END;
        IF jsonb_typeof(step) <> 'object' OR jsonb_typeof(step->'channels') IS DISTINCT FROM 'array'
           OR jsonb_array_length(step->'channels') = 0 OR wait IS NULL OR wait <= interval '0' THEN
            bad := step::text;
        END IF;
    END LOOP;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid steps in escalation policy "%"', NEW.name
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Bad step: ' || bad || '.',
                  HINT = 'Each step is {"after": "15 minutes", "channels": ["pager"]}.';
    END IF;
    SELECT string_agg(DISTINCT c, ', ') INTO bad
    FROM jsonb_array_elements(NEW.steps) s, jsonb_array_elements_text(s->'channels') c
    WHERE NOT EXISTS (SELECT 1 FROM smartetl.channel WHERE name = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'escalation policy "%" names unknown channel %', NEW.name, bad
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create the channel in smartetl.channel first.';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN NEW;
END $$;
CREATE TRIGGER escalation_policy_check BEFORE INSERT OR UPDATE ON smartetl.escalation_policy
    FOR EACH ROW EXECUTE FUNCTION smartetl._escalation_check();

-- API: Public
-- Acknowledge a firing alert: who and why show in its later notifications,
-- the alerts view and the dashboard, and its escalation stops.
CREATE FUNCTION smartetl.ack(alert_id bigint, by text, comment text DEFAULT NULL) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    UPDATE smartetl.alert x SET acked_by = coalesce(nullif(btrim(ack.by), ''), session_user::text),
                                acked_at = now(), ack_comment = nullif(btrim(ack.comment), '')
    WHERE x.alert_id = ack.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', ack.alert_id
            USING ERRCODE = 'no_data_found', HINT = 'See smartetl.alert_status for the firing alerts and their ids.';
    END IF;
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.ack(bigint, text, text) IS 'acknowledge a firing alert (by whom, why): shown in its later notifications and in smartetl.alert_status; stops its escalation';

-- API: Public
CREATE FUNCTION smartetl.unack(alert_id bigint) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    -- escalation resumes, its next step counted from now
    UPDATE smartetl.alert x SET acked_by = NULL, acked_at = NULL, ack_comment = NULL,
                                escalated_at = CASE WHEN x.notified_at IS NOT NULL THEN now() END
    WHERE x.alert_id = unack.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', unack.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.unack(bigint) IS 'withdraw the acknowledgement of a firing alert: its escalation resumes';

-- API: Public
CREATE FUNCTION smartetl.assign(alert_id bigint, "to" text) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    UPDATE smartetl.alert x SET assignee = nullif(btrim(assign."to"), '')
    WHERE x.alert_id = assign.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', assign.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.assign(bigint, text) IS 'assign a firing alert to someone (NULL or empty: nobody); shown in its later notifications and in smartetl.alert_status';

-- API: Public
CREATE FUNCTION smartetl.snooze(alert_id bigint, until timestamptz, by text DEFAULT NULL) RETURNS smartetl.alert
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a smartetl.alert;
BEGIN
    IF until > now() + interval '30 days' THEN
        RAISE EXCEPTION 'cannot snooze an alert for more than 30 days'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a silence (smartetl.silence) for longer.';
    END IF;
    UPDATE smartetl.alert x SET snoozed_until = snooze.until,
                                ack_comment = coalesce(x.ack_comment, 'snoozed by ' || coalesce(nullif(btrim(snooze.by), ''), session_user::text))
    WHERE x.alert_id = snooze.alert_id AND x.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firing alert %', snooze.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smartetl._alert_wake();
    RETURN a;
END $$;
COMMENT ON FUNCTION smartetl.snooze(bigint, timestamptz, text) IS 'no notification and no escalation for a firing alert until a time (at most 30 days ahead); NULL or a past time ends the snooze';

-- API: Public
-- Alerts for people and dashboards: the firing ones and those resolved in
-- the last day, why each is muted, and its acknowledgement.
CREATE VIEW smartetl.alert_status AS
SELECT a.alert_id, a.rule_name AS rule, a.labels->>'namespace' AS namespace, a.labels->>'pipeline' AS pipeline,
       a.labels->>'severity' AS severity, a.state, a.started_at, a.resolved_at, a.annotations->>'summary' AS summary,
       CASE WHEN a.silenced THEN 'silence'
            WHEN a.muted_by IS NOT NULL THEN 'maintenance window ' || a.muted_by
            WHEN a.inhibited_by IS NOT NULL THEN 'inhibited by alert ' || a.inhibited_by
            WHEN a.snoozed_until > now() THEN 'snoozed until ' || to_char(a.snoozed_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
       END AS muted,
       a.acked_by, a.acked_at, a.ack_comment, a.assignee, a.escalation_level, a.notified_state
FROM smartetl.alert a
WHERE a.state = 'firing' OR a.resolved_at > now() - interval '1 day';
COMMENT ON VIEW smartetl.alert_status IS 'firing alerts and those resolved in the last day: why muted (silence, maintenance window, inhibition, snooze), acknowledged by whom, assigned to whom, escalation step';
