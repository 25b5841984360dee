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
 * truncation, and the PSI of identical and shifted samples.  Then the
 * failure-risk pieces: the current features on a hand-made history
 * (values worked out in the comments) and their independence of the
 * date, the labels, the baseline models, Platt scaling and the weighted
 * ROC-AUC, and the rolling-origin choice: on pure noise a baseline is
 * served, on a pattern only a learned model can see the learned one is.
 *
 * Built with -DFRONTEND against postgres_fe.h and PostgreSQL's frontend
 * libraries by test/predict/run.sh.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <math.h>

#include "predict/model_baseline.h"
#include "predict/model_data.h"
#include "predict/model_linear.h"
#include "predict/model_metrics.h"
#include "predict/model_xgb.h"
#include "predict/risk_backtest.h"
#include "predict/risk_features.h"

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


/* ---- failure risk ---- */

#define DAY 86400.0

/*
 * 14 daily runs at 02:00 (ending 02:10) from t0; runs 7 and 13 failed
 * (a week apart), with error templates 11 and 12.
 */
static int
make_history(RiskRun *runs, double t0)
{
	int			i;

	memset(runs, 0, sizeof(RiskRun) * 14);
	for (i = 0; i < 14; i++)
	{
		runs[i].start = t0 + i * DAY + 2 * 3600;
		runs[i].at = runs[i].start + 600;
		runs[i].failed = i == 7 || i == 13;
		runs[i].finished = true;
		runs[i].duration_s = 600;
		runs[i].rows_written = -1;
		runs[i].attempt = 1;
		runs[i].template_id = i == 7 ? 11 : i == 13 ? 12 : 0;
	}
	risk_mark_first_templates(runs, 14);
	return 14;
}

static double
feature(const double *f, const char *name)
{
	int			i;

	for (i = 0; i < RISK2_NFEATURES; i++)
		if (strcmp(risk_feature2_names[i], name) == 0)
			return f[i];
	abort();
}

static void
test_risk_features(void)
{
	RiskRun		runs[14],
				later[14];
	double		f[RISK2_NFEATURES],
				g[RISK2_NFEATURES],
				fails[14];
	double		t0 = 1704067200.0;	/* 2024-01-01 */
	double		t = t0 + 14 * DAY + 3600;	/* day 14, 01:00 */
	int			n = make_history(runs, t0),
				nf,
				i;
	bool		same = true;

	risk_features2_at(runs, n, t, DAY, f);
	/* failures known at day 13 02:10 (22h50 ago) and day 7 02:10 (6 days 22h50 ago) */
	is_near(feature(f, "fail_count_7d"), 2, 0, "v2: two failures in the last 7 days");
	is_near(feature(f, "fail_days_7d"), 2, 0, "v2: on 2 of the last 7 days");
	is_near(feature(f, "fail_rate_7d"), 2.0 / 7, 1e-12, "v2: 2 of the 7 runs of the week failed");
	is_near(feature(f, "last_failed"), 1, 0, "v2: the last run failed");
	is_near(feature(f, "consecutive_failures"), 1, 0, "v2: one failure in a row");
	is_near(feature(f, "hours_since_failure"), 22 + 50.0 / 60, 1e-9, "v2: 22h50 since the failure");
	is_near(feature(f, "hours_since_success"), 46 + 50.0 / 60, 1e-9, "v2: 46h50 since the last success");
	is_near(feature(f, "runs_per_day_7d"), 1, 1e-12, "v2: one run a day");
	is_near(feature(f, "expected_runs_horizon"), 1, 1e-12, "v2: one run expected within a day");
	/* (day 7 01:00, day 8 01:00] holds the day-7 failure; two weeks back the pipeline did not exist */
	is_near(feature(f, "failed_same_window_1w"), 1, 0, "v2: failed in the same window a week ago");
	is_near(feature(f, "weekly_repeat"), 1, 0, "v2: in 1 of the 1 past weeks");
	is_near(feature(f, "new_templates_1d"), 1, 0, "v2: a new error template since yesterday");
	is_near(feature(f, "new_templates_7d"), 2, 0, "v2: two new templates this week");
	is_near(feature(f, "duration_trend_7d"), 0, 1e-9, "v2: no duration trend");

	/* the same history a year later: identical features (no calendar, no history length) */
	make_history(later, t0 + 365 * DAY);
	risk_features2_at(later, n, t + 365 * DAY, DAY, g);
	for (i = 0; i < RISK2_NFEATURES; i++)
		same = same && fabs(f[i] - g[i]) < 1e-9;
	ok(same, "v2: a year later the same history has the same features");

	/* a run not yet known at t is not read: at day 13 02:05 the day-13 failure is still running */
	risk_features2_at(runs, n, t0 + 13 * DAY + 2 * 3600 + 300, DAY, g);
	is_near(feature(g, "fail_count_7d"), 1, 0, "v2: a run still going is not read");

	/* labels: a failure starting within (t, t + horizon] */
	nf = risk_failed_starts(runs, n, fails);
	ok(nf == 2, "two failed runs");
	is_near(risk_label(fails, nf, t0 + 13 * DAY + 3600, DAY), 1, 0, "label 1: the day-13 run fails within the day");
	is_near(risk_label(fails, nf, t, DAY), 0, 0, "label 0 after the last failure");
	is_near(risk_label(fails, nf, t0 + 13 * DAY + 2 * 3600, DAY), 0, 0, "label 0: a run starting at t is not within (t, t + h]");
}

static void
test_baseline_model(void)
{
	BaselineModel *m = baseline_make(1, RISK2_NFEATURES),
			   *back = NULL;
	float		x[RISK2_NFEATURES] = {0};
	double		margin,
				contrib[RISK2_NFEATURES + 1];
	size_t		len;
	char	   *bytes = baseline_serialize(m, &len);
	char		bad[BASELINE_BYTES];

	ok(strcmp(baseline_specs[1].name, "fail_count_7d") == 0, "baseline 1 is the 7-day failure count");
	x[RF_FAIL_COUNT_7D] = 3;
	no_error(baseline_predict_margin(m, x, 1, RISK2_NFEATURES, &margin), "baseline margin");
	is_near(margin, log(4.0), 1e-12, "the count baseline scores log(1 + 3)");
	no_error(baseline_contributions(m, x, 1, RISK2_NFEATURES, contrib), "baseline contributions");
	is_near(contrib[RF_FAIL_COUNT_7D], log(4.0), 1e-12, "all of it on its feature");
	no_error(baseline_deserialize(bytes, len, &back), "baseline bytes load");
	ok(back && back->feature == RF_FAIL_COUNT_7D && back->transform == BASELINE_LOG1P, "same baseline after loading");
	ok(baseline_deserialize(bytes, len - 1, &back) != NULL, "truncated baseline bytes refused");
	memcpy(bad, bytes, len);
	bad[12] = 100;				/* feature 100 of 28 */
	ok(baseline_deserialize(bad, len, &back) != NULL, "an out-of-range feature refused");
	ok(baseline_predict_margin(m, x, 1, 3, &margin) != NULL, "a row of another width refused");
}

static void
test_platt_and_weighted_auc(void)
{
	int			order[4] = {0, 2, 1, 3};	/* ex_pred ascending: 0.1 0.35 0.4 0.8 */
	double		w2[4] = {1, 2, 1, 1};
	int			n = 5000,
				i;
	double	   *s = palloc(sizeof(double) * n);
	float	   *y = palloc(sizeof(float) * n);
	double		a,
				b;

	is_near(risk_weighted_auc(order, ex_pred, (float[]) {0, 0, 1, 1}, NULL, 4), 0.75, 1e-12,
			"weighted ROC-AUC with unit weights: 0.75 as mm_roc_auc");
	/* weight 2 on the positive 0.35: positives 0.35 (x2) and 0.8 against negatives 0.1 and 0.4: (2*1 + 1*2) / (3*2) */
	is_near(risk_weighted_auc(order, ex_pred, (float[]) {0, 0, 1, 1}, w2, 4), 4.0 / 6, 1e-12,
			"weighted ROC-AUC counts a row twice");
	for (i = 0; i < n; i++)
	{
		s[i] = rng_normal();
		y[i] = rng_uniform() < 1 / (1 + exp(-(2 * s[i] - 1))) ? 1 : 0;
	}
	no_error(risk_platt_fit(s, y, n, &a, &b), "Platt fit");
	ok(fabs(a - 2) < 0.3 && fabs(b + 1) < 0.2, "Platt recovers sigmoid(2 s - 1)");
	printf("#   a %.3f b %.3f\n", a, b);
	for (i = 0; i < n; i++)
		y[i] = 0;
	no_error(risk_platt_fit(s, y, n, &a, &b), "Platt fit on one class");
	ok(a == 1 && b < -5, "one class: the order kept, the mean at a smoothed rate near 0");
	pfree(s);
	pfree(y);
}

/*
 * Samples of 40 pipelines every 6 hours for 60 days: label 1 with
 * probability 0.1 (noise), or (pattern) whenever the pipeline's
 * weekly_repeat feature is 1, which no baseline reads.  Baseline
 * features are drawn so that they carry no information.
 */
static void
make_risk_samples(RiskSamples *rs, bool pattern)
{
	int			n = 40 * 240,
				i = 0,
				k,
				p;

	if (md_init(&rs->md, RISK2_NFEATURES, false) != NULL)
		abort();
	rs->t = palloc(sizeof(double) * n);
	rs->group = palloc(sizeof(int64_t) * n);
	for (k = 0; k < 240; k++)
		for (p = 0; p < 40; p++, i++)
		{
			float		x[RISK2_NFEATURES] = {0};
			float		label;

			x[RF_FAIL_RATE_7D] = (float) rng_uniform() * 0.3f;
			x[RF_FAIL_COUNT_7D] = (float) floor(rng_uniform() * 4);
			x[RF_LAST_FAILED] = rng_uniform() < 0.1;
			x[RF_WEEKLY_REPEAT] = rng_uniform() < 0.2;
			x[RF_RUNS_PER_DAY_7D] = (float) (1 + p % 5);
			if (pattern)
				label = x[RF_WEEKLY_REPEAT] > 0 ? (rng_uniform() < 0.8) : (rng_uniform() < 0.05);
			else
				label = rng_uniform() < 0.1;
			if (md_append_row(&rs->md, x, label, 1) != NULL)
				abort();
			rs->t[i] = 1704067200.0 + k * 21600.0;
			rs->group[i] = p;
		}
}

static void
test_risk_backtest(void)
{
	RiskSamples noise,
				pattern;
	RiskBacktestParams p;
	RiskBacktestResult r;
	const char *err;

	risk_backtest_default_params(&p);
	p.xgb.n_rounds = 50;
	p.linear = true;
	make_risk_samples(&noise, false);
	if (no_error(risk_backtest(&noise, &p, NULL, NULL, &r), "backtest on noise"))
	{
		ok(r.ncandidates == 5, "3 baselines and 2 learned candidates");
		ok(r.served < BASELINE_COUNT, "noise: a baseline is served");
		ok(r.candidates[r.served].served, "the served candidate says so");
		ok(r.candidates[3].report.n == r.scored_rows && r.candidates[0].report.n == r.scored_rows,
		   "every candidate scored on the same rows");
		ok(r.candidates[0].nblocks == 3, "3 scored folds");
		ok(fabs(r.candidates[3].report.roc_auc - 0.5) < 0.05, "noise: the learned model is no better than chance");
		printf("#   noise: served %s, xgboost ROC-AUC %.3f gain %.3f se %.3f\n", r.candidates[r.served].name,
			   r.candidates[3].report.roc_auc, r.candidates[3].gain, r.candidates[3].gain_se);
	}
	make_risk_samples(&pattern, true);
	p.final = true;
	if (no_error(risk_backtest(&pattern, &p, NULL, NULL, &r), "backtest on a pattern"))
	{
		ok(r.served >= BASELINE_COUNT, "pattern: a learned model is served");
		ok(r.candidates[r.served].gain > 0.2 && r.candidates[r.served].gain_se < 0.05,
		   "its gain over the best baseline is large and sure");
		ok(r.candidates[r.served].report.brier < r.candidates[r.best_baseline].report.brier,
		   "and its calibrated Brier score is lower");
		ok(r.candidates[3].xgb != NULL && r.candidates[3].train_rows == pattern.md.nrows,
		   "final: the learned model trained on every sample");
		ok(r.candidates[r.served].platt_a > 0, "served with an increasing calibration");
		printf("#   pattern: served %s, ROC-AUC %.3f against %.3f (%s)\n", r.candidates[r.served].name,
			   r.candidates[r.served].report.roc_auc, r.candidates[r.best_baseline].report.roc_auc,
			   r.candidates[r.best_baseline].name);
		risk_backtest_free(&r);
	}
	/* an evaluated period starting before any label is known */
	p.from = pattern.t[0];
	p.until = pattern.t[0] + 3 * 86400;
	err = risk_backtest(&pattern, &p, NULL, NULL, &r);
	ok(err != NULL && strstr(err, "not enough history") != NULL, "too little history is an error");
	risk_backtest_free(&r);
	md_free(&noise.md);
	md_free(&pattern.md);
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

	test_risk_features();
	test_baseline_model();
	test_platt_and_weighted_auc();
	test_risk_backtest();

	printf("1..%d\n", n_tests);
	if (n_failed > 0)
		printf("# %d of %d tests failed\n", n_failed, n_tests);
	return n_failed > 0 ? 1 : 0;
}
