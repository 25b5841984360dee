-- ---------------------------------------------------------------------------
-- Prediction: failure-risk models trained in the database (XGBoost by
-- default, liblinear logistic regression as the interpretable one), the
-- model registry with champion / candidate, prediction log with outcomes,
-- drift, and generic train / predict for the data team's own tables.
-- The C side (src/predict) computes features, fits, predicts and explains;
-- this file decides what is trained on and which model is the champion.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TABLE smartetl.model (
    model_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('risk', 'classifier', 'regressor')),
    algorithm       text NOT NULL CHECK (algorithm IN ('xgboost', 'linear')),
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
    label           text
);
COMMENT ON TABLE smartetl.model IS 'model registry: failure-risk models (name risk:<horizon in seconds>) and smartetl.train() models; metrics on the held-out part (ROC-AUC, PR-AUC, Brier, log loss, precision/recall at top-k, calibration; or RMSE/R2), the training sample''s per-feature PSI reference, the serialized booster or weights; one champion per name';
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
CREATE FUNCTION smartetl._risk_feature_rows(pipeline_id bigint, times timestamptz[])
RETURNS TABLE (at timestamptz, features double precision[])
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_rows' LANGUAGE C STABLE STRICT;
CREATE FUNCTION smartetl._risk_feature_names() RETURNS text[]
AS 'MODULE_PATHNAME', 'smartetl_risk_feature_names' LANGUAGE C IMMUTABLE;
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
CREATE FUNCTION smartetl.risk_features(pipeline text, at timestamptz DEFAULT now())
RETURNS TABLE (feature text, value double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT n.feature, f.value
    FROM smartetl.pipeline p
    CROSS JOIN LATERAL smartetl._risk_feature_rows(p.pipeline_id, ARRAY[at]) r
    CROSS JOIN LATERAL unnest(smartetl._risk_feature_names(), r.features) WITH ORDINALITY n(feature, value, i)
    CROSS JOIN LATERAL (SELECT n.value) f(value)
    WHERE p.name = pipeline
    ORDER BY n.i
$$;
COMMENT ON FUNCTION smartetl.risk_features(text, timestamptz) IS 'the failure-risk features of a pipeline at a time, from its runs known before that time only';

-- API: Private
-- Labelled samples: each pipeline every `step` from a week after its first
-- run; label 1 when it has a failed run within horizon after the sample.
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
-- Make model_id the champion of its name if it beats the current one on the
-- new model's own held-out rows (the most recent ones); both stay.
CREATE FUNCTION smartetl._promote_if_better(new_id bigint, test_query text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m smartetl.model;
    champ smartetl.model;
    champ_auc double precision;
BEGIN
    SELECT * INTO m FROM smartetl.model WHERE model_id = new_id;
    champ := smartetl._champion(m.name);
    IF champ.model_id IS NOT NULL AND m.kind <> 'regressor' THEN
        EXECUTE format('WITH t AS (SELECT row_number() OVER () AS r, label, features FROM (%s) q) '
                       'SELECT (smartetl._classifier_metrics(smartetl._model_predict($1, $2, $3, '
                       '(SELECT array_agg(x ORDER BY t.r, u.i) FROM t, unnest(t.features) WITH ORDINALITY u(x, i))), '
                       '(SELECT array_agg(label ORDER BY r) FROM t))->>''roc_auc'')::float8', test_query)
            INTO champ_auc USING champ.model_id, champ.algorithm, champ.model;
        UPDATE smartetl.model SET metrics = metrics || jsonb_build_object('champion_roc_auc_same_rows', champ_auc)
        WHERE model_id = new_id;
        IF champ_auc IS NOT NULL AND champ_auc >= (m.metrics->>'roc_auc')::float8 THEN
            RETURN false;
        END IF;
    ELSIF champ.model_id IS NOT NULL AND (m.metrics->>'rmse')::float8 >= (champ.metrics->>'rmse')::float8 THEN
        RETURN false;
    END IF;
    UPDATE smartetl.model SET status = 'retired' WHERE name = m.name AND status = 'champion';
    UPDATE smartetl.model SET status = 'champion' WHERE model_id = new_id;
    RETURN true;
END $$;

-- API: Public
CREATE FUNCTION smartetl.train_risk_model(horizon interval DEFAULT '1 day', algorithm text DEFAULT 'xgboost',
                                          options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval := coalesce((options->>'step')::interval, least(horizon, interval '1 day'));
    until timestamptz := coalesce((options->>'until')::timestamptz, now());
    q text;
    fit record;
    id bigint;
    ntest integer;
BEGIN
    q := format('SELECT label, features FROM smartetl._risk_samples(%L, %L, %L) ORDER BY t, pipeline_id',
                horizon, step, until);
    SELECT * INTO fit FROM smartetl._model_fit(q, algorithm, false, options);
    INSERT INTO smartetl.model (name, kind, algorithm, horizon, training_rows, test_rows, feature_names,
                                metrics, reference, model, train_seconds, peak_rss_kb, calibration, options)
    VALUES (smartetl._risk_model_name(horizon), 'risk', algorithm, horizon, fit.train_rows, fit.test_rows,
            smartetl._risk_feature_names(), fit.metrics, fit.reference, fit.model, fit.train_seconds,
            fit.peak_rss_kb, fit.calibration, options)
    RETURNING model_id INTO id;
    ntest := fit.test_rows;
    PERFORM smartetl._promote_if_better(id, format(
        'SELECT * FROM (SELECT label, features, t, pipeline_id FROM smartetl._risk_samples(%L, %L, %L) '
        'ORDER BY t DESC, pipeline_id DESC LIMIT %s) s ORDER BY t, pipeline_id', horizon, step, until, ntest));
    RETURN id;
END $$;
COMMENT ON FUNCTION smartetl.train_risk_model(interval, text, jsonb) IS
'train a failure-risk model on labelled samples from the run history (label: a failed run within horizon), time split (the latest 20 % held out), store it with its metrics; it becomes the champion when it beats the current one on the same held-out rows. options: step (sample spacing), until, test_fraction, max_depth, eta, n_rounds, C, top_k, calibrate (1: Platt scaling on the latest fifth of the training samples)';

-- API: Private
-- Score pipelines at a time with the champion for the horizon, logging each prediction.
CREATE FUNCTION smartetl._score(p_pipeline_ids bigint[], horizon interval, at timestamptz, explain boolean)
RETURNS TABLE (pipeline_id bigint, probability double precision, reasons jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m smartetl.model := smartetl._champion(smartetl._risk_model_name(horizon));
BEGIN
    IF m.model_id IS NULL THEN
        RAISE EXCEPTION 'no failure-risk model for horizon %', horizon
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train one: SELECT smartetl.train_risk_model(%L);', horizon);
    END IF;
    RETURN QUERY
    WITH f AS (
        SELECT p.pid, r.features
        FROM unnest(p_pipeline_ids) p(pid)
        CROSS JOIN LATERAL smartetl._risk_feature_rows(p.pid, ARRAY[at]) r
    ), scored AS (
        SELECT f.pid, smartetl._calibrate((smartetl._model_predict(m.model_id, m.algorithm, m.model, f.features))[1],
                                          m.calibration) AS prob,
               CASE WHEN explain THEN smartetl._model_contributions(m.model_id, m.algorithm, m.model, f.features) END AS contrib,
               f.features
        FROM f
    ), explained AS (
        SELECT s.pid, s.prob,
               (SELECT jsonb_agg(jsonb_build_object('feature', n, 'value', round(v::numeric, 4),
                                                    'contribution', round(c::numeric, 4)) ORDER BY abs(c) DESC)
                FROM (SELECT * FROM unnest(m.feature_names, s.features, s.contrib) u(n, v, c)
                      WHERE n IS NOT NULL AND c IS NOT NULL ORDER BY abs(c) DESC LIMIT 3) top) AS reasons
        FROM scored s
    ), logged AS (
        INSERT INTO smartetl.prediction (model_id, pipeline_id, at, horizon, probability, reasons)
        SELECT m.model_id, e.pid, at, horizon, e.prob, e.reasons FROM explained e
    )
    SELECT e.pid, e.prob, e.reasons FROM explained e;
END $$;

-- API: Public
CREATE FUNCTION smartetl.failure_risk(pipeline text, horizon interval DEFAULT '1 day', at timestamptz DEFAULT now())
RETURNS double precision
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.probability FROM smartetl._score(
        ARRAY(SELECT p.pipeline_id FROM smartetl.pipeline p WHERE p.name = failure_risk.pipeline LIMIT 1),
        horizon, at, false) s
$$;
COMMENT ON FUNCTION smartetl.failure_risk(text, interval, timestamptz) IS 'probability that the pipeline has a failed run within horizon after at, from the champion model (Platt-calibrated when it was trained with {"calibrate": 1}); logged in smartetl.prediction';

-- API: Public
CREATE FUNCTION smartetl.risk_ranking(horizon interval DEFAULT '1 day')
RETURNS TABLE (pipeline_id bigint, namespace text, pipeline text, risk double precision, reasons jsonb)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.pipeline_id, p.namespace, p.name, s.probability, s.reasons
    FROM smartetl._score(ARRAY(SELECT pipeline_id FROM smartetl.pipeline), horizon, now(), true) s
    JOIN smartetl.pipeline p USING (pipeline_id)
    ORDER BY s.probability DESC, p.name
$$;
COMMENT ON FUNCTION smartetl.risk_ranking(interval) IS 'every pipeline by failure risk within horizon, with its three largest feature contributions (SHAP for xgboost, linear terms for linear)';

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
        SELECT s.features
        FROM m, smartetl._risk_samples(interval '0',
                                       coalesce((m.options->>'step')::interval, least(m.horizon, interval '1 day')), now()) s
        WHERE s.t > now() - recent),
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
                              'options', options, 'query', query, 'label', label,
                              'model', encode(model, 'base64'))
    FROM smartetl.model WHERE model_id = p_model_id
$$;
COMMENT ON FUNCTION smartetl.export_model(bigint) IS 'a model as JSON (the serialized booster or weights in base64), for import_model() on another server';

-- API: Public
-- Imported models are candidates: they must load, and a risk model must use
-- this version's features; promote_model() makes one the champion.
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
    IF doc->>'kind' = 'risk' AND names IS DISTINCT FROM smartetl._risk_feature_names() THEN
        RAISE EXCEPTION 'the model''s features are not this version''s risk features'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smartetl.model (name, kind, algorithm, horizon, training_rows, test_rows, feature_names, metrics,
                                reference, model, train_seconds, calibration, options, query, label)
    VALUES (doc->>'name', doc->>'kind', doc->>'algorithm', make_interval(secs => (doc->>'horizon_s')::float8),
            (doc->>'training_rows')::int, (doc->>'test_rows')::int, names, doc->'metrics',
            ARRAY(SELECT jsonb_array_elements_text(doc->'reference')::float8), decode(doc->>'model', 'base64'),
            0, CASE WHEN jsonb_typeof(doc->'calibration') = 'array'
                    THEN ARRAY(SELECT jsonb_array_elements_text(doc->'calibration')::float8) END,
            coalesce(doc->'options', '{}'), doc->>'query', doc->>'label')
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
       pr.pipeline_id, p.namespace, p.name AS pipeline, pr.horizon, pr.at, pr.probability AS risk, pr.reasons,
       pr.model_id
FROM smartetl.prediction pr
JOIN smartetl.model m ON m.model_id = pr.model_id AND m.status = 'champion'
JOIN smartetl.pipeline p USING (pipeline_id)
ORDER BY pr.pipeline_id, pr.horizon, pr.at DESC, pr.prediction_id DESC;
COMMENT ON VIEW smartetl.current_risk IS 'each pipeline''s latest risk from the champion model, per horizon (what risk_ranking or failure_risk last logged): for dashboards and readers, who cannot write predictions';
