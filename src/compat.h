/*-------------------------------------------------------------------------
 * src/compat.h
 *		Every PG_VERSION_NUM shim smartetl needs, in one place.
 *
 * PostgreSQL 15 is the target; 16 and 17 changed a few signatures we use.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_COMPAT_H
#define SMARTETL_COMPAT_H

#ifndef FRONTEND
#include "utils/datetime.h"

/* PG16 added a DateTimeErrorExtra argument to the datetime decoders. */
#if PG_VERSION_NUM >= 160000
#define compat_DecodeDateTime(f, t, n, dt, tm, fs, tz) \
	({ DateTimeErrorExtra _extra; DecodeDateTime((f), (t), (n), (dt), (tm), (fs), (tz), &_extra); })
#else
#define compat_DecodeDateTime(f, t, n, dt, tm, fs, tz) \
	DecodeDateTime((f), (t), (n), (dt), (tm), (fs), (tz))
#endif

/* PG16 gave ExecInitRangeTable a permInfos list and ExecInsertIndexTuples onlySummarizing. */
#if PG_VERSION_NUM >= 160000
#define compat_ExecInitRangeTable(estate, rtable) ExecInitRangeTable((estate), (rtable), NIL)
#define compat_ExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define compat_ExecInitRangeTable(estate, rtable) ExecInitRangeTable((estate), (rtable))
#define compat_ExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/* PG16 keeps GUC memory in a context: check hooks' "extra" must come from guc_malloc. */
#if PG_VERSION_NUM >= 160000
#define compat_guc_malloc(size) guc_malloc(LOG, (size))
#else
#define compat_guc_malloc(size) malloc(size)
#endif
#endif							/* !FRONTEND */

/* PG17 made makeJsonLexContextCstringLen take a caller-supplied context. */
#if PG_VERSION_NUM >= 170000
#define compat_json_lex_context(json, len, enc) \
	makeJsonLexContextCstringLen(NULL, (json), (len), (enc), true)
#else
#define compat_json_lex_context(json, len, enc) \
	makeJsonLexContextCstringLen((json), (len), (enc), true)
#endif

/* PG16 made JSON semantic-action callbacks return a JsonParseErrorType. */
#if PG_VERSION_NUM >= 160000
#define JSON_ACTION_RESULT JsonParseErrorType
#define JSON_ACTION_DONE return JSON_SUCCESS
#else
#define JSON_ACTION_RESULT void
#define JSON_ACTION_DONE return
#endif

#endif							/* SMARTETL_COMPAT_H */
