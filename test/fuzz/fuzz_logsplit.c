/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_logsplit.c
 *		Differential fuzzing of the plain-format log splitter (log_split.c)
 *		against a backtracking reference with Loghub's regex semantics.
 *
 * Input: the first line is a log format, the following lines are log
 * lines.  When log_splitter_build accepts the format and log_splitter_split
 * finds a split, the reference below must find a match with the same
 * header offsets: lazy headers tried shortest first, whitespace runs
 * longest first (Python's re order), the last header taking the rest.
 * This checks the claim in log_split.c that a split found by scanning for
 * separators is exactly the one a backtracking engine finds first.  (When
 * the scan finds none, the backend asks the regex, so no claim is made.)
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "ingest/log_format.h"

#include "fuzz_common.h"

#define MAX_LINE 160			/* the reference is exponential */
#define MAX_HEADERS 6

#define WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || \
			   (c) == '\f' || (c) == '\v')

typedef struct Ref
{
	const LogSplitter *sp;
	const char *s;
	int			len;
	int			starts[MAX_HEADERS];
	int			ends[MAX_HEADERS];
	long		steps;
	bool		gave_up;		/* exponential case: no verdict */
} Ref;

static bool ref_header(Ref *r, int h, int pos);

/* Match literal lit from item i at pos, then continue with header h. */
static bool
ref_literal(Ref *r, const LogLiteral *lit, int i, int pos, int h)
{
	if (r->gave_up || ++r->steps > 2000000)
	{
		r->gave_up = true;
		return false;
	}
	if (i == lit->len)
		return h == r->sp->nheaders ? pos == r->len : ref_header(r, h, pos);
	if (lit->ws[i])
	{
		int			end = pos;

		while (end < r->len && WS(r->s[end]))
			end++;
		for (; end > pos; end--)
			if (ref_literal(r, lit, i + 1, end, h))
				return true;
		return false;
	}
	return pos < r->len && r->s[pos] == lit->bytes[i] &&
		ref_literal(r, lit, i + 1, pos + 1, h);
}

/* Header h starts at pos: shortest first, except the last takes the rest. */
static bool
ref_header(Ref *r, int h, int pos)
{
	int			end;

	r->starts[h] = pos;
	if (h == r->sp->nheaders - 1)
	{
		r->ends[h] = r->len;
		return ref_literal(r, &r->sp->lits[h + 1], 0, r->len, h + 1);
	}
	for (end = pos; end <= r->len; end++)
	{
		r->ends[h] = end;
		if (ref_literal(r, &r->sp->lits[h + 1], 0, end, h + 1))
			return true;
	}
	return false;
}

static void
check_line(const LogSplitter *sp, const char *line, int len)
{
	Ref			r = {sp, line, len};
	int			starts[MAX_HEADERS];
	int			ends[MAX_HEADERS];
	bool		got = log_splitter_split(sp, line, len, starts, ends);
	bool		want = ref_literal(&r, &sp->lits[0], 0, 0, 0);
	int			h;

	if (r.gave_up)
		return;

	if (!got)
		return;
	FUZZ_CHECK(want, "splitter found a split, the reference no match: \"%.*s\"", len, line);
	for (h = 0; got && h < sp->nheaders; h++)
		FUZZ_CHECK(starts[h] == r.starts[h] && ends[h] == r.ends[h],
				   "header %d: splitter [%d,%d), reference [%d,%d): \"%.*s\"",
				   h, starts[h], ends[h], r.starts[h], r.ends[h], len, line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	arena;
	const char *text = (const char *) data;
	const char *nl = memchr(text, '\n', size);
	char	   *format;
	LogSplitter sp;
	size_t		pos;

	if (nl == NULL || memchr(text, '\0', size) != NULL)
		return 0;
	fuzz_arena_init(&arena, "logsplit");
	fuzz_arena_switch(&arena);
	format = pnstrdup(text, nl - text);
	if (log_splitter_build(format, &sp) && sp.nheaders <= MAX_HEADERS)
	{
		for (pos = nl - text + 1; pos < size;)
		{
			const char *end = memchr(text + pos, '\n', size - pos);
			size_t		len = end ? (size_t) (end - (text + pos)) : size - pos;

			if (len <= MAX_LINE)
				check_line(&sp, text + pos, (int) len);
			pos += len + 1;
		}
	}
	fuzz_arena_reset(&arena);
	return 0;
}
