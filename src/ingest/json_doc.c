/*-------------------------------------------------------------------------
 * src/ingest/json_doc.c
 *		Whole-document JSON inputs (openlineage, dbt): read, validate with
 *		the error's line, and look values up by dotted path in jsonb.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "compat.h"
#include "ingest/ingest.h"

/* All lines of the input, newline-terminated (unreadable lines reported). */
char *
json_doc_read(LineReader *r, const IngestOptions *o, IngestBatch *b, int *len)
{
	StringInfoData all;
	LineStatus	st;

	initStringInfo(&all);
	while ((st = line_reader_next(r)) != LINE_EOF)
	{
		if (st != LINE_OK)
			ingest_line_problem(b, o, st, r);
		else
			appendBinaryStringInfo(&all, r->line.data, r->line.len);
		appendStringInfoChar(&all, '\n');
	}
	*len = all.len;
	return all.data;
}

/* Is text one valid JSON document?  On failure: the lexer's detail and line. */
bool
json_doc_valid(char *text, int len, char **detail, int *line)
{
	JsonLexContext *lex = compat_json_lex_context(text, len, GetDatabaseEncoding());
	JsonParseErrorType rc = pg_parse_json(lex, &nullSemAction);

	if (rc == JSON_SUCCESS)
		return true;
	*detail = json_errdetail(rc, lex);
	*line = lex->line_number;
	return false;
}

/* The value at a dotted path ("run.facets.parent.run.runId"), or NULL. */
JsonbValue *
json_doc_get(JsonbContainer *c, const char *path, JsonbValue *buf)
{
	char	   *copy = pstrdup(path);
	char	   *key = strtok(copy, ".");
	JsonbValue *v = NULL;

	while (key)
	{
		if (c == NULL || !JsonContainerIsObject(c))
			return NULL;
		v = getKeyJsonValueFromContainer(c, key, strlen(key), buf);
		if (v == NULL)
			return NULL;
		c = (v->type == jbvBinary) ? v->val.binary.data : NULL;
		key = strtok(NULL, ".");
	}
	return v;
}

/* A scalar at a path as text (strings, numbers, booleans), or NULL. */
char *
json_doc_text(JsonbContainer *c, const char *path)
{
	JsonbValue	buf;
	JsonbValue *v = json_doc_get(c, path, &buf);

	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return v->val.string.len ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* Add key: value (a JsonbValue, possibly a container) to an object being built. */
void
json_doc_put(JsonbParseState **st, const char *key, JsonbValue *value)
{
	JsonbValue	k;

	if (value == NULL)
		return;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
	pushJsonbValue(st, WJB_VALUE, value);
}

/* Add key: "val" to an object being built; nothing when val is NULL. */
void
json_doc_put_text(JsonbParseState **st, const char *key, const char *val)
{
	JsonbValue	v;

	if (val == NULL)
		return;
	v.type = jbvString;
	v.val.string.val = (char *) val;
	v.val.string.len = strlen(val);
	json_doc_put(st, key, &v);
}

/*
 * The JSON documents of an input: one document (perhaps spread over many
 * lines), or JSON lines of documents.  fn gets each parsed document with
 * its first line number and, for JSON lines, the line's text (for rejects).
 */
void
json_docs_read(LineReader *r, const IngestOptions *o, IngestBatch *b,
			   const char *hint, JsonDocHandler fn)
{
	int			len;
	char	   *all = json_doc_read(r, o, b, &len);
	char	   *doc_detail;
	int			doc_line;
	char	   *p = all;
	long		line_no = 0;
	bool		any_valid = false;
	MemoryContext old = MemoryContextSwitchTo(b->row_ctx);

	if (json_doc_valid(all, len, &doc_detail, &doc_line))
	{
		fn(json_doc_parse(all), 1, NULL, o, b);
		MemoryContextSwitchTo(old);
		return;
	}
	while (*p)
	{
		char	   *nl = strchr(p, '\n');
		int			n = nl ? (int) (nl - p) : (int) strlen(p);
		char	   *text = pnstrdup(p, n);
		char	   *detail;
		int			line;

		line_no++;
		p += n + (nl ? 1 : 0);
		if (strspn(text, " \t\r") == (size_t) n)
			continue;
		if (json_doc_valid(text, n, &detail, &line))
		{
			any_valid = true;
			fn(json_doc_parse(text), line_no, text, o, b);
			continue;
		}
		/* a broken multi-line document: its own error says more */
		if (!any_valid && !o->quarantine && text[strspn(text, " \t")] == '{' &&
			strchr(text, '}') == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid %s input on line %d", o->format->name, doc_line),
					 errdetail("%s", doc_detail)));
		if (!o->quarantine)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid %s input on line %ld", o->format->name, line_no),
					 errdetail("%s", detail),
					 errhint("%s", hint)));
		ingest_reject(b, o, line_no, text, NULL, psprintf("invalid JSON: %s", detail));
	}
	MemoryContextSwitchTo(old);
}

/* Text already checked by json_doc_valid() as jsonb. */
Jsonb *
json_doc_parse(char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}
