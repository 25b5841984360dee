/*-------------------------------------------------------------------------
 * src/predict/model_linear.h
 *		Regularised linear models through liblinear (Debian's liblinear-dev,
 *		2.3): logistic regression for failure risk, ridge regression for the
 *		generic smartetl.train on a numeric target.
 *
 * The interpretable alternative to XGBoost.  Features are standardised
 * with the training rows' means and standard deviations, kept with the
 * model, so the coefficients are comparable with each other ("one standard
 * deviation more of this feature multiplies the odds of failure by
 * exp(w)"), and the contribution of a feature to one prediction is simply
 * w_j * z_j, z_j its standardised value.  A NaN feature is imputed with the
 * training mean (z = 0, no contribution).  A constant feature gets std 1.
 *
 *	- classifier: liblinear L2R_LR (L2-regularised logistic regression,
 *	  cost C, with a bias term); P(failure) = 1 / (1 + exp(-margin)),
 *	  margin = bias + sum_j w_j z_j.  Contributions are in logit units.
 *	- regressor: L2R_L2LOSS_SVR with epsilon 0 (ridge regression) on the
 *	  standardised target; prediction = target_mean + target_std * margin,
 *	  contributions in target units.
 * In both cases a row's contributions plus its bias term sum to its margin
 * (classifier) or prediction (regressor), as with XGBoost's SHAP values.
 *
 * liblinear 2.3 has no per-row weights: a ModelData with weights is
 * rejected; positive_weight reweights the positive class instead.
 * liblinear's own model (malloc'd) lives only inside linear_train; what is
 * kept is our LinearModel, palloc'd, with our own compact serialization
 * (little-endian, fixed layout, validated on load because a bytea can come
 * from anywhere):
 *		"SELR"  u32 version  u32 kind (0 classifier, 1 regressor)
 *		u32 n_features  f64 bias  f64 target_mean  f64 target_std
 *		f64 means[n]  f64 stds[n]  f64 weights[n]
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_LINEAR_H
#define SMARTETL_MODEL_LINEAR_H

#include <stdbool.h>
#include <stddef.h>

#include "predict/model_data.h"

#define LINEAR_FORMAT_VERSION 1
#define LINEAR_HEADER_BYTES (4 + 3 * 4 + 3 * 8)

typedef struct LinearParams
{
	bool		regression;
	double		C;				/* inverse regularisation, default 1 */
	double		eps;			/* stopping tolerance, default 0.01 / 0.0001 */
	double		positive_weight;	/* classifier: cost multiplier of
									 * positives, default 1 */
} LinearParams;

typedef struct LinearModel
{
	bool		regression;
	int			n_features;
	double	   *means;			/* [n_features] training means */
	double	   *stds;			/* [n_features] training std devs, > 0 */
	double	   *weights;		/* [n_features] standardised coefficients */
	double		bias;
	double		target_mean;	/* regressor; 0 for a classifier */
	double		target_std;		/* regressor; 1 for a classifier */
} LinearModel;

extern void linear_default_params(LinearParams *p, bool regression);

/*
 * Train on all rows of train.  A classifier needs 0/1 labels and both
 * classes.  On success *out is palloc'd (release with linear_free).
 */
extern const char *linear_train(const ModelData *train, const LinearParams *params,
								LinearModel **out);

/* Probabilities (classifier) or values (regressor) into out[nrows]. */
extern const char *linear_predict(const LinearModel *model, const float *x,
								  int nrows, int ncols, double *out);

/* bias + sum_j w_j z_j per row into out[nrows]. */
extern const char *linear_predict_margin(const LinearModel *model, const float *x,
										 int nrows, int ncols, double *out);

/* out[nrows * (ncols + 1)]: per row ncols contributions then the bias term. */
extern const char *linear_contributions(const LinearModel *model, const float *x,
										int nrows, int ncols, double *out);

/* palloc'd bytes of the layout above, and their length. */
extern char *linear_serialize(const LinearModel *model, size_t *len);

/*
 * Parse linear_serialize's bytes: NULL and a palloc'd *out, or a static
 * message (truncated, trailing bytes, bad magic or version, feature count
 * out of range, a non-finite number, a non-positive std) and *out NULL.
 */
extern const char *linear_deserialize(const char *buf, size_t len,
									  LinearModel **out);

/* Release the model and its arrays; NULL is allowed. */
extern void linear_free(LinearModel *model);

#endif							/* SMARTETL_MODEL_LINEAR_H */
