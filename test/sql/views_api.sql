-- Public views and functions no other test checks the values of, each
-- against a recount written here from the raw rows (never a call of the
-- code under test): run_cube (function and view), the Grafana time series
-- ts_runs, ts_failure_rate and ts_duration_p95, frequent_errors (function
-- and view), resolve_predictions and prediction_quality.  Fixed clock
-- (:'clock'); only the views over "the last N days" get a few rows placed
-- just before now().
\set ON_ERROR_STOP 1
\set clock '2025-02-05 00:00:00+00'
\set from '2025-02-03 00:00:00+00'
SET client_min_messages = warning;
SET timezone = 'UTC';
BEGIN;
SELECT plan(16);

INSERT INTO smartetl.pipeline (namespace, name)
VALUES ('tap_views', 'cube_a'), ('tap_views', 'cube_b');

-- 40 runs 70 minutes apart over two UTC days, of two pipelines, on three
-- hosts (one NULL), in every status; and runs just outside the range
CREATE TEMP TABLE planted AS
SELECT CASE WHEN i % 2 = 0 THEN 'cube_a' ELSE 'cube_b' END AS pipeline, 'v' || i AS external_id,
       (ARRAY['success', 'success', 'failed', 'success', 'running', 'skipped', 'failed', 'cancelled'])[1 + i % 8]::smartetl.run_status AS status,
       :'from'::timestamptz + make_interval(mins => 70 * i) AS started_at,
       make_interval(secs => 10 + (i * 37) % 300 + (i % 3) * 0.25) AS duration,
       (ARRAY['h1', 'h2', NULL])[1 + i % 3] AS host,
       i * 100 AS rows_written
FROM generate_series(0, 39) i
UNION ALL VALUES
  ('cube_a', 'before', 'success'::smartetl.run_status, :'from'::timestamptz - interval '1 second', interval '10 s', 'h1', 1),
  ('cube_b', 'after', 'failed', :'clock'::timestamptz, interval '20 s', 'h2', 2);
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration, rows_written, host)
SELECT p.pipeline_id, t.external_id, t.status, t.started_at,
       CASE WHEN t.status NOT IN ('running', 'skipped') THEN t.started_at + t.duration END,
       CASE WHEN t.status NOT IN ('running', 'skipped') THEN t.duration END,
       CASE WHEN t.status = 'success' THEN t.rows_written END, t.host
FROM planted t JOIN smartetl.pipeline p ON p.namespace = 'tap_views' AND p.name = t.pipeline;
-- a run known only by its end
INSERT INTO smartetl.run (pipeline_id, external_id, status, ended_at, host)
SELECT pipeline_id, 'end_only', 'failed', :'from'::timestamptz + interval '3 hours 1 minute', 'h1'
FROM smartetl.pipeline WHERE namespace = 'tap_views' AND name = 'cube_a';

-- the runs in [from, clock), by their time (start, else end), as the recount reads them
CREATE TEMP TABLE r AS
SELECT p.namespace, p.name AS pipeline, p.pipeline_id, run.status, run.host, run.rows_written,
       extract(epoch FROM run.duration)::float8 AS d,
       date_trunc('day', coalesce(run.started_at, run.ended_at)) AS day,
       date_trunc('hour', coalesce(run.started_at, run.ended_at)) AS hour
FROM smartetl.run JOIN smartetl.pipeline p USING (pipeline_id)
WHERE coalesce(run.started_at, run.ended_at) >= :'from' AND coalesce(run.started_at, run.ended_at) < :'clock';

-- rows of a and b that differ (NULLs equal; floats within rel, 0.5 % for sketch quantiles)
CREATE FUNCTION pg_temp.close(a float8, b float8, rel float8 DEFAULT 1e-9) RETURNS boolean LANGUAGE sql AS
$$ SELECT coalesce((a IS NULL AND b IS NULL) OR abs(a - b) <= rel * abs(b) + 1e-12, false) $$;

-- ---------------------------------------------------------------- run_cube
-- every grouping set recounted with its own GROUP BY
CREATE TEMP TABLE cube_recount AS SELECT NULL::text AS grouping_set, NULL::text AS namespace, NULL::text AS pipeline,
       NULL::timestamptz AS day, NULL::smartetl.run_status AS status, NULL::text AS host, 0::bigint AS runs,
       0::bigint AS failures, 0::float8 AS failure_rate, 0::float8 AS mean_duration_s, 0::float8 AS p95_duration_s,
       0::bigint AS rows_written WHERE false;
DO $$
DECLARE dims text[]; gs text;
BEGIN
    FOREACH gs IN ARRAY ARRAY['pipeline,day,status,host', 'pipeline,day,status', 'pipeline,day', 'pipeline,status',
                              'pipeline,host', 'pipeline', 'day,status', 'day', 'status', 'host', ''] LOOP
        dims := string_to_array(nullif(gs, ''), ',');
        EXECUTE format($q$
            INSERT INTO cube_recount
            SELECT %L, min(namespace), %s, %s, %s, %s, count(*), count(*) FILTER (WHERE status = 'failed'),
                   count(*) FILTER (WHERE status = 'failed')::float8
                       / nullif(count(*) FILTER (WHERE status IN ('success', 'failed')), 0),
                   avg(d), percentile_cont(0.95) WITHIN GROUP (ORDER BY d), sum(rows_written)
            FROM r %s$q$,
            gs,
            CASE WHEN 'pipeline' = ANY (dims) THEN 'pipeline' ELSE 'NULL' END,
            CASE WHEN 'day' = ANY (dims) THEN 'day' ELSE 'NULL' END,
            CASE WHEN 'status' = ANY (dims) THEN 'status' ELSE 'NULL' END,
            CASE WHEN 'host' = ANY (dims) THEN 'host' ELSE 'NULL' END,
            CASE WHEN dims IS NULL THEN '' ELSE 'GROUP BY ' || array_to_string(dims, ', ') END);
    END LOOP;
END $$;
CREATE TEMP TABLE cube AS SELECT * FROM smartetl.run_cube(:'from', :'clock');
SELECT is((SELECT count(*) FROM cube c FULL JOIN cube_recount x
             ON c.grouping_set = x.grouping_set AND c.pipeline IS NOT DISTINCT FROM x.pipeline
            AND c.day IS NOT DISTINCT FROM x.day AND c.status IS NOT DISTINCT FROM x.status
            AND c.host IS NOT DISTINCT FROM x.host
           WHERE c.grouping_set IS NULL OR x.grouping_set IS NULL
              OR c.runs <> x.runs OR c.failures <> x.failures OR c.namespace IS DISTINCT FROM x.namespace
              OR c.rows_written IS DISTINCT FROM x.rows_written
              OR NOT pg_temp.close(c.failure_rate, x.failure_rate) OR NOT pg_temp.close(c.mean_duration_s, x.mean_duration_s)
              OR NOT pg_temp.close(c.p95_duration_s, x.p95_duration_s, 0.005)),
          0::bigint,
          format('run_cube(from, to): the %s rows of the 11 grouping sets equal the recount (p95 within 0.5 %%)',
                 (SELECT count(*) FROM cube_recount)));
SELECT is((SELECT runs FROM cube WHERE grouping_set = ''), 41::bigint,
          'the grand total counts the 40 runs and the end-only run in the range, not the two just outside');
SELECT is((SELECT array_agg(DISTINCT grouping_set ORDER BY grouping_set) FROM cube),
          (SELECT array_agg(DISTINCT grouping_set ORDER BY grouping_set) FROM cube_recount),
          'run_cube names every grouping set');
-- the view: the last 30 days (720 hours) up to now()
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at)
SELECT pipeline_id, 'recent_' || g, 'success', now() - make_interval(days => g)
FROM smartetl.pipeline, (VALUES (1), (29), (31)) v(g) WHERE namespace = 'tap_views' AND name = 'cube_a';
SELECT is((SELECT runs FROM smartetl.run_cube WHERE grouping_set = 'pipeline' AND pipeline = 'cube_a'), 2::bigint,
          'the run_cube view counts the runs of the last 30 days (1 and 29 days ago, not 31)');

-- ---------------------------------------------------------------- ts_* views
CREATE TEMP TABLE ts_recount AS
SELECT hour AS "time", namespace || '/' || pipeline AS metric, count(*)::float8 AS runs,
       count(*) FILTER (WHERE status = 'failed')::float8 / nullif(count(*) FILTER (WHERE status IN ('success', 'failed')), 0) AS failure_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d) FILTER (WHERE status IN ('success', 'failed')) AS p95
FROM r GROUP BY 1, 2;
SELECT is((SELECT count(*) FROM (SELECT * FROM smartetl.ts_runs WHERE metric LIKE 'tap\_views/%'
                                  AND "time" >= :'from' AND "time" < :'clock') v
           FULL JOIN ts_recount x USING ("time", metric)
           WHERE v.value IS NULL OR x.runs IS NULL OR v.value <> x.runs), 0::bigint,
          'ts_runs: runs per pipeline and hour equal the recount');
SELECT is((SELECT count(*) FROM (SELECT * FROM smartetl.ts_failure_rate WHERE metric LIKE 'tap\_views/%'
                                  AND "time" >= :'from' AND "time" < :'clock') v
           FULL JOIN ts_recount x USING ("time", metric)
           WHERE v.metric IS NULL OR x.metric IS NULL OR NOT pg_temp.close(v.value, x.failure_rate)), 0::bigint,
          'ts_failure_rate: failed / finished runs per pipeline and hour equal the recount (NULL without finished runs)');
SELECT is((SELECT count(*) FROM (SELECT * FROM smartetl.ts_duration_p95 WHERE metric LIKE 'tap\_views/%'
                                  AND "time" >= :'from' AND "time" < :'clock') v
           FULL JOIN (SELECT * FROM ts_recount WHERE p95 IS NOT NULL) x USING ("time", metric)
           WHERE v.metric IS NULL OR x.metric IS NULL OR NOT pg_temp.close(v.value, x.p95, 0.005)), 0::bigint,
          'ts_duration_p95: within 0.5 % of the exact p95 of finished runs per pipeline and hour, no row without one');
SELECT ok((SELECT count(*) FROM ts_recount WHERE failure_rate IS NULL) > 0 AND (SELECT count(*) FROM ts_recount WHERE p95 IS NULL) > 0,
          'the planted hours include some without finished runs');

-- ---------------------------------------------------------------- frequent_errors
-- failed runs with errors of two families, a success with an error text, one
-- failure after the range; ERROR (and INFO) log events
SELECT smartetl.ingest('csv', $$job,run_id,start_time,end_time,status,error
fe_a,1,2025-02-03 01:00:00,2025-02-03 01:01:00,failed,Connection refused to 10.0.0.11:5432
fe_a,2,2025-02-03 05:00:00,2025-02-03 05:01:00,failed,Connection refused to 10.0.0.12:5432
fe_b,1,2025-02-04 07:00:00,2025-02-04 07:01:00,failed,Connection refused to 10.0.0.13:5432
fe_b,2,2025-02-03 10:00:00,2025-02-03 10:01:00,failed,Disk quota exceeded on /data/spill_17.tmp
fe_b,3,2025-02-04 12:00:00,2025-02-04 12:01:00,failed,Disk quota exceeded on /data/spill_18.tmp
fe_a,3,2025-02-04 15:00:00,2025-02-04 15:01:00,ok,Connection refused to 10.0.0.14:5432
fe_a,4,2025-02-06 01:00:00,2025-02-06 01:01:00,failed,Connection refused to 10.0.0.15:5432
$$, '{"namespace": "tap_views"}');
SELECT smartetl.ingest('logline', $$2025-02-04 13:00:00 ERROR Disk quota exceeded on /data/spill_19.tmp
2025-02-04 13:00:01 INFO Disk quota exceeded on /data/spill_20.tmp
2025-02-06 13:00:00 ERROR Disk quota exceeded on /data/spill_21.tmp
$$, '{"namespace": "tap_views", "pipeline": "fe_b", "log_format": "<Date> <Time> <Level> <Content>"}');
CREATE TEMP TABLE family AS
SELECT x.family, array_agg(DISTINCT x.template_id) AS templates
FROM (SELECT CASE WHEN error_message LIKE 'Connection refused%' THEN 'A' ELSE 'B' END AS family, template_id
      FROM smartetl.run JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'tap_views' AND p.name LIKE 'fe\_%' AND status = 'failed'
      UNION ALL
      SELECT 'B', template_id FROM smartetl.log_event JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'tap_views' AND p.name = 'fe_b') x
GROUP BY x.family;
SELECT is((SELECT string_agg(family || ' ' || cardinality(templates), ', ' ORDER BY family) FROM family), 'A 1, B 1',
          'each family of messages (failed runs'' errors and log events) has one template');
SELECT results_eq(
    format($$SELECT f.family, e.occurrences, e.failed_runs, e.error_events, e.pipelines, e.pipeline_names,
                    e.first_seen, e.last_seen
             FROM smartetl.frequent_errors(%L, %L) e JOIN family f ON e.template_id = f.templates[1]
             ORDER BY f.family$$, :'from', :'clock'),
    $$VALUES ('A', 3::bigint, 3::bigint, 0::bigint, 2::bigint, '{tap_views/fe_a,tap_views/fe_b}'::text[],
              '2025-02-03 01:00:00+00'::timestamptz, '2025-02-04 07:00:00+00'::timestamptz),
             ('B', 3, 2, 1, 1, '{tap_views/fe_b}', '2025-02-03 10:00:00+00', '2025-02-04 13:00:00+00')$$,
    'frequent_errors(from, to): the planted counts, pipelines and first/last times (no success, no INFO event, nothing outside the range)');
SELECT is((SELECT array_agg(template_id ORDER BY ord) FROM smartetl.frequent_errors(:'from', :'clock') WITH ORDINALITY e(template_id, t, occurrences, fr, ev, pl, pn, fs, ls, ord)
           WHERE template_id IN (SELECT templates[1] FROM family)),
          (SELECT array_agg(templates[1] ORDER BY templates[1]) FROM family),
          'rows with equal counts come by template id');
-- the view: the last 30 days
SELECT smartetl.ingest('csv', format($$job,run_id,start_time,status,error
fe_c,1,%s,failed,Segmentation fault in worker 17
fe_c,2,%s,failed,Segmentation fault in worker 18
$$, now() - interval '2 days', now() - interval '40 days'), '{"namespace": "tap_views"}');
SELECT results_eq(
    $$SELECT e.occurrences, e.failed_runs, e.pipeline_names, e.first_seen = e.last_seen
      FROM smartetl.frequent_errors e
      WHERE e.template_id = (SELECT template_id FROM smartetl.run WHERE external_id = '1'
                             AND pipeline_id = (SELECT pipeline_id FROM smartetl.pipeline WHERE name = 'fe_c'))$$,
    $$VALUES (1::bigint, 1::bigint, '{tap_views/fe_c}'::text[], true)$$,
    'the frequent_errors view counts the failure of 2 days ago, not the one of 40 days ago');

-- ---------------------------------------------------------------- predictions
SELECT smartetl.train('tap_pq_model',
    $$SELECT x::float8 AS x, (x % 3 = 0)::int::float8 AS y FROM generate_series(1, 60) x$$, 'y', 'linear') AS pq_model \gset
INSERT INTO smartetl.pipeline (namespace, name) VALUES ('tap_views', 'pq_pipe');
-- predictions every 6 hours with a one-hour horizon; a failure inside
-- (at, at + 1 hour] for k = 1, 4, 5, 8 (30 minutes in) and 6 (at the very
-- end); none for k = 2 (a failure at the prediction's own time) and 3 (a
-- success); probabilities with ties
CREATE TEMP TABLE pq AS
SELECT k, '2025-02-01 00:00:00+00'::timestamptz + make_interval(hours => 6 * k) AS at,
       (ARRAY[0.1, 0.8, 0.3, 0.2, 0.7, 0.4, 0.9, 0.3, 0.6, 0.2])[k + 1]::float8 AS probability,
       k IN (1, 4, 5, 6, 8) AS outcome
FROM generate_series(0, 9) k;
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at)
SELECT p.pipeline_id, 'pq' || k, s.status, pq.at + s.offs
FROM pq, smartetl.pipeline p,
     LATERAL (VALUES ('failed'::smartetl.run_status, CASE WHEN k IN (1, 4, 5, 8) THEN interval '30 minutes'
                                                        WHEN k = 6 THEN interval '1 hour' WHEN k = 2 THEN interval '0' END),
                     ('success', CASE WHEN k = 3 THEN interval '10 minutes' END)) s(status, offs)
WHERE p.name = 'pq_pipe' AND s.offs IS NOT NULL;
INSERT INTO smartetl.prediction (model_id, pipeline_id, at, horizon, probability)
SELECT :pq_model, p.pipeline_id, pq.at, interval '1 hour', pq.probability FROM pq, smartetl.pipeline p WHERE p.name = 'pq_pipe'
UNION ALL  -- still open: its horizon has not passed
SELECT :pq_model, p.pipeline_id, now() - interval '10 minutes', interval '1 day', 0.5 FROM smartetl.pipeline p WHERE p.name = 'pq_pipe';
SELECT count(*) AS open_due FROM smartetl.prediction WHERE outcome IS NULL AND at + horizon < now() \gset
SELECT is(smartetl.resolve_predictions(), :open_due::int, 'resolve_predictions resolves every open prediction whose horizon has passed');
SELECT is((SELECT count(*) FROM smartetl.prediction pr JOIN pq USING (at)
           WHERE pr.model_id = :pq_model AND pr.outcome IS DISTINCT FROM pq.outcome), 0::bigint,
          'each outcome says whether the pipeline failed in (at, at + horizon]');
SELECT ok((SELECT outcome IS NULL AND resolved_at IS NULL FROM smartetl.prediction WHERE model_id = :pq_model AND horizon = '1 day'),
          'a prediction whose horizon has not passed stays open');
-- live ROC-AUC as the Mann-Whitney statistic (ties count half), Brier score
SELECT results_eq(
    format('SELECT resolved_predictions, round(live_roc_auc::numeric, 6), round(live_brier::numeric, 12),
                   training_roc_auc = (SELECT (metrics->>%L)::float8 FROM smartetl.model WHERE model_id = %s)
            FROM smartetl.prediction_quality WHERE model_id = %s', 'roc_auc', :pq_model, :pq_model),
    $$SELECT (SELECT count(*) FROM pq),
             round((SELECT avg(CASE WHEN p.probability > n.probability THEN 1 WHEN p.probability = n.probability THEN 0.5 ELSE 0 END)
                    FROM pq p, pq n WHERE p.outcome AND NOT n.outcome)::numeric, 6),
             round((SELECT avg((probability - outcome::int) ^ 2) FROM pq)::numeric, 12), true$$,
    'prediction_quality: resolved predictions, live ROC-AUC and Brier score equal the recount; training ROC-AUC from the model');

SELECT * FROM finish();
ROLLBACK;
