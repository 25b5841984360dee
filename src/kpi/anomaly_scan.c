/*-------------------------------------------------------------------------
 * src/kpi/anomaly_scan.c
 *		The anomaly baseline of each run, computed once as runs arrive.
 *
 * smartetl._anomaly_scan(seed float8[], lx_duration float8, lx_volume float8,
 *                        run_at timestamptz, is_last boolean) RETURNS float8[]
 * is a window aggregate run over one pipeline's successful runs in
 * (run_at, run_id) order with the frame "ROWS UNBOUNDED PRECEDING": its
 * transition function sees each run once, after every earlier one, and
 * keeps the baseline windows of 70_anomaly.sql as ring buffers, per kind
 * (duration, volume):
 *   - the log values of the previous 30 runs                (recent)
 *   - the log values of the previous 8 runs of the same UTC hour of the
 *     week                                                  (season)
 *   - the residuals (log value - expected) of the previous 100 runs, NaN
 *     where a run had no expected value                     (resid)
 * For the current run it works out, before adding the run itself, what
 * detect_anomalies used to compute with three moving windows of
 * median_mad: the expected log value (the seasonal median when at least 4
 * same-hour runs exist, else the median of the last 30 once there are 8)
 * and the scale, max(1.4826 * MAD of the residuals, 0.05), once at least 8
 * residuals exist.  A NULL log value (the value is NULL or negative) leaves
 * that kind's windows untouched, as the old query left such runs out.
 *
 * The result, per row: {center, scale, baseline runs, seasonal} for
 * duration then volume (NULLs where the run is not scored).  On the row
 * flagged is_last the array goes on with the serialized windows, which
 * smartetl.anomaly_state keeps per pipeline; the next batch passes them
 * back as seed, so each new run costs a few small sorts, however long the
 * history.  Each window also keeps its values sorted, so a median and a
 * MAD take a binary search and a short merge; they are the figures
 * median_mad (robust_stats.c) gives for the same values, bit for bit, so
 * the scores equal the old window query's (test/sql/anomalies.sql checks).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/float.h"
#include "utils/timestamp.h"


PG_FUNCTION_INFO_V1(anomaly_scan_add);
PG_FUNCTION_INFO_V1(anomaly_scan_row);

#define RECENT_N	30
#define SEASON_N	8
#define RESID_N		100
#define HOURS_OF_WEEK 168
#define SEASON_MIN	4			/* same-hour runs for a seasonal baseline */
#define RECENT_MIN	8			/* runs for a recent-runs baseline */
#define RESID_MIN	8			/* residuals before scoring starts */
#define STATE_VERSION 1
#define ROW_VALUES	8			/* {center, scale, n, seasonal} x 2 kinds */

/*
 * A ring of at most cap doubles (head is where the next one goes), and its
 * non-NaN values kept sorted, so that a median and a MAD cost a binary
 * search and a merge of at most cap values instead of two sorts.
 */
typedef struct Ring
{
	int			n;
	int			head;
	int			nsorted;
} Ring;

typedef struct KindWindows
{
	Ring		recent;
	double		recent_v[RECENT_N];
	double		recent_s[RECENT_N];
	Ring		resid;
	double		resid_v[RESID_N];
	double		resid_s[RESID_N];
	Ring		season[HOURS_OF_WEEK];
	double		season_v[HOURS_OF_WEEK][SEASON_N];
	double		season_s[HOURS_OF_WEEK][SEASON_N];
} KindWindows;

typedef struct AnomalyScan
{
	KindWindows k[2];
	double		out[ROW_VALUES];
	bool		out_null[ROW_VALUES];
	bool		is_last;
} AnomalyScan;

/* The first position of sorted[0..n) whose value is >= x. */
static inline int
lower_bound(const double *sorted, int n, double x)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (sorted[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
ring_push(Ring *r, double *v, double *sorted, int cap, double x)
{
	int			i;

	if (r->n == cap)
	{
		double		old = v[r->head];

		if (!isnan(old))
		{
			i = lower_bound(sorted, r->nsorted, old);
			Assert(i < r->nsorted && sorted[i] == old);
			memmove(&sorted[i], &sorted[i + 1], sizeof(double) * (r->nsorted - i - 1));
			r->nsorted--;
		}
	}
	else
		r->n++;
	v[r->head] = x;
	r->head = (r->head + 1) % cap;
	if (!isnan(x))
	{
		i = lower_bound(sorted, r->nsorted, x);
		memmove(&sorted[i + 1], &sorted[i], sizeof(double) * (r->nsorted - i));
		sorted[i] = x;
		r->nsorted++;
	}
}

/* The i-th oldest value of a ring. */
static inline double
ring_get(const Ring *r, const double *v, int cap, int i)
{
	return v[(r->head - r->n + i + cap) % cap];
}

/*
 * Median and MAD of a ring's non-NaN values (false when there are none):
 * the figures median_mad_in_place (robust_stats.c) gives for them.  The
 * deviations below and above the median are each already in order, so
 * the middle one or two of all of them come from merging the two runs.
 */
static bool
ring_median_mad(const Ring *r, const double *sorted, double *median, double *mad, int *n)
{
	int			m = r->nsorted;
	double		med;
	int			lo,
				hi,
				k;
	double		d[2] = {0, 0};

	*n = m;
	if (m == 0)
		return false;
	med = (m % 2) ? sorted[m / 2] : (sorted[m / 2 - 1] + sorted[m / 2]) / 2.0;
	/* sorted[lo] ... sorted[0]: deviations going up; sorted[hi] ...: too */
	hi = lower_bound(sorted, m, med);
	lo = hi - 1;
	for (k = 0; k <= m / 2; k++)
	{
		double		next;

		if (lo >= 0 && (hi >= m || fabs(sorted[lo] - med) <= fabs(sorted[hi] - med)))
			next = fabs(sorted[lo--] - med);
		else
			next = fabs(sorted[hi++] - med);
		if (k == (m - 1) / 2)
			d[0] = next;
		if (k == m / 2)
			d[1] = next;
	}
	*median = med;
	*mad = (m % 2) ? d[1] : (d[0] + d[1]) / 2.0;
	return true;
}

/* The hour of the week (UTC) of a time: equal for equal (isodow, hour). */
static int
hour_of_week(TimestampTz t)
{
	int64		hours = t / USECS_PER_HOUR;

	if (t % USECS_PER_HOUR < 0)
		hours--;
	hours %= HOURS_OF_WEEK;
	return (int) (hours < 0 ? hours + HOURS_OF_WEEK : hours);
}

/* Score one kind of the current run, then add it to the windows. */
static void
scan_kind(KindWindows *w, double lx, int how, double *out, bool *out_null)
{
	double		median,
				mad,
				center = 0;
	int			n_season,
				n_recent,
				n_resid;
	bool		has_center = false;
	bool		seasonal = false;
	int			n_base = 0;

	memset(out_null, true, 4 * sizeof(bool));
	if (ring_median_mad(&w->season[how], w->season_s[how], &median, &mad, &n_season) &&
		n_season >= SEASON_MIN)
	{
		center = median;
		has_center = true;
		seasonal = true;
		n_base = n_season;
	}
	else if (ring_median_mad(&w->recent, w->recent_s, &median, &mad, &n_recent) &&
			 n_recent >= RECENT_MIN)
	{
		center = median;
		has_center = true;
		n_base = n_recent;
	}
	if (has_center && ring_median_mad(&w->resid, w->resid_s, &median, &mad, &n_resid) &&
		n_resid >= RESID_MIN)
	{
		double		scale = 1.4826 * mad;

		out[0] = center;
		out[1] = scale > 0.05 ? scale : 0.05;
		out[2] = n_base;
		out[3] = seasonal ? 1 : 0;
		memset(out_null, false, 4 * sizeof(bool));
	}
	ring_push(&w->recent, w->recent_v, w->recent_s, RECENT_N, lx);
	ring_push(&w->season[how], w->season_v[how], w->season_s[how], SEASON_N, lx);
	ring_push(&w->resid, w->resid_v, w->resid_s, RESID_N, has_center ? lx - center : get_float8_nan());
}

/*
 * Serialized windows, as doubles: STATE_VERSION, then per kind the recent
 * ring (count, values oldest first), the residual ring, and the 168
 * seasonal rings.  Counts are small integers, exact as doubles.
 */
static int
state_size(const AnomalyScan *s)
{
	int			size = 1;
	int			k,
				h;

	for (k = 0; k < 2; k++)
	{
		size += 2 + s->k[k].recent.n + s->k[k].resid.n + HOURS_OF_WEEK;
		for (h = 0; h < HOURS_OF_WEEK; h++)
			size += s->k[k].season[h].n;
	}
	return size;
}

static double *
put_ring(double *p, const Ring *r, const double *v, int cap)
{
	int			i;

	*p++ = r->n;
	for (i = 0; i < r->n; i++)
		*p++ = ring_get(r, v, cap, i);
	return p;
}

static void
state_write(const AnomalyScan *s, double *p)
{
	int			k,
				h;

	*p++ = STATE_VERSION;
	for (k = 0; k < 2; k++)
	{
		p = put_ring(p, &s->k[k].recent, s->k[k].recent_v, RECENT_N);
		p = put_ring(p, &s->k[k].resid, s->k[k].resid_v, RESID_N);
		for (h = 0; h < HOURS_OF_WEEK; h++)
			p = put_ring(p, &s->k[k].season[h], s->k[k].season_v[h], SEASON_N);
	}
}

static void
bad_state(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid anomaly baseline state"),
			 errdetail("The state kept in smartetl.anomaly_state does not have the expected layout."),
			 errhint("Delete the pipeline's row of smartetl.anomaly_state and change one of its runs to rebuild it.")));
}

static const double *
get_ring(const double *p, const double *end, Ring *r, double *v, double *sorted, int cap)
{
	int			n,
				i;

	if (p >= end || p[0] < 0 || p[0] > cap)
		bad_state();
	n = (int) *p++;
	if (end - p < n)
		bad_state();
	for (i = 0; i < n; i++)
		ring_push(r, v, sorted, cap, *p++);
	return p;
}

static void
state_read(AnomalyScan *s, ArrayType *arr)
{
	const double *p,
			   *end;
	int			k,
				h;

	if (ARR_NDIM(arr) != 1 || array_contains_nulls(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID)
		bad_state();
	p = (const double *) ARR_DATA_PTR(arr);
	end = p + ARR_DIMS(arr)[0];
	if (p >= end || *p++ != STATE_VERSION)
		bad_state();
	for (k = 0; k < 2; k++)
	{
		p = get_ring(p, end, &s->k[k].recent, s->k[k].recent_v, s->k[k].recent_s, RECENT_N);
		p = get_ring(p, end, &s->k[k].resid, s->k[k].resid_v, s->k[k].resid_s, RESID_N);
		for (h = 0; h < HOURS_OF_WEEK; h++)
			p = get_ring(p, end, &s->k[k].season[h], s->k[k].season_v[h], s->k[k].season_s[h], SEASON_N);
	}
	if (p != end)
		bad_state();
}

Datum
anomaly_scan_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	AnomalyScan *s = PG_ARGISNULL(0) ? NULL : (AnomalyScan *) PG_GETARG_POINTER(0);
	int			how;
	int			k;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "anomaly_scan_add called in non-aggregate context");
	if (s == NULL)
	{
		s = MemoryContextAllocZero(aggctx, sizeof(AnomalyScan));
		if (!PG_ARGISNULL(1))
			state_read(s, PG_GETARG_ARRAYTYPE_P(1));
	}
	s->is_last = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
	memset(s->out_null, true, sizeof(s->out_null));
	if (PG_ARGISNULL(4))
		PG_RETURN_POINTER(s);
	how = hour_of_week(PG_GETARG_TIMESTAMPTZ(4));
	for (k = 0; k < 2; k++)
		if (!PG_ARGISNULL(2 + k))
			scan_kind(&s->k[k], PG_GETARG_FLOAT8(2 + k), how, &s->out[4 * k], &s->out_null[4 * k]);
	PG_RETURN_POINTER(s);
}

/* The current row's values, and on the last row the windows after it. */
Datum
anomaly_scan_row(PG_FUNCTION_ARGS)
{
	AnomalyScan *s = PG_ARGISNULL(0) ? NULL : (AnomalyScan *) PG_GETARG_POINTER(0);
	int			n = ROW_VALUES;
	Datum	   *values;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1] = {1};
	int			i;

	if (s == NULL)
		PG_RETURN_NULL();
	if (s->is_last)
		n += state_size(s);
	values = palloc(sizeof(Datum) * n);
	nulls = palloc0(sizeof(bool) * n);
	for (i = 0; i < ROW_VALUES; i++)
	{
		values[i] = Float8GetDatum(s->out[i]);
		nulls[i] = s->out_null[i];
	}
	if (s->is_last)
	{
		double	   *state = palloc(sizeof(double) * (n - ROW_VALUES));

		state_write(s, state);
		for (i = ROW_VALUES; i < n; i++)
			values[i] = Float8GetDatum(state[i - ROW_VALUES]);
	}
	dims[0] = n;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(values, nulls, 1, dims, lbs, FLOAT8OID, sizeof(float8),
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
