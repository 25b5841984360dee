/*-------------------------------------------------------------------------
 * src/predict/risk_features.c
 *		Failure-risk features: recent failure rates (1, 7, 30 days and an
 *		exponentially weighted one), the current failure streak, time since
 *		the last success and failure, activity and retries, how far the last
 *		run's duration and volume were from the pipeline's robust baseline
 *		and the duration trend, time of day and week, novelty of error
 *		templates, host changes.  Only runs before t are read.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/robust_stats.h"
#include "predict/risk_features.h"

#define DAY 86400.0
#define HOURS_CAP 720.0

const char *const risk_feature_names[RISK_NFEATURES] = {
	"fail_rate_1d", "fail_rate_7d", "fail_rate_30d", "fail_ewma", "consecutive_failures",
	"hours_since_success", "hours_since_failure", "runs_1d", "runs_per_day_7d", "retries_7d",
	"duration_z", "duration_trend", "volume_z", "last_failed", "hour_sin", "hour_cos",
	"dow_sin", "dow_cos", "new_templates_7d", "templates_30d", "host_changed", "log_runs_total"
};

void
risk_mark_first_templates(RiskRun *runs, int n)
{
	int			i,
				j;

	/* pipelines have few distinct templates: a backward scan is enough */
	for (i = 0; i < n; i++)
	{
		runs[i].first_template = runs[i].template_id != 0;
		for (j = 0; j < i && runs[i].first_template; j++)
			if (runs[j].template_id == runs[i].template_id)
				runs[i].first_template = false;
	}
}

/* Number of runs with at < t (runs sorted by at). */
static int
runs_before(const RiskRun *runs, int n, double t)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (runs[mid].at < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Robust z of the latest known value of a field among runs[0..end) against
 * the up to 30 values before it: (x - median) / max(1.4826 MAD, 0.05), on
 * log(1 + x).  0 without 5 earlier values.
 */
static double
robust_z(const RiskRun *runs, int end, bool volume)
{
	double		hist[30];
	double		x = -1,
				m,
				mad;
	int			i,
				k = 0;

	for (i = end - 1; i >= 0 && k < 30; i--)
	{
		double		v = volume ? runs[i].rows_written : runs[i].duration_s;

		if (!runs[i].finished || v < 0)
			continue;
		if (x < 0)
			x = log1p(v);
		else
			hist[k++] = log1p(v);
	}
	if (k < 5)
		return 0.0;
	median_mad_in_place(hist, k, &m, &mad);
	return (x - m) / fmax(1.4826 * mad, 0.05);
}

/* Least-squares slope of log(1 + duration) over the last 10 finished runs. */
static double
duration_trend(const RiskRun *runs, int end)
{
	double		y[10];
	int			i,
				k = 0;
	double		sx = 0,
				sy = 0,
				sxy = 0,
				sxx = 0;

	for (i = end - 1; i >= 0 && k < 10; i--)
		if (runs[i].finished && runs[i].duration_s >= 0)
			y[k++] = log1p(runs[i].duration_s);
	if (k < 3)
		return 0.0;
	for (i = 0; i < k; i++)
	{
		double		x = -i;		/* y[0] is the latest */

		sx += x;
		sy += y[i];
		sxy += x * y[i];
		sxx += x * x;
	}
	return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

/* Failure rate among finished runs in [t - window, t); 0 without any. */
static double
fail_rate(const RiskRun *runs, int end, double t, double window, int *count)
{
	int			i,
				finished = 0,
				failed = 0;

	*count = 0;
	for (i = end - 1; i >= 0 && runs[i].at >= t - window; i--)
	{
		(*count)++;
		finished += runs[i].finished;
		failed += runs[i].failed;
	}
	return finished ? (double) failed / finished : 0.0;
}

static void
recency(const RiskRun *runs, int end, double t, double *out)
{
	int			i;
	int			streak = 0;
	bool		streak_open = true;
	double		since_success = HOURS_CAP,
				since_failure = HOURS_CAP,
				ewma = 0;

	for (i = end - 1; i >= 0; i--)
	{
		if (!runs[i].finished)
			continue;
		if (runs[i].failed && streak_open)
			streak++;
		else
			streak_open = false;
		if (!runs[i].failed && since_success == HOURS_CAP)
			since_success = fmin(HOURS_CAP, (t - runs[i].at) / 3600.0);
		if (runs[i].failed && since_failure == HOURS_CAP)
			since_failure = fmin(HOURS_CAP, (t - runs[i].at) / 3600.0);
	}
	for (i = 0; i < end; i++)
		if (runs[i].finished)
			ewma = 0.7 * ewma + 0.3 * (runs[i].failed ? 1.0 : 0.0);
	out[3] = ewma;
	out[4] = streak;
	out[5] = since_success;
	out[6] = since_failure;
}

static void
templates(const RiskRun *runs, int end, double t, double *out)
{
	int64_t		seen[64];
	int			nseen = 0,
				i,
				j,
				fresh = 0;

	for (i = end - 1; i >= 0 && runs[i].at >= t - 30 * DAY; i--)
	{
		bool		known = false;

		if (runs[i].template_id == 0 || !runs[i].failed)
			continue;
		fresh += runs[i].first_template && runs[i].at >= t - 7 * DAY;
		for (j = 0; j < nseen && !known; j++)
			known = seen[j] == runs[i].template_id;
		if (!known && nseen < lengthof(seen))
			seen[nseen++] = runs[i].template_id;
	}
	out[18] = fresh;
	out[19] = nseen;
}

void
risk_features_at(const RiskRun *runs, int n, double t, double *out)
{
	int			end = runs_before(runs, n, t);
	int			i,
				count1,
				count7,
				count30,
				retries = 0;
	double		hour = fmod(t, DAY) / 3600.0;
	double		dow = fmod(t / DAY + 3.0, 7.0);	/* 1970-01-01 was a Thursday: 0 = Monday */

	out[0] = fail_rate(runs, end, t, DAY, &count1);
	out[1] = fail_rate(runs, end, t, 7 * DAY, &count7);
	out[2] = fail_rate(runs, end, t, 30 * DAY, &count30);
	recency(runs, end, t, out);
	out[7] = count1;
	out[8] = count7 / 7.0;
	for (i = end - 1; i >= 0 && runs[i].at >= t - 7 * DAY; i--)
		retries += runs[i].attempt > 1;
	out[9] = retries;
	out[10] = robust_z(runs, end, false);
	out[11] = duration_trend(runs, end);
	out[12] = robust_z(runs, end, true);
	out[13] = end > 0 && runs[end - 1].failed;
	out[14] = sin(2 * M_PI * hour / 24.0);
	out[15] = cos(2 * M_PI * hour / 24.0);
	out[16] = sin(2 * M_PI * dow / 7.0);
	out[17] = cos(2 * M_PI * dow / 7.0);
	templates(runs, end, t, out);
	out[20] = end > 1 && runs[end - 1].host_hash != 0 && runs[end - 2].host_hash != 0 &&
		runs[end - 1].host_hash != runs[end - 2].host_hash;
	out[21] = log1p(end);
}
