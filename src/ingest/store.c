/*-------------------------------------------------------------------------
 * src/ingest/store.c
 *		Write a parsed batch: pipelines, runs (idempotent upsert), parent
 *		links, log events and rejects.
 *
 * The batch's tuplestores are registered with SPI as ephemeral named
 * relations (the mechanism behind trigger transition tables), so each
 * step is one set-based statement instead of a statement per row.
 *
 * Run identity is (pipeline, external_id, attempt), or (pipeline,
 * started_at) when the source has no run id.  On conflict the newer record
 * wins field by field, except that a 'running' record never overwrites a
 * finished run (late or replayed start events must not resurrect it); its
 * start time still fills in, so events arriving out of order converge.
 * Rows whose merged values equal the stored ones are left alone and
 * counted as unchanged.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ingest/ingest.h"
#include "kpi/rollup.h"
#include "locks.h"
#include "alert/alert.h"
#include "template/template.h"

#define BATCH_RUNS "smartetl_batch_runs"
#define BATCH_RUNS_NEW "smartetl_batch_runs_new"
#define BATCH_RUNS_EXISTING "smartetl_batch_runs_existing"
#define BATCH_EVENTS "smartetl_batch_events"
#define BATCH_REJECTS "smartetl_batch_rejects"

typedef struct MergeRule
{
	const char *column;
	const char *merged;			/* value after the upsert; r = stored row */
} MergeRule;

static const MergeRule run_merge[] = {
	{"status", "CASE WHEN excluded.status = 'running' AND r.status <> 'running' THEN r.status ELSE excluded.status END"},
	{"started_at", "coalesce(excluded.started_at, r.started_at)"},
	{"ended_at", "CASE WHEN excluded.status = 'running' AND r.status <> 'running' THEN r.ended_at ELSE coalesce(excluded.ended_at, r.ended_at) END"},
	{"duration", "CASE WHEN excluded.status = 'running' AND r.status <> 'running' "
	 "THEN coalesce(r.duration, r.ended_at OPERATOR(pg_catalog.-) coalesce(excluded.started_at, r.started_at)) "
	 "ELSE coalesce(excluded.duration, coalesce(excluded.ended_at, r.ended_at) "
	 "OPERATOR(pg_catalog.-) coalesce(excluded.started_at, r.started_at), r.duration) END"},
	{"rows_read", "coalesce(excluded.rows_read, r.rows_read)"},
	{"rows_written", "coalesce(excluded.rows_written, r.rows_written)"},
	{"bytes", "coalesce(excluded.bytes, r.bytes)"},
	{"host", "coalesce(excluded.host, r.host)"},
	{"error_message", "coalesce(excluded.error_message, r.error_message)"},
	{"template_id", "coalesce(excluded.template_id, r.template_id)"},
	{"parent_external_id", "coalesce(excluded.parent_external_id, r.parent_external_id)"},
	{"attrs", "CASE WHEN excluded.attrs IS NULL THEN r.attrs ELSE coalesce(r.attrs, '{}'::jsonb) OPERATOR(pg_catalog.||) excluded.attrs END"},
};

static void
register_batch(const char *name, TupleDesc desc, Tuplestorestate *ts, int64 n)
{
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));

	enr->md.name = (char *) name;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) n;
	enr->reldata = ts;
	if (SPI_register_relation(enr) != SPI_OK_REL_REGISTER)
		elog(ERROR, "could not register ephemeral relation \"%s\"", name);
}

static void
spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "smartetl store statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
}

static int64
spi_int64(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* The ON CONFLICT ... DO UPDATE SET ... WHERE <changed> tail. */
static char *
run_merge_clause(void)
{
	StringInfoData set,
				old,
				merged;
	int			i;

	initStringInfo(&set);
	initStringInfo(&old);
	initStringInfo(&merged);
	for (i = 0; i < lengthof(run_merge); i++)
	{
		const char *sep = i ? ", " : "";

		appendStringInfo(&set, "%s%s = %s", sep, run_merge[i].column, run_merge[i].merged);
		appendStringInfo(&old, "%sr.%s", sep, run_merge[i].column);
		appendStringInfo(&merged, "%s%s", sep, run_merge[i].merged);
	}
	return psprintf("DO UPDATE SET %s, updated_at = pg_catalog.now() "
					"WHERE (%s) IS DISTINCT FROM (%s)", set.data, old.data, merged.data);
}

/*
 * Upsert the rows produced by source (a query over the batch) into
 * smartetl.run, merging into existing runs per run_merge.
 */
static void
upsert_runs(const char *source, bool with_id, IngestCounts *counts)
{
	char	   *sql;

	sql = psprintf("WITH b AS (%s), "
				   "u AS (INSERT INTO smartetl.run AS r (pipeline_id, external_id, attempt, "
				   "parent_external_id, status, started_at, ended_at, duration, rows_read, "
				   "rows_written, bytes, host, error_message, template_id, attrs) "
				   "SELECT p.pipeline_id, b.external_id, b.attempt, b.parent_external_id, "
				   "b.status::smartetl.run_status, b.started_at, b.ended_at, b.duration, "
				   "b.rows_read, b.rows_written, b.bytes, b.host, b.error_message, b.template_id, b.attrs "
				   "FROM b JOIN smartetl.pipeline p ON p.namespace OPERATOR(pg_catalog.=) b.namespace "
				   "AND p.name OPERATOR(pg_catalog.=) b.pipeline "
				   "ON CONFLICT (pipeline_id, %s) WHERE external_id IS %s NULL %s "
				   "RETURNING (r.xmax OPERATOR(pg_catalog.=) 0) AS inserted) "
				   "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM u",
				   source, with_id ? "external_id, attempt" : "started_at",
				   with_id ? "NOT" : "", run_merge_clause());
	spi_exec(sql, SPI_OK_SELECT);
	counts->inserted += spi_int64(0, 1);
	counts->updated += spi_int64(0, 2);
}

/*
 * Upsert the runs of one identity kind from the ephemeral relation batch.
 * with_id selects rows that carry an external id (conflict on pipeline +
 * external_id + attempt) or those that do not (pipeline + started_at).
 *
 * When several rows of the batch describe the same run (a START and a
 * COMPLETE event, a "running" line then a "failed" one), one statement
 * cannot touch a row twice: the rows are numbered per run in line order
 * and applied one "generation" at a time, exactly as if they had arrived
 * in separate calls.
 */
static void
store_runs_kind(const char *batch, bool dedupe, bool with_id, IngestCounts *counts)
{
	const char *identity = with_id ? "namespace, pipeline, external_id, attempt"
		: "namespace, pipeline, started_at";
	const char *which = with_id ? "NOT" : "";
	int64		generations,
				g;

	if (!dedupe)
	{
		upsert_runs(psprintf("SELECT * FROM %s WHERE external_id IS %s NULL", batch, which),
					with_id, counts);
		return;
	}
	spi_exec(psprintf("SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM %s "
					  "WHERE external_id IS %s NULL GROUP BY %s) s", batch, which, identity),
			 SPI_OK_SELECT);
	generations = spi_int64(0, 1);
	for (g = 1; g <= generations; g++)
		upsert_runs(psprintf("SELECT * FROM (SELECT *, row_number() OVER "
							 "(PARTITION BY %s ORDER BY line_no) AS generation FROM %s "
							 "WHERE external_id IS %s NULL) s WHERE generation = " INT64_FORMAT,
							 identity, batch, which, g),
					with_id, counts);
}

/*
 * Link children to parents by external id within a namespace, for the runs
 * of this batch only: first earlier children whose parent is in the batch
 * (one probe of run_orphan per batch run), then the batch's children still
 * without a parent.  A child names its parent's pipeline in attrs
 * (parent_pipeline; OpenLineage's parentJob.name), which makes its lookup one
 * probe of the run identity index; without it, one probe per pipeline of the
 * namespace.  Every lookup is an index probe per row (LATERAL ... OFFSET 0),
 * whatever the statistics say, and children whose parent never comes cost
 * nothing to later batches.  Siblings share the parent reference and the
 * parent does not; run ids repeat across pipelines (Airflow's
 * scheduled__<date>), hence the pipeline name when one is given.  Of several
 * candidate parents (attempts of one run) the first stored wins.
 */
#define PARENT_NAME(c) "coalesce(" c ".attrs OPERATOR(pg_catalog.->>) 'parent_pipeline', " \
	c ".attrs OPERATOR(pg_catalog.#>>) '{parentJob,name}')"
#define BATCH_STORED_RUNS \
	"WITH br AS MATERIALIZED (SELECT r.run_id, r.pipeline_id, r.external_id, r.parent_external_id, " \
	" r.parent_run_id, r.attrs, p.namespace FROM " \
	" (SELECT DISTINCT namespace, pipeline, external_id, started_at FROM " BATCH_RUNS ") b " \
	" JOIN smartetl.pipeline p ON p.namespace OPERATOR(pg_catalog.=) b.namespace " \
	"  AND p.name OPERATOR(pg_catalog.=) b.pipeline " \
	" CROSS JOIN LATERAL (SELECT * FROM smartetl.run r WHERE b.external_id IS NOT NULL " \
	"  AND r.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id AND r.external_id OPERATOR(pg_catalog.=) b.external_id " \
	"  UNION ALL SELECT * FROM smartetl.run r WHERE b.external_id IS NULL AND r.external_id IS NULL " \
	"  AND r.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id AND r.started_at OPERATOR(pg_catalog.=) b.started_at " \
	"  OFFSET 0) r) "
#define LINK_UPDATE \
	"UPDATE smartetl.run c SET parent_run_id = l.parent " \
	"FROM (SELECT DISTINCT ON (child) child, parent FROM links ORDER BY child, parent) l " \
	"WHERE c.run_id OPERATOR(pg_catalog.=) l.child AND c.parent_run_id IS NULL"

static void
store_parent_links(void)
{
	/* earlier children (and the batch's own) whose parent is in the batch */
	spi_exec(BATCH_STORED_RUNS ", links AS (SELECT o.run_id AS child, p.run_id AS parent FROM br p "
			 "CROSS JOIN LATERAL (SELECT o.run_id, o.pipeline_id, o.attrs, o.parent_external_id "
			 " FROM smartetl.run o WHERE o.parent_external_id OPERATOR(pg_catalog.=) p.external_id "
			 " AND o.parent_run_id IS NULL OFFSET 0) o "
			 "JOIN smartetl.pipeline cp ON cp.pipeline_id OPERATOR(pg_catalog.=) o.pipeline_id "
			 "JOIN smartetl.pipeline pp ON pp.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id "
			 "WHERE p.external_id IS NOT NULL AND cp.namespace OPERATOR(pg_catalog.=) pp.namespace "
			 "AND (" PARENT_NAME("o") " IS NULL OR pp.name OPERATOR(pg_catalog.=) " PARENT_NAME("o") ") "
			 "AND o.run_id OPERATOR(pg_catalog.<>) p.run_id "
			 "AND p.parent_external_id IS DISTINCT FROM o.parent_external_id) " LINK_UPDATE,
			 SPI_OK_UPDATE);
	/* the batch's children still without a parent: look it up */
	spi_exec(BATCH_STORED_RUNS ", links AS (SELECT c.run_id AS child, pr.run_id AS parent FROM br c "
			 "CROSS JOIN LATERAL (SELECT p.run_id FROM "
			 " (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace OPERATOR(pg_catalog.=) c.namespace "
			 "  AND name OPERATOR(pg_catalog.=) " PARENT_NAME("c") " UNION ALL "
			 "  SELECT pipeline_id FROM smartetl.pipeline WHERE " PARENT_NAME("c") " IS NULL "
			 "  AND namespace OPERATOR(pg_catalog.=) c.namespace) pp "
			 " CROSS JOIN LATERAL (SELECT p.run_id, p.parent_external_id FROM smartetl.run p "
			 "  WHERE p.pipeline_id OPERATOR(pg_catalog.=) pp.pipeline_id "
			 "  AND p.external_id OPERATOR(pg_catalog.=) c.parent_external_id OFFSET 0) p "
			 " WHERE p.run_id OPERATOR(pg_catalog.<>) c.run_id "
			 " AND p.parent_external_id IS DISTINCT FROM c.parent_external_id "
			 " ORDER BY p.run_id LIMIT 1) pr "
			 "WHERE c.parent_run_id IS NULL AND c.parent_external_id IS NOT NULL) " LINK_UPDATE,
			 SPI_OK_UPDATE);
}

/*
 * Serialise ingests that touch the same pipelines, so that "is this run
 * new?" cannot change between the check and the insert.  Pipelines hash to
 * one of 64 transaction-level advisory locks (locks.h), taken in order (no
 * deadlock between two ingests) and few enough for the shared lock table;
 * smartetl._lock_pipelines() takes the same ones for SQL.
 */
static void
lock_pipelines(void)
{
	spi_exec("SELECT pg_catalog.pg_advisory_xact_lock(" CppAsString2(LOCK_PIPELINE_CLASS) ", k) FROM "
			 "(SELECT DISTINCT (p.pipeline_id OPERATOR(pg_catalog.%) " CppAsString2(LOCK_PIPELINE_SLOTS) ")::int4 AS k "
			 " FROM smartetl.pipeline p JOIN (SELECT DISTINCT namespace, pipeline FROM " BATCH_RUNS ") b "
			 " ON p.namespace OPERATOR(pg_catalog.=) b.namespace AND p.name OPERATOR(pg_catalog.=) b.pipeline "
			 " ORDER BY 1 OFFSET 0) s", SPI_OK_SELECT);
}

typedef struct PipelineId
{
	char	   *key;			/* namespace '\0' name */
	int			keylen;
	int64		id;
} PipelineId;

static int
cmp_pipeline_id(const void *a, const void *b)
{
	const PipelineId *x = a;
	const PipelineId *y = b;
	int			c = memcmp(x->key, y->key, Min(x->keylen, y->keylen));

	return c != 0 ? c : x->keylen - y->keylen;
}

/*
 * The ids of the batch's pipelines, sorted for bsearch.  FOR KEY SHARE
 * keeps them from being deleted before we commit, as a foreign key would.
 */
static PipelineId *
load_pipeline_ids(int *n)
{
	PipelineId *ids;
	int			i;

	spi_exec("SELECT p.namespace, p.name, p.pipeline_id FROM smartetl.pipeline p "
			 "JOIN (SELECT DISTINCT namespace, pipeline FROM " BATCH_RUNS ") b "
			 "ON p.namespace OPERATOR(pg_catalog.=) b.namespace AND p.name OPERATOR(pg_catalog.=) b.pipeline "
			 "FOR KEY SHARE OF p", SPI_OK_SELECT);
	*n = (int) SPI_processed;
	ids = palloc(sizeof(PipelineId) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		char	   *ns = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		ids[i].keylen = strlen(ns) + 1 + strlen(name);
		ids[i].key = psprintf("%s%c%s", ns, '\0', name);
		ids[i].id = spi_int64(i, 3);
	}
	qsort(ids, *n, sizeof(PipelineId), cmp_pipeline_id);
	return ids;
}

static int64
find_pipeline_id(PipelineId *ids, int n, TupleTableSlot *slot)
{
	char	   *ns = TextDatumGetCString(slot_getattr(slot, 2, &(bool) {false}));
	char	   *name = TextDatumGetCString(slot_getattr(slot, 3, &(bool) {false}));
	PipelineId	want;
	PipelineId *found;

	want.keylen = strlen(ns) + 1 + strlen(name);
	want.key = psprintf("%s%c%s", ns, '\0', name);
	found = bsearch(&want, ids, n, sizeof(PipelineId), cmp_pipeline_id);
	if (found == NULL)
		elog(ERROR, "pipeline \"%s\".\"%s\" vanished during ingest", ns, name);
	return found->id;
}

/*
 * A run_merge expression reading the new values from batch row b instead
 * of the upsert's excluded row.
 */
static char *
merged_from_batch(const char *expr)
{
	StringInfoData merged;
	const char *p = expr;
	const char *hit;

	initStringInfo(&merged);
	while ((hit = strstr(p, "excluded.")) != NULL)
	{
		appendBinaryStringInfo(&merged, p, hit - p);
		p = hit + strlen("excluded.");
		/* the batch carries status as text */
		if (strncmp(p, "status", 6) == 0)
		{
			appendStringInfoString(&merged, "b.status::smartetl.run_status");
			p += 6;
		}
		else
			appendStringInfoString(&merged, "b.");
	}
	appendStringInfoString(&merged, p);
	return merged.data;
}

/* merged_from_batch of the run_merge rule of one column. */
static char *
merged_column(const char *column)
{
	int			i;

	for (i = 0; i < lengthof(run_merge); i++)
		if (strcmp(run_merge[i].column, column) == 0)
			return merged_from_batch(run_merge[i].merged);
	elog(ERROR, "no merge rule for run column \"%s\"", column);
	return NULL;
}

/*
 * run_merge's merged value of every column, reading the new values from
 * batch row b, and the test "would the upsert change the stored run r?".
 */
static char *
run_changes_test(void)
{
	StringInfoData old,
				merged;
	int			i;

	initStringInfo(&old);
	initStringInfo(&merged);
	for (i = 0; i < lengthof(run_merge); i++)
	{
		appendStringInfo(&old, "%sr.%s", i ? ", " : "", run_merge[i].column);
		appendStringInfo(&merged, "%s%s", i ? ", " : "", merged_from_batch(run_merge[i].merged));
	}
	return psprintf("(%s) IS DISTINCT FROM (%s)", old.data, merged.data);
}

/*
 * A record that would leave its run ending before it starts once merged
 * with what came before it: the stored run, or earlier records of the
 * batch.  Each record was checked alone when it was parsed; this catches a
 * start that comes after an end sent earlier (or the other way round),
 * which would otherwise fail the whole call on the table's CHECK
 * constraint without naming the line.
 */
typedef struct TimeConflict
{
	int64		line_no;
	bool		blame_start;	/* the record's start is after the run's end */
	TimestampTz started;		/* the run's start and end once merged */
	TimestampTz ended;
	int64		started_line;	/* where each came from; 0 = the stored run */
	int64		ended_line;
} TimeConflict;

static char *
conflict_origin(int64 line)
{
	return line == 0 ? pstrdup("of the stored run") : psprintf("from line " INT64_FORMAT, line);
}

/* Report a conflict: an error naming the line and field, or a reject. */
static void
time_conflict(IngestBatch *b, const IngestOptions *o, const TimeConflict *c)
{
	FieldError	e = {0};

	if (c->blame_start)
	{
		e.field = b->started_src ? b->started_src : "started_at";
		e.expected = psprintf("a start time not after the run's end time %s %s",
							  ingest_format_utc(c->ended), conflict_origin(c->ended_line));
		e.found = ingest_format_utc(c->started);
	}
	else
	{
		e.field = b->ended_src ? b->ended_src : "ended_at";
		e.expected = psprintf("an end time not before the run's start time %s %s",
							  ingest_format_utc(c->started), conflict_origin(c->started_line));
		e.found = ingest_format_utc(c->ended);
	}
	ingest_field_error(b, o, (long) c->line_no, NULL, &e);
}

static TimestampTz
spi_timestamptz(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y);
}

/* Drop the given lines (sorted) from the batch's runs and re-register it. */
static void
drop_batch_lines(IngestBatch *b, int64 *lines, int64 n)
{
	/* the batch outlives SPI's memory: build the new store beside the old */
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(b->identities));
	Tuplestorestate *kept = tuplestore_begin_heap(false, false, Max(work_mem, maintenance_work_mem));
	TupleTableSlot *slot = MakeSingleTupleTableSlot(b->run_desc, &TTSOpsMinimalTuple);
	int64		nkept = 0;

	MemoryContextSwitchTo(old);

	tuplestore_rescan(b->runs);
	while (tuplestore_gettupleslot(b->runs, true, false, slot))
	{
		int64		line_no = DatumGetInt64(slot_getattr(slot, 1, &(bool) {false}));

		if (bsearch(&line_no, lines, n, sizeof(int64), cmp_int64) == NULL)
		{
			tuplestore_puttupleslot(kept, slot);
			nkept++;
		}
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(b->runs);
	b->runs = kept;
	b->nruns = nkept;
	if (SPI_unregister_relation(BATCH_RUNS) != SPI_OK_REL_UNREGISTER)
		elog(ERROR, "could not unregister ephemeral relation \"%s\"", BATCH_RUNS);
	register_batch(BATCH_RUNS, b->run_desc, b->runs, b->nruns);
}

/* The merged start and end of one run while its records are folded. */
typedef struct RunTimes
{
	bool		has_start;
	bool		has_end;
	bool		finished;		/* some record was not 'running' */
	TimestampTz started;
	TimestampTz ended;
	int64		started_line;
	int64		ended_line;
} RunTimes;

/*
 * Apply one record (line 0: the stored run) to t as the upsert merges it
 * (run_merge: the latest start given; the latest end given, except that a
 * 'running' record after a finished one changes nothing).  Returns false,
 * leaving t alone and describing the problem in *c, when the record would
 * leave the run ending before it starts.
 */
static bool
fold_record(RunTimes *t, int64 line_no, bool running, bool has_start, TimestampTz started,
			bool has_end, TimestampTz ended, TimeConflict *c)
{
	RunTimes	n = *t;

	if (has_start)
	{
		n.has_start = true;
		n.started = started;
		n.started_line = line_no;
	}
	if (has_end && !(running && t->finished))
	{
		n.has_end = true;
		n.ended = ended;
		n.ended_line = line_no;
	}
	n.finished |= !running;
	if (line_no > 0 && n.has_start && n.has_end && n.ended < n.started)
	{
		c->line_no = line_no;
		c->blame_start = has_start;
		c->started = n.started;
		c->ended = n.ended;
		c->started_line = n.started_line;
		c->ended_line = n.ended_line;
		return false;
	}
	*t = n;
	return true;
}

/*
 * The general check, for batches that may hold several records of one run
 * (or that are not stored by the bulk path): fold each run's records in
 * line order, its stored row first, and report every record that would
 * leave the run ending before it starts (the first one as an error, or
 * each as a reject, which then does not count for the records after it).
 * Only runs with an external id can conflict: without one, the start is
 * the identity.  One sorted pass through a cursor, whatever the batch size.
 */
static void
check_merged_times(IngestBatch *b, const IngestOptions *o)
{
	static const char *const sql =
	"WITH b AS (SELECT line_no, namespace, pipeline, external_id, attempt, status, started_at, ended_at "
	" FROM " BATCH_RUNS " WHERE external_id IS NOT NULL) "
	"SELECT * FROM b UNION ALL "
	"SELECT 0::int8, k.namespace, k.pipeline, k.external_id, k.attempt, r.status::text, r.started_at, r.ended_at "
	/* lookups per row whatever the statistics: see existing_run_lines */
	"FROM (SELECT DISTINCT namespace, pipeline, external_id, attempt FROM b) k "
	"CROSS JOIN LATERAL (SELECT r.status, r.started_at, r.ended_at FROM smartetl.run r "
	" WHERE r.pipeline_id OPERATOR(pg_catalog.=) (SELECT p.pipeline_id FROM smartetl.pipeline p "
	"  WHERE p.namespace OPERATOR(pg_catalog.=) k.namespace AND p.name OPERATOR(pg_catalog.=) k.pipeline) "
	" AND r.external_id OPERATOR(pg_catalog.=) k.external_id "
	" AND r.attempt OPERATOR(pg_catalog.=) k.attempt AND r.external_id IS NOT NULL OFFSET 0) r "
	"ORDER BY namespace, pipeline, external_id, attempt, line_no";
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext run_ctx = AllocSetContextCreate(outer, "smartetl run times", ALLOCSET_SMALL_SIZES);
	MemoryContext row_ctx = AllocSetContextCreate(outer, "smartetl run record", ALLOCSET_SMALL_SIZES);
	Portal		portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	StringInfoData identity;	/* namespace, pipeline, external_id, attempt */
	RunTimes	t = {0};
	int64	   *bad = NULL;
	int64		nbad = 0;
	int64		bad_cap = 0;

	identity.data = NULL;
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(row_ctx);
			StringInfoData key;
			int			col;
			bool		null_start,
						null_end,
						isnull;
			TimestampTz started = DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &null_start));
			TimestampTz ended = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &null_end));
			int64		line_no = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			TimeConflict c;

			initStringInfo(&key);
			for (col = 2; col <= 5; col++)
			{
				appendStringInfoString(&key, SPI_getvalue(tup, desc, col));
				appendStringInfoChar(&key, '\0');
			}
			if (identity.data == NULL || identity.len != key.len ||
				memcmp(identity.data, key.data, key.len) != 0)
			{
				/* the next run: its stored row, if any, comes first (line 0) */
				MemoryContextReset(run_ctx);
				MemoryContextSwitchTo(run_ctx);
				initStringInfo(&identity);
				appendBinaryStringInfo(&identity, key.data, key.len);
				MemoryContextSwitchTo(row_ctx);
				memset(&t, 0, sizeof(t));
			}
			if (!fold_record(&t, line_no, strcmp(SPI_getvalue(tup, desc, 6), "running") == 0,
							 !null_start, started, !null_end, ended, &c))
			{
				time_conflict(b, o, &c);	/* returns only in quarantine mode */
				if (nbad == bad_cap)
				{
					bad_cap = Max(16, 2 * bad_cap);
					bad = bad ? repalloc_huge(bad, sizeof(int64) * bad_cap)
						: MemoryContextAllocHuge(outer, sizeof(int64) * bad_cap);
				}
				bad[nbad++] = c.line_no;
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_ctx);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(run_ctx);
	MemoryContextDelete(row_ctx);
	if (nbad > 0)
	{
		qsort(bad, nbad, sizeof(int64), cmp_int64);
		drop_batch_lines(b, bad, nbad);
	}
}

/*
 * Batch runs whose identity is already stored, ascending by line: their
 * line numbers, and whether storing them would change anything (a re-sent
 * file mostly would not, and then costs one index probe per row instead of
 * an upsert).
 */
static int64 *
existing_run_lines(int64 *n, bool **changes, TimeConflict **conflicts)
{
	int64	   *lines;
	int64		i;
	char	   *test = run_changes_test();
	char	   *ms = merged_column("started_at");
	char	   *me = merged_column("ended_at");

	/*
	 * Every lookup is a LATERAL subquery that cannot be flattened, so it
	 * runs per batch row on the unique indexes whatever the statistics say.
	 * After autovacuum has seen run or pipeline empty (pages, no tuples), a
	 * large load in this transaction looks empty to the planner, which
	 * would otherwise scan one side once per row of the other: minutes for
	 * the 150,000 Borg runs instead of a second.  The start is the identity
	 * of the second kind: no conflict there.
	 */
	spi_exec(psprintf("WITH b AS MATERIALIZED (SELECT b.*, p.pipeline_id FROM " BATCH_RUNS " b "
					  " CROSS JOIN LATERAL (SELECT p.pipeline_id FROM smartetl.pipeline p "
					  "  WHERE p.namespace OPERATOR(pg_catalog.=) b.namespace "
					  "  AND p.name OPERATOR(pg_catalog.=) b.pipeline OFFSET 0) p) "
					  "SELECT b.line_no, %s, coalesce((%s) OPERATOR(pg_catalog.<) (%s), false), "
					  "b.started_at IS NOT NULL, %s, %s FROM b "
					  "CROSS JOIN LATERAL (SELECT * FROM smartetl.run r "
					  " WHERE r.pipeline_id OPERATOR(pg_catalog.=) b.pipeline_id "
					  " AND r.external_id OPERATOR(pg_catalog.=) b.external_id "
					  " AND r.attempt OPERATOR(pg_catalog.=) b.attempt "
					  /* lets the planner use the partial identity index */
					  " AND r.external_id IS NOT NULL OFFSET 0) r "
					  "WHERE b.external_id IS NOT NULL "
					  "UNION ALL "
					  "SELECT b.line_no, %s, false, false, NULL, NULL FROM b "
					  "CROSS JOIN LATERAL (SELECT * FROM smartetl.run r "
					  " WHERE r.pipeline_id OPERATOR(pg_catalog.=) b.pipeline_id "
					  " AND r.started_at OPERATOR(pg_catalog.=) b.started_at "
					  " AND r.external_id IS NULL OFFSET 0) r "
					  "WHERE b.external_id IS NULL "
					  "ORDER BY 1", test, me, ms, ms, me, test), SPI_OK_SELECT);
	*n = (int64) SPI_processed;
	lines = palloc_extended(sizeof(int64) * Max(*n, 1), MCXT_ALLOC_HUGE);
	*changes = palloc_extended(sizeof(bool) * Max(*n, 1), MCXT_ALLOC_HUGE);
	*conflicts = NULL;
	for (i = 0; i < *n; i++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TimeConflict *c;

		lines[i] = spi_int64(i, 1);
		(*changes)[i] = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		if (!DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			continue;
		/* rare: keep one entry per existing line, unused unless flagged */
		if (*conflicts == NULL)
			*conflicts = palloc_extended(sizeof(TimeConflict) * Max(*n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		c = &(*conflicts)[i];
		c->line_no = lines[i];
		c->blame_start = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		c->started = spi_timestamptz(i, 5);
		c->ended = spi_timestamptz(i, 6);
		c->started_line = c->blame_start ? lines[i] : 0;
		c->ended_line = c->blame_start ? 0 : lines[i];
	}
	return lines;
}

/*
 * New runs go through the bulk inserter; runs already stored that would
 * change are copied to a second batch, returned for the SQL upsert.  The batch is in line
 * order, as are the existing line numbers, so one merge pass splits them.
 */
static Tuplestorestate *
store_new_runs(IngestBatch *b, const IngestOptions *o, IngestCounts *counts, int64 *nexisting)
{
	int			npipelines;
	PipelineId *ids = load_pipeline_ids(&npipelines);
	int64		nlines;
	bool	   *changes;
	TimeConflict *conflicts;
	int64	   *lines = existing_run_lines(&nlines, &changes, &conflicts);
	int64		nconflicts = 0;
	int64		next = 0;
	int64		nchanged = 0;
	Tuplestorestate *existing = tuplestore_begin_heap(false, false, work_mem);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(b->run_desc, &TTSOpsMinimalTuple);
	RunInserter *ri = run_insert_begin(b->run_desc);
	Tuplestorestate *inserted = tuplestore_begin_heap(false, false, Max(work_mem, maintenance_work_mem));
	int64		ninserted = 0;
	MemoryContext old = MemoryContextSwitchTo(b->row_ctx);

	tuplestore_rescan(b->runs);
	while (tuplestore_gettupleslot(b->runs, true, false, slot))
	{
		int64		line_no = DatumGetInt64(slot_getattr(slot, 1, &(bool) {false}));

		if (next < nlines && lines[next] == line_no)
		{
			/* stored already: upsert only what would change */
			if (conflicts && conflicts[next].line_no == line_no)
			{
				time_conflict(b, o, &conflicts[next]);	/* or an error */
				nconflicts++;
			}
			else if (changes[next])
			{
				tuplestore_puttupleslot(existing, slot);
				nchanged++;
			}
			next++;
		}
		else
		{
			run_insert_add(ri, slot, find_pipeline_id(ids, npipelines, slot));
			tuplestore_puttupleslot(inserted, slot);
			ninserted++;
		}
		/* a row read back from a spilled batch lives in row_ctx: release it first */
		ExecClearTuple(slot);
		MemoryContextReset(b->row_ctx);
	}
	MemoryContextSwitchTo(old);
	b->nruns -= nconflicts;		/* now rejects, not unchanged runs */
	counts->inserted += run_insert_end(ri);
	/* the bulk path fires no triggers: add the new runs to the rollups here */
	if (ninserted > 0)
	{
		register_batch(BATCH_RUNS_NEW, b->run_desc, inserted, ninserted);
		rollup_add_new_runs(BATCH_RUNS_NEW);
		/* and record their pipelines as changed for the alert evaluation */
		spi_exec("INSERT INTO smartetl.alert_changed (pipeline_id) "
				 "SELECT DISTINCT p.pipeline_id FROM " BATCH_RUNS_NEW " b "
				 "JOIN smartetl.pipeline p ON p.namespace OPERATOR(pg_catalog.=) b.namespace "
				 "AND p.name OPERATOR(pg_catalog.=) b.pipeline", SPI_OK_INSERT);
	}
	tuplestore_end(inserted);
	ExecDropSingleTupleTableSlot(slot);
	*nexisting = nchanged;
	return existing;
}

static void
store_runs(IngestBatch *b, const IngestOptions *o, IngestCounts *counts)
{
	bool		dedupe = ingest_batch_has_duplicates(b);
	bool		fast;

	register_batch(BATCH_RUNS, b->run_desc, b->runs, b->nruns);
	spi_exec("INSERT INTO smartetl.pipeline (namespace, name) "
			 "SELECT DISTINCT namespace, pipeline FROM " BATCH_RUNS
			 " ON CONFLICT (namespace, name) DO NOTHING", SPI_OK_INSERT);
	lock_pipelines();
	fast = !dedupe && run_insert_usable();
	/* the fast path checks its (single) records against stored runs itself */
	if (!fast)
		check_merged_times(b, o);

	if (fast)
	{
		int64		nexisting;
		Tuplestorestate *existing = store_new_runs(b, o, counts, &nexisting);

		if (nexisting > 0)
		{
			register_batch(BATCH_RUNS_EXISTING, b->run_desc, existing, nexisting);
			store_runs_kind(BATCH_RUNS_EXISTING, false, true, counts);
			store_runs_kind(BATCH_RUNS_EXISTING, false, false, counts);
		}
		tuplestore_end(existing);
	}
	else
	{
		store_runs_kind(BATCH_RUNS, dedupe, true, counts);
		store_runs_kind(BATCH_RUNS, dedupe, false, counts);
	}
	counts->unchanged += b->nruns - counts->inserted - counts->updated;

	/* nothing waits for a parent (the common case): no linking statements */
	spi_exec("SELECT count(*) FROM (SELECT 1 FROM smartetl.run "
			 "WHERE parent_run_id IS NULL AND parent_external_id IS NOT NULL "
			 "ORDER BY parent_external_id LIMIT 1) s",	/* run_orphan, even if stale */
			 SPI_OK_SELECT);
	if (spi_int64(0, 1) != 0)
		store_parent_links();
}

static void
store_rejects(IngestBatch *b, const IngestOptions *o, IngestCounts *counts)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	register_batch(BATCH_REJECTS, b->reject_desc, b->rejects, b->nrejects);
	values[0] = CStringGetTextDatum(o->format->name);
	values[1] = CStringGetTextDatum(o->source ? o->source : "");
	if (SPI_execute_with_args("INSERT INTO smartetl.ingest_reject "
							  "(format, source, line_no, field, raw, reason) "
							  "SELECT $1, $2, line_no, field, raw, reason FROM " BATCH_REJECTS,
							  2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store ingest rejects");
	counts->rejected += b->nrejects;
}

/* The pipeline id named by the options (created if new), or NULL. */
static Datum
event_pipeline(const IngestOptions *o, bool *isnull)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	*isnull = true;
	if (o->pipeline == NULL)
		return (Datum) 0;
	values[0] = CStringGetTextDatum(o->namespace);
	values[1] = CStringGetTextDatum(o->pipeline);
	if (SPI_execute_with_args("SELECT smartetl._pipeline_ensure($1, $2)",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look up pipeline");
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/*
 * The pipeline and run of each batch run record by line_no, for events
 * that name their run by run_line (airflow task logs, OpenLineage stack
 * traces).  An empty relation when no event does.
 */
static const char *
event_run_links(IngestBatch *b)
{
	if (!b->events_link_runs || b->nruns == 0)
		return "SELECT NULL::int8 AS line_no, NULL::int8 AS pipeline_id, NULL::int8 AS run_id";
	return "SELECT DISTINCT ON (br.line_no) br.line_no, p.pipeline_id, r.run_id "
		"FROM " BATCH_RUNS " br JOIN smartetl.pipeline p "
		"ON p.namespace OPERATOR(pg_catalog.=) br.namespace AND p.name OPERATOR(pg_catalog.=) br.pipeline "
		"LEFT JOIN smartetl.run r ON r.pipeline_id OPERATOR(pg_catalog.=) p.pipeline_id "
		"AND r.external_id OPERATOR(pg_catalog.=) br.external_id "
		"AND r.attempt OPERATOR(pg_catalog.=) br.attempt AND r.external_id IS NOT NULL "
		"ORDER BY br.line_no";
}

/* Might an event of this source in the batch's line range be stored already? */
static bool
events_may_exist(IngestBatch *b, const IngestOptions *o)
{
	Oid			types[5] = {TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5] = {CStringGetTextDatum(o->source), Int64GetDatum(b->min_line),
		Int64GetDatum(b->max_line), TimestampTzGetDatum(b->min_ts), TimestampTzGetDatum(b->max_ts)};

	if (SPI_execute_with_args("SELECT EXISTS (SELECT FROM smartetl.log_event "
							  "WHERE source OPERATOR(pg_catalog.=) $1 AND line_no BETWEEN $2 AND $3 "
							  "AND ts BETWEEN $4 AND $5)", 5, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up log events");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &(bool) {false}));
}

/*
 * The plain INSERT of a new file's events, in a subtransaction: true if it
 * stored them all, false if a concurrent ingest of the same lines got
 * there first (unique violation; it is rolled back).
 */
static bool
insert_events_plain(const char *sql, Oid *types, Datum *values, char *nulls, int64 *inserted)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool done = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, 5, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store log events");
		*inserted = SPI_processed;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			ReThrowError(edata);
		FlushErrorState();
		done = false;
	}
	PG_END_TRY();
	return done;
}

/*
 * Insert log events into their monthly partitions (created on demand).
 * (source, line_no, ts) identifies an event, so re-ingesting a file, or a
 * file that has grown since, adds only the lines not stored yet.  When no
 * event of the source is stored in the batch's line range (a new file), a
 * plain INSERT does it, a third cheaper than ON CONFLICT's speculative
 * insertion of every row; should a concurrent ingest store the same lines
 * meanwhile, its unique violation sends the batch the ON CONFLICT way.
 */
static void
store_events(IngestBatch *b, const IngestOptions *o, IngestCounts *counts)
{
	Oid			types[5] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		no_pipeline;
	int64		inserted;
	const char *insert;

	register_batch(BATCH_EVENTS, b->event_desc, b->events, b->nevents);
	values[0] = TimestampTzGetDatum(b->min_ts);
	values[1] = TimestampTzGetDatum(b->max_ts);
	if (SPI_execute_with_args("SELECT smartetl._log_partitions_ensure($1, $2)",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not create log event partitions");

	values[2] = CStringGetTextDatum(o->source);
	values[3] = event_pipeline(o, &no_pipeline);
	nulls[3] = no_pipeline ? 'n' : ' ';
	nulls[4] = o->run_external_id ? ' ' : 'n';
	values[4] = o->run_external_id ? CStringGetTextDatum(o->run_external_id) : (Datum) 0;
	insert = psprintf("WITH links AS MATERIALIZED (%s) "
					  "INSERT INTO smartetl.log_event "
					  "(pipeline_id, run_id, ts, level, component, message, template_id, source, line_no, attrs) "
					  "SELECT COALESCE(l.pipeline_id, $4), COALESCE(l.run_id, "
					  "(SELECT run_id FROM smartetl.run WHERE pipeline_id OPERATOR(pg_catalog.=) $4 "
					  "AND external_id OPERATOR(pg_catalog.=) $5 ORDER BY attempt DESC LIMIT 1)), "
					  "e.ts, e.level, e.component, e.message, e.template_id, $3, e.line_no, e.attrs "
					  "FROM " BATCH_EVENTS " e LEFT JOIN links l ON l.line_no OPERATOR(pg_catalog.=) e.run_line",
					  event_run_links(b));
	if (events_may_exist(b, o) ||
		!insert_events_plain(insert, types, values, nulls, &inserted))
	{
		if (SPI_execute_with_args(psprintf("%s ON CONFLICT (source, line_no, ts) DO NOTHING", insert),
								  5, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store log events");
		inserted = SPI_processed;
	}
	counts->inserted += inserted;
	counts->unchanged += b->nevents - inserted;
}

void
ingest_store(IngestBatch *b, const IngestOptions *o, IngestCounts *counts)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (b->templates)
		template_flush();		/* this ingest's occurrence counts */
	if (b->nruns > 0)
	{
		store_runs(b, o, counts);
		/* bulk-inserted runs fire no triggers: wake the alert worker here */
		alert_wake_at_commit();
	}
	if (b->nevents > 0)
		store_events(b, o, counts);
	if (b->nrejects > 0)
		store_rejects(b, o, counts);
	SPI_finish();
}
