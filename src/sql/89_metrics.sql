-- ---------------------------------------------------------------------------
-- The Prometheus metrics view (prometheus/queries.yaml), after the alert
-- tables it counts.
-- ---------------------------------------------------------------------------

-- API: Public
-- Prometheus (prometheus-postgres-exporter, prometheus/queries.yaml): one
-- row per pipeline.  runs_total and failures_total are counters (they fall
-- only when runs are deleted or a failure is corrected, which Prometheus
-- reads as a counter reset); quantiles are over the last 7 days, so daily
-- pipelines have some.  Both come from the rollups: the totals from
-- kpi_monthly, the week (the hours starting in the last 168 hours, and any
-- later) through _kpi_spans (whole days and months where it can), each
-- computed once for all pipelines.
CREATE VIEW smartetl.metrics AS
SELECT p.namespace, p.name AS pipeline,
       coalesce(tot.runs, 0)::bigint AS runs_total, coalesce(tot.failures, 0)::bigint AS failures_total,
       smartetl.quantile(week.duration, 0.5) AS duration_p50_seconds,
       smartetl.quantile(week.duration, 0.95) AS duration_p95_seconds,
       smartetl.quantile(week.duration, 0.99) AS duration_p99_seconds,
       f.lag_s::float8 AS freshness_seconds,
       CASE WHEN f.stale THEN 1 ELSE 0 END AS stale,
       CASE WHEN cf.pipeline_id IS NOT NULL THEN 1 ELSE 0 END AS failing,
       (SELECT count(*) FROM smartetl.alert a
        WHERE a.state = 'firing' AND a.labels->>'pipeline' = p.name AND a.labels->>'namespace' = p.namespace) AS open_alerts
FROM smartetl.pipeline p
LEFT JOIN (SELECT m.pipeline_id, sum(m.runs) AS runs, sum(m.failures) AS failures FROM smartetl.kpi_monthly m
           GROUP BY m.pipeline_id) tot ON tot.pipeline_id = p.pipeline_id
LEFT JOIN (SELECT b.pipeline_id, smartetl.qsketch_merge(b.duration) AS duration
           FROM smartetl._kpi_spans(now() - interval '167 hours' - interval '1 microsecond', 'infinity') b
           GROUP BY b.pipeline_id) week ON week.pipeline_id = p.pipeline_id
LEFT JOIN smartetl.freshness f ON f.pipeline_id = p.pipeline_id
LEFT JOIN smartetl.current_failures cf ON cf.pipeline_id = p.pipeline_id;
COMMENT ON VIEW smartetl.metrics IS 'Prometheus metrics per pipeline: runs_total, failures_total (counters), duration p50/p95/p99 over 7 days, freshness_seconds, stale, failing, open_alerts (firing alerts about it)';
