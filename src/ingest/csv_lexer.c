/*-------------------------------------------------------------------------
 * src/ingest/csv_lexer.c
 *		RFC 4180 CSV: quoted fields, doubled quotes, embedded newlines,
 *		CRLF, any one-byte delimiter.
 *
 * Strict on purpose: a quote inside an unquoted field, or text after a
 * closing quote, is an error rather than a guess, because a guessed split
 * silently shifts every later column of the row.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "ingest/csv_lexer.h"

void
csv_lexer_init(CsvLexer *lx, char delimiter, char quote, size_t max_record)
{
	memset(lx, 0, sizeof(*lx));
	lx->delimiter = delimiter;
	lx->quote = quote;
	lx->max_record = max_record;
	lx->state = CSV_FIELD_START;
	initStringInfo(&lx->buf);
	lx->cap = 16;
	lx->offsets = palloc(sizeof(int) * lx->cap);
	lx->quoted = palloc(sizeof(bool) * lx->cap);
}

void
csv_lexer_free(CsvLexer *lx)
{
	pfree(lx->buf.data);
	pfree(lx->offsets);
	pfree(lx->quoted);
}

/* Open a new field at the end of buf. */
static void
csv_open_field(CsvLexer *lx)
{
	if (lx->nfields == lx->cap)
	{
		lx->cap *= 2;
		lx->offsets = repalloc(lx->offsets, sizeof(int) * lx->cap);
		lx->quoted = repalloc(lx->quoted, sizeof(bool) * lx->cap);
	}
	lx->offsets[lx->nfields] = lx->buf.len;
	lx->quoted[lx->nfields] = false;
	lx->nfields++;
}

static void
csv_close_field(CsvLexer *lx)
{
	appendStringInfoChar(&lx->buf, '\0');
	lx->state = CSV_FIELD_START;
}

static CsvStatus
csv_fail(CsvLexer *lx, const char *message)
{
	lx->error = message;
	lx->error_field = lx->nfields;
	lx->state = CSV_FIELD_START;
	return CSV_ERROR;
}

/* Length of the run at s (at most n bytes) holding neither a nor b. */
static size_t
plain_run(const char *s, size_t n, char a, char b)
{
	size_t		i = 0;

	while (i < n && s[i] != a && s[i] != b)
		i++;
	return i;
}

/*
 * Consume one physical line (terminator stripped; crlf says whether it was
 * \r\n, which is restored inside quoted fields).  Runs of ordinary bytes
 * are copied in one call: per-byte appends were the lexer's main cost.
 */
CsvStatus
csv_lexer_feed(CsvLexer *lx, const char *line, size_t len, bool crlf,
			   long line_no)
{
	size_t		i = 0;

	if (lx->state != CSV_QUOTED)
	{
		resetStringInfo(&lx->buf);
		lx->nfields = 0;
		lx->record_line = line_no;
		lx->state = CSV_FIELD_START;
		csv_open_field(lx);
	}
	if ((size_t) lx->buf.len + len > lx->max_record)
		return csv_fail(lx, "The record is longer than max_line_bytes");

	while (i < len)
	{
		char		c = line[i];
		size_t		run;

		switch (lx->state)
		{
			case CSV_FIELD_START:
				if (c == lx->quote)
				{
					lx->quoted[lx->nfields - 1] = true;
					lx->state = CSV_QUOTED;
					i++;
				}
				else if (c == lx->delimiter)
				{
					csv_close_field(lx);
					csv_open_field(lx);
					i++;
				}
				else
					lx->state = CSV_UNQUOTED;
				break;
			case CSV_UNQUOTED:
				run = plain_run(line + i, len - i, lx->delimiter, lx->quote);
				appendBinaryStringInfo(&lx->buf, line + i, (int) run);
				i += run;
				if (i == len)
					break;
				if (line[i] == lx->quote)
					return csv_fail(lx, "A quote character appears inside an unquoted field");
				csv_close_field(lx);
				csv_open_field(lx);
				i++;
				break;
			case CSV_QUOTED:
				run = plain_run(line + i, len - i, lx->quote, lx->quote);
				appendBinaryStringInfo(&lx->buf, line + i, (int) run);
				i += run;
				if (i < len)
				{
					lx->state = CSV_QUOTE_IN_QUOTED;
					i++;
				}
				break;
			case CSV_QUOTE_IN_QUOTED:
				if (c == lx->quote)
				{
					appendStringInfoChar(&lx->buf, c);
					lx->state = CSV_QUOTED;
				}
				else if (c == lx->delimiter)
				{
					csv_close_field(lx);
					csv_open_field(lx);
				}
				else
					return csv_fail(lx, "Text follows the closing quote of a field");
				i++;
				break;
		}
	}

	if (lx->state == CSV_QUOTED)
	{
		appendBinaryStringInfo(&lx->buf, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
		return CSV_NEED_MORE;
	}
	csv_close_field(lx);
	return CSV_RECORD;
}

/* At end of input: a still-open quoted field is an error. */
CsvStatus
csv_lexer_finish(CsvLexer *lx)
{
	if (lx->state == CSV_QUOTED)
		return csv_fail(lx, "A quoted field is not closed before the end of input");
	return CSV_RECORD;
}
