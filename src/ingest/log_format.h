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

#endif							/* SMARTETL_LOG_FORMAT_H */
