/*-------------------------------------------------------------------------
 * src/common/line_reader.h
 *		Split a payload or a file into physical lines, with line numbers
 *		and the checks every parser needs (length cap, NUL bytes, encoding).
 *
 * Frontend-safe (no ereport, no fmgr), so the fuzz harnesses link it as is.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_LINE_READER_H
#define SMARTETL_LINE_READER_H

#include <stdio.h>

#include "lib/stringinfo.h"

typedef enum LineStatus
{
	LINE_OK,
	LINE_EOF,
	LINE_TOO_LONG,
	LINE_HAS_NUL,
	LINE_BAD_ENCODING,
	LINE_IO_ERROR
} LineStatus;

typedef struct LineReader
{
	/* exactly one source: an in-memory buffer or an open file */
	const char *mem;
	size_t		mem_len;
	size_t		mem_pos;
	FILE	   *file;
	char	   *chunk;			/* file read buffer */
	size_t		chunk_len;
	size_t		chunk_pos;
	bool		file_eof;

	int			encoding;		/* pg_enc to verify, or -1 to skip */
	size_t		max_line;		/* longest accepted line, in bytes */

	long		line_no;		/* 1-based number of the line in `line` */
	bool		crlf;			/* the line ended with \r\n */
	size_t		bad_offset;		/* byte offset of a NUL or bad sequence */
	StringInfoData line;		/* the line, terminator stripped */
	bool		replay;			/* line_reader_unread(): return `line` again */
	LineStatus	last_status;
} LineReader;

extern void line_reader_init_mem(LineReader *r, const char *data, size_t len,
								 int encoding, size_t max_line);
extern void line_reader_init_file(LineReader *r, FILE *file,
								  int encoding, size_t max_line);
extern LineStatus line_reader_next(LineReader *r);
extern void line_reader_unread(LineReader *r);
extern void line_reader_free(LineReader *r);

#endif							/* SMARTETL_LINE_READER_H */
