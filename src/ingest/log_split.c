/*-------------------------------------------------------------------------
 * src/ingest/log_split.c
 *		Split a log line by a plain Loghub format without the regex engine.
 *
 * Most log formats are headers separated by fixed text: "<Date> <Time>
 * <Level> \[<Thread>\] <Component>: <Content>".  For those, Loghub's regex
 * (lazy captures, \s+ for spaces, anchored) has a direct reading: each
 * header ends where the next separator first occurs, and the last one
 * takes the rest of the line.  When that scan succeeds, its split is the
 * one a backtracking engine finds first (it only ever takes the engine's
 * first choice at each step), without converting the line to wide
 * characters or running an automaton: the benchmark in BENCHMARKS.md
 * measured the regex at 86% of log ingestion time.  When it fails, the line
 * may still match by backtracking (a whitespace run giving a blank back to
 * an empty header), so the caller then asks the regex; that is rare, as
 * most failing lines are continuation lines.  test/fuzz/fuzz_logsplit.c
 * checks both claims against a backtracking reference.
 *
 * Formats with regex constructs (optional groups, classes, alternatives)
 * or text after the last header are "not plain"; ingest_logline.c uses
 * the regex for them.  Frontend-safe, so the fuzz harness covers it.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "ingest/log_format.h"

#define LOG_SPLIT_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || \
						 (c) == '\f' || (c) == '\v')

static void
literal_add(LogLiteral *lit, int *cap, char byte, bool ws)
{
	if (lit->len == *cap)
	{
		*cap = *cap ? *cap * 2 : 8;
		lit->bytes = lit->bytes ? repalloc(lit->bytes, *cap) : palloc(*cap);
		lit->ws = lit->ws ? repalloc(lit->ws, *cap * sizeof(bool)) : palloc(*cap * sizeof(bool));
	}
	lit->bytes[lit->len] = byte;
	lit->ws[lit->len] = ws;
	lit->len++;
}

/*
 * A fixed whitespace byte right after a whitespace run ("\s+\t") would
 * need the run to give a byte back, which the direct reading never does.
 */
static bool
needs_backtracking(const LogSplitter *sp)
{
	int			h,
				i;

	for (h = 0; h <= sp->nheaders; h++)
		for (i = 1; i < sp->lits[h].len; i++)
			if (sp->lits[h].ws[i - 1] && !sp->lits[h].ws[i] &&
				LOG_SPLIT_WS(sp->lits[h].bytes[i]))
				return true;
	return false;
}

/*
 * Read the separators of a plain format.  Returns false for anything the
 * direct reading does not cover, and the caller falls back to the regex.
 */
bool
log_splitter_build(const char *format, LogSplitter *out)
{
	const char *p = format;
	int			cap = 0;
	LogLiteral *lit;

	memset(out, 0, sizeof(*out));
	lit = &out->lits[0];
	while (*p)
	{
		int			hlen = log_format_header_length(p);

		if (hlen > 0)
		{
			if (out->nheaders == LOG_FORMAT_MAX_HEADERS)
				return false;
			out->nheaders++;
			lit = &out->lits[out->nheaders];
			cap = 0;
			p += hlen;
		}
		else if (*p == ' ')
		{
			while (*p == ' ')
				p++;
			if (lit->len == 0 || !lit->ws[lit->len - 1])
				literal_add(lit, &cap, ' ', true);
		}
		else if (*p == '\\' && p[1] != '\0' && !isalnum((unsigned char) p[1]))
		{
			literal_add(lit, &cap, p[1], false);
			p += 2;
		}
		else if (strchr(".^$*+?()[]{}|\\", *p) != NULL)
			return false;
		else
			literal_add(lit, &cap, *p++, false);
	}
	/* text after the last header would make that header lazy, not "the rest" */
	if (out->nheaders == 0 || out->lits[out->nheaders].len != 0)
		return false;
	return !needs_backtracking(out);
}

/* Length of lit matched at line[pos], or -1. */
static int
literal_match_at(const LogLiteral *lit, const char *line, int len, int pos)
{
	int			start = pos;
	int			i;

	for (i = 0; i < lit->len; i++)
	{
		if (lit->ws[i])
		{
			if (pos >= len || !LOG_SPLIT_WS(line[pos]))
				return -1;
			while (pos < len && LOG_SPLIT_WS(line[pos]))
				pos++;
		}
		else
		{
			if (pos >= len || line[pos] != lit->bytes[i])
				return -1;
			pos++;
		}
	}
	return pos - start;
}

/*
 * Split line into headers: starts[i]/ends[i] are byte offsets of header i.
 * Returns false when the direct reading finds no split (see the banner:
 * the regex decides then).
 */
bool
log_splitter_split(const LogSplitter *sp, const char *line, int len,
				   int *starts, int *ends)
{
	int			pos;
	int			h;

	pos = literal_match_at(&sp->lits[0], line, len, 0);
	if (pos < 0)
		return false;
	for (h = 0; h < sp->nheaders - 1; h++)
	{
		const LogLiteral *next = &sp->lits[h + 1];
		int			at;
		int			mlen = -1;

		/* the header ends at the first place its separator matches */
		for (at = pos; at <= len; at++)
		{
			if (next->len > 0 && !next->ws[0] && at < len && line[at] != next->bytes[0])
				continue;
			if ((mlen = literal_match_at(next, line, len, at)) >= 0)
				break;
		}
		if (mlen < 0)
			return false;
		starts[h] = pos;
		ends[h] = at;
		pos = at + mlen;
	}
	starts[h] = pos;
	ends[h] = len;
	return true;
}
