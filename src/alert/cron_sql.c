/*-------------------------------------------------------------------------
 * src/alert/cron_sql.c
 *		SQL face of the cron schedules (cron.c): the next and previous
 *		scheduled times of a pipeline in its time zone, and the checks that
 *		reject a bad schedule or zone when it is written.
 *
 * Zones are PostgreSQL's own (pg_tzset), and a local time becomes an
 * instant exactly as timestamp AT TIME ZONE makes it
 * (DetermineTimeZoneOffset), so a test can state an expected time in SQL.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "alert/cron.h"

PG_FUNCTION_INFO_V1(smartetl_cron_next);
PG_FUNCTION_INFO_V1(smartetl_cron_prev);
PG_FUNCTION_INFO_V1(smartetl_cron_check);
PG_FUNCTION_INFO_V1(smartetl_cron_valid);

/* Seconds between the Unix and the PostgreSQL epochs. */
#define EPOCH_DIFF ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

static int
zone_offset_at(void *arg, int64 instant)
{
	pg_time_t	t = (pg_time_t) instant;
	struct pg_tm *tm = pg_localtime(&t, (pg_tz *) arg);

	return tm ? (int) tm->tm_gmtoff : 0;
}

static int
zone_offset_of_local(void *arg, int64 local)
{
	struct pg_tm tm;
	int64		days = local >= 0 ? local / SECS_PER_DAY : -((-local + SECS_PER_DAY - 1) / SECS_PER_DAY);
	int64		sod = local - days * SECS_PER_DAY;
	int64		y;
	int			m,
				d;

	cron_civil_from_days(days, &y, &m, &d);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int) y;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = (int) (sod / SECS_PER_HOUR);
	tm.tm_min = (int) ((sod % SECS_PER_HOUR) / SECS_PER_MINUTE);
	tm.tm_sec = (int) (sod % SECS_PER_MINUTE);
	/* PostgreSQL's offsets are seconds west of Greenwich */
	return -DetermineTimeZoneOffset(&tm, (pg_tz *) arg);
}

static int64
zone_next_change(void *arg, int64 instant)
{
	pg_time_t	t = (pg_time_t) instant;
	pg_time_t	boundary;
	long		before_gmtoff,
				after_gmtoff;
	int			before_isdst,
				after_isdst;

	if (pg_next_dst_boundary(&t, &before_gmtoff, &before_isdst, &boundary,
							 &after_gmtoff, &after_isdst, (pg_tz *) arg) == 1)
		return (int64) boundary;
	return PG_INT64_MAX;
}

static pg_tz *
zone_or_error(const char *name)
{
	pg_tz	   *tz = pg_tzset(name);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", name),
				 errhint("Use a name from pg_timezone_names, such as Europe/Paris or UTC.")));
	return tz;
}

static void
schedule_or_error(const char *text, CronSchedule *s)
{
	char		err[256];

	if (!cron_parse(text, s, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cron schedule \"%s\"", text),
				 errdetail("%s", err),
				 errhint("Use five fields, minute hour day-of-month month day-of-week, such as \"30 6 * * 1-5\", or @daily.")));
}

/*
 * The arguments of cron_next and cron_prev: the schedule, the time as
 * Unix seconds (false when infinite) and the zone (default UTC).
 */
static bool
cron_args(FunctionCallInfo fcinfo, CronSchedule *s, int64 *t, CronZone *z)
{
	char	   *sched = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);
	char	   *zone = PG_ARGISNULL(2) ? "UTC" : text_to_cstring(PG_GETARG_TEXT_PP(2));

	schedule_or_error(sched, s);
	z->arg = zone_or_error(zone);
	z->offset_at = zone_offset_at;
	z->offset_of_local = zone_offset_of_local;
	z->next_change = zone_next_change;
	if (TIMESTAMP_NOT_FINITE(ts))
		return false;
	/* whole seconds: schedules run on minutes */
	*t = (ts >= 0 ? ts / USECS_PER_SEC : -((-ts + USECS_PER_SEC - 1) / USECS_PER_SEC)) + EPOCH_DIFF;
	return true;
}

static Datum
to_timestamptz(int64 unix_seconds)
{
	TimestampTz ts = (unix_seconds - EPOCH_DIFF) * USECS_PER_SEC;

	if (!IS_VALID_TIMESTAMP(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return TimestampTzGetDatum(ts);
}

/*
 * smartetl.cron_next(schedule, after, timezone): the first scheduled time
 * strictly after "after" (NULL when none within ten years).
 */
Datum
smartetl_cron_next(PG_FUNCTION_ARGS)
{
	CronSchedule s;
	CronZone	z;
	int64		t,
				next;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (!cron_args(fcinfo, &s, &t, &z))
		PG_RETURN_NULL();
	/* a fractional "after" is already past its second's start */
	if (!cron_next(&s, &z, t, &next))
		PG_RETURN_NULL();
	return to_timestamptz(next);
}

/*
 * smartetl._cron_prev(schedule, at, timezone): the latest scheduled time at
 * or before "at" (NULL when none within ten years).
 */
Datum
smartetl_cron_prev(PG_FUNCTION_ARGS)
{
	CronSchedule s;
	CronZone	z;
	int64		t,
				prev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (!cron_args(fcinfo, &s, &t, &z))
		PG_RETURN_NULL();
	if (!cron_prev(&s, &z, t, &prev))
		PG_RETURN_NULL();
	return to_timestamptz(prev);
}

/* smartetl._cron_check(schedule, timezone): raise unless both are valid. */
Datum
smartetl_cron_check(PG_FUNCTION_ARGS)
{
	CronSchedule s;

	if (!PG_ARGISNULL(0))
		schedule_or_error(text_to_cstring(PG_GETARG_TEXT_PP(0)), &s);
	if (!PG_ARGISNULL(1))
		(void) zone_or_error(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* smartetl._cron_valid(schedule): whether it parses (pg_cron's "30 seconds" does not). */
Datum
smartetl_cron_valid(PG_FUNCTION_ARGS)
{
	CronSchedule s;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_BOOL(cron_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &s, NULL, 0));
}
