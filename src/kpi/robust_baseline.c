/*-------------------------------------------------------------------------
 * src/kpi/robust_baseline.c
 *		smartetl.median_mad(double precision) RETURNS double precision[]:
 *		{median, MAD, n} of the non-NULL, non-NaN values.
 *
 * An ordinary aggregate, so it also runs as a window function over a
 * moving frame ("the previous 30 runs"), which percentile_cont, an
 * ordered-set aggregate, cannot.  The anomaly baseline (70_anomaly.sql)
 * is built from it.  The final function only reads the state, so window
 * frames can reuse it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/float.h"

#include "common/robust_stats.h"

PG_FUNCTION_INFO_V1(median_mad_add);
PG_FUNCTION_INFO_V1(median_mad_final);

typedef struct ValueList
{
	int			n;
	int			cap;
	double		v[FLEXIBLE_ARRAY_MEMBER];
} ValueList;

Datum
median_mad_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	ValueList  *list = PG_ARGISNULL(0) ? NULL : (ValueList *) PG_GETARG_POINTER(0);
	double		x;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "median_mad_add called in non-aggregate context");
	if (list == NULL)
	{
		list = MemoryContextAlloc(aggctx, offsetof(ValueList, v) + 32 * sizeof(double));
		list->n = 0;
		list->cap = 32;
	}
	if (PG_ARGISNULL(1) || isnan(x = PG_GETARG_FLOAT8(1)))
		PG_RETURN_POINTER(list);
	if (list->n == list->cap)
	{
		list->cap *= 2;
		list = repalloc(list, offsetof(ValueList, v) + list->cap * sizeof(double));
	}
	list->v[list->n++] = x;
	PG_RETURN_POINTER(list);
}

Datum
median_mad_final(PG_FUNCTION_ARGS)
{
	ValueList  *list = PG_ARGISNULL(0) ? NULL : (ValueList *) PG_GETARG_POINTER(0);
	double	   *work;
	double		median,
				mad;
	Datum		out[3];

	if (list == NULL || list->n == 0)
		PG_RETURN_NULL();
	/* work on a copy: the window machinery may reuse the state */
	work = palloc(sizeof(double) * list->n);
	memcpy(work, list->v, sizeof(double) * list->n);
	median_mad_in_place(work, list->n, &median, &mad);
	out[0] = Float8GetDatum(median);
	out[1] = Float8GetDatum(mad);
	out[2] = Float8GetDatum((double) list->n);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}
