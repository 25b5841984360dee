/*-------------------------------------------------------------------------
 * src/ingest/ingest_logline.c
 *		format 'logline' and smartetl.parse_log(): text log lines split by a
 *		Loghub-style format string into log events.
 *
 * The format becomes an anchored regular expression (log_format.c) run by
 * PostgreSQL's own regex engine.  A line that does not match continues the
 * event before it (stack traces, multi-line messages); a non-matching
 * first line is an error.  Well-known headers fill the log_event columns
 * (Content → message, Level, Component, and the time from Timestamp or
 * Date + Time); every other header goes to attrs.  An indented line always
 * continues the entry before it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ingest/ingest.h"
#include "ingest/log_format.h"

PG_FUNCTION_INFO_V1(smartetl_parse_log);

typedef struct LogMatcher
{
	LogFormat	fmt;
	bool		plain;			/* split by separators, no regex needed */
	bool		format_starts_with_header;
	LogSplitter splitter;
	int		   *starts;			/* byte offsets of each header (plain) */
	int		   *ends;
	regex_t    *re;
	regmatch_t *matches;
	pg_wchar   *wide;			/* the line as wide characters (regex) */
	int			wide_cap;
	int			level_col;
	int			component_col;
	int			content_col;
	/* the headers that go to attrs, in jsonb key order (see attrs_jsonb) */
	int			nattrs;
	int		   *attr_order;
	bool		attrs_direct;	/* no duplicate names: build the object directly */
	/* the last time text read, and its time: lines come in bursts */
	StringInfoData ts_text;
	int			ts_try;
	TimestampTz ts_value;
} LogMatcher;

/* First header present among the candidate names, or -1. */
static int
header_any(const LogFormat *fmt, const char *const *names)
{
	int			i,
				col;

	for (i = 0; names[i]; i++)
		if ((col = log_format_header_index(fmt, names[i])) >= 0)
			return col;
	return -1;
}

/* jsonb's key order: shorter first, then bytewise (lengthCompareJsonbString) */
static int
key_cmp(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(a, b, la);
}

static const char *sort_names_base;	/* for attr_cmp; set around its qsort */

/* qsort comparator of header indexes by their names' jsonb key order */
static int
attr_cmp(const void *a, const void *b)
{
	const char *const *names = (const char *const *) sort_names_base;

	return key_cmp(names[*(const int *) a], names[*(const int *) b]);
}

/*
 * The attrs headers in key order, once per format, so that each event's
 * attrs object is built without sorting (jsonb keeps keys sorted, and
 * pushJsonbValue sorts every object it closes).  Duplicate names, or a
 * header called continuation_lines, keep the general path.
 */
static void
attrs_prepare(LogMatcher *m)
{
	int			i;

	m->attr_order = palloc(sizeof(int) * Max(m->fmt.nheaders, 1));
	m->nattrs = 0;
	for (i = 0; i < m->fmt.nheaders; i++)
		if (i != m->level_col && i != m->component_col && i != m->content_col)
			m->attr_order[m->nattrs++] = i;
	sort_names_base = (const char *) m->fmt.headers;
	qsort(m->attr_order, m->nattrs, sizeof(int), attr_cmp);
	m->attrs_direct = true;
	for (i = 0; i < m->nattrs; i++)
		if (strcmp(m->fmt.headers[m->attr_order[i]], "continuation_lines") == 0 ||
			(i > 0 && strcmp(m->fmt.headers[m->attr_order[i]],
							 m->fmt.headers[m->attr_order[i - 1]]) == 0))
			m->attrs_direct = false;
}

static void
log_matcher_init(LogMatcher *m, const char *format)
{
	static const char *const level_names[] = {"Level", "Severity", "LogLevel", NULL};
	static const char *const component_names[] = {"Component", "Logger", "Module", "Source", NULL};
	static const char *const content_names[] = {"Content", "Message", NULL};
	const char *err;
	int			pos;

	memset(m, 0, sizeof(*m));
	err = log_format_compile(format, &m->fmt, &pos);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log format \"%s\"", format),
				 errdetail("At character %d: %s.", pos + 1, err)));
	/* regex syntax errors in the literal parts are reported by the compiler */
	m->re = RE_compile_and_cache(cstring_to_text(m->fmt.regex), REG_ADVANCED,
								 C_COLLATION_OID);
	m->matches = palloc(sizeof(regmatch_t) * (m->fmt.nheaders + 1));
	m->plain = log_splitter_build(format, &m->splitter);
	m->format_starts_with_header = log_format_header_length(format) > 0;
	m->starts = palloc(sizeof(int) * m->fmt.nheaders);
	m->ends = palloc(sizeof(int) * m->fmt.nheaders);
	m->level_col = header_any(&m->fmt, level_names);
	m->component_col = header_any(&m->fmt, component_names);
	m->content_col = header_any(&m->fmt, content_names);
	attrs_prepare(m);
	initStringInfo(&m->ts_text);
	m->ts_try = -1;
}

/* Regex path: one capture per header, NULL for an unmatched optional group. */
static char **
log_regex_captures(LogMatcher *m, const char *line, int len)
{
	char	  **caps;
	int			wlen;
	int			i;

	if (len + 1 > m->wide_cap)
	{
		m->wide_cap = Max(len + 1, 2 * m->wide_cap);
		m->wide = m->wide ? repalloc(m->wide, sizeof(pg_wchar) * m->wide_cap)
			: MemoryContextAlloc(GetMemoryChunkContext(m->matches), sizeof(pg_wchar) * m->wide_cap);
	}
	wlen = pg_mb2wchar_with_len(line, m->wide, len);
	if (pg_regexec(m->re, m->wide, wlen, 0, NULL, m->fmt.nheaders + 1,
				   m->matches, 0) != REG_OKAY)
		return NULL;
	caps = palloc(sizeof(char *) * m->fmt.nheaders);
	for (i = 0; i < m->fmt.nheaders; i++)
	{
		regmatch_t *rm = &m->matches[i + 1];

		caps[i] = NULL;
		if (rm->rm_so < 0)
			continue;
		caps[i] = palloc(pg_database_encoding_max_length() * (rm->rm_eo - rm->rm_so) + 1);
		pg_wchar2mb_with_len(m->wide + rm->rm_so, caps[i], rm->rm_eo - rm->rm_so);
	}
	return caps;
}

/*
 * The line's value for each header, or NULL when it does not match.
 * Trailing whitespace is ignored, as Loghub strips its lines: otherwise
 * "\s+<Content>" could match the trailing blanks alone.
 */
static char **
log_matcher_match(LogMatcher *m, const char *line, int len)
{
	char	  **caps;
	int			i;

	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	/* the separator scan when it applies; backtracking cases go to the regex */
	if (!m->plain || !log_splitter_split(&m->splitter, line, len, m->starts, m->ends))
		return log_regex_captures(m, line, len);
	caps = palloc(sizeof(char *) * m->fmt.nheaders);
	for (i = 0; i < m->fmt.nheaders; i++)
		caps[i] = m->starts[i] < 0 ? NULL :
			pnstrdup(line + m->starts[i], m->ends[i] - m->starts[i]);
	return caps;
}

/* header: value, or header: null for an optional group that did not match */
static void
put_capture(JsonbParseState **st, const char *header, const char *val)
{
	JsonbValue	null_value = {.type = jbvNull};

	if (val)
		json_doc_put_text(st, header, val);
	else
		json_doc_put(st, header, &null_value);
}

/*
 * A bare number is read as an epoch time only when it is long enough to be
 * one (9+ digits: after 1973 in seconds); "14" in a <Date> field is a day.
 */
static bool
plausible_time_text(const char *s)
{
	size_t		digits = strspn(s, "0123456789");

	return s[digits] != '\0' || digits >= 9;
}

/*
 * The event time from the headers: Timestamp, Date + Time, Datetime or
 * Time alone, the first that parses.  Log timestamps often use a comma
 * before the milliseconds ("17:41:44,747"), read as a decimal point.
 */
static bool
log_event_time(LogMatcher *m, char **caps, const IngestOptions *o, TimestampTz *ts,
			   const char **field, const char **text)
{
	static const char *const tries[][2] = {
		{"Timestamp", NULL}, {"Date", "Time"}, {"Datetime", NULL}, {"Time", NULL},
		{"Date", NULL}};
	static const char *const names[] = {"Timestamp", "Date Time", "Datetime", "Time", "Date"};
	int			i;

	for (i = 0; i < lengthof(tries); i++)
	{
		int			a = log_format_header_index(&m->fmt, tries[i][0]);
		int			b = tries[i][1] ? log_format_header_index(&m->fmt, tries[i][1]) : -1;
		char	   *s,
				   *p;

		if (a < 0 || caps[a] == NULL || (tries[i][1] && (b < 0 || caps[b] == NULL)))
			continue;
		s = b >= 0 ? psprintf("%s %s", caps[a], caps[b]) : pstrdup(caps[a]);
		for (p = s + 1; *p && o->timestamp_format == NULL; p++)
			if (*p == ',' && isdigit((unsigned char) p[-1]) && isdigit((unsigned char) p[1]))
				*p = '.';
		*field = names[i];
		*text = s;
		if (i == m->ts_try && strcmp(s, m->ts_text.data) == 0)
		{
			*ts = m->ts_value;
			return true;
		}
		if (plausible_time_text(s) && value_timestamp(s, o, ts))
		{
			/* remember it (in the matcher's context, not the row's) */
			MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(m->ts_text.data));

			resetStringInfo(&m->ts_text);
			appendStringInfoString(&m->ts_text, s);
			MemoryContextSwitchTo(old);
			m->ts_try = i;
			m->ts_value = *ts;
			return true;
		}
	}
	return false;
}

/*
 * An indented line continues the entry before it (stack frames, wrapped
 * messages), even where a loose format like "<Date> <Time> <Level>
 * <Content>" would match it by leaving the first headers empty.
 */
static bool
continues_entry(const LogMatcher *m, const LineReader *r, bool have_entry)
{
	return have_entry && m->format_starts_with_header && r->line.len > 0 &&
		(r->line.data[0] == ' ' || r->line.data[0] == '\t');
}

/* The captures, copied into the current (event) context. */
static char **
copy_captures(char **caps, int n)
{
	char	  **copy = palloc(sizeof(char *) * n);
	int			i;

	for (i = 0; i < n; i++)
		copy[i] = caps[i] ? pstrdup(caps[i]) : NULL;
	return copy;
}

/* State of the event being assembled across continuation lines. */
typedef struct PendingEvent
{
	bool		active;
	long		line_no;
	TimestampTz ts;
	char	   *level;
	char	   *component;
	StringInfoData message;
	JsonbParseState *attrs;		/* general path */
	char	  **caps;			/* attrs_direct: the captures */
	int			continuation_lines;
	/* quarantine: the entry's time is outside the accepted window */
	const char *reject_field;
	char	   *reject_reason;
	char	   *raw;			/* its first line */
} PendingEvent;

/* One key: value pair of an attrs object. */
static void
pair_set(JsonbPair *pair, const char *key, JsonbValue *value, int order)
{
	pair->key.type = jbvString;
	pair->key.val.string.val = (char *) key;
	pair->key.val.string.len = strlen(key);
	pair->value = *value;
	pair->order = order;
}

/*
 * An event's attrs, built directly from its captures in the key order
 * attrs_prepare found: header: value (null for an unmatched optional
 * group), and continuation_lines where it sorts.
 */
static Jsonb *
attrs_jsonb(const LogMatcher *m, const PendingEvent *ev)
{
	JsonbValue	obj;
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * (m->nattrs + 1));
	const char *cl = "continuation_lines";
	bool		cl_done = ev->continuation_lines == 0;
	int			n = 0;
	int			i;

	for (i = 0; i <= m->nattrs; i++)
	{
		const char *key = i < m->nattrs ? m->fmt.headers[m->attr_order[i]] : NULL;
		JsonbValue	v;

		if (!cl_done && (key == NULL || key_cmp(cl, key) < 0))
		{
			v.type = jbvNumeric;
			v.val.numeric = int64_to_numeric(ev->continuation_lines);
			pair_set(&pairs[n], cl, &v, n);
			n++;
			cl_done = true;
		}
		if (key == NULL)
			break;
		if (ev->caps[m->attr_order[i]] == NULL)
			v.type = jbvNull;
		else
		{
			v.type = jbvString;
			v.val.string.val = ev->caps[m->attr_order[i]];
			v.val.string.len = strlen(ev->caps[m->attr_order[i]]);
		}
		pair_set(&pairs[n], key, &v, n);
		n++;
	}
	obj.type = jbvObject;
	obj.val.object.nPairs = n;
	obj.val.object.pairs = pairs;
	return JsonbValueToJsonb(&obj);
}

/* Hand the finished entry to the hook, then to the batch. */
static void
flush_event(const LogMatcher *m, PendingEvent *ev, IngestBatch *b, const IngestOptions *o,
			LogEventHook hook, void *arg)
{
	LogEventRow row;

	if (!ev->active)
		return;
	if (ev->reject_reason)
	{
		/* the whole entry, continuation lines included, stays out */
		ingest_reject(b, o, ev->line_no, ev->raw, ev->reject_field, ev->reject_reason);
		ev->active = false;
		return;
	}
	if (ev->continuation_lines > 0 && !m->attrs_direct)
	{
		JsonbValue	v;

		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(ev->continuation_lines);
		json_doc_put(&ev->attrs, "continuation_lines", &v);
	}
	memset(&row, 0, sizeof(row));
	row.line_no = ev->line_no;
	row.ts = ev->ts;
	row.level = ev->level;
	row.component = ev->component;
	row.message = ev->message.data;
	row.attrs = m->attrs_direct ? attrs_jsonb(m, ev) :
		JsonbValueToJsonb(pushJsonbValue(&ev->attrs, WJB_END_OBJECT, NULL));
	if (hook)
		hook(arg, &row);
	ingest_add_event(b, o, &row);
	ev->active = false;
}

/*
 * Start a new event from a matched line.  An event without a readable time
 * takes the previous event's time (continuation of the same burst), or the
 * statement time for the first one; its raw time fields stay in attrs.  A
 * readable time outside the accepted window is an error naming the line,
 * or in quarantine mode makes the entry a reject.
 */
static void
start_event(PendingEvent *ev, LogMatcher *m, char **caps, LineReader *r,
			const IngestOptions *o, TimestampTz last_ts)
{
	int			i;
	TimestampTz ts;
	const char *field;
	const char *text;
	const char *expected;

	ev->active = true;
	ev->line_no = r->line_no;
	ev->continuation_lines = 0;
	ev->reject_reason = NULL;
	ev->ts = last_ts != DT_NOBEGIN ? last_ts : GetCurrentStatementStartTimestamp();
	if (log_event_time(m, caps, o, &ts, &field, &text))
	{
		if (ingest_time_in_window(ts, o, &expected))
			ev->ts = ts;
		else if (!o->quarantine)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("invalid %s input on line %ld, field \"%s\"",
							o->format->name, r->line_no, field),
					 errdetail("Expected %s, found \"%s\".", expected, text),
					 errhint("Use {\"on_error\": \"quarantine\"} to store the other entries and keep this one in smartetl.ingest_reject.")));
		else
		{
			ev->reject_field = field;
			ev->reject_reason = psprintf("field \"%s\": expected %s, found \"%s\"",
										 field, expected, text);
			ev->raw = pnstrdup(r->line.data, r->line.len);
		}
	}
	ev->level = m->level_col >= 0 ? caps[m->level_col] : NULL;
	ev->component = m->component_col >= 0 ? caps[m->component_col] : NULL;
	resetStringInfo(&ev->message);
	if (m->content_col >= 0 && caps[m->content_col])
		appendStringInfoString(&ev->message, caps[m->content_col]);
	ev->attrs = NULL;
	ev->caps = caps;
	if (m->attrs_direct)
		return;
	pushJsonbValue(&ev->attrs, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < m->fmt.nheaders; i++)
		if (i != m->level_col && i != m->component_col && i != m->content_col)
			put_capture(&ev->attrs, m->fmt.headers[i], caps[i]);
}

static void
logline_unmatched(LineReader *r, const IngestOptions *o, IngestBatch *b,
				  const char *log_format)
{
	if (!o->quarantine)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid %s input on line %ld", o->format->name, r->line_no),
				 errdetail("The line does not match log_format \"%s\" and there is no earlier line for it to continue.",
						   log_format),
				 o->format->hint ? errhint("%s", o->format->hint) : 0));
	ingest_reject(b, o, r->line_no, r->line.data, NULL,
				  "line does not match log_format and continues no earlier line");
}

/* Option rules of format logline (formats.c). */
void
ingest_logline_check(const IngestOptions *o)
{
	if (o->log_format == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("format \"logline\" needs option \"log_format\""),
				 errhint("For example: {\"log_format\": \"<Date> <Time> <Level> <Component>: <Content>\"}.")));
}

void
ingest_logline(LineReader *r, const IngestOptions *o, IngestBatch *b)
{
	log_events_read(r, o, b, o->log_format, NULL, NULL);
}

/*
 * The entries of a text log in the given format; each complete entry goes
 * through hook (when not NULL) and into the batch.
 */
void
log_events_read(LineReader *r, const IngestOptions *o, IngestBatch *b,
				const char *log_format, LogEventHook hook, void *arg)
{
	LogMatcher	m;
	PendingEvent ev;
	LineStatus	st;
	MemoryContext event_ctx = AllocSetContextCreate(CurrentMemoryContext,
													"smartetl log event",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	TimestampTz last_ts = DT_NOBEGIN;

	log_matcher_init(&m, log_format);
	memset(&ev, 0, sizeof(ev));
	initStringInfo(&ev.message);
	old = MemoryContextSwitchTo(b->row_ctx);
	while ((st = line_reader_next(r)) != LINE_EOF)
	{
		char	  **caps;

		MemoryContextReset(b->row_ctx);
		if (st != LINE_OK)
		{
			ingest_line_problem(b, o, st, r);
			continue;
		}
		if (!continues_entry(&m, r, ev.active) &&
			(caps = log_matcher_match(&m, r->line.data, r->line.len)) != NULL)
		{
			flush_event(&m, &ev, b, o, hook, arg);
			MemoryContextReset(event_ctx);
			MemoryContextSwitchTo(event_ctx);
			start_event(&ev, &m, copy_captures(caps, m.fmt.nheaders), r, o, last_ts);
			if (ev.reject_reason == NULL)
				last_ts = ev.ts;
			MemoryContextSwitchTo(b->row_ctx);
		}
		else if (ev.active && r->line.len > 0)
		{
			appendStringInfoChar(&ev.message, '\n');
			appendBinaryStringInfo(&ev.message, r->line.data, r->line.len);
			ev.continuation_lines++;
		}
		else if (r->line.len > 0)
			logline_unmatched(r, o, b, log_format);
	}
	flush_event(&m, &ev, b, o, hook, arg);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(event_ctx);
}

/*
 * smartetl.parse_log(line text, log_format text) RETURNS jsonb
 *		The line's fields by header name, or NULL when it does not match.
 */
Datum
smartetl_parse_log(PG_FUNCTION_ARGS)
{
	text	   *line = PG_GETARG_TEXT_PP(0);
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(1));
	LogMatcher	m;
	char	  **caps;
	JsonbParseState *st = NULL;
	JsonbValue *res = NULL;
	int			i;

	log_matcher_init(&m, format);
	caps = log_matcher_match(&m, VARDATA_ANY(line), VARSIZE_ANY_EXHDR(line));
	if (caps == NULL)
		PG_RETURN_NULL();
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < m.fmt.nheaders; i++)
		put_capture(&st, m.fmt.headers[i], caps[i]);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
