-- ---------------------------------------------------------------------------
-- smartetl.pipeline_kpi(from, to): one row per pipeline with runs in the
-- range.  Counts, success rate, durations (mean exact, percentiles within
-- the qsketch bound), rows and throughput come from the rollups (whole
-- months from kpi_monthly, the days and hours at the ends from kpi_daily
-- and kpi_hourly, _kpi_spans; the range is rounded out to whole UTC
-- hours).  Sequence KPIs (MTTR, MTBF, failure streaks) come from the kept
-- streaks (failure_streak), the top error from the range's failed runs
-- (partial index run_failed_time); freshness reads each pipeline's latest
-- success.  So the cost follows pipelines, months, streaks and failures,
-- not the number of runs.
-- ---------------------------------------------------------------------------

-- API: Private
-- A pipeline is stale, and overdue, when its last success (or run) is
-- older than this many expected intervals: pipeline_kpi's and the
-- freshness view's "stale", overdue_pipelines, the anomalies view and the
-- report all read it here.
CREATE FUNCTION smartetl._stale_factor() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1.5;
COMMENT ON FUNCTION smartetl._stale_factor() IS
'how many expected intervals without a success (or a run) make a pipeline stale or overdue (1.5)';

-- API: Private
-- The interval a pipeline is expected to run at: its expected_interval,
-- else the median gap between its last 30 first tries before at_ts.
CREATE FUNCTION smartetl._expected_interval(p_pipeline_id bigint, at_ts timestamptz)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT expected_interval FROM smartetl.pipeline WHERE pipeline_id = p_pipeline_id),
        (SELECT make_interval(secs => percentile_cont(0.5) WITHIN GROUP (ORDER BY gap))
         FROM (SELECT extract(epoch FROM run_at - lag(run_at) OVER (ORDER BY run_at)) AS gap
               FROM (SELECT run_at FROM smartetl.run
                     WHERE pipeline_id = p_pipeline_id AND run_at < at_ts AND attempt <= 1
                     ORDER BY run_at DESC LIMIT 31) last) g
         WHERE gap > 0 HAVING count(*) >= 3))
$$;

-- API: Private
-- Failure streaks, kept as runs change: each maximal set of a pipeline's
-- failed runs that the same success ends (the first success later than
-- them; among successes at one time, the one that finished first), or
-- that no success ends yet.  _failure_streaks reads it for any range
-- (recounting in the index only the streaks cut by the range's ends), so
-- pipeline_kpi's MTTR, MTBF and longest streak cost the streaks, not one
-- index probe per failed run.
CREATE TABLE smartetl.failure_streak (
    pipeline_id   bigint NOT NULL,
    began         timestamptz NOT NULL,
    last_failed   timestamptz NOT NULL,
    failed_runs   bigint NOT NULL,
    recovered_at  timestamptz,
    recovered     timestamptz,
    PRIMARY KEY (pipeline_id, began)
);
COMMENT ON TABLE smartetl.failure_streak IS
'per pipeline, each streak of consecutive failed runs: the first (began) and last failed run''s run_at, how many, and the success that ended it (its run_at, recovered_at, and when it finished, recovered; NULL while it lasts); kept by _streak_refresh as runs change';
CREATE INDEX failure_streak_last_failed ON smartetl.failure_streak (last_failed);

-- API: Private
-- Redo the failure streaks of the changed (pipeline, run time) pairs: by
-- _kpi_refresh (runs changed with SQL) and by bulk ingest for its new runs
-- (src/kpi/rollup.c).  A streak ended by a success before a pipeline's
-- earliest change t cannot change; every later streak (ended at or after
-- t, or lasting) is deleted and recounted from the runs since the start of
-- the earliest of them (or t): for runs arriving in order, the pipeline's
-- last streak and its new runs.  Runs are read per pipeline through
-- run_pipeline_time in a LATERAL subquery kept out of the join planning
-- (OFFSET 0), whatever the statistics of a table loaded in the same
-- transaction say.  In the window's order (time, successes first at one
-- time, then the earlier finish), a failed run's streak is the number of
-- successes before it; the success numbered one more ends it.
CREATE FUNCTION smartetl._streak_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB' SET jit = off AS $$
DECLARE
    changed bigint[];          -- the changed pipelines
    redo_from timestamptz[];   -- per changed pipeline: streaks and runs from then on
BEGIN
    SELECT array_agg(c.p ORDER BY c.p), array_agg(least(c.t, k.began) ORDER BY c.p)
    INTO changed, redo_from
    FROM (SELECT p, min(t) AS t FROM unnest(pipeline_ids, times) u(p, t)
          WHERE p IS NOT NULL AND t IS NOT NULL GROUP BY p) c
    CROSS JOIN LATERAL (
        SELECT min(k.began) AS began FROM smartetl.failure_streak k
        WHERE k.pipeline_id = c.p AND (k.recovered_at IS NULL OR k.recovered_at >= c.t) OFFSET 0) k;
    IF changed IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM smartetl.failure_streak k
    WHERE k.ctid = ANY (ARRAY(
        SELECT g.tid FROM unnest(changed, redo_from) u(p, t)
        CROSS JOIN LATERAL (SELECT g.ctid AS tid FROM smartetl.failure_streak g
                            WHERE g.pipeline_id = u.p AND g.began >= u.t OFFSET 0) g));
    INSERT INTO smartetl.failure_streak (pipeline_id, began, last_failed, failed_runs, recovered_at, recovered)
    SELECT pipeline_id, min(run_at) FILTER (WHERE failed), max(run_at) FILTER (WHERE failed),
           count(*) FILTER (WHERE failed), max(run_at) FILTER (WHERE NOT failed),
           max(done) FILTER (WHERE NOT failed)
    FROM (SELECT u.p AS pipeline_id, r.run_at, r.failed, r.done,
                 count(*) FILTER (WHERE NOT r.failed)
                     OVER (PARTITION BY u.p ORDER BY r.run_at, r.failed, r.done ROWS UNBOUNDED PRECEDING)
                 - CASE WHEN r.failed THEN 0 ELSE 1 END AS streak
          FROM unnest(changed, redo_from) u(p, t)
          CROSS JOIN LATERAL (
              SELECT r.run_at, r.status = 'failed' AS failed, coalesce(r.ended_at, r.run_at) AS done
              FROM smartetl.run r
              WHERE r.pipeline_id = u.p AND r.run_at >= u.t AND r.status IN ('failed', 'success') OFFSET 0) r) s
    GROUP BY pipeline_id, streak
    HAVING bool_or(failed);
END $$;
COMMENT ON FUNCTION smartetl._streak_refresh(bigint[], timestamptz[]) IS
'redo the failure streaks (failure_streak) of the changed (pipeline, run time) pairs: every streak not ended before a pipeline''s earliest change is recounted from the runs';

-- API: Private
-- Failure incidents in a range: each streak of consecutive failed runs of a
-- pipeline, when it began, how many runs it lasted and when the success
-- that ended it finished (NULL while it lasts, or when that success is not
-- before to_ts).  Only the failed runs of the range count: a streak cut by
-- from_ts begins at its first failed run in the range, one cut by to_ts is
-- counted up to it (index lookups in run_failed_time, at most two streaks
-- per pipeline); every other streak is read as kept in failure_streak (a
-- plain scan: the two kinds are two parts of a UNION ALL).
CREATE FUNCTION smartetl._failure_streaks(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (pipeline_id bigint, began timestamptz, failed_runs bigint, recovered timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.pipeline_id, k.began, k.failed_runs, k.recovered
    FROM smartetl.failure_streak k
    WHERE k.began >= from_ts AND k.recovered_at < to_ts
    UNION ALL
    SELECT k.pipeline_id, e.began, e.n, CASE WHEN k.recovered_at < to_ts THEN k.recovered END
    FROM smartetl.failure_streak k
    CROSS JOIN LATERAL (
        SELECT min(f.run_at) AS began, count(*) AS n FROM smartetl.run f
        WHERE f.pipeline_id = k.pipeline_id AND f.status = 'failed'
          AND f.run_at >= greatest(k.began, from_ts) AND f.run_at <= k.last_failed AND f.run_at < to_ts) e
    WHERE k.last_failed >= from_ts AND k.began < to_ts
      AND (k.began < from_ts OR k.recovered_at IS NULL OR k.recovered_at >= to_ts) AND e.n > 0
$$;

-- API: Public
CREATE FUNCTION smartetl.pipeline_kpi(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (
    pipeline_id            bigint,
    namespace              text,
    pipeline               text,
    runs                   bigint,
    failures               bigint,
    success_rate           double precision,
    mean_duration_s        double precision,
    p50_duration_s         double precision,
    p95_duration_s         double precision,
    p99_duration_s         double precision,
    rows_read              bigint,
    rows_written           bigint,
    throughput_rows_s      double precision,
    retries                bigint,
    mttr                   interval,
    mtbf                   interval,
    longest_failure_streak bigint,
    last_success           timestamptz,
    expected_interval      interval,
    freshness_lag          interval,
    stale                  boolean,
    sla_breaches           bigint,
    top_error_template_id  bigint,
    top_error              text,
    top_error_count        bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH agg AS (
        SELECT b.pipeline_id, sum(b.runs)::bigint AS runs, sum(b.successes)::bigint AS successes,
               sum(b.failures)::bigint AS failures, sum(b.retries)::bigint AS retries,
               sum(b.sla_breaches)::bigint AS sla_breaches,
               smartetl.qsketch_merge(b.duration) AS duration,
               sum(b.rows_read)::bigint AS rows_read, sum(b.rows_written)::bigint AS rows_written
        FROM smartetl._kpi_spans(from_ts, to_ts) b
        GROUP BY b.pipeline_id
    ), streaks AS (
        SELECT s.pipeline_id, avg(s.recovered - s.began) AS mttr,
               (max(s.began) - min(s.began)) / nullif(count(*) - 1, 0) AS mtbf,
               max(s.failed_runs) AS longest
        FROM smartetl._failure_streaks(from_ts, to_ts) s
        GROUP BY s.pipeline_id
    )
    SELECT a.pipeline_id, p.namespace, p.name, a.runs, a.failures,
           a.successes::float8 / nullif(a.successes + a.failures, 0),
           smartetl.qsketch_mean(a.duration),
           q[1], q[2], q[3],
           a.rows_read, a.rows_written,
           a.rows_written / nullif(smartetl.qsketch_mean(a.duration) * smartetl.qsketch_count(a.duration), 0),
           a.retries,
           st.mttr, st.mtbf, st.longest,
           ls.last_success, ei.expected, lag.v,
           lag.v > ei.expected * smartetl._stale_factor(),
           a.sla_breaches,
           te.template_id, te.template, te.n
    FROM agg a
    JOIN smartetl.pipeline p USING (pipeline_id)
    CROSS JOIN LATERAL (SELECT smartetl.quantiles(a.duration, '{0.5,0.95,0.99}') AS q) qq
    LEFT JOIN streaks st ON st.pipeline_id = a.pipeline_id
    LEFT JOIN LATERAL (
        SELECT coalesce(r.ended_at, r.run_at) AS last_success FROM smartetl.run r
        WHERE r.pipeline_id = a.pipeline_id AND r.status = 'success' AND r.run_at < to_ts
        ORDER BY r.run_at DESC LIMIT 1) ls ON true
    CROSS JOIN LATERAL (SELECT smartetl._expected_interval(a.pipeline_id, to_ts) AS expected) ei
    CROSS JOIN LATERAL (
        SELECT least(to_ts, now()) - coalesce(ls.last_success,
            (SELECT min(r.run_at) FROM smartetl.run r WHERE r.pipeline_id = a.pipeline_id)) AS v) lag
    LEFT JOIN LATERAL (
        SELECT r.template_id, t.template, count(*) AS n FROM smartetl.run r
        JOIN smartetl.template t USING (template_id)
        WHERE r.pipeline_id = a.pipeline_id AND r.run_at >= from_ts AND r.run_at < to_ts
          AND r.status = 'failed'
        GROUP BY r.template_id, t.template ORDER BY n DESC, r.template_id LIMIT 1) te ON true
    ORDER BY p.namespace, p.name
$$;
COMMENT ON FUNCTION smartetl.pipeline_kpi(timestamptz, timestamptz) IS
'per pipeline over [from, to) rounded to whole UTC hours: runs, failures, success_rate (successes / finished), mean and p50/p95/p99 duration (s), rows, throughput (rows written per second of run time), retries, MTTR (failure streak start to the success that ends it), MTBF (between failure streak starts), longest failure streak, last success, expected interval (set, or the median gap of recent runs), freshness lag and stale (lag > 1.5 x expected), SLA breaches, most frequent error template';
