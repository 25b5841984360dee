/*-------------------------------------------------------------------------
 * src/ingest/formats.c
 *		The ingest formats: the one table of them, and its SQL view
 *		smartetl.ingest_formats().
 *
 * A format is a row here: its name (the format argument of smartetl.ingest
 * and ingest_file), its parser, the option keys it takes beyond the common
 * ones, the namespace of the pipelines it creates unless options say
 * otherwise, its own option rules, and a line for people.  options.c checks
 * options against the row, source.c runs the parser, the error for an
 * unknown format lists the names, and smartetl.ingest_formats() shows the
 * table to SQL (the README's "Formats" table is checked against it by
 * sql/docs.sql).  CONTRIBUTING.md walks through adding one.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "ingest/ingest.h"

PG_FUNCTION_INFO_V1(smartetl_ingest_formats);

/* Keys every format takes, and the column-mapping keys (csv, jsonl). */
const char *const ingest_common_keys =
"on_error max_line_bytes namespace pipeline source timezone timestamp_format dry_run";
const char *const ingest_mapping_keys =
"columns status_map epoch_unit epoch_origin duration_unit extra_columns";

static const IngestFormat formats[] = {
	{
		.name = "csv",
		.parse = ingest_csv,
		.mapping = true,
		.keys = "delimiter quote header",
		.default_namespace = "default",
		.check = ingest_csv_check,
		.description = "RFC 4180 CSV with a header row: one run per record",
	},
	{
		.name = "jsonl",
		.parse = ingest_jsonl,
		.mapping = true,
		.keys = "",
		.default_namespace = "default",
		.description = "one JSON object per line: one run per object",
	},
	{
		.name = "logline",
		.parse = ingest_logline,
		.keys = "log_format run_id",
		.default_namespace = "default",
		.check = ingest_logline_check,
		.description = "text log lines split by a Loghub-style format: one log event per entry",
	},
	{
		.name = "openlineage",
		.parse = ingest_openlineage,
		.keys = "",
		.default_namespace = "default",
		.description = "OpenLineage RunEvents (a document, an array or JSON lines): one run per runId",
	},
	{
		.name = "dbt",
		.parse = ingest_dbt,
		.keys = "",
		.default_namespace = "dbt",
		.description = "a dbt run_results.json: the invocation and each node result as runs",
	},
	{
		.name = "airflow",
		.parse = ingest_airflow,
		.keys = "",
		.default_namespace = "airflow",
		.hint = "Airflow input is a task log (lines like \"[2024-05-01T00:00:02.123+0000] {taskinstance.py:1234} INFO - ...\") or REST API JSON starting with { or [.",
		.description = "an Airflow task log, or REST API dagRuns/taskInstances JSON: one run per task try or DAG run",
	},
};

/* The format called name; an error naming the valid ones when none is. */
const IngestFormat *
ingest_format_find(const char *name)
{
	StringInfoData names;
	int			i;

	for (i = 0; i < lengthof(formats); i++)
		if (strcmp(formats[i].name, name) == 0)
			return &formats[i];
	initStringInfo(&names);
	for (i = 0; i < lengthof(formats); i++)
		appendStringInfo(&names, "%s%s", i ? ", " : "", formats[i].name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown ingest format \"%s\"", name),
			 errhint("Valid formats are: %s.", names.data)));
	return NULL;				/* keep compiler quiet */
}

/* Append the space-separated words of list to the array being built. */
static ArrayBuildState *
add_words(ArrayBuildState *astate, const char *list)
{
	char	   *copy = pstrdup(list);
	char	   *save;
	char	   *w;

	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
		astate = accumArrayResult(astate, CStringGetTextDatum(w), false, TEXTOID,
								  CurrentMemoryContext);
	return astate;
}

/*
 * smartetl.ingest_formats() RETURNS TABLE (format text, description text,
 *		options text[], default_namespace text)
 *		options: every key the format accepts, the common ones first.
 */
Datum
smartetl_ingest_formats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < lengthof(formats); i++)
	{
		const IngestFormat *f = &formats[i];
		ArrayBuildState *keys = add_words(NULL, ingest_common_keys);
		Datum		values[4];
		bool		nulls[4] = {false};

		if (f->mapping)
			keys = add_words(keys, ingest_mapping_keys);
		keys = add_words(keys, f->keys);
		values[0] = CStringGetTextDatum(f->name);
		values[1] = CStringGetTextDatum(f->description);
		values[2] = makeArrayResult(keys, CurrentMemoryContext);
		values[3] = CStringGetTextDatum(f->default_namespace);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
