/*-------------------------------------------------------------------------
 * src/ingest/field_map.c
 *		Which source column (csv) or JSON path (jsonl) feeds which run field.
 *
 * options->'columns' names them explicitly; otherwise common header names
 * are recognised (job/pipeline/dag_id/task, start/start_time/started_at,
 * status/state/result, ...).  Names are compared after lower-casing and
 * turning every non-alphanumeric byte into '_', so "Start Time" matches
 * start_time.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "ingest/ingest.h"
#include "ingest/json_fields.h"

typedef struct RunFieldSpec
{
	const char *name;			/* key in options->'columns' */
	const char *const *synonyms;	/* recognised names, best first */
} RunFieldSpec;

static const char *const pipeline_names[] = {"pipeline", "pipeline_name", "job_name", "job",
"dag_id", "dag", "task", "task_name", "task_id", "flow", "workflow", NULL};
static const char *const namespace_names[] = {"namespace", "project", NULL};
static const char *const external_id_names[] = {"external_id", "run_id", "runid",
"execution_id", "job_run_id", "run", NULL};
static const char *const attempt_names[] = {"attempt", "try_number", "attempt_number",
"retry", "try", NULL};
static const char *const parent_names[] = {"parent_id", "parent_run_id", "parent", NULL};
static const char *const status_names[] = {"status", "state", "result", "outcome",
"final_status", NULL};
static const char *const started_names[] = {"started_at", "start_time", "start",
"start_date", "started", "begin", "begin_time", "start_ts", NULL};
static const char *const ended_names[] = {"ended_at", "end_time", "end", "end_date",
"ended", "finished_at", "finish_time", "stop_time", "end_ts", NULL};
static const char *const duration_names[] = {"duration", "elapsed", "elapsed_time",
"runtime", "run_time", "duration_s", "execution_time", NULL};
static const char *const rows_read_names[] = {"rows_read", "records_read", "input_rows", NULL};
static const char *const rows_written_names[] = {"rows_written", "rows", "row_count",
"records", "records_written", "rows_affected", "rows_inserted", "output_rows", NULL};
static const char *const bytes_names[] = {"bytes", "bytes_written", "size_bytes", NULL};
static const char *const host_names[] = {"host", "hostname", "server", "node", "worker", NULL};
static const char *const error_names[] = {"error_message", "error", "message", "exception",
"err", "error_msg", NULL};

static const RunFieldSpec run_fields[RF_COUNT] = {
	[RF_PIPELINE] = {"pipeline", pipeline_names},
	[RF_NAMESPACE] = {"namespace", namespace_names},
	[RF_EXTERNAL_ID] = {"external_id", external_id_names},
	[RF_ATTEMPT] = {"attempt", attempt_names},
	[RF_PARENT_ID] = {"parent_id", parent_names},
	[RF_STATUS] = {"status", status_names},
	[RF_STARTED_AT] = {"started_at", started_names},
	[RF_ENDED_AT] = {"ended_at", ended_names},
	[RF_DURATION] = {"duration", duration_names},
	[RF_ROWS_READ] = {"rows_read", rows_read_names},
	[RF_ROWS_WRITTEN] = {"rows_written", rows_written_names},
	[RF_BYTES] = {"bytes", bytes_names},
	[RF_HOST] = {"host", host_names},
	[RF_ERROR_MESSAGE] = {"error_message", error_names},
};

const char *
run_field_name(RunField f)
{
	return run_fields[f].name;
}

static char *
normalise_name(const char *s)
{
	char	   *out = palloc(strlen(s) + 1);
	char	   *o = out;

	for (; *s; s++)
		*o++ = isalnum((unsigned char) *s) ? pg_tolower((unsigned char) *s) : '_';
	*o = '\0';
	while (o > out && o[-1] == '_')
		*--o = '\0';
	return out[0] == '_' ? out + strspn(out, "_") : out;
}

static RunField
run_field_by_name(const char *key, int len)
{
	int			f;

	for (f = 0; f < RF_COUNT; f++)
		if ((int) strlen(run_fields[f].name) == len &&
			strncmp(run_fields[f].name, key, len) == 0)
			return (RunField) f;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"columns\" has unknown run field \"%.*s\"", len, key),
			 errhint("Run fields are pipeline, namespace, external_id, attempt, parent_id, status, started_at, ended_at, duration, rows_read, rows_written, bytes, host, error_message.")));
	return RF_COUNT;			/* keep compiler quiet */
}

/*
 * The source name options->'columns' gives for field f, or NULL (read once
 * per call by options.c: this is asked for every field of every jsonl line).
 */
static char *
explicit_source(const IngestOptions *o, RunField f)
{
	return o->column_source[f];
}

/* Reject keys of options->'columns' that are not run fields. */
static void
check_columns_option(const IngestOptions *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (o->columns == NULL)
		return;
	it = JsonbIteratorInit(o->columns);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY)
			(void) run_field_by_name(v.val.string.val, v.val.string.len);
}

/*
 * Fill map[RF_COUNT] with the 0-based column of each run field in a CSV
 * header, or -1.  An explicitly mapped column that the header lacks is an
 * error; so is a header with no pipeline (unless options give one) or no
 * status column.
 */
void
field_map_from_header(const IngestOptions *o, char **names, int n, int *map)
{
	char	  **norm = palloc(sizeof(char *) * n);
	int			f,
				i,
				s;

	check_columns_option(o);
	for (i = 0; i < n; i++)
		norm[i] = normalise_name(names[i]);
	for (f = 0; f < RF_COUNT; f++)
	{
		char	   *want = explicit_source(o, (RunField) f);

		map[f] = -1;
		if (want)
		{
			for (i = 0; i < n && map[f] < 0; i++)
				if (strcmp(names[i], want) == 0)
					map[f] = i;
			for (i = 0; i < n && map[f] < 0; i++)
				if (strcmp(norm[i], normalise_name(want)) == 0)
					map[f] = i;
			if (map[f] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" mapped to run field \"%s\" is not in the header",
								want, run_fields[f].name)));
			continue;
		}
		for (s = 0; run_fields[f].synonyms[s] && map[f] < 0; s++)
			for (i = 0; i < n && map[f] < 0; i++)
				if (strcmp(norm[i], run_fields[f].synonyms[s]) == 0)
					map[f] = i;
	}
	/* a column claimed explicitly is not also taken by a guess */
	for (f = 0; f < RF_COUNT; f++)
		for (s = 0; s < RF_COUNT; s++)
			if (s != f && map[f] >= 0 && map[s] == map[f] && explicit_source(o, (RunField) s) == NULL
				&& explicit_source(o, (RunField) f) != NULL)
				map[s] = -1;
}

/*
 * The JSON path feeding field f in one jsonl object: the explicit path
 * from options, else the first recognised top-level key present.
 */
const char *
field_map_json_path(const IngestOptions *o, RunField f, const void *json_fields)
{
	const JsonFields *jf = json_fields;
	char	   *want = explicit_source(o, f);
	int			s,
				i;

	if (want)
		return want;
	for (s = 0; run_fields[f].synonyms[s]; s++)
		for (i = 0; i < jf->n; i++)
			if (strchr(jf->items[i].path, '.') == NULL &&
				pg_strcasecmp(jf->items[i].path, run_fields[f].synonyms[s]) == 0)
				return jf->items[i].path;
	return NULL;
}
