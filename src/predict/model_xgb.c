/*-------------------------------------------------------------------------
 * src/predict/model_xgb.c
 *		XGBoost boosters: training with fixed, single-threaded parameters,
 *		prediction, SHAP contributions and (de)serialization.  See
 *		model_xgb.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>
#include <xgboost/c_api.h>

#include "port/pg_crc32c.h"
#include "predict/model_xgb.h"

/* prediction types of XGBoosterPredictFromDMatrix's "type" */
#define XGB_PREDICT_VALUE 0
#define XGB_PREDICT_MARGIN 1
#define XGB_PREDICT_CONTRIBUTIONS 2

/* booster attributes saved with the model, checked on load */
#define ATTR_KIND "smartetl_kind"
#define ATTR_FEATURES "smartetl_features"

/*
 * From libgomp, which libxgboost uses (link -lgomp).  Declared here rather
 * than through <omp.h>, which clang's bitcode build may not have.
 */
extern void omp_set_num_threads(int num_threads);

/* our envelope around XGBoost's UBJSON: magic, version, length, CRC-32C */
static const char envelope_magic[4] = {'S', 'E', 'X', 'G'};

static char xgb_error[1024];

/* Copy XGBoost's last error, prefixed by what we were doing. */
static const char *
last_error(const char *doing)
{
	snprintf(xgb_error, sizeof(xgb_error), "XGBoost failed to %s: %s",
			 doing, XGBGetLastError());
	return xgb_error;
}

/*
 * Keep XGBoost's OpenMP regions on the calling thread.  nthread = 1 on the
 * booster is not enough: XGBoost 1.7 loads a model's trees in a parallel
 * region sized by OpenMP's default before the booster's own settings
 * apply, which starts a worker thread per core inside the backend.  A
 * PostgreSQL backend must stay single-threaded (signal handlers, elog), so
 * cap OpenMP itself before every entry into XGBoost that may run one.
 */
static void
single_threaded(void)
{
	omp_set_num_threads(1);
}

int
xgb_version(void)
{
	int			major,
				minor,
				patch;

	XGBoostVersion(&major, &minor, &patch);
	return major * 10000 + minor * 100 + patch;
}

void
xgb_default_params(XgbParams *p, bool regression)
{
	memset(p, 0, sizeof(*p));
	p->regression = regression;
	p->max_depth = 4;
	p->eta = 0.1;
	p->n_rounds = 200;
	p->min_child_weight = 1;
	p->subsample = 1;
	p->colsample_bytree = 1;
	p->lambda = 1;
	p->scale_pos_weight = 1;
	p->seed = 0;
	p->eval_metric = NULL;
}

static const char *
check_params(const XgbParams *p)
{
	if (p->max_depth < 1 || p->max_depth > 20)
		return "max_depth must be between 1 and 20";
	if (!(p->eta > 0 && p->eta <= 1))
		return "eta must be in (0, 1]";
	if (p->n_rounds < 1 || p->n_rounds > 10000)
		return "n_rounds must be between 1 and 10000";
	if (!(p->min_child_weight >= 0 && isfinite(p->min_child_weight)))
		return "min_child_weight must be a non-negative number";
	if (!(p->subsample > 0 && p->subsample <= 1))
		return "subsample must be in (0, 1]";
	if (!(p->colsample_bytree > 0 && p->colsample_bytree <= 1))
		return "colsample_bytree must be in (0, 1]";
	if (!(p->lambda >= 0 && isfinite(p->lambda)))
		return "lambda must be a non-negative number";
	if (!(p->scale_pos_weight > 0 && isfinite(p->scale_pos_weight)))
		return "scale_pos_weight must be a positive number";
	return NULL;
}

static const char *
check_labels(const ModelData *train, bool regression)
{
	int			i;

	if (train->nrows < 1)
		return "no training rows";
	if (regression)
		return NULL;
	for (i = 0; i < train->nrows; i++)
		if (train->y[i] != 0.0f && train->y[i] != 1.0f)
			return "classifier labels must be 0 or 1";
	return NULL;
}

static int
set_param(BoosterHandle b, const char *name, const char *value)
{
	return XGBoosterSetParam(b, name, value);
}

static int
set_param_number(BoosterHandle b, const char *name, double value)
{
	char		text[64];

	snprintf(text, sizeof(text), "%.17g", value);
	return XGBoosterSetParam(b, name, text);
}

/* Settings every booster gets, trained or loaded: quiet, one thread. */
static int
set_runtime_params(BoosterHandle b)
{
	if (set_param(b, "nthread", "1") != 0 ||
		set_param(b, "verbosity", "0") != 0)
		return -1;
	return 0;
}

static int
set_training_params(BoosterHandle b, const XgbParams *p)
{
	const char *metric = p->eval_metric ? p->eval_metric :
		(p->regression ? "rmse" : "logloss");

	if (set_runtime_params(b) != 0 ||
		set_param(b, "objective", p->regression ? "reg:squarederror" : "binary:logistic") != 0 ||
		set_param(b, "tree_method", "hist") != 0 ||
		set_param_number(b, "max_depth", p->max_depth) != 0 ||
		set_param_number(b, "eta", p->eta) != 0 ||
		set_param_number(b, "min_child_weight", p->min_child_weight) != 0 ||
		set_param_number(b, "subsample", p->subsample) != 0 ||
		set_param_number(b, "lambda", p->lambda) != 0 ||
		set_param_number(b, "seed", p->seed) != 0 ||
		set_param(b, "eval_metric", metric) != 0)
		return -1;
	if (!p->regression &&
		set_param_number(b, "scale_pos_weight", p->scale_pos_weight) != 0)
		return -1;
	/* only when asked: a booster trained without it stays byte-identical */
	if (p->colsample_bytree != 1 &&
		set_param_number(b, "colsample_bytree", p->colsample_bytree) != 0)
		return -1;
	return 0;
}

/* Write the attributes xgb_deserialize checks. */
static int
set_identity_attrs(BoosterHandle b, bool regression, int n_features)
{
	char		text[32];

	snprintf(text, sizeof(text), "%d", n_features);
	if (XGBoosterSetAttr(b, ATTR_KIND, regression ? "regressor" : "classifier") != 0 ||
		XGBoosterSetAttr(b, ATTR_FEATURES, text) != 0)
		return -1;
	return 0;
}

static int
make_dmatrix(const float *x, int nrows, int ncols, DMatrixHandle *out)
{
	return XGDMatrixCreateFromMat_omp(x, (bst_ulong) nrows, (bst_ulong) ncols,
									  NAN, out, 1);
}

/* The training DMatrix with labels and weights; NULL or an error. */
static const char *
make_training_dmatrix(const ModelData *train, DMatrixHandle *out)
{
	*out = NULL;
	if (make_dmatrix(train->x, train->nrows, train->ncols, out) != 0)
		return last_error("build the training matrix");
	if (XGDMatrixSetFloatInfo(*out, "label", train->y, (bst_ulong) train->nrows) != 0 ||
		(train->w != NULL &&
		 XGDMatrixSetFloatInfo(*out, "weight", train->w, (bst_ulong) train->nrows) != 0))
	{
		const char *err = last_error("set labels or weights");

		(void) XGDMatrixFree(*out);
		*out = NULL;
		return err;
	}
	return NULL;
}

/* Boost n_rounds rounds on dtrain; NULL or an error. */
static const char *
boost(BoosterHandle b, DMatrixHandle dtrain, const XgbParams *p)
{
	int			round;

	for (round = 0; round < p->n_rounds; round++)
	{
		if (p->cancel_requested && p->cancel_requested(p->cancel_arg))
			return "training cancelled";
		if (XGBoosterUpdateOneIter(b, round, dtrain) != 0)
			return last_error("train");
	}
	return NULL;
}

/* Create a booster on dtrain and train it; the caller frees *booster. */
static const char *
train_booster(DMatrixHandle dtrain, const XgbParams *params, int n_features,
			  BoosterHandle *booster)
{
	const char *err;

	if (XGBoosterCreate(&dtrain, 1, booster) != 0)
	{
		*booster = NULL;
		return last_error("create a booster");
	}
	if (set_training_params(*booster, params) != 0)
		return last_error("set the training parameters");
	if ((err = boost(*booster, dtrain, params)) != NULL)
		return err;
	if (set_identity_attrs(*booster, params->regression, n_features) != 0)
		return last_error("set the model attributes");
	return NULL;
}

const char *
xgb_train(const ModelData *train, const XgbParams *params, XgbModel **out)
{
	XgbModel   *model;
	DMatrixHandle dtrain;
	BoosterHandle booster;
	const char *err;

	*out = NULL;
	if ((err = check_params(params)) != NULL ||
		(err = check_labels(train, params->regression)) != NULL)
		return err;

	/* allocate before any handle exists: an OOM longjmp leaks nothing */
	model = palloc0(sizeof(XgbModel));
	single_threaded();
	if ((err = make_training_dmatrix(train, &dtrain)) != NULL)
	{
		pfree(model);
		return err;
	}
	err = train_booster(dtrain, params, train->ncols, &booster);
	(void) XGDMatrixFree(dtrain);
	if (err != NULL)
	{
		if (booster)
			(void) XGBoosterFree(booster);
		pfree(model);
		return err;
	}
	model->booster = booster;
	model->n_features = train->ncols;
	model->regression = params->regression;
	*out = model;
	return NULL;
}

/*
 * Run one kind of prediction on nrows rows and copy the per_row values of
 * each row into out as doubles.
 */
static const char *
run_prediction(const XgbModel *model, const float *x, int nrows, int ncols,
			   int type, int per_row, double *out)
{
	DMatrixHandle dmat;
	const bst_ulong *shape;
	bst_ulong	dim,
				total = 1,
				i;
	const float *result;
	char		config[160];
	const char *err = NULL;

	if (ncols != model->n_features)
		return "the number of features does not match the model";
	if (nrows == 0)
		return NULL;
	if (nrows < 0)
		return "negative row count";
	single_threaded();
	snprintf(config, sizeof(config),
			 "{\"type\": %d, \"training\": false, \"iteration_begin\": 0, "
			 "\"iteration_end\": 0, \"strict_shape\": false}", type);
	if (make_dmatrix(x, nrows, ncols, &dmat) != 0)
		return last_error("build the prediction matrix");
	if (XGBoosterPredictFromDMatrix(model->booster, dmat, config, &shape, &dim,
									&result) != 0)
		err = last_error("predict");
	else
	{
		for (i = 0; i < dim; i++)
			total *= shape[i];
		if (total != (bst_ulong) nrows * (bst_ulong) per_row)
			err = "XGBoost returned a prediction of unexpected shape";
		else
			for (i = 0; i < total; i++)
				out[i] = result[i];
	}
	(void) XGDMatrixFree(dmat);
	return err;
}

const char *
xgb_predict(const XgbModel *model, const float *x, int nrows, int ncols,
			double *out)
{
	return run_prediction(model, x, nrows, ncols, XGB_PREDICT_VALUE, 1, out);
}

const char *
xgb_predict_margin(const XgbModel *model, const float *x, int nrows, int ncols,
				   double *out)
{
	return run_prediction(model, x, nrows, ncols, XGB_PREDICT_MARGIN, 1, out);
}

const char *
xgb_contributions(const XgbModel *model, const float *x, int nrows, int ncols,
				  double *out)
{
	return run_prediction(model, x, nrows, ncols, XGB_PREDICT_CONTRIBUTIONS,
						  ncols + 1, out);
}

static pg_crc32c
payload_crc(const char *payload, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, payload, len);
	FIN_CRC32C(crc);
	return crc;
}

static void
put_le(char *p, uint64_t v, int bytes)
{
	int			i;

	for (i = 0; i < bytes; i++)
		p[i] = (char) ((v >> (8 * i)) & 0xff);
}

static uint64_t
get_le(const char *p, int bytes)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t) (unsigned char) p[i] << (8 * i);
	return v;
}

const char *
xgb_serialize(const XgbModel *model, char **buf, size_t *len)
{
	bst_ulong	n;
	const char *ubj;
	char	   *out;

	*buf = NULL;
	*len = 0;
	if (XGBoosterSaveModelToBuffer(model->booster, "{\"format\": \"ubj\"}",
								   &n, &ubj) != 0)
		return last_error("serialize the model");
	if (n < 2 || n > MD_MAX_BYTES - XGB_ENVELOPE_BYTES)
		return "serialized model is empty or larger than 1 GB";
	out = palloc_extended(XGB_ENVELOPE_BYTES + n, MCXT_ALLOC_NO_OOM);
	if (out == NULL)
		return "out of memory";
	memcpy(out, envelope_magic, 4);
	put_le(out + 4, XGB_FORMAT_VERSION, 4);
	put_le(out + 8, n, 8);
	put_le(out + 16, payload_crc(ubj, n), 4);
	memcpy(out + XGB_ENVELOPE_BYTES, ubj, n);
	*buf = out;
	*len = XGB_ENVELOPE_BYTES + n;
	return NULL;
}

/*
 * Check the envelope and return NULL with the UBJSON payload, or what is
 * wrong.  This must catch every truncation and corruption: XGBoost 1.7's
 * UBJSON reader does not bounds-check, and reads past the end of a
 * truncated buffer.
 */
static const char *
open_envelope(const char *buf, size_t len, const char **payload,
			  size_t *payload_len)
{
	if (len < XGB_ENVELOPE_BYTES + 2 || len > MD_MAX_BYTES)
		return "XGBoost model truncated (shorter than its header)";
	if (memcmp(buf, envelope_magic, 4) != 0)
		return "not a smartetl XGBoost model (bad magic)";
	if (get_le(buf + 4, 4) != XGB_FORMAT_VERSION)
		return "unknown XGBoost model format version";
	if (get_le(buf + 8, 8) != len - XGB_ENVELOPE_BYTES)
		return "XGBoost model length does not match its header";
	*payload = buf + XGB_ENVELOPE_BYTES;
	*payload_len = len - XGB_ENVELOPE_BYTES;
	if (get_le(buf + 16, 4) != payload_crc(*payload, *payload_len))
		return "XGBoost model corrupted (checksum mismatch)";

	/*
	 * UBJSON starts with '{' then a type marker, never '"': anything else
	 * would reach XGBoost's deprecated binary loader or its JSON parser.
	 */
	if ((*payload)[0] != '{' || (*payload)[1] == '"')
		return "XGBoost model payload is not UBJSON";
	return NULL;
}

/*
 * An attribute of b as text; NULL if absent or on error.  The text lives in
 * a buffer of XGBoost's that the next call overwrites: use it at once.
 */
static const char *
get_attr(BoosterHandle b, const char *key)
{
	const char *value = NULL;
	int			found = 0;

	if (XGBoosterGetAttr(b, key, &value, &found) != 0 || !found)
		return NULL;
	return value;
}

/* Check a loaded booster's attributes and fill model's kind and width. */
static const char *
read_identity(BoosterHandle b, XgbModel *model)
{
	const char *text;
	bst_ulong	n_features;
	char	   *end;
	long		declared;

	if ((text = get_attr(b, ATTR_KIND)) == NULL)
		return "not a smartetl XGBoost model (kind attribute missing)";
	if (strcmp(text, "classifier") != 0 && strcmp(text, "regressor") != 0)
		return "unknown model kind";
	model->regression = strcmp(text, "regressor") == 0;

	if ((text = get_attr(b, ATTR_FEATURES)) == NULL)
		return "not a smartetl XGBoost model (feature count attribute missing)";
	declared = strtol(text, &end, 10);
	if (end == text || *end != '\0' || declared < 1 || declared > MD_MAX_COLS)
		return "bad feature count attribute";
	if (XGBoosterGetNumFeature(b, &n_features) != 0)
		return last_error("read the feature count");
	if (n_features != (bst_ulong) declared)
		return "the model's feature count does not match its attribute";
	model->n_features = (int) declared;
	return NULL;
}

const char *
xgb_deserialize(const char *buf, size_t len, XgbModel **out)
{
	XgbModel   *model;
	BoosterHandle booster;
	const char *payload;
	size_t		payload_len;
	const char *err;

	*out = NULL;
	if ((err = open_envelope(buf, len, &payload, &payload_len)) != NULL)
		return err;
	model = palloc0(sizeof(XgbModel));
	single_threaded();
	if (XGBoosterCreate(NULL, 0, &booster) != 0)
	{
		pfree(model);
		return last_error("create a booster");
	}
	if (XGBoosterLoadModelFromBuffer(booster, payload, (bst_ulong) payload_len) != 0)
		err = last_error("load the model");
	else if (set_runtime_params(booster) != 0)
		err = last_error("set the runtime parameters");
	else
		err = read_identity(booster, model);
	if (err != NULL)
	{
		(void) XGBoosterFree(booster);
		pfree(model);
		return err;
	}
	model->booster = booster;
	*out = model;
	return NULL;
}

void
xgb_free(XgbModel *model)
{
	if (model == NULL)
		return;
	if (model->booster)
		(void) XGBoosterFree(model->booster);
	pfree(model);
}
