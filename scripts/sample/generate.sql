-- Sample data for the demo: 30 days of runs of 9 pipelines (csv) and a
-- loader log with a stack trace (text), written to :'dir' by the server.
--
-- Deterministic: every pipeline's runs are placed back from the current
-- minute at its own interval (the latest started 2 x its median duration
-- ago, rounded up to a minute, so every run has finished), always the same
-- number of them, drawn from a seeded generator in the same order; so every
-- run of this script writes the same history, shifted to end now (every
-- interval divides a week, so even the hour-of-week baselines line up the
-- same way).  The noise is bounded (durations within a factor e^0.4 of the
-- pipeline's median, volumes within 0.7..1.3 x) and, with this seed, no run
-- is abnormal by chance (other seeds give a few early runs, scored against
-- only 8 earlier ones, a score just over 4).
-- Planted, and checked by the end-to-end tests
-- (test/grafana/check_dashboard.py --sample):
--   * an abnormal duration: dag_customers_hourly's 49th latest run (two days
--     ago) took 20 x its median;
--   * an abnormal volume: spark_clickstream_agg's 51st latest run wrote 1 %
--     of its usual rows;
--   * an overdue pipeline: dag_inventory_sync ran every 6 hours until 3 days
--     ago, then stopped (no run and no success for more than 1.5 intervals);
--   * a current failure: ftp_partner_import's latest run failed (the one
--     before it succeeded); every other pipeline's latest run succeeded.
SELECT setseed(0.42);

CREATE TEMP TABLE sample_pipeline (name text, every interval, fail_rate float8,
                                   median_s float8, rows_median int, errors text[],
                                   stopped_runs int DEFAULT 0);
INSERT INTO sample_pipeline (name, every, fail_rate, median_s, rows_median, errors) VALUES
  ('dag_sales_daily',        '1 day',    0.05, 900,  250000,
   ARRAY['psycopg2.OperationalError: could not connect to server: Connection refused (10.0.3.12:5432)',
         'Task timed out after 3600 seconds']),
  ('dag_customers_hourly',   '1 hour',   0.02, 120,  4000,
   ARRAY['KeyError: ''customer_id''']),
  ('dbt_finance_models',     '1 day',    0.08, 1500, 1200000,
   ARRAY['Database Error in model fct_revenue (models/marts/fct_revenue.sql): division by zero',
         'Compilation Error in model dim_account: ''ref'' to ''stg_accounts'' not found']),
  ('spark_clickstream_agg',  '1 hour',   0.04, 600,  9000000,
   ARRAY['java.lang.OutOfMemoryError: Java heap space', 'ExecutorLostFailure (executor 7 exited caused by one of the running tasks)']),
  ('pgcron_refresh_mv',      '6 hours',  0.01, 45,   0,
   ARRAY['ERROR: could not obtain lock on relation "mv_daily_sales"']),
  ('shell_backup_s3',        '1 day',    0.03, 2400, 0,
   ARRAY['upload failed: s3://backups/db.dump.gz An error occurred (SlowDown)']),
  ('ftp_partner_import',     '6 hours',  0.25, 300,  20000,
   ARRAY['ftplib.error_perm: 550 /outgoing/partner_2024.csv: No such file or directory',
         'UnicodeDecodeError: ''utf-8'' codec can''t decode byte 0xe9 in position 1423']),
  ('airflow_ml_features',    '1 day',    0.10, 3000, 500000,
   ARRAY['ValueError: Input contains NaN, infinity or a value too large for dtype(''float64'')']);
-- ran every 6 hours until 3 days ago: its 12 latest runs never happened
INSERT INTO sample_pipeline VALUES
  ('dag_inventory_sync',     '6 hours',  0.02, 200,  50000,
   ARRAY['requests.exceptions.ReadTimeout: HTTPSConnectionPool(host=''erp.internal'', port=443): Read timed out.'],
   12);

-- k = 0 is the latest run; the draws happen in (pipeline, k) order, never
-- depending on the time of day
CREATE TEMP TABLE sample_draw AS
SELECT p.name AS pipeline, k,
       date_trunc('minute', now()) - make_interval(secs => ceil(2 * p.median_s / 60) * 60) - p.every * k AS started_at,
       p.median_s * exp(0.4 * (2 * random() - 1)) AS duration_s,
       random() < p.fail_rate AS failed,
       p.errors[1 + floor(random() * array_length(p.errors, 1))::int] AS error,
       round(p.rows_median * (0.7 + 0.6 * random()))::bigint AS rows_written,
       'etl-worker-' || (1 + floor(random() * 3))::int AS host
FROM (SELECT * FROM sample_pipeline ORDER BY name) p,
     LATERAL generate_series(0, (extract(epoch FROM interval '30 days') / extract(epoch FROM p.every))::int - 1) k
ORDER BY p.name, k;

-- the planted events
UPDATE sample_draw d SET failed = (d.pipeline = 'ftp_partner_import' AND d.k = 0)
FROM sample_pipeline p
WHERE p.name = d.pipeline AND (d.k = p.stopped_runs OR (d.pipeline = 'ftp_partner_import' AND d.k = 1));
UPDATE sample_draw SET duration_s = 20 * 120, failed = false
WHERE pipeline = 'dag_customers_hourly' AND k = 48;
UPDATE sample_draw SET rows_written = 90000, failed = false
WHERE pipeline = 'spark_clickstream_agg' AND k = 50;
DELETE FROM sample_draw d USING sample_pipeline p
WHERE p.name = d.pipeline AND d.k < p.stopped_runs;

CREATE TEMP TABLE sample_run AS
SELECT pipeline,
       pipeline || '_' || to_char(started_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MI') AS run_id,
       started_at,
       started_at + make_interval(secs => round(duration_s::numeric, 1)::float8) AS ended_at,
       failed, error, rows_written, host
FROM sample_draw;

-- status words as real exports write them: ok/SUCCESS/done, failed/ERROR
SELECT format('COPY (SELECT pipeline AS job_name, run_id, started_at AS start_time, ended_at AS end_time,
                     CASE WHEN failed THEN (ARRAY[''failed'', ''ERROR''])[1 + (length(run_id) %% 2)]
                          ELSE (ARRAY[''ok'', ''SUCCESS'', ''done''])[1 + (length(run_id) %% 3)] END AS state,
                     CASE WHEN NOT failed THEN rows_written END AS rows, host,
                     CASE WHEN failed THEN error END AS error
              FROM sample_run ORDER BY started_at) TO %L WITH (FORMAT csv, HEADER)', :'dir' || '/runs.csv') \gexec

SELECT format($f$COPY (SELECT line FROM (VALUES
  (1, to_char(date_trunc('day', now()) - interval '2 hours', 'YYYY-MM-DD HH24:MI:SS') || ',120 INFO  [main] loader.Partner: fetching /outgoing/partner_2024.csv'),
  (2, to_char(date_trunc('day', now()) - interval '2 hours', 'YYYY-MM-DD HH24:MI:SS') || ',455 WARN  [main] loader.Partner: retry 1/3 after 550 reply'),
  (3, to_char(date_trunc('day', now()) - interval '2 hours' + interval '30 s', 'YYYY-MM-DD HH24:MI:SS') || ',002 ERROR [main] loader.Partner: import failed'),
  (4, 'Traceback (most recent call last):'),
  (5, '  File "/opt/etl/partner.py", line 88, in fetch'),
  (6, 'ftplib.error_perm: 550 /outgoing/partner_2024.csv: No such file or directory'),
  (7, to_char(date_trunc('day', now()) - interval '1 hour', 'YYYY-MM-DD HH24:MI:SS') || ',010 INFO  [main] loader.Partner: next attempt scheduled')
) v(n, line) ORDER BY n) TO %L$f$, :'dir' || '/partner_loader.log') \gexec
