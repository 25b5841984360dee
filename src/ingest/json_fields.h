/*-------------------------------------------------------------------------
 * src/ingest/json_fields.h
 *		Flatten one JSON object (one line of a jsonl payload) into
 *		dotted-path → scalar pairs, using PostgreSQL's own JSON parser.
 *
 * Frontend-safe, so the fuzz harness exercises the same code.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_JSON_FIELDS_H
#define SMARTETL_JSON_FIELDS_H

#include "common/jsonapi.h"
#include "lib/stringinfo.h"

typedef struct JsonField
{
	char	   *path;			/* "level" or "job.name"; arrays are skipped */
	char	   *value;			/* de-escaped string or raw number/bool text */
	bool		is_null;
} JsonField;

typedef struct JsonFields
{
	int			n;
	int			cap;
	JsonField  *items;

	/* parse state */
	int			depth;
	int			array_depth;
	bool		top_is_object;
	StringInfoData path;
	int		   *path_len;		/* path length before each open field */
	int			path_cap;
} JsonFields;

extern void json_fields_init(JsonFields *jf);
extern JsonParseErrorType json_fields_parse(JsonFields *jf, char *json,
											int len, int encoding,
											char **errdetail);
extern const JsonField *json_fields_get(const JsonFields *jf, const char *path);

#endif							/* SMARTETL_JSON_FIELDS_H */
