-- ---------------------------------------------------------------------------
-- KPI rollups: per pipeline and UTC hour / UTC day, kept up to date in the
-- transaction that changes runs, so dashboards over long ranges read a few
-- rows per pipeline and day instead of every run.
--
-- A changed run (ingest, or any INSERT/UPDATE/DELETE on smartetl.run)
-- marks its (pipeline, hour) and the hour it had before; those hours are
-- recomputed from the runs, then their days from the hours.  Recomputing
-- (rather than adding deltas) makes late and corrected runs land in the
-- right bucket with the right values.  Runs are bucketed by run_at (start,
-- else end); runs with neither are not in the rollups.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TABLE smartetl.kpi_hourly (
    pipeline_id   bigint NOT NULL,
    bucket        timestamptz NOT NULL,
    runs          bigint NOT NULL,
    successes     bigint NOT NULL,
    failures      bigint NOT NULL,
    skipped       bigint NOT NULL,
    cancelled     bigint NOT NULL,
    running       bigint NOT NULL,
    retries       bigint NOT NULL,
    sla_breaches  bigint NOT NULL,
    duration      smartetl.qsketch,
    rows_read     bigint,
    rows_written  bigint,
    bytes         bigint,
    PRIMARY KEY (pipeline_id, bucket)
);
COMMENT ON TABLE smartetl.kpi_hourly IS 'runs per pipeline and UTC hour (bucket = hour start): status counts, retries, SLA breaches, a qsketch of finished runs'' durations in seconds, row and byte sums; kept current by ingest and by triggers on smartetl.run';
CREATE INDEX kpi_hourly_bucket ON smartetl.kpi_hourly (bucket);

-- API: Public
CREATE TABLE smartetl.kpi_daily (LIKE smartetl.kpi_hourly INCLUDING ALL);
COMMENT ON TABLE smartetl.kpi_daily IS 'kpi_hourly merged per UTC day (bucket = day start)';

-- API: Public
-- Whole months, so that a year per pipeline is a dozen rows to merge
-- (pipeline_kpi through _kpi_spans, the metrics view's totals).
CREATE TABLE smartetl.kpi_monthly (LIKE smartetl.kpi_hourly INCLUDING ALL);
COMMENT ON TABLE smartetl.kpi_monthly IS 'kpi_daily merged per UTC month (bucket = month start)';

-- API: Private
-- The UTC hour or day a time falls in.
CREATE FUNCTION smartetl._utc_trunc(unit text, t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (pg_catalog.date_trunc(unit, t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');

-- API: Private
-- The rollup columns, defined once: every column of kpi_hourly and
-- kpi_daily after (pipeline_id, bucket), in table order, and how a bucket's
-- runs make it.  Expressions are SQL over r, a run (a row of smartetl.run,
-- or of ingest's batch of new runs, which has the same column names), and
-- p, its pipeline:
--   count   the runs for which condition holds (all runs: NULL)
--   sum     the sum of value (NULL when every value is)
--   sketch  smartetl.qsketch_agg(value) of the runs for which condition holds
-- A new rollup column: add it to both tables (50_rollup.sql) and here;
-- _kpi_rollup_sql() writes every statement that fills the rollups
-- (smartetl._kpi_refresh and the bulk path, src/kpi/rollup.c) from this list,
-- and sql/definitions.sql checks the list against the tables.
CREATE FUNCTION smartetl._kpi_rollup_columns(OUT name text, OUT kind text, OUT value text, OUT condition text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $def$
    VALUES ('runs',         'count',  NULL,                             NULL),
           ('successes',    'count',  NULL,                             $c$r.status = 'success'$c$),
           ('failures',     'count',  NULL,                             $c$r.status = 'failed'$c$),
           ('skipped',      'count',  NULL,                             $c$r.status = 'skipped'$c$),
           ('cancelled',    'count',  NULL,                             $c$r.status = 'cancelled'$c$),
           ('running',      'count',  NULL,                             $c$r.status = 'running'$c$),
           ('retries',      'count',  NULL,                             $c$r.attempt > 1$c$),
           ('sla_breaches', 'count',  NULL,                             $c$r.duration > p.sla$c$),
           ('duration',     'sketch', $c$date_part('epoch', r.duration)$c$, $c$r.status IN ('success', 'failed')$c$),
           ('rows_read',    'sum',    $c$r.rows_read$c$,                 NULL),
           ('rows_written', 'sum',    $c$r.rows_written$c$,              NULL),
           ('bytes',        'sum',    $c$r.bytes$c$,                     NULL)
$def$;
COMMENT ON FUNCTION smartetl._kpi_rollup_columns() IS
'the KPI rollup columns (kpi_hourly, kpi_daily) and how a bucket''s runs make each: the one definition _kpi_rollup_sql() writes its statements from';

-- API: Private
-- The statements that fill the rollups, written from _kpi_rollup_columns():
--   refresh_hourly  recompute the hours of the (pipeline_ids, times) pairs
--                   (the arguments of _kpi_refresh, whose body this is) from
--                   smartetl.run, deleting buckets left without runs
--   refresh_daily   recompute the days of the same pairs from kpi_hourly
--   refresh_monthly recompute the months of the same pairs from kpi_daily
--   add_hourly, add_daily, add_monthly
--                   add the new runs of relation `source` (ingest's batch;
--                   runs that are all new) to their buckets: counts and sums
--                   add, sketches merge
-- The refreshes read each touched bucket through a LATERAL subquery kept
-- out of the join planning (OFFSET 0, an aggregate): one index range per
-- bucket (run_pipeline_time, the rollup's primary key), and the emptied
-- buckets are deleted by their ctids, whatever the statistics say.  The
-- rollup ranges are row comparisons on (pipeline_id, bucket), which only
-- the primary key can serve: on separate columns a planner that takes the
-- table for empty may pick the bucket index, a scan of every pipeline's
-- rows of that day per key.  After
-- autovacuum has seen smartetl.run or the rollups empty (reltuples = 0 with
-- pages), a large load or DELETE in one transaction looks empty to the
-- planner, which joined the keys and the table as a nested loop with a
-- whole scan per key (minutes for the Borg trace; BENCHMARKS.md).
-- Times outside the absolute limits of smartetl.run (run_time_limits) are
-- skipped: no run can be in their buckets, and bucket + 1 hour could
-- overflow at the ends of the timestamp range (a run stored before the
-- limits existed must not make every later change of its pipeline fail).
CREATE FUNCTION smartetl._kpi_rollup_sql(step text, source text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;        -- the column names
    from_runs text;   -- each column from the runs r of a bucket
    merged text;      -- each column from the hourly rows h of a day
    replaced text;    -- ON CONFLICT: the new value
    added text;       -- ON CONFLICT: the stored value k plus the new one
    unit text;
BEGIN
    SELECT string_agg(c.name, ', ' ORDER BY c.ord),
           string_agg(CASE c.kind
                          WHEN 'count' THEN 'count(r.status)'
                          WHEN 'sum' THEN 'sum(' || c.value || ')'
                          WHEN 'sketch' THEN 'smartetl.qsketch_agg(' || c.value || ')' END
                      || coalesce(' FILTER (WHERE ' || c.condition || ')', '')
                      || CASE c.kind WHEN 'sum' THEN '::bigint' ELSE '' END
                      || ' AS ' || c.name, ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN 'coalesce(sum(h.%1$s), 0)::bigint AS %1$s'
                                         WHEN 'sum' THEN 'sum(h.%1$s)::bigint AS %1$s'
                                         WHEN 'sketch' THEN 'smartetl.qsketch_merge(h.%1$s) AS %1$s' END,
                             c.name), ', ' ORDER BY c.ord),
           string_agg(format('%1$s = excluded.%1$s', c.name), ', ' ORDER BY c.ord),
           string_agg(format(CASE c.kind WHEN 'count' THEN '%1$s = k.%1$s + excluded.%1$s'
                                         WHEN 'sum' THEN '%1$s = CASE WHEN k.%1$s IS NULL AND excluded.%1$s IS NULL THEN NULL '
                                                         'ELSE coalesce(k.%1$s, 0) + coalesce(excluded.%1$s, 0) END'
                                         WHEN 'sketch' THEN '%1$s = smartetl.qsketch_combine(k.%1$s, excluded.%1$s)' END,
                             c.name), ', ' ORDER BY c.ord)
    INTO cols, from_runs, merged, replaced, added
    FROM smartetl._kpi_rollup_columns() WITH ORDINALITY c(name, kind, value, condition, ord);

    unit := CASE WHEN step IN ('refresh_hourly', 'add_hourly') THEN 'hour'
                 WHEN step IN ('refresh_daily', 'add_daily') THEN 'day' ELSE 'month' END;
    CASE step
    WHEN 'refresh_hourly', 'refresh_daily', 'refresh_monthly' THEN
        RETURN format($q$
WITH touched AS (
    SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc(%1$L, t) AS bucket
    FROM unnest(pipeline_ids, times) u(p, t)
    WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
), fresh AS (
    SELECT t.pipeline_id, t.bucket, x.*
    FROM touched t
    %3$s
    CROSS JOIN LATERAL (SELECT %2$s %7$s OFFSET 0) x
), gone AS (
    DELETE FROM smartetl.%4$I k
    WHERE k.ctid = ANY (ARRAY(
        SELECT g.tid FROM fresh f
        CROSS JOIN LATERAL (SELECT g.ctid AS tid FROM smartetl.%4$I g
                            WHERE (g.pipeline_id, g.bucket) >= (f.pipeline_id, f.bucket)
                              AND (g.pipeline_id, g.bucket) <= (f.pipeline_id, f.bucket) OFFSET 0) g
        WHERE f.runs = 0))
)
INSERT INTO smartetl.%4$I AS k (pipeline_id, bucket, %5$s)
SELECT pipeline_id, bucket, %5$s FROM fresh WHERE runs > 0
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            unit,
            CASE unit WHEN 'hour' THEN from_runs ELSE merged END,
            CASE unit
            WHEN 'hour' THEN
                'CROSS JOIN LATERAL (SELECT p.sla FROM smartetl.pipeline p '
                'WHERE p.pipeline_id = t.pipeline_id OFFSET 0) p'
            ELSE '' END,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' WHEN 'day' THEN 'kpi_daily' ELSE 'kpi_monthly' END, cols, replaced,
            CASE unit
            WHEN 'hour' THEN
                'FROM smartetl.run r WHERE r.pipeline_id = t.pipeline_id '
                'AND r.run_at >= t.bucket AND r.run_at < t.bucket + interval ''1 hour'''
            WHEN 'day' THEN
                'FROM smartetl.kpi_hourly h WHERE (h.pipeline_id, h.bucket) >= (t.pipeline_id, t.bucket) '
                'AND (h.pipeline_id, h.bucket) < (t.pipeline_id, t.bucket + interval ''1 day'')'
            ELSE
                'FROM smartetl.kpi_daily h WHERE (h.pipeline_id, h.bucket) >= (t.pipeline_id, t.bucket) '
                'AND (h.pipeline_id, h.bucket) < (t.pipeline_id, t.bucket + interval ''1 month'')' END);
    WHEN 'add_hourly', 'add_daily', 'add_monthly' THEN
        RETURN format($q$
INSERT INTO smartetl.%1$I AS k (pipeline_id, bucket, %2$s)
SELECT p.pipeline_id, smartetl._utc_trunc(%3$L, coalesce(r.started_at, r.ended_at)) AS bucket, %4$s
FROM %5$I r JOIN smartetl.pipeline p
  ON p.namespace OPERATOR(pg_catalog.=) r.namespace AND p.name OPERATOR(pg_catalog.=) r.pipeline
WHERE coalesce(r.started_at, r.ended_at) IS NOT NULL
GROUP BY 1, 2
ON CONFLICT (pipeline_id, bucket) DO UPDATE SET %6$s$q$,
            CASE unit WHEN 'hour' THEN 'kpi_hourly' WHEN 'day' THEN 'kpi_daily' ELSE 'kpi_monthly' END,
            cols, unit, from_runs, source, added);
    ELSE
        RAISE EXCEPTION 'unknown rollup step "%"', step USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;
COMMENT ON FUNCTION smartetl._kpi_rollup_sql(text, text) IS
'the SQL of one step filling the KPI rollups (refresh_hourly, refresh_daily, refresh_monthly, add_hourly, add_daily, add_monthly), written from _kpi_rollup_columns()';

-- API: Private
-- smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]):
-- recompute the rollups of the given (pipeline, time) pairs.  Takes the
-- ingest locks of those pipelines first, so that of two transactions
-- changing one pipeline the later recomputes after the earlier committed.
-- Every call is planned for its own key count (plan_cache_mode below), with
-- memory enough to sort a bulk load's keys without spilling.  Its three
-- statements are written by _kpi_rollup_sql() here, when the extension is
-- created (the upgrade script does the same), so they are static SQL whose
-- parse trees plpgsql keeps: a statement trigger pays only the planning.
-- The changed runs' failure streaks are then redone (60_kpi.sql) and the
-- runs scored for anomalies (70_anomaly.sql) with the same owner's rights.
DO $do$
BEGIN
    EXECUTE pg_catalog.format($create$
CREATE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $body$
BEGIN
    PERFORM smartetl._lock_pipelines(pipeline_ids);
%s;
%s;
%s;
    PERFORM smartetl._streak_refresh(pipeline_ids, times);
    PERFORM smartetl._anomaly_refresh(pipeline_ids, times);
END $body$$create$, smartetl._kpi_rollup_sql('refresh_hourly'), smartetl._kpi_rollup_sql('refresh_daily'),
    smartetl._kpi_rollup_sql('refresh_monthly'));
END $do$;

-- API: Private
-- Statement triggers: the hours of the rows before and after the change.
-- (Bulk ingest fires none; it adds its new runs itself, src/kpi/rollup.c.)
CREATE FUNCTION smartetl._run_kpi_new() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._kpi_refresh(array_agg(pipeline_id), array_agg(run_at)) FROM new_runs;
    RETURN NULL;
END $$;
CREATE FUNCTION smartetl._run_kpi_old() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._kpi_refresh(array_agg(pipeline_id), array_agg(run_at)) FROM old_runs;
    RETURN NULL;
END $$;
CREATE FUNCTION smartetl._run_kpi_both() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._kpi_refresh(array_agg(pipeline_id), array_agg(run_at))
    FROM (SELECT pipeline_id, run_at FROM old_runs UNION SELECT pipeline_id, run_at FROM new_runs) s;
    RETURN NULL;
END $$;
CREATE TRIGGER run_kpi_ins AFTER INSERT ON smartetl.run
    REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_kpi_new();
CREATE TRIGGER run_kpi_upd AFTER UPDATE ON smartetl.run
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_kpi_both();
CREATE TRIGGER run_kpi_del AFTER DELETE ON smartetl.run
    REFERENCING OLD TABLE AS old_runs FOR EACH STATEMENT EXECUTE FUNCTION smartetl._run_kpi_old();

-- API: Private
-- A pipeline's SLA decides its breach counts: recount all its buckets.
CREATE FUNCTION smartetl._pipeline_sla_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM smartetl._kpi_refresh(array_agg(h.pipeline_id), array_agg(h.bucket))
    FROM smartetl.kpi_hourly h
    WHERE h.pipeline_id IN (SELECT n.pipeline_id FROM new_pipelines n JOIN old_pipelines o USING (pipeline_id)
                            WHERE n.sla IS DISTINCT FROM o.sla);
    RETURN NULL;
END $$;
CREATE TRIGGER pipeline_sla_changed AFTER UPDATE ON smartetl.pipeline
    REFERENCING OLD TABLE AS old_pipelines NEW TABLE AS new_pipelines
    FOR EACH STATEMENT EXECUTE FUNCTION smartetl._pipeline_sla_changed();

-- API: Private
-- Rollup rows covering [from_ts, to_ts): whole UTC days from kpi_daily,
-- the hours at either end from kpi_hourly.
CREATE FUNCTION smartetl._kpi_buckets(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF smartetl.kpi_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH span AS (
        SELECT smartetl._utc_trunc('hour', from_ts) AS h0,
               smartetl._utc_trunc('day', from_ts + interval '1 day' - interval '1 microsecond') AS d0,
               smartetl._utc_trunc('day', to_ts) AS d1
    )
    SELECT d.* FROM smartetl.kpi_daily d, span
    WHERE d0 < d1 AND d.bucket >= d0 AND d.bucket < d1
    UNION ALL
    SELECT h.* FROM smartetl.kpi_hourly h, span
    WHERE h.bucket >= h0 AND h.bucket < to_ts
      AND (d0 >= d1 OR h.bucket < d0 OR h.bucket >= d1)
$$;

-- API: Private
-- Rollup rows covering [from_ts, to_ts) for totals per pipeline (not per
-- period): whole UTC months from kpi_monthly, the days around them from
-- kpi_daily, the hours at either end from kpi_hourly.  An end beyond every
-- run (the first or last hour holding runs, an index lookup each) is taken
-- as unbounded, so a range wider than the data reads whole months only:
-- the same runs, fewer rows (a year of 300 pipelines: 3,900 instead of
-- 110,000).  _kpi_buckets keeps days and hours for charts per day or week.
CREATE FUNCTION smartetl._kpi_spans(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF smartetl.kpi_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH ends AS (
        SELECT CASE WHEN smartetl._utc_trunc('hour', from_ts) <= (SELECT min(bucket) FROM smartetl.kpi_hourly)
                    THEN '-infinity' ELSE smartetl._utc_trunc('hour', from_ts) END AS h0,
               CASE WHEN to_ts > (SELECT max(bucket) FROM smartetl.kpi_hourly)
                    THEN 'infinity' ELSE to_ts END AS h1
    ), days AS (
        SELECT h0, h1,
               smartetl._utc_trunc('day', h0 + interval '1 day' - interval '1 microsecond') AS d0,
               smartetl._utc_trunc('day', h1) AS d1
        FROM ends
    ), span AS (
        SELECT h0, h1, d0, d1,
               smartetl._utc_trunc('month', d0 + interval '1 month' - interval '1 microsecond') AS m0,
               smartetl._utc_trunc('month', d1) AS m1
        FROM days
    )
    -- each part is one index range (an OR of ranges would scan them all)
    SELECT m.* FROM span, smartetl.kpi_monthly m
    WHERE m.bucket >= m0 AND m.bucket < m1
    UNION ALL
    SELECT d.* FROM span, smartetl.kpi_daily d
    WHERE d.bucket >= d0 AND d.bucket < CASE WHEN m0 < m1 THEN m0 ELSE d1 END
    UNION ALL
    SELECT d.* FROM span, smartetl.kpi_daily d
    WHERE d.bucket >= CASE WHEN m0 < m1 THEN m1 ELSE 'infinity' END AND d.bucket < d1
    UNION ALL
    SELECT h.* FROM span, smartetl.kpi_hourly h
    WHERE h.bucket >= h0 AND h.bucket < CASE WHEN d0 < d1 THEN d0 ELSE h1 END
    UNION ALL
    SELECT h.* FROM span, smartetl.kpi_hourly h
    WHERE h.bucket >= CASE WHEN d0 < d1 THEN d1 ELSE 'infinity' END AND h.bucket < h1
$$;
