/*-------------------------------------------------------------------------
 * src/ingest/csv_lexer.h
 *		RFC 4180 record splitter fed one physical line at a time.
 *
 * Frontend-safe: errors come back as a status plus a static message and
 * the 1-based field number, and the caller decides how to report them.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_CSV_LEXER_H
#define SMARTETL_CSV_LEXER_H

#include "lib/stringinfo.h"

typedef enum CsvStatus
{
	CSV_RECORD,					/* a complete record is available */
	CSV_NEED_MORE,				/* a quoted field continues on the next line */
	CSV_ERROR					/* see error and error_field */
} CsvStatus;

typedef enum CsvState
{
	CSV_FIELD_START,
	CSV_UNQUOTED,
	CSV_QUOTED,
	CSV_QUOTE_IN_QUOTED
} CsvState;

typedef struct CsvLexer
{
	char		delimiter;
	char		quote;
	size_t		max_record;

	CsvState	state;
	long		record_line;	/* line on which the current record began */
	StringInfoData buf;			/* field bytes, each field NUL-terminated */
	int			nfields;
	int			cap;
	int		   *offsets;		/* start of each field in buf */
	bool	   *quoted;			/* field was quoted (so "" is not NULL) */

	const char *error;
	int			error_field;
} CsvLexer;

extern void csv_lexer_init(CsvLexer *lx, char delimiter, char quote,
						   size_t max_record);
extern CsvStatus csv_lexer_feed(CsvLexer *lx, const char *line, size_t len,
								bool crlf, long line_no);
extern CsvStatus csv_lexer_finish(CsvLexer *lx);
extern void csv_lexer_free(CsvLexer *lx);

static inline const char *
csv_field(const CsvLexer *lx, int i)
{
	return lx->buf.data + lx->offsets[i];
}

#endif							/* SMARTETL_CSV_LEXER_H */
