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
	double		at;				/* run_at */
	bool		failed;
	bool		finished;		/* success or failed */
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
 */
extern void risk_features_at(const RiskRun *runs, int n, double t, double *out);

#endif							/* SMARTETL_RISK_FEATURES_H */
