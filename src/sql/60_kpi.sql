-- ---------------------------------------------------------------------------
-- smartetl.pipeline_kpi(from, to): one row per pipeline with runs in the
-- range.  Counts, success rate, durations (mean exact, percentiles within
-- the qsketch bound), rows and throughput come from the rollups (whole
-- days from kpi_daily, the hours at the ends from kpi_hourly; the range is
-- rounded out to whole UTC hours).  Sequence KPIs (MTTR, MTBF, failure
-- streaks) and the top error read only the range's failed runs (partial
-- index run_failed_time) and the success after each; freshness reads each
-- pipeline's latest success.  So the cost follows pipelines, days and
-- failures, not the number of runs.
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
-- Failure incidents in a range: each streak of consecutive failed runs of a
-- pipeline, when it began, how many runs it lasted and when the success
-- that ended it finished (NULL while it lasts).  Failures are few: each
-- finds its next success through the index, and failures sharing that
-- success are one streak, so the cost follows the failures, not the runs.
CREATE FUNCTION smartetl._failure_streaks(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (pipeline_id bigint, began timestamptz, failed_runs bigint, recovered timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.pipeline_id, min(f.run_at), count(*), ns.done
    FROM smartetl.run f
    LEFT JOIN LATERAL (
        SELECT s.run_at, coalesce(s.ended_at, s.run_at) AS done FROM smartetl.run s
        WHERE s.pipeline_id = f.pipeline_id AND s.run_at > f.run_at AND s.run_at < to_ts
          AND s.status = 'success'
        ORDER BY s.run_at LIMIT 1) ns ON true
    WHERE f.status = 'failed' AND f.run_at >= from_ts AND f.run_at < to_ts
    GROUP BY f.pipeline_id, ns.run_at, ns.done
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
        FROM smartetl._kpi_buckets(from_ts, to_ts) b
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
