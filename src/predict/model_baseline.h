/*-------------------------------------------------------------------------
 * src/predict/model_baseline.h
 *		The obvious baselines of failure risk as models of the registry:
 *		the failure rate of the last 7 days, the failure count of the last
 *		7 days, and the last outcome repeated.
 *
 * A baseline reads one of the current risk features (risk_features.h)
 * and scores g(x): the rate and the last outcome as they are, the count
 * as log(1 + count).  Its "probability" before calibration is
 * sigmoid(g(x)), so that the Platt calibration every risk model gets,
 * sigmoid(a * logit(p) + b), is a logistic fit on g(x) itself: served
 * calibrated, a baseline says "pipelines that failed 3 times last week
 * failed within the day 41 % of the time".  Its contributions put the
 * whole margin g(x) on its one feature.
 *
 * Bytes (little-endian, checked on load):
 *		"SEBL"  u32 version  u32 n_features  u32 feature  u32 transform
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_BASELINE_H
#define SMARTETL_MODEL_BASELINE_H

#include <stdbool.h>
#include <stddef.h>

#define BASELINE_FORMAT_VERSION 1
#define BASELINE_BYTES 20
#define BASELINE_COUNT 3

typedef enum BaselineTransform
{
	BASELINE_IDENTITY = 0,
	BASELINE_LOG1P = 1
} BaselineTransform;

typedef struct BaselineModel
{
	int			n_features;
	int			feature;		/* index into the feature vector */
	BaselineTransform transform;
} BaselineModel;

/* The baselines, in the order they are listed and preferred on ties. */
typedef struct BaselineSpec
{
	const char *name;			/* the feature's name, e.g. "fail_count_7d" */
	const char *description;	/* "failure count of the last 7 days" */
	int			feature;
	BaselineTransform transform;
} BaselineSpec;

extern const BaselineSpec baseline_specs[BASELINE_COUNT];

/* g(x) of one feature value. */
extern double baseline_score(BaselineTransform transform, double x);

/* A palloc'd model for baseline_specs[i] over n_features features. */
extern BaselineModel *baseline_make(int i, int n_features);

extern const char *baseline_predict(const BaselineModel *m, const float *x, int nrows,
									int ncols, double *out);
extern const char *baseline_predict_margin(const BaselineModel *m, const float *x, int nrows,
										   int ncols, double *out);
extern const char *baseline_contributions(const BaselineModel *m, const float *x, int nrows,
										  int ncols, double *out);
extern char *baseline_serialize(const BaselineModel *m, size_t *len);
extern const char *baseline_deserialize(const char *buf, size_t len, BaselineModel **out);
extern void baseline_free(BaselineModel *m);

#endif							/* SMARTETL_MODEL_BASELINE_H */
