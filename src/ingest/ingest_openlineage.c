/*-------------------------------------------------------------------------
 * src/ingest/ingest_openlineage.c
 *		format 'openlineage': OpenLineage RunEvents as runs.
 *
 * The input is one event, a JSON array of events, or JSON lines of events.
 * Each event becomes a run record: job.namespace + job.name are the
 * pipeline, run.runId the external id, eventType the status (START and
 * RUNNING → running, COMPLETE → success, FAIL → failed, ABORT → cancelled,
 * OTHER → running), eventTime the start (START) or end (COMPLETE, FAIL,
 * ABORT) time.  The parent run facet gives the parent run, the errorMessage
 * facet the error; output dataset statistics give rows and bytes written,
 * input statistics rows read.  Dataset names, nominal time, processing
 * engine and producer are kept in attrs; the stack trace becomes a log
 * event of the run.
 *
 * Events of one run are merged (store.c applies several events of a run in
 * order; a late START never reopens a finished run), so events arriving
 * out of order converge on the same final row.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "ingest/ingest.h"

/* JSON path of each run field, for error messages */
static const char *const ol_paths[RF_COUNT] = {
	[RF_PIPELINE] = "job.name",
	[RF_NAMESPACE] = "job.namespace",
	[RF_EXTERNAL_ID] = "run.runId",
	[RF_ATTEMPT] = "attempt",
	[RF_PARENT_ID] = "run.facets.parent.run.runId",
	[RF_STATUS] = "eventType",
	[RF_STARTED_AT] = "eventTime",
	[RF_ENDED_AT] = "eventTime",
	[RF_DURATION] = "duration",
	[RF_ROWS_READ] = "inputs[].inputFacets.inputStatistics.rowCount",
	[RF_ROWS_WRITTEN] = "outputs[].outputFacets.outputStatistics.rowCount",
	[RF_BYTES] = "outputs[].outputFacets.outputStatistics.size",
	[RF_HOST] = "host",
	[RF_ERROR_MESSAGE] = "run.facets.errorMessage.message",
};

typedef struct DatasetStats
{
	JsonbParseState *names;		/* array of "namespace/name" being built */
	int64		rows;
	int64		bytes;
	bool		have_rows;
	bool		have_bytes;
} DatasetStats;

static void
add_count(const char *text, int64 *sum, bool *have)
{
	int64		n;

	if (text && value_int64(text, &n) && n >= 0)
	{
		*sum += n;
		*have = true;
	}
}

/* Walk inputs or outputs: their names, and the statistics facet sums. */
static void
ol_datasets(JsonbContainer *ev, const char *key, const char *facet, DatasetStats *st)
{
	JsonbValue	buf;
	JsonbValue *arr = json_doc_get(ev, key, &buf);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *rows_path = psprintf("%s.rowCount", facet);
	char	   *size_path = psprintf("%s.size", facet);

	pushJsonbValue(&st->names, WJB_BEGIN_ARRAY, NULL);
	if (arr && arr->type == jbvBinary && JsonContainerIsArray(arr->val.binary.data))
	{
		it = JsonbIteratorInit(arr->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			JsonbValue	name;
			char	   *ns,
					   *nm;

			if (tok != WJB_ELEM || v.type != jbvBinary)
				continue;
			ns = json_doc_text(v.val.binary.data, "namespace");
			nm = json_doc_text(v.val.binary.data, "name");
			name.type = jbvString;
			name.val.string.val = psprintf("%s/%s", ns ? ns : "", nm ? nm : "");
			name.val.string.len = strlen(name.val.string.val);
			pushJsonbValue(&st->names, WJB_ELEM, &name);
			add_count(json_doc_text(v.val.binary.data, rows_path), &st->rows, &st->have_rows);
			add_count(json_doc_text(v.val.binary.data, size_path), &st->bytes, &st->have_bytes);
		}
	}
}

/* Event details that are not run fields, for run.attrs. */
static Jsonb *
ol_attrs(JsonbContainer *ev, DatasetStats *in, DatasetStats *out)
{
	JsonbParseState *st = NULL;
	JsonbValue	buf;
	JsonbValue *res;
	static const char *const kept[][2] = {
		{"eventType", "eventType"}, {"producer", "producer"},
		{"nominalTime", "run.facets.nominalTime"},
		{"processing_engine", "run.facets.processing_engine"},
		{"programmingLanguage", "run.facets.errorMessage.programmingLanguage"},
		{"parentJob", "run.facets.parent.job"}};
	int			i;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < lengthof(kept); i++)
		json_doc_put(&st, kept[i][0], json_doc_get(ev, kept[i][1], &buf));
	json_doc_put(&st, "inputs", pushJsonbValue(&in->names, WJB_END_ARRAY, NULL));
	json_doc_put(&st, "outputs", pushJsonbValue(&out->names, WJB_END_ARRAY, NULL));
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* The errorMessage facet's stack trace as a log event of the run. */
static void
ol_stack_trace(JsonbContainer *ev, const char *event_time, long line_no,
			   const IngestOptions *o, IngestBatch *b)
{
	LogEventRow row;
	const char *expected;

	memset(&row, 0, sizeof(row));
	row.message = json_doc_text(ev, "run.facets.errorMessage.stackTrace");
	/* a time outside the window got the event's run rejected already */
	if (row.message == NULL || event_time == NULL || !value_timestamp(event_time, o, &row.ts) ||
		!ingest_time_in_window(row.ts, o, &expected))
		return;
	row.line_no = line_no;
	row.level = "ERROR";
	row.component = json_doc_text(ev, "run.facets.errorMessage.programmingLanguage");
	row.run_line = line_no;
	ingest_add_event(b, o, &row);
}

static const char *
ol_status(const char *event_type)
{
	static const char *const map[][2] = {
		{"START", "running"}, {"RUNNING", "running"}, {"COMPLETE", "success"},
		{"FAIL", "failed"}, {"ABORT", "cancelled"}, {"OTHER", "running"}};
	int			i;

	for (i = 0; event_type && i < lengthof(map); i++)
		if (pg_strcasecmp(event_type, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* One RunEvent into the batch. */
static void
ol_event(JsonbContainer *ev, long line_no, const char *raw,
		 const IngestOptions *o, IngestBatch *b)
{
	char	   *values[RF_COUNT] = {0};
	char	   *event_type = json_doc_text(ev, "eventType");
	char	   *event_time = json_doc_text(ev, "eventTime");
	DatasetStats in = {0},
				out = {0};
	bool		start;

	values[RF_STATUS] = (char *) ol_status(event_type);
	if (values[RF_STATUS] == NULL)
		values[RF_STATUS] = event_type ? event_type : NULL;	/* reported as unknown */
	start = values[RF_STATUS] && strcmp(values[RF_STATUS], "running") == 0;
	values[start ? RF_STARTED_AT : RF_ENDED_AT] = event_time;
	values[RF_NAMESPACE] = json_doc_text(ev, "job.namespace");
	values[RF_PIPELINE] = json_doc_text(ev, "job.name");
	values[RF_EXTERNAL_ID] = json_doc_text(ev, "run.runId");
	values[RF_PARENT_ID] = json_doc_text(ev, "run.facets.parent.run.runId");
	values[RF_ERROR_MESSAGE] = json_doc_text(ev, "run.facets.errorMessage.message");
	ol_datasets(ev, "inputs", "inputFacets.inputStatistics", &in);
	ol_datasets(ev, "outputs", "outputFacets.outputStatistics", &out);
	if (in.have_rows)
		values[RF_ROWS_READ] = psprintf(INT64_FORMAT, in.rows);
	if (out.have_rows)
		values[RF_ROWS_WRITTEN] = psprintf(INT64_FORMAT, out.rows);
	if (out.have_bytes)
		values[RF_BYTES] = psprintf(INT64_FORMAT, out.bytes);

	if (values[RF_EXTERNAL_ID] == NULL)
	{
		if (!o->quarantine)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid openlineage input in event %ld, field \"run.runId\"", line_no),
					 errdetail("Every RunEvent needs run.runId.")));
		ingest_reject(b, o, line_no, raw, "run.runId", "missing run.runId");
		return;
	}
	ingest_add_run(b, o, values, ol_paths, ol_attrs(ev, &in, &out),
				   line_no, raw);
	ol_stack_trace(ev, event_time, line_no, o, b);
}

/* Events of a document: the object itself, or each element of an array. */
static void
ol_document(Jsonb *doc, long first, const char *raw, const IngestOptions *o, IngestBatch *b)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	long		n = first;

	if (JB_ROOT_IS_OBJECT(doc))
	{
		ol_event(&doc->root, first, raw, o, b);
		return;
	}
	if (!JB_ROOT_IS_ARRAY(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid openlineage input on line %ld: expected a RunEvent object or an array of them", first)));
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM && v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
			ol_event(v.val.binary.data, n++, raw, o, b);
}

void
ingest_openlineage(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	json_docs_read(r, o, b,
				   "Send one RunEvent document, a JSON array of them, or one event per line.",
				   ol_document);
}
