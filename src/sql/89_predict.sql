-- ---------------------------------------------------------------------------
-- Prediction: failure-risk models trained in the database (XGBoost by
-- default, liblinear logistic regression as the interpretable one), never
-- served unless they beat the obvious baselines (7-day failure rate and
-- count, last outcome) out of time; the model registry with champion /
-- candidate, prediction log with outcomes, the user-facing backtest, drift,
-- reasons in plain words, and generic train / predict for the data team's
-- own tables.  The C side (src/predict) computes features, evaluates by
-- rolling origin, fits, predicts and explains; this file decides what is
-- sampled and stores what the evaluation chose.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TABLE smartetl.model (
    model_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('risk', 'classifier', 'regressor')),
    algorithm       text NOT NULL CHECK (algorithm IN ('xgboost', 'linear', 'baseline')),
    horizon         interval,
    status          text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'champion', 'retired')),
    trained_at      timestamptz NOT NULL DEFAULT now(),
    training_rows   integer NOT NULL,
    test_rows       integer NOT NULL,
    feature_names   text[] NOT NULL,
    metrics         jsonb NOT NULL,
    reference       double precision[] NOT NULL,
    model           bytea NOT NULL,
    train_seconds   double precision NOT NULL,
    peak_rss_kb     bigint,
    calibration     double precision[],
    options         jsonb NOT NULL DEFAULT '{}',
    query           text,
    label           text,
    note            text
);
COMMENT ON TABLE smartetl.model IS 'model registry: failure-risk candidates (name risk:<horizon in seconds>: the learned model and the baselines of each training, metrics out of time by rolling origin) and smartetl.train() models (metrics on the held-out part); ROC-AUC, PR-AUC, Brier, log loss, reliability table; or RMSE/R2; the training sample''s per-feature PSI reference, the serialized booster, weights or baseline; one champion per name, and in note why it serves or not';
CREATE UNIQUE INDEX model_champion ON smartetl.model (name) WHERE status = 'champion';

-- API: Public
CREATE TABLE smartetl.prediction (
    prediction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id       bigint NOT NULL,
    pipeline_id    bigint NOT NULL,
    at             timestamptz NOT NULL,
    horizon        interval NOT NULL,
    probability    double precision NOT NULL,
    reasons        jsonb,
    outcome        boolean,
    resolved_at    timestamptz
);
COMMENT ON TABLE smartetl.prediction IS 'every failure_risk / risk_ranking answer; outcome (did the pipeline fail within the horizon?) is filled in once the horizon has passed';
CREATE INDEX prediction_open ON smartetl.prediction (at) WHERE outcome IS NULL;
CREATE INDEX prediction_model ON smartetl.prediction (model_id, at);

-- API: Private (src/predict/*.c)
-- The 0.1.0 features, for the models 0.1.0 trained (they keep scoring as before).
CREATE FUNCTION smartetl._risk_feature_rows(pipeline_id bigint, times timestamptz[])
RETURNS TABLE (at timestamptz, features double precision[])
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_rows' LANGUAGE C STABLE STRICT;
CREATE FUNCTION smartetl._risk_feature_names_v1() RETURNS text[]
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_names' LANGUAGE C IMMUTABLE;
-- The current features (and labels) of a pipeline at each time; with
-- active, only the times it had a run known within active before.
CREATE FUNCTION smartetl._risk_rows(pipeline_id bigint, times timestamptz[], horizon interval, active interval)
RETURNS TABLE (at timestamptz, label double precision, features double precision[])
AS 'MODULE_PATHNAME', 'smartetl_risk_rows' LANGUAGE C STABLE;
CREATE FUNCTION smartetl._risk_feature_names() RETURNS text[]
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_names2' LANGUAGE C IMMUTABLE;
-- Rolling-origin evaluation of the baselines and learned models over a
-- query's (t, pipeline_id, label, features) rows ordered by t; with final,
-- the learned models fitted on every row too.
CREATE FUNCTION smartetl._risk_backtest(query text, horizon interval, step interval, "from" timestamptz,
                                        until timestamptz, algorithms text[], options jsonb, final boolean)
RETURNS TABLE (candidate text, algorithm text, served boolean, model bytea, metrics jsonb,
               calibration double precision[], reference double precision[], train_rows integer,
               test_rows integer, train_seconds double precision, peak_rss_kb bigint)
AS 'MODULE_PATHNAME', 'smartetl_risk_backtest' LANGUAGE C VOLATILE;
CREATE FUNCTION smartetl._model_fit(query text, algorithm text, regression boolean, options jsonb,
    OUT model bytea, OUT metrics jsonb, OUT reference double precision[], OUT train_rows integer,
    OUT test_rows integer, OUT train_seconds double precision, OUT peak_rss_kb bigint,
    OUT calibration double precision[])
AS 'MODULE_PATHNAME', 'smartetl_model_fit' LANGUAGE C VOLATILE;

-- API: Private
-- A classifier's probability through its Platt calibration {a, b} (NULL: as is).
CREATE FUNCTION smartetl._calibrate(p double precision, calibration double precision[])
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN calibration IS NULL OR p IS NULL THEN p
            ELSE 1 / (1 + exp(-(calibration[1] * ln(least(greatest(p, 1e-12), 1 - 1e-12)
                                                   / (1 - least(greatest(p, 1e-12), 1 - 1e-12)))
                                + calibration[2]))) END;
CREATE FUNCTION smartetl._model_predict(model_id bigint, algorithm text, model bytea, features double precision[])
RETURNS double precision[] AS 'MODULE_PATHNAME', 'smartetl_model_predict' LANGUAGE C STABLE STRICT;
CREATE FUNCTION smartetl._model_contributions(model_id bigint, algorithm text, model bytea, features double precision[])
RETURNS double precision[] AS 'MODULE_PATHNAME', 'smartetl_model_contributions' LANGUAGE C STABLE STRICT;
CREATE FUNCTION smartetl._model_psi(reference double precision[], features double precision[], ncols integer)
RETURNS double precision[] AS 'MODULE_PATHNAME', 'smartetl_model_psi' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION smartetl._classifier_metrics(pred double precision[], label double precision[])
RETURNS jsonb AS 'MODULE_PATHNAME', 'smartetl_classifier_metrics' LANGUAGE C IMMUTABLE STRICT;

-- API: Public
CREATE FUNCTION smartetl.risk_features(pipeline text, at timestamptz DEFAULT now(), horizon interval DEFAULT '1 day')
RETURNS TABLE (feature text, value double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT n.feature, n.value
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL smartetl._risk_rows(p.pipeline_id, ARRAY[at], horizon, NULL) r
    CROSS JOIN LATERAL unnest(smartetl._risk_feature_names(), r.features) WITH ORDINALITY n(feature, value, i)
    WHERE p.name = pipeline
    ORDER BY n.i
$$;
COMMENT ON FUNCTION smartetl.risk_features(text, timestamptz, interval) IS 'the failure-risk features of a pipeline at a time for a horizon, from its runs known before that time only';

-- API: Private
-- The 0.1.0 samples (0.1.0 features), for the drift of the models 0.1.0 trained.
CREATE FUNCTION smartetl._risk_samples(horizon interval, step interval, until timestamptz)
RETURNS TABLE (t timestamptz, pipeline_id bigint, label double precision, features double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.at, p.pipeline_id,
           EXISTS (SELECT 1 FROM smartetl.run r WHERE r.pipeline_id = p.pipeline_id AND r.status = 'failed'
                   AND r.run_at > f.at AND r.run_at <= f.at + horizon)::int::float8,
           f.features
    FROM (SELECT r.pipeline_id, min(r.run_at) AS first_run FROM smartetl.run r
          WHERE r.run_at IS NOT NULL GROUP BY 1 HAVING count(*) >= 5) p
    CROSS JOIN LATERAL smartetl._risk_feature_rows(p.pipeline_id,
        ARRAY(SELECT g FROM generate_series(smartetl._utc_trunc('hour', p.first_run) + step, until - horizon, step) g)) f
$$;

-- API: Private
-- Default spacing of the samples: a quarter of the horizon, between an
-- hour and a day (6 hours for a day).
CREATE FUNCTION smartetl._risk_step(horizon interval) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN least(greatest(horizon / 4, interval '1 hour'), interval '1 day');

-- API: Private
-- Labelled samples drawn the way failure_risk and risk_ranking are asked:
-- every pipeline at every multiple of step (since the Unix epoch, so
-- midnights UTC for a day) from its first run on, days without runs
-- included, while it has had a run within active; label 1 when a run of
-- it that started within horizon after the time failed.  Times from since
-- (default: the first run) to until - horizon, so every label is known.
CREATE FUNCTION smartetl._risk_samples_v2(horizon interval, step interval, until timestamptz,
                                          active interval DEFAULT '30 days', since timestamptz DEFAULT NULL)
RETURNS TABLE (t timestamptz, pipeline_id bigint, label double precision, features double precision[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.at, p.pipeline_id, r.label, r.features
    FROM (SELECT run.pipeline_id, greatest(min(coalesce(run.ended_at, run.run_at)), since) AS first_at
          FROM smartetl.run WHERE run.run_at IS NOT NULL GROUP BY 1) p
    CROSS JOIN LATERAL smartetl._risk_rows(p.pipeline_id,
        ARRAY(SELECT g FROM generate_series(
                  to_timestamp(ceil(extract(epoch FROM p.first_at) / extract(epoch FROM step)) * extract(epoch FROM step)),
                  until - horizon, step) g),
        horizon, active) r
$$;

-- API: Private
-- A risk model's name: its horizon in seconds, whatever the IntervalStyle.
CREATE FUNCTION smartetl._risk_model_name(horizon interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'risk:' || extract(epoch FROM horizon)::bigint || 's';

-- API: Private
-- The champion of a model name, or NULL.
CREATE FUNCTION smartetl._champion(model_name text) RETURNS smartetl.model
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM smartetl.model WHERE name = model_name AND status = 'champion'
$$;

-- API: Private
-- What a risk candidate is, in words.
CREATE FUNCTION smartetl._risk_candidate_description(candidate text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE candidate
    WHEN 'fail_rate_7d' THEN 'baseline: failure rate of the last 7 days'
    WHEN 'fail_count_7d' THEN 'baseline: failure count of the last 7 days'
    WHEN 'last_failed' THEN 'baseline: last outcome repeated'
    WHEN 'xgboost' THEN 'gradient-boosted trees (XGBoost) on the history features'
    WHEN 'linear' THEN 'logistic regression (liblinear) on the history features'
    ELSE candidate END;

-- API: Private
-- A metric for a sentence: three decimals, or "undefined" (a single class).
CREATE FUNCTION smartetl._risk_num(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(round((v #>> '{}')::numeric, 3)::text, 'undefined');

-- API: Private
-- Why a candidate of a training is served or not, from its metrics and
-- those of the others of the same evaluation (candidate name -> metrics).
CREATE FUNCTION smartetl._risk_note(candidate text, served boolean, metrics jsonb, everyone jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN served AND learned THEN
            format('champion: ROC-AUC %s out of time against %s for the best baseline (%s), a gain of %s with a standard error of %s, over %s folds and %s pipeline-times from %s; served with Platt calibration',
                   smartetl._risk_num(metrics->'roc_auc'), smartetl._risk_num(everyone->best->'roc_auc'),
                   smartetl._risk_candidate_description(best), smartetl._risk_num(metrics->'gain_over_baseline'),
                   smartetl._risk_num(metrics->'gain_se'), jsonb_array_length(metrics->'folds'),
                   metrics->>'pipeline_times', metrics->>'evaluated_from')
        WHEN served THEN
            format('champion: %s, calibrated; ROC-AUC %s out of time over %s folds and %s pipeline-times from %s%s',
                   smartetl._risk_candidate_description(candidate), smartetl._risk_num(metrics->'roc_auc'),
                   jsonb_array_length(metrics->'folds'), metrics->>'pipeline_times', metrics->>'evaluated_from',
                   coalesce('; no learned model beat it by ' || smartetl._risk_num(metrics->'min_gain')
                            || ' beyond its standard error ('
                            || (SELECT string_agg(format('%s: ROC-AUC %s, gain %s, standard error %s', k,
                                                         smartetl._risk_num(v->'roc_auc'),
                                                         smartetl._risk_num(v->'gain_over_baseline'),
                                                         smartetl._risk_num(v->'gain_se')), '; ' ORDER BY k)
                                FROM jsonb_each(everyone) e(k, v) WHERE v ? 'gain_over_baseline') || ')', ''))
        WHEN learned THEN
            format('not served: ROC-AUC %s out of time against %s for the best baseline (%s), a gain of %s with a standard error of %s; a learned model is served when its gain minus its standard error reaches %s',
                   smartetl._risk_num(metrics->'roc_auc'), smartetl._risk_num(everyone->best->'roc_auc'),
                   smartetl._risk_candidate_description(best), smartetl._risk_num(metrics->'gain_over_baseline'),
                   smartetl._risk_num(metrics->'gain_se'), smartetl._risk_num(metrics->'min_gain'))
        ELSE format('not served: %s, ROC-AUC %s out of time', smartetl._risk_candidate_description(candidate),
                    smartetl._risk_num(metrics->'roc_auc'))
        END
    FROM (SELECT candidate IN ('xgboost', 'linear') AS learned,
                 replace(metrics->>'best_baseline', 'baseline:', '') AS best) c
$$;

-- API: Public
CREATE FUNCTION smartetl.train_risk_model(horizon interval DEFAULT '1 day', algorithm text DEFAULT 'xgboost',
                                          options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval := coalesce((options->>'step')::interval, smartetl._risk_step(horizon));
    until timestamptz := coalesce((options->>'until')::timestamptz, now());
    active interval := coalesce((options->>'active')::interval, interval '30 days');
    model_name text := smartetl._risk_model_name(horizon);
    algorithms text[];
    learned_id bigint;
BEGIN
    IF algorithm NOT IN ('xgboost', 'linear', 'auto') THEN
        RAISE EXCEPTION 'unknown algorithm "%"', algorithm USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Risk models are xgboost, linear, or auto (both, the better one served).';
    END IF;
    algorithms := CASE algorithm WHEN 'auto' THEN ARRAY['xgboost', 'linear'] ELSE ARRAY[algorithm] END;
    -- the candidates of this training replace those of the previous one
    UPDATE smartetl.model SET status = 'retired' WHERE name = model_name AND status IN ('champion', 'candidate');
    WITH b AS (
        SELECT replace(x.candidate, 'baseline:', '') AS cand, x.algorithm AS alg, x.served, x.model AS bytes,
               x.metrics AS m, x.calibration AS cal, x.reference AS ref, x.train_rows AS ntrain,
               x.test_rows AS ntest, x.train_seconds AS secs, x.peak_rss_kb AS rss
        FROM smartetl._risk_backtest(
                 format('SELECT t, pipeline_id, label, features FROM smartetl._risk_samples_v2(%L, %L, %L, %L) ORDER BY t, pipeline_id',
                        horizon, step, until, active),
                 horizon, step, (options->>'from')::timestamptz, NULL, algorithms, options, true) x
    ), everyone AS (
        SELECT jsonb_object_agg(b.cand, b.m) AS all_metrics FROM b
    ), ins AS (
        INSERT INTO smartetl.model AS mm (name, kind, algorithm, horizon, status, training_rows, test_rows, feature_names,
                                          metrics, reference, model, train_seconds, peak_rss_kb, calibration, options, note)
        SELECT model_name, 'risk', b.alg, horizon, CASE WHEN b.served THEN 'champion' ELSE 'candidate' END,
               b.ntrain, b.ntest, smartetl._risk_feature_names(), b.m, b.ref, b.bytes, b.secs, b.rss, b.cal,
               options || jsonb_build_object('step', step, 'active', active)
                       || CASE WHEN b.alg = 'baseline' THEN jsonb_build_object('baseline', b.cand) ELSE '{}' END,
               smartetl._risk_note(b.cand, b.served, b.m, everyone.all_metrics)
        FROM b, everyone
        ORDER BY b.alg = 'baseline' DESC, b.cand
        RETURNING mm.model_id AS id, mm.algorithm AS alg, mm.metrics AS m
    )
    SELECT ins.id INTO learned_id FROM ins WHERE ins.alg <> 'baseline'
    ORDER BY (ins.m->>'roc_auc')::float8 DESC NULLS LAST, ins.id LIMIT 1;
    RETURN learned_id;
END $$;
COMMENT ON FUNCTION smartetl.train_risk_model(interval, text, jsonb) IS
'train a failure-risk model on samples of every pipeline every step (label: a run started within horizon after the sample failed), evaluate it by rolling origin against the baselines (7-day failure rate and count, last outcome), register all of them and serve the learned model only when it beats the best baseline out of time by min_gain beyond its standard error, else the best baseline (calibrated); returns the learned model''s id. algorithm: xgboost, linear or auto (both). options: step, until, active (30 days), from (first evaluated time), folds (3), validation_share (0.3), min_gain (0.02), bootstrap (200), max_depth, eta, n_rounds, min_child_weight, subsample, colsample_bytree, scale_pos_weight, C';

-- API: Public
CREATE FUNCTION smartetl.backtest(horizon interval DEFAULT '1 day', "from" timestamptz DEFAULT NULL,
                                  "to" timestamptz DEFAULT NULL)
RETURNS TABLE (candidate text, description text, roc_auc double precision, pr_auc double precision,
               brier double precision, pipeline_times integer, positives integer, folds integer,
               would_serve boolean, reliability jsonb, metrics jsonb)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(b.candidate, 'baseline:', ''), smartetl._risk_candidate_description(replace(b.candidate, 'baseline:', '')),
           (b.metrics->>'roc_auc')::float8, (b.metrics->>'pr_auc')::float8, (b.metrics->>'brier')::float8,
           (b.metrics->>'pipeline_times')::int, (b.metrics->>'test_positives')::int,
           jsonb_array_length(b.metrics->'folds'), b.served, b.metrics->'calibration', b.metrics
    FROM smartetl._risk_backtest(
             format('SELECT t, pipeline_id, label, features FROM smartetl._risk_samples_v2(%L, %L, %L) ORDER BY t, pipeline_id',
                    horizon, smartetl._risk_step(horizon), least(coalesce("to", now()), now())),
             horizon, smartetl._risk_step(horizon), "from", NULL, ARRAY['xgboost', 'linear'], '{}', false) b
$$;
COMMENT ON FUNCTION smartetl.backtest(interval, timestamptz, timestamptz) IS
'what a risk model is worth on this history before trusting it: a rolling-origin backtest (3 successive cut points from "from", default the latest 30 % of the history, up to "to" minus the horizon; each fold trained only on labels known before it, calibrated only on earlier folds), one row per candidate (the baselines, XGBoost, logistic regression) with ROC-AUC, PR-AUC, Brier score, pipeline-times scored, failures among them, the reliability table, and the candidate train_risk_model would serve; trains models but stores nothing';

-- API: Private
-- "3 hours", "2 days": an age in hours for a sentence.
CREATE FUNCTION smartetl._risk_age(hours double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN hours < 1 THEN round(hours * 60) || ' minutes'
            WHEN hours < 48 THEN round(hours) || ' hour' || CASE WHEN round(hours) = 1 THEN '' ELSE 's' END
            ELSE round(hours / 24) || ' days' END;

-- API: Private
-- When a time was, for a sentence written at `at`: "04:10" within a day, else "May 3 04:10".
CREATE FUNCTION smartetl._risk_when(ts timestamptz, at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN at - ts < interval '1 day' THEN to_char(ts, 'HH24:MI') ELSE to_char(ts, 'FMMon FMDD HH24:MI') END;

-- API: Private
-- One risk feature of a pipeline at a time as a sentence with its value
-- ("failed on 3 of the last 7 days", "2 failures in a row since 04:10").
CREATE FUNCTION smartetl._risk_reason(p_pipeline_id bigint, at timestamptz, horizon interval, feature text,
                                      value double precision)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE feature
        WHEN 'fail_rate_7d' THEN CASE WHEN value = 0 THEN 'none of its runs failed in the last 7 days'
                                      ELSE round(value * 100) || ' % of its runs failed in the last 7 days' END
        WHEN 'fail_count_7d' THEN CASE WHEN value = 0 THEN 'no failure in the last 7 days'
                                       ELSE n || ' failure' || s || ' in the last 7 days' END
        WHEN 'last_failed' THEN CASE WHEN value > 0 THEN 'the last run failed' ELSE 'the last run succeeded' END
        WHEN 'fail_count_1d' THEN CASE WHEN value = 0 THEN 'no failure in the last 24 hours'
                                       ELSE n || ' failure' || s || ' in the last 24 hours' END
        WHEN 'fail_days_7d' THEN 'failed on ' || n || ' of the last 7 days'
        WHEN 'consecutive_failures' THEN
            CASE WHEN value = 0 THEN 'the last run succeeded'
                 ELSE CASE WHEN value = 1 THEN 'the last run failed' ELSE n || ' failures in a row' END
                      || coalesce(CASE WHEN value = 1 THEN ', at ' ELSE ' since ' END || (
                     SELECT smartetl._risk_when(min(f.run_at), at) FROM smartetl.run f
                     WHERE f.pipeline_id = p_pipeline_id AND f.status = 'failed'
                       AND coalesce(f.ended_at, f.run_at) < at
                       AND coalesce(f.ended_at, f.run_at) > coalesce((
                           SELECT max(coalesce(o.ended_at, o.run_at)) FROM smartetl.run o
                           WHERE o.pipeline_id = p_pipeline_id AND o.status = 'success'
                             AND coalesce(o.ended_at, o.run_at) < at), '-infinity')), '') END
        WHEN 'successes_since_failure' THEN CASE WHEN value >= 100 THEN 'at least 100 successful runs since the last failure'
                                                 ELSE n || ' successful run' || s || ' since the last failure' END
        WHEN 'hours_since_failure' THEN CASE WHEN value >= 168 THEN 'no failure for over a week'
                                             ELSE 'last failure ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'hours_since_success' THEN CASE WHEN value >= 168 THEN 'no success for over a week'
                                             ELSE 'last success ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'hours_since_run' THEN CASE WHEN value >= 168 THEN 'no run for over a week'
                                         ELSE 'last run ' || smartetl._risk_age(value) || ' ago' END
        WHEN 'runs_per_day_7d' THEN CASE WHEN value >= 1.5 THEN 'runs ' || round(value) || ' times a day'
                                         WHEN value > 0.75 THEN 'runs about once a day'
                                         WHEN value > 0 THEN 'runs about every ' || round(1 / value) || ' days'
                                         ELSE 'no run in the last 7 days' END
        WHEN 'runs_1d' THEN n || ' run' || s || ' in the last 24 hours'
        WHEN 'expected_runs_horizon' THEN 'about ' || round(value::numeric, 1) || ' runs expected in the next '
                                          || smartetl._risk_age(extract(epoch FROM horizon) / 3600)
        WHEN 'fail_rate_30d' THEN CASE WHEN value = 0 THEN 'none of its runs failed in the last 30 days'
                                       ELSE round(value * 100) || ' % of its runs failed in the last 30 days' END
        WHEN 'failures_per_day_30d' THEN round(value::numeric, 2) || ' failures a day over the last 30 days'
        WHEN 'failed_same_window_1w' THEN CASE WHEN value > 0 THEN 'failed in the same window a week ago'
                                               ELSE 'did not fail in the same window a week ago' END
        WHEN 'failed_same_window_1d' THEN CASE WHEN value > 0 THEN 'failed in the same window a day ago'
                                               ELSE 'did not fail in the same window a day ago' END
        WHEN 'weekly_repeat' THEN 'failed at this time of the week in ' || round(value * 100) || ' % of the past weeks'
        WHEN 'daily_repeat' THEN 'failed at this time of day on ' || round(value * 100) || ' % of the past days'
        WHEN 'cancel_rate_7d' THEN round(value * 100) || ' % of its runs were cancelled in the last 7 days'
        WHEN 'retry_rate_7d' THEN round(value * 100) || ' % of its runs were retries in the last 7 days'
        WHEN 'duration_z' THEN 'the last run took ' || CASE WHEN value >= 0 THEN 'longer' ELSE 'less time' END
                               || ' than usual (robust z-score ' || round(value::numeric, 1) || ')'
        WHEN 'duration_trend_7d' THEN 'duration trending ' || CASE WHEN value >= 0 THEN 'up ' ELSE 'down ' END
                                      || abs(round(value * 100)) || ' % over 7 days'
        WHEN 'volume_z' THEN 'the last run wrote ' || CASE WHEN value >= 0 THEN 'more' ELSE 'fewer' END
                             || ' rows than usual (robust z-score ' || round(value::numeric, 1) || ')'
        WHEN 'new_templates_1d' THEN CASE WHEN value = 0 THEN 'no new error template since yesterday'
                                          ELSE 'new error template since yesterday: ' || coalesce(tpl, '?') END
        WHEN 'new_templates_7d' THEN CASE WHEN value = 0 THEN 'no new error template in the last 7 days'
                                          ELSE n || ' new error template' || s || ' in the last 7 days, the latest: '
                                               || coalesce(tpl, '?') END
        WHEN 'templates_7d' THEN n || ' distinct error template' || s || ' in the last 7 days'
        WHEN 'host_changed' THEN CASE WHEN value > 0 THEN 'the last run ran on another host than the one before'
                                      ELSE 'the last run ran on the same host as the one before' END
        ELSE feature || ' = ' || round(value::numeric, 4) END
    FROM (SELECT round(value)::bigint AS n, CASE WHEN round(value) = 1 THEN '' ELSE 's' END AS s) w
    LEFT JOIN LATERAL (
        -- the latest failed run's error template that this pipeline had not seen before
        SELECT (SELECT tt.template FROM smartetl.template_text tt WHERE tt.template_id = f.template_id
                ORDER BY tt.revision DESC LIMIT 1) AS tpl
        FROM smartetl.run f
        WHERE feature IN ('new_templates_1d', 'new_templates_7d') AND value > 0
          AND f.pipeline_id = p_pipeline_id AND f.status = 'failed' AND f.template_id IS NOT NULL
          AND coalesce(f.ended_at, f.run_at) < at
          AND coalesce(f.ended_at, f.run_at) >= at - CASE feature WHEN 'new_templates_1d' THEN interval '1 day' ELSE interval '7 days' END
          AND NOT EXISTS (SELECT 1 FROM smartetl.run e
                          WHERE e.pipeline_id = p_pipeline_id AND e.template_id = f.template_id
                            AND (coalesce(e.ended_at, e.run_at), e.run_id) < (coalesce(f.ended_at, f.run_at), f.run_id))
        ORDER BY coalesce(f.ended_at, f.run_at) DESC LIMIT 1) t ON true
$$;

-- API: Private
-- The main reasons of a pipeline's risk, as [{reason, feature, value,
-- contribution}]: the three current features with the largest
-- contributions (TreeSHAP, linear terms) when the model gives them; for a
-- baseline (lead: its feature) or a 0.1.0 model, the lead feature and
-- then the notable facts (a failure streak, failing days, a new error
-- template, a duration trend, frequent runs).
CREATE FUNCTION smartetl._risk_reasons(p_pipeline_id bigint, at timestamptz, horizon interval,
                                       features double precision[], contributions double precision[], lead text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_agg(jsonb_build_object('reason', smartetl._risk_reason(p_pipeline_id, at, horizon, t.n, t.v),
                                        'feature', t.n, 'value', round(t.v::numeric, 4),
                                        'contribution', round(t.c::numeric, 4)) ORDER BY t.rank)
    FROM (SELECT u.n, u.v, u.c,
                 CASE WHEN contributions IS NOT NULL THEN -abs(u.c)
                      WHEN u.n = lead THEN -1
                      ELSE array_position(ARRAY['consecutive_failures', 'new_templates_1d', 'fail_days_7d',
                                                'duration_trend_7d', 'weekly_repeat', 'runs_per_day_7d'], u.n) END AS rank
          FROM unnest(smartetl._risk_feature_names(), features, contributions) u(n, v, c)
          WHERE u.n IS NOT NULL
            AND CASE WHEN contributions IS NOT NULL THEN u.c IS NOT NULL
                     WHEN u.n = lead THEN true
                     ELSE (u.n IN ('consecutive_failures', 'new_templates_1d', 'fail_days_7d') AND u.v > 0)
                          OR (u.n = 'duration_trend_7d' AND abs(u.v) >= 0.2)
                          OR (u.n = 'weekly_repeat' AND u.v >= 0.5)
                          OR (u.n = 'runs_per_day_7d' AND u.v >= 2) END
          ORDER BY 4 LIMIT 3) t
$$;

-- API: Private
-- Score pipelines at a time with the champion for the horizon, logging
-- each prediction; with explain, the reasons and the detail (the model,
-- every feature and every contribution).
CREATE FUNCTION smartetl._score(p_pipeline_ids bigint[], horizon interval, at timestamptz, explain boolean)
RETURNS TABLE (pipeline_id bigint, probability double precision, reasons jsonb, detail jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m smartetl.model := smartetl._champion(smartetl._risk_model_name(horizon));
    v1 boolean;
BEGIN
    IF m.model_id IS NULL THEN
        RAISE EXCEPTION 'no failure-risk model for horizon %', horizon
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train one: SELECT smartetl.train_risk_model(%L);', horizon);
    END IF;
    -- a model 0.1.0 trained reads the 0.1.0 features
    v1 := m.feature_names = smartetl._risk_feature_names_v1();
    RETURN QUERY
    WITH f AS (
        SELECT p.pid, r.features AS current,
               CASE WHEN v1 THEN (SELECT o.features FROM smartetl._risk_feature_rows(p.pid, ARRAY[_score.at]) o)
                    ELSE r.features END AS model_features
        FROM unnest(p_pipeline_ids) p(pid)
        CROSS JOIN LATERAL smartetl._risk_rows(p.pid, ARRAY[_score.at], _score.horizon, NULL) r
    ), scored AS (
        SELECT f.pid, f.current, f.model_features,
               smartetl._calibrate((smartetl._model_predict(m.model_id, m.algorithm, m.model, f.model_features))[1],
                                   m.calibration) AS prob,
               CASE WHEN explain THEN smartetl._model_contributions(m.model_id, m.algorithm, m.model, f.model_features) END AS contrib
        FROM f
    ), explained AS (
        SELECT s.pid, s.prob,
               CASE WHEN explain THEN smartetl._risk_reasons(s.pid, _score.at, _score.horizon, s.current,
                                                             CASE WHEN NOT v1 AND m.algorithm <> 'baseline' THEN s.contrib END,
                                                             m.options->>'baseline') END AS reasons,
               CASE WHEN explain THEN jsonb_build_object(
                   'model_id', m.model_id, 'algorithm', m.algorithm,
                   'served', CASE WHEN m.algorithm = 'baseline'
                                  THEN smartetl._risk_candidate_description(m.options->>'baseline') || ' (calibrated)'
                                  ELSE m.algorithm END,
                   'features', (SELECT jsonb_object_agg(u.n, round(u.v::numeric, 4))
                                FROM unnest(smartetl._risk_feature_names(), s.current) u(n, v)),
                   'contributions', (SELECT jsonb_object_agg(u.n, round(u.c::numeric, 4))
                                     FROM unnest(m.feature_names, s.contrib) u(n, c) WHERE u.n IS NOT NULL),
                   'bias', round(s.contrib[cardinality(s.contrib)]::numeric, 4)) END AS detail
        FROM scored s
    ), logged AS (
        INSERT INTO smartetl.prediction (model_id, pipeline_id, at, horizon, probability, reasons)
        SELECT m.model_id, e.pid, _score.at, _score.horizon, e.prob, e.reasons FROM explained e
    )
    SELECT e.pid, e.prob, e.reasons, e.detail FROM explained e;
END $$;

-- API: Public
CREATE FUNCTION smartetl.failure_risk(pipeline text, horizon interval DEFAULT '1 day', at timestamptz DEFAULT now())
RETURNS double precision
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.probability FROM smartetl._score(
        ARRAY(SELECT p.pipeline_id FROM smartetl.pipeline p WHERE p.name = failure_risk.pipeline LIMIT 1),
        horizon, at, false) s
$$;
COMMENT ON FUNCTION smartetl.failure_risk(text, interval, timestamptz) IS 'calibrated probability that the pipeline has a failed run starting within horizon after at, from the champion for the horizon (a learned model, or the best baseline when no learned model beat it out of time: see smartetl.model.note); logged in smartetl.prediction';

-- API: Public
CREATE FUNCTION smartetl.risk_ranking(horizon interval DEFAULT '1 day')
RETURNS TABLE (pipeline_id bigint, namespace text, pipeline text, risk double precision, reasons text, detail jsonb)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.namespace, p.name, s.probability,
           (SELECT string_agg(x->>'reason', '; ' ORDER BY i) FROM jsonb_array_elements(s.reasons) WITH ORDINALITY r(x, i)),
           s.detail || jsonb_build_object('reasons', s.reasons)
    FROM smartetl._score(ARRAY(SELECT pipeline_id FROM smartetl.pipeline), horizon, now(), true) s
    JOIN smartetl.pipeline p USING (pipeline_id)
    ORDER BY s.probability DESC, p.name
$$;
COMMENT ON FUNCTION smartetl.risk_ranking(interval) IS 'every pipeline by failure risk within horizon, with its main reasons in plain words ("failed on 3 of the last 7 days; 2 failures in a row since 04:10"); detail: the model, each reason''s feature, value and contribution, every feature and every contribution (SHAP for xgboost, linear terms for linear)';

-- API: Public
CREATE FUNCTION smartetl.resolve_predictions() RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH done AS (
        UPDATE smartetl.prediction pr SET resolved_at = now(),
            outcome = EXISTS (SELECT 1 FROM smartetl.run r WHERE r.pipeline_id = pr.pipeline_id
                              AND r.status = 'failed' AND r.run_at > pr.at AND r.run_at <= pr.at + pr.horizon)
        WHERE pr.outcome IS NULL AND pr.at + pr.horizon < now()
        RETURNING 1)
    SELECT count(*)::int FROM done
$$;
COMMENT ON FUNCTION smartetl.resolve_predictions() IS 'fill in the outcome of predictions whose horizon has passed (the alert worker calls it every evaluation)';

-- API: Public
CREATE VIEW smartetl.prediction_quality AS
SELECT m.model_id, m.name, m.algorithm, m.status, count(pr.*) AS resolved_predictions,
       (smartetl._classifier_metrics(array_agg(pr.probability ORDER BY pr.prediction_id),
                                     array_agg(pr.outcome::int::float8 ORDER BY pr.prediction_id))->>'roc_auc')::float8 AS live_roc_auc,
       avg((pr.probability - pr.outcome::int) ^ 2) AS live_brier,
       (m.metrics->>'roc_auc')::float8 AS training_roc_auc
FROM smartetl.model m JOIN smartetl.prediction pr USING (model_id)
WHERE pr.outcome IS NOT NULL
GROUP BY m.model_id;
COMMENT ON VIEW smartetl.prediction_quality IS 'live ROC-AUC and Brier score of each model''s resolved predictions, beside its training ROC-AUC';

-- API: Public
CREATE FUNCTION smartetl.model_drift(p_model_id bigint, recent interval DEFAULT '7 days')
RETURNS TABLE (feature text, psi double precision, drifted boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH m AS (SELECT * FROM smartetl.model WHERE model_id = p_model_id AND kind = 'risk'),
    recent_rows AS (
        -- a model 0.1.0 trained: its own features and samples
        SELECT s.features
        FROM m, smartetl._risk_samples(interval '0',
                                       coalesce((m.options->>'step')::interval, least(m.horizon, interval '1 day')), now()) s
        WHERE m.feature_names = smartetl._risk_feature_names_v1() AND s.t > now() - recent
        UNION ALL
        SELECT s.features
        FROM m, smartetl._risk_samples_v2(m.horizon, coalesce((m.options->>'step')::interval, smartetl._risk_step(m.horizon)),
                                          now() + m.horizon, coalesce((m.options->>'active')::interval, interval '30 days'),
                                          now() - recent) s
        WHERE m.feature_names IS DISTINCT FROM smartetl._risk_feature_names_v1()),
    psi AS (
        SELECT smartetl._model_psi(m.reference, (SELECT array_agg(x) FROM recent_rows, unnest(features) x),
                                   cardinality(m.feature_names)) AS values, m.feature_names
        FROM m WHERE EXISTS (SELECT 1 FROM recent_rows))
    SELECT u.n, u.v, u.v > 0.25 FROM psi, unnest(psi.feature_names, psi.values) u(n, v)
$$;
COMMENT ON FUNCTION smartetl.model_drift(bigint, interval) IS 'population stability index of each feature between the model''s training sample and the samples of the recent interval (> 0.25: drifted); see prediction_quality for live versus training accuracy';

-- API: Public
-- (No pinned search_path: the caller's query must see the caller's tables;
-- everything smartetl's own is schema-qualified.)
CREATE FUNCTION smartetl.train(name text, query text, label text, algorithm text DEFAULT 'xgboost',
                               options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cols text[];
    features text;
    regression boolean;
    q text;
    fit record;
    id bigint;
BEGIN
    EXECUTE pg_catalog.format('CREATE TEMP TABLE smartetl_train_probe ON COMMIT DROP AS SELECT * FROM (%s) q LIMIT 0', query);
    SELECT pg_catalog.array_agg(attname ORDER BY attnum) INTO cols FROM pg_catalog.pg_attribute
    WHERE attrelid = 'pg_temp.smartetl_train_probe'::pg_catalog.regclass AND attnum > 0 AND NOT attisdropped
      AND attname OPERATOR(pg_catalog.<>) label;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'pg_temp.smartetl_train_probe'::pg_catalog.regclass
                   AND attname OPERATOR(pg_catalog.=) label) THEN
        RAISE EXCEPTION 'the query has no column "%"', label USING ERRCODE = 'undefined_column';
    END IF;
    DROP TABLE pg_temp.smartetl_train_probe;
    features := (SELECT pg_catalog.string_agg(pg_catalog.format('%I::float8', c), ', ') FROM pg_catalog.unnest(cols) c);
    EXECUTE pg_catalog.format('SELECT NOT bool_and(%I::float8 IN (0, 1)) FROM (%s) q', label, query) INTO regression;
    regression := coalesce((options OPERATOR(pg_catalog.->>) 'task') OPERATOR(pg_catalog.=) 'regression', regression);
    q := pg_catalog.format('SELECT %I::float8, ARRAY[%s] FROM (%s) q', label, features, query);
    SELECT * INTO fit FROM smartetl._model_fit(q, algorithm, regression, options);
    INSERT INTO smartetl.model (name, kind, algorithm, training_rows, test_rows, feature_names, metrics,
                                reference, model, train_seconds, peak_rss_kb, calibration, options, query, label)
    VALUES (name, CASE WHEN regression THEN 'regressor' ELSE 'classifier' END, algorithm, fit.train_rows,
            fit.test_rows, cols, fit.metrics, fit.reference, fit.model, fit.train_seconds, fit.peak_rss_kb,
            fit.calibration, options, query, label)
    RETURNING model_id INTO id;
    UPDATE smartetl.model SET status = 'retired'
    WHERE model.name OPERATOR(pg_catalog.=) train.name AND status OPERATOR(pg_catalog.=) 'champion';
    UPDATE smartetl.model SET status = 'champion' WHERE model_id OPERATOR(pg_catalog.=) id;
    RETURN id;
END $$;
COMMENT ON FUNCTION smartetl.train(text, text, text, text, jsonb) IS
'train a classifier (0/1 label) or regressor on any query''s numeric columns; options: split (time: the last rows held out, or stratified), test_fraction, task, max_depth, eta, n_rounds, C; metrics accuracy/F1/ROC-AUC or RMSE/R2 on the held-out rows';

-- API: Public
CREATE FUNCTION smartetl.predict(name text, features double precision[]) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT smartetl._calibrate((smartetl._model_predict(m.model_id, m.algorithm, m.model, features))[1], m.calibration)
    FROM smartetl.model m WHERE m.name = predict.name AND m.status = 'champion'
$$;
COMMENT ON FUNCTION smartetl.predict(text, double precision[]) IS 'score one row (features in the training query''s column order) with the named model''s champion: a probability or a value';

-- API: Public
CREATE FUNCTION smartetl.export_model(p_model_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('format', 'smartetl-model/1', 'name', name, 'kind', kind, 'algorithm', algorithm,
                              'horizon_s', extract(epoch FROM horizon), 'trained_at', trained_at,
                              'training_rows', training_rows, 'test_rows', test_rows,
                              'feature_names', to_jsonb(feature_names), 'metrics', metrics,
                              'reference', to_jsonb(reference), 'calibration', to_jsonb(calibration),
                              'options', options, 'query', query, 'label', label, 'note', note,
                              'model', encode(model, 'base64'))
    FROM smartetl.model WHERE model_id = p_model_id
$$;
COMMENT ON FUNCTION smartetl.export_model(bigint) IS 'a model as JSON (the serialized booster, weights or baseline in base64), for import_model() on another server';

-- API: Public
-- Imported models are candidates: they must load, and a risk model must use
-- this version's features (or 0.1.0's); promote_model() makes one the champion.
CREATE FUNCTION smartetl.import_model(doc jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    names text[] := ARRAY(SELECT jsonb_array_elements_text(doc->'feature_names'));
BEGIN
    IF doc->>'format' IS DISTINCT FROM 'smartetl-model/1' THEN
        RAISE EXCEPTION 'not a smartetl model export' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Expected "format": "smartetl-model/1", found %s.', coalesce(doc->>'format', 'none'));
    END IF;
    IF doc->>'kind' = 'risk' AND names IS DISTINCT FROM smartetl._risk_feature_names()
       AND names IS DISTINCT FROM smartetl._risk_feature_names_v1() THEN
        RAISE EXCEPTION 'the model''s features are not this version''s risk features'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smartetl.model (name, kind, algorithm, horizon, training_rows, test_rows, feature_names, metrics,
                                reference, model, train_seconds, calibration, options, query, label, note)
    VALUES (doc->>'name', doc->>'kind', doc->>'algorithm', make_interval(secs => (doc->>'horizon_s')::float8),
            (doc->>'training_rows')::int, (doc->>'test_rows')::int, names, doc->'metrics',
            ARRAY(SELECT jsonb_array_elements_text(doc->'reference')::float8), decode(doc->>'model', 'base64'),
            0, CASE WHEN jsonb_typeof(doc->'calibration') = 'array'
                    THEN ARRAY(SELECT jsonb_array_elements_text(doc->'calibration')::float8) END,
            coalesce(doc->'options', '{}'), doc->>'query', doc->>'label', 'imported: ' || coalesce(doc->>'note', ''))
    RETURNING model_id INTO id;
    -- the bytes must load and score one row
    PERFORM smartetl._model_predict(id, m.algorithm, m.model, array_fill(0::float8, ARRAY[cardinality(m.feature_names)]))
    FROM smartetl.model m WHERE m.model_id = id;
    RETURN id;
END $$;
COMMENT ON FUNCTION smartetl.import_model(jsonb) IS 'register a model exported by export_model() as a candidate (checked to load and score)';

-- API: Public
CREATE FUNCTION smartetl.promote_model(p_model_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE smartetl.model SET status = 'retired'
    WHERE status = 'champion' AND name = (SELECT name FROM smartetl.model WHERE model_id = p_model_id)
      AND model_id <> p_model_id;
    UPDATE smartetl.model SET status = 'champion' WHERE model_id = p_model_id;
$$;
COMMENT ON FUNCTION smartetl.promote_model(bigint) IS 'make a model the champion of its name (the previous one is retired)';

-- API: Public
CREATE VIEW smartetl.current_risk AS
SELECT DISTINCT ON (pr.pipeline_id, pr.horizon)
       pr.pipeline_id, p.namespace, p.name AS pipeline, pr.horizon, pr.at, pr.probability AS risk,
       (SELECT string_agg(coalesce(x->>'reason', x->>'feature'), '; ' ORDER BY i)
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(pr.reasons) = 'array' THEN pr.reasons END)
             WITH ORDINALITY r(x, i)) AS reasons,
       pr.model_id, pr.reasons AS detail
FROM smartetl.prediction pr
JOIN smartetl.model m ON m.model_id = pr.model_id AND m.status = 'champion'
JOIN smartetl.pipeline p USING (pipeline_id)
ORDER BY pr.pipeline_id, pr.horizon, pr.at DESC, pr.prediction_id DESC;
COMMENT ON VIEW smartetl.current_risk IS 'each pipeline''s latest risk from the champion model, per horizon (what risk_ranking or failure_risk last logged), with its reasons in plain words and, in detail, each reason''s feature, value and contribution: for dashboards and readers, who cannot write predictions';
