-- ---------------------------------------------------------------------------
-- Views for people and dashboards: the OLAP cube, frequent errors, current
-- failures, freshness and Grafana-shaped time series (time, metric, value).
-- The Prometheus metrics, which count alerts too, are in 89_metrics.sql.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE FUNCTION smartetl.run_cube(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (grouping_set text, namespace text, pipeline text, day timestamptz,
               status smartetl.run_status, host text, runs bigint, failures bigint,
               failure_rate double precision, mean_duration_s double precision,
               p95_duration_s double precision, rows_written bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT concat_ws(',', CASE WHEN GROUPING(p.name) = 0 THEN 'pipeline' END,
                          CASE WHEN GROUPING(d.day) = 0 THEN 'day' END,
                          CASE WHEN GROUPING(r.status) = 0 THEN 'status' END,
                          CASE WHEN GROUPING(r.host) = 0 THEN 'host' END),
           min(p.namespace), p.name, d.day, r.status, r.host,
           count(*), count(*) FILTER (WHERE r.status = 'failed'),
           count(*) FILTER (WHERE r.status = 'failed')::float8
               / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failed')), 0),
           avg(r.duration_s),
           smartetl.quantile(smartetl.qsketch_agg(r.duration_s), 0.95),
           sum(r.rows_written)::bigint
    FROM smartetl.run r
    JOIN smartetl.pipeline p USING (pipeline_id)
    CROSS JOIN LATERAL (SELECT smartetl._utc_trunc('day', r.run_at) AS day) d
    WHERE r.run_at >= from_ts AND r.run_at < to_ts
    GROUP BY GROUPING SETS ((p.name, d.day, r.status, r.host), (p.name, d.day, r.status),
                            (p.name, d.day), (p.name, r.status), (p.name, r.host), (p.name),
                            (d.day, r.status), (d.day), (r.status), (r.host), ())
$$;
COMMENT ON FUNCTION smartetl.run_cube(timestamptz, timestamptz) IS
'the data team''s cube: runs, failures, failure rate, mean and p95 duration, rows over GROUPING SETS of pipeline x UTC day x status x host; grouping_set names the dimensions of each row ('''' = grand total)';

-- API: Public
CREATE VIEW smartetl.run_cube AS
SELECT * FROM smartetl.run_cube(now() - interval '720 hours', now());
COMMENT ON VIEW smartetl.run_cube IS 'run_cube() over the last 30 days';

-- API: Public
CREATE FUNCTION smartetl.frequent_errors(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (template_id bigint, template text, occurrences bigint, failed_runs bigint,
               error_events bigint, pipelines bigint, pipeline_names text[],
               first_seen timestamptz, last_seen timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH hits AS (
        SELECT r.template_id, r.pipeline_id, r.run_at AS at, true AS is_run
        FROM smartetl.run r
        WHERE r.template_id IS NOT NULL AND r.status = 'failed'
          AND r.run_at >= from_ts AND r.run_at < to_ts
        UNION ALL
        SELECT e.template_id, e.pipeline_id, e.ts, false
        FROM smartetl.log_event e
        WHERE e.template_id IS NOT NULL AND e.ts >= from_ts AND e.ts < to_ts
          AND upper(e.level) IN ('ERROR', 'FATAL', 'CRITICAL', 'SEVERE', 'EMERG', 'ALERT', 'CRIT')
    )
    SELECT h.template_id, t.template, count(*), count(*) FILTER (WHERE h.is_run),
           count(*) FILTER (WHERE NOT h.is_run), count(DISTINCT h.pipeline_id),
           array_agg(DISTINCT p.namespace || '/' || p.name) FILTER (WHERE p.name IS NOT NULL),
           min(h.at), max(h.at)
    FROM hits h
    JOIN smartetl.template t USING (template_id)
    LEFT JOIN smartetl.pipeline p USING (pipeline_id)
    GROUP BY h.template_id, t.template
    ORDER BY count(*) DESC, h.template_id
$$;
COMMENT ON FUNCTION smartetl.frequent_errors(timestamptz, timestamptz) IS
'error templates by frequency over failed runs'' errors and ERROR-level log events: counts, pipelines affected, first and last seen';

-- API: Public
CREATE VIEW smartetl.frequent_errors AS
SELECT * FROM smartetl.frequent_errors(now() - interval '720 hours', now());
COMMENT ON VIEW smartetl.frequent_errors IS 'frequent_errors() over the last 30 days';

-- API: Public
CREATE VIEW smartetl.current_failures AS
SELECT p.pipeline_id, p.namespace, p.name AS pipeline, last.run_id, last.run_at AS failed_at,
       streak.since, streak.failed_runs, last.error_message, t.template
FROM smartetl.pipeline p
CROSS JOIN LATERAL (
    SELECT r.run_id, r.run_at, r.status, r.error_message, r.template_id FROM smartetl.run r
    WHERE r.pipeline_id = p.pipeline_id AND r.status IN ('success', 'failed')
    ORDER BY r.run_at DESC LIMIT 1) last
CROSS JOIN LATERAL (
    SELECT min(r.run_at) AS since, count(*) AS failed_runs FROM smartetl.run r
    WHERE r.pipeline_id = p.pipeline_id AND r.status = 'failed'
      AND r.run_at > coalesce((SELECT max(s.run_at) FROM smartetl.run s
                               WHERE s.pipeline_id = p.pipeline_id AND s.status = 'success'), '-infinity')) streak
LEFT JOIN smartetl.template t ON t.template_id = last.template_id
WHERE last.status = 'failed';
COMMENT ON VIEW smartetl.current_failures IS 'pipelines whose latest finished run failed: since when, how many runs in a row, the last error and its template';

-- API: Public
-- A pipeline that never succeeded counts from its first run.
CREATE VIEW smartetl.freshness AS
SELECT p.pipeline_id, p.namespace, p.name AS pipeline, lr.first_run, lr.last_run, ls.last_success,
       e.expected_interval,
       extract(epoch FROM now() - coalesce(ls.last_success, lr.first_run)) AS lag_s,
       now() - coalesce(ls.last_success, lr.first_run) > e.expected_interval * smartetl._stale_factor() AS stale
FROM smartetl.pipeline p
CROSS JOIN LATERAL (SELECT min(r.run_at) AS first_run, max(r.run_at) AS last_run FROM smartetl.run r
                    WHERE r.pipeline_id = p.pipeline_id) lr
CROSS JOIN LATERAL (SELECT max(coalesce(r.ended_at, r.run_at)) AS last_success FROM smartetl.run r
                    WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success') ls
CROSS JOIN LATERAL (SELECT smartetl._expected_interval(p.pipeline_id, now()) AS expected_interval) e
WHERE lr.last_run IS NOT NULL;
COMMENT ON VIEW smartetl.freshness IS 'per pipeline: first and last run, last success, expected interval, seconds since the last success (or the first run, if none succeeded), stale (more than 1.5 expected intervals)';

-- API: Public
-- Grafana time series: one row per (hour, pipeline), columns time, metric
-- (namespace/name, unique), value.
CREATE VIEW smartetl.ts_runs AS
SELECT h.bucket AS "time", p.namespace || '/' || p.name AS metric, h.runs::float8 AS value, h.pipeline_id
FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id);
COMMENT ON VIEW smartetl.ts_runs IS 'Grafana time series: runs per pipeline and hour';

-- API: Public
CREATE VIEW smartetl.ts_failure_rate AS
SELECT h.bucket AS "time", p.namespace || '/' || p.name AS metric,
       h.failures::float8 / nullif(h.successes + h.failures, 0) AS value, h.pipeline_id
FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id);
COMMENT ON VIEW smartetl.ts_failure_rate IS 'Grafana time series: failed / finished runs per pipeline and hour';

-- API: Public
CREATE VIEW smartetl.ts_duration_p95 AS
SELECT h.bucket AS "time", p.namespace || '/' || p.name AS metric, smartetl.quantile(h.duration, 0.95) AS value, h.pipeline_id
FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id)
WHERE h.duration IS NOT NULL;
COMMENT ON VIEW smartetl.ts_duration_p95 IS 'Grafana time series: p95 run duration (s) per pipeline and hour (merge kpi_hourly.duration with qsketch_merge for coarser steps)';
