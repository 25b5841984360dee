/*-------------------------------------------------------------------------
 * src/locks.c
 *		SQL access to smartetl's advisory locks (locks.h): take one by
 *		purpose, take the ingest locks of a set of pipelines, list them.
 *
 * The keys live in locks.h only; the SQL pieces name a purpose, so a key
 * written in SQL can never drift from the one the C code takes.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "locks.h"

PG_FUNCTION_INFO_V1(smartetl_xact_lock);
PG_FUNCTION_INFO_V1(smartetl_try_xact_lock);
PG_FUNCTION_INFO_V1(smartetl_lock_pipelines);
PG_FUNCTION_INFO_V1(smartetl_lock_keys);

typedef struct LockKey
{
	const char *purpose;
	int32		class;
	int32		sub;			/* the first sub-key */
	int32		items;			/* sub-keys sub .. sub + items - 1; 0: any */
	const char *what;
} LockKey;

static const LockKey lock_keys[] = {
	{"pipeline", LOCK_PIPELINE_CLASS, 0, LOCK_PIPELINE_SLOTS,
	"ingest and rollup refresh of the pipelines whose id % 64 is the item"},
	{"alert_evaluation", LOCK_ALERT_EVALUATION_CLASS, LOCK_ALERT_EVALUATION_SUB, 1,
	"one evaluate_alerts() at a time"},
	{"template_compact", LOCK_TEMPLATE_COMPACT_CLASS, LOCK_TEMPLATE_COMPACT_SUB, 1,
	"one template_compact() at a time"},
	{"pg_cron_sync", LOCK_PG_CRON_SYNC_CLASS, LOCK_PG_CRON_SYNC_SUB, 1,
	"one sync_pg_cron() at a time"},
	{"log_partition", LOCK_LOG_PARTITION_CLASS, 0, 0,
	"creating the log_event partition whose name hashes (hashtext) to the item"},
};

/* The key of purpose and item; an error for an unknown purpose or item. */
static void
lock_key(const char *purpose, int32 item, int32 *class, int32 *sub)
{
	int			i;

	for (i = 0; i < lengthof(lock_keys); i++)
	{
		const LockKey *k = &lock_keys[i];

		if (strcmp(k->purpose, purpose) != 0)
			continue;
		if (k->items > 0 && (item < 0 || item >= k->items))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("advisory lock \"%s\" has no item %d", purpose, item),
					 errdetail("Its items are 0 to %d.", k->items - 1)));
		*class = k->class;
		*sub = k->sub + item;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown smartetl advisory lock \"%s\"", purpose),
			 errhint("smartetl._lock_keys() lists them.")));
}

/* pg_advisory_xact_lock(class, sub) or its try variant, for one purpose. */
static Datum
take_lock(FunctionCallInfo fcinfo, bool wait)
{
	char	   *purpose = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		class;
	int32		sub;

	lock_key(purpose, PG_GETARG_INT32(1), &class, &sub);
	if (wait)
		return DirectFunctionCall2(pg_advisory_xact_lock_int4,
								   Int32GetDatum(class), Int32GetDatum(sub));
	return DirectFunctionCall2(pg_try_advisory_xact_lock_int4,
							   Int32GetDatum(class), Int32GetDatum(sub));
}

/*
 * smartetl._xact_lock(purpose text, item integer DEFAULT 0) RETURNS void
 *		Waits for the lock; held to the end of the transaction.
 */
Datum
smartetl_xact_lock(PG_FUNCTION_ARGS)
{
	(void) take_lock(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * smartetl._try_xact_lock(purpose text, item integer DEFAULT 0) RETURNS boolean
 *		Takes the lock if nobody holds it; false without waiting otherwise.
 */
Datum
smartetl_try_xact_lock(PG_FUNCTION_ARGS)
{
	return take_lock(fcinfo, false);
}

/*
 * smartetl._lock_pipelines(pipeline_ids bigint[]) RETURNS void
 *		The "pipeline" locks of the given pipelines (NULLs skipped), each
 *		once and in ascending order, as ingest takes them (store.c), so two
 *		writers never deadlock.  The slot is id % 64 with SQL's sign rules.
 */
Datum
smartetl_lock_pipelines(PG_FUNCTION_ARGS)
{
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			i;
	bool		want[2 * LOCK_PIPELINE_SLOTS - 1] = {false};

	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("pipeline ids must be a one-dimensional array")));
	deconstruct_array(ids, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &values, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			want[DatumGetInt64(values[i]) % LOCK_PIPELINE_SLOTS + LOCK_PIPELINE_SLOTS - 1] = true;
	for (i = 0; i < lengthof(want); i++)
		if (want[i])
			DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(LOCK_PIPELINE_CLASS),
								Int32GetDatum(i - (LOCK_PIPELINE_SLOTS - 1)));
	PG_RETURN_VOID();
}

/*
 * smartetl._lock_keys() RETURNS TABLE (purpose text, class integer,
 *		first_sub integer, items integer, description text)
 *		The table above; pg_locks shows a held one as classid = class,
 *		objid = sub-key, objsubid = 2.
 */
Datum
smartetl_lock_keys(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < lengthof(lock_keys); i++)
	{
		const LockKey *k = &lock_keys[i];
		Datum		values[5];
		bool		nulls[5] = {false};

		values[0] = CStringGetTextDatum(k->purpose);
		values[1] = Int32GetDatum(k->class);
		values[2] = Int32GetDatum(k->sub);
		values[3] = Int32GetDatum(k->items);
		values[4] = CStringGetTextDatum(k->what);
		nulls[3] = (k->items == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
