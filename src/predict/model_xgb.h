/*-------------------------------------------------------------------------
 * src/predict/model_xgb.h
 *		Gradient-boosted trees through the XGBoost C API (Debian's
 *		libxgboost-dev, 1.7): train, predict, SHAP contributions, and the
 *		model as bytes for a bytea column.
 *
 * This is the default failure-risk algorithm: a binary:logistic booster
 * whose predictions are probabilities of failure, and whose exact TreeSHAP
 * contributions say which features pushed a pipeline's risk up or down.
 * The same code trains a reg:squarederror booster for the generic
 * smartetl.train(... 'xgboost' ...) on a numeric target.
 *
 * Reproducible by construction: one thread, a fixed seed, no row or column
 * subsampling unless asked for, so the same rows give the same model bytes.
 * One thread also because a PostgreSQL backend must not grow threads: the
 * booster gets nthread = 1 and OpenMP itself is capped at one thread
 * (omp_set_num_threads, so link with -lgomp as well as -lxgboost).
 * A NaN feature is "missing" (XGBoost learns a default direction for it).
 *
 * Errors: every XGBoost call's return code is checked, and a failure
 * returns XGBGetLastError()'s text, copied into a static buffer (valid
 * until the next failing xgb_* call: report it before calling again).
 * XGBoost catches its C++ exceptions at the C API boundary; nothing here
 * exits or longjmps.
 *
 * Memory: outputs are palloc'd or caller-provided.  An XgbModel holds an
 * XGBoost booster allocated by XGBoost (malloc/new), which only xgb_free()
 * releases: in the backend, free it on every path (PG_FINALLY, or a
 * memory-context reset callback), since an ereport would otherwise leak it.
 * No function here pallocs while it holds a temporary DMatrix, so an
 * out-of-memory longjmp cannot leak one.
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_XGB_H
#define SMARTETL_MODEL_XGB_H

#include <stdbool.h>
#include <stddef.h>

#include "predict/model_data.h"

#define XGB_FORMAT_VERSION 1
#define XGB_ENVELOPE_BYTES (4 + 4 + 8 + 4)

typedef struct XgbParams
{
	bool		regression;		/* reg:squarederror instead of binary:logistic */
	int			max_depth;		/* default 4 */
	double		eta;			/* learning rate, default 0.1 */
	int			n_rounds;		/* boosting rounds, default 200 */
	double		min_child_weight;	/* default 1 */
	double		subsample;		/* default 1 (no sampling) */
	double		colsample_bytree;	/* share of features per tree, default 1 */
	double		lambda;			/* L2 on leaf weights, default 1 */
	double		scale_pos_weight;	/* weight of positives, default 1 */
	int			seed;			/* default 0 */
	const char *eval_metric;	/* default "logloss" / "rmse" */

	/*
	 * Checked between boosting rounds; returning true stops training with
	 * the error "training cancelled" after releasing everything.  The SQL
	 * layer passes a function testing InterruptPending, then calls
	 * CHECK_FOR_INTERRUPTS() itself once xgb_train has returned.
	 */
	bool		(*cancel_requested) (void *arg);
	void	   *cancel_arg;
} XgbParams;

typedef struct XgbModel
{
	void	   *booster;		/* BoosterHandle, owned */
	int			n_features;
	bool		regression;
} XgbModel;

/* XGBoost's version (major * 10000 + minor * 100 + patch). */
extern int	xgb_version(void);

extern void xgb_default_params(XgbParams *p, bool regression);

/*
 * Train on all rows of train (labels 0/1 for a classifier, weights if
 * present).  On success *out is a palloc'd model to release with
 * xgb_free(); on failure *out is NULL and the error is returned.
 */
extern const char *xgb_train(const ModelData *train, const XgbParams *params,
							 XgbModel **out);

/*
 * Predictions for nrows rows of ncols features (row-major, NaN missing):
 * probabilities for a classifier, values for a regressor, into the
 * caller's out[nrows].  ncols must equal the model's n_features.
 */
extern const char *xgb_predict(const XgbModel *model, const float *x,
							   int nrows, int ncols, double *out);

/* The untransformed margin (the logit for a classifier), into out[nrows]. */
extern const char *xgb_predict_margin(const XgbModel *model, const float *x,
									  int nrows, int ncols, double *out);

/*
 * Exact SHAP contributions: out[nrows * (ncols + 1)], per row ncols feature
 * contributions then the bias (expected margin).  A row's ncols + 1 values
 * sum to its margin.
 */
extern const char *xgb_contributions(const XgbModel *model, const float *x,
									 int nrows, int ncols, double *out);

/*
 * The model as bytes: XGBoost's own portable Universal Binary JSON in a
 * 20-byte envelope (little-endian):
 *		"SEXG"  u32 version  u64 payload length  u32 CRC-32C of the payload
 * A palloc'd buffer and its length.
 */
extern const char *xgb_serialize(const XgbModel *model, char **buf, size_t *len);

/*
 * Load a model from xgb_serialize's bytes.  The envelope is checked first
 * (magic, version, exact length, CRC-32C) because XGBoost 1.7's UBJSON
 * reader does not bounds-check and over-reads a truncated buffer: a
 * truncated or corrupted bytea is refused before XGBoost sees it.  This
 * protects against accidents, not against forged bytes with a valid CRC:
 * load only models this extension wrote.  The booster must then carry the
 * smartetl attributes xgb_train writes (kind and feature count), which
 * must agree with XGBoost's own feature count.
 */
extern const char *xgb_deserialize(const char *buf, size_t len, XgbModel **out);

/* Release the booster and the struct; NULL is allowed. */
extern void xgb_free(XgbModel *model);

#endif							/* SMARTETL_MODEL_XGB_H */
