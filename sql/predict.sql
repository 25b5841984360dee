-- Prediction: features from history before a time only, a risk model
-- trained and registered, scores with reasons, the prediction log, drift,
-- generic train/predict, and the errors.
SET timezone = 'UTC';
-- a pipeline that fails every Monday and one that never fails, 12 weeks of daily runs
SELECT * FROM smartetl.ingest('csv', 'job,run_id,start,end,status,rows' || E'\n' ||
  (SELECT string_agg(format('%s,%s,%s,%s,%s,%s', j, d, t, t + interval '10 minutes',
                            CASE WHEN j = 'weekly_flaky' AND extract(isodow FROM t) = 1 THEN 'failed' ELSE 'success' END,
                            1000 + extract(doy FROM t)), E'\n')
   FROM unnest(ARRAY['weekly_flaky', 'steady']) j,
        generate_series(timestamptz '2024-01-01 02:00+00', '2024-03-24 02:00+00', '1 day') WITH ORDINALITY g(t, d)),
  '{"namespace": "pred"}');

-- features at a time see only runs known before it
SELECT feature, round(value::numeric, 3) AS value FROM smartetl.risk_features('weekly_flaky', '2024-03-18 02:00+00')
WHERE feature IN ('fail_rate_7d', 'fail_rate_30d', 'consecutive_failures', 'hours_since_failure', 'runs_per_day_7d', 'last_failed');
SELECT feature, round(value::numeric, 3) AS value FROM smartetl.risk_features('weekly_flaky', '2024-03-18 02:30+00')
WHERE feature IN ('consecutive_failures', 'last_failed');

-- no model yet
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-20');
-- train: samples every 6 hours, the latest 20 % held out; the first model is the champion
SELECT smartetl.train_risk_model('1 day', 'xgboost', '{"step": "6 hours", "until": "2024-03-25", "n_rounds": 50}') AS xgb_id \gset
SELECT name, kind, algorithm, status, training_rows > test_rows AS time_split, (metrics->>'roc_auc')::float8 > 0.9 AS good_auc,
       feature_names[1:3] AS first_features, metrics ? 'calibration' AS has_calibration, octet_length(model) > 0 AS stored
FROM smartetl.model WHERE model_id = :xgb_id;
-- a second model competes on the same held-out rows; both stay
SELECT smartetl.train_risk_model('1 day', 'linear', '{"step": "6 hours", "until": "2024-03-25"}') AS lr_id \gset
SELECT algorithm, status, metrics ? 'champion_roc_auc_same_rows' AS compared FROM smartetl.model ORDER BY model_id;
-- the Sunday evening before a Monday failure scores higher than a Wednesday
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 03:00+00')
     > smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-20 03:00+00') AS monday_riskier;
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 03:00+00')
     > smartetl.failure_risk('steady', '1 day', '2024-03-17 03:00+00') AS flaky_riskier;
-- the ranking explains itself with the largest contributions
SELECT pipeline, jsonb_array_length(reasons) AS reasons, reasons->0 ? 'feature' AS named
FROM smartetl.risk_ranking('1 day') WHERE pipeline IN ('weekly_flaky', 'steady') ORDER BY pipeline;
-- predictions are logged and resolved once their horizon has passed
SELECT count(*) AS logged, count(*) FILTER (WHERE outcome IS NULL) AS open
FROM smartetl.prediction JOIN smartetl.pipeline USING (pipeline_id) WHERE namespace = 'pred';
SELECT smartetl.resolve_predictions() > 0 AS resolved;
SELECT at, outcome FROM smartetl.prediction p JOIN smartetl.pipeline USING (pipeline_id)
WHERE name = 'weekly_flaky' AND at < '2024-04-01' ORDER BY at;
-- drift: every feature is compared with the training sample
SELECT count(*) = cardinality(smartetl._risk_feature_names()) AS every_feature,
       count(psi) = count(*) AND bool_and(psi >= 0 AND psi <> 'NaN') AS psi_defined
FROM smartetl.model_drift(:xgb_id, '100 years');

-- Platt calibration (opt-in): p' = sigmoid(a * logit(p) + b)
SELECT round(smartetl._calibrate(0.5, '{1,0}')::numeric, 3) AS identity, round(smartetl._calibrate(0.5, '{2,1}')::numeric, 3) AS shifted,
       smartetl._calibrate(0.9, NULL) AS uncalibrated;
SELECT smartetl.train_risk_model('1 day', 'linear', '{"step": "6 hours", "until": "2024-03-25", "calibrate": 1}') AS cal_id \gset
SELECT cardinality(calibration) = 2 AND calibration[1] > 0 AS order_kept,
       (metrics->>'brier')::float8 < 0.25 AS better_than_a_coin FROM smartetl.model WHERE model_id = :cal_id;

-- export, import elsewhere (here: again), promote: the imported model is the
-- linear one, which is not the champion, so serving it proves the promotion
SELECT smartetl.import_model(smartetl.export_model(:lr_id)) AS imported_id \gset
SELECT algorithm, status, feature_names = (SELECT feature_names FROM smartetl.model WHERE model_id = :lr_id) AS same_features
FROM smartetl.model WHERE model_id = :imported_id;
SELECT status <> 'champion' AS imported_not_champion_yet FROM smartetl.model WHERE model_id = :imported_id;
SELECT smartetl.promote_model(:imported_id);
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 04:00+00') > 0.5 AS imported_model_scores;
SELECT (SELECT model_id FROM smartetl.prediction ORDER BY prediction_id DESC LIMIT 1) = :imported_id AS served_by_imported,
       (SELECT count(*) FROM smartetl.model WHERE name = (SELECT name FROM smartetl.model WHERE model_id = :imported_id)
                                            AND status = 'champion') AS champions;
-- a risk model over other features is refused
SELECT smartetl.import_model(jsonb_set(smartetl.export_model(:xgb_id), '{feature_names}', '["a", "b"]'));
SELECT smartetl.import_model(jsonb_set(smartetl.export_model(:xgb_id), '{model}', '"AAAA"'));
SELECT smartetl.import_model('{"format": "other"}');

-- generic models on any query
CREATE TABLE pred_loads AS
SELECT g AS id, (g % 10)::float8 AS x1, ((g * 7) % 13)::float8 AS x2,
       ((g % 10) * 2 + ((g * 7) % 13) > 16)::int AS big, (g % 10) * 3.0 + ((g * 7) % 13) AS size
FROM generate_series(1, 400) g;
SELECT smartetl.train('loads_big', 'SELECT x1, x2, big FROM pred_loads ORDER BY id', 'big', 'xgboost', '{"n_rounds": 50}') IS NOT NULL AS trained;
SELECT kind, feature_names, (metrics->>'accuracy')::float8 > 0.9 AS accurate FROM smartetl.model WHERE name = 'loads_big';
SELECT round(smartetl.predict('loads_big', ARRAY[9, 12]::float8[])) AS big_one, round(smartetl.predict('loads_big', ARRAY[0, 1]::float8[])) AS small_one;
SELECT smartetl.train('loads_size', 'SELECT x1, x2, size FROM pred_loads ORDER BY id', 'size', 'linear') IS NOT NULL AS trained;
SELECT kind, (metrics->>'r2')::float8 > 0.95 AS fits FROM smartetl.model WHERE name = 'loads_size';
SELECT round(smartetl.predict('loads_size', ARRAY[2, 3]::float8[])) AS size_2_3;
-- errors
SELECT smartetl.train('bad', 'SELECT x1, x2 FROM pred_loads', 'nope', 'xgboost');
SELECT smartetl.train('bad', 'SELECT x1, x2, big FROM pred_loads', 'big', 'forest');
SELECT smartetl.train('bad', 'SELECT x1, x2, big FROM pred_loads LIMIT 3', 'big', 'linear');
SELECT smartetl.predict('loads_big', ARRAY[1, 2, 3]::float8[]);
SELECT smartetl.train('bad', 'SELECT x1, x2, big FROM pred_loads', 'big', 'xgboost', '{"split": "random"}');
DROP TABLE pred_loads;
