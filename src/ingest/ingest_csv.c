/*-------------------------------------------------------------------------
 * src/ingest/ingest_csv.c
 *		format 'csv': a header row, then one run per record.
 *
 * Records come from the RFC 4180 lexer (csv_lexer.c); the header names
 * are mapped onto run fields (field_map.c) and unmapped columns are kept
 * in attrs unless options say "extra_columns": "ignore".
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "ingest/csv_lexer.h"
#include "ingest/ingest.h"

typedef struct CsvContext
{
	CsvLexer	lx;
	StringInfoData raw;			/* the record's source text, for rejects */
	char	  **header;
	int			ncols;
	int			map[RF_COUNT];
	bool	   *mapped;			/* column feeds a run field */
	const char *src[RF_COUNT];	/* column name of each field, for messages */
} CsvContext;

/*
 * Read the next complete record.  Returns false at end of input; lexer
 * errors and unreadable lines are reported (or quarantined) here.
 */
static bool
csv_next_record(LineReader *r, CsvContext *cx, const IngestOptions *o,
				IngestBatch *b)
{
	LineStatus	st;

	resetStringInfo(&cx->raw);
	while ((st = line_reader_next(r)) != LINE_EOF)
	{
		CsvStatus	cs;

		if (st != LINE_OK)
		{
			ingest_line_problem(b, o, st, r);
			resetStringInfo(&cx->raw);
			cx->lx.state = CSV_FIELD_START;
			continue;
		}
		if (cx->raw.len > 0)
			appendStringInfoChar(&cx->raw, '\n');
		appendBinaryStringInfo(&cx->raw, r->line.data, r->line.len);
		cs = csv_lexer_feed(&cx->lx, r->line.data, r->line.len, r->crlf, r->line_no);
		if (cs == CSV_RECORD)
			return true;
		if (cs == CSV_ERROR)
		{
			FieldError	e = {psprintf("%d", cx->lx.error_field), cx->lx.error, cx->raw.data};

			if (!o->quarantine)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid csv input on line %ld, field %d",
								r->line_no, cx->lx.error_field),
						 errdetail("%s.", cx->lx.error),
						 errhint("Quote fields that contain the delimiter, quotes or line breaks, doubling inner quotes (RFC 4180).")));
			ingest_reject(b, o, cx->lx.record_line, cx->raw.data, e.field, cx->lx.error);
			resetStringInfo(&cx->raw);
		}
	}
	if (csv_lexer_finish(&cx->lx) == CSV_ERROR)
	{
		if (!o->quarantine)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid csv input on line %ld, field %d",
							cx->lx.record_line, cx->lx.error_field),
					 errdetail("%s.", cx->lx.error)));
		ingest_reject(b, o, cx->lx.record_line, cx->raw.data, NULL, cx->lx.error);
	}
	return false;
}

static void
csv_read_header(LineReader *r, CsvContext *cx, const IngestOptions *o, IngestBatch *b)
{
	int			i,
				f;

	if (!csv_next_record(r, cx, o, b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("csv input has no header row")));
	cx->ncols = cx->lx.nfields;
	cx->header = palloc(sizeof(char *) * cx->ncols);
	cx->mapped = palloc0(sizeof(bool) * cx->ncols);
	for (i = 0; i < cx->ncols; i++)
		cx->header[i] = pstrdup(csv_field(&cx->lx, i));
	field_map_from_header(o, cx->header, cx->ncols, cx->map);
	if (cx->map[RF_STATUS] < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csv header has no status column"),
				 errdetail("Header: %s", cx->raw.data),
				 errhint("Name it with options, e.g. {\"columns\": {\"status\": \"my_state\"}}.")));
	if (cx->map[RF_PIPELINE] < 0 && o->pipeline == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csv header has no pipeline column"),
				 errdetail("Header: %s", cx->raw.data),
				 errhint("Name it with {\"columns\": {\"pipeline\": \"...\"}} or give a constant {\"pipeline\": \"name\"}.")));
	for (f = 0; f < RF_COUNT; f++)
	{
		cx->src[f] = cx->map[f] >= 0 ? cx->header[cx->map[f]] : run_field_name((RunField) f);
		if (cx->map[f] >= 0)
			cx->mapped[cx->map[f]] = true;
	}
}

/* Unmapped, non-empty columns as a jsonb object of strings. */
static Jsonb *
csv_attrs(CsvContext *cx)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;
	bool		any = false;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < cx->ncols; i++)
	{
		JsonbValue	k,
					v;
		const char *val = csv_field(&cx->lx, i);

		if (cx->mapped[i] || (val[0] == '\0' && !cx->lx.quoted[i]))
			continue;
		k.type = jbvString;
		k.val.string.val = cx->header[i];
		k.val.string.len = strlen(cx->header[i]);
		v.type = jbvString;
		v.val.string.val = (char *) val;
		v.val.string.len = strlen(val);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
		any = true;
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return any ? JsonbValueToJsonb(res) : NULL;
}

/* An unquoted empty field is absent; a quoted "" is an empty string. */
static char *
csv_value(CsvContext *cx, int col)
{
	const char *v;

	if (col < 0)
		return NULL;
	v = csv_field(&cx->lx, col);
	if (v[0] == '\0' && !cx->lx.quoted[col])
		return NULL;
	return (char *) v;
}

static void
csv_add_record(CsvContext *cx, const IngestOptions *o, IngestBatch *b)
{
	char	   *values[RF_COUNT];
	int			f;

	if (cx->lx.nfields != cx->ncols)
	{
		FieldError	e = {psprintf("%d", Min(cx->lx.nfields, cx->ncols) + 1),
			psprintf("%d fields as in the header", cx->ncols),
		psprintf("%d fields", cx->lx.nfields)};

		if (!o->quarantine)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid csv input on line %ld: expected %d fields, found %d",
							cx->lx.record_line, cx->ncols, cx->lx.nfields),
					 errdetail("Record: %s", cx->raw.data)));
		ingest_reject(b, o, cx->lx.record_line, cx->raw.data, e.field,
					  psprintf("expected %s, found %s", e.expected, e.found));
		return;
	}
	for (f = 0; f < RF_COUNT; f++)
		values[f] = csv_value(cx, cx->map[f]);
	ingest_add_run(b, o, values, cx->src,
				   o->extra_to_attrs ? csv_attrs(cx) : NULL,
				   cx->lx.record_line, cx->raw.data);
}

/* Option rules of format csv (formats.c): columns are matched by name. */
void
ingest_csv_check(const IngestOptions *o)
{
	if (!o->header)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("csv input without a header row is not supported"),
				 errhint("Add a header line; columns are matched by name.")));
}

void
ingest_csv(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	CsvContext	cx;
	MemoryContext old;

	memset(&cx, 0, sizeof(cx));
	csv_lexer_init(&cx.lx, o->delimiter, o->quote, o->max_line);
	initStringInfo(&cx.raw);
	csv_read_header(r, &cx, o, b);

	old = MemoryContextSwitchTo(b->row_ctx);
	while (csv_next_record(r, &cx, o, b))
	{
		/* a blank line is a one-field empty record: skip it */
		if (cx.lx.nfields == 1 && cx.ncols > 1 && cx.raw.len == 0)
			continue;
		csv_add_record(&cx, o, b);
		MemoryContextReset(b->row_ctx);
	}
	MemoryContextSwitchTo(old);
	csv_lexer_free(&cx.lx);
}
