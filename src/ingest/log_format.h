/*-------------------------------------------------------------------------
 * src/ingest/log_format.h
 *		Compile a Loghub-style log format string, such as
 *		'<Date> <Time> <Level> \[<Component>\]: <Content>', into a regular
 *		expression with one capture group per <Header>.
 *
 * Frontend-safe.  The text between headers is a regular expression, as in
 * Loghub (escaped brackets, optional groups such as (\[<PID>\])?); runs of
 * spaces match any run of whitespace.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_LOG_FORMAT_H
#define SMARTETL_LOG_FORMAT_H

#define LOG_FORMAT_MAX_HEADERS 64

typedef struct LogFormat
{
	char	   *regex;			/* anchored ARE, captures in header order */
	int			nheaders;
	char	   *headers[LOG_FORMAT_MAX_HEADERS];
} LogFormat;

/* Returns NULL on success, or a static message with *error_pos set. */
extern const char *log_format_compile(const char *format, LogFormat *out,
									  int *error_pos);
extern int	log_format_header_index(const LogFormat *fmt, const char *name);
extern int	log_format_header_length(const char *s);

/*
 * A format whose text between headers is plain (literal bytes, escaped
 * punctuation, spaces) can be split without the regex engine; see
 * log_split.c.
 */
typedef struct LogLiteral
{
	int			len;
	char	   *bytes;			/* byte to match, where !ws[i] */
	bool	   *ws;				/* a run of one or more whitespace bytes */
} LogLiteral;

typedef struct LogSplitter
{
	int			nheaders;
	LogLiteral	lits[LOG_FORMAT_MAX_HEADERS + 1];	/* before, between, after */

	/*
	 * One optional group holding one header, as in Loghub's Linux format
	 * "<Component>(\[<PID>\])?: <Content>": this splitter reads the format
	 * with the group, "absent" without it (see log_split.c).
	 */
	struct LogSplitter *absent;
	int			group_header;	/* the header inside the group */
	int			group_prev;		/* the header before the group, or -1 */
} LogSplitter;

extern bool log_splitter_build(const char *format, LogSplitter *out);
extern bool log_splitter_split(const LogSplitter *sp, const char *line, int len,
							   int *starts, int *ends);

#endif							/* SMARTETL_LOG_FORMAT_H */
