/*-------------------------------------------------------------------------
 * src/ingest/time_window.c
 *		The window of run and log event times that ingestion accepts, and
 *		the settings behind it (smartetl.min_timestamp, smartetl.max_future).
 *
 * PostgreSQL accepts times from 4713 BC to 294276 AD, but a run dated at
 * either end breaks the rollup arithmetic of its pipeline (bucket + 1 hour
 * overflows), and a success dated years ahead is "the latest run" of its
 * pipeline for years, hiding every real failure from alerting.  So every
 * time read by any format must lie in
 *
 *		[smartetl.min_timestamp, now() + smartetl.max_future]
 *
 * and always within the absolute limits [1900-01-01, 2200-01-01) UTC,
 * which the table constraints on smartetl.run repeat (10_store.sql) so
 * that rows written with plain SQL are held to them too.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ingest/ingest.h"

PG_FUNCTION_INFO_V1(smartetl_time_window);

char	   *smartetl_min_timestamp_text = NULL;
int			smartetl_max_future_s = SECS_PER_DAY;

/* smartetl.min_timestamp as parsed by its check hook */
static TimestampTz min_timestamp = 0;

/* Midnight UTC of a date, as a TimestampTz. */
static TimestampTz
utc_midnight(int year, int month, int day)
{
	return (TimestampTz) (date2j(year, month, day) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
}

TimestampTz
ingest_abs_min_time(void)
{
	return utc_midnight(INGEST_ABS_MIN_YEAR, 1, 1);
}

TimestampTz
ingest_abs_max_time(void)
{
	return utc_midnight(INGEST_ABS_MAX_YEAR, 1, 1);
}

/*
 * GUC check hook of smartetl.min_timestamp: any timestamptz input (a value
 * without a zone is read in the session's TimeZone) within the absolute
 * limits.  The parsed value travels to the assign hook as "extra".  The
 * decoders report errors as return codes, so nothing is thrown here.
 */
bool
ingest_check_min_timestamp(char **newval, void **extra, GucSource source)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz ts;
	TimestampTz *parsed;

	if (*newval == NULL || strlen(*newval) > MAXDATELEN ||
		ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0 ||
		compat_DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0)
	{
		GUC_check_errdetail("Give a time such as '1970-01-01 00:00:00+00'.");
		return false;
	}
	if (dtype == DTK_EPOCH)
		ts = SetEpochTimestamp();
	else if (dtype != DTK_DATE || tm2timestamp(&tm, fsec, &tz, &ts) != 0)
	{
		GUC_check_errdetail("Give a time such as '1970-01-01 00:00:00+00'.");
		return false;
	}
	if (ts < ingest_abs_min_time() || ts >= ingest_abs_max_time())
	{
		GUC_check_errdetail("The time must lie between %d-01-01 and %d-01-01 UTC.",
							INGEST_ABS_MIN_YEAR, INGEST_ABS_MAX_YEAR);
		return false;
	}
	parsed = compat_guc_malloc(sizeof(TimestampTz));
	if (parsed == NULL)
		return false;
	*parsed = ts;
	*extra = parsed;
	return true;
}

void
ingest_assign_min_timestamp(const char *newval, void *extra)
{
	min_timestamp = *(TimestampTz *) extra;
}

/*
 * The accepted window now: [lo, hi], both inclusive.  "Now" is the
 * statement's start (statement_timestamp()), which is also the time given
 * to log events without a readable one, so those always fit.
 */
void
ingest_time_window(TimestampTz *lo, TimestampTz *hi)
{
	TimestampTz ahead = GetCurrentStatementStartTimestamp() +
		(TimestampTz) smartetl_max_future_s * USECS_PER_SEC;

	*lo = Max(min_timestamp, ingest_abs_min_time());
	*hi = Min(ahead, ingest_abs_max_time() - 1);
}

/* A time as 'YYYY-MM-DD HH:MM:SS UTC', whatever the session's DateStyle. */
char *
ingest_format_utc(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("(out of range)");
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d%s UTC",
					tm.tm_year > 0 ? tm.tm_year : -(tm.tm_year - 1), tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year > 0 ? "" : " BC");
}

/*
 * Is ts in the window of the options (fixed when the call began)?  If not,
 * *expected says which limit it broke, in words that name the setting.
 */
bool
ingest_time_in_window(TimestampTz ts, const IngestOptions *o, const char **expected)
{
	if (ts >= o->min_time && ts <= o->max_time)
		return true;
	if (ts < ingest_abs_min_time())
		*expected = psprintf("a time not before %d-01-01 00:00:00 UTC (the absolute limit)",
							 INGEST_ABS_MIN_YEAR);
	else if (ts < o->min_time)
		*expected = psprintf("a time not before %s (smartetl.min_timestamp)",
							 ingest_format_utc(o->min_time));
	else if (ts >= ingest_abs_max_time())
		*expected = psprintf("a time before %d-01-01 00:00:00 UTC (the absolute limit)",
							 INGEST_ABS_MAX_YEAR);
	else
		*expected = psprintf("a time at most %s ahead of now (smartetl.max_future)",
							 GetConfigOptionByName("smartetl.max_future", NULL, false));
	return false;
}

/*
 * smartetl._time_window(OUT min_ts timestamptz, OUT max_ts timestamptz)
 *		The window now, for the triggers that hold SQL writes to it.
 */
Datum
smartetl_time_window(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	TimestampTz lo,
				hi;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "smartetl._time_window must return a record");
	ingest_time_window(&lo, &hi);
	values[0] = TimestampTzGetDatum(lo);
	values[1] = TimestampTzGetDatum(hi);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
