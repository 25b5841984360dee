/*-------------------------------------------------------------------------
 * src/ingest/run_record.c
 *		The batch that parsers fill: validated run rows, log events and
 *		rejects, each in its own tuplestore.
 *
 * A record's text values (one per run field, already picked out by the
 * format parser) are converted and checked here, once for every format.
 * In strict mode the first bad value raises an error naming the line and
 * the source column; in quarantine mode it becomes a reject row instead.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ingest/ingest.h"
#include "template/template.h"

/* Column numbers of a batch run row (see store.c for the SQL side). */
enum
{
	BR_LINE_NO, BR_NAMESPACE, BR_PIPELINE, BR_EXTERNAL_ID, BR_ATTEMPT,
	BR_PARENT_ID, BR_STATUS, BR_STARTED_AT, BR_ENDED_AT, BR_DURATION,
	BR_ROWS_READ, BR_ROWS_WRITTEN, BR_BYTES, BR_HOST, BR_ERROR_MESSAGE,
	BR_TEMPLATE_ID, BR_ATTRS, BR_NCOLS
};

static Datum text_or_null(const char *s, bool *isnull);

static TupleDesc
make_desc(int n, const char *const *names, const Oid *types)
{
	TupleDesc	desc = CreateTemplateTupleDesc(n);
	int			i;

	for (i = 0; i < n; i++)
		TupleDescInitEntry(desc, (AttrNumber) (i + 1), names[i], types[i], -1, 0);
	return BlessTupleDesc(desc);
}

void
ingest_batch_init(IngestBatch *b, const IngestOptions *o)
{
	static const char *const run_names[BR_NCOLS] = {
		"line_no", "namespace", "pipeline", "external_id", "attempt",
		"parent_external_id", "status", "started_at", "ended_at", "duration",
		"rows_read", "rows_written", "bytes", "host", "error_message", "template_id", "attrs"};
	static const Oid run_types[BR_NCOLS] = {
		INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
		TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID,
		INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, JSONBOID};
	static const char *const event_names[] = {"line_no", "ts", "level", "component",
	"message", "template_id", "attrs", "run_line"};
	static const Oid event_types[] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
	TEXTOID, INT8OID, JSONBOID, INT8OID};
	static const char *const reject_names[] = {"line_no", "field", "raw", "reason"};
	static const Oid reject_types[] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	memset(b, 0, sizeof(*b));
	b->row_ctx = AllocSetContextCreate(CurrentMemoryContext, "smartetl ingest row",
									   ALLOCSET_DEFAULT_SIZES);
	b->run_desc = make_desc(BR_NCOLS, run_names, run_types);
	b->event_desc = make_desc(lengthof(event_names), event_names, event_types);
	b->reject_desc = make_desc(lengthof(reject_names), reject_names, reject_types);
	/* a bulk load: allow it the bulk-operation memory budget before spilling */
	b->runs = tuplestore_begin_heap(false, false, Max(work_mem, maintenance_work_mem));
	b->events = tuplestore_begin_heap(false, false, Max(work_mem, maintenance_work_mem));
	b->rejects = tuplestore_begin_heap(false, false, work_mem);
	b->min_ts = DT_NOEND;
	b->max_ts = DT_NOBEGIN;
	b->identities_cap = 1024;
	b->identities = palloc(sizeof(uint64) * b->identities_cap);
}

/* Release the batch's tuplestores (and their temporary files). */
void
ingest_batch_free(IngestBatch *b)
{
	tuplestore_end(b->runs);
	tuplestore_end(b->events);
	tuplestore_end(b->rejects);
	pfree(b->identities);
	MemoryContextDelete(b->row_ctx);
}

/* Add one log event (its template found or mined here). */
void
ingest_add_event(IngestBatch *b, const IngestOptions *o, const LogEventRow *ev)
{
	Datum		d[8];
	bool		nulls[8] = {false};
	int64		template_id = ingest_template_id(b, o, ev->message, ev->ts);

	d[0] = Int64GetDatum(ev->line_no);
	d[1] = TimestampTzGetDatum(ev->ts);
	d[2] = text_or_null(ev->level, &nulls[2]);
	d[3] = text_or_null(ev->component, &nulls[3]);
	d[4] = CStringGetTextDatum(ev->message);
	nulls[5] = template_id == 0;
	d[5] = Int64GetDatum(template_id);
	nulls[6] = ev->attrs == NULL;
	d[6] = ev->attrs ? JsonbPGetDatum(ev->attrs) : (Datum) 0;
	nulls[7] = ev->run_line == 0;
	d[7] = Int64GetDatum(ev->run_line);
	tuplestore_putvalues(b->events, b->event_desc, d, nulls);
	b->nevents++;
	b->events_link_runs |= ev->run_line != 0;
	b->min_ts = Min(b->min_ts, ev->ts);
	b->max_ts = Max(b->max_ts, ev->ts);
	b->min_line = b->nevents == 1 ? ev->line_no : Min(b->min_line, ev->line_no);
	b->max_line = b->nevents == 1 ? ev->line_no : Max(b->max_line, ev->line_no);
}

/* Record a bad row (quarantine mode). */
void
ingest_reject(IngestBatch *b, const IngestOptions *o, long line_no,
			  const char *raw, const char *field, const char *reason)
{
	Datum		values[4];
	bool		nulls[4] = {false, field == NULL, raw == NULL, false};

	values[0] = Int64GetDatum(line_no);
	values[1] = field ? CStringGetTextDatum(field) : (Datum) 0;
	values[2] = raw ? CStringGetTextDatum(raw) : (Datum) 0;
	values[3] = CStringGetTextDatum(reason);
	tuplestore_putvalues(b->rejects, b->reject_desc, values, nulls);
	b->nrejects++;
}

/*
 * A line the reader could not accept (too long, NUL byte, bad encoding):
 * an error naming the line, or a reject.
 */
void
ingest_line_problem(IngestBatch *b, const IngestOptions *o, LineStatus st,
					LineReader *r)
{
	char	   *reason;

	if (st == LINE_IO_ERROR)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read %s input after line %ld: %m",
						o->format->name, r->line_no)));
	switch (st)
	{
		case LINE_TOO_LONG:
			reason = psprintf("line is longer than max_line_bytes (%zu bytes)", o->max_line);
			break;
		case LINE_HAS_NUL:
			reason = psprintf("line contains a NUL byte at byte %zu", r->bad_offset + 1);
			break;
		case LINE_BAD_ENCODING:
			reason = psprintf("line is not valid %s at byte %zu",
							  GetDatabaseEncodingName(), r->bad_offset + 1);
			break;
		default:
			reason = pstrdup("unreadable line");
	}
	if (!o->quarantine)
		ereport(ERROR,
				(errcode(st == LINE_BAD_ENCODING ? ERRCODE_CHARACTER_NOT_IN_REPERTOIRE :
						 ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid %s input on line %ld", o->format->name, r->line_no),
				 errdetail("The %s.", reason),
				 errhint("Use {\"on_error\": \"quarantine\"} to store the other lines and keep this one in smartetl.ingest_reject.")));
	ingest_reject(b, o, r->line_no, NULL, NULL, reason);
}

/* Either raise the error for a bad value or return it as a reject. */
void
ingest_field_error(IngestBatch *b, const IngestOptions *o, long line_no,
				   const char *raw, const FieldError *e)
{
	if (!o->quarantine)
		ereport(ERROR,
				(errcode(e->sqlerrcode ? e->sqlerrcode : ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid %s input on line %ld, column \"%s\"",
						o->format->name, line_no, e->field),
				 errdetail("Expected %s, found \"%s\".", e->expected, e->found),
				 errhint("Use {\"on_error\": \"quarantine\"} to store the other rows and keep this one in smartetl.ingest_reject.")));
	ingest_reject(b, o, line_no, raw, e->field,
				  psprintf("column \"%s\": expected %s, found \"%s\"",
						   e->field, e->expected, e->found));
}

static int
cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y);
}

/*
 * Could two runs of the batch have the same identity?  Equal hashes say
 * "maybe" (store.c then deduplicates exactly, in SQL); distinct hashes
 * prove there are none.  Sorting once is cheaper than a hash table probe
 * per row.
 */
bool
ingest_batch_has_duplicates(IngestBatch *b)
{
	int64		i;

	qsort(b->identities, b->nruns, sizeof(uint64), cmp_uint64);
	for (i = 1; i < b->nruns; i++)
		if (b->identities[i] == b->identities[i - 1])
			return true;
	return false;
}

/*
 * The template id of a message, learning it (0 when the miner is full).  A
 * dry run mines too, so that it measures what ingesting costs, but stores
 * nothing and answers 0 (source.c ends it with template_dry_run_end).
 */
int64
ingest_template_id(IngestBatch *b, const IngestOptions *o, const char *msg,
				   TimestampTz ts)
{
	b->templates = true;
	if (o->dry_run)
	{
		template_mine_dry(msg, strlen(msg));
		return 0;
	}
	return template_learn(msg, strlen(msg), ts);
}

/* When a run happened, for its template's first/last seen times. */
static TimestampTz
run_time(Datum *d, bool *nulls)
{
	if (!nulls[BR_STARTED_AT])
		return DatumGetTimestampTz(d[BR_STARTED_AT]);
	if (!nulls[BR_ENDED_AT])
		return DatumGetTimestampTz(d[BR_ENDED_AT]);
	return GetCurrentTransactionStartTimestamp();
}

/* Remember the hash of a run's identity, for ingest_batch_has_duplicates. */
static void
note_identity(IngestBatch *b, char **v, TimestampTz started, int32 attempt)
{
	StringInfoData key;

	initStringInfo(&key);
	appendStringInfo(&key, "%s%c%s%c", v[RF_NAMESPACE], 0, v[RF_PIPELINE], 0);
	if (v[RF_EXTERNAL_ID])
		appendStringInfo(&key, "%s%c%d", v[RF_EXTERNAL_ID], 0, attempt);
	else
		appendBinaryStringInfo(&key, (char *) &started, sizeof(started));
	if (b->nruns == b->identities_cap)
	{
		b->identities_cap *= 2;
		b->identities = repalloc_huge(b->identities, sizeof(uint64) * b->identities_cap);
	}
	b->identities[b->nruns] = hash_bytes_extended((unsigned char *) key.data, key.len, 0);
}

/*
 * Convert one timestamp field, which must lie in the accepted window; on
 * failure fill *e and return false.
 */
static bool
convert_timestamp(char **v, RunField f, const char *const *src, const IngestOptions *o,
				  TimestampTz *out, FieldError *e)
{
	e->field = src[f];
	e->found = v[f];
	if (!value_timestamp(v[f], o, out))
	{
		e->expected = "a timestamp (ISO 8601, 'YYYY-MM-DD HH24:MI:SS[.ffffff]' or epoch seconds/milliseconds)";
		return false;
	}
	if (!ingest_time_in_window(*out, o, &e->expected))
	{
		e->sqlerrcode = ERRCODE_DATETIME_VALUE_OUT_OF_RANGE;
		return false;
	}
	return true;
}

/*
 * Is the duration shorter than the absolute window?  Then adding it to a
 * time in the window cannot overflow.  Months count as 30 days, as in
 * interval comparison; a double holds the sum without overflow.
 */
static bool
duration_fits(const Interval *dur)
{
	double		us = (double) dur->time +
		((double) dur->day + (double) dur->month * DAYS_PER_MONTH) * USECS_PER_DAY;

	return us < (double) (ingest_abs_max_time() - ingest_abs_min_time());
}

/* The end (start) derived from a duration must be in the window too. */
static bool
derived_time_ok(TimestampTz t, RunField dur_field, char **v, const char *const *src,
				const IngestOptions *o, const char *which, FieldError *e)
{
	const char *expected;

	if (ingest_time_in_window(t, o, &expected))
		return true;
	e->field = src[dur_field];
	e->found = v[dur_field];
	e->expected = psprintf("a duration that puts the run's %s at %s", which, expected);
	e->sqlerrcode = ERRCODE_DATETIME_VALUE_OUT_OF_RANGE;
	return false;
}

static bool
convert_count(char **v, RunField f, const char *const *src, Datum *d, bool *isnull,
			  FieldError *e)
{
	int64		n;

	*isnull = (v[f] == NULL);
	if (*isnull)
		return true;
	if (value_int64(v[f], &n) && n >= 0)
	{
		*d = Int64GetDatum(n);
		return true;
	}
	e->field = src[f];
	e->expected = "a non-negative integer";
	e->found = v[f];
	return false;
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Times: derive the missing one of started_at/ended_at/duration from the others. */
static bool
convert_times(char **v, const char *const *src, const IngestOptions *o,
			  Datum *d, bool *nulls, TimestampTz *started, FieldError *e)
{
	TimestampTz ended = 0;
	Interval   *dur = NULL;
	bool		has_start = v[RF_STARTED_AT] != NULL;
	bool		has_end = v[RF_ENDED_AT] != NULL;

	if (has_start && !convert_timestamp(v, RF_STARTED_AT, src, o, started, e))
		return false;
	if (has_end && !convert_timestamp(v, RF_ENDED_AT, src, o, &ended, e))
		return false;
	if (v[RF_DURATION])
	{
		dur = palloc(sizeof(Interval));
		e->field = src[RF_DURATION];
		e->found = v[RF_DURATION];
		if (!value_duration(v[RF_DURATION], o, dur))
		{
			e->expected = "a non-negative duration (seconds, 'HH:MM:SS', ISO 8601 or interval text)";
			return false;
		}
		if (!duration_fits(dur))
		{
			e->expected = psprintf("a duration shorter than %d years",
								   INGEST_ABS_MAX_YEAR - INGEST_ABS_MIN_YEAR);
			e->sqlerrcode = ERRCODE_DATETIME_VALUE_OUT_OF_RANGE;
			return false;
		}
	}
	if (has_start && has_end && ended < *started)
	{
		e->field = src[RF_ENDED_AT];
		e->expected = "an end time not before the start time";
		e->found = v[RF_ENDED_AT];
		return false;
	}
	if (has_start && has_end && dur == NULL)
		dur = DatumGetIntervalP(DirectFunctionCall2(timestamp_mi,
													TimestampTzGetDatum(ended),
													TimestampTzGetDatum(*started)));
	if (has_start && !has_end && dur != NULL)
	{
		/* both in range (duration_fits), so this cannot overflow */
		ended = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														TimestampTzGetDatum(*started),
														IntervalPGetDatum(dur)));
		if (!derived_time_ok(ended, RF_DURATION, v, src, o, "end", e))
			return false;
		has_end = true;
	}
	else if (!has_start && has_end && dur != NULL)
	{
		*started = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														   TimestampTzGetDatum(ended),
														   IntervalPGetDatum(dur)));
		if (!derived_time_ok(*started, RF_DURATION, v, src, o, "start", e))
			return false;
		has_start = true;
	}
	nulls[BR_STARTED_AT] = !has_start;
	d[BR_STARTED_AT] = TimestampTzGetDatum(*started);
	nulls[BR_ENDED_AT] = !has_end;
	d[BR_ENDED_AT] = TimestampTzGetDatum(ended);
	nulls[BR_DURATION] = (dur == NULL);
	d[BR_DURATION] = PointerGetDatum(dur);
	return true;
}

static bool
convert_identity(char **v, const char *const *src, const IngestOptions *o,
				 Datum *d, bool *nulls, FieldError *e)
{
	int64		attempt = 1;
	const char *status;

	if (v[RF_PIPELINE] == NULL)
		v[RF_PIPELINE] = o->pipeline;
	if (v[RF_NAMESPACE] == NULL)
		v[RF_NAMESPACE] = o->namespace;
	if (v[RF_PIPELINE] == NULL)
	{
		*e = (FieldError) {src[RF_PIPELINE], "a pipeline name", ""};
		return false;
	}
	if (v[RF_STATUS] == NULL || (status = value_status(v[RF_STATUS], o)) == NULL)
	{
		*e = (FieldError) {src[RF_STATUS],
			"a run status (success, failed, running, skipped, cancelled, a common synonym, or a word in options->'status_map')",
		v[RF_STATUS] ? v[RF_STATUS] : ""};
		return false;
	}
	if (v[RF_ATTEMPT] && (!value_int64(v[RF_ATTEMPT], &attempt) ||
						  attempt < 0 || attempt > PG_INT32_MAX))
	{
		*e = (FieldError) {src[RF_ATTEMPT], "a non-negative attempt number", v[RF_ATTEMPT]};
		return false;
	}
	d[BR_NAMESPACE] = text_or_null(v[RF_NAMESPACE], &nulls[BR_NAMESPACE]);
	d[BR_PIPELINE] = text_or_null(v[RF_PIPELINE], &nulls[BR_PIPELINE]);
	d[BR_EXTERNAL_ID] = text_or_null(v[RF_EXTERNAL_ID], &nulls[BR_EXTERNAL_ID]);
	d[BR_ATTEMPT] = Int32GetDatum((int32) attempt);
	d[BR_PARENT_ID] = text_or_null(v[RF_PARENT_ID], &nulls[BR_PARENT_ID]);
	d[BR_STATUS] = CStringGetTextDatum(status);
	return true;
}

/*
 * Validate one record's values (NULL = absent or empty) and add it to the
 * batch.  src names the source column of each field, for messages.
 */
void
ingest_add_run(IngestBatch *b, const IngestOptions *o, char **values,
			   const char *const *src, Jsonb *attrs, long line_no, const char *raw)
{
	Datum		d[BR_NCOLS];
	bool		nulls[BR_NCOLS];
	TimestampTz started = 0;
	FieldError	e = {0};

	memset(nulls, 0, sizeof(nulls));
	d[BR_LINE_NO] = Int64GetDatum(line_no);
	if ((b->started_src == NULL && src[RF_STARTED_AT]) ||
		(b->ended_src == NULL && src[RF_ENDED_AT]))
	{
		/* kept for store.c, which checks records against stored runs */
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(b->identities));

		if (b->started_src == NULL && src[RF_STARTED_AT])
			b->started_src = pstrdup(src[RF_STARTED_AT]);
		if (b->ended_src == NULL && src[RF_ENDED_AT])
			b->ended_src = pstrdup(src[RF_ENDED_AT]);
		MemoryContextSwitchTo(old);
	}
	if (!convert_identity(values, src, o, d, nulls, &e) ||
		!convert_times(values, src, o, d, nulls, &started, &e) ||
		!convert_count(values, RF_ROWS_READ, src, &d[BR_ROWS_READ], &nulls[BR_ROWS_READ], &e) ||
		!convert_count(values, RF_ROWS_WRITTEN, src, &d[BR_ROWS_WRITTEN], &nulls[BR_ROWS_WRITTEN], &e) ||
		!convert_count(values, RF_BYTES, src, &d[BR_BYTES], &nulls[BR_BYTES], &e))
	{
		ingest_field_error(b, o, line_no, raw, &e);
		return;
	}
	if (values[RF_EXTERNAL_ID] == NULL && nulls[BR_STARTED_AT])
	{
		e = (FieldError) {src[RF_EXTERNAL_ID], "a run id or a start time to identify the run", ""};
		ingest_field_error(b, o, line_no, raw, &e);
		return;
	}
	d[BR_HOST] = text_or_null(values[RF_HOST], &nulls[BR_HOST]);
	d[BR_ERROR_MESSAGE] = text_or_null(values[RF_ERROR_MESSAGE], &nulls[BR_ERROR_MESSAGE]);
	d[BR_TEMPLATE_ID] = Int64GetDatum(values[RF_ERROR_MESSAGE] ?
									  ingest_template_id(b, o, values[RF_ERROR_MESSAGE],
														 run_time(d, nulls)) : 0);
	nulls[BR_TEMPLATE_ID] = DatumGetInt64(d[BR_TEMPLATE_ID]) == 0;
	nulls[BR_ATTRS] = (attrs == NULL);
	d[BR_ATTRS] = attrs ? JsonbPGetDatum(attrs) : (Datum) 0;

	note_identity(b, values, started, DatumGetInt32(d[BR_ATTEMPT]));
	tuplestore_putvalues(b->runs, b->run_desc, d, nulls);
	b->nruns++;
}
