/*-------------------------------------------------------------------------
 * src/ingest/options.c
 *		Validate and read the options jsonb of smartetl.ingest().
 *
 * Unknown keys are an error (a misspelt "delimter" must not be ignored),
 * and each format accepts only the keys that mean something to it (its row
 * in formats.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "smartetl.h"
#include "ingest/ingest.h"

/* Is key one of the space-separated words in list? */
static bool
word_in_list(const char *key, int keylen, const char *list)
{
	const char *p = list;

	while (*p)
	{
		const char *end = strchr(p, ' ');
		int			len = end ? (int) (end - p) : (int) strlen(p);

		if (len == keylen && strncmp(p, key, len) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

static void
check_option_keys(const IngestFormat *spec, Jsonb *options)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		mapping = spec->mapping;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (word_in_list(v.val.string.val, v.val.string.len, ingest_common_keys) ||
			word_in_list(v.val.string.val, v.val.string.len, spec->keys) ||
			(mapping && word_in_list(v.val.string.val, v.val.string.len, ingest_mapping_keys)))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown option \"%.*s\" for format \"%s\"",
						v.val.string.len, v.val.string.val, spec->name),
				 errhint("Options for %s are: %s%s%s%s%s.", spec->name, ingest_common_keys,
						 mapping ? " " : "", mapping ? ingest_mapping_keys : "",
						 spec->keys[0] ? " " : "", spec->keys)));
	}
}

static JsonbValue *
option_value(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

static void
option_type_error(const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" must be %s", key, expected)));
}

/* A string option, or NULL when absent; other JSON types are an error. */
char *
ingest_option_text(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = option_value(obj, key, &buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		option_type_error(key, "a string");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * dry_run: true stores in a subtransaction rolled back (exact counts);
 * "parse" parses and validates only (every valid record counted as an
 * insert), the cheap check of a file and the benchmarks' parse time.
 */
static void
option_dry_run(JsonbContainer *obj, IngestOptions *o)
{
	JsonbValue	buf;
	JsonbValue *v = option_value(obj, "dry_run", &buf);

	if (v == NULL)
		return;
	if (v->type == jbvBool)
		o->dry_run = v->val.boolean;
	else if (v->type == jbvString && v->val.string.len == 5 &&
			 strncmp(v->val.string.val, "parse", 5) == 0)
		o->dry_run = o->parse_only = true;
	else
		option_type_error("dry_run", "true, false or \"parse\"");
}

static JsonbContainer *
option_object(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = option_value(obj, key, &buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		option_type_error(key, "a JSON object");
	return v->val.binary.data;
}

static bool
option_bool(JsonbContainer *obj, const char *key, bool dflt)
{
	JsonbValue	buf;
	JsonbValue *v = option_value(obj, key, &buf);

	if (v == NULL)
		return dflt;
	if (v->type != jbvBool)
		option_type_error(key, "true or false");
	return v->val.boolean;
}

static int64
option_int(JsonbContainer *obj, const char *key, int64 dflt, int64 min, int64 max)
{
	JsonbValue	buf;
	JsonbValue *v = option_value(obj, key, &buf);
	int64		n;

	if (v == NULL)
		return dflt;
	if (v->type != jbvNumeric)
		option_type_error(key, "a number");
	n = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	if (n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
	return n;
}

static char
option_char(JsonbContainer *obj, const char *key, char dflt)
{
	char	   *s = ingest_option_text(obj, key);

	if (s == NULL)
		return dflt;
	if (strlen(s) != 1 || s[0] == '\n' || s[0] == '\r')
		option_type_error(key, "a single one-byte character other than a line break");
	return s[0];
}

/* Seconds in one unit of a time-unit word, or 0 if the word is unknown. */
static double
unit_seconds(const char *unit)
{
	if (strcmp(unit, "s") == 0)
		return 1;
	if (strcmp(unit, "ms") == 0)
		return 1e-3;
	if (strcmp(unit, "us") == 0)
		return 1e-6;
	if (strcmp(unit, "ns") == 0)
		return 1e-9;
	if (strcmp(unit, "min") == 0)
		return 60;
	return 0;
}

static void
parse_time_options(IngestOptions *o, JsonbContainer *root)
{
	char	   *s;

	if ((s = ingest_option_text(root, "timezone")) != NULL)
	{
		o->timezone = pg_tzset(s);
		if (o->timezone == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"timezone\" names an unknown time zone \"%s\"", s)));
	}
	o->timestamp_format = ingest_option_text(root, "timestamp_format");
	if ((s = ingest_option_text(root, "epoch_unit")) != NULL && strcmp(s, "auto") != 0)
	{
		o->epoch_unit_s = unit_seconds(s);
		if (o->epoch_unit_s == 0 || o->epoch_unit_s > 1)
			option_type_error("epoch_unit", "one of \"auto\", \"s\", \"ms\", \"us\", \"ns\"");
	}
	if ((s = ingest_option_text(root, "epoch_origin")) != NULL)
		o->epoch_origin = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																  CStringGetDatum(s),
																  ObjectIdGetDatum(InvalidOid),
																  Int32GetDatum(-1)));
	if ((s = ingest_option_text(root, "duration_unit")) != NULL)
	{
		o->duration_unit_s = unit_seconds(s);
		if (o->duration_unit_s == 0)
			option_type_error("duration_unit", "one of \"s\", \"ms\", \"us\", \"ns\", \"min\"");
	}
}

static void
parse_format_options(IngestOptions *o, JsonbContainer *root)
{
	char	   *s;
	int			f;

	o->delimiter = option_char(root, "delimiter", ',');
	o->quote = option_char(root, "quote", '"');
	if (o->delimiter == o->quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"delimiter\" and \"quote\" must differ")));
	o->header = option_bool(root, "header", true);
	o->columns = option_object(root, "columns");
	for (f = 0; o->columns && f < RF_COUNT; f++)
		o->column_source[f] = ingest_option_text(o->columns, run_field_name((RunField) f));
	o->status_map = option_object(root, "status_map");
	if ((s = ingest_option_text(root, "extra_columns")) != NULL)
	{
		if (strcmp(s, "attrs") != 0 && strcmp(s, "ignore") != 0)
			option_type_error("extra_columns", "\"attrs\" or \"ignore\"");
		o->extra_to_attrs = (strcmp(s, "attrs") == 0);
	}
	o->log_format = ingest_option_text(root, "log_format");
	o->run_external_id = ingest_option_text(root, "run_id");
}

/* Fill o from the format name and the options object, with defaults. */
void
ingest_options_parse(IngestOptions *o, const char *format, Jsonb *options)
{
	const IngestFormat *spec = ingest_format_find(format);
	JsonbContainer *root = &options->root;
	char	   *on_error;

	check_option_keys(spec, options);
	memset(o, 0, sizeof(*o));
	o->format = spec;
	o->extra_to_attrs = true;
	o->duration_unit_s = 1;
	/* the Unix epoch, in PostgreSQL's timestamp representation */
	o->epoch_origin = -((TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);

	on_error = ingest_option_text(root, "on_error");
	if (on_error && strcmp(on_error, "quarantine") != 0 && strcmp(on_error, "error") != 0)
		option_type_error("on_error", "\"error\" or \"quarantine\"");
	o->quarantine = on_error && strcmp(on_error, "quarantine") == 0;
	o->max_line = (size_t) option_int(root, "max_line_bytes",
									  SMARTETL_DEFAULT_MAX_LINE_BYTES, 1, MaxAllocSize - 1);
	option_dry_run(root, o);
	o->namespace = ingest_option_text(root, "namespace");
	if (o->namespace == NULL)
		o->namespace = unconstify(char *, spec->default_namespace);
	o->pipeline = ingest_option_text(root, "pipeline");
	o->source = ingest_option_text(root, "source");
	/* one window for the whole call, however long it runs */
	ingest_time_window(&o->min_time, &o->max_time);
	parse_time_options(o, root);
	parse_format_options(o, root);
	if (spec->check)
		spec->check(o);
}
