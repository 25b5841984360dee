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

-- API: Private (window aggregate, src/kpi/anomaly_scan.c)
CREATE FUNCTION smartetl._anomaly_scan_add(internal, double precision[], double precision, double precision,
                                           timestamptz, boolean) RETURNS internal
AS 'MODULE_PATHNAME', 'anomaly_scan_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._anomaly_scan_row(internal) RETURNS double precision[]
AS 'MODULE_PATHNAME', 'anomaly_scan_row' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- API: Private
CREATE AGGREGATE smartetl._anomaly_scan(double precision[], double precision, double precision,
                                        timestamptz, boolean) (
    SFUNC = smartetl._anomaly_scan_add,
    STYPE = internal,
    FINALFUNC = smartetl._anomaly_scan_row,
    FINALFUNC_MODIFY = READ_ONLY
);
COMMENT ON AGGREGATE smartetl._anomaly_scan(double precision[], double precision, double precision, timestamptz, boolean) IS
'window aggregate over one pipeline''s successful runs in time order (seed windows, log duration, log volume, run_at, is_last): each run''s {center, scale, baseline runs, seasonal} per kind, and on the last run the windows to keep';

-- API: Public
-- Each successful run's anomaly baseline and score, per kind, computed when
-- the run arrives (from the pipeline's earlier runs only, so a score never
-- changes unless earlier runs do).  A kind's columns are NULL where the run
-- was not scored (no baseline yet, or no value).
CREATE TABLE smartetl.run_anomaly_score (
    run_id            bigint NOT NULL,
    pipeline_id       bigint NOT NULL,
    run_at            timestamptz NOT NULL,
    duration_s        double precision,
    duration_expected double precision,
    duration_scale    double precision,
    duration_score    double precision,
    duration_runs     integer,
    duration_seasonal boolean,
    rows_written      double precision,
    volume_expected   double precision,
    volume_scale      double precision,
    volume_score      double precision,
    volume_runs       integer,
    volume_seasonal   boolean,
    -- one index serves the rescoring of a pipeline and detect_anomalies (a
    -- range per pipeline); every index more costs a bulk load one insert per run
    PRIMARY KEY (pipeline_id, run_at, run_id)
);
COMMENT ON TABLE smartetl.run_anomaly_score IS
'per successful run and kind (duration, volume): the baseline (expected = median of log(1 + x) of earlier runs, scale = robust spread of their residuals), the score (log(1 + x) - expected) / scale and the baseline''s run count and kind; kept by _anomaly_refresh as runs change';
-- the runs scored far out (|score| > 3; the default threshold is 4), so that
-- detect_anomalies over a range reads those instead of every score in it
CREATE INDEX run_anomaly_score_far ON smartetl.run_anomaly_score (run_at)
    WHERE abs(duration_score) > 3 OR abs(volume_score) > 3;

-- API: Private
-- Per pipeline: the baseline windows after its last scored run (run_at =
-- last_at), so that newer runs are scored without reading the history.
CREATE TABLE smartetl.anomaly_state (
    pipeline_id bigint NOT NULL PRIMARY KEY,
    last_at     timestamptz NOT NULL,
    windows     double precision[] NOT NULL
);
COMMENT ON TABLE smartetl.anomaly_state IS
'per pipeline, the anomaly baseline windows (src/kpi/anomaly_scan.c) after its latest successful run (last_at): the seed of the next scoring';

-- API: Private
-- Score the runs of changed pipelines: called with the (pipeline, run time)
-- pairs of changed runs, by _kpi_refresh (runs changed with SQL) and by
-- bulk ingest for its new runs (src/kpi/rollup.c).  A pipeline whose
-- changes are all later than its last scored run continues from its kept
-- windows over the new runs only; any other change (a late, corrected or
-- deleted run) rescans the pipeline from its first run, so the scores
-- never depend on the order runs arrived in, and rewrites the scores from
-- its earliest change on (a run's score depends on earlier runs only, so
-- the ones before stay as they are).  Every statement is set-based over
-- the changed pipelines (a bulk DELETE or UPDATE of many pipelines' runs
-- costs one pass over their runs), and reads each pipeline's runs through
-- run_pipeline_time (the OFFSET 0 keeps the lateral subquery a
-- per-pipeline index range, whatever the statistics of a table loaded in
-- the same transaction say).  A bulk load sorts all its new runs: memory
-- as _kpi_refresh has; no JIT (the work is in the C aggregate and the
-- writes, and a bulk change's estimate would compile it on every call).
CREATE FUNCTION smartetl._anomaly_refresh(pipeline_ids bigint[], times timestamptz[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB' SET jit = off AS $$
DECLARE
    changed bigint[];           -- the changed pipelines
    rescan_from timestamptz[];  -- per changed pipeline: rescanned, scores rewritten from then on; NULL: continued
    any_rescan boolean;
BEGIN
    SELECT array_agg(c.p ORDER BY c.p),
           array_agg(CASE WHEN s.pipeline_id IS NULL OR c.t <= s.last_at THEN c.t END ORDER BY c.p),
           bool_or(s.pipeline_id IS NULL OR c.t <= s.last_at)
    INTO changed, rescan_from, any_rescan
    FROM (SELECT p, min(t) AS t FROM unnest(pipeline_ids, times) u(p, t)
          WHERE p IS NOT NULL AND t IS NOT NULL GROUP BY p) c
    LEFT JOIN smartetl.anomaly_state s ON s.pipeline_id = c.p;
    IF changed IS NULL THEN
        RETURN;
    END IF;
    IF any_rescan THEN
        DELETE FROM smartetl.run_anomaly_score k USING unnest(changed, rescan_from) u(p, t)
        WHERE k.pipeline_id = u.p AND k.run_at >= u.t;
        DELETE FROM smartetl.anomaly_state k USING unnest(changed, rescan_from) u(p, t)
        WHERE k.pipeline_id = u.p AND u.t IS NOT NULL;
    END IF;
    WITH scan AS MATERIALIZED (
        SELECT r.run_id, r.pipeline_id, r.run_at, r.duration_s, r.rows_written, r.is_last, r.from_t,
               smartetl._anomaly_scan(r.seed, r.lx_d, r.lx_v, r.run_at, r.is_last)
                   OVER (PARTITION BY r.pipeline_id ORDER BY r.run_at, r.run_id ROWS UNBOUNDED PRECEDING) AS o
        FROM (SELECT r.run_id, c.pipeline_id, r.run_at, r.duration_s, r.rows_written::float8 AS rows_written, s.windows AS seed,
                     c.from_t,
                     CASE WHEN r.duration_s >= 0 THEN ln(1 + r.duration_s) END AS lx_d,
                     CASE WHEN r.rows_written::float8 >= 0 THEN ln(1 + r.rows_written::float8) END AS lx_v,
                     lead(r.run_id) OVER (PARTITION BY c.pipeline_id ORDER BY r.run_at, r.run_id) IS NULL AS is_last
              FROM unnest(changed, rescan_from) c(pipeline_id, from_t)
              LEFT JOIN smartetl.anomaly_state s ON s.pipeline_id = c.pipeline_id
              CROSS JOIN LATERAL (
                  SELECT r.run_id, r.run_at, r.duration_s, r.rows_written FROM smartetl.run r
                  WHERE r.pipeline_id = c.pipeline_id AND r.status = 'success'
                    AND r.run_at > coalesce(s.last_at, '-infinity') OFFSET 0) r) r
    ), scored AS (
        INSERT INTO smartetl.run_anomaly_score
        SELECT run_id, pipeline_id, run_at,
               duration_s, o[1], o[2], (ln(1 + duration_s) - o[1]) / o[2], o[3]::int, o[4] = 1,
               rows_written, o[5], o[6], (ln(1 + rows_written) - o[5]) / o[6], o[7]::int, o[8] = 1
        FROM scan WHERE (o[1] IS NOT NULL OR o[5] IS NOT NULL) AND (from_t IS NULL OR run_at >= from_t)
    )
    INSERT INTO smartetl.anomaly_state AS k (pipeline_id, last_at, windows)
    SELECT pipeline_id, run_at, o[9:] FROM scan WHERE is_last
    ON CONFLICT (pipeline_id) DO UPDATE SET last_at = excluded.last_at, windows = excluded.windows;
END $$;
COMMENT ON FUNCTION smartetl._anomaly_refresh(bigint[], timestamptz[]) IS
'score the successful runs of the changed (pipeline, time) pairs into run_anomaly_score: from the kept windows when every change is newer than the pipeline''s last scored run, else the whole pipeline again (scores rewritten from the earliest change on)';

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
    SELECT s.run_id, s.pipeline_id, p.name, s.run_at, m.kind, m.x,
           exp(m.center) - 1,
           greatest(exp(m.center - threshold * m.scale) - 1, 0),
           exp(m.center + threshold * m.scale) - 1,
           m.score,
           CASE WHEN m.seasonal THEN 'hour_of_week' ELSE 'recent_runs' END, m.n
    FROM smartetl.pipeline p
    JOIN (-- a threshold of 3 or more: the far scores only (run_anomaly_score_far)
          SELECT s.* FROM smartetl.run_anomaly_score s
          WHERE threshold >= 3 AND s.run_at >= from_ts AND s.run_at < to_ts
            AND (abs(s.duration_score) > 3 OR abs(s.volume_score) > 3)
          UNION ALL
          -- a lower one: every score of the range, per pipeline
          SELECT s.* FROM smartetl.pipeline q
          JOIN smartetl.run_anomaly_score s
            ON s.pipeline_id = q.pipeline_id AND s.run_at >= from_ts AND s.run_at < to_ts
          WHERE threshold < 3) s ON s.pipeline_id = p.pipeline_id
    CROSS JOIN LATERAL (VALUES ('duration', s.duration_s, s.duration_expected, s.duration_scale, s.duration_score,
                                s.duration_seasonal, s.duration_runs),
                               ('volume', s.rows_written, s.volume_expected, s.volume_scale, s.volume_score,
                                s.volume_seasonal, s.volume_runs)) m(kind, x, center, scale, score, seasonal, n)
    WHERE m.center IS NOT NULL AND abs(m.score) > threshold
    ORDER BY s.run_at, s.run_id, m.kind
$$;
COMMENT ON FUNCTION smartetl.detect_anomalies(timestamptz, timestamptz, double precision) IS
'successful runs in [from, to) whose duration or volume is abnormal against a robust baseline of earlier runs only (median/MAD of log(1+x), hour-of-week when there is enough history, else the last 30 runs); reads the scores kept as runs arrive (run_anomaly_score)';

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
        SELECT (SELECT min(r.run_at) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) AS first_run,
               (SELECT max(r.run_at) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.run_at <= at_ts) AS last_run,
               (SELECT max(coalesce(r.ended_at, r.run_at)) FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success' AND r.run_at <= at_ts) AS last_success) h
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
