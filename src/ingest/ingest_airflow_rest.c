/*-------------------------------------------------------------------------
 * src/ingest/ingest_airflow_rest.c
 *		format 'airflow', JSON half: the responses of Airflow's stable REST
 *		API, GET /api/v1/dags/{dag_id}/dagRuns ({"dag_runs": [...]}) and
 *		GET .../dagRuns/{run_id}/taskInstances ({"task_instances": [...]}),
 *		or a single DAG run or task instance object, or an array of them.
 *
 * A DAG run is a run of pipeline <dag_id> with the DAG run id as external
 * id.  A task instance is a run of pipeline "<dag_id>.<task_id>" with the
 * same external id (plus "[map_index]" for mapped tasks), attempt
 * try_number, and the DAG run as parent, the same identity the task log
 * gives, so a log and the API's view of one try converge on one row.
 * Airflow states: success, failed, running; queued, scheduled, deferred,
 * up_for_reschedule and restarting → running; up_for_retry → failed (that
 * try failed); skipped and upstream_failed → skipped; removed → cancelled.
 * The Airflow state is kept in attrs.airflow_state.  A task instance that
 * has not started (no start_date, state none/scheduled/queued) is not a run
 * yet and is left out.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "ingest/ingest.h"

static const char *const dag_run_paths[RF_COUNT] = {
	[RF_PIPELINE] = "dag_runs[].dag_id", [RF_NAMESPACE] = "namespace",
	[RF_EXTERNAL_ID] = "dag_runs[].dag_run_id", [RF_ATTEMPT] = "attempt",
	[RF_PARENT_ID] = "parent", [RF_STATUS] = "dag_runs[].state",
	[RF_STARTED_AT] = "dag_runs[].start_date", [RF_ENDED_AT] = "dag_runs[].end_date",
	[RF_DURATION] = "duration", [RF_ROWS_READ] = "rows_read",
	[RF_ROWS_WRITTEN] = "rows_written", [RF_BYTES] = "bytes", [RF_HOST] = "host",
	[RF_ERROR_MESSAGE] = "error",
};

static const char *const task_paths[RF_COUNT] = {
	[RF_PIPELINE] = "task_instances[].task_id", [RF_NAMESPACE] = "namespace",
	[RF_EXTERNAL_ID] = "task_instances[].dag_run_id", [RF_ATTEMPT] = "task_instances[].try_number",
	[RF_PARENT_ID] = "task_instances[].dag_run_id", [RF_STATUS] = "task_instances[].state",
	[RF_STARTED_AT] = "task_instances[].start_date", [RF_ENDED_AT] = "task_instances[].end_date",
	[RF_DURATION] = "task_instances[].duration", [RF_ROWS_READ] = "rows_read",
	[RF_ROWS_WRITTEN] = "rows_written", [RF_BYTES] = "bytes",
	[RF_HOST] = "task_instances[].hostname", [RF_ERROR_MESSAGE] = "error",
};

/* Run status of an Airflow state (lower case in the API); unknown words pass through. */
static const char *
rest_status(const char *state)
{
	static const char *const map[][2] = {
		{"success", "success"}, {"failed", "failed"}, {"running", "running"},
		{"queued", "running"}, {"scheduled", "running"}, {"deferred", "running"},
		{"up_for_reschedule", "running"}, {"restarting", "running"},
		{"up_for_retry", "failed"}, {"skipped", "skipped"},
		{"upstream_failed", "skipped"}, {"removed", "cancelled"}, {"shutdown", "cancelled"}};
	int			i;

	for (i = 0; state && i < lengthof(map); i++)
		if (pg_strcasecmp(state, map[i][0]) == 0)
			return map[i][1];
	return state;
}

/* attrs: airflow_state and the listed keys that are present. */
static Jsonb *
rest_attrs(JsonbContainer *obj, const char *state, const char *const *keys, const char *parent)
{
	JsonbParseState *st = NULL;
	JsonbValue	buf;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	json_doc_put_text(&st, "airflow_state", state);
	json_doc_put_text(&st, "parent_pipeline", parent);
	for (; *keys; keys++)
		json_doc_put(&st, *keys, json_doc_get(obj, *keys, &buf));
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

static void
rest_dag_run(JsonbContainer *obj, long line_no, const char *raw,
			 const IngestOptions *o, IngestBatch *b)
{
	static const char *const kept[] = {
		"run_type", "logical_date", "execution_date", "data_interval_start",
		"data_interval_end", "external_trigger", "queued_at", "note", "conf", NULL};
	char	   *values[RF_COUNT] = {0};
	char	   *state = json_doc_text(obj, "state");

	values[RF_NAMESPACE] = o->namespace;
	values[RF_PIPELINE] = json_doc_text(obj, "dag_id");
	values[RF_EXTERNAL_ID] = json_doc_text(obj, "dag_run_id");
	values[RF_STATUS] = (char *) rest_status(state);
	values[RF_STARTED_AT] = json_doc_text(obj, "start_date");
	values[RF_ENDED_AT] = json_doc_text(obj, "end_date");
	if (values[RF_STATUS] && strcmp(values[RF_STATUS], "failed") == 0)
		values[RF_ERROR_MESSAGE] = "DAG run failed";
	ingest_add_run(b, o, values, dag_run_paths, rest_attrs(obj, state, kept, NULL), line_no, raw);
}

static bool
not_started(const char *state, const char *start_date)
{
	return start_date == NULL &&
		(state == NULL || strcmp(state, "none") == 0 || strcmp(state, "scheduled") == 0 ||
		 strcmp(state, "queued") == 0 || strcmp(state, "removed") == 0);
}

static void
rest_task_instance(JsonbContainer *obj, long line_no, const char *raw,
				   const IngestOptions *o, IngestBatch *b)
{
	static const char *const kept[] = {
		"dag_id", "task_id", "operator", "pool", "queue", "priority_weight", "max_tries",
		"map_index", "execution_date", "queued_when", "pid", "unixname", "note", NULL};
	char	   *values[RF_COUNT] = {0};
	char	   *state = json_doc_text(obj, "state");
	char	   *dag_id = json_doc_text(obj, "dag_id");
	char	   *task_id = json_doc_text(obj, "task_id");
	char	   *run_id = json_doc_text(obj, "dag_run_id");
	char	   *map_index = json_doc_text(obj, "map_index");

	values[RF_STARTED_AT] = json_doc_text(obj, "start_date");
	if (not_started(state, values[RF_STARTED_AT]))
		return;
	/* Airflow < 2.2 has no dag_run_id: the execution date names the run */
	if (run_id == NULL)
		run_id = json_doc_text(obj, "execution_date");
	values[RF_NAMESPACE] = o->namespace;
	values[RF_PIPELINE] = dag_id && task_id ? psprintf("%s.%s", dag_id, task_id) : NULL;
	values[RF_EXTERNAL_ID] = run_id && map_index && strcmp(map_index, "-1") != 0 ?
		psprintf("%s[%s]", run_id, map_index) : run_id;
	values[RF_PARENT_ID] = run_id;
	values[RF_ATTEMPT] = json_doc_text(obj, "try_number");
	values[RF_STATUS] = (char *) rest_status(state);
	values[RF_ENDED_AT] = json_doc_text(obj, "end_date");
	values[RF_HOST] = json_doc_text(obj, "hostname");
	if (values[RF_STATUS] && strcmp(values[RF_STATUS], "failed") == 0)
		values[RF_ERROR_MESSAGE] = psprintf("task %s", state);
	ingest_add_run(b, o, values, task_paths, rest_attrs(obj, state, kept, dag_id), line_no, raw);
}

/* One object: a task instance (has task_id) or a DAG run. */
static void
rest_object(JsonbContainer *obj, long line_no, const char *raw,
			const IngestOptions *o, IngestBatch *b)
{
	JsonbValue	buf;

	if (json_doc_get(obj, "task_id", &buf))
		rest_task_instance(obj, line_no, raw, o, b);
	else
		rest_dag_run(obj, line_no, raw, o, b);
}

/*
 * Each object of an array.  In a whole document the objects are numbered
 * from 1 in place of a line number (as dbt results are), so that several
 * entries of one run apply in order; in JSON lines they share their line.
 */
static void
rest_array(JsonbContainer *arr, long *seq, const char *raw,
		   const IngestOptions *o, IngestBatch *b)
{
	JsonbIterator *it = JsonbIteratorInit(arr);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM && v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			rest_object(v.val.binary.data, *seq, raw, o, b);
			if (raw == NULL)
				(*seq)++;
		}
}

/* JsonDocHandler: a list response, a single object or an array of objects. */
void
airflow_rest_document(Jsonb *doc, long line_no, const char *raw,
					  const IngestOptions *o, IngestBatch *b)
{
	static const char *const lists[] = {"dag_runs", "task_instances"};
	JsonbValue	buf;
	bool		any = false;
	long		seq = line_no;
	int			i;

	if (JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid airflow input on line %ld: expected an object or an array", line_no)));
	if (JB_ROOT_IS_ARRAY(doc))
	{
		rest_array(&doc->root, &seq, raw, o, b);
		return;
	}
	for (i = 0; i < lengthof(lists); i++)
	{
		JsonbValue *list = json_doc_get(&doc->root, lists[i], &buf);

		if (list == NULL)
			continue;
		if (list->type != jbvBinary || !JsonContainerIsArray(list->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid airflow input on line %ld, field \"%s\"", line_no, lists[i]),
					 errdetail("Expected an array.")));
		rest_array(list->val.binary.data, &seq, raw, o, b);
		any = true;
	}
	if (!any)
		rest_object(&doc->root, line_no, raw, o, b);
}
