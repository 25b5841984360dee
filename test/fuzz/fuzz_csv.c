/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_csv.c
 *		libFuzzer harness: line_reader + csv_lexer, driven the way
 *		ingest_csv.c's csv_next_record drives them.
 *
 * Input layout:
 *	byte 0	delimiter, byte 1 quote (see pick_chars), byte 2 length-limit
 *			selector (>= 0xC0: max_line 1..64 bytes, else 1 MiB), then the
 *			CSV payload itself.
 *
 * Per complete record the harness reads every field (so ASan sees the
 * bytes) and checks the lexer's bookkeeping: offsets are contiguous and
 * each field is NUL-terminated inside buf.  It then re-encodes the record
 * with every field quoted and lexes that again through a fresh
 * line_reader + csv_lexer: the fields must come back byte for byte.
 *
 * Before that, the payload is also read through line_reader_init_file (on
 * an fmemopen stream, as ingest_file reads server files), which must
 * return exactly the lines, statuses and offsets of the in-memory reader.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "mb/pg_wchar.h"

#include "common/line_reader.h"
#include "ingest/csv_lexer.h"

#include "fuzz_common.h"

#define FUZZ_MAX_LINE	(1024 * 1024)

static bool
valid_special(int c)
{
	/* what options.c accepts in a UTF8 database: one ASCII byte, no EOL */
	return c > 0 && c < 0x80 && c != '\n' && c != '\r';
}

/*
 * Delimiter and quote from the first two bytes: used as is when options.c
 * would accept them (and they differ), else mapped onto common choices.
 */
static void
pick_chars(uint8 b0, uint8 b1, char *delim, char *quote)
{
	static const char delims[] = ",;\t| ";
	static const char quotes[] = "\"'`";
	int			i;

	*delim = valid_special(b0) ? (char) b0 : delims[b0 % (sizeof(delims) - 1)];
	if (valid_special(b1) && (char) b1 != *delim)
		*quote = (char) b1;
	else
	{
		for (i = 0;; i++)
		{
			*quote = quotes[(b1 + i) % (sizeof(quotes) - 1)];
			if (*quote != *delim)
				break;
		}
	}
}

/* Read every field and check the lexer's layout of buf. */
static void
check_record(const CsvLexer *lx, long line_no)
{
	int			i;

	FUZZ_CHECK(lx->nfields >= 1 && lx->nfields <= lx->cap,
			   "nfields %d outside 1..cap %d", lx->nfields, lx->cap);
	FUZZ_CHECK(lx->record_line >= 1 && lx->record_line <= line_no,
			   "record_line %ld, current line %ld", lx->record_line, line_no);
	for (i = 0; i < lx->nfields; i++)
	{
		const char *f = csv_field(lx, i);
		int			off = lx->offsets[i];
		size_t		len;

		FUZZ_CHECK(off >= 0 && off < lx->buf.len,
				   "field %d offset %d outside buf (len %d)", i, off, lx->buf.len);
		len = strlen(f);		/* reads the whole field */
		FUZZ_CHECK(off + (int) len < lx->buf.len,
				   "field %d runs past buf", i);
		/* lines never hold NUL, so the terminator is the field's end */
		if (i + 1 < lx->nfields)
			FUZZ_CHECK(lx->offsets[i + 1] == off + (int) len + 1,
					   "field %d does not end where field %d starts", i, i + 1);
		else
			FUZZ_CHECK(off + (int) len + 1 == lx->buf.len,
					   "last field does not end at buf's end");
		FUZZ_CHECK(lx->quoted[i] || strchr(f, '\n') == NULL,
				   "unquoted field %d contains a line break", i);
	}
}

/*
 * Quote every field (doubling quotes), join, and lex the result again: the
 * same fields must come back, all marked quoted.
 */
static void
check_roundtrip(const CsvLexer *lx)
{
	StringInfoData enc;
	LineReader	r2;
	CsvLexer	lx2;
	LineStatus	st;
	CsvStatus	cs = CSV_NEED_MORE;
	int			i;

	initStringInfo(&enc);
	for (i = 0; i < lx->nfields; i++)
	{
		const char *f = csv_field(lx, i);

		if (i > 0)
			appendStringInfoChar(&enc, lx->delimiter);
		appendStringInfoChar(&enc, lx->quote);
		for (; *f; f++)
		{
			if (*f == lx->quote)
				appendStringInfoChar(&enc, lx->quote);
			appendStringInfoChar(&enc, *f);
		}
		appendStringInfoChar(&enc, lx->quote);
	}

	line_reader_init_mem(&r2, enc.data, enc.len, PG_UTF8, (size_t) enc.len + 1);
	csv_lexer_init(&lx2, lx->delimiter, lx->quote, (size_t) enc.len + 1);
	while ((st = line_reader_next(&r2)) != LINE_EOF)
	{
		FUZZ_CHECK(st == LINE_OK, "re-encoded record: line status %d", (int) st);
		FUZZ_CHECK(cs == CSV_NEED_MORE, "re-encoded record ended early");
		cs = csv_lexer_feed(&lx2, r2.line.data, r2.line.len, r2.crlf, r2.line_no);
		FUZZ_CHECK(cs != CSV_ERROR, "re-encoded record rejected: %s", lx2.error);
	}
	FUZZ_CHECK(cs == CSV_RECORD, "re-encoded record incomplete");
	FUZZ_CHECK(lx2.nfields == lx->nfields, "round trip: %d fields became %d",
			   lx->nfields, lx2.nfields);
	for (i = 0; i < lx->nfields; i++)
	{
		FUZZ_CHECK(strcmp(csv_field(lx, i), csv_field(&lx2, i)) == 0,
				   "round trip changed field %d", i);
		FUZZ_CHECK(lx2.quoted[i], "round trip: field %d not marked quoted", i);
	}
	csv_lexer_free(&lx2);
	line_reader_free(&r2);
	pfree(enc.data);
}

/* The file-mode reader must split the payload as the memory reader does. */
static void
check_file_reader(const char *payload, size_t len, size_t max_line)
{
	LineReader	m,
				f;
	LineStatus	sm,
				sf;
	FILE	   *fp;

	if (len == 0)				/* fmemopen may refuse an empty buffer */
		return;
	fp = fmemopen((void *) payload, len, "r");
	FUZZ_CHECK(fp != NULL, "fmemopen failed");
	line_reader_init_mem(&m, payload, len, PG_UTF8, max_line);
	line_reader_init_file(&f, fp, PG_UTF8, max_line);
	do
	{
		sm = line_reader_next(&m);
		sf = line_reader_next(&f);
		FUZZ_CHECK(sm == sf, "line %ld: memory reader says %d, file reader %d",
				   m.line_no, (int) sm, (int) sf);
		FUZZ_CHECK(m.line_no == f.line_no && m.crlf == f.crlf &&
				   m.line.len == f.line.len &&
				   memcmp(m.line.data, f.line.data, m.line.len) == 0,
				   "line %ld differs between memory and file readers", m.line_no);
		if (sm == LINE_HAS_NUL || sm == LINE_BAD_ENCODING)
			FUZZ_CHECK(m.bad_offset == f.bad_offset, "bad_offset differs");
	} while (sm != LINE_EOF);
	FUZZ_CHECK(line_reader_next(&f) == LINE_EOF, "file reader goes on after EOF");
	line_reader_free(&m);
	line_reader_free(&f);
	fclose(fp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	outer,
				row;
	LineReader	r;
	CsvLexer	lx;
	LineStatus	st;
	char		delim,
				quote;
	size_t		max_line;

	if (size < 3)
		return -1;
	pick_chars(data[0], data[1], &delim, &quote);
	max_line = data[2] >= 0xC0 ? (size_t) (data[2] & 0x3F) + 1 : FUZZ_MAX_LINE;

	fuzz_arena_init(&outer, "outer");
	fuzz_arena_init(&row, "row");
	fuzz_arena_switch(&outer);

	line_reader_init_mem(&r, (const char *) data + 3, size - 3, PG_UTF8, max_line);
	csv_lexer_init(&lx, delim, quote, max_line);

	/* as in ingest_csv.c: per-record work happens in a reset context */
	fuzz_arena_switch(&row);
	check_file_reader((const char *) data + 3, size - 3, max_line);
	fuzz_arena_reset(&row);
	while ((st = line_reader_next(&r)) != LINE_EOF)
	{
		CsvStatus	cs;

		FUZZ_CHECK(r.line_no >= 1, "line_no %ld", r.line_no);
		if (st != LINE_OK)
		{
			FUZZ_CHECK(st == LINE_TOO_LONG || st == LINE_HAS_NUL ||
					   st == LINE_BAD_ENCODING, "line status %d", (int) st);
			if (st == LINE_TOO_LONG)
				FUZZ_CHECK(r.line.len == 0, "too-long line kept %d bytes", r.line.len);
			else
				FUZZ_CHECK(r.bad_offset < (size_t) r.line.len,
						   "bad_offset %zu outside line of %d bytes",
						   r.bad_offset, r.line.len);
			lx.state = CSV_FIELD_START;
			continue;
		}
		FUZZ_CHECK((size_t) r.line.len <= max_line, "line of %d bytes > max_line %zu",
				   r.line.len, max_line);
		FUZZ_CHECK(r.line.data[r.line.len] == '\0', "line not NUL-terminated");
		FUZZ_CHECK(memchr(r.line.data, '\n', r.line.len) == NULL, "line holds \\n");

		cs = csv_lexer_feed(&lx, r.line.data, r.line.len, r.crlf, r.line_no);
		if (cs == CSV_RECORD)
		{
			check_record(&lx, r.line_no);
			check_roundtrip(&lx);
			fuzz_arena_reset(&row);
		}
		else if (cs == CSV_ERROR)
		{
			FUZZ_CHECK(lx.error != NULL && lx.error_field >= 1,
					   "error without message or field");
			(void) strlen(lx.error);
		}
		else
			FUZZ_CHECK(lx.state == CSV_QUOTED, "NEED_MORE outside a quoted field");
	}
	if (csv_lexer_finish(&lx) == CSV_ERROR)
		FUZZ_CHECK(lx.error != NULL, "finish error without message");

	fuzz_arena_switch(&outer);
	csv_lexer_free(&lx);
	line_reader_free(&r);
	fuzz_arena_reset(&row);
	fuzz_arena_reset(&outer);
	return 0;
}
