/*-------------------------------------------------------------------------
 * src/ingest/json_fields.c
 *		Collect the scalar members of one JSON object, keyed by dotted path.
 *
 * pg_parse_json reports syntax errors as a return code (it does not throw),
 * which lets the caller name the line and keep going in quarantine mode.
 * Values are only collected outside arrays: run fields are scalars, and
 * the whole object is still available to the caller for attrs.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "compat.h"
#include "ingest/json_fields.h"

void
json_fields_init(JsonFields *jf)
{
	memset(jf, 0, sizeof(*jf));
	jf->cap = 16;
	jf->items = palloc(sizeof(JsonField) * jf->cap);
	jf->path_cap = 8;
	jf->path_len = palloc(sizeof(int) * jf->path_cap);
	initStringInfo(&jf->path);
}

static JSON_ACTION_RESULT
jf_object_start(void *state)
{
	JsonFields *jf = state;

	if (jf->depth == 0)
		jf->top_is_object = true;
	jf->depth++;
	JSON_ACTION_DONE;
}

static JSON_ACTION_RESULT
jf_object_end(void *state)
{
	((JsonFields *) state)->depth--;
	JSON_ACTION_DONE;
}

static JSON_ACTION_RESULT
jf_array_start(void *state)
{
	JsonFields *jf = state;

	jf->depth++;
	jf->array_depth++;
	JSON_ACTION_DONE;
}

static JSON_ACTION_RESULT
jf_array_end(void *state)
{
	JsonFields *jf = state;

	jf->depth--;
	jf->array_depth--;
	JSON_ACTION_DONE;
}

/* Remember the path length so the matching field end can restore it. */
static JSON_ACTION_RESULT
jf_field_start(void *state, char *fname, bool isnull)
{
	JsonFields *jf = state;
	int			level = jf->depth - 1;

	if (jf->array_depth > 0)
		JSON_ACTION_DONE;
	if (level >= jf->path_cap)
	{
		jf->path_cap = Max(jf->path_cap * 2, level + 1);
		jf->path_len = repalloc(jf->path_len, sizeof(int) * jf->path_cap);
	}
	jf->path_len[level] = jf->path.len;
	if (jf->path.len > 0)
		appendStringInfoChar(&jf->path, '.');
	appendStringInfoString(&jf->path, fname);
	JSON_ACTION_DONE;
}

static JSON_ACTION_RESULT
jf_field_end(void *state, char *fname, bool isnull)
{
	JsonFields *jf = state;

	if (jf->array_depth > 0)
		JSON_ACTION_DONE;
	jf->path.len = jf->path_len[jf->depth - 1];
	jf->path.data[jf->path.len] = '\0';
	JSON_ACTION_DONE;
}

static JSON_ACTION_RESULT
jf_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonFields *jf = state;
	JsonField  *f;

	if (jf->depth == 0 || jf->array_depth > 0)
		JSON_ACTION_DONE;
	if (jf->n == jf->cap)
	{
		jf->cap *= 2;
		jf->items = repalloc(jf->items, sizeof(JsonField) * jf->cap);
	}
	f = &jf->items[jf->n++];
	f->path = pstrdup(jf->path.data);
	f->value = token;
	f->is_null = (tokentype == JSON_TOKEN_NULL);
	JSON_ACTION_DONE;
}

/*
 * Parse one JSON text.  Returns JSON_SUCCESS, or an error code with
 * *errdetail set; a valid JSON text that is not an object is reported as
 * JSON_EXPECTED_JSON with its own detail.
 */
JsonParseErrorType
json_fields_parse(JsonFields *jf, char *json, int len, int encoding,
				  char **errdetail)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType rc;

	jf->n = 0;
	jf->depth = 0;
	jf->array_depth = 0;
	jf->top_is_object = false;
	resetStringInfo(&jf->path);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = jf;
	sem.object_start = jf_object_start;
	sem.object_end = jf_object_end;
	sem.array_start = jf_array_start;
	sem.array_end = jf_array_end;
	sem.object_field_start = jf_field_start;
	sem.object_field_end = jf_field_end;
	sem.scalar = jf_scalar;

	lex = compat_json_lex_context(json, len, encoding);
	rc = pg_parse_json(lex, &sem);
	*errdetail = NULL;
	if (rc != JSON_SUCCESS)
		*errdetail = json_errdetail(rc, lex);
	else if (!jf->top_is_object)
	{
		rc = JSON_EXPECTED_JSON;
		*errdetail = pstrdup("The line is valid JSON but not an object.");
	}
	return rc;
}

/* The last value at path (later duplicate keys win, as in jsonb). */
const JsonField *
json_fields_get(const JsonFields *jf, const char *path)
{
	int			i;

	for (i = jf->n - 1; i >= 0; i--)
		if (strcmp(jf->items[i].path, path) == 0)
			return &jf->items[i];
	return NULL;
}
