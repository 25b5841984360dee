/*-------------------------------------------------------------------------
 * src/kpi/rollup.c
 *		Collect the rollup buckets a bulk ingest touched and refresh them.
 *		See rollup.h; the recomputation itself is smartetl._kpi_refresh.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "kpi/rollup.h"

typedef struct HourKey
{
	int64		pipeline_id;
	TimestampTz hour;
} HourKey;

void
touched_hours_init(TouchedHours *t)
{
	t->n = 0;
	t->cap = 256;
	t->pipeline_ids = palloc(sizeof(int64) * t->cap);
	t->hours = palloc(sizeof(TimestampTz) * t->cap);
}

/* The UTC hour of a time (floor, also before 2000). */
static TimestampTz
utc_hour(TimestampTz at)
{
	TimestampTz r = at % USECS_PER_HOUR;

	return at - (r < 0 ? r + USECS_PER_HOUR : r);
}

void
touched_hours_add(TouchedHours *t, int64 pipeline_id, TimestampTz at)
{
	TimestampTz hour = utc_hour(at);

	/* runs of one pipeline and hour usually arrive together */
	if (t->n > 0 && t->pipeline_ids[t->n - 1] == pipeline_id && t->hours[t->n - 1] == hour)
		return;
	if (t->n == t->cap)
	{
		t->cap *= 2;
		t->pipeline_ids = repalloc_huge(t->pipeline_ids, sizeof(int64) * t->cap);
		t->hours = repalloc_huge(t->hours, sizeof(TimestampTz) * t->cap);
	}
	t->pipeline_ids[t->n] = pipeline_id;
	t->hours[t->n] = hour;
	t->n++;
}

static int
cmp_hour_key(const void *a, const void *b)
{
	const HourKey *x = a;
	const HourKey *y = b;

	if (x->pipeline_id != y->pipeline_id)
		return x->pipeline_id < y->pipeline_id ? -1 : 1;
	return x->hour < y->hour ? -1 : (x->hour > y->hour);
}

/* Sort and drop repeats, so the refresh gets each bucket once. */
static int64
unique_keys(TouchedHours *t, Datum **pids, Datum **hours)
{
	HourKey    *keys = palloc_extended(sizeof(HourKey) * Max(t->n, 1), MCXT_ALLOC_HUGE);
	int64		i,
				n = 0;

	for (i = 0; i < t->n; i++)
		keys[i] = (HourKey) {t->pipeline_ids[i], t->hours[i]};
	qsort(keys, t->n, sizeof(HourKey), cmp_hour_key);
	*pids = palloc_extended(sizeof(Datum) * Max(t->n, 1), MCXT_ALLOC_HUGE);
	*hours = palloc_extended(sizeof(Datum) * Max(t->n, 1), MCXT_ALLOC_HUGE);
	for (i = 0; i < t->n; i++)
	{
		if (n > 0 && cmp_hour_key(&keys[i], &keys[i - 1]) == 0)
			continue;
		(*pids)[n] = Int64GetDatum(keys[i].pipeline_id);
		(*hours)[n] = TimestampTzGetDatum(keys[i].hour);
		n++;
	}
	pfree(keys);
	return n;
}

void
touched_hours_refresh(TouchedHours *t)
{
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[2];
	Datum	   *pids,
			   *hours;
	int64		n;

	if (t->n == 0)
		return;
	n = unique_keys(t, &pids, &hours);
	args[0] = PointerGetDatum(construct_array(pids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(hours, n, TIMESTAMPTZOID, sizeof(TimestampTz),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("SELECT smartetl._kpi_refresh($1, $2)", 2, types, args, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not refresh KPI rollups");
}
