/*-------------------------------------------------------------------------
 * src/predict/risk_features.h
 *		Failure-risk features of one pipeline at a point in time, from its
 *		runs strictly before that time (never looking past it).
 *
 * Frontend-safe: the caller loads the runs (risk_features_sql.c) and the
 * computation is plain C over arrays, so it can be tested and fuzzed alone.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_RISK_FEATURES_H
#define SMARTETL_RISK_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

/* One run, as the features need it; times in seconds since any epoch. */
typedef struct RiskRun
{
	double		at;				/* when its outcome was known: its end, else
								 * its start */
	double		start;			/* run_at (labels count runs by it) */
	bool		failed;
	bool		finished;		/* success or failed */
	bool		cancelled;
	double		duration_s;		/* < 0: unknown */
	double		rows_written;	/* < 0: unknown */
	int			attempt;
	int64_t		template_id;	/* 0: none */
	uint32_t	host_hash;		/* 0: unknown */
	bool		first_template; /* first run of this pipeline with this template */
} RiskRun;

#define RISK_NFEATURES 22

extern const char *const risk_feature_names[RISK_NFEATURES];

/* Mark each run's first occurrence of its error template (runs sorted by at). */
extern void risk_mark_first_templates(RiskRun *runs, int n);

/*
 * The features at time t from runs[0..n) sorted by at; only runs with
 * at < t are read.  out has RISK_NFEATURES slots.
 *
 * These are the 0.1.0 features ("v1"), kept so that models trained by
 * 0.1.0 score exactly as before; new models use risk_features2_at.
 */
extern void risk_features_at(const RiskRun *runs, int n, double t, double *out);

/*
 * The current features ("v2").  Each one reads a fixed window before t
 * (1, 7 or 30 days, or the same window one day or one to four weeks back)
 * and none grows with the length of the history or depends on the date:
 * a model trained on last quarter sees the same distribution today.
 * Windows longer than the history are normalised by the part observed
 * (runs per day over min(7 days, time since the first run), at least a
 * day).  Hours since an event are capped at a week.  The horizon (in
 * seconds) sets the same-window features and the expected number of runs.
 */
#define RISK2_NFEATURES 28

typedef enum RiskFeature2
{
	RF_FAIL_RATE_7D,
	RF_FAIL_COUNT_7D,
	RF_LAST_FAILED,
	RF_FAIL_COUNT_1D,
	RF_FAIL_DAYS_7D,
	RF_CONSECUTIVE_FAILURES,
	RF_SUCCESSES_SINCE_FAILURE,
	RF_HOURS_SINCE_FAILURE,
	RF_HOURS_SINCE_SUCCESS,
	RF_HOURS_SINCE_RUN,
	RF_RUNS_PER_DAY_7D,
	RF_RUNS_1D,
	RF_EXPECTED_RUNS_HORIZON,
	RF_FAIL_RATE_30D,
	RF_FAILURES_PER_DAY_30D,
	RF_FAILED_SAME_WINDOW_1W,
	RF_FAILED_SAME_WINDOW_1D,
	RF_WEEKLY_REPEAT,
	RF_DAILY_REPEAT,
	RF_CANCEL_RATE_7D,
	RF_RETRY_RATE_7D,
	RF_DURATION_Z,
	RF_DURATION_TREND_7D,
	RF_VOLUME_Z,
	RF_NEW_TEMPLATES_1D,
	RF_NEW_TEMPLATES_7D,
	RF_TEMPLATES_7D,
	RF_HOST_CHANGED
} RiskFeature2;

extern const char *const risk_feature2_names[RISK2_NFEATURES];

extern void risk_features2_at(const RiskRun *runs, int n, double t, double horizon,
							  double *out);

/*
 * The start times of the failed runs, sorted: what risk_label reads.
 * fails[] has room for n entries; returns how many.
 */
extern int	risk_failed_starts(const RiskRun *runs, int n, double *fails);

/* 1 when a failed run started in (t, t + horizon], else 0. */
extern double risk_label(const double *fail_starts, int nfails, double t, double horizon);

#endif							/* SMARTETL_RISK_FEATURES_H */
