-- Prediction: features from history before a time only (none drifting with
-- the calendar or the history length), the rolling-origin backtest with the
-- baselines as candidates, a learned model served only when it beats them
-- (else the best baseline, calibrated, saying so), reasons in plain words,
-- the prediction log, drift, export/import, generic train/predict, errors.
SET timezone = 'UTC';
-- a risk model learns from every pipeline: keep only this test's
DELETE FROM smartetl.run;
-- a pipeline that fails every Monday and one that never fails, 12 weeks of daily runs
SELECT * FROM smartetl.ingest('csv', 'job,run_id,start,end,status,rows' || E'\n' ||
  (SELECT string_agg(format('%s,%s,%s,%s,%s,%s', j, d, t, t + interval '10 minutes',
                            CASE WHEN j = 'weekly_flaky' AND extract(isodow FROM t) = 1 THEN 'failed' ELSE 'success' END,
                            1000 + extract(doy FROM t)), E'\n')
   FROM unnest(ARRAY['weekly_flaky', 'steady']) j,
        generate_series(timestamptz '2024-01-01 02:00+00', '2024-03-24 02:00+00', '1 day') WITH ORDINALITY g(t, d)),
  '{"namespace": "pred"}');

-- features at a time see only runs known before it (the Monday run ends at 02:10)
SELECT feature, round(value::numeric, 3) AS value FROM smartetl.risk_features('weekly_flaky', '2024-03-18 02:00+00')
WHERE feature IN ('fail_rate_7d', 'fail_count_7d', 'fail_days_7d', 'consecutive_failures', 'hours_since_failure',
                  'successes_since_failure', 'runs_per_day_7d', 'last_failed', 'failed_same_window_1w', 'weekly_repeat');
SELECT feature, round(value::numeric, 3) AS value FROM smartetl.risk_features('weekly_flaky', '2024-03-18 02:30+00')
WHERE feature IN ('fail_count_7d', 'consecutive_failures', 'last_failed', 'hours_since_failure');
-- four weeks earlier, with a history half as long, the same features (nothing reads the date or the
-- history length; volume_z aside: the rows written grow by one a day)
SELECT array_agg(f.value ORDER BY f.feature) = array_agg(g.value ORDER BY g.feature) AS history_length_free
FROM smartetl.risk_features('weekly_flaky', '2024-03-18 02:30+00') f
JOIN smartetl.risk_features('weekly_flaky', '2024-02-19 02:30+00') g USING (feature)
WHERE feature <> 'volume_z';
-- the horizon sets the same-window features: a 6-hour window a week before 2024-03-18 01:00 holds the Monday failure
SELECT feature, value FROM smartetl.risk_features('weekly_flaky', '2024-03-18 01:00+00', '6 hours')
WHERE feature IN ('failed_same_window_1w', 'expected_runs_horizon');

-- samples: every pipeline every step, days without runs included, labels known before until
SELECT count(*) AS samples, count(DISTINCT pipeline_id) AS pipelines, sum(label) AS failing,
       min(t) AS first, max(t) AS last
FROM smartetl._risk_samples_v2('1 day', '6 hours', '2024-03-25');

-- no model yet
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-20');

-- the backtest: one row per candidate, the baselines included, on the same folds
SELECT candidate, round(roc_auc::numeric, 3) AS roc_auc, round(brier::numeric, 3) AS brier,
       pipeline_times, positives, folds, jsonb_array_length(reliability) > 0 AS reliability
FROM smartetl.backtest('1 day', NULL, '2024-03-25') WHERE candidate IN ('fail_rate_7d', 'fail_count_7d', 'last_failed');
-- the weekly pattern is learned: both learned models beat every baseline out of time; one is what train would serve
SELECT count(*) FILTER (WHERE description LIKE 'baseline:%') AS baselines,
       min(roc_auc) FILTER (WHERE candidate IN ('xgboost', 'linear'))
         > max(roc_auc) FILTER (WHERE description LIKE 'baseline:%') + 0.1 AS learned_beat_baselines,
       count(*) FILTER (WHERE would_serve) AS served,
       bool_and(pipeline_times = 198) AS same_rows,
       bool_and(brier < 0.0606 * (1 - 0.0606)) AS better_brier_than_base_rate
FROM smartetl.backtest('1 day', NULL, '2024-03-25');

-- train: the learned model and the three baselines are registered, the learned one serves
SELECT smartetl.train_risk_model('1 day', 'xgboost', '{"until": "2024-03-25", "n_rounds": 50}') AS xgb_id \gset
SELECT coalesce(options->>'baseline', algorithm) AS candidate, status, test_rows,
       training_rows > 0 OR algorithm = 'baseline' AS trained, cardinality(calibration) AS calibration,
       metrics ? 'folds' AS folds, note ~ '^(champion|not served)' AS noted
FROM smartetl.model WHERE name = 'risk:86400s' ORDER BY model_id;
SELECT model_id = :xgb_id AS returned_learned, status, feature_names[1:3] AS first_features,
       note LIKE 'champion: ROC-AUC % out of time against % for the best baseline%' AS says_why
FROM smartetl.model WHERE status = 'champion';
-- the Sunday evening before a Monday failure scores higher than a Wednesday, and than the steady pipeline
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 03:00+00')
     > smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-20 03:00+00') AS monday_riskier;
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 03:00+00')
     > smartetl.failure_risk('steady', '1 day', '2024-03-17 03:00+00') AS flaky_riskier;
-- calibrated: a probability, not a score; both failures within the day are near 1
SELECT smartetl.failure_risk('weekly_flaky', '1 day', '2024-03-17 03:00+00') > 0.5 AS likely,
       smartetl.failure_risk('steady', '1 day', '2024-03-17 03:00+00') < 0.1 AS unlikely;
-- a second training retires the first one's candidates
SELECT smartetl.train_risk_model('1 day', 'linear', '{"until": "2024-03-25"}') AS lr_id \gset
SELECT algorithm, status, count(*) FROM smartetl.model WHERE name = 'risk:86400s' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT smartetl.train_risk_model('1 day', 'forest');

-- reasons in plain words, with the values behind them
SELECT a.at, smartetl._risk_reason(p.pipeline_id, a.at, '1 day', f.feature, f.value) AS reason
FROM smartetl.pipeline p, (VALUES (timestamptz '2024-03-17 03:00+00'), ('2024-03-18 03:00+00')) a(at),
     LATERAL smartetl.risk_features('weekly_flaky', a.at) f
WHERE p.name = 'weekly_flaky'
  AND f.feature IN ('fail_days_7d', 'consecutive_failures', 'runs_per_day_7d', 'hours_since_failure', 'weekly_repeat',
                    'successes_since_failure')
ORDER BY a.at, f.feature;
-- two failures in a row, the second one (yesterday) with an error never seen before
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status,error\n'
    || E'loader,1,2024-03-10 04:10:00,2024-03-10 04:12:00,success,\n'
    || E'loader,2,2024-03-11 04:10:00,2024-03-11 04:12:00,failed,Connection refused by db01\n'
    || E'loader,3,2024-03-12 04:10:00,2024-03-12 04:12:00,success,\n'
    || E'loader,4,2024-03-13 04:10:00,2024-03-13 04:12:00,failed,Connection refused by db02\n'
    || E'loader,5,2024-03-14 04:10:00,2024-03-14 04:12:00,failed,KeyError: \'order_id\'\n', '{"namespace": "pred"}');
SELECT r->>'feature' AS feature, r->>'reason' AS reason
FROM smartetl.pipeline p,
     LATERAL (SELECT array_agg(value ORDER BY ord) AS v
              FROM smartetl.risk_features('loader', '2024-03-14 12:00+00') WITH ORDINALITY f(feature, value, ord)) f,
     jsonb_array_elements(smartetl._risk_reasons(p.pipeline_id, '2024-03-14 12:00+00', '1 day', f.v, NULL, 'fail_rate_7d')) r
WHERE p.name = 'loader';
-- the ranking: sentences, and the SHAP values of every feature in detail
SELECT pipeline, reasons IS NOT NULL AND reasons !~ '_' AS plain_words, detail->>'algorithm' AS algorithm,
       (SELECT count(*) FROM jsonb_object_keys(detail->'contributions')) AS contributions,
       jsonb_array_length(detail->'reasons') AS reasons
FROM smartetl.risk_ranking('1 day') WHERE pipeline IN ('weekly_flaky', 'steady') ORDER BY pipeline;
SELECT pipeline, reasons !~ '_' AS plain_words, jsonb_array_length(detail) AS detailed
FROM smartetl.current_risk WHERE pipeline IN ('weekly_flaky', 'steady') ORDER BY pipeline;
-- the risk alert describes itself in the same words
SELECT a.annotations->>'description' = 'main reasons: ' || k.reasons AS alert_in_words
FROM smartetl._alert_conditions(jsonb_populate_record(NULL::smartetl.alert_rule,
                                    '{"name": "pred-risk", "kind": "risk", "threshold": 0}')) a
JOIN smartetl.risk_ranking('1 day') k USING (pipeline_id)
WHERE k.pipeline = 'weekly_flaky';

-- predictions are logged and resolved once their horizon has passed
SELECT count(*) > 0 AS logged, count(*) FILTER (WHERE outcome IS NULL) > 0 AS open
FROM smartetl.prediction JOIN smartetl.pipeline USING (pipeline_id) WHERE namespace = 'pred';
SELECT smartetl.resolve_predictions() > 0 AS resolved;
SELECT at, outcome FROM smartetl.prediction p JOIN smartetl.pipeline USING (pipeline_id)
WHERE name = 'weekly_flaky' AND at < '2024-04-01' ORDER BY at, outcome;
-- drift: every feature is compared with the training sample
SELECT count(*) = cardinality(smartetl._risk_feature_names()) AS every_feature,
       count(psi) = count(*) AND bool_and(psi >= 0 AND psi <> 'NaN') AS psi_defined
FROM smartetl.model_drift(:lr_id, '100 years');

-- Platt calibration: p' = sigmoid(a * logit(p) + b)
SELECT round(smartetl._calibrate(0.5, '{1,0}')::numeric, 3) AS identity, round(smartetl._calibrate(0.5, '{2,1}')::numeric, 3) AS shifted,
       smartetl._calibrate(0.9, NULL) AS uncalibrated;

-- pure noise: 12 identical pipelines failing at random (5 % of 4 runs a day): nothing to learn,
-- so the best baseline is served, calibrated, and the registry says why
DELETE FROM smartetl.prediction;
DELETE FROM smartetl.run;
SELECT setseed(0.25);
SELECT (smartetl.ingest('csv', 'job,run_id,start,end,status' || E'\n' ||
  (SELECT string_agg(format('noise%s,%s,%s,%s,%s', j, k, t, t + interval '5 minutes',
                            CASE WHEN random() < 0.05 THEN 'failed' ELSE 'success' END), E'\n' ORDER BY j, k)
   FROM generate_series(1, 12) j,
        generate_series(timestamptz '2024-01-01 01:00+00', '2024-03-31 19:00+00', '6 hours') WITH ORDINALITY g(t, k)),
  '{"namespace": "noise"}')).inserted;
SELECT smartetl.train_risk_model('1 day', 'xgboost', '{"until": "2024-04-01", "n_rounds": 50}') AS noise_id \gset
SELECT algorithm, options->>'baseline' AS baseline, note LIKE 'champion: baseline: %, calibrated; % no learned model beat it by 0.020 %' AS says_why
FROM smartetl.model WHERE status = 'champion';
SELECT status, note LIKE 'not served: % a learned model is served when its gain minus its standard error reaches 0.020' AS says_why
FROM smartetl.model WHERE model_id = :noise_id;
-- failure_risk serves the baseline through its calibration: sigmoid(a * g(x) + b)
SELECT abs(smartetl.failure_risk('noise3', '1 day', '2024-03-20')
           - 1 / (1 + exp(-(m.calibration[1] * CASE m.options->>'baseline' WHEN 'fail_count_7d' THEN ln(1 + f.value) ELSE f.value END
                            + m.calibration[2])))) < 1e-9 AS served_calibrated_baseline
FROM smartetl.model m, smartetl.risk_features('noise3', '2024-03-20') f
WHERE m.status = 'champion' AND f.feature = m.options->>'baseline';
SELECT (SELECT model_id FROM smartetl.prediction ORDER BY prediction_id DESC LIMIT 1) = model_id AS logged_by_baseline
FROM smartetl.model WHERE status = 'champion';
-- its reasons lead with the baseline's own figure
SELECT (detail->'reasons'->0->>'feature') = (SELECT options->>'baseline' FROM smartetl.model WHERE status = 'champion') AS leads,
       detail->>'served' LIKE 'baseline: % (calibrated)' AS says_baseline
FROM smartetl.risk_ranking('1 day') WHERE pipeline = 'noise3';

-- export, import elsewhere (here: again), promote: the imported model is the
-- learned one, which is not the champion, so serving it proves the promotion
SELECT smartetl.import_model(smartetl.export_model(:noise_id)) AS imported_id \gset
SELECT algorithm, status, feature_names = (SELECT feature_names FROM smartetl.model WHERE model_id = :noise_id) AS same_features,
       note LIKE 'imported: not served%' AS noted
FROM smartetl.model WHERE model_id = :imported_id;
SELECT smartetl.promote_model(:imported_id);
SELECT smartetl.failure_risk('noise3', '1 day', '2024-03-20') BETWEEN 0 AND 1 AS imported_model_scores;
SELECT (SELECT model_id FROM smartetl.prediction ORDER BY prediction_id DESC LIMIT 1) = :imported_id AS served_by_imported,
       (SELECT count(*) FROM smartetl.model WHERE name = (SELECT name FROM smartetl.model WHERE model_id = :imported_id)
                                            AND status = 'champion') AS champions;
-- a risk model over other features is refused, as are damaged bytes
SELECT smartetl.import_model(jsonb_set(smartetl.export_model(:xgb_id), '{feature_names}', '["a", "b"]'));
SELECT smartetl.import_model(jsonb_set(smartetl.export_model(:xgb_id), '{model}', '"AAAA"'));
SELECT smartetl.import_model(jsonb_set(smartetl.export_model((SELECT model_id FROM smartetl.model WHERE algorithm = 'baseline' LIMIT 1)), '{model}', '"AAAA"'));
SELECT smartetl.import_model('{"format": "other"}');
-- too little history for a rolling-origin evaluation
DELETE FROM smartetl.run WHERE run_at > '2024-01-02';
SELECT smartetl.train_risk_model('1 day', 'xgboost', '{"until": "2024-01-03"}');
SELECT * FROM smartetl.backtest('1 day', NULL, '2024-01-03');

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
