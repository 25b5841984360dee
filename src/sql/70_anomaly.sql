-- ---------------------------------------------------------------------------
-- Anomalies: runs whose duration or volume (rows written) is abnormal for
-- their pipeline, pipelines that missed a run, and stale pipelines.
--
-- A run is scored against a robust baseline of the same pipeline's earlier
-- successful runs only, never itself, on log(1 + x) (durations and volumes
-- vary by factors, not by amounts).  The expected value is the median of
-- the same hour of the week in the previous 8 weeks when at least 4 such
-- runs exist (daily and weekly seasonality), else of the previous 30 runs.
-- The spread is the MAD of the previous 100 runs' own residuals against
-- their expected values, so seasonality does not widen it and a handful of
-- same-hour runs does not make it noisy: score = (log(1 + x) - expected) /
-- max(1.4826 * MAD, 0.05), and |score| > threshold is an anomaly.  Scoring
-- starts once a pipeline has 8 such residuals.  The default threshold, 4,
-- keeps false alarms near 1 in 10,000 runs for normally distributed noise
-- while a doubling of a run's duration is still far beyond it for a
-- pipeline whose runs vary by 15 %.  The
-- expected range is the baseline +- threshold * scale in the value's units.
-- ---------------------------------------------------------------------------

-- API: Private (aggregate support, src/kpi/robust_baseline.c)
CREATE FUNCTION smartetl._median_mad_add(internal, double precision) RETURNS internal
AS 'MODULE_PATHNAME', 'median_mad_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._median_mad_final(internal) RETURNS double precision[]
AS 'MODULE_PATHNAME', 'median_mad_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- API: Public
CREATE AGGREGATE smartetl.median_mad(double precision) (
    SFUNC = smartetl._median_mad_add,
    STYPE = internal,
    FINALFUNC = smartetl._median_mad_final,
    FINALFUNC_MODIFY = READ_ONLY
);
COMMENT ON AGGREGATE smartetl.median_mad(double precision) IS '{median, MAD, n} of the non-NULL, non-NaN values; usable as a window function over moving frames';

-- API: Public
CREATE FUNCTION smartetl.detect_anomalies(from_ts timestamptz, to_ts timestamptz,
                                          threshold double precision DEFAULT 4.0)
RETURNS TABLE (
    run_id        bigint,
    pipeline_id   bigint,
    pipeline      text,
    run_at        timestamptz,
    kind          text,
    value         double precision,
    expected      double precision,
    expected_low  double precision,
    expected_high double precision,
    score         double precision,
    baseline      text,
    baseline_runs integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH runs AS (
        SELECT r.run_id, r.pipeline_id, r.run_at, m.kind, m.x, ln(1 + m.x) AS lx,
               (extract(isodow FROM r.run_at AT TIME ZONE 'UTC') * 24
                + extract(hour FROM r.run_at AT TIME ZONE 'UTC'))::int AS how
        FROM smartetl.run r
        CROSS JOIN LATERAL (VALUES ('duration', r.duration_s), ('volume', r.rows_written::float8)) m(kind, x)
        WHERE r.status = 'success' AND m.x >= 0
          AND r.run_at >= from_ts - interval '120 days' AND r.run_at < to_ts
    ), based AS (
        SELECT runs.*, smartetl.median_mad(lx) OVER seasonal AS season,
               smartetl.median_mad(lx) OVER recent AS recent
        FROM runs
        WINDOW seasonal AS (PARTITION BY pipeline_id, kind, how ORDER BY run_at, run_id
                            ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
               recent AS (PARTITION BY pipeline_id, kind ORDER BY run_at, run_id
                          ROWS BETWEEN 30 PRECEDING AND 1 PRECEDING)
    ), centered AS (
        SELECT based.*,
               CASE WHEN season[3] >= 4 THEN season[1] WHEN recent[3] >= 8 THEN recent[1] END AS center,
               CASE WHEN season[3] >= 4 THEN 'hour_of_week' ELSE 'recent_runs' END AS baseline,
               CASE WHEN season[3] >= 4 THEN season[3] ELSE recent[3] END AS n_base
        FROM based
    ), spread AS (
        SELECT centered.*, smartetl.median_mad(lx - center) OVER (
                   PARTITION BY pipeline_id, kind ORDER BY run_at, run_id
                   ROWS BETWEEN 100 PRECEDING AND 1 PRECEDING) AS resid
        FROM centered
    ), scored AS (
        SELECT *, greatest(1.4826 * resid[2], 0.05) AS scale
        FROM spread WHERE run_at >= from_ts AND center IS NOT NULL AND resid[3] >= 8
    )
    SELECT s.run_id, s.pipeline_id, p.name, s.run_at, s.kind, s.x,
           exp(s.center) - 1,
           greatest(exp(s.center - threshold * s.scale) - 1, 0),
           exp(s.center + threshold * s.scale) - 1,
           (s.lx - s.center) / s.scale,
           s.baseline, s.n_base::int
    FROM scored s JOIN smartetl.pipeline p USING (pipeline_id)
    WHERE abs(s.lx - s.center) / s.scale > threshold
    ORDER BY s.run_at, s.run_id, s.kind
$$;
COMMENT ON FUNCTION smartetl.detect_anomalies(timestamptz, timestamptz, double precision) IS
'successful runs in [from, to) whose duration or volume is abnormal against a robust baseline of earlier runs only (median/MAD of log(1+x), hour-of-week when there is enough history, else the last 30 runs)';

-- API: Public
-- Pipelines that should have run by at_ts and did not (missing_run), or
-- whose last success is too old (freshness; a pipeline that never
-- succeeded counts from its first run): more than 1.5 expected intervals
-- (set, or inferred from recent runs) have passed.
CREATE FUNCTION smartetl.overdue_pipelines(at_ts timestamptz DEFAULT now())
RETURNS TABLE (pipeline_id bigint, pipeline text, kind text, last_at timestamptz,
               expected_interval interval, overdue_by interval)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.name, k.kind, k.last_at, e.expected,
           justify_interval(at_ts - k.last_at - e.expected * smartetl._stale_factor())
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL (SELECT smartetl._expected_interval(p.pipeline_id, at_ts) AS expected) e
    CROSS JOIN LATERAL (
        SELECT min(r.run_at) AS first_run, max(r.run_at) AS last_run,
               max(coalesce(r.ended_at, r.run_at)) FILTER (WHERE r.status = 'success') AS last_success
        FROM smartetl.run r WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) h
    CROSS JOIN LATERAL (VALUES ('missing_run'::text, h.last_run),
                               ('freshness', coalesce(h.last_success, h.first_run))) k(kind, last_at)
    WHERE e.expected IS NOT NULL AND k.last_at IS NOT NULL
      AND at_ts - k.last_at > e.expected * smartetl._stale_factor()
$$;
COMMENT ON FUNCTION smartetl.overdue_pipelines(timestamptz) IS
'pipelines with no run (missing_run) or no success (freshness) for more than 1.5 expected intervals';

-- API: Public
CREATE VIEW smartetl.anomalies AS
SELECT a.kind, a.pipeline_id, a.pipeline, a.run_id, a.run_at AS at, a.value, a.expected,
       a.expected_low, a.expected_high, a.score, a.baseline
FROM smartetl.detect_anomalies(now() - interval '168 hours', now()) a
UNION ALL
SELECT o.kind, o.pipeline_id, o.pipeline, NULL, o.last_at,
       extract(epoch FROM now() - o.last_at), extract(epoch FROM o.expected_interval),
       NULL, extract(epoch FROM o.expected_interval * smartetl._stale_factor()), NULL, 'expected_interval'
FROM smartetl.overdue_pipelines(now()) o;
COMMENT ON VIEW smartetl.anomalies IS
'the last 7 days: abnormal durations and volumes (detect_anomalies), and pipelines overdue for a run or a success (value/expected in seconds since the last one)';
