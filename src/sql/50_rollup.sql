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

-- API: Private
-- The UTC hour or day a time falls in.
CREATE FUNCTION smartetl._utc_trunc(unit text, t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (pg_catalog.date_trunc(unit, t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');

-- API: Private
-- Recompute the rollups of the given (pipeline, time) pairs.  Takes the
-- ingest locks of those pipelines first, so that of two transactions
-- changing one pipeline the later recomputes after the earlier committed.
-- The joins carry both the time range (index scans for a few buckets) and
-- the bucket equality (a hash join for a bulk load's many), and every call
-- is planned for its own key count (plan_cache_mode below), with memory
-- enough to sort a bulk load's keys without spilling.  Times outside the
-- absolute limits of smartetl.run (run_time_limits) are skipped: no run
-- can be in their buckets, and bucket + 1 hour could overflow at the ends
-- of the timestamp range (a run stored before the limits existed must not
-- make every later change of its pipeline fail).
CREATE FUNCTION smartetl._kpi_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan SET work_mem = '64MB' AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1397572948, k)
    FROM (SELECT DISTINCT (p % 64)::int4 AS k FROM unnest(pipeline_ids) p WHERE p IS NOT NULL ORDER BY 1) s;

    WITH touched AS (
        SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc('hour', t) AS bucket
        FROM unnest(pipeline_ids, times) u(p, t)
        WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
    ), fresh AS (
        SELECT t.pipeline_id, t.bucket,
               count(r.run_id) AS runs,
               count(*) FILTER (WHERE r.status = 'success') AS successes,
               count(*) FILTER (WHERE r.status = 'failed') AS failures,
               count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
               count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE r.status = 'running') AS running,
               count(*) FILTER (WHERE r.attempt > 1) AS retries,
               count(*) FILTER (WHERE r.duration > p.sla) AS sla_breaches,
               smartetl.qsketch_agg(r.duration_s) FILTER (WHERE r.status IN ('success', 'failed'))
                   AS duration,
               sum(r.rows_read)::bigint AS rows_read,
               sum(r.rows_written)::bigint AS rows_written,
               sum(r.bytes)::bigint AS bytes
        FROM touched t
        JOIN smartetl.pipeline p ON p.pipeline_id = t.pipeline_id
        LEFT JOIN smartetl.run r ON r.pipeline_id = t.pipeline_id
             AND r.run_at >= t.bucket AND r.run_at < t.bucket + interval '1 hour'
             AND smartetl._utc_trunc('hour', r.run_at) = t.bucket
        GROUP BY t.pipeline_id, t.bucket
    ), gone AS (
        DELETE FROM smartetl.kpi_hourly h USING fresh f
        WHERE h.pipeline_id = f.pipeline_id AND h.bucket = f.bucket AND f.runs = 0
    )
    INSERT INTO smartetl.kpi_hourly AS h
    SELECT * FROM fresh WHERE runs > 0
    ON CONFLICT (pipeline_id, bucket) DO UPDATE SET
        runs = excluded.runs, successes = excluded.successes, failures = excluded.failures,
        skipped = excluded.skipped, cancelled = excluded.cancelled, running = excluded.running,
        retries = excluded.retries, sla_breaches = excluded.sla_breaches,
        duration = excluded.duration, rows_read = excluded.rows_read,
        rows_written = excluded.rows_written, bytes = excluded.bytes;

    WITH touched AS (
        SELECT DISTINCT p AS pipeline_id, smartetl._utc_trunc('day', t) AS bucket
        FROM unnest(pipeline_ids, times) u(p, t)
        WHERE p IS NOT NULL AND t >= '1900-01-01 00:00:00+00' AND t < '2200-01-01 00:00:00+00'
    ), fresh AS (
        SELECT t.pipeline_id, t.bucket,
               coalesce(sum(h.runs), 0)::bigint AS runs, sum(h.successes)::bigint AS successes,
               sum(h.failures)::bigint AS failures, sum(h.skipped)::bigint AS skipped,
               sum(h.cancelled)::bigint AS cancelled, sum(h.running)::bigint AS running,
               sum(h.retries)::bigint AS retries, sum(h.sla_breaches)::bigint AS sla_breaches,
               smartetl.qsketch_merge(h.duration) AS duration,
               sum(h.rows_read)::bigint AS rows_read, sum(h.rows_written)::bigint AS rows_written,
               sum(h.bytes)::bigint AS bytes
        FROM touched t
        LEFT JOIN smartetl.kpi_hourly h ON h.pipeline_id = t.pipeline_id
             AND h.bucket >= t.bucket AND h.bucket < t.bucket + interval '1 day'
             AND smartetl._utc_trunc('day', h.bucket) = t.bucket
        GROUP BY t.pipeline_id, t.bucket
    ), gone AS (
        DELETE FROM smartetl.kpi_daily d USING fresh f
        WHERE d.pipeline_id = f.pipeline_id AND d.bucket = f.bucket AND f.runs = 0
    )
    INSERT INTO smartetl.kpi_daily AS d
    SELECT * FROM fresh WHERE runs > 0
    ON CONFLICT (pipeline_id, bucket) DO UPDATE SET
        runs = excluded.runs, successes = excluded.successes, failures = excluded.failures,
        skipped = excluded.skipped, cancelled = excluded.cancelled, running = excluded.running,
        retries = excluded.retries, sla_breaches = excluded.sla_breaches,
        duration = excluded.duration, rows_read = excluded.rows_read,
        rows_written = excluded.rows_written, bytes = excluded.bytes;
END $$;

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
