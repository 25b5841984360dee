/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_logformat.c
 *		libFuzzer harness: log_format_compile on the input as a format
 *		string, with invariants on the regular expression it produces.
 *
 * PostgreSQL's regex engine is backend-only, so the regex is not compiled
 * here; instead the harness checks what ingest_logline.c relies on:
 *	- on success: nheaders in 1..LOG_FORMAT_MAX_HEADERS, distinct header
 *	  names of [A-Za-z0-9_]+ each written as <name> in the format and found
 *	  by log_format_header_index at its own index;
 *	- the regex starts with ^ and ends with a $ that is not escaped;
 *	- capture groups == nheaders, counted two ways: the plain count of
 *	  unescaped '(' not followed by '?', and an ARE-aware count that skips
 *	  bracket expressions (where '(' is literal).  The second count is only
 *	  compared when the regex's brackets and parentheses balance and its
 *	  [:class:] names are known, since otherwise the backend's regex
 *	  compiler rejects it anyway;
 *	- on error: a message, and error_pos inside the format.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "ingest/log_format.h"

#include "fuzz_common.h"

/* Unescaped '(' not followed by '?'. */
static int
count_captures_plain(const char *re)
{
	int			n = 0;

	for (; *re; re++)
	{
		if (*re == '\\')
		{
			if (re[1] == '\0')
				break;
			re++;
		}
		else if (*re == '(' && re[1] != '?')
			n++;
	}
	return n;
}

/*
 * Whether [:name:] is a class the ARE compiler knows, or [.x.] / [=x=]
 * names a single character (multi-character collating names are treated
 * as unknown, which only makes the check below more conservative).
 */
static bool
valid_bracket_name(char kind, const char *name, size_t len)
{
	static const char *const classes[] = {
		"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
		"lower", "print", "punct", "space", "upper", "xdigit", "word",
		"<", ">", NULL
	};
	int			i;

	if (kind != ':')
		return len == 1;
	for (i = 0; classes[i]; i++)
		if (strlen(classes[i]) == len && strncmp(classes[i], name, len) == 0)
			return true;
	return false;
}

/*
 * Skip an ARE bracket expression starting at re (just after '[').  Returns
 * the position after its closing ']', or NULL if it never closes.
 */
static const char *
skip_bracket(const char *re)
{
	if (*re == '^')
		re++;
	if (*re == ']')				/* a leading ] is literal */
		re++;
	while (*re && *re != ']')
	{
		if (*re == '[' && (re[1] == ':' || re[1] == '.' || re[1] == '='))
		{
			char		kind = re[1];
			const char *name = re + 2;

			re += 2;
			while (*re && !(re[0] == kind && re[1] == ']'))
				re++;
			if (!*re)
				return NULL;
			/* the compiler rejects unknown names; treat them as invalid */
			if (!valid_bracket_name(kind, name, re - name))
				return NULL;
			re += 2;
		}
		else if (*re == '\\')	/* ARE: escapes work inside brackets */
		{
			if (re[1] == '\0')
				return NULL;
			re += 2;
		}
		else
			re++;
	}
	return *re ? re + 1 : NULL;
}

/*
 * Captures as the regex compiler sees them; -1 if brackets or parentheses
 * do not balance (regcomp would reject the regex).
 */
static int
count_captures_are(const char *re)
{
	int			n = 0,
				open = 0;

	while (*re)
	{
		if (*re == '\\')
		{
			if (re[1] == '\0')
				return -1;
			re += 2;
		}
		else if (*re == '[')
		{
			if ((re = skip_bracket(re + 1)) == NULL)
				return -1;
		}
		else if (*re == '(')
		{
			if (re[1] != '?')
				n++;
			open++;
			re++;
		}
		else if (*re == ')')
		{
			if (--open < 0)
				return -1;
			re++;
		}
		else
			re++;
	}
	return open == 0 ? n : -1;
}

static void
check_success(const char *format, const LogFormat *lf)
{
	const char *re = lf->regex;
	size_t		len;
	int			i,
				j,
				nbs,
				are;

	FUZZ_CHECK(re != NULL, "success without a regex");
	len = strlen(re);
	FUZZ_CHECK(lf->nheaders >= 1 && lf->nheaders <= LOG_FORMAT_MAX_HEADERS,
			   "nheaders %d", lf->nheaders);
	FUZZ_CHECK(len >= 2 && re[0] == '^' && re[len - 1] == '$',
			   "regex not anchored: %s", re);
	for (nbs = 0; nbs < (int) len - 1 && re[len - 2 - nbs] == '\\'; nbs++)
		;
	FUZZ_CHECK(nbs % 2 == 0, "final $ is escaped, the regex is not anchored: %s", re);

	for (i = 0; i < lf->nheaders; i++)
	{
		const char *h = lf->headers[i];
		char	   *tok;

		FUZZ_CHECK(h != NULL && h[0] != '\0', "header %d empty", i);
		for (j = 0; h[j]; j++)
			FUZZ_CHECK(isalnum((unsigned char) h[j]) || h[j] == '_',
					   "header %d has byte 0x%02x", i, (unsigned char) h[j]);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(lf->headers[j], h) != 0, "duplicate header %s", h);
		FUZZ_CHECK(log_format_header_index(lf, h) == i, "header_index(%s) != %d", h, i);
		tok = psprintf("<%s>", h);
		FUZZ_CHECK(strstr(format, tok) != NULL, "header %s not in the format", h);
		pfree(tok);
	}
	FUZZ_CHECK(log_format_header_index(lf, "no such header!") == -1,
			   "header_index found an impossible name");

	FUZZ_CHECK(count_captures_plain(re) == lf->nheaders,
			   "%d unescaped '(' captures for %d headers: %s",
			   count_captures_plain(re), lf->nheaders, re);
	are = count_captures_are(re);
	FUZZ_CHECK(are < 0 || are == lf->nheaders,
			   "regex has %d capture groups for %d headers: %s",
			   are, lf->nheaders, re);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	arena;
	LogFormat	lf;
	char	   *format;
	const char *err;
	int			pos = -1;

	/* a text argument never holds NUL */
	if (memchr(data, '\0', size) != NULL)
		return -1;

	fuzz_arena_init(&arena, "call");
	fuzz_arena_switch(&arena);

	/* exact-size copy, so reading past the terminator is caught */
	format = palloc(size + 1);
	memcpy(format, data, size);
	format[size] = '\0';

	err = log_format_compile(format, &lf, &pos);
	if (err != NULL)
	{
		FUZZ_CHECK(err[0] != '\0', "empty error message");
		FUZZ_CHECK(pos >= 0 && (size_t) pos <= size, "error_pos %d outside 0..%zu",
				   pos, size);
	}
	else
		check_success(format, &lf);

	fuzz_arena_reset(&arena);
	return 0;
}
