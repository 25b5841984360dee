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
 * One optional group around one header, "<Component>(\[<PID>\])?: ",
 * is read both ways, with the group and without it; a backtracking engine
 * tries, at each end of the header before the group, the group first and
 * then its absence, so the reading whose header before the group ends
 * first wins (the group on a tie), provided it splits the whole line.
 * Formats with other regex constructs (more groups, classes,
 * alternatives) or text after the last header are "not plain";
 * ingest_logline.c uses the regex for them.  Frontend-safe, so the fuzz
 * harness covers it.
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

static bool build_plain(const char *format, LogSplitter *out);

/*
 * The optional group of a format, "(" ... ")?" with plain text and one
 * <Header> inside and no other group or regex construct anywhere: sets
 * *open and *close (the index of its ")") and returns true.
 */
static bool
find_group(const char *format, int *open, int *close)
{
	const char *p;
	int			headers = 0;

	*open = *close = -1;
	for (p = format; *p; p++)
	{
		int			hlen = log_format_header_length(p);

		if (hlen > 0)
		{
			headers += *open >= 0 && *close < 0 ? 1 : 0;
			p += hlen - 1;
		}
		else if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(' && *open < 0)
			*open = p - format;
		else if (*p == ')' && *open >= 0 && *close < 0 && p[1] == '?')
		{
			*close = p - format;
			p++;
		}
		else if (strchr(".^$*+?()[]{}|", *p) != NULL)
			return false;
	}
	return *open >= 0 && *close > *open && headers == 1;
}

/*
 * Read the separators of a plain format, or of one with a single optional
 * group (both readings).  Returns false for anything the direct reading
 * does not cover, and the caller falls back to the regex.
 */
bool
log_splitter_build(const char *format, LogSplitter *out)
{
	int			open,
				close;
	char	   *with;
	char	   *without;
	const char *p;
	int			h = 0;

	if (!find_group(format, &open, &close))
		return build_plain(format, out);
	/* the format with the group's text inline, and without the group */
	with = psprintf("%.*s%.*s%s", open, format, close - open - 1, format + open + 1,
					format + close + 2);
	without = psprintf("%.*s%s", open, format, format + close + 2);
	if (!build_plain(with, out))
		return false;
	out->absent = palloc(sizeof(LogSplitter));
	if (!build_plain(without, out->absent))
		return false;
	for (p = format; p < format + open; p++)
		if (log_format_header_length(p) > 0)
			h++;
	out->group_header = h;
	out->group_prev = h - 1;
	return true;
}

static bool
build_plain(const char *format, LogSplitter *out)
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
 * The direct reading of a plain splitter: returns the number of headers
 * whose end it found (all of them: a split), -1 if the text before the
 * first header does not match.
 */
static int
split_plain(const LogSplitter *sp, const char *line, int len, int *starts, int *ends)
{
	int			pos;
	int			h;

	pos = literal_match_at(&sp->lits[0], line, len, 0);
	if (pos < 0)
		return -1;
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
			return h;
		starts[h] = pos;
		ends[h] = at;
		pos = at + mlen;
	}
	starts[h] = pos;
	ends[h] = len;
	return sp->nheaders;
}

/*
 * Split line into headers: starts[i]/ends[i] are byte offsets of header i
 * (-1 for the header of an optional group that is absent).  Returns false
 * when the direct reading finds no split (see the banner: the regex
 * decides then).
 */
bool
log_splitter_split(const LogSplitter *sp, const char *line, int len,
				   int *starts, int *ends)
{
	int			bs[LOG_FORMAT_MAX_HEADERS];
	int			be[LOG_FORMAT_MAX_HEADERS];
	int			a,
				b,
				g = sp->group_header,
				prev = sp->group_prev,
				h;
	bool		with_group;

	a = split_plain(sp, line, len, starts, ends);
	if (sp->absent == NULL)
		return a == sp->nheaders;
	b = split_plain(sp->absent, line, len, bs, be);

	/*
	 * Which reading a backtracking engine takes: the one whose header
	 * before the group ends first (a group at the start: the group if it
	 * can be read), the group on a tie; no verdict if that one fails.
	 */
	if (prev < 0)
		with_group = true;
	else if (a > prev && b > prev)
		with_group = ends[prev] <= be[prev];
	else
		with_group = a > prev;
	if (with_group)
		return a == sp->nheaders;
	if (b != sp->absent->nheaders)
		return false;
	for (h = 0; h < sp->nheaders; h++)
	{
		int			k = h < g ? h : h - 1;

		starts[h] = h == g ? -1 : bs[k];
		ends[h] = h == g ? -1 : be[k];
	}
	return true;
}
