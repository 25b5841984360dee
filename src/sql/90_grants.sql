-- ---------------------------------------------------------------------------
-- Grants to the roles of 05_roles.sql, once every object exists.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA smartetl FROM PUBLIC;
GRANT USAGE ON SCHEMA smartetl TO smartetl_reader;

GRANT SELECT ON smartetl.pipeline, smartetl.run, smartetl.log_event, smartetl.template,
                smartetl.template_text, smartetl.template_seen
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.parse_log(text, text), smartetl.log_template(text),
                          smartetl.log_template_id(text) TO smartetl_reader;

-- templates are written only by the extension's own code (template_store.c)
GRANT INSERT, UPDATE ON smartetl.pipeline, smartetl.run, smartetl.log_event
    TO smartetl_writer;
GRANT SELECT, INSERT ON smartetl.ingest_reject TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl.ingest(text, text, jsonb),
                          smartetl._pipeline_ensure(text, text)
    TO smartetl_writer;

GRANT DELETE ON smartetl.pipeline, smartetl.run, smartetl.log_event, smartetl.ingest_reject
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.template_compact() TO smartetl_admin;
GRANT SELECT, INSERT, UPDATE ON smartetl.sync_state TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.sync_pg_cron() TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.ingest_file(text, text, jsonb),
                          smartetl.drop_log_partitions(timestamptz)
    TO smartetl_admin;

-- KPIs, anomalies and views (the helpers run as the caller inside them)
GRANT SELECT ON smartetl.kpi_hourly, smartetl.kpi_daily, smartetl.anomalies, smartetl.run_cube,
                smartetl.frequent_errors, smartetl.current_failures, smartetl.freshness,
                smartetl.ts_runs, smartetl.ts_failure_rate, smartetl.ts_duration_p95, smartetl.metrics
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.qsketch_agg(double precision), smartetl.qsketch_merge(smartetl.qsketch),
                          smartetl.quantile(smartetl.qsketch, double precision),
                          smartetl.quantiles(smartetl.qsketch, double precision[]),
                          smartetl.qsketch_count(smartetl.qsketch), smartetl.qsketch_mean(smartetl.qsketch),
                          smartetl.qsketch_combine(smartetl.qsketch, smartetl.qsketch),
                          smartetl._qsketch_in(cstring), smartetl._qsketch_out(smartetl.qsketch),
                          smartetl._qsketch_recv(internal), smartetl._qsketch_send(smartetl.qsketch),
                          smartetl.median_mad(double precision),
                          smartetl.pipeline_kpi(timestamptz, timestamptz),
                          smartetl.detect_anomalies(timestamptz, timestamptz, double precision),
                          smartetl.overdue_pipelines(timestamptz),
                          smartetl.run_cube(timestamptz, timestamptz),
                          smartetl.frequent_errors(timestamptz, timestamptz),
                          smartetl._utc_trunc(text, timestamptz),
                          smartetl._expected_interval(bigint, timestamptz),
                          smartetl._failure_streaks(timestamptz, timestamptz),
                          smartetl._kpi_buckets(timestamptz, timestamptz)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._kpi_refresh(bigint[], timestamptz[]) TO smartetl_writer;
-- bulk ingest adds its new runs to the rollups as the ingesting role
GRANT INSERT, UPDATE ON smartetl.kpi_hourly, smartetl.kpi_daily TO smartetl_writer;
GRANT DELETE ON smartetl.kpi_hourly, smartetl.kpi_daily TO smartetl_admin;

-- alerting: channels (targets and secrets), rules, the outbox: admins only;
-- readers see alerts and silences
GRANT SELECT ON smartetl.alert, smartetl.silence TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.channel, smartetl.alert_rule, smartetl.silence,
                                        smartetl.delivery, smartetl.alert, smartetl.alert_group,
                                        smartetl.alert_rule_state
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._alert_wake() TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._recent_history(bigint) TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.evaluate_alerts(), smartetl.test_channel(text),
                          smartetl._glob_match(text, text),
                          smartetl._selector_matches(jsonb, smartetl.pipeline),
                          smartetl._rule_query_check(text, text), smartetl._rule_query_rows(text, text),
                          smartetl._run_annotations(text, text, bigint, timestamptz, bigint),
                          smartetl._alert_conditions(smartetl.alert_rule),
                          smartetl._silence_matches(jsonb, jsonb),
                          smartetl._alert_apply_rule(smartetl.alert_rule),
                          smartetl._alert_notification(text, text, text), smartetl._alert_notify(),
                          smartetl._alert_refresh_alertmanager(smartetl.alert_rule, smartetl.alert_group),
                          smartetl._test_notification(text)
    TO smartetl_admin;

-- prediction: readers score and rank; admins train and manage models
GRANT SELECT ON smartetl.prediction_quality, smartetl.current_risk TO smartetl_reader;
GRANT SELECT (model_id, name, kind, algorithm, horizon, status, trained_at, training_rows, test_rows,
              feature_names, metrics, train_seconds, peak_rss_kb, options, note) ON smartetl.model TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.model, smartetl.prediction TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.risk_features(text, timestamptz, interval),
                          smartetl._risk_rows(bigint, timestamptz[], interval, interval),
                          smartetl._risk_feature_names(), smartetl._risk_feature_rows(bigint, timestamptz[]),
                          smartetl._risk_feature_names_v1()
    TO smartetl_reader;
-- backtest stores nothing but trains models (minutes of CPU on a large
-- history): admins, like train_risk_model
GRANT EXECUTE ON FUNCTION smartetl.train_risk_model(interval, text, jsonb), smartetl.train(text, text, text, text, jsonb),
                          smartetl.backtest(interval, timestamptz, timestamptz),
                          smartetl.failure_risk(text, interval, timestamptz), smartetl.risk_ranking(interval),
                          smartetl.predict(text, double precision[]), smartetl.resolve_predictions(),
                          smartetl.model_drift(bigint, interval), smartetl._risk_samples(interval, interval, timestamptz),
                          smartetl._risk_samples_v2(interval, interval, timestamptz, interval, timestamptz),
                          smartetl._risk_backtest(text, interval, interval, timestamptz, timestamptz, text[], jsonb, boolean),
                          smartetl._risk_step(interval), smartetl._risk_note(text, boolean, jsonb, jsonb),
                          smartetl._risk_num(jsonb), smartetl._risk_candidate_description(text),
                          smartetl._risk_age(double precision), smartetl._risk_when(timestamptz, timestamptz),
                          smartetl._risk_reason(bigint, timestamptz, interval, text, double precision),
                          smartetl._risk_reasons(bigint, timestamptz, interval, double precision[], double precision[], text),
                          smartetl._champion(text), smartetl._risk_model_name(interval),
                          smartetl.export_model(bigint), smartetl.import_model(jsonb), smartetl.promote_model(bigint),
                          smartetl._calibrate(double precision, double precision[]),
                          smartetl._score(bigint[], interval, timestamptz, boolean),
                          smartetl._model_fit(text, text, boolean, jsonb),
                          smartetl._model_predict(bigint, text, bytea, double precision[]),
                          smartetl._model_contributions(bigint, text, bytea, double precision[]),
                          smartetl._model_psi(double precision[], double precision[], integer),
                          smartetl._classifier_metrics(double precision[], double precision[])
    TO smartetl_admin;
