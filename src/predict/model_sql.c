/*-------------------------------------------------------------------------
 * src/predict/model_sql.c
 *		SQL entry points of the model layer: fit a model on a query's rows,
 *		predict and explain with a stored model, population stability and
 *		classifier metrics over arrays.  The registry, the features and the
 *		choice of champion live in SQL (src/sql/89_predict.sql).
 *
 * A training query returns (label float8, features float8[]) rows in split
 * order: the time split holds out the last rows (never a random split);
 * the stratified split (for data without time) holds out every fifth row
 * of each class.  Loaded models are cached per backend by model id; a
 * stored model never changes, so the cache needs no invalidation, and the
 * SQL side asks for the current champion's id on every call.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/resource.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "predict/model_baseline.h"
#include "predict/model_data.h"
#include "predict/model_linear.h"
#include "predict/model_metrics.h"
#include "predict/model_sql.h"
#include "predict/model_xgb.h"

PG_FUNCTION_INFO_V1(smartetl_model_fit);
PG_FUNCTION_INFO_V1(smartetl_model_predict);
PG_FUNCTION_INFO_V1(smartetl_model_contributions);
PG_FUNCTION_INFO_V1(smartetl_model_psi);
PG_FUNCTION_INFO_V1(smartetl_classifier_metrics);


/* A trained or loaded model of either algorithm. */
typedef struct AnyModel
{
	bool		xgboost;
	XgbModel   *xgb;
	LinearModel *linear;
	BaselineModel *baseline;	/* a stored risk baseline (never trained here) */
	int			n_features;
} AnyModel;

static void
model_error(const char *what, const char *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("%s: %s", what, err)));
}

static bool
is_xgboost(const char *algorithm)
{
	if (strcmp(algorithm, "xgboost") == 0)
		return true;
	if (strcmp(algorithm, "linear") == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown algorithm \"%s\"", algorithm),
			 errhint("Algorithms are xgboost (gradient-boosted trees) and linear (liblinear logistic or ridge regression).")));
	return false;
}

/* ---- options ---- */

double
predict_option_number(Jsonb *options, const char *key, double dflt)
{
	JsonbValue *v;

	if (options == NULL)
		return dflt;
	v = getKeyJsonValueFromContainer(&options->root, key, strlen(key), NULL);
	if (v == NULL)
		return dflt;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

static char *
option_text(Jsonb *options, const char *key, const char *dflt)
{
	JsonbValue *v = options ? getKeyJsonValueFromContainer(&options->root, key, strlen(key), NULL) : NULL;

	if (v == NULL)
		return pstrdup(dflt);
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* ---- reading the training rows ---- */

double *
predict_float8_array(ArrayType *a, int *n)
{
	Datum	   *d;
	bool	   *nulls;
	double	   *out;
	int			i;

	deconstruct_array(a, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, &nulls, n);
	out = palloc(sizeof(double) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		out[i] = nulls[i] ? NAN : DatumGetFloat8(d[i]);
	return out;
}

/*
 * All rows of the query into md, allocated in cxt; ncols from the first
 * row.  (SPI calls leave SPI's procedure context current, whose memory
 * SPI_finish frees: every row is appended in cxt instead.)
 */
static void
read_rows(const char *query, ModelData *md, MemoryContext cxt)
{
	Portal		portal;
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	long		row = 0;
	bool		started = false;

	if (plan == NULL)
		elog(ERROR, "could not prepare the training query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		MemoryContextSwitchTo(cxt);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			bool		lnull,
						fnull;
			Datum		label = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &lnull);
			Datum		feats = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &fnull);
			double	   *x;
			int			n;
			const char *err;

			row++;
			if (lnull || fnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("training row %ld has a NULL label or feature array", row)));
			x = predict_float8_array(DatumGetArrayTypeP(feats), &n);
			if (!started && (err = md_init(md, n, false)) != NULL)
				model_error("training data", err);
			started = true;
			if (n != md->ncols)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("training row %ld has %d features, the first had %d", row, n, md->ncols)));
			if ((err = md_append_row_double(md, x, DatumGetFloat8(label), 1.0)) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("training row %ld: %s", row, err)));
			pfree(x);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (!started || md->nrows < 10)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too few training rows (%ld); at least 10 are needed", row)));
}

/* Every fifth row of each class held out, for data with no time order. */
static void
split_stratified(const ModelData *md, ModelData *train, ModelData *test)
{
	int			seen[2] = {0, 0};
	int			i;

	md_init(train, md->ncols, false);
	md_init(test, md->ncols, false);
	for (i = 0; i < md->nrows; i++)
	{
		int			cls = md->y[i] > 0.5;
		ModelData  *to = (seen[cls]++ % 5 == 4) ? test : train;
		const char *err = md_append_row(to, md_row(md, i), md->y[i], 1.0f);

		if (err)
			model_error("split", err);
	}
	if (train->nrows == 0 || test->nrows == 0)
		model_error("split", "a part of the stratified split is empty");
}

/* ---- fitting ---- */

static bool
cancel_requested(void *arg)
{
	return InterruptPending;
}

static void
fit(AnyModel *m, const ModelData *train, bool regression, Jsonb *options)
{
	const char *err;

	m->n_features = train->ncols;
	if (m->xgboost)
	{
		XgbParams	p;

		xgb_default_params(&p, regression);
		p.max_depth = (int) predict_option_number(options, "max_depth", p.max_depth);
		p.eta = predict_option_number(options, "eta", p.eta);
		p.n_rounds = (int) predict_option_number(options, "n_rounds", p.n_rounds);
		p.min_child_weight = predict_option_number(options, "min_child_weight", p.min_child_weight);
		p.scale_pos_weight = predict_option_number(options, "scale_pos_weight", p.scale_pos_weight);
		p.cancel_requested = cancel_requested;
		err = xgb_train(train, &p, &m->xgb);
		CHECK_FOR_INTERRUPTS();
	}
	else
	{
		LinearParams p;

		linear_default_params(&p, regression);
		p.C = predict_option_number(options, "C", p.C);
		err = linear_train(train, &p, &m->linear);
	}
	if (err)
		model_error("training failed", err);
}

static void
predict_rows(const AnyModel *m, const float *x, int nrows, double *out)
{
	const char *err = m->baseline ? baseline_predict(m->baseline, x, nrows, m->n_features, out)
		: m->xgboost ? xgb_predict(m->xgb, x, nrows, m->n_features, out)
		: linear_predict(m->linear, x, nrows, m->n_features, out);

	if (err)
		model_error("prediction failed", err);
}

static void
free_model(AnyModel *m)
{
	if (m->xgb)
		xgb_free(m->xgb);
	if (m->linear)
		linear_free(m->linear);
	if (m->baseline)
		baseline_free(m->baseline);
	m->xgb = NULL;
	m->linear = NULL;
	m->baseline = NULL;
}

/* The booster is XGBoost's memory: release it when the call's memory goes, error or not. */
static void
free_model_callback(void *arg)
{
	free_model((AnyModel *) arg);
}

static AnyModel *
new_model(bool xgboost)
{
	AnyModel   *m = palloc0(sizeof(AnyModel));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));

	m->xgboost = xgboost;
	cb->func = free_model_callback;
	cb->arg = m;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return m;
}

static bytea *
serialize(const AnyModel *m)
{
	char	   *buf;
	size_t		len;
	bytea	   *b;
	const char *err = NULL;

	if (m->xgboost)
		err = xgb_serialize(m->xgb, &buf, &len);
	else
		buf = linear_serialize(m->linear, &len);
	if (err)
		model_error("could not serialize the model", err);
	b = palloc(VARHDRSZ + len);
	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), buf, len);
	return b;
}

void
predict_append_number(StringInfo s, const char *key, double v)
{
	appendStringInfo(s, "%s\"%s\": ", s->len > 1 ? ", " : "", key);
	if (isfinite(v))
		appendStringInfo(s, "%.6g", v);
	else
		appendStringInfoString(s, "null");
}

/*
 * Platt scaling: p' = sigmoid(a * logit(p) + b), fitted by liblinear's
 * logistic regression on held-back rows the model did not train on.
 * Returns false (identity) when those rows have one class only or the fit
 * would reverse the ranking.
 */
static bool
fit_platt(const AnyModel *m, const ModelData *calib, double *a, double *b)
{
	double	   *margin = palloc(sizeof(double) * calib->nrows);
	ModelData	one;
	LinearParams p;
	LinearModel *lm = NULL;
	const char *err;
	int			i,
				pos = md_count_positive(calib);

	*a = 1.0;
	*b = 0.0;
	if (pos == 0 || pos == calib->nrows)
		return false;
	err = m->xgboost ? xgb_predict_margin(m->xgb, calib->x, calib->nrows, m->n_features, margin)
		: linear_predict_margin(m->linear, calib->x, calib->nrows, m->n_features, margin);
	if (err)
		model_error("calibration failed", err);
	md_init(&one, 1, false);
	for (i = 0; i < calib->nrows; i++)
		md_append_row_double(&one, &margin[i], calib->y[i], 1.0);
	linear_default_params(&p, false);
	p.C = 100.0;				/* two parameters: barely regularised */
	if ((err = linear_train(&one, &p, &lm)) != NULL)
		model_error("calibration failed", err);
	/* liblinear standardised the margin: undo it to get a and b */
	*a = lm->weights[0] / lm->stds[0];
	*b = lm->bias - *a * lm->means[0];
	linear_free(lm);
	md_free(&one);
	if (!(*a > 0) || !isfinite(*b))
	{
		*a = 1.0;
		*b = 0.0;
		return false;
	}
	return true;
}

static void
calibrate(double *pred, int n, double a, double b)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		double		p = Min(Max(pred[i], 1e-12), 1 - 1e-12);

		pred[i] = 1.0 / (1.0 + exp(-(a * log(p / (1 - p)) + b)));
	}
}

/* A classifier report's fields, appended to an open JSON object. */
void
predict_append_report(StringInfo s, const MMClassifierReport *r)
{
	int			i;

	predict_append_number(s, "roc_auc", r->roc_auc);
	predict_append_number(s, "pr_auc", r->pr_auc);
	predict_append_number(s, "brier", r->brier);
	predict_append_number(s, "log_loss", r->log_loss);
	predict_append_number(s, "accuracy", r->accuracy);
	predict_append_number(s, "f1", r->f1);
	predict_append_number(s, "top_k", r->top_k);
	predict_append_number(s, "precision_at_k", r->precision_at_k);
	predict_append_number(s, "recall_at_k", r->recall_at_k);
	predict_append_number(s, "test_rows", r->n);
	predict_append_number(s, "test_positives", r->positives);
	appendStringInfoString(s, ", \"calibration\": [");
	for (i = 0; i < r->n_calibration; i++)
		appendStringInfo(s, "%s{\"mean_predicted\": %.6g, \"observed_rate\": %.6g, \"count\": %d}",
						 i ? ", " : "", r->calibration[i].mean_predicted,
						 r->calibration[i].observed_rate, r->calibration[i].count);
	appendStringInfoChar(s, ']');
}

/* The test part's metrics as JSON text. */
static char *
metrics_json(const double *pred, const double *label, int n, bool regression, int top_k)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	if (regression)
	{
		double		rmse,
					r2;

		mm_rmse_r2(pred, label, n, &rmse, &r2);
		predict_append_number(&s, "rmse", rmse);
		predict_append_number(&s, "r2", r2);
		predict_append_number(&s, "test_rows", n);
	}
	else
	{
		MMClassifierReport r;

		mm_classifier_report(pred, label, n, top_k, &r);
		predict_append_report(&s, &r);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* Per feature, the training sample's PSI reference: 9 cuts then 10 shares. */
ArrayType *
predict_psi_references(const ModelData *train)
{
	int			per = (MM_PSI_BINS - 1) + MM_PSI_BINS;
	Datum	   *out = palloc(sizeof(Datum) * train->ncols * per);
	double	   *col = palloc(sizeof(double) * train->nrows);
	int			f,
				i;

	for (f = 0; f < train->ncols; f++)
	{
		MMPsiReference ref;

		for (i = 0; i < train->nrows; i++)
			col[i] = md_row(train, i)[f];
		if (mm_psi_reference(col, train->nrows, &ref) != NULL)
			memset(&ref, 0, sizeof(ref));
		for (i = 0; i < MM_PSI_BINS - 1; i++)
			out[f * per + i] = Float8GetDatum(ref.cuts[i]);
		for (i = 0; i < MM_PSI_BINS; i++)
			out[f * per + MM_PSI_BINS - 1 + i] = Float8GetDatum(ref.shares[i]);
	}
	return construct_array(out, train->ncols * per, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
						   TYPALIGN_DOUBLE);
}

/*
 * _model_fit(query text, algorithm text, regression boolean, options jsonb)
 *   RETURNS TABLE (model bytea, metrics jsonb, reference float8[],
 *                  train_rows int, test_rows int, train_seconds float8, peak_rss_kb bigint,
 *                  calibration float8[])
 * With options.calibrate = 1 a classifier is Platt-calibrated on the most
 * recent fifth of the training rows (it then fits on the rest); the test
 * metrics are of the calibrated probabilities, and calibration = {a, b}
 * is returned.  Off by default: on small histories the held-back fifth
 * costs more than calibration gains (see README).
 */
Datum
smartetl_model_fit(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	AnyModel   *m = new_model(is_xgboost(text_to_cstring(PG_GETARG_TEXT_PP(1))));
	bool		regression = PG_GETARG_BOOL(2);
	Jsonb	   *options = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	char	   *split = option_text(options, "split", "time");
	ModelData	md,
				train,
				test;
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false};
	double	   *pred;
	instr_time	start,
				elapsed;
	struct rusage ru;
	const char *err;
	MemoryContext caller = CurrentMemoryContext;
	bool		calibrated = false;
	double		platt_a = 1.0,
				platt_b = 0.0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_model_fit must return a record");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read_rows(query, &md, caller);
	SPI_finish();
	if (strcmp(split, "stratified") == 0)
		split_stratified(&md, &train, &test);
	else if (strcmp(split, "time") == 0)
	{
		if ((err = md_split_fraction(&md, predict_option_number(options, "test_fraction", 0.2), &train, &test)) != NULL)
			model_error("split", err);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown split \"%s\"", split),
				 errhint("Splits are time (hold out the last rows) and stratified.")));
	INSTR_TIME_SET_CURRENT(start);
	if (!regression && predict_option_number(options, "calibrate", 0) != 0 && train.nrows >= 50)
	{
		/* the most recent fifth of the training rows calibrates, the rest fits */
		ModelData	fitpart,
					calpart;

		if ((err = md_split_fraction(&train, 0.2, &fitpart, &calpart)) != NULL)
			model_error("split", err);
		fit(m, &fitpart, regression, options);
		calibrated = fit_platt(m, &calpart, &platt_a, &platt_b);
	}
	else
		fit(m, &train, regression, options);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	pred = palloc(sizeof(double) * test.nrows);
	predict_rows(m, test.x, test.nrows, pred);
	if (calibrated)
		calibrate(pred, test.nrows, platt_a, platt_b);
	values[0] = PointerGetDatum(serialize(m));
	free_model(m);
	getrusage(RUSAGE_SELF, &ru);
	values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(
		metrics_json(pred, md_labels_double(&test), test.nrows, regression,
					 (int) predict_option_number(options, "top_k", 10))));
	values[2] = PointerGetDatum(predict_psi_references(&train));
	values[3] = Int32GetDatum(train.nrows);
	values[4] = Int32GetDatum(test.nrows);
	values[5] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(elapsed));
	values[6] = Int64GetDatum((int64) ru.ru_maxrss);
	nulls[7] = !calibrated;
	if (calibrated)
		values[7] = PointerGetDatum(predict_float8_result((double[]) {platt_a, platt_b}, 2));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* ---- stored models: a small per-backend cache by model id ---- */

#define CACHE_SIZE 8

typedef struct CachedModel
{
	int64		id;
	AnyModel	model;
} CachedModel;

static CachedModel cache[CACHE_SIZE];
static int	cache_next = 0;

static AnyModel *
load_model(int64 id, const char *algorithm, bytea *bytes)
{
	CachedModel *slot;
	MemoryContext old;
	const char *err;
	int			i;

	for (i = 0; i < CACHE_SIZE; i++)
		if (cache[i].id == id && (cache[i].model.xgb || cache[i].model.linear || cache[i].model.baseline))
			return &cache[i].model;
	slot = &cache[cache_next];
	cache_next = (cache_next + 1) % CACHE_SIZE;
	free_model(&slot->model);
	slot->id = 0;
	if (strcmp(algorithm, "baseline") == 0)
	{
		slot->model.xgboost = false;
		old = MemoryContextSwitchTo(TopMemoryContext);
		err = baseline_deserialize(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), &slot->model.baseline);
		MemoryContextSwitchTo(old);
		if (err)
			model_error("could not load the model", err);
		slot->model.n_features = slot->model.baseline->n_features;
		slot->id = id;
		return &slot->model;
	}
	slot->model.xgboost = is_xgboost(algorithm);
	old = MemoryContextSwitchTo(TopMemoryContext);
	err = slot->model.xgboost
		? xgb_deserialize(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), &slot->model.xgb)
		: linear_deserialize(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), &slot->model.linear);
	MemoryContextSwitchTo(old);
	if (err)
		model_error("could not load the model", err);
	slot->model.n_features = slot->model.xgboost ? slot->model.xgb->n_features
		: slot->model.linear->n_features;
	slot->id = id;
	return &slot->model;
}

/* The rows of a flat float8[] (n * ncols values) as floats. */
static float *
feature_rows(ArrayType *a, int ncols, int *nrows)
{
	int			n;
	double	   *d = predict_float8_array(a, &n);
	float	   *x;
	int			i;

	if (n == 0 || n % ncols != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected a multiple of %d feature values, got %d", ncols, n)));
	x = palloc(sizeof(float) * n);
	for (i = 0; i < n; i++)
		x[i] = (float) d[i];
	*nrows = n / ncols;
	return x;
}

ArrayType *
predict_float8_result(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* _model_predict(model_id bigint, algorithm text, model bytea, features float8[]) RETURNS float8[] */
Datum
smartetl_model_predict(PG_FUNCTION_ARGS)
{
	AnyModel   *m = load_model(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   PG_GETARG_BYTEA_PP(2));
	int			nrows;
	float	   *x = feature_rows(PG_GETARG_ARRAYTYPE_P(3), m->n_features, &nrows);
	double	   *out = palloc(sizeof(double) * nrows);

	predict_rows(m, x, nrows, out);
	PG_RETURN_ARRAYTYPE_P(predict_float8_result(out, nrows));
}

/* _model_contributions(...same...) RETURNS float8[]: per row ncols contributions then the bias */
Datum
smartetl_model_contributions(PG_FUNCTION_ARGS)
{
	AnyModel   *m = load_model(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   PG_GETARG_BYTEA_PP(2));
	int			nrows;
	float	   *x = feature_rows(PG_GETARG_ARRAYTYPE_P(3), m->n_features, &nrows);
	double	   *out = palloc(sizeof(double) * nrows * (m->n_features + 1));
	const char *err = m->baseline ? baseline_contributions(m->baseline, x, nrows, m->n_features, out)
		: m->xgboost ? xgb_contributions(m->xgb, x, nrows, m->n_features, out)
		: linear_contributions(m->linear, x, nrows, m->n_features, out);

	if (err)
		model_error("contributions failed", err);
	PG_RETURN_ARRAYTYPE_P(predict_float8_result(out, nrows * (m->n_features + 1)));
}

/*
 * _model_psi(reference float8[], rows float8[], ncols int) RETURNS float8[]:
 * each feature's PSI of the rows (n * ncols values) against the reference
 * stored at training time.
 */
Datum
smartetl_model_psi(PG_FUNCTION_ARGS)
{
	int			nref,
				nrows;
	double	   *ref = predict_float8_array(PG_GETARG_ARRAYTYPE_P(0), &nref);
	int			ncols = PG_GETARG_INT32(2);
	float	   *x = feature_rows(PG_GETARG_ARRAYTYPE_P(1), ncols, &nrows);
	int			per = (MM_PSI_BINS - 1) + MM_PSI_BINS;
	double	   *col = palloc(sizeof(double) * nrows);
	double	   *psi = palloc(sizeof(double) * ncols);
	int			f,
				i;

	if (nref != ncols * per)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the reference has %d values, expected %d", nref, ncols * per)));
	for (f = 0; f < ncols; f++)
	{
		MMPsiReference r;

		memcpy(r.cuts, ref + f * per, sizeof(r.cuts));
		memcpy(r.shares, ref + f * per + MM_PSI_BINS - 1, sizeof(r.shares));
		for (i = 0; i < nrows; i++)
			col[i] = x[(size_t) i * ncols + f];
		psi[f] = mm_psi_against(&r, col, nrows);
	}
	PG_RETURN_ARRAYTYPE_P(predict_float8_result(psi, ncols));
}

/* _classifier_metrics(pred float8[], label float8[]) RETURNS jsonb */
Datum
smartetl_classifier_metrics(PG_FUNCTION_ARGS)
{
	int			np,
				nl;
	double	   *pred = predict_float8_array(PG_GETARG_ARRAYTYPE_P(0), &np);
	double	   *label = predict_float8_array(PG_GETARG_ARRAYTYPE_P(1), &nl);

	if (np != nl)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d predictions but %d labels", np, nl)));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics_json(pred, label, np, false, 10))));
}
