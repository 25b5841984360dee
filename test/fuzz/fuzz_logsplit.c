/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_logsplit.c
 *		Differential fuzzing of the plain-format log splitter (log_split.c)
 *		against a backtracking reference with Loghub's regex semantics.
 *
 * Input: the first line is a log format, the following lines are log
 * lines.  When log_splitter_build accepts the format and log_splitter_split
 * finds a split, the reference below, which reads the format string
 * itself, must find a match with the same header offsets: lazy headers
 * tried shortest first, whitespace runs longest first (Python's re order),
 * an optional group tried before it is skipped, the last header taking
 * the rest.
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

/* The format as a pattern, read from the format string itself. */
typedef enum ItemKind
{
	IT_BYTE,					/* one literal byte */
	IT_WS,						/* a run of whitespace, at least one */
	IT_HEADER,					/* lazy .*?, the last one takes the rest */
	IT_OPEN,					/* an optional group starts: "(" */
	IT_CLOSE					/* it ends: ")?" */
} ItemKind;

typedef struct Item
{
	ItemKind	kind;
	char		byte;
	int			header;
	int			match;			/* IT_OPEN: the index of its IT_CLOSE */
} Item;

#define MAX_ITEMS 512

typedef struct Ref
{
	Item		items[MAX_ITEMS];
	int			nitems;
	int			nheaders;
	const char *s;
	int			len;
	int			starts[MAX_HEADERS];
	int			ends[MAX_HEADERS];
	long		steps;
	bool		gave_up;		/* exponential case: no verdict */
} Ref;

/* Read a format the splitter accepted: headers, escapes, spaces, one group. */
static bool
ref_parse(Ref *r, const char *f)
{
	int			open = -1;

	while (*f && r->nitems < MAX_ITEMS)
	{
		Item	   *it = &r->items[r->nitems];
		int			hlen = log_format_header_length(f);

		if (hlen > 0)
		{
			it->kind = IT_HEADER;
			it->header = r->nheaders++;
			f += hlen;
		}
		else if (*f == ' ')
		{
			while (*f == ' ')
				f++;
			if (r->nitems > 0 && r->items[r->nitems - 1].kind == IT_WS)
				continue;
			it->kind = IT_WS;
		}
		else if (*f == '\\' && f[1])
		{
			it->kind = IT_BYTE;
			it->byte = f[1];
			f += 2;
		}
		else if (*f == '(')
		{
			it->kind = IT_OPEN;
			open = r->nitems;
			f++;
		}
		else if (*f == ')' && f[1] == '?' && open >= 0)
		{
			it->kind = IT_CLOSE;
			r->items[open].match = r->nitems;
			f += 2;
		}
		else
		{
			it->kind = IT_BYTE;
			it->byte = *f++;
		}
		r->nitems++;
	}
	return *f == '\0' && r->nheaders <= MAX_HEADERS;
}

static bool ref_at(Ref *r, int i, int pos);

/*
 * Match items from i at pos, as Python's re does: headers shortest first
 * (the last one takes the rest), whitespace runs longest first, an
 * optional group first tried, then skipped (its header then unset).
 */
static bool
ref_at(Ref *r, int i, int pos)
{
	const Item *it;

	if (r->gave_up || ++r->steps > 2000000)
	{
		r->gave_up = true;
		return false;
	}
	if (i == r->nitems)
		return pos == r->len;
	it = &r->items[i];
	switch (it->kind)
	{
		case IT_BYTE:
			return pos < r->len && r->s[pos] == it->byte && ref_at(r, i + 1, pos + 1);
		case IT_WS:
			{
				int			end = pos;

				while (end < r->len && WS(r->s[end]))
					end++;
				for (; end > pos; end--)
					if (ref_at(r, i + 1, end))
						return true;
				return false;
			}
		case IT_HEADER:
			{
				int			end;

				r->starts[it->header] = pos;
				if (it->header == r->nheaders - 1)
				{
					r->ends[it->header] = r->len;
					return ref_at(r, i + 1, r->len);
				}
				for (end = pos; end <= r->len; end++)
				{
					r->ends[it->header] = end;
					if (ref_at(r, i + 1, end))
						return true;
				}
				return false;
			}
		case IT_OPEN:
			{
				int			k;

				if (ref_at(r, i + 1, pos))
					return true;
				for (k = i; k < it->match; k++)
					if (r->items[k].kind == IT_HEADER)
						r->starts[r->items[k].header] = r->ends[r->items[k].header] = -1;
				return ref_at(r, it->match + 1, pos);
			}
		case IT_CLOSE:
			return ref_at(r, i + 1, pos);
	}
	return false;
}

static void
check_line(const char *format, const LogSplitter *sp, const char *line, int len)
{
	Ref		   *r = palloc0(sizeof(Ref));
	int			starts[MAX_HEADERS];
	int			ends[MAX_HEADERS];
	bool		got = log_splitter_split(sp, line, len, starts, ends);
	bool		want;
	int			h;

	if (!ref_parse(r, format))
		return;
	r->s = line;
	r->len = len;
	want = ref_at(r, 0, 0);
	if (r->gave_up || !got)
		return;
	FUZZ_CHECK(want, "splitter found a split, the reference no match: \"%.*s\"", len, line);
	for (h = 0; h < sp->nheaders; h++)
		FUZZ_CHECK(starts[h] == r->starts[h] && ends[h] == r->ends[h],
				   "header %d: splitter [%d,%d), reference [%d,%d): \"%.*s\"",
				   h, starts[h], ends[h], r->starts[h], r->ends[h], len, line);
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
				check_line(format, &sp, text + pos, (int) len);
			pos += len + 1;
		}
	}
	fuzz_arena_reset(&arena);
	return 0;
}
