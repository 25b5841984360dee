/*-------------------------------------------------------------------------
 * src/ingest/ingest_dbt.c
 *		format 'dbt': a dbt run_results.json as one parent run per
 *		invocation and one child run per node result.
 *
 * The invocation (metadata.invocation_id) is a run of the pipeline named
 * after the dbt project (taken from the nodes' unique_id, or options
 * "pipeline"), ending at metadata.generated_at after elapsed_time seconds;
 * it failed if any node errored or failed.  Each result is a run of the
 * pipeline named by its unique_id ("model.shop.orders", "test.shop.unique_
 * orders_id.0d77ddcf59") with external id "<invocation_id>/<unique_id>",
 * timed by its execute (else compile) timing,
 * with execution_time as duration, adapter_response.rows_affected as rows
 * written, and message as the error of a failing node.  dbt statuses:
 * success/pass → success, error/fail/runtime error → failed, warn →
 * success (status kept in attrs), skipped → skipped.  Namespace: "dbt"
 * unless options say otherwise.  Schema versions v2 to v6 share these
 * fields.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "ingest/ingest.h"

static const char *const dbt_paths[RF_COUNT] = {
	[RF_PIPELINE] = "results[].unique_id",
	[RF_NAMESPACE] = "namespace",
	[RF_EXTERNAL_ID] = "metadata.invocation_id",
	[RF_ATTEMPT] = "attempt",
	[RF_PARENT_ID] = "metadata.invocation_id",
	[RF_STATUS] = "results[].status",
	[RF_STARTED_AT] = "results[].timing[].started_at",
	[RF_ENDED_AT] = "results[].timing[].completed_at",
	[RF_DURATION] = "results[].execution_time",
	[RF_ROWS_READ] = "rows_read",
	[RF_ROWS_WRITTEN] = "results[].adapter_response.rows_affected",
	[RF_BYTES] = "bytes",
	[RF_HOST] = "results[].thread_id",
	[RF_ERROR_MESSAGE] = "results[].message",
};

static const char *
dbt_status(const char *s)
{
	static const char *const map[][2] = {
		{"success", "success"}, {"pass", "success"}, {"warn", "success"},
		{"error", "failed"}, {"fail", "failed"}, {"runtime error", "failed"},
		{"skipped", "skipped"}};
	int			i;

	for (i = 0; s && i < lengthof(map); i++)
		if (pg_strcasecmp(s, map[i][0]) == 0)
			return map[i][1];
	return s;					/* reported as unknown by ingest_add_run */
}

/* The execute phase's timing entry, else the compile one, or NULL. */
static JsonbContainer *
dbt_timing(JsonbContainer *result)
{
	JsonbValue	buf;
	JsonbValue *timing = json_doc_get(result, "timing", &buf);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbContainer *found = NULL;

	if (timing == NULL || timing->type != jbvBinary || !JsonContainerIsArray(timing->val.binary.data))
		return NULL;
	it = JsonbIteratorInit(timing->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_ELEM || v.type != jbvBinary)
			continue;
		name = json_doc_text(v.val.binary.data, "name");
		if (name && strcmp(name, "execute") == 0)
			return v.val.binary.data;
		if (found == NULL)
			found = v.val.binary.data;
	}
	return found;
}

/* "shop" from "model.shop.orders": the project the nodes belong to. */
static char *
dbt_project(const char *unique_id)
{
	const char *dot = unique_id ? strchr(unique_id, '.') : NULL;
	const char *end = dot ? strchr(dot + 1, '.') : NULL;

	return end ? pnstrdup(dot + 1, end - dot - 1) : NULL;
}

static Jsonb *
dbt_result_attrs(JsonbContainer *result, const char *status)
{
	JsonbParseState *st = NULL;
	JsonbValue	buf;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	json_doc_put_text(&st, "dbt_status", status);
	json_doc_put(&st, "failures", json_doc_get(result, "failures", &buf));
	json_doc_put(&st, "adapter_response", json_doc_get(result, "adapter_response", &buf));
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* One node result as a child run of the invocation. */
static void
dbt_result(JsonbContainer *result, const char *invocation, long n,
		   const IngestOptions *o, IngestBatch *b, bool *any_failed)
{
	char	   *values[RF_COUNT] = {0};
	char	   *status = json_doc_text(result, "status");
	JsonbContainer *timing = dbt_timing(result);
	int64		rows;

	values[RF_NAMESPACE] = o->namespace;
	values[RF_PIPELINE] = json_doc_text(result, "unique_id");
	/* real artifacts have results with an empty unique_id: keep them apart */
	if (values[RF_PIPELINE] == NULL)
		values[RF_PIPELINE] = psprintf("unnamed_result_%ld", n);
	/* unique per node, and never mistaken for the invocation when linking */
	values[RF_EXTERNAL_ID] = psprintf("%s/%s", invocation,
									  values[RF_PIPELINE] ? values[RF_PIPELINE] : "");
	values[RF_PARENT_ID] = (char *) invocation;
	values[RF_STATUS] = (char *) dbt_status(status);
	values[RF_STARTED_AT] = timing ? json_doc_text(timing, "started_at") : NULL;
	values[RF_ENDED_AT] = timing ? json_doc_text(timing, "completed_at") : NULL;
	values[RF_DURATION] = values[RF_ENDED_AT] ? NULL : json_doc_text(result, "execution_time");
	values[RF_ROWS_WRITTEN] = json_doc_text(result, "adapter_response.rows_affected");
	/* dbt reports -1 when the adapter does not know */
	if (values[RF_ROWS_WRITTEN] && value_int64(values[RF_ROWS_WRITTEN], &rows) && rows < 0)
		values[RF_ROWS_WRITTEN] = NULL;
	values[RF_HOST] = json_doc_text(result, "thread_id");
	if (values[RF_STATUS] && strcmp(values[RF_STATUS], "failed") == 0)
	{
		values[RF_ERROR_MESSAGE] = json_doc_text(result, "message");
		*any_failed = true;
	}
	ingest_add_run(b, o, values, dbt_paths,
				   dbt_result_attrs(result, status ? status : ""), n, NULL);
}

/* The invocation as the parent run, after its results. */
static void
dbt_invocation(JsonbContainer *doc, const char *invocation, const char *project,
			   bool any_failed, long n, const IngestOptions *o, IngestBatch *b)
{
	static const char *const paths[RF_COUNT] = {
		[RF_PIPELINE] = "results[].unique_id", [RF_NAMESPACE] = "namespace",
		[RF_EXTERNAL_ID] = "metadata.invocation_id", [RF_ATTEMPT] = "attempt",
		[RF_PARENT_ID] = "parent", [RF_STATUS] = "results[].status",
		[RF_STARTED_AT] = "metadata.generated_at", [RF_ENDED_AT] = "metadata.generated_at",
		[RF_DURATION] = "elapsed_time", [RF_ROWS_READ] = "rows_read",
		[RF_ROWS_WRITTEN] = "rows_written", [RF_BYTES] = "bytes", [RF_HOST] = "host",
	[RF_ERROR_MESSAGE] = "results[].message"};
	char	   *values[RF_COUNT] = {0};
	JsonbParseState *st = NULL;
	JsonbValue	buf;

	values[RF_NAMESPACE] = o->namespace;
	values[RF_PIPELINE] = o->pipeline ? o->pipeline : (char *) project;
	values[RF_EXTERNAL_ID] = (char *) invocation;
	values[RF_STATUS] = any_failed ? "failed" : "success";
	values[RF_ENDED_AT] = json_doc_text(doc, "metadata.generated_at");
	values[RF_DURATION] = json_doc_text(doc, "elapsed_time");
	if (any_failed)
		values[RF_ERROR_MESSAGE] = "dbt invocation had failing nodes";
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	json_doc_put(&st, "dbt_version", json_doc_get(doc, "metadata.dbt_version", &buf));
	json_doc_put(&st, "dbt_schema_version", json_doc_get(doc, "metadata.dbt_schema_version", &buf));
	json_doc_put(&st, "args", json_doc_get(doc, "args", &buf));
	ingest_add_run(b, o, values, paths,
				   JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)), n, NULL);
}

static void
dbt_document(Jsonb *doc, const IngestOptions *o, IngestBatch *b)
{
	JsonbValue	buf;
	JsonbValue *results = json_doc_get(&doc->root, "results", &buf);
	char	   *invocation = json_doc_text(&doc->root, "metadata.invocation_id");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	long		n = 1;
	bool		any_failed = false;
	char	   *project = NULL;

	if (invocation == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid dbt input, field \"metadata.invocation_id\""),
				 errdetail("Expected the invocation id of a run_results.json.")));
	if (results == NULL || results->type != jbvBinary ||
		!JsonContainerIsArray(results->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid dbt input, field \"results\""),
				 errdetail("Expected the array of node results of a run_results.json.")));
	it = JsonbIteratorInit(results->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM || v.type != jbvBinary)
			continue;
		if (project == NULL)
			project = dbt_project(json_doc_text(v.val.binary.data, "unique_id"));
		dbt_result(v.val.binary.data, invocation, n++, o, b, &any_failed);
	}
	dbt_invocation(&doc->root, invocation, project ? project : "dbt", any_failed, n, o, b);
}

void
ingest_dbt(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	int			len;
	char	   *all = json_doc_read(r, o, b, &len);
	char	   *detail;
	int			line;
	MemoryContext old;

	if (!json_doc_valid(all, len, &detail, &line))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid dbt input on line %d", line),
				 errdetail("%s", detail),
				 errhint("Send the whole run_results.json document.")));
	old = MemoryContextSwitchTo(b->row_ctx);
	dbt_document(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(all))), o, b);
	MemoryContextSwitchTo(old);
}
