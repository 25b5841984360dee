/*-------------------------------------------------------------------------
 * src/ingest/log_format.c
 *		Loghub log format string → regular expression.
 *
 * Same translation as Loghub's own benchmark code, so its published
 * format strings work unchanged: each <Header> becomes a lazy capture (a
 * final one greedy, see add_header), the
 * whole line is anchored, spaces become \s+.  The user's own parentheses
 * are made non-capturing so capture n is always header n.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "lib/stringinfo.h"

#include "ingest/log_format.h"

/* Length of a <Header> token at s, or 0 if s does not start one. */
int
log_format_header_length(const char *s)
{
	int			n = 1;

	if (s[0] != '<')
		return 0;
	while (isalnum((unsigned char) s[n]) || s[n] == '_')
		n++;
	if (n == 1 || s[n] != '>')
		return 0;
	return n + 1;
}

/*
 * Length of the bracket expression at s (s[0] == '['), delimited as the ARE
 * lexer does it: a leading ^ and then ] are members, [:class:], [.coll.]
 * and [=equiv=] are skipped whole, and a backslash escapes the next
 * character.  Returns 0 if it never closes (the regex compiler reports it).
 */
static int
bracket_length(const char *s)
{
	const char *p = s + 1;

	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']')
	{
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '='))
		{
			char		close = p[1];

			p += 2;
			while (*p && !(p[0] == close && p[1] == ']'))
				p++;
			if (*p == '\0')
				return 0;
			p += 2;
		}
		else if (*p == '\\' && p[1] != '\0')
			p += 2;
		else
			p++;
	}
	return *p ? (int) (p - s) + 1 : 0;
}

static const char *
add_header(LogFormat *out, const char *name, int len, StringInfo re, bool at_end)
{
	int			i;
	char	   *h;

	if (out->nheaders == LOG_FORMAT_MAX_HEADERS)
		return "too many <Header> fields in the log format";
	h = palloc(len + 1);
	memcpy(h, name, len);
	h[len] = '\0';
	for (i = 0; i < out->nheaders; i++)
		if (strcmp(out->headers[i], h) == 0)
			return "duplicate <Header> name in the log format";
	out->headers[out->nheaders++] = h;

	/*
	 * Lazy, as in Loghub; but a header that ends the format is greedy.  With
	 * Python's backtracking both give the same split, while PostgreSQL's
	 * engine, which resolves quantifier preferences globally, would
	 * otherwise let a lazy last field shrink to nothing by stretching an
	 * optional group before it, e.g. "(\[<PID>\])?: <Content>".
	 */
	appendStringInfoString(re, at_end ? "(.*)" : "(.*?)");
	return NULL;
}

const char *
log_format_compile(const char *format, LogFormat *out, int *error_pos)
{
	StringInfoData re;
	const char *p = format;

	memset(out, 0, sizeof(*out));
	initStringInfo(&re);
	appendStringInfoChar(&re, '^');
	*error_pos = 0;

	while (*p)
	{
		int			hlen = log_format_header_length(p);
		int			blen;
		const char *err;

		*error_pos = (int) (p - format);
		if (hlen > 0)
		{
			if ((err = add_header(out, p + 1, hlen - 2, &re, p[hlen] == '\0')) != NULL)
				return err;
			p += hlen;
		}
		else if (*p == ' ')
		{
			while (*p == ' ')
				p++;
			appendStringInfoString(&re, "\\s+");
		}
		else if (*p == '\\')
		{
			/* a lone trailing backslash would escape the closing $ */
			if (p[1] == '\0')
				return "the log format ends with a lone backslash";
			appendBinaryStringInfo(&re, p, 2);
			p += 2;
		}
		else if (*p == '(' && p[1] != '?')
		{
			appendStringInfoString(&re, "(?:");
			p++;
		}
		else if (*p == '[' && (blen = bracket_length(p)) > 0)
		{
			int			i;

			/*
			 * A <Header> inside brackets would be no capture at all for the
			 * regex compiler, shifting every later header onto the wrong
			 * group.  (Loghub's code fails on it too.)
			 */
			for (i = 1; i < blen - 1; i += (p[i] == '\\') ? 2 : 1)
			{
				if (log_format_header_length(p + i) > 0)
				{
					*error_pos = (int) (p + i - format);
					return "a <Header> field inside a bracket expression (write \\[ and \\] for literal brackets)";
				}
			}
			appendStringInfoChar(&re, *p++);
		}
		else
			appendStringInfoChar(&re, *p++);
	}
	if (out->nheaders == 0)
		return "the log format has no <Header> field";
	appendStringInfoChar(&re, '$');
	out->regex = re.data;
	return NULL;
}

/* Index of a header by exact name, or -1. */
int
log_format_header_index(const LogFormat *fmt, const char *name)
{
	int			i;

	for (i = 0; i < fmt->nheaders; i++)
		if (strcmp(fmt->headers[i], name) == 0)
			return i;
	return -1;
}
