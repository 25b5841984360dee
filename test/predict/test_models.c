/*-------------------------------------------------------------------------
 * test/predict/test_models.c
 *		Unit tests of src/predict/ outside the server, printing TAP.
 *
 * The metrics are checked against values computed by hand (the arithmetic
 * is in the comments); the models learn a synthetic, noisy but mostly
 * separable problem drawn from a seeded PRNG, so every run sees the same
 * rows:  label = [2 x1 - x2 + 0.5 noise > 0], x3 pure noise.  Then:
 * held-out AUC, serialize / load / identical predictions, contributions
 * adding up to the margin, the linear deserializer refusing every
 * truncation, and the PSI of identical and shifted samples.
 *
 * Built with -DFRONTEND against postgres_fe.h and PostgreSQL's frontend
 * libraries by test/predict/run.sh.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <math.h>

#include "predict/model_data.h"
#include "predict/model_linear.h"
#include "predict/model_metrics.h"
#include "predict/model_xgb.h"

#define N_SYNTH 2000
#define N_FEATURES 3

static int	n_tests = 0;
static int	n_failed = 0;

static void
ok(bool cond, const char *name)
{
	n_tests++;
	if (!cond)
		n_failed++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", n_tests, name);
}

static void
is_near(double got, double want, double tol, const char *name)
{
	bool		good = fabs(got - want) <= tol;

	ok(good, name);
	if (!good)
		printf("#   got %.12g, want %.12g (tolerance %g)\n", got, want, tol);
}

static void
is_nan(double got, const char *name)
{
	ok(isnan(got), name);
	if (!isnan(got))
		printf("#   got %.12g, want NaN\n", got);
}

/* passes when err is NULL; otherwise prints it */
static bool
no_error(const char *err, const char *name)
{
	ok(err == NULL, name);
	if (err != NULL)
		printf("#   error: %s\n", err);
	return err == NULL;
}

/* ---- seeded PRNG: splitmix64, uniform and normal draws ---- */

static uint64_t rng_state = 20240501;

static uint64_t
rng_next(void)
{
	uint64_t	z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static double
rng_uniform(void)
{
	return ((rng_next() >> 11) + 0.5) / 9007199254740992.0;	/* (0, 1) */
}

static double
rng_normal(void)
{
	return sqrt(-2 * log(rng_uniform())) * cos(2 * M_PI * rng_uniform());
}

/*
 * n rows of (x1, x2, x3); classifier label [2 x1 - x2 + 0.5 e > 0], or
 * regression target 3 x1 + x2 + 0.3 e.
 */
static void
make_synthetic(ModelData *md, int n, bool regression)
{
	int			i;

	if (md_init(md, N_FEATURES, false) != NULL)
		abort();
	for (i = 0; i < n; i++)
	{
		float		row[N_FEATURES];
		double		label;

		row[0] = (float) rng_normal();
		row[1] = (float) rng_normal();
		row[2] = (float) rng_normal();
		if (regression)
			label = 3 * row[0] + row[1] + 0.3 * rng_normal();
		else
			label = 2 * row[0] - row[1] + 0.5 * rng_normal() > 0 ? 1 : 0;
		if (md_append_row(md, row, (float) label, 1) != NULL)
			abort();
	}
}

/* ---- metrics against hand-computed values ---- */

/* pred 0.1 0.4 0.35 0.8, labels 0 0 1 1: the classic scikit-learn example */
static const double ex_pred[4] = {0.1, 0.4, 0.35, 0.8};
static const double ex_label[4] = {0, 0, 1, 1};

static void
test_ranking_metrics(void)
{
	const double tie_pred[4] = {0.2, 0.6, 0.6, 0.9};
	const double flat_pred[4] = {0.5, 0.5, 0.5, 0.5};
	const double flat_label[4] = {0, 1, 0, 1};
	const double one_class[3] = {1, 1, 1};

	/* pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4 */
	is_near(mm_roc_auc(ex_pred, ex_label, 4), 0.75, 1e-12, "ROC-AUC of the 4-row example");
	/* ranks 1, 2.5, 2.5, 4; positives 2.5 + 4 - 3 = 3.5 over 4 pairs */
	is_near(mm_roc_auc(tie_pred, ex_label, 4), 0.875, 1e-12, "ROC-AUC counts a tie as half");
	is_near(mm_roc_auc(flat_pred, flat_label, 4), 0.5, 1e-12, "ROC-AUC of constant scores is 0.5");
	is_nan(mm_roc_auc(ex_pred, one_class, 3), "ROC-AUC of a single class is NaN");
	/* thresholds 0.8: P=1 R=.5; 0.4: R=.5; 0.35: P=2/3 R=1 -> .5 + .5*2/3 */
	is_near(mm_average_precision(ex_pred, ex_label, 4), 0.5 + 0.5 * 2.0 / 3.0, 1e-12,
			"average precision of the 4-row example");
	is_near(mm_average_precision(flat_pred, flat_label, 4), 0.5, 1e-12,
			"average precision of constant scores is the positive rate");
}

static void
test_probability_metrics(void)
{
	const double certain_wrong[1] = {0.0};
	const double one[1] = {1};

	/* (.01 + .16 + .4225 + .04) / 4 */
	is_near(mm_brier(ex_pred, ex_label, 4), 0.158125, 1e-12, "Brier score");
	/* -(ln .9 + ln .6 + ln .35 + ln .8) / 4 */
	is_near(mm_log_loss(ex_pred, ex_label, 4), 0.47228795380917615, 1e-12, "log loss");
	/* -ln(1e-15) */
	is_near(mm_log_loss(certain_wrong, one, 1), 34.538776394910684, 1e-9,
			"log loss clips p = 0 to 1e-15");
	is_nan(mm_brier(ex_pred, ex_label, 0), "Brier score of no rows is NaN");
}

static void
test_decision_metrics(void)
{
	double		precision,
				recall,
				accuracy,
				f1,
				rmse,
				r2;
	const double actual[4] = {1, 2, 3, 4};
	const double fitted[4] = {1.5, 2, 2.5, 4.5};

	/* top 2 by score: 0.8 (pos), 0.4 (neg) */
	mm_top_k(ex_pred, ex_label, 4, 2, &precision, &recall);
	is_near(precision, 0.5, 1e-12, "precision at top-2");
	is_near(recall, 0.5, 1e-12, "recall at top-2");
	/* top 3 adds 0.35 (pos) */
	mm_top_k(ex_pred, ex_label, 4, 3, &precision, &recall);
	is_near(precision, 2.0 / 3.0, 1e-12, "precision at top-3");
	is_near(recall, 1.0, 1e-12, "recall at top-3");

	/* decisions 0 0 0 1 vs 0 0 1 1: 3/4 right, TP 1 FP 0 FN 1 -> F1 2/3 */
	mm_accuracy_f1(ex_pred, ex_label, 4, &accuracy, &f1);
	is_near(accuracy, 0.75, 1e-12, "accuracy at 0.5");
	is_near(f1, 2.0 / 3.0, 1e-12, "F1 at 0.5");

	/* errors .5 0 .5 .5 -> MSE .1875; SS_tot 5 -> R2 1 - .75/5 */
	mm_rmse_r2(fitted, actual, 4, &rmse, &r2);
	is_near(rmse, sqrt(0.1875), 1e-12, "RMSE");
	is_near(r2, 0.85, 1e-12, "R squared");
	mm_rmse_r2(fitted, (const double[]) {2, 2, 2, 2}, 4, &rmse, &r2);
	is_nan(r2, "R squared of a constant target is NaN");
}

static void
test_calibration(void)
{
	MMCalibrationBin bins[MM_CALIBRATION_BINS];
	double		pred[25],
				label[25];
	int			used,
				total = 0,
				i;

	/* sorted: 0.1 (0), 0.35 (1) | 0.4 (0), 0.8 (1) */
	used = mm_calibration(ex_pred, ex_label, 4, 2, bins);
	ok(used == 2 && bins[0].count == 2 && bins[1].count == 2, "calibration: two bins of two");
	is_near(bins[0].mean_predicted, 0.225, 1e-12, "calibration: bin 1 mean predicted");
	is_near(bins[0].observed_rate, 0.5, 1e-12, "calibration: bin 1 observed rate");
	is_near(bins[1].mean_predicted, 0.6, 1e-12, "calibration: bin 2 mean predicted");

	/* 25 rows in 10 bins: boundaries floor(25 b / 10) -> sizes 2,3,2,3,... */
	for (i = 0; i < 25; i++)
	{
		pred[i] = (24 - i) / 24.0;
		label[i] = i % 2;
	}
	used = mm_calibration(pred, label, 25, MM_CALIBRATION_BINS, bins);
	for (i = 0; i < used; i++)
		total += bins[i].count;
	ok(used == 10 && bins[0].count == 2 && bins[1].count == 3 && total == 25,
	   "calibration: 25 rows in 10 equal-frequency bins");
	is_near(bins[0].mean_predicted, 0.5 / 24.0, 1e-12,
			"calibration: lowest bin holds the lowest predictions");
	ok(mm_calibration(ex_pred, ex_label, 3, 10, bins) == 3,
	   "calibration: fewer rows than bins leaves no empty bin");
}

static void
test_psi(void)
{
	double		ref[10],
				cur[10] = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
	double		big[1000],
				shifted[1000];
	MMPsiReference r;
	int			i;

	for (i = 0; i < 10; i++)
		ref[i] = i;
	ok(mm_psi_reference(ref, 10, &r) == NULL && fabs(r.cuts[0] - 0.9) < 1e-12 &&
	   fabs(r.cuts[8] - 8.1) < 1e-12 && fabs(r.shares[9] - 0.1) < 1e-12,
	   "PSI reference: cuts at percentile_cont deciles, 10% per bin");
	/* shares .5 .1 .1 .1 .1 .1 0 0 0 0 vs .1 each, empty bins as 1e-4 */
	is_near(mm_psi(ref, 10, cur, 10),
			0.4 * log(5.0) + 4 * (1e-4 - 0.1) * log(1e-4 / 0.1), 1e-12,
			"PSI of a hand-computed example");
	is_near(mm_psi_against(&r, cur, 10), mm_psi(ref, 10, cur, 10), 0,
			"PSI from a stored reference equals the one-step PSI");

	for (i = 0; i < 1000; i++)
	{
		big[i] = rng_normal();
		shifted[i] = big[i] + 1.0;
	}
	is_near(mm_psi(big, 1000, big, 1000), 0, 1e-12, "PSI of identical samples is 0");
	ok(mm_psi(big, 1000, shifted, 1000) > 0.25, "PSI of a sample shifted by 1 sd > 0.25");
	is_nan(mm_psi(big, 1000, (const double[]) {NAN}, 1), "PSI of an all-NaN sample is NaN");
}

/* ---- the training matrix ---- */

static void
test_model_data(void)
{
	ModelData	md,
				train,
				test;
	const float bad[2] = {1, INFINITY};
	const double wide[2] = {1e300, 0};
	int			i;

	md_init(&md, 2, false);
	for (i = 0; i < 10; i++)
	{
		float		row[2] = {(float) i, (float) -i};

		md_append_row(&md, row, (float) (i % 2), 1);
	}
	ok(md_split_fraction(&md, 0.2, &train, &test) == NULL &&
	   train.nrows == 8 && test.nrows == 2 && test.x[0] == 8.0f && test.y[1] == 1.0f,
	   "time split keeps the first 80% for training, the last 20% for test");
	ok(md_split_fraction(&md, 0.001, &train, &test) == NULL && test.nrows == 1,
	   "time split keeps at least one test row");
	ok(md_split_fraction(&md, 1.0, &train, &test) != NULL, "test fraction 1 is refused");
	ok(md_append_row(&md, bad, 0, 1) != NULL && md.nrows == 10,
	   "an infinite feature is refused and the matrix is unchanged");
	ok(md_append_row_double(&md, wide, 0, 1) != NULL && md.nrows == 10,
	   "a double beyond float range is refused");
	ok(md_append_row(&md, (const float[]) {NAN, 1}, NAN, 1) != NULL,
	   "a NaN label is refused");
	ok(md_append_row(&md, (const float[]) {NAN, 1}, 1, 1) == NULL && md.nrows == 11,
	   "a NaN feature (missing) is accepted");
	md_free(&md);
}

/* ---- XGBoost ---- */

static double
sigmoid(double t)
{
	return 1 / (1 + exp(-t));
}

static double
max_contribution_gap(const double *contrib, const double *margin, int nrows,
					 int ncols)
{
	double		worst = 0;
	int			i,
				j;

	for (i = 0; i < nrows; i++)
	{
		double		sum = 0;

		for (j = 0; j <= ncols; j++)
			sum += contrib[(size_t) i * (ncols + 1) + j];
		worst = Max(worst, fabs(sum - margin[i]));
	}
	return worst;
}

/* mean |contribution| of feature j over nrows rows of N_FEATURES + 1 */
static double
mean_abs_contribution(const double *contrib, int nrows, int j)
{
	double		sum = 0;
	int			i;

	for (i = 0; i < nrows; i++)
		sum += fabs(contrib[(size_t) i * (N_FEATURES + 1) + j]);
	return sum / nrows;
}

/*
 * Threads of this process (Linux): XGBoost must not start OpenMP workers
 * inside a PostgreSQL backend.
 */
static int
thread_count(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	int			threads = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Threads:", 8) == 0)
			threads = atoi(line + 8);
	fclose(f);
	return threads;
}

/* Damaged model bytes must be refused before XGBoost parses them. */
static void
test_xgb_bad_bytes(const char *bytes, size_t len)
{
	XgbModel   *model;
	char	   *copy = palloc(len);
	bool		all_refused = true;
	size_t		cut;

	for (cut = 0; cut < len; cut++)
		if (xgb_deserialize(bytes, cut, &model) == NULL || model != NULL)
			all_refused = false;
	ok(all_refused, "every truncation of an XGBoost model is refused");
	memcpy(copy, bytes, len);
	copy[len / 2] ^= 0x20;
	ok(xgb_deserialize(copy, len, &model) != NULL, "a flipped bit in an XGBoost model is refused");
	ok(xgb_deserialize(bytes + XGB_ENVELOPE_BYTES, len - XGB_ENVELOPE_BYTES, &model) != NULL,
	   "XGBoost's UBJSON without our envelope is refused");
	ok(xgb_deserialize("\"json\"", 6, &model) != NULL, "bytes that are no model are refused");
	pfree(copy);
}

static void
test_xgb_classifier(const ModelData *train, const ModelData *test)
{
	XgbParams	params;
	XgbModel   *model,
			   *loaded = NULL,
			   *again;
	double	   *labels = md_labels_double(test);
	double	   *prob = palloc(sizeof(double) * test->nrows);
	double	   *prob2 = palloc(sizeof(double) * test->nrows);
	double	   *margin = palloc(sizeof(double) * test->nrows);
	double	   *contrib = palloc(sizeof(double) * test->nrows * (N_FEATURES + 1));
	char	   *bytes,
			   *bytes2;
	size_t		len,
				len2;
	double		auc,
				worst = 0;
	int			i;

	xgb_default_params(&params, false);
	if (!no_error(xgb_train(train, &params, &model), "XGBoost trains a classifier"))
		return;
	no_error(xgb_predict(model, test->x, test->nrows, N_FEATURES, prob), "XGBoost predicts");
	auc = mm_roc_auc(prob, labels, test->nrows);
	ok(auc > 0.9, "XGBoost held-out ROC-AUC > 0.9");
	printf("#   XGBoost held-out ROC-AUC %.4f, PR-AUC %.4f, Brier %.4f, log loss %.4f\n",
		   auc, mm_average_precision(prob, labels, test->nrows),
		   mm_brier(prob, labels, test->nrows), mm_log_loss(prob, labels, test->nrows));

	no_error(xgb_serialize(model, &bytes, &len), "XGBoost model serializes");
	ok(len > XGB_ENVELOPE_BYTES + 2 && memcmp(bytes, "SEXG", 4) == 0 &&
	   bytes[XGB_ENVELOPE_BYTES] == '{' && bytes[XGB_ENVELOPE_BYTES + 1] != '"',
	   "XGBoost model bytes are UBJSON in our envelope");
	printf("#   XGBoost %d, model %zu bytes (UBJSON + %d-byte envelope)\n",
		   xgb_version(), len, XGB_ENVELOPE_BYTES);
	if (no_error(xgb_deserialize(bytes, len, &loaded), "XGBoost model loads back") &&
		no_error(xgb_predict(loaded, test->x, test->nrows, N_FEATURES, prob2),
				 "the loaded model predicts"))
	{
		ok(memcmp(prob, prob2, sizeof(double) * test->nrows) == 0,
		   "the loaded model's predictions are identical");
		ok(loaded->n_features == N_FEATURES && !loaded->regression,
		   "the loaded model knows its kind and width");
	}

	no_error(xgb_predict_margin(model, test->x, test->nrows, N_FEATURES, margin),
			 "XGBoost margins");
	for (i = 0; i < test->nrows; i++)
		worst = Max(worst, fabs(sigmoid(margin[i]) - prob[i]));
	ok(worst < 1e-6, "probability = sigmoid(margin)");
	no_error(xgb_contributions(model, test->x, test->nrows, N_FEATURES, contrib),
			 "XGBoost SHAP contributions");
	worst = max_contribution_gap(contrib, margin, test->nrows, N_FEATURES);
	ok(worst < 1e-4, "SHAP contributions + bias sum to the margin within 1e-4");
	printf("#   largest |sum(SHAP) - margin| %.3g\n", worst);
	ok(mean_abs_contribution(contrib, test->nrows, 0) >
	   3 * mean_abs_contribution(contrib, test->nrows, 2),
	   "SHAP: x1 matters far more than the noise feature x3");

	ok(xgb_predict(model, test->x, test->nrows, 2, prob2) != NULL,
	   "a prediction with the wrong width is refused");
	test_xgb_bad_bytes(bytes, len);

	/* same data, same parameters: same bytes */
	xgb_free(loaded);
	if (xgb_train(train, &params, &again) == NULL &&
		xgb_serialize(again, &bytes2, &len2) == NULL)
	{
		ok(len2 == len && memcmp(bytes, bytes2, len) == 0,
		   "training twice gives the same model bytes");
		pfree(bytes2);
	}
	else
		ok(false, "training twice gives the same model bytes");
	xgb_free(again);

	params.max_depth = 0;
	ok(xgb_train(train, &params, &again) != NULL, "max_depth 0 is refused");

	pfree(bytes);
	xgb_free(model);
	pfree(labels);
	pfree(prob);
	pfree(prob2);
	pfree(margin);
	pfree(contrib);
}

static bool
cancel_now(void *arg)
{
	return (*(int *) arg)++ >= 3;
}

static void
test_xgb_misc(const ModelData *train)
{
	XgbParams	params;
	XgbModel   *model;
	ModelData	reg,
				reg_train,
				reg_test;
	double	   *pred,
			   *actual;
	double		rmse,
				r2;
	int			calls = 0;

	xgb_default_params(&params, false);
	params.cancel_requested = cancel_now;
	params.cancel_arg = &calls;
	ok(xgb_train(train, &params, &model) != NULL && model == NULL && calls == 4,
	   "a cancellation request stops training between rounds");

	make_synthetic(&reg, N_SYNTH, true);
	md_split_fraction(&reg, 0.25, &reg_train, &reg_test);
	xgb_default_params(&params, true);
	if (!no_error(xgb_train(&reg_train, &params, &model), "XGBoost trains a regressor"))
		return;
	pred = palloc(sizeof(double) * reg_test.nrows);
	actual = md_labels_double(&reg_test);
	xgb_predict(model, reg_test.x, reg_test.nrows, N_FEATURES, pred);
	mm_rmse_r2(pred, actual, reg_test.nrows, &rmse, &r2);
	ok(r2 > 0.9, "XGBoost regressor held-out R squared > 0.9");
	printf("#   XGBoost regressor RMSE %.4f, R2 %.4f\n", rmse, r2);
	xgb_free(model);
	pfree(pred);
	pfree(actual);
	md_free(&reg);
}

/* ---- liblinear ---- */

static void
test_linear_classifier(const ModelData *train, const ModelData *test)
{
	LinearParams params;
	LinearModel *model,
			   *loaded;
	double	   *labels = md_labels_double(test);
	double	   *prob = palloc(sizeof(double) * test->nrows);
	double	   *prob2 = palloc(sizeof(double) * test->nrows);
	double	   *margin = palloc(sizeof(double) * test->nrows);
	double	   *contrib = palloc(sizeof(double) * test->nrows * (N_FEATURES + 1));
	MMClassifierReport report;
	char	   *bytes;
	size_t		len;

	linear_default_params(&params, false);
	if (!no_error(linear_train(train, &params, &model), "liblinear trains a logistic regression"))
		return;
	linear_predict(model, test->x, test->nrows, N_FEATURES, prob);
	mm_classifier_report(prob, labels, test->nrows, 50, &report);
	ok(report.roc_auc > 0.9, "logistic regression held-out ROC-AUC > 0.9");
	printf("#   logistic regression held-out ROC-AUC %.4f, PR-AUC %.4f, Brier %.4f, "
		   "precision@50 %.2f, %d calibration bins\n",
		   report.roc_auc, report.pr_auc, report.brier, report.precision_at_k,
		   report.n_calibration);
	printf("#   standardised weights %.3f %.3f %.3f, bias %.3f\n",
		   model->weights[0], model->weights[1], model->weights[2], model->bias);
	ok(model->weights[0] > 1 && model->weights[1] < -0.5 &&
	   fabs(model->weights[2]) < 0.3, "coefficients: x1 up, x2 down, x3 near 0");

	bytes = linear_serialize(model, &len);
	ok(len == LINEAR_HEADER_BYTES + 3 * 8 * N_FEATURES, "linear model serializes to 112 bytes");
	if (no_error(linear_deserialize(bytes, len, &loaded), "linear model loads back"))
	{
		linear_predict(loaded, test->x, test->nrows, N_FEATURES, prob2);
		ok(memcmp(prob, prob2, sizeof(double) * test->nrows) == 0,
		   "the loaded linear model's predictions are identical");
		linear_free(loaded);
	}

	linear_predict_margin(model, test->x, test->nrows, N_FEATURES, margin);
	linear_contributions(model, test->x, test->nrows, N_FEATURES, contrib);
	ok(max_contribution_gap(contrib, margin, test->nrows, N_FEATURES) < 1e-9,
	   "linear contributions + bias sum to the margin");
	ok(linear_predict(model, test->x, test->nrows, 4, prob2) != NULL,
	   "a linear prediction with the wrong width is refused");

	pfree(bytes);
	linear_free(model);
	pfree(labels);
	pfree(prob);
	pfree(prob2);
	pfree(margin);
	pfree(contrib);
}

/* Every prefix, a trailing byte and a few corruptions must be refused. */
static void
test_linear_deserializer(const ModelData *train)
{
	LinearParams params;
	LinearModel *model,
			   *loaded;
	char	   *bytes,
			   *longer;
	size_t		len,
				cut;
	bool		all_refused = true;
	double		nan = NAN;

	linear_default_params(&params, false);
	if (linear_train(train, &params, &model) != NULL)
		abort();
	bytes = linear_serialize(model, &len);
	for (cut = 0; cut < len; cut++)
	{
		if (linear_deserialize(bytes, cut, &loaded) == NULL || loaded != NULL)
			all_refused = false;
	}
	ok(all_refused, "every truncation of a linear model is refused");

	longer = palloc(len + 1);
	memcpy(longer, bytes, len);
	longer[len] = 0;
	ok(linear_deserialize(longer, len + 1, &loaded) != NULL, "a trailing byte is refused");
	longer[0] = 'X';
	ok(linear_deserialize(longer, len, &loaded) != NULL, "a bad magic is refused");
	memcpy(longer, bytes, len);
	longer[12] = 4;				/* n_features 3 -> 4: length mismatch */
	ok(linear_deserialize(longer, len, &loaded) != NULL, "a wrong feature count is refused");
	memcpy(longer, bytes, len);
	memcpy(longer + LINEAR_HEADER_BYTES + 3 * 8, &nan, 8);	/* stds[0] */
	ok(linear_deserialize(longer, len, &loaded) != NULL, "a NaN std is refused");
	memcpy(longer, bytes, len);
	longer[8] = 7;				/* kind */
	ok(linear_deserialize(longer, len, &loaded) != NULL, "an unknown kind is refused");

	pfree(longer);
	pfree(bytes);
	linear_free(model);
}

/* A copy of train whose first row is the first row of label first_label. */
static void
reorder_first(const ModelData *train, float first_label, ModelData *md)
{
	int			first = 0,
				i;

	while (first < train->nrows - 1 && train->y[first] != first_label)
		first++;
	md_init(md, N_FEATURES, false);
	md_append_row(md, md_row(train, first), train->y[first], 1);
	for (i = 0; i < train->nrows; i++)
		if (i != first)
			md_append_row(md, md_row(train, i), train->y[i], 1);
}

/*
 * liblinear's sign convention follows the first label it sees: the weights
 * must come out the same whether the first row is a failure or not.
 */
static void
test_linear_label_order(const ModelData *train)
{
	LinearParams params;
	LinearModel *pos_first,
			   *neg_first;
	ModelData	a,
				b;

	reorder_first(train, 1, &a);
	reorder_first(train, 0, &b);
	linear_default_params(&params, false);
	if (a.y[0] == 1 && b.y[0] == 0 &&
		linear_train(&a, &params, &pos_first) == NULL &&
		linear_train(&b, &params, &neg_first) == NULL)
	{
		ok(pos_first->weights[0] > 1 && pos_first->weights[1] < -0.5 &&
		   neg_first->weights[0] > 1 && neg_first->weights[1] < -0.5 &&
		   fabs(pos_first->weights[0] - neg_first->weights[0]) < 0.01,
		   "same coefficients whether the first row is positive or negative");
		linear_free(pos_first);
		linear_free(neg_first);
	}
	else
		ok(false, "same coefficients whether the first row is positive or negative");
	md_free(&a);
	md_free(&b);
}

static void
test_linear_misc(void)
{
	LinearParams params;
	LinearModel *model;
	ModelData	reg,
				reg_train,
				reg_test,
				single,
				weighted;
	double	   *pred,
			   *actual,
			   *contrib,
			   *margin;
	double		rmse,
				r2,
				worst = 0;
	int			i,
				j;

	md_init(&single, 1, false);
	md_append_row(&single, (const float[]) {1}, 0, 1);
	md_append_row(&single, (const float[]) {2}, 0, 1);
	linear_default_params(&params, false);
	ok(linear_train(&single, &params, &model) != NULL && model == NULL,
	   "a single-class training set is refused");
	md_free(&single);
	md_init(&weighted, 1, true);
	md_append_row(&weighted, (const float[]) {1}, 0, 2);
	md_append_row(&weighted, (const float[]) {2}, 1, 1);
	ok(linear_train(&weighted, &params, &model) != NULL, "row weights are refused by liblinear");
	md_free(&weighted);

	make_synthetic(&reg, N_SYNTH, true);
	md_split_fraction(&reg, 0.25, &reg_train, &reg_test);
	linear_default_params(&params, true);
	if (!no_error(linear_train(&reg_train, &params, &model), "liblinear trains a ridge regression"))
		return;
	pred = palloc(sizeof(double) * reg_test.nrows);
	margin = palloc(sizeof(double) * reg_test.nrows);
	contrib = palloc(sizeof(double) * reg_test.nrows * (N_FEATURES + 1));
	actual = md_labels_double(&reg_test);
	linear_predict(model, reg_test.x, reg_test.nrows, N_FEATURES, pred);
	mm_rmse_r2(pred, actual, reg_test.nrows, &rmse, &r2);
	ok(r2 > 0.95, "ridge regression held-out R squared > 0.95");
	printf("#   ridge regression RMSE %.4f, R2 %.4f\n", rmse, r2);
	linear_contributions(model, reg_test.x, reg_test.nrows, N_FEATURES, contrib);
	for (i = 0; i < reg_test.nrows; i++)
	{
		double		sum = 0;

		for (j = 0; j <= N_FEATURES; j++)
			sum += contrib[i * (N_FEATURES + 1) + j];
		worst = Max(worst, fabs(sum - pred[i]));
	}
	ok(worst < 1e-9, "regression contributions + bias sum to the prediction");
	linear_free(model);
	pfree(pred);
	pfree(margin);
	pfree(contrib);
	pfree(actual);
	md_free(&reg);
}

/* Drift of the synthetic features: train vs test are the same distribution. */
static void
test_feature_drift(const ModelData *train, const ModelData *test)
{
	double	   *a = palloc(sizeof(double) * train->nrows);
	double	   *b = palloc(sizeof(double) * test->nrows);
	double		psi;
	int			i;

	for (i = 0; i < train->nrows; i++)
		a[i] = md_row(train, i)[0];
	for (i = 0; i < test->nrows; i++)
		b[i] = md_row(test, i)[0];
	psi = mm_psi(a, train->nrows, b, test->nrows);
	ok(psi < 0.1, "PSI of x1, training vs test rows, < 0.1");
	printf("#   PSI x1 train/test %.4f\n", psi);
	pfree(a);
	pfree(b);
}

int
main(void)
{
	ModelData	data,
				train,
				test;

	test_ranking_metrics();
	test_probability_metrics();
	test_decision_metrics();
	test_calibration();
	test_psi();
	test_model_data();

	make_synthetic(&data, N_SYNTH, false);
	if (md_split_fraction(&data, 0.25, &train, &test) != NULL)
		abort();
	printf("# synthetic set: %d training rows (%d positive), %d test rows\n",
		   train.nrows, md_count_positive(&train), test.nrows);
	test_xgb_classifier(&train, &test);
	test_xgb_misc(&train);
	ok(thread_count() == 1, "XGBoost started no thread (training, loading, predicting)");
	test_linear_classifier(&train, &test);
	test_linear_deserializer(&train);
	test_linear_label_order(&train);
	test_linear_misc();
	test_feature_drift(&train, &test);
	md_free(&data);

	printf("1..%d\n", n_tests);
	if (n_failed > 0)
		printf("# %d of %d tests failed\n", n_failed, n_tests);
	return n_failed > 0 ? 1 : 0;
}
