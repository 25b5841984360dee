/*-------------------------------------------------------------------------
 * src/common/line_reader.c
 *		Physical line splitting for payloads and server-side files.
 *
 * Files are streamed in fixed chunks so a multi-gigabyte file never has to
 * fit in memory; only the current line does, and it is capped at max_line
 * bytes so a 1 GB single line is a clean error instead of an allocation
 * failure.  Both \n and \r\n end a line.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "mb/pg_wchar.h"

#include "common/line_reader.h"

#define LINE_READER_CHUNK (1024 * 1024)

static void
line_reader_init_common(LineReader *r, int encoding, size_t max_line)
{
	r->encoding = encoding;
	r->max_line = max_line;
	r->line_no = 0;
	r->crlf = false;
	r->bad_offset = 0;
	r->replay = false;
	r->last_status = LINE_EOF;
	initStringInfo(&r->line);
}

void
line_reader_init_mem(LineReader *r, const char *data, size_t len,
					 int encoding, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->mem = data;
	r->mem_len = len;
	line_reader_init_common(r, encoding, max_line);
}

void
line_reader_init_file(LineReader *r, FILE *file, int encoding, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->file = file;
	r->chunk = palloc(LINE_READER_CHUNK);
	line_reader_init_common(r, encoding, max_line);
}

/*
 * Make unread bytes available in chunk; false at end of file or on error
 * (ferror tells which).
 */
static bool
line_reader_fill(LineReader *r)
{
	if (r->chunk_pos < r->chunk_len)
		return true;
	if (r->file_eof)
		return false;
	r->chunk_len = fread(r->chunk, 1, LINE_READER_CHUNK, r->file);
	r->chunk_pos = 0;
	if (r->chunk_len < LINE_READER_CHUNK)
		r->file_eof = true;
	return r->chunk_len > 0;
}

/*
 * Append bytes up to and excluding the next '\n' to r->line.  Returns true
 * when a '\n' was consumed, false at end of input.  Stops early (returning
 * true with *too_long set) once the line exceeds max_line, after skipping
 * the rest of it so the next call starts on the following line.
 */
static bool
line_reader_scan(LineReader *r, bool *too_long, bool *any)
{
	for (;;)
	{
		const char *start;
		size_t		avail;
		const char *nl;
		size_t		take;

		if (r->file)
		{
			if (!line_reader_fill(r))
				return false;
			start = r->chunk + r->chunk_pos;
			avail = r->chunk_len - r->chunk_pos;
		}
		else
		{
			if (r->mem_pos >= r->mem_len)
				return false;
			start = r->mem + r->mem_pos;
			avail = r->mem_len - r->mem_pos;
		}
		*any = true;
		nl = memchr(start, '\n', avail);
		take = nl ? (size_t) (nl - start) : avail;

		if (!*too_long && (size_t) r->line.len + take > r->max_line)
			*too_long = true;
		if (!*too_long)
			appendBinaryStringInfo(&r->line, start, (int) take);

		if (r->file)
			r->chunk_pos += take + (nl ? 1 : 0);
		else
			r->mem_pos += take + (nl ? 1 : 0);
		if (nl)
			return true;
	}
}

static LineStatus line_reader_read(LineReader *r);

/*
 * Read the next line into r->line.  On LINE_TOO_LONG, LINE_HAS_NUL and
 * LINE_BAD_ENCODING the reader has still advanced past the line, so a
 * caller that quarantines bad lines can simply go on.
 */
LineStatus
line_reader_next(LineReader *r)
{
	if (r->replay)
	{
		r->replay = false;
		return r->last_status;
	}
	r->last_status = line_reader_read(r);
	return r->last_status;
}

/* Make the next line_reader_next() return the current line again. */
void
line_reader_unread(LineReader *r)
{
	r->replay = true;
}

static LineStatus
line_reader_read(LineReader *r)
{
	bool		too_long = false;
	bool		any = false;
	bool		had_newline;
	const char *nul;
	int			valid;

	resetStringInfo(&r->line);
	r->crlf = false;
	had_newline = line_reader_scan(r, &too_long, &any);
	if (r->file && ferror(r->file))
		return LINE_IO_ERROR;
	if (!had_newline && !any)
		return LINE_EOF;
	r->line_no++;
	if (too_long)
	{
		resetStringInfo(&r->line);
		return LINE_TOO_LONG;
	}
	if (r->line.len > 0 && r->line.data[r->line.len - 1] == '\r')
	{
		r->line.data[--r->line.len] = '\0';
		r->crlf = true;
	}
	nul = memchr(r->line.data, '\0', r->line.len);
	if (nul)
	{
		r->bad_offset = nul - r->line.data;
		return LINE_HAS_NUL;
	}
	if (r->encoding >= 0)
	{
		valid = pg_encoding_verifymbstr(r->encoding, r->line.data, r->line.len);
		if (valid != r->line.len)
		{
			r->bad_offset = valid;
			return LINE_BAD_ENCODING;
		}
	}
	return LINE_OK;
}

void
line_reader_free(LineReader *r)
{
	if (r->chunk)
		pfree(r->chunk);
	if (r->line.data)
		pfree(r->line.data);
	r->chunk = NULL;
	r->line.data = NULL;
}
