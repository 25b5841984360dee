/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_jsonl.c
 *		libFuzzer harness: line_reader + json_fields_parse per line, the
 *		way ingest_jsonl.c drives them (database encoding UTF8).
 *
 * The whole input is a jsonl payload.  For each parsed object the harness
 * reads every collected path and value, checks that the parse state is
 * balanced again, that the line was not modified (ingest_jsonl.c reuses
 * it for attrs), and that json_fields_get finds the last duplicate.
 *
 * Nesting depth: pg_parse_json is recursive descent.  In the backend it
 * calls check_stack_depth(), so absurd nesting is a clean "stack depth
 * limit exceeded" ERROR; in a FRONTEND build that check is compiled out
 * (jsonapi.o in libpgcommon.a does not reference it), so a deep enough
 * line would overflow the C stack in PostgreSQL's parser, not in our code.
 * The harness therefore skips any line nested deeper than
 * FUZZ_JSON_MAX_DEPTH, measured by a string-aware bracket scan that bounds
 * the parser's recursion depth from above.  The limit is far above real
 * jsonl and well inside the stack of an ASan build; the run scripts do not
 * otherwise restrict -max_len.
 *
 * json_errdetail: PostgreSQL 15's libpgcommon.a does not contain it (in
 * PG <= 16 it is compiled for the backend only), so json_fields.c is not
 * linkable as a frontend object on 15 as it stands.  The harness supplies
 * a stand-in below instead of touching json_fields.c.  Like the backend's
 * version it reads the offending token (token_start..token_terminator),
 * so ASan checks that the lexer's error position lies inside the line
 * (token_start is NULL only at end of input, i.e. for JSON_EXPECTED_MORE).
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "mb/pg_wchar.h"

#include "common/line_reader.h"
#include "ingest/json_fields.h"

#include "fuzz_common.h"

#define FUZZ_MAX_LINE		(1024 * 1024)
#ifndef FUZZ_JSON_MAX_DEPTH
#define FUZZ_JSON_MAX_DEPTH	10000
#endif

/*
 * Stand-in for the backend-only json_errdetail of PostgreSQL <= 16: a
 * palloc'd message naming the error code and the token, which must lie
 * inside the input.
 */
#if PG_VERSION_NUM < 170000
char *
json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
	const char *end = lex->input + lex->input_length;
	int			toklen;

	/* at end of input json_lex clears token_start; only EXPECTED_MORE then */
	if (lex->token_start == NULL)
	{
		FUZZ_CHECK(error == JSON_EXPECTED_MORE,
				   "JSON error %d reported at end of input", (int) error);
		return pstrdup("The input string ended unexpectedly.");
	}
	FUZZ_CHECK(lex->token_start >= lex->input && lex->token_start <= end &&
			   lex->token_terminator >= lex->token_start &&
			   lex->token_terminator <= end,
			   "JSON error %d: token outside the input", (int) error);
	toklen = (int) (lex->token_terminator - lex->token_start);
	return psprintf("JSON parse error %d at token \"%.*s\".", (int) error,
					toklen, lex->token_start);
}
#endif

/* Deepest [ / { nesting outside strings; an upper bound on recursion. */
static int
json_max_depth(const char *s, int len)
{
	int			depth = 0,
				max = 0,
				i;
	bool		in_string = false;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > max)
				max = depth;
		}
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return max;
}

/* Same test as ingest_jsonl.c's is_blank. */
static bool
is_blank(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if (!isspace((unsigned char) s[i]))
			return false;
	return true;
}

static void
check_get(const JsonFields *jf, const char *path)
{
	const JsonField *g = json_fields_get(jf, path);
	int			i;

	if (g == NULL)
	{
		for (i = 0; i < jf->n; i++)
			FUZZ_CHECK(strcmp(jf->items[i].path, path) != 0,
					   "json_fields_get missed path \"%s\"", path);
		return;
	}
	FUZZ_CHECK(g >= jf->items && g < jf->items + jf->n, "get: pointer outside items");
	FUZZ_CHECK(strcmp(g->path, path) == 0, "get: wrong path");
	for (i = (int) (g - jf->items) + 1; i < jf->n; i++)
		FUZZ_CHECK(strcmp(jf->items[i].path, path) != 0,
				   "get: a later duplicate of \"%s\" exists", path);
}

static void
check_object(const JsonFields *jf)
{
	static const char *const paths[] = {
		"status", "pipeline", "level", "job.name", "a.b", "", "run_id", NULL
	};
	int			i;

	FUZZ_CHECK(jf->top_is_object, "success but top_is_object is false");
	FUZZ_CHECK(jf->depth == 0 && jf->array_depth == 0,
			   "unbalanced state after parse: depth %d array_depth %d",
			   jf->depth, jf->array_depth);
	FUZZ_CHECK(jf->path.len == 0 && jf->path.data[0] == '\0',
			   "path not reset after parse: \"%s\"", jf->path.data);
	FUZZ_CHECK(jf->n >= 0 && jf->n <= jf->cap, "n %d cap %d", jf->n, jf->cap);

	for (i = 0; i < jf->n; i++)
	{
		const JsonField *f = &jf->items[i];

		FUZZ_CHECK(f->path != NULL && f->value != NULL, "item %d has NULL text", i);
		(void) strlen(f->path);
		(void) strlen(f->value);
		if (f->is_null)
			FUZZ_CHECK(strcmp(f->value, "null") == 0, "null item %d reads \"%s\"",
					   i, f->value);
	}
	for (i = 0; paths[i]; i++)
		check_get(jf, paths[i]);
	/* a few collected paths, first and last (bounded: get is linear) */
	for (i = 0; i < jf->n && i < 8; i++)
		check_get(jf, jf->items[i].path);
	for (i = Max(8, jf->n - 8); i < jf->n; i++)
		check_get(jf, jf->items[i].path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	outer,
				row;
	LineReader	r;
	LineStatus	st;
	char	   *copy = NULL;
	int			copy_cap = 0;

	fuzz_arena_init(&outer, "outer");
	fuzz_arena_init(&row, "row");
	fuzz_arena_switch(&outer);
	line_reader_init_mem(&r, (const char *) data, size, PG_UTF8, FUZZ_MAX_LINE);

	/* as in ingest_jsonl.c: each line is parsed in a freshly reset context */
	fuzz_arena_switch(&row);
	while ((st = line_reader_next(&r)) != LINE_EOF)
	{
		JsonFields	jf;
		JsonParseErrorType rc;
		char	   *detail = NULL;

		fuzz_arena_reset(&row);
		json_fields_init(&jf);
		if (st != LINE_OK)
			continue;
		if (is_blank(r.line.data, r.line.len))
			continue;
		if (json_max_depth(r.line.data, r.line.len) > FUZZ_JSON_MAX_DEPTH)
			continue;

		if (r.line.len + 1 > copy_cap)
		{
			copy_cap = r.line.len + 1;
			copy = realloc(copy, copy_cap);
		}
		memcpy(copy, r.line.data, r.line.len + 1);

		rc = json_fields_parse(&jf, r.line.data, r.line.len, PG_UTF8, &detail);

		FUZZ_CHECK(memcmp(copy, r.line.data, r.line.len + 1) == 0,
				   "json_fields_parse modified the line");
		if (rc != JSON_SUCCESS)
		{
			FUZZ_CHECK(detail != NULL, "error %d without detail", (int) rc);
			(void) strlen(detail);
			continue;
		}
		FUZZ_CHECK(detail == NULL, "success with a detail");
		check_object(&jf);
	}
	free(copy);

	fuzz_arena_switch(&outer);
	line_reader_free(&r);
	fuzz_arena_reset(&row);
	fuzz_arena_reset(&outer);
	return 0;
}
