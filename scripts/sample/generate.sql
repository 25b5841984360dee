-- Sample data for the demo: 30 days of runs of 8 pipelines (csv) and a
-- loader log with a stack trace (text), written to :'dir' by the server.
-- Deterministic (setseed), so every demo run shows the same history.
SELECT setseed(0.42);

CREATE TEMP TABLE sample_pipeline (name text, every interval, fail_rate float8,
                                   median_s float8, rows_median int, errors text[]);
INSERT INTO sample_pipeline VALUES
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

CREATE TEMP TABLE sample_run AS
SELECT p.name AS pipeline,
       p.name || '_' || to_char(t, 'YYYYMMDD"T"HH24MI') AS run_id,
       t AS started_at,
       t + make_interval(secs => round((p.median_s * exp(0.35 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::numeric, 1)::float8) AS ended_at,
       random() < p.fail_rate AS failed,
       p.errors[1 + floor(random() * array_length(p.errors, 1))::int] AS error,
       greatest(0, round(p.rows_median * (0.7 + 0.6 * random())))::bigint AS rows_written,
       'etl-worker-' || (1 + floor(random() * 3))::int AS host
FROM sample_pipeline p,
     generate_series(date_trunc('day', now()) - interval '30 days', now(), p.every) t
WHERE t + make_interval(secs => p.median_s * 2) < now();  -- finished by now

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
