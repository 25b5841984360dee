-- The role matrix: every public function's EXECUTE right for a reader, a
-- writer and a non-superuser admin against the documented table (README
-- "Roles"), then the allowed calls made for real by each login role: a
-- writer ingests every format (log lines included; dry_run first: it
-- stores nothing and reports the counts the real call then returns), an admin (not
-- superuser) drops log partitions another role created, imports pg_cron
-- runs of jobs it does not own, evaluates alerts, tests a channel, trains,
-- scores and manages models; pg_read_server_files decides ingest_file.
\set ON_ERROR_STOP 1
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(64);
CREATE ROLE rm_reader LOGIN IN ROLE smartetl_reader;
CREATE ROLE rm_writer LOGIN IN ROLE smartetl_writer;
CREATE ROLE rm_admin LOGIN IN ROLE smartetl_admin;
CREATE ROLE rm_admin_files LOGIN IN ROLE smartetl_admin, pg_read_server_files;
CREATE ROLE rm_writer_files LOGIN IN ROLE smartetl_writer, pg_read_server_files;

-- the documented rights: r = reader, w = writer, a = admin (each includes the one before),
-- o = on call (smartetl_oncall: reader + acknowledging alerts; admins have it)
CREATE TEMP TABLE documented (fn text PRIMARY KEY, least_role char) ON COMMIT DROP;
INSERT INTO documented VALUES
    ('smartetl.parse_log(text,text)', 'r'),
    ('smartetl.ingest_formats()', 'r'),
    ('smartetl.log_template(text)', 'r'),
    ('smartetl.log_template_id(text)', 'r'),
    ('smartetl.qsketch_agg(double precision)', 'r'),
    ('smartetl.qsketch_merge(smartetl.qsketch)', 'r'),
    ('smartetl.qsketch_combine(smartetl.qsketch,smartetl.qsketch)', 'r'),
    ('smartetl.quantile(smartetl.qsketch,double precision)', 'r'),
    ('smartetl.quantiles(smartetl.qsketch,double precision[])', 'r'),
    ('smartetl.qsketch_count(smartetl.qsketch)', 'r'),
    ('smartetl.qsketch_mean(smartetl.qsketch)', 'r'),
    ('smartetl.median_mad(double precision)', 'r'),
    ('smartetl.pipeline_kpi(timestamp with time zone,timestamp with time zone)', 'r'),
    ('smartetl.detect_anomalies(timestamp with time zone,timestamp with time zone,double precision)', 'r'),
    ('smartetl.overdue_pipelines(timestamp with time zone)', 'r'),
    ('smartetl.run_cube(timestamp with time zone,timestamp with time zone)', 'r'),
    ('smartetl.frequent_errors(timestamp with time zone,timestamp with time zone)', 'r'),
    ('smartetl.report_html(timestamp with time zone,timestamp with time zone)', 'r'),
    ('smartetl.risk_features(text,timestamp with time zone,interval)', 'r'),
    ('smartetl.ingest(text,text,jsonb)', 'w'),
    ('smartetl.ingest_file(text,text,jsonb)', 'w'),  -- and pg_read_server_files, checked in C
    ('smartetl.drop_log_partitions(timestamp with time zone)', 'a'),
    ('smartetl.sync_pg_cron()', 'a'),
    ('smartetl.template_compact()', 'a'),
    ('smartetl.after_restore()', 'a'),
    ('smartetl.create_api_key(text,regrole,text[])', 'a'),
    ('smartetl.revoke_api_key(text)', 'a'),
    ('smartetl.test_channel(text)', 'a'),
    ('smartetl.evaluate_alerts()', 'a'),
    ('smartetl.train_risk_model(interval,text,jsonb)', 'a'),
    ('smartetl.backtest(interval,timestamp with time zone,timestamp with time zone)', 'a'),
    ('smartetl.failure_risk(text,interval,timestamp with time zone)', 'a'),
    ('smartetl.risk_ranking(interval)', 'a'),
    ('smartetl.resolve_predictions()', 'a'),
    ('smartetl.model_drift(bigint,interval)', 'a'),
    ('smartetl.train(text,text,text,text,jsonb)', 'a'),
    ('smartetl.predict(text,double precision[])', 'a'),
    ('smartetl.export_model(bigint)', 'a'),
    ('smartetl.import_model(jsonb)', 'a'),
    ('smartetl.promote_model(bigint)', 'a'),
    ('smartetl.cron_next(text,timestamp with time zone,text)', 'r'),
    ('smartetl.alert_rule_kinds()', 'r'),
    ('smartetl.alert_channel_kinds()', 'r'),
    ('smartetl.deadline_status(timestamp with time zone)', 'r'),
    ('smartetl.alert_worker_status()', 'r'),
    ('smartetl.maintenance_window_active(text,timestamp with time zone)', 'r'),
    ('smartetl.next_alert_due(timestamp with time zone)', 'a'),
    ('smartetl.sync_airflow_schedules(jsonb,jsonb)', 'a'),
    -- o = smartetl_oncall (reader + these), which admins have too
    ('smartetl.ack(bigint,text,text)', 'o'),
    ('smartetl.unack(bigint)', 'o'),
    ('smartetl.assign(bigint,text)', 'o'),
    ('smartetl.snooze(bigint,timestamp with time zone,text)', 'o'),
    ('smartetl.ack_link(bigint)', 'o');

SELECT is(coalesce(array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text), '{}'), '{}'::text[],
          'every public function (name without a leading _) is in the documented matrix')
FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace AND p.proname !~ '^_'
  AND p.oid::regprocedure::text NOT IN (SELECT fn FROM documented);
SELECT is(coalesce(array_agg(d.fn || ' for ' || r.rolname ORDER BY d.fn, r.rolname), '{}'), '{}'::text[],
          'each role can execute exactly the documented public functions')
FROM documented d
CROSS JOIN (VALUES ('smartetl_reader', 1), ('smartetl_writer', 2), ('smartetl_admin', 3), ('smartetl_oncall', 0)) r(rolname, lvl)
WHERE has_function_privilege(r.rolname, d.fn::regprocedure, 'EXECUTE')
      IS DISTINCT FROM CASE WHEN r.rolname = 'smartetl_oncall' THEN d.least_role IN ('r', 'o')
                            ELSE r.lvl >= CASE d.least_role WHEN 'r' THEN 1 WHEN 'w' THEN 2 ELSE 3 END END;
SELECT is(coalesce(array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text), '{}'), '{}'::text[],
          'PUBLIC can execute no smartetl function')
FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace
  AND has_function_privilege('public', p.oid, 'EXECUTE')
  AND p.proname NOT IN ('_qsketch_in', '_qsketch_out', '_qsketch_recv', '_qsketch_send');
SELECT is(coalesce(array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text), '{}'), '{}'::text[],
          'every SECURITY DEFINER function pins its search_path')
FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');

SELECT is(coalesce(array_agg(c.oid::regclass::text ORDER BY c.oid::regclass::text), '{}'), '{}'::text[],
          'pg_dump keeps the rows of every table of the extension (90_dump.sql)')
FROM pg_class c
WHERE c.relnamespace = 'smartetl'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'smartetl')::oid[]);

SELECT is(coalesce(array_agg(p.proname::text ORDER BY p.proname::text), '{}'),
          '{_kpi_refresh,_log_partitions_ensure,_pg_cron_jobs,_pg_cron_runs,ack,assign,drop_log_partitions,snooze,template_compact,unack}'::text[],
          'the SECURITY DEFINER functions are exactly those README''s Security section lists')
FROM pg_proc p WHERE p.pronamespace = 'smartetl'::regnamespace AND p.prosecdef;

-- the payloads, one per format
CREATE TEMP TABLE payloads (format text, payload text, options jsonb) ON COMMIT DROP;
INSERT INTO payloads VALUES
 ('csv', E'job,run_id,start,status,error\nrm_csv,1,2024-05-01 00:00:00,failed,Disk quota exceeded on volume 7\n', '{"namespace": "rm"}'),
 ('jsonl', E'{"job": "rm_jsonl", "run_id": "1", "start": "2024-05-01T00:00:00Z", "status": "success"}\n', '{"namespace": "rm"}'),
 ('openlineage', '{"eventType": "FAIL", "eventTime": "2024-05-01T02:10:00Z", "run": {"runId": "rm-ol-1", "facets": {"errorMessage": {"message": "KeyError: 42", "programmingLanguage": "python", "stackTrace": "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 42"}}}, "job": {"namespace": "rm_ol", "name": "etl.load"}}', '{}'),
 ('dbt', '{"metadata": {"dbt_version": "1.9.0", "generated_at": "2024-05-01T03:00:10Z", "invocation_id": "rm-inv-1"}, "elapsed_time": 1.5, "results": [{"status": "error", "unique_id": "model.rm.orders", "execution_time": 1.2, "timing": [], "adapter_response": {}, "message": "relation missing", "failures": null}]}', '{"namespace": "rm_dbt"}'),
 ('airflow', E'[2024-05-01T00:00:02.123+0000] {taskinstance.py:1159} INFO - Dependencies all met for dep_context=requeueable deps ti=<TaskInstance: rm_dag.extract scheduled__2024-04-30T00:00:00+00:00 [queued]>\n[2024-05-01T00:00:02.130+0000] {taskinstance.py:1361} INFO - Starting attempt 1 of 1\n[2024-05-01T00:00:03.000+0000] {taskinstance.py:1943} ERROR - Task failed with exception\n[2024-05-01T00:00:03.100+0000] {taskinstance.py:1400} INFO - Marking task as FAILED. dag_id=rm_dag, task_id=extract, execution_date=20240430T000000, start_date=20240501T000002, end_date=20240501T000003\n', '{}'),
 ('logline', E'2024-05-01 10:00:00 ERROR loader failed after 3 retries\n2024-05-01 10:00:01 INFO loader stopped\n', '{"log_format": "<Date> <Time> <Level> <Content>", "pipeline": "rm_log", "namespace": "rm"}');
GRANT SELECT ON payloads TO PUBLIC;

-- reader: reads, looks templates up, cannot ingest or manage anything
SET LOCAL ROLE rm_reader;
SELECT throws_ok($$SELECT smartetl.ingest('csv', E'job,run_id,status\nx,1,ok\n')$$, '42501', NULL,
                 'a reader calling ingest is refused');
SELECT lives_ok($$SELECT * FROM smartetl.pipeline_kpi(now() - interval '7 days', now())$$, 'a reader computes KPIs');
SELECT lives_ok($$SELECT count(*) FROM smartetl.run_cube$$, 'a reader reads the cube');
SELECT lives_ok($$SELECT count(*) FROM smartetl.metrics$$, 'a reader reads the metrics');
SELECT lives_ok($$SELECT count(*) FROM smartetl.ts_runs$$, 'a reader reads the time series');
SELECT lives_ok($$SELECT count(*) FROM smartetl.current_risk$$, 'a reader reads the current risk');
SELECT lives_ok($$SELECT length(smartetl.report_html(now() - interval '1 day', now()))$$, 'a reader renders the report');
SELECT is(smartetl.log_template_id('Reader-only shape 17 never learned anywhere'), NULL, 'a reader''s lookup never learns');
SELECT throws_ok($$SELECT smartetl.template_compact()$$, '42501', NULL, 'a reader cannot compact templates');
SELECT throws_ok($$SELECT smartetl.evaluate_alerts()$$, '42501', NULL, 'a reader cannot evaluate alerts');
SELECT throws_ok($$SELECT smartetl.train_risk_model()$$, '42501', NULL, 'a reader cannot train');
SELECT throws_ok($$SELECT smartetl.failure_risk('x')$$, '42501', NULL, 'a reader cannot score (it writes the prediction log)');
SELECT throws_ok($$SELECT * FROM smartetl.backtest()$$, '42501', NULL, 'a reader cannot backtest (it trains models)');
SELECT throws_ok($$INSERT INTO smartetl.alert_rule (name, kind) VALUES ('rm', 'run_failed')$$, '42501', NULL,
                 'a reader cannot create rules');
RESET ROLE;

-- writer: every format, log lines included.  First as a dry run (stored in
-- a subtransaction rolled back, src/ingest/source.c): nothing is stored, in
-- any table ingest writes (log partitions included), and each real call then
-- returns the counts its dry run reported.
CREATE TEMP TABLE rm_dry (format text PRIMARY KEY, counts text) ON COMMIT DROP;
GRANT SELECT, INSERT ON rm_dry TO PUBLIC;
CREATE TEMP VIEW rm_stored AS
SELECT string_agg(t || ' ' || n, ', ' ORDER BY t) AS stored FROM (
    SELECT 'pipeline', count(*) FROM smartetl.pipeline UNION ALL SELECT 'run', count(*) FROM smartetl.run
    UNION ALL SELECT 'log_event', count(*) FROM smartetl.log_event UNION ALL SELECT 'ingest_reject', count(*) FROM smartetl.ingest_reject
    UNION ALL SELECT 'template_text', count(*) FROM smartetl.template_text UNION ALL SELECT 'template_seen', count(*) FROM smartetl.template_seen
    UNION ALL SELECT 'kpi_hourly', count(*) FROM smartetl.kpi_hourly UNION ALL SELECT 'kpi_daily', count(*) FROM smartetl.kpi_daily
    UNION ALL SELECT 'run_anomaly_score', count(*) FROM smartetl.run_anomaly_score UNION ALL SELECT 'anomaly_state', count(*) FROM smartetl.anomaly_state
    UNION ALL SELECT 'log partitions', count(*) FROM pg_inherits WHERE inhparent = 'smartetl.log_event'::regclass) s(t, n);
SELECT stored AS rm_stored_before FROM rm_stored \gset
SET LOCAL ROLE rm_writer;
SELECT lives_ok($$INSERT INTO rm_dry SELECT p.format, (SELECT row(r.*)::text FROM smartetl.ingest(p.format, p.payload, p.options || '{"dry_run": true}') r)
                  FROM payloads p$$, 'a writer dry-runs every format');
RESET ROLE;
SELECT is((SELECT stored FROM rm_stored), :'rm_stored_before', 'the writer''s dry runs stored nothing (' || :'rm_stored_before' || ')');
SET LOCAL ROLE rm_writer;
SELECT is((SELECT row(r.*)::text FROM smartetl.ingest(p.format, p.payload, p.options) r), d.counts,
          'a writer ingests ' || p.format || ': the counts its dry run reported (' || d.counts || ')')
FROM payloads p JOIN rm_dry d USING (format) ORDER BY p.format;
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'a writer cannot read server files');
SELECT throws_ok($$SELECT smartetl.drop_log_partitions('2000-01-01')$$, '42501', NULL,
                 'a writer cannot drop log partitions');
SELECT throws_ok($$SELECT smartetl.sync_pg_cron()$$, '42501', NULL, 'a writer cannot sync pg_cron');
SELECT throws_ok($$INSERT INTO smartetl.template_text (template_id, template) VALUES (999999, 'forged')$$, '42501', NULL,
                 'a writer cannot forge templates');
SELECT throws_ok($$SELECT smartetl.train_risk_model()$$, '42501', NULL, 'a writer cannot train');
RESET ROLE;
-- what the writer stored
SELECT is((SELECT array_agg(p.namespace || '/' || p.name || ':' || r.status ORDER BY p.namespace || '/' || p.name COLLATE "C")
           FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace IN ('rm', 'rm_ol', 'rm_dbt') OR p.name LIKE 'rm_dag%'),
          '{airflow/rm_dag.extract:failed,rm/rm_csv:failed,rm/rm_jsonl:success,rm_dbt/model.rm.orders:failed,rm_dbt/rm:failed,rm_ol/etl.load:failed}'::text[],
          'the writer''s runs are stored (csv, jsonl, openlineage, dbt invocation and node, airflow try)');
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE ts >= '2024-05-01' AND ts < '2024-05-02'
           AND (message LIKE 'loader %' OR message LIKE 'Task failed%' OR message LIKE 'Traceback%'
                OR message LIKE 'Marking task%' OR message LIKE 'Starting attempt%' OR message LIKE 'Dependencies%')) >= 6,
          true, 'the writer''s log events are stored (log lines, the Airflow log, the OpenLineage stack trace)');
SELECT is((SELECT t.template FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           JOIN smartetl.template t USING (template_id) WHERE p.name = 'rm_csv'),
          'Disk quota exceeded on volume <*>', 'the writer''s failed run has its learned template');
SELECT is((SELECT count(*) FROM smartetl.log_event e WHERE e.message LIKE 'loader failed%' AND e.template_id IS NOT NULL),
          1::bigint, 'the writer''s error log line has its learned template');

-- a non-superuser admin
SELECT ok(NOT rolsuper, 'rm_admin is not a superuser') FROM pg_roles WHERE rolname = 'rm_admin';
SET LOCAL ROLE rm_admin;
SELECT throws_ok($$SELECT smartetl.ingest_file('/etc/hostname', 'csv')$$, '42501', NULL,
                 'without pg_read_server_files an admin cannot read server files');
SELECT lives_ok($$SELECT smartetl.template_compact()$$, 'an admin compacts templates');
-- retention: the partition holding the writer's 2024-05 events was created by ingest, not by this admin
SELECT isnt((SELECT count(*) FROM smartetl.drop_log_partitions('2024-06-01') d WHERE d::text LIKE '%2024%05%'), 0::bigint,
            'an admin drops the log partitions that ingest created');
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE ts >= '2024-05-01' AND ts < '2024-05-02'), 0::bigint,
          'their events are gone');
RESET ROLE;

-- pg_cron runs of a job owned by someone else (the superuser)
INSERT INTO cron.job (jobid, schedule, command, nodename, nodeport, database, username, jobname)
VALUES (987654, '0 3 * * *', 'SELECT 1', '', 0, current_database(), 'postgres', 'rm_cron_job');
INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
VALUES (987654, 987654321, 1, current_database(), 'postgres', 'SELECT 1', 'failed', 'ERROR: rm cron failure 9',
        now() - interval '2 minutes', now() - interval '1 minute');
SET LOCAL ROLE rm_admin;
SELECT lives_ok($$SELECT smartetl.sync_pg_cron()$$, 'an admin syncs pg_cron');
RESET ROLE;
SELECT is((SELECT r.status::text FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'pg_cron' AND p.name = 'rm_cron_job'), 'failed',
          'the admin''s sync imports the runs of jobs it does not own');

-- alerting as the admin: a rule, a notify channel tested for real, an evaluation
SET LOCAL ROLE rm_admin;
SELECT lives_ok($$INSERT INTO smartetl.channel (name, kind, target) VALUES ('rm_notify', 'notify', 'rm_matrix')$$,
                'an admin creates a channel');
SELECT lives_ok($$INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait)
                  VALUES ('rm_rule', 'run_failed', '{rm_notify}', '{"namespace": "rm"}', '0')$$,
                'an admin creates a rule');
SELECT is((smartetl.test_channel('rm_notify'))->>'ok', 'true', 'an admin tests a channel successfully');
SELECT cmp_ok(smartetl.evaluate_alerts(), '>=', 1, 'an admin''s evaluation queues the notification');
SELECT is((SELECT count(*) FROM smartetl.alert WHERE rule_name = 'rm_rule' AND state = 'firing'
           AND labels->>'pipeline' = 'rm_csv'), 1::bigint, 'the writer''s failure fires');
SELECT is((SELECT count(*) FROM smartetl.delivery WHERE channel = 'rm_notify' AND group_key LIKE 'rm_rule%'), 1::bigint,
          'and is queued for the channel');
RESET ROLE;

-- prediction as the admin: train, score, rank, backtest, drift, export/import/promote, generic models
SELECT smartetl.ingest('csv', 'job,run_id,start,end,status' || E'\n' ||
  (SELECT string_agg(format('%s,%s,%s,%s,%s', j, d, t, t + interval '10 minutes',
                            CASE WHEN j = 'rm_flaky' AND extract(isodow FROM t) = 1 THEN 'failed' ELSE 'success' END), E'\n')
   FROM unnest(ARRAY['rm_flaky', 'rm_steady']) j,
        generate_series(timestamptz '2024-01-01 02:00+00', '2024-03-24 02:00+00', '1 day') WITH ORDINALITY g(t, d)),
  '{"namespace": "rm_pred"}');
SET LOCAL ROLE rm_admin;
SELECT ok(smartetl.train_risk_model('1 day', 'linear', '{"step": "6 hours", "until": "2024-03-25"}') > 0,
          'an admin trains a risk model');
SELECT ok(smartetl.failure_risk('rm_flaky', '1 day', '2024-03-24 12:00+00') > smartetl.failure_risk('rm_steady', '1 day', '2024-03-24 12:00+00'),
          'an admin scores: the flaky pipeline is riskier before a Monday');
SELECT ok((SELECT count(*) FROM smartetl.risk_ranking('1 day')) >= 2, 'an admin ranks');
SELECT is((SELECT count(*) FROM smartetl.backtest('1 day', NULL, '2024-03-25')), 5::bigint,
          'an admin backtests: one row per candidate, the baselines included');
SELECT is((SELECT count(*) FROM smartetl.model WHERE note IS NOT NULL AND status IN ('champion', 'candidate')
           AND name = 'risk:86400s'), 4::bigint, 'the registry holds the learned model and the three baselines');
SELECT lives_ok($$SELECT * FROM smartetl.model_drift((SELECT max(model_id) FROM smartetl.model))$$, 'an admin checks drift');
SELECT ok(smartetl.import_model(smartetl.export_model((SELECT max(model_id) FROM smartetl.model))) > 0,
          'an admin exports and imports a model');
SELECT lives_ok($$SELECT smartetl.promote_model((SELECT max(model_id) FROM smartetl.model))$$, 'an admin promotes a model');
SELECT lives_ok($$SELECT smartetl.train('rm_generic', 'SELECT g::float8 AS x, (g % 2)::float8 AS y FROM generate_series(1, 200) g', 'y', 'linear', '{}')$$,
                'an admin trains a generic model');
SELECT ok(smartetl.predict('rm_generic', ARRAY[3.0]) IS NOT NULL, 'and predicts with it');
RESET ROLE;
SET LOCAL ROLE rm_writer;
SELECT throws_ok($$SELECT smartetl.promote_model(1)$$, '42501', NULL, 'a writer cannot promote models');
RESET ROLE;

-- an admin with pg_read_server_files reads a server file
-- (a file in the cluster's own data directory: unique, removed with the cluster)
SELECT current_setting('data_directory') || format('/smartetl_rm_%s.csv', pg_backend_pid()) AS rm_file \gset
COPY (SELECT 'job,run_id,status' UNION ALL SELECT 'rm_file,1,success') TO :'rm_file';
SET LOCAL ROLE rm_writer;
SELECT throws_ok(format('SELECT smartetl.ingest_file(%L, %L)', :'rm_file', 'csv'), '42501', NULL,
                 'a writer without pg_read_server_files cannot read the server file');
SET LOCAL ROLE rm_writer_files;
SELECT is((smartetl.ingest_file(:'rm_file', 'csv')).inserted, 1::bigint,
          'a writer with pg_read_server_files ingests a server file');
SET LOCAL ROLE rm_admin_files;
SELECT is((smartetl.ingest_file(:'rm_file', 'csv', '{"namespace": "rm_files2"}')).inserted, 1::bigint,
          'an admin with pg_read_server_files ingests a server file');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
