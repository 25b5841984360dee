-- smartetl.qsketch accuracy against exact percentile_cont on skewed data,
-- merging, and parallel aggregation.  Seeded, so runs repeat.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(11);
SELECT setseed(0.2024);

-- standard normal by Box-Muller
CREATE FUNCTION pg_temp.gauss() RETURNS double precision LANGUAGE sql VOLATILE AS
$$ SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) $$;

CREATE TEMP TABLE sample (dist text, x double precision);
-- log-normal durations (heavy right tail)
INSERT INTO sample SELECT 'lognormal', exp(1 + 1.5 * pg_temp.gauss()) FROM generate_series(1, 200000);
-- bimodal: quick runs and slow runs, 2 orders of magnitude apart
INSERT INTO sample SELECT 'bimodal', CASE WHEN random() < 0.65 THEN exp(0.5 * pg_temp.gauss())
                                          ELSE 150 * exp(0.3 * pg_temp.gauss()) END
FROM generate_series(1, 200000);
-- zeros (empty loads) and huge outliers (stuck runs, unit mistakes)
INSERT INTO sample SELECT 'zeros_outliers', CASE WHEN r < 0.08 THEN 0
                                                 WHEN r > 0.997 THEN 1e9 * exp(3 * pg_temp.gauss())
                                                 ELSE exp(2 + pg_temp.gauss()) END
FROM (SELECT random() r FROM generate_series(1, 200000)) s;
ANALYZE sample;

CREATE TEMP TABLE probe AS
SELECT array_cat(ARRAY(SELECT g / 100.0 FROM generate_series(1, 99) g)::float8[],
                 ARRAY[0.995, 0.999]::float8[]) AS ps;

CREATE TEMP TABLE err AS
SELECT dist, p, exact, est,
       CASE WHEN exact = 0 THEN abs(est) ELSE abs(est - exact) / abs(exact) END AS rel
FROM (SELECT dist, percentile_cont((SELECT ps FROM probe)) WITHIN GROUP (ORDER BY x) AS exact_q,
             smartetl.quantiles(smartetl.qsketch_agg(x), (SELECT ps FROM probe)) AS est_q
      FROM sample GROUP BY dist) s,
     unnest((SELECT ps FROM probe), exact_q, est_q) u(p, exact, est);

-- README: every quantile within 0.5 % of the exact order statistic
SELECT cmp_ok((SELECT max(rel) FROM err WHERE dist = d), '<=', 0.005::float8,
              d || ': relative error <= 0.5 % at every quantile p1..p99, p99.5, p99.9 (max ' ||
              (SELECT round(max(rel)::numeric, 5) FROM err WHERE dist = d) || ')')
FROM unnest(ARRAY['bimodal', 'lognormal', 'zeros_outliers']) d;

-- min and max are exact
SELECT is((SELECT count(*) FROM (SELECT dist, smartetl.quantiles(smartetl.qsketch_agg(x), '{0,1}') q,
                                        ARRAY[min(x), max(x)] m FROM sample GROUP BY dist) s
           WHERE q <> m), 0::bigint, 'p0 and p100 are the exact min and max');

-- merging sketches of parts equals the sketch of the whole
SELECT is((SELECT smartetl.quantiles(smartetl.qsketch_merge(sk), '{0,0.01,0.5,0.99,1}')::text
           FROM (SELECT smartetl.qsketch_agg(x) sk FROM sample GROUP BY dist, (x * 1000)::bigint % 7) parts),
          (SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0,0.01,0.5,0.99,1}')::text FROM sample),
          'qsketch_merge of 21 partial sketches gives the same quantiles as one sketch');
SELECT is((SELECT smartetl.qsketch_count(smartetl.qsketch_agg(x)) FROM sample), 600000::bigint,
          'count of all values');
SELECT cmp_ok((SELECT abs(smartetl.qsketch_mean(smartetl.qsketch_agg(x)) - avg(x)) / avg(x) FROM sample),
              '<', 1e-9::float8, 'mean is exact');

-- qsketch_agg buffers values and adds them in batches of 32: a running
-- window (the final function called after every row, the state growing
-- on) and grouping sets give the sketch of exactly the rows seen
CREATE TEMP TABLE seq AS
SELECT i AS id, i % 3 AS g, CASE WHEN i % 17 = 0 THEN -x WHEN i % 23 = 0 THEN 0 ELSE x END AS x
FROM (SELECT row_number() OVER () AS i, x FROM sample WHERE dist = 'lognormal' LIMIT 200) s;
SELECT is((SELECT count(*) FROM
            (SELECT id, smartetl.qsketch_agg(x) OVER (ORDER BY id)::text AS running FROM seq) w
           WHERE running IS DISTINCT FROM
                 (SELECT smartetl.qsketch_agg(x ORDER BY id)::text FROM seq s2 WHERE s2.id <= w.id)),
          0::bigint, 'a running qsketch_agg window equals the sketch of the rows up to each row');
SELECT is((SELECT array_agg(sk::text ORDER BY g NULLS LAST)
           FROM (SELECT g, smartetl.qsketch_agg(x ORDER BY id) sk FROM seq GROUP BY ROLLUP (g)) r),
          (SELECT array_agg(sk::text ORDER BY g NULLS LAST)
           FROM (SELECT g, smartetl.qsketch_agg(x ORDER BY id) sk FROM seq GROUP BY g
                 UNION ALL SELECT NULL, smartetl.qsketch_agg(x ORDER BY id) FROM seq) u),
          'GROUP BY ROLLUP gives the sketches of each group and of all rows');

-- parallel aggregation: partial sketches serialized, combined
CREATE TABLE public.qsketch_parallel AS SELECT * FROM sample;  -- temp tables are never scanned in parallel
ANALYZE public.qsketch_parallel;
CREATE TEMP TABLE serial AS
SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0.01,0.5,0.99}')::text AS q FROM public.qsketch_parallel;
CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN j::text;
END $$;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT ok(p LIKE '%"Partial Mode": "Partial"%' AND p ~ '"Workers Launched": [12]',
          'qsketch_agg runs as a parallel partial aggregate with workers launched')
FROM pg_temp.plan('SELECT smartetl.qsketch_agg(x) FROM public.qsketch_parallel') p;
SELECT is((SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0.01,0.5,0.99}')::text FROM public.qsketch_parallel),
          (SELECT q FROM serial), 'the parallel result equals the serial one');

SELECT * FROM finish();
ROLLBACK;
