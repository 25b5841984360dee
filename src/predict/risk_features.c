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
		if (!known && nseen < (int) lengthof(seen))
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

/* ---- v2: features that do not drift with the calendar or the history length ---- */

#define WEEK (7 * DAY)
#define HOURS_CAP2 168.0

const char *const risk_feature2_names[RISK2_NFEATURES] = {
	"fail_rate_7d", "fail_count_7d", "last_failed", "fail_count_1d", "fail_days_7d",
	"consecutive_failures", "successes_since_failure", "hours_since_failure",
	"hours_since_success", "hours_since_run", "runs_per_day_7d", "runs_1d",
	"expected_runs_horizon", "fail_rate_30d", "failures_per_day_30d",
	"failed_same_window_1w", "failed_same_window_1d", "weekly_repeat", "daily_repeat",
	"cancel_rate_7d", "retry_rate_7d", "duration_z", "duration_trend_7d", "volume_z",
	"new_templates_1d", "new_templates_7d", "templates_7d", "host_changed"
};

/* Failed runs known in (from, to], among runs[0..end). */
static int
failures_between(const RiskRun *runs, int end, double from, double to)
{
	int			i,
				k = 0;

	for (i = end - 1; i >= 0 && runs[i].at > from; i--)
		k += runs[i].failed && runs[i].at <= to;
	return k;
}

/*
 * Share of the periods (period back, up to max_periods) in which the
 * pipeline failed in the window (t - k period, t - k period + width]:
 * periodic failures ("every Monday", "every night at 2") without reading
 * the calendar.  Only periods after the first known run count.
 */
static double
repeat_share(const RiskRun *runs, int end, double t, double period, int max_periods,
			 double width)
{
	int			k,
				seen = 0,
				hit = 0;

	if (end == 0)
		return 0.0;
	for (k = 1; k <= max_periods; k++)
	{
		double		from = t - k * period;

		if (runs[0].at >= from)
			break;
		seen++;
		hit += failures_between(runs, end, from, from + width) > 0;
	}
	return seen ? (double) hit / seen : 0.0;
}

/*
 * Relative change of the duration over a week, from the least-squares
 * slope of log(1 + duration) against time over the finished runs of the
 * last 7 days (at least 4, spread over time): exp(7 days * slope) - 1,
 * clamped to [-0.9, 10].  0 without enough runs.
 */
static double
duration_trend_7d(const RiskRun *runs, int end, double t)
{
	double		sx = 0,
				sy = 0,
				sxy = 0,
				sxx = 0,
				slope;
	int			i,
				k = 0;

	for (i = end - 1; i >= 0 && runs[i].at >= t - WEEK; i--)
	{
		double		x,
					y;

		if (!runs[i].finished || runs[i].duration_s < 0)
			continue;
		x = (runs[i].at - t) / DAY;
		y = log1p(runs[i].duration_s);
		sx += x;
		sy += y;
		sxy += x * y;
		sxx += x * x;
		k++;
	}
	if (k < 4 || k * sxx - sx * sx < 1e-9)
		return 0.0;
	slope = (k * sxy - sx * sy) / (k * sxx - sx * sx);
	return fmin(fmax(expm1(fmin(slope * 7.0, 3.0)), -0.9), 10.0);
}

/* Robust z of the last finished run's value against up to 30 before it (5 at least). */
static double
robust_z2(const RiskRun *runs, int end, bool volume)
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
	return fmin(fmax((x - m) / fmax(1.4826 * mad, 0.05), -20.0), 20.0);
}

void
risk_features2_at(const RiskRun *runs, int n, double t, double horizon, double *out)
{
	int			end = runs_before(runs, n, t);
	int			i,
				fin7 = 0,
				fail7 = 0,
				fin30 = 0,
				fail30 = 0,
				all7 = 0,
				all1 = 0,
				fail1 = 0,
				cancel7 = 0,
				retry7 = 0,
				streak = 0,
				successes = 0,
				new1 = 0,
				new7 = 0;
	bool		day_failed[7] = {false};
	bool		streak_open = true,
				success_open = true;
	double		since_failure = HOURS_CAP2,
				since_success = HOURS_CAP2,
				observed,
				days;
	int64_t		seen[64];
	int			nseen = 0;

	memset(out, 0, sizeof(double) * RISK2_NFEATURES);
	for (i = end - 1; i >= 0; i--)
	{
		const RiskRun *r = &runs[i];
		double		age = t - r->at;

		if (age <= 30 * DAY)
		{
			fin30 += r->finished;
			fail30 += r->failed;
		}
		if (age <= WEEK)
		{
			all7++;
			fin7 += r->finished;
			fail7 += r->failed;
			cancel7 += r->cancelled;
			retry7 += r->attempt > 1;
			if (r->failed)
				day_failed[Min((int) (age / DAY), 6)] = true;
			if (r->failed && r->first_template)
				new7++;
			if (r->failed && r->template_id != 0)
			{
				bool		known = false;
				int			j;

				for (j = 0; j < nseen && !known; j++)
					known = seen[j] == r->template_id;
				if (!known && nseen < (int) lengthof(seen))
					seen[nseen++] = r->template_id;
			}
		}
		if (age <= DAY)
		{
			all1++;
			fail1 += r->failed;
			new1 += r->failed && r->first_template;
		}
		if (r->finished)
		{
			if (r->failed && streak_open)
				streak++;
			else
				streak_open = false;
			if (!r->failed && success_open)
				successes++;
			else
				success_open = false;
			if (r->failed && since_failure == HOURS_CAP2)
				since_failure = fmin(HOURS_CAP2, age / 3600.0);
			if (!r->failed && since_success == HOURS_CAP2)
				since_success = fmin(HOURS_CAP2, age / 3600.0);
		}
		/* the counts above need a month; the streaks stop at 100 runs */
		if (age > 30 * DAY && !streak_open && (!success_open || successes >= 100))
			break;
	}
	out[RF_FAIL_RATE_7D] = fin7 ? (double) fail7 / fin7 : 0.0;
	out[RF_FAIL_COUNT_7D] = fail7;
	for (i = end - 1; i >= 0; i--)
		if (runs[i].finished)
		{
			out[RF_LAST_FAILED] = runs[i].failed;
			break;
		}
	out[RF_FAIL_COUNT_1D] = fail1;
	for (i = 0; i < 7; i++)
		out[RF_FAIL_DAYS_7D] += day_failed[i];
	out[RF_CONSECUTIVE_FAILURES] = streak;
	out[RF_SUCCESSES_SINCE_FAILURE] = Min(successes, 100);
	out[RF_HOURS_SINCE_FAILURE] = since_failure;
	out[RF_HOURS_SINCE_SUCCESS] = since_success;
	out[RF_HOURS_SINCE_RUN] = end > 0 ? fmin(HOURS_CAP2, (t - runs[end - 1].at) / 3600.0) : HOURS_CAP2;
	/* per day over the part of the window the history covers, a day at least */
	observed = end > 0 ? t - runs[0].at : 0;
	days = fmax(1.0, fmin(7.0, observed / DAY));
	out[RF_RUNS_PER_DAY_7D] = all7 / days;
	out[RF_RUNS_1D] = all1;
	out[RF_EXPECTED_RUNS_HORIZON] = out[RF_RUNS_PER_DAY_7D] * horizon / DAY;
	out[RF_FAIL_RATE_30D] = fin30 ? (double) fail30 / fin30 : 0.0;
	out[RF_FAILURES_PER_DAY_30D] = fail30 / fmax(1.0, fmin(30.0, observed / DAY));
	out[RF_FAILED_SAME_WINDOW_1W] = failures_between(runs, end, t - WEEK, t - WEEK + fmin(horizon, WEEK));
	out[RF_FAILED_SAME_WINDOW_1D] = failures_between(runs, end, t - DAY, t - DAY + fmin(horizon, DAY));
	out[RF_WEEKLY_REPEAT] = repeat_share(runs, end, t, WEEK, 4, fmin(horizon, WEEK));
	out[RF_DAILY_REPEAT] = repeat_share(runs, end, t, DAY, 7, fmin(horizon, DAY));
	out[RF_CANCEL_RATE_7D] = all7 ? (double) cancel7 / all7 : 0.0;
	out[RF_RETRY_RATE_7D] = all7 ? (double) retry7 / all7 : 0.0;
	out[RF_DURATION_Z] = robust_z2(runs, end, false);
	out[RF_DURATION_TREND_7D] = duration_trend_7d(runs, end, t);
	out[RF_VOLUME_Z] = robust_z2(runs, end, true);
	out[RF_NEW_TEMPLATES_1D] = new1;
	out[RF_NEW_TEMPLATES_7D] = new7;
	out[RF_TEMPLATES_7D] = nseen;
	out[RF_HOST_CHANGED] = end > 1 && runs[end - 1].host_hash != 0 && runs[end - 2].host_hash != 0 &&
		runs[end - 1].host_hash != runs[end - 2].host_hash;
}

int
risk_failed_starts(const RiskRun *runs, int n, double *fails)
{
	int			i,
				k = 0;

	for (i = 0; i < n; i++)
		if (runs[i].failed)
			fails[k++] = runs[i].start;
	qsort(fails, k, sizeof(double), double_cmp);
	return k;
}

double
risk_label(const double *fail_starts, int nfails, double t, double horizon)
{
	int			lo = 0,
				hi = nfails;

	/* the first failure starting after t */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (fail_starts[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nfails && fail_starts[lo] <= t + horizon ? 1.0 : 0.0;
}
