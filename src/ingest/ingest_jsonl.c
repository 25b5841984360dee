/*-------------------------------------------------------------------------
 * src/ingest/ingest_jsonl.c
 *		format 'jsonl': one JSON object per line, one run per object.
 *
 * Structured logs from Python loggers, Vector or Fluent Bit.  Keys map
 * onto run fields as CSV headers do; options->'columns' may also name a
 * nested key with a dotted path ("job.name").  The object, minus the
 * top-level keys used for run fields, is kept in attrs.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "ingest/ingest.h"
#include "ingest/json_fields.h"

static bool
is_blank(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if (!isspace((unsigned char) s[i]))
			return false;
	return true;
}

/* The object without the top-level keys that became run fields. */
static Jsonb *
jsonl_attrs(const char *line, const char **paths)
{
	Datum		j = DirectFunctionCall1(jsonb_in, CStringGetDatum(line));
	int			f;

	for (f = 0; f < RF_COUNT; f++)
		if (paths[f] && strchr(paths[f], '.') == NULL)
			j = DirectFunctionCall2(jsonb_delete, j, CStringGetTextDatum(paths[f]));
	if (JB_ROOT_COUNT(DatumGetJsonbP(j)) == 0)
		return NULL;
	return DatumGetJsonbP(j);
}

static void
jsonl_add_object(LineReader *r, JsonFields *jf, const IngestOptions *o, IngestBatch *b)
{
	char	   *values[RF_COUNT];
	const char *paths[RF_COUNT];
	int			f;

	for (f = 0; f < RF_COUNT; f++)
	{
		const JsonField *field;

		paths[f] = field_map_json_path(o, (RunField) f, jf);
		field = paths[f] ? json_fields_get(jf, paths[f]) : NULL;
		values[f] = (field && !field->is_null && field->value[0] != '\0') ? field->value : NULL;
		if (paths[f] == NULL)
			paths[f] = run_field_name((RunField) f);
	}
	ingest_add_run(b, o, values, paths,
				   o->extra_to_attrs ? jsonl_attrs(r->line.data, paths) : NULL,
				   r->line_no, r->line.data);
}

void
ingest_jsonl(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	JsonFields	jf;
	LineStatus	st;
	MemoryContext old = MemoryContextSwitchTo(b->row_ctx);

	while ((st = line_reader_next(r)) != LINE_EOF)
	{
		char	   *detail;

		MemoryContextReset(b->row_ctx);
		json_fields_init(&jf);
		if (st != LINE_OK)
		{
			ingest_line_problem(b, o, st, r);
			continue;
		}
		if (is_blank(r->line.data, r->line.len))
			continue;
		if (json_fields_parse(&jf, r->line.data, r->line.len, GetDatabaseEncoding(),
							  &detail) != JSON_SUCCESS)
		{
			if (!o->quarantine)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid jsonl input on line %ld", r->line_no),
						 errdetail("%s", detail),
						 errhint("Each line must hold one complete JSON object.")));
			ingest_reject(b, o, r->line_no, r->line.data, NULL,
						  psprintf("invalid JSON: %s", detail));
			continue;
		}
		jsonl_add_object(r, &jf, o, b);
	}
	MemoryContextSwitchTo(old);
}
