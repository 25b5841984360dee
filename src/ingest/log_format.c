/*-------------------------------------------------------------------------
 * src/ingest/log_format.c
 *		Loghub log format string → regular expression.
 *
 * Same translation as Loghub's own benchmark code, so its published
 * format strings work unchanged: each <Header> becomes a lazy capture, the
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
static int
header_token_length(const char *s)
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

static const char *
add_header(LogFormat *out, const char *name, int len, StringInfo re)
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
	appendStringInfoString(re, "(.*?)");
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
		int			hlen = header_token_length(p);
		const char *err;

		*error_pos = (int) (p - format);
		if (hlen > 0)
		{
			if ((err = add_header(out, p + 1, hlen - 2, &re)) != NULL)
				return err;
			p += hlen;
		}
		else if (*p == ' ')
		{
			while (*p == ' ')
				p++;
			appendStringInfoString(&re, "\\s+");
		}
		else if (*p == '\\' && p[1] != '\0')
		{
			appendBinaryStringInfo(&re, p, 2);
			p += 2;
		}
		else if (*p == '(' && p[1] != '?')
		{
			appendStringInfoString(&re, "(?:");
			p++;
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
