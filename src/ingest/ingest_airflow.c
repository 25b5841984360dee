/*-------------------------------------------------------------------------
 * src/ingest/ingest_airflow.c
 *		format 'airflow': Airflow task logs, or the JSON of Airflow's REST
 *		API (dagRuns and taskInstances lists; ingest_airflow_rest.c).
 *
 * A task log is read as log events in Airflow's line shape, both
 * "[2024-05-01T00:00:02.123+0000] {taskinstance.py:1234} INFO - msg" and
 * the older "[2024-05-01 00:00:02,123] {...} INFO - msg"; a traceback
 * continues the ERROR entry before it.  The marker lines (airflow_marker.c)
 * make each try of the task instance a run: pipeline "<dag_id>.<task_id>",
 * external id the DAG run id (with "[map_index]" for mapped tasks),
 * attempt the try number, parent the DAG run (pipeline <dag_id>, the same
 * run id).  Status from "Marking task as ..." (UP_FOR_RETRY counts as a
 * failed try), else from the exit code, else running; the error is the
 * traceback's exception line.  Every event is linked to its run.  Several
 * tries (or task logs) one after another in one input become several runs.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ingest/airflow_marker.h"
#include "ingest/ingest.h"

#define AIRFLOW_LOG_FORMAT "\\[<Timestamp>\\] \\{<Component>\\} <Level> - <Content>"

static const char *const task_paths[RF_COUNT] = {
	[RF_PIPELINE] = "dag_id.task_id", [RF_NAMESPACE] = "namespace",
	[RF_EXTERNAL_ID] = "run_id", [RF_ATTEMPT] = "try_number",
	[RF_PARENT_ID] = "run_id", [RF_STATUS] = "Marking task as",
	[RF_STARTED_AT] = "Starting attempt", [RF_ENDED_AT] = "Marking task as",
	[RF_DURATION] = "duration", [RF_ROWS_READ] = "rows_read",
	[RF_ROWS_WRITTEN] = "rows_written", [RF_BYTES] = "bytes",
	[RF_HOST] = "Running <TaskInstance> on host",
	[RF_ERROR_MESSAGE] = "Task failed with exception",
};

/* The try being read. */
typedef struct TaskTry
{
	MemoryContext ctx;			/* its facts; reset between tries */
	AirflowFacts facts;
	long		first_line;		/* 0 = no entry yet */
	bool		saw_start;		/* "Starting attempt" seen */
	bool		terminal;		/* state line or exit code seen */
	TimestampTz started;
	TimestampTz ended;
	const IngestOptions *o;
	IngestBatch *b;
} TaskTry;

/* Run status of an Airflow task state, or NULL when it says nothing. */
static const char *
task_state_status(const char *state)
{
	static const char *const map[][2] = {
		{"SUCCESS", "success"}, {"FAILED", "failed"}, {"UP_FOR_RETRY", "failed"},
		{"SKIPPED", "skipped"}, {"UPSTREAM_FAILED", "skipped"}, {"REMOVED", "cancelled"},
		{"SHUTDOWN", "cancelled"}, {"RESTARTING", "cancelled"}};
	int			i;

	for (i = 0; state && i < lengthof(map); i++)
		if (pg_strcasecmp(state, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

static const char *
try_status(const AirflowFacts *f)
{
	const char *status = task_state_status(f->state);

	if (status)
		return status;
	if (f->return_code)
		return strcmp(f->return_code, "0") == 0 ? "success" : "failed";
	return "running";
}

/* ISO 8601 text of a time, as ingest_add_run reads times. */
static char *
iso_time(TimestampTz ts)
{
	if (ts == DT_NOBEGIN)
		return NULL;
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall2(timestamptz_to_char,
															  TimestampTzGetDatum(ts),
															  CStringGetTextDatum("YYYY-MM-DD\"T\"HH24:MI:SS.USOF"))));
}

static Jsonb *
try_attrs(const AirflowFacts *f)
{
	JsonbParseState *st = NULL;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	json_doc_put_text(&st, "dag_id", f->dag_id);
	json_doc_put_text(&st, "task_id", f->task_id);
	json_doc_put_text(&st, "parent_pipeline", f->dag_id);
	if (f->state)
		json_doc_put_text(&st, "airflow_state", asc_tolower(f->state, strlen(f->state)));
	json_doc_put_text(&st, "operator", f->operator_name);
	json_doc_put_text(&st, "logical_date", f->logical_date);
	json_doc_put_text(&st, "owner", f->owner);
	json_doc_put_text(&st, "return_code", f->return_code);
	if (f->max_tries > 0)
		json_doc_put_text(&st, "max_tries", psprintf("%d", f->max_tries));
	if (f->map_index >= 0)
		json_doc_put_text(&st, "map_index", psprintf("%d", f->map_index));
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* The finished try as a run, when the log named its task instance. */
static void
try_close(TaskTry *t)
{
	AirflowFacts *f = &t->facts;
	char	   *values[RF_COUNT] = {0};

	if (t->first_line > 0 && f->dag_id && f->task_id && f->run_id)
	{
		values[RF_NAMESPACE] = t->o->namespace;
		values[RF_PIPELINE] = psprintf("%s.%s", f->dag_id, f->task_id);
		values[RF_EXTERNAL_ID] = f->map_index >= 0 ?
			psprintf("%s[%d]", f->run_id, f->map_index) : f->run_id;
		values[RF_PARENT_ID] = f->run_id;
		if (f->attempt > 0)
			values[RF_ATTEMPT] = psprintf("%d", f->attempt);
		values[RF_STATUS] = (char *) try_status(f);
		values[RF_STARTED_AT] = iso_time(t->started);
		values[RF_ENDED_AT] = t->terminal ? iso_time(t->ended) : NULL;
		values[RF_HOST] = f->host;
		if (strcmp(values[RF_STATUS], "failed") == 0)
			values[RF_ERROR_MESSAGE] = f->error ? f->error : "task failed";
		ingest_add_run(t->b, t->o, values, task_paths, try_attrs(f), t->first_line, NULL);
	}
	MemoryContextReset(t->ctx);
	airflow_facts_init(&t->facts);
	t->first_line = 0;
	t->saw_start = t->terminal = false;
	t->started = t->ended = DT_NOBEGIN;
}

/* Does this marker begin the next try of the input? */
static bool
begins_next_try(const TaskTry *t, AirflowMarker m)
{
	if (m == AFM_START_ATTEMPT)
		return t->terminal || t->saw_start;
	return (m == AFM_TASK_INSTANCE || m == AFM_RUNNING) && t->terminal;
}

/* LogEventHook: follow the markers, link the entry to its try. */
static void
task_log_entry(void *arg, LogEventRow *ev)
{
	TaskTry    *t = arg;
	AirflowFacts probe;
	AirflowMarker m;
	MemoryContext old;

	airflow_facts_init(&probe);
	m = airflow_marker_scan(ev->message, &probe);
	if (m != AFM_NONE && begins_next_try(t, m))
		try_close(t);
	if (t->first_line == 0)
	{
		t->first_line = ev->line_no;
		t->started = ev->ts;
	}
	ev->run_line = t->first_line;
	if (m == AFM_NONE)
		return;
	old = MemoryContextSwitchTo(t->ctx);
	airflow_marker_scan(ev->message, &t->facts);
	MemoryContextSwitchTo(old);
	if (m == AFM_START_ATTEMPT)
	{
		t->saw_start = true;
		t->started = ev->ts;
	}
	if ((m == AFM_MARK_STATE || m == AFM_EXIT_CODE) && !t->terminal)
	{
		t->terminal = true;
		t->ended = ev->ts;
	}
}

static void
ingest_airflow_task_log(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	TaskTry		t;

	memset(&t, 0, sizeof(t));
	t.ctx = AllocSetContextCreate(CurrentMemoryContext, "smartetl airflow try",
								  ALLOCSET_SMALL_SIZES);
	t.o = o;
	t.b = b;
	airflow_facts_init(&t.facts);
	t.started = t.ended = DT_NOBEGIN;
	log_events_read(r, o, b, AIRFLOW_LOG_FORMAT, task_log_entry, &t);
	try_close(&t);
	MemoryContextDelete(t.ctx);
}

/* JSON ({...}, or [ followed by { or ]) rather than a "[2024-..." log line. */
static bool
looks_like_json(const char *line)
{
	const char *p = line + strspn(line, " \t");

	if (*p == '{')
		return true;
	if (*p != '[')
		return false;
	p += 1 + strspn(p + 1, " \t");
	return *p == '{' || *p == ']' || *p == '\0';
}

void
ingest_airflow(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	LineStatus	st;

	while ((st = line_reader_next(r)) == LINE_OK && strspn(r->line.data, " \t") == (size_t) r->line.len)
		;
	if (st == LINE_EOF)
		return;
	line_reader_unread(r);
	if (st == LINE_OK && looks_like_json(r->line.data))
		json_docs_read(r, o, b,
					   "Send the JSON of GET /api/v1/dags/{dag}/dagRuns or .../taskInstances, or one such document per line.",
					   airflow_rest_document);
	else
		ingest_airflow_task_log(r, o, b);
}
