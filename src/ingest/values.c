/*-------------------------------------------------------------------------
 * src/ingest/values.c
 *		Turn source text into run values: timestamps, durations, integers
 *		and normalised statuses.
 *
 * Each parser returns false instead of throwing, so one bad value can be
 * reported with its line and column, or quarantined, without a
 * subtransaction.  Timestamps and intervals go through PostgreSQL's own
 * datetime decoders (ParseDateTime/DecodeDateTime), which report errors
 * as return codes.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/fmgrprotos.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ingest/ingest.h"

/* Does s look like a plain decimal number (epoch value or seconds)? */
static bool
looks_numeric(const char *s, double *value)
{
	char	   *end;

	if (!(isdigit((unsigned char) s[0]) ||
		  ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char) s[1]))))
		return false;
	errno = 0;
	*value = strtod(s, &end);
	if (errno != 0 || *end != '\0' || isnan(*value) || isinf(*value))
		return false;
	return true;
}

/* Unit of a bare epoch number, guessed from its size when not configured. */
static double
epoch_unit_seconds(double v, const IngestOptions *o)
{
	double		mag = fabs(v);

	if (o->epoch_unit_s > 0)
		return o->epoch_unit_s;
	if (mag < 1e11)
		return 1;				/* seconds until the year 5138 */
	if (mag < 1e14)
		return 1e-3;
	if (mag < 1e17)
		return 1e-6;
	return 1e-9;
}

static bool
epoch_timestamp(double v, const IngestOptions *o, TimestampTz *out)
{
	double		us = v * epoch_unit_seconds(v, o) * 1e6;
	double		result = (double) o->epoch_origin + us;

	if (result < (double) MIN_TIMESTAMP || result >= (double) END_TIMESTAMP)
		return false;
	*out = (TimestampTz) llround(result);
	return true;
}

/*
 * A timestamp in the "timestamp_format" option's to_timestamp() pattern.
 *
 * to_timestamp() reports bad input only by throwing.  It is a pure
 * function (no locks, buffers or files), so catching its data-exception
 * errors without a subtransaction is safe; anything else is re-thrown.
 */
static bool
timestamp_by_format(const char *s, const IngestOptions *o, TimestampTz *out)
{
	MemoryContext ctx = CurrentMemoryContext;
	pg_tz	   *saved_zone = session_timezone;
	volatile bool ok = true;

	if (o->timezone)
		session_timezone = o->timezone;
	PG_TRY();
	{
		*out = DatumGetTimestampTz(DirectFunctionCall2(to_timestamp,
													   CStringGetTextDatum(s),
													   CStringGetTextDatum(o->timestamp_format)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		session_timezone = saved_zone;
		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	session_timezone = saved_zone;
	return ok;
}

/*
 * ISO 8601, 'YYYY-MM-DD HH24:MI:SS[.ffffff]' and the other forms that
 * timestamptz input accepts, or an epoch number.  A timestamp without a
 * zone is read in the "timezone" option's zone (else the session's).  With
 * the "timestamp_format" option, only that pattern is accepted.
 */
bool
value_timestamp(const char *s, const IngestOptions *o, TimestampTz *out)
{
	double		v;
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	int			dterr;
	pg_tz	   *saved_zone = session_timezone;

	if (o->timestamp_format)
		return timestamp_by_format(s, o, out);
	if (looks_numeric(s, &v))
		return epoch_timestamp(v, o, out);
	if (strlen(s) > MAXDATELEN)
		return false;
	dterr = ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr != 0)
		return false;

	/*
	 * DecodeDateTime resolves a missing zone against session_timezone; point
	 * it at the requested zone for this call only.  The decoder reports
	 * errors by return code, so the restore below always runs.
	 */
	if (o->timezone)
		session_timezone = o->timezone;
	dterr = compat_DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz);
	session_timezone = saved_zone;

	if (dterr != 0 || dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tm, fsec, &tz, out) == 0 && IS_VALID_TIMESTAMP(*out);
}

/*
 * A non-negative duration: a bare number in the "duration_unit" option's
 * unit (seconds by default), ISO 8601 ('PT1M30S') or interval text
 * ('00:01:30', '90 seconds', '1500 ms').
 */
bool
value_duration(const char *s, const IngestOptions *o, Interval *out)
{
	double		v;
	struct pg_itm_in itm;
	int			dtype;
	int			dterr;

	memset(out, 0, sizeof(*out));
	if (looks_numeric(s, &v))
	{
		double		us = v * o->duration_unit_s * 1e6;

		if (us < 0 || us > (double) PG_INT64_MAX / 2)
			return false;
		out->time = (int64) llround(us);
		return true;
	}
	if (strlen(s) > MAXDATELEN)
		return false;
	if (s[0] == 'P')
	{
		char	   *copy = pstrdup(s);

		dterr = DecodeISO8601Interval(copy, &dtype, &itm);
	}
	else
	{
		char		workbuf[MAXDATELEN + MAXDATEFIELDS];
		char	   *field[MAXDATEFIELDS];
		int			ftype[MAXDATEFIELDS];
		int			nf;

		dterr = ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype,
							  MAXDATEFIELDS, &nf);
		if (dterr == 0)
			dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE,
								   &dtype, &itm);
	}
	if (dterr != 0 || dtype != DTK_DELTA || itmin2interval(&itm, out) != 0)
		return false;
	return out->time >= 0 && out->day >= 0 && out->month >= 0;
}

bool
value_int64(const char *s, int64 *out)
{
	char	   *end;

	if (!isdigit((unsigned char) s[0]) && s[0] != '-')
		return false;
	errno = 0;
	*out = strtoi64(s, &end, 10);
	if (errno != 0)
		return false;
	/* "1234.0" from float-typed exports is still an integer */
	if (*end == '.')
	{
		end++;
		while (*end == '0')
			end++;
	}
	return *end == '\0';
}

typedef struct StatusWord
{
	const char *word;
	const char *status;
} StatusWord;

/* Words seen in Airflow, dbt, Spark, Jenkins, cron wrappers and job exports. */
static const StatusWord status_words[] = {
	{"success", "success"}, {"succeeded", "success"}, {"successful", "success"},
	{"ok", "success"}, {"done", "success"}, {"finished", "success"},
	{"finish", "success"}, {"complete", "success"}, {"completed", "success"},
	{"pass", "success"}, {"passed", "success"},
	{"failed", "failed"}, {"fail", "failed"}, {"failure", "failed"},
	{"error", "failed"}, {"errored", "failed"}, {"ko", "failed"},
	{"crashed", "failed"}, {"crash", "failed"}, {"up_for_retry", "failed"},
	{"timeout", "failed"}, {"timed_out", "failed"},
	{"running", "running"}, {"started", "running"}, {"start", "running"},
	{"in_progress", "running"}, {"active", "running"},
	{"skipped", "skipped"}, {"skip", "skipped"}, {"upstream_failed", "skipped"},
	{"cancelled", "cancelled"}, {"canceled", "cancelled"}, {"killed", "cancelled"},
	{"kill", "cancelled"}, {"aborted", "cancelled"}, {"terminated", "cancelled"},
	{"stopped", "cancelled"}, {"revoked", "cancelled"},
};

static bool
is_run_status(const char *s)
{
	return strcmp(s, "success") == 0 || strcmp(s, "failed") == 0 ||
		strcmp(s, "running") == 0 || strcmp(s, "skipped") == 0 ||
		strcmp(s, "cancelled") == 0;
}

/* Look s up in the "status_map" option, case-insensitively. */
static const char *
status_from_map(const char *s, const IngestOptions *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		matched = false;

	if (o->status_map == NULL)
		return NULL;
	it = JsonbIteratorInit(o->status_map);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			matched = (v.val.string.len == (int) strlen(s) &&
					   pg_strncasecmp(v.val.string.val, s, v.val.string.len) == 0);
		else if (tok == WJB_VALUE && matched)
		{
			char	   *mapped;

			if (v.type != jbvString)
				break;
			mapped = pnstrdup(v.val.string.val, v.val.string.len);
			if (!is_run_status(mapped))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"status_map\" maps \"%s\" to \"%s\", which is not a run status", s, mapped),
						 errhint("Run statuses are running, success, failed, skipped, cancelled.")));
			return mapped;
		}
	}
	return NULL;
}

/*
 * The run status for a source word, or NULL when the word is unknown
 * (callers report that: an unknown status is never guessed).
 */
const char *
value_status(const char *s, const IngestOptions *o)
{
	const char *mapped = status_from_map(s, o);
	int			i;

	if (mapped)
		return mapped;
	for (i = 0; i < lengthof(status_words); i++)
		if (pg_strcasecmp(status_words[i].word, s) == 0)
			return status_words[i].status;
	return NULL;
}
