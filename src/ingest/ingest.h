/*-------------------------------------------------------------------------
 * src/ingest/ingest.h
 *		Backend side of ingestion: options, run fields, value parsing, the
 *		batch that parsers fill and the store step that writes it.
 *
 * Flow: smartetl.ingest()/ingest_file() (source.c) validate the options,
 * open a LineReader and call one format parser (ingest_csv.c, ...).  The
 * parser turns records into rows of an IngestBatch (run_record.c), or into
 * rejects in quarantine mode.  Nothing touches a table until parsing has
 * finished; store.c then writes the whole batch with a few set-based
 * statements, so a bad row in strict mode leaves nothing half-written.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_INGEST_H
#define SMARTETL_INGEST_H

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "executor/tuptable.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "common/line_reader.h"

typedef struct IngestFormat IngestFormat;

/* Run fields a source column or JSON path can map onto. */
typedef enum RunField
{
	RF_PIPELINE,
	RF_NAMESPACE,
	RF_EXTERNAL_ID,
	RF_ATTEMPT,
	RF_PARENT_ID,
	RF_STATUS,
	RF_STARTED_AT,
	RF_ENDED_AT,
	RF_DURATION,
	RF_ROWS_READ,
	RF_ROWS_WRITTEN,
	RF_BYTES,
	RF_HOST,
	RF_ERROR_MESSAGE,
	RF_COUNT
} RunField;

typedef struct IngestOptions
{
	const IngestFormat *format; /* its row of the table in formats.c */
	bool		quarantine;		/* on_error = 'quarantine' */
	bool		dry_run;		/* store in a subtransaction rolled back: counts only */
	bool		parse_only;		/* dry_run "parse": parse and validate, no store */
	size_t		max_line;
	char	   *namespace;		/* default namespace of new pipelines */
	char	   *pipeline;		/* constant pipeline when the source has none */
	char	   *source;			/* label for rejects and log events */
	char	   *run_external_id;	/* logline: attach events to this run */
	pg_tz	   *timezone;		/* zone for timestamps without one; NULL = session */
	TimestampTz min_time;		/* accepted times, fixed at the start of the call */
	TimestampTz max_time;		/* (time_window.c) */

	/* csv */
	char		delimiter;
	char		quote;
	bool		header;

	/* csv, jsonl */
	JsonbContainer *columns;	/* run field → column name / JSON path */
	char	   *column_source[RF_COUNT];	/* the same, per field, read once */
	JsonbContainer *status_map; /* site word → run status */
	char	   *timestamp_format;	/* to_timestamp() pattern, or NULL = auto */
	double		epoch_unit_s;	/* seconds per epoch unit; 0 = guess */
	TimestampTz epoch_origin;
	double		duration_unit_s;
	bool		extra_to_attrs; /* unmapped columns go to attrs */

	/* logline */
	char	   *log_format;
} IngestOptions;

/* A value that failed to parse: enough to name the field and the problem. */
typedef struct FieldError
{
	const char *field;			/* run field or source column */
	const char *expected;
	const char *found;
	int			sqlerrcode;		/* 0: ERRCODE_INVALID_TEXT_REPRESENTATION */
} FieldError;

typedef struct IngestBatch
{
	MemoryContext row_ctx;		/* reset after every record */
	bool		templates;		/* a message was mined */

	TupleDesc	run_desc;
	Tuplestorestate *runs;
	int64		nruns;
	char	   *started_src;	/* source names of the time fields, for */
	char	   *ended_src;		/* errors found when storing (store.c) */
	uint64	   *identities;		/* hash of each run's identity */
	int64		identities_cap;

	TupleDesc	event_desc;
	Tuplestorestate *events;
	int64		nevents;
	bool		events_link_runs;	/* some event has a run_line */
	TimestampTz min_ts;
	TimestampTz max_ts;
	long		min_line;		/* of the events */
	long		max_line;

	TupleDesc	reject_desc;
	Tuplestorestate *rejects;
	int64		nrejects;
} IngestBatch;

/*
 * A log event for the batch.  run_line links it to the run record the same
 * parser added with that line_no (airflow task logs, OpenLineage stack
 * traces); 0 means the run named by the options, if any.
 */
typedef struct LogEventRow
{
	long		line_no;
	TimestampTz ts;
	const char *level;
	const char *component;
	const char *message;
	Jsonb	   *attrs;
	long		run_line;
} LogEventRow;

/* Called with each complete log entry before it joins the batch. */
typedef void (*LogEventHook) (void *arg, LogEventRow *ev);

typedef struct IngestCounts
{
	int64		inserted;
	int64		updated;
	int64		unchanged;
	int64		rejected;
} IngestCounts;

/*
 * An ingest format: one row of the table in formats.c (CONTRIBUTING.md,
 * "Adding an ingest format").
 */
typedef void (*IngestParser) (LineReader *r, const IngestOptions *o, IngestBatch *b);
struct IngestFormat
{
	const char *name;			/* smartetl.ingest(format, ...) */
	IngestParser parse;
	bool		mapping;		/* takes the column-mapping keys too */
	const char *keys;			/* its own option keys, space-separated */
	const char *default_namespace;	/* of the pipelines it creates */
	void		(*check) (const IngestOptions *o);	/* its option rules, or NULL */
	const char *hint;			/* what its input looks like, for errors, or NULL */
	const char *description;	/* one line for people */
};

/* formats.c */
extern const char *const ingest_common_keys;
extern const char *const ingest_mapping_keys;
extern const IngestFormat *ingest_format_find(const char *name);

/* options.c */
extern void ingest_options_parse(IngestOptions *o, const char *format, Jsonb *options);
extern char *ingest_option_text(JsonbContainer *obj, const char *key);

/* field_map.c */
extern const char *run_field_name(RunField f);
extern void field_map_from_header(const IngestOptions *o, char **names, int n, int *map);
extern const char *field_map_json_path(const IngestOptions *o, RunField f,
									   const void *json_fields);

/* values.c */
extern bool value_timestamp(const char *s, const IngestOptions *o, TimestampTz *out);
extern bool value_duration(const char *s, const IngestOptions *o, Interval *out);
extern bool value_int64(const char *s, int64 *out);
extern const char *value_status(const char *s, const IngestOptions *o);

/*
 * time_window.c: accepted times are [smartetl.min_timestamp, now() +
 * smartetl.max_future], always within these absolute limits (midnight UTC
 * on 1 January), which 10_store.sql repeats as table constraints.
 */
#define INGEST_ABS_MIN_YEAR 1900
#define INGEST_ABS_MAX_YEAR 2200
extern char *smartetl_min_timestamp_text;
extern int	smartetl_max_future_s;
extern TimestampTz ingest_abs_min_time(void);
extern TimestampTz ingest_abs_max_time(void);
extern bool ingest_check_min_timestamp(char **newval, void **extra, GucSource source);
extern void ingest_assign_min_timestamp(const char *newval, void *extra);
extern void ingest_time_window(TimestampTz *lo, TimestampTz *hi);
extern bool ingest_time_in_window(TimestampTz ts, const IngestOptions *o, const char **expected);
extern char *ingest_format_utc(TimestampTz ts);

/* run_record.c */
extern void ingest_batch_init(IngestBatch *b, const IngestOptions *o);
extern void ingest_add_run(IngestBatch *b, const IngestOptions *o, char **values,
						   const char *const *src,
						   Jsonb *attrs, long line_no, const char *raw);
extern void ingest_batch_free(IngestBatch *b);
extern bool ingest_batch_has_duplicates(IngestBatch *b);
extern void ingest_add_event(IngestBatch *b, const IngestOptions *o, const LogEventRow *ev);
extern int64 ingest_template_id(IngestBatch *b, const IngestOptions *o, const char *msg,
								TimestampTz ts);
extern void ingest_reject(IngestBatch *b, const IngestOptions *o, long line_no,
						  const char *raw, const char *field, const char *reason);
extern void ingest_field_error(IngestBatch *b, const IngestOptions *o, long line_no,
							   const char *raw, const FieldError *e);
extern void ingest_line_problem(IngestBatch *b, const IngestOptions *o,
								LineStatus st, LineReader *r);

/* json_doc.c */
extern char *json_doc_read(LineReader *r, const IngestOptions *o, IngestBatch *b, int *len);
extern bool json_doc_valid(char *text, int len, char **detail, int *line);
extern JsonbValue *json_doc_get(JsonbContainer *c, const char *path, JsonbValue *buf);
extern char *json_doc_text(JsonbContainer *c, const char *path);
extern void json_doc_put(JsonbParseState **st, const char *key, JsonbValue *value);
typedef void (*JsonDocHandler) (Jsonb *doc, long line_no, const char *raw,
								const IngestOptions *o, IngestBatch *b);
extern void json_docs_read(LineReader *r, const IngestOptions *o, IngestBatch *b,
						   const char *hint, JsonDocHandler fn);
extern Jsonb *json_doc_parse(char *text);
extern void json_doc_put_text(JsonbParseState **st, const char *key, const char *val);

/* format parsers, and their option rules (see formats.c) */
extern void ingest_csv(LineReader *r, const IngestOptions *o, IngestBatch *b);
extern void ingest_csv_check(const IngestOptions *o);
extern void ingest_jsonl(LineReader *r, const IngestOptions *o, IngestBatch *b);
extern void ingest_logline(LineReader *r, const IngestOptions *o, IngestBatch *b);
extern void ingest_logline_check(const IngestOptions *o);
extern void ingest_openlineage(LineReader *r, const IngestOptions *o, IngestBatch *b);
extern void ingest_dbt(LineReader *r, const IngestOptions *o, IngestBatch *b);
extern void ingest_airflow(LineReader *r, const IngestOptions *o, IngestBatch *b);

/* ingest_logline.c: log entries of a text log, each through the hook */
extern void log_events_read(LineReader *r, const IngestOptions *o, IngestBatch *b,
							const char *log_format, LogEventHook hook, void *arg);

/* ingest_airflow_rest.c */
extern void airflow_rest_document(Jsonb *doc, long line_no, const char *raw,
								  const IngestOptions *o, IngestBatch *b);

/* run_insert.c */
typedef struct RunInserter RunInserter;
extern bool run_insert_usable(void);
extern RunInserter *run_insert_begin(TupleDesc batch_desc);
extern void run_insert_add(RunInserter *ri, TupleTableSlot *batch_slot, int64 pipeline_id);
extern int64 run_insert_end(RunInserter *ri);

/* store.c */
extern void ingest_store(IngestBatch *b, const IngestOptions *o, IngestCounts *counts);

/* source.c: ingest from inside the server (intake worker); check may veto a batch */
typedef void (*IngestBatchCheck) (IngestBatch *b, const IngestOptions *o, void *arg);
extern void ingest_payload(const char *format, const char *data, size_t len, Jsonb *options,
						   const char *source, long first_line, IngestBatchCheck check,
						   void *arg, IngestCounts *counts);

#endif							/* SMARTETL_INGEST_H */
