/*-------------------------------------------------------------------------
 * src/predict/model_metrics.h
 *		Evaluation metrics for the failure-risk models and the generic
 *		train/predict, and the population stability index for drift.
 *
 * Classifier metrics take predicted probabilities of the positive class and
 * 0/1 labels (a label > 0.5 counts as positive):
 *	- ROC-AUC, tied scores counted as half a correct ordering (average rank,
 *	  the Mann-Whitney statistic);
 *	- PR-AUC as average precision, sum over distinct thresholds of
 *	  (R_t - R_t-1) * P_t, as scikit-learn computes it (no interpolation);
 *	- Brier score; log loss with p clipped to [1e-15, 1 - 1e-15];
 *	- precision and recall among the k highest scores (ties broken by row
 *	  order, earlier row first, so the result is deterministic);
 *	- a calibration table over equal-frequency bins of the predictions;
 *	- accuracy and F1 of the decision p >= 0.5.
 * Regressor metrics: RMSE and R^2.
 *
 * A metric that is undefined for the data (AUC with a single class, R^2 of a
 * constant target, anything over zero rows, a NaN prediction) is NaN; the
 * SQL layer writes it as JSON null, since jsonb has no NaN.
 *
 * Drift: the population stability index of one feature between a reference
 * sample (the training rows) and a current one, over 10 bins cut at the
 * reference's deciles (percentile_cont, so SQL can reproduce them):
 *		PSI = sum_b (a_b - e_b) * ln(a_b / e_b)
 * with e_b, a_b the reference and current shares of bin b, each at least
 * MM_PSI_EPSILON so an empty bin does not divide by zero.  The reference
 * side can be computed once at training time (MMPsiReference: 9 cut points
 * and 10 shares, a few bytes to keep with the model) and compared later
 * without the training sample.  Usual reading: < 0.1 stable, 0.1-0.25
 * moderate shift, > 0.25 significant shift.  NaN values are ignored.
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_METRICS_H
#define SMARTETL_MODEL_METRICS_H

#include <stdbool.h>

#define MM_LOGLOSS_CLIP 1e-15
#define MM_CALIBRATION_BINS 10
#define MM_PSI_BINS 10
#define MM_PSI_EPSILON 1e-4

extern double mm_roc_auc(const double *pred, const double *label, int n);
extern double mm_average_precision(const double *pred, const double *label, int n);
extern double mm_brier(const double *pred, const double *label, int n);
extern double mm_log_loss(const double *pred, const double *label, int n);

/* k is clamped to [0, n]; precision is NaN for k = 0, recall without positives */
extern void mm_top_k(const double *pred, const double *label, int n, int k,
					 double *precision, double *recall);

typedef struct MMCalibrationBin
{
	double		mean_predicted;
	double		observed_rate;	/* share of positives */
	int			count;
} MMCalibrationBin;

/*
 * Sort by prediction and cut into nbins groups of n / nbins rows (sizes
 * differ by at most one).  Writes only the non-empty bins, lowest
 * predictions first, into bins[0 .. nbins-1]; returns how many it wrote.
 */
extern int	mm_calibration(const double *pred, const double *label, int n,
						   int nbins, MMCalibrationBin *bins);

/* decision pred >= 0.5; F1 is 0 when there are no true positives */
extern void mm_accuracy_f1(const double *pred, const double *label, int n,
						   double *accuracy, double *f1);

extern void mm_rmse_r2(const double *pred, const double *actual, int n,
					   double *rmse, double *r2);

/* All classifier metrics at once, for the model registry's metrics jsonb. */
typedef struct MMClassifierReport
{
	int			n;
	int			positives;
	double		roc_auc;
	double		pr_auc;
	double		brier;
	double		log_loss;
	int			top_k;
	double		precision_at_k;
	double		recall_at_k;
	double		accuracy;
	double		f1;
	int			n_calibration;	/* bins used in calibration[] */
	MMCalibrationBin calibration[MM_CALIBRATION_BINS];
} MMClassifierReport;

extern void mm_classifier_report(const double *pred, const double *label, int n,
								 int top_k, MMClassifierReport *report);

/* The reference side of the PSI of one feature. */
typedef struct MMPsiReference
{
	double		cuts[MM_PSI_BINS - 1];	/* bin b is (cuts[b-1], cuts[b]] */
	double		shares[MM_PSI_BINS];
} MMPsiReference;

/* NULL, or an error message when the sample has no non-NaN value. */
extern const char *mm_psi_reference(const double *reference, int n,
									MMPsiReference *ref);

/* PSI of a current sample against a reference; NaN if it has no value. */
extern double mm_psi_against(const MMPsiReference *ref, const double *current,
							 int n);

/* Both steps; NaN if either sample has no non-NaN value. */
extern double mm_psi(const double *reference, int n_reference,
					 const double *current, int n_current);

#endif							/* SMARTETL_MODEL_METRICS_H */
