-- ---------------------------------------------------------------------------
-- Every grant of the extension, to the roles of 05_roles.sql, once every
-- object exists: the pieces before this one create objects and grant
-- nothing (90_dump.sql only marks the tables for pg_dump).  A new function
-- is private (no EXECUTE but its owner's) until it is granted here; the
-- role matrix (test/sql/role_matrix.sql, README "Roles") checks the public
-- ones.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA smartetl FROM PUBLIC;
GRANT USAGE ON SCHEMA smartetl TO smartetl_reader;

-- advisory locks (07_locks.sql): the list for anyone reading pg_locks; the
-- invoker-rights callers (sync_pg_cron, evaluate_alerts) are admins'
GRANT EXECUTE ON FUNCTION smartetl._lock_keys() TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._xact_lock(text, integer) TO smartetl_admin;

GRANT SELECT ON smartetl.pipeline, smartetl.run, smartetl.log_event, smartetl.template,
                smartetl.template_text, smartetl.template_seen
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.parse_log(text, text), smartetl.log_template(text),
                          smartetl.log_template_id(text), smartetl.ingest_formats() TO smartetl_reader;

-- templates are written only by the extension's own code (template_store.c)
GRANT INSERT, UPDATE ON smartetl.pipeline, smartetl.run, smartetl.log_event
    TO smartetl_writer;
GRANT SELECT, INSERT ON smartetl.ingest_reject TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl.ingest(text, text, jsonb),
                          smartetl._pipeline_ensure(text, text),
                          smartetl._log_partitions_ensure(timestamptz, timestamptz),
                          smartetl._time_window()
    TO smartetl_writer;
-- reading server files also takes superuser or pg_read_server_files (checked in C)
GRANT EXECUTE ON FUNCTION smartetl.ingest_file(text, text, jsonb) TO smartetl_writer;

GRANT DELETE ON smartetl.pipeline, smartetl.run, smartetl.log_event, smartetl.ingest_reject
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.template_compact(), smartetl.after_restore() TO smartetl_admin;
GRANT SELECT, INSERT, UPDATE ON smartetl.sync_state TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.sync_pg_cron(), smartetl._pg_cron_runs(bigint),
                          smartetl.drop_log_partitions(timestamptz)
    TO smartetl_admin;

-- KPIs, anomalies and views (the helpers run as the caller inside them)
GRANT SELECT ON smartetl.kpi_hourly, smartetl.kpi_daily, smartetl.kpi_monthly, smartetl.failure_streak, smartetl.anomalies, smartetl.run_cube,
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
                          smartetl._stale_factor(),
                          smartetl._expected_interval(bigint, timestamptz),
                          smartetl._failure_streaks(timestamptz, timestamptz),
                          smartetl._kpi_buckets(timestamptz, timestamptz),
                          smartetl._kpi_spans(timestamptz, timestamptz)
    TO smartetl_reader;
-- the report (it runs as the caller, so readers execute its helpers too)
GRANT EXECUTE ON FUNCTION smartetl.report_html(timestamptz, timestamptz),
                          smartetl._html_escape(text),
                          smartetl._duration_text(double precision, text, text),
                          smartetl._report_duration(double precision), smartetl._report_interval(interval),
                          smartetl._report_number(anyelement), smartetl._report_percent(double precision),
                          smartetl._report_utc(timestamptz), smartetl._report_iso(timestamptz),
                          smartetl._report_pipeline(text, text, boolean, boolean),
                          smartetl._report_section(text, text, text), smartetl._report_table(text[], text[], text[]),
                          smartetl._report_svg_open(text, integer, integer, text, text),
                          smartetl._report_axis_labels(numeric, integer, text, integer, numeric, text),
                          smartetl._report_columns(text, text, text, text, text, text[], text[], bigint[], bigint[]),
                          smartetl._report_rate_bars(text, text, text, text, text, text[], double precision[], text[]),
                          smartetl._report_range(timestamptz, timestamptz),
                          smartetl._report_head(smartetl._report_range), smartetl._report_summary(smartetl._report_range),
                          smartetl._report_runs(smartetl._report_range), smartetl._report_pipelines(smartetl._report_range),
                          smartetl._report_errors(smartetl._report_range), smartetl._report_anomalies(smartetl._report_range),
                          smartetl._report_hours(smartetl._report_range)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._kpi_refresh(bigint[], timestamptz[]) TO smartetl_writer;
-- bulk ingest reads the statements that add its new runs to the rollups
GRANT EXECUTE ON FUNCTION smartetl._kpi_rollup_columns(), smartetl._kpi_rollup_sql(text, text) TO smartetl_writer;
-- bulk ingest adds its new runs to the rollups as the ingesting role
GRANT INSERT, UPDATE ON smartetl.kpi_hourly, smartetl.kpi_daily, smartetl.kpi_monthly TO smartetl_writer;
GRANT DELETE ON smartetl.kpi_hourly, smartetl.kpi_daily, smartetl.kpi_monthly TO smartetl_admin;
-- failure streaks: bulk ingest redoes its pipelines' last streaks as the
-- ingesting role (_streak_refresh, invoker's rights)
GRANT SELECT, INSERT, DELETE ON smartetl.failure_streak TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._streak_refresh(bigint[], timestamptz[]) TO smartetl_writer;
-- anomaly scores: read by detect_anomalies (as the caller); bulk ingest
-- scores its new runs as the ingesting role (_anomaly_refresh, invoker's
-- rights; the triggers' path runs it inside _kpi_refresh)
GRANT SELECT ON smartetl.run_anomaly_score TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.run_anomaly_score, smartetl.anomaly_state TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._anomaly_refresh(bigint[], timestamptz[]),
                          smartetl._anomaly_scan(double precision[], double precision, double precision, timestamptz, boolean)
    TO smartetl_writer;

-- HTTP intake and followed files (26_intake.sql): admins register files (the
-- trigger also wants pg_read_server_files) and read keys and file states; no
-- role writes keys or file states directly
GRANT SELECT (key_id, name, role, namespaces, created_by, created_at, revoked_at, last_used_at)
    ON smartetl.api_key TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.create_api_key(text, regrole, text[]),
                          smartetl.revoke_api_key(text)
    TO smartetl_admin;
GRANT SELECT, INSERT, DELETE ON smartetl.source TO smartetl_admin;
GRANT UPDATE (path, format, options, enabled) ON smartetl.source TO smartetl_admin;
GRANT SELECT, DELETE ON smartetl.source_file TO smartetl_admin;

-- alerting: channels (targets and secrets), rules, the outbox: admins only;
-- readers see alerts and silences
GRANT SELECT ON smartetl.alert, smartetl.silence TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.channel, smartetl.alert_rule, smartetl.silence,
                                        smartetl.delivery, smartetl.alert, smartetl.alert_group,
                                        smartetl.alert_rule_state
    TO smartetl_admin;
-- the payload builders (87_alert_payload.sql)
GRANT EXECUTE ON FUNCTION
    smartetl._alert_ellipsis(), smartetl._alert_trunc(text, integer, boolean),
    smartetl._alert_slack_escape(text), smartetl._alert_slack_code(text, integer, boolean),
    smartetl._alert_md_escape(text), smartetl._alert_ts(text), smartetl._alert_rfc3339(timestamptz),
    smartetl._alert_human_ts(text), smartetl._alert_duration(jsonb), smartetl._alert_check(jsonb),
    smartetl._alert_rows(jsonb), smartetl._alert_history(jsonb, integer), smartetl._alert_runs_text(jsonb),
    smartetl._alert_resolved(jsonb), smartetl._alert_severity(jsonb), smartetl._alert_link(jsonb),
    smartetl._alert_ack_url(jsonb),
    smartetl._alert_title(jsonb, jsonb), smartetl._alert_facts(jsonb, jsonb), smartetl._alert_slack_mention(text),
    smartetl._alert_slack_section(text), smartetl._alert_slack_context(text),
    smartetl._alert_teams_heading(text), smartetl._alert_teams_code(text, text),
    smartetl._payload_slack_alert(smartetl._alert_item), smartetl._payload_teams_alert(smartetl._alert_item),
    smartetl._payload_email_alert_text(smartetl._alert_item),
    smartetl._payload_email_alert_html(smartetl._alert_item, text),
    smartetl._payload_email_text(smartetl._alert_notice, text, text, integer),
    smartetl._payload_email_html(smartetl._alert_notice, text, text, integer),
    smartetl._alert_label_name(text), smartetl._alert_label_set(jsonb),
    smartetl._payload_webhook(jsonb, jsonb), smartetl._payload_slack(jsonb, jsonb),
    smartetl._payload_teams(jsonb, jsonb), smartetl._payload_alertmanager(jsonb, jsonb),
    smartetl._payload_email(jsonb, jsonb), smartetl._payload_notify(jsonb, jsonb),
    smartetl._payload(text, jsonb, jsonb), smartetl._channel_options_email(text, jsonb)
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._alert_wake() TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl._recent_history(bigint) TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.evaluate_alerts(), smartetl.test_channel(text),
                          smartetl._glob_match(text, text),
                          smartetl._selector_matches(jsonb, smartetl.pipeline),
                          smartetl._rule_query_check(text, text), smartetl._rule_query_rows(text, text),
                          smartetl._run_annotations(text, text, bigint, timestamptz, bigint),
                          smartetl._alert_conditions(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_failures(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_anomaly(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_freshness(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_deadline(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_risk(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_model_drift(smartetl.alert_rule, bigint[]),
                          smartetl._alert_cond_sql(smartetl.alert_rule, bigint[]),
                          smartetl._silence_matches(jsonb, jsonb),
                          smartetl._alert_apply_rule(smartetl.alert_rule, bigint[]),
                          smartetl._alert_notification(text, text, text, text[]), smartetl._alert_notify(boolean),
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

-- on-call: schedules are read by everyone, checked for whoever writes them
GRANT EXECUTE ON FUNCTION smartetl.cron_next(text, timestamptz, text),
                          smartetl._cron_prev(text, timestamptz, text)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._cron_check(text, text), smartetl._cron_valid(text) TO smartetl_writer;
GRANT EXECUTE ON FUNCTION smartetl.alert_rule_kinds(), smartetl.alert_channel_kinds(),
                          smartetl.deadline_status(timestamptz), smartetl.alert_worker_status() TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl.next_alert_due(timestamptz), smartetl.sync_airflow_schedules(jsonb, jsonb),
                          smartetl._pg_cron_jobs()
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._alert_muted(smartetl.alert), smartetl._alert_held(smartetl.alert),
                          smartetl._alert_extras(smartetl.alert), smartetl._run_retry(bigint),
                          smartetl._alert_inhibit()
    TO smartetl_admin;
GRANT SELECT ON smartetl.maintenance_window TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.maintenance_window TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl.maintenance_window_active(text, timestamptz),
                          smartetl._window_value(text, text), smartetl._window_in(jsonb, text, integer, integer),
                          smartetl._time_interval_active(jsonb, timestamptz, text)
    TO smartetl_reader;
GRANT EXECUTE ON FUNCTION smartetl._window_next_change(smartetl.maintenance_window, timestamptz),
                          smartetl._alert_window_catch_up()
    TO smartetl_admin;
GRANT SELECT ON smartetl.escalation_policy, smartetl.alert_status TO smartetl_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.escalation_policy TO smartetl_admin;
-- on call: acknowledge, assign, snooze (SECURITY DEFINER: they change those columns only)
GRANT EXECUTE ON FUNCTION smartetl.ack(bigint, text, text), smartetl.unack(bigint),
                          smartetl.assign(bigint, text), smartetl.snooze(bigint, timestamptz, text)
    TO smartetl_oncall;
GRANT EXECUTE ON FUNCTION smartetl._alert_escalate() TO smartetl_admin;
-- acknowledge links (86_oncall_ack_link.sql): on-call staff may make a link
-- for what they may acknowledge anyway; evaluate_alerts (admins) puts them
-- in notifications.  The secret and the page (_ack_link_verify,
-- _ack_link_page: the intake worker's) are nobody's.
GRANT EXECUTE ON FUNCTION smartetl.ack_link(bigint), smartetl._ack_link_token(bigint, timestamptz)
    TO smartetl_oncall;
GRANT EXECUTE ON FUNCTION smartetl._alert_ack_link(smartetl.alert) TO smartetl_admin;
GRANT SELECT ON smartetl.ack_link_use TO smartetl_admin;

-- incremental alert evaluation (88_alert_eval.sql): writers record the
-- pipelines they change (the triggers on run and pipeline; admins through
-- the rule trigger too); the evaluation's own state is admins'
GRANT INSERT ON smartetl.alert_changed TO smartetl_writer;
GRANT SELECT, DELETE ON smartetl.alert_changed TO smartetl_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON smartetl.alert_rule_due, smartetl.alert_group_due,
                                        smartetl.alert_eval_state, smartetl.alert_io, smartetl.alert_edge
    TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._alert_freshness(bigint[], timestamptz),
                          smartetl._alert_rule_due_set(smartetl.alert_rule, bigint[]),
                          smartetl._alert_group_next_due(text), smartetl._alert_edges_refresh(bigint[])
    TO smartetl_admin;
-- chunked evaluation (the worker's passes; evaluate_alerts() takes them all)
GRANT SELECT, INSERT, DELETE ON smartetl.alert_backlog TO smartetl_admin;
GRANT EXECUTE ON FUNCTION smartetl._evaluate_alerts(integer), smartetl._alert_backlog_take(bigint[], integer)
    TO smartetl_admin;
