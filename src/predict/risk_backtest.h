/*-------------------------------------------------------------------------
 * src/predict/risk_backtest.h
 *		Rolling-origin evaluation of failure-risk candidates, and the
 *		choice of the one to serve.
 *
 * Samples: one row per pipeline and sample time (every `step`, days
 * without runs included), the label "a run that started within the
 * horizon after the time failed", the current risk features; rows sorted
 * by time.  Candidates: the three baselines of model_baseline.h and the
 * learned models asked for (XGBoost, logistic regression).
 *
 * The evaluated period [from, until) is cut into `folds` blocks of equal
 * length, preceded by one more block of the same length that is only
 * used for calibration.  For each block, every learned candidate is
 * trained on the samples whose label was known before the block began
 * (t + horizon <= block start: no label overlaps the block) and scores
 * the block; the baselines just read their feature.  Each scored block
 * is then calibrated with a Platt fit on the candidate's scores of the
 * blocks before it only (prequential: calibration is out of time too).
 * Metrics are over the scored blocks pooled: ROC-AUC, PR-AUC, Brier, log
 * loss and a reliability table (MMClassifierReport), and ROC-AUC per
 * block.
 *
 * Choice: the best baseline is the one with the highest ROC-AUC.  A
 * learned candidate is served only when its ROC-AUC minus the standard
 * error of its gain over that baseline (a bootstrap over pipelines: the
 * samples of a pipeline are not independent) is at least min_gain above
 * the baseline's; otherwise the best baseline is served.  The calibration
 * kept for serving is a Platt fit on all blocks' out-of-time scores.
 *
 * With final set, each learned candidate is also trained on all rows:
 * the model to store.
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_RISK_BACKTEST_H
#define SMARTETL_RISK_BACKTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "predict/model_baseline.h"
#include "predict/model_data.h"
#include "predict/model_linear.h"
#include "predict/model_metrics.h"
#include "predict/model_xgb.h"

#define RISK_MAX_FOLDS 12
#define RISK_MAX_CANDIDATES (BASELINE_COUNT + 2)

typedef enum RiskCandidateKind
{
	RISK_BASELINE,
	RISK_XGBOOST,
	RISK_LINEAR
} RiskCandidateKind;

/* Samples sorted by t; md holds labels and features. */
typedef struct RiskSamples
{
	ModelData	md;
	double	   *t;				/* sample time, seconds */
	int64_t    *group;			/* pipeline id */
} RiskSamples;

typedef struct RiskBacktestParams
{
	double		horizon;		/* seconds, > 0 */
	double		step;			/* seconds between sample times, > 0 */
	double		from;			/* first evaluated time; NaN: the latest
								 * validation_share of the samples' span */
	double		until;			/* end of the evaluated period (exclusive);
								 * NaN: after the last sample */
	int			folds;			/* scored blocks, default 3 */
	double		validation_share;	/* default 0.3 */
	double		min_gain;		/* default 0.02 */
	int			bootstrap;		/* replicates for the standard error, default 200 */
	bool		xgboost;		/* learned candidates to evaluate */
	bool		linear;
	bool		final;			/* fit the learned candidates on all rows too */
	XgbParams	xgb;
	LinearParams lin;
} RiskBacktestParams;

typedef struct RiskCandidate
{
	RiskCandidateKind kind;
	int			baseline;		/* index into baseline_specs, or -1 */
	char		name[32];		/* "xgboost", "linear", "baseline:fail_rate_7d" */
	MMClassifierReport report;	/* over the scored blocks */
	int			nblocks;
	double		block_from[RISK_MAX_FOLDS];
	double		block_auc[RISK_MAX_FOLDS];
	int			block_n[RISK_MAX_FOLDS];
	int			block_positives[RISK_MAX_FOLDS];
	double		platt_a;		/* calibration to serve with */
	double		platt_b;
	double		gain;			/* learned: ROC-AUC minus the best baseline's */
	double		gain_se;		/* its bootstrap standard error */
	bool		served;
	/* final models (params.final, learned candidates) */
	XgbModel   *xgb;
	LinearModel *lin;
	int			train_rows;
	double		train_seconds;
} RiskCandidate;

typedef struct RiskBacktestResult
{
	int			ncandidates;
	RiskCandidate candidates[RISK_MAX_CANDIDATES];
	int			best_baseline;	/* index into candidates */
	int			served;			/* index into candidates */
	double		from;			/* the scored period */
	double		until;
	double		block;			/* length of a block */
	int			scored_rows;
} RiskBacktestResult;

extern void risk_backtest_default_params(RiskBacktestParams *p);

/*
 * Run the evaluation; NULL, or an error message (too little history for
 * one block with training rows, a training failure).  Fills *result.
 * cancel (may be NULL) is polled between fits.
 */
extern const char *risk_backtest(const RiskSamples *s, const RiskBacktestParams *p,
								 bool (*cancel) (void *), void *cancel_arg,
								 RiskBacktestResult *result);

/* Release the final models of a result. */
extern void risk_backtest_free(RiskBacktestResult *result);

/*
 * Platt scaling: a, b of sigmoid(a * score + b) fitted to the labels by
 * liblinear's logistic regression (barely regularised).  With one class
 * only, a = 1 and b moves the mean score to the smoothed base rate.
 * Returns NULL or an error.
 */
extern const char *risk_platt_fit(const double *score, const float *label, int n,
								  double *a, double *b);

/*
 * ROC-AUC of scores with per-row weights, rows given in ascending score
 * order (order[] indexes score/label/weight); NaN without both classes.
 */
extern double risk_weighted_auc(const int *order, const double *score, const float *label,
								const double *weight, int n);

#endif							/* SMARTETL_RISK_BACKTEST_H */
