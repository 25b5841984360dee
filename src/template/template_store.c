/*-------------------------------------------------------------------------
 * src/template/template_store.c
 *		The template miner's state is the smartetl.template table.
 *
 * Each backend keeps a miner rebuilt from the table (miner_restore of every
 * template in id order reproduces the original miner exactly, see
 * miner.h), so templates and their ids survive sessions and restarts.
 *
 * Locking protocol.  Learning happens in a "template session" inside the
 * caller's transaction:
 *   1. take a transaction-level advisory lock (one per database), so only
 *      one transaction at a time can add or change templates;
 *   2. compare the table's highest revision with the one the cached miner
 *      was built from, and rebuild the miner if another session changed it;
 *   3. learn messages; template_id = cluster id + 1;
 *   4. at the end, upsert new and changed templates (with a fresh revision)
 *      and add the occurrence counts.
 * The lock is held until commit, so concurrent ingestion never creates two
 * templates for the same messages.  If the transaction aborts, the cached
 * miner may hold clusters that were never stored: it is dropped.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "template/miner.h"
#include "template/template.h"

/* advisory lock (class, key) serialising template learning */
#define TEMPLATE_LOCK_CLASS 1397572949
#define TEMPLATE_LOCK_KEY 1

PG_FUNCTION_INFO_V1(smartetl_log_template);
PG_FUNCTION_INFO_V1(smartetl_log_template_id);

/* The backend's miner and the table revision it reflects. */
static TemplateMiner *cached_miner = NULL;
static int64 cached_revision = -1;
static bool cached_dirty = false;	/* learned in the current transaction */
static bool xact_callback_registered = false;

/* What one session learned, per cluster, for the final upsert. */
struct TemplateSession
{
	MemoryContext cxt;			/* where the arrays below live */
	int			count_at_start;
	int			cap;
	int64	   *occurrences;
	TimestampTz *first_seen;
	TimestampTz *last_seen;
	bool	   *changed;
	bool		touched;
};

static void
template_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (cached_dirty && cached_miner != NULL)
		{
			miner_free(cached_miner);
			cached_miner = NULL;
			cached_revision = -1;
		}
		cached_dirty = false;
	}
	else if (event == XACT_EVENT_COMMIT)
		cached_dirty = false;
}

static int64
table_revision(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT coalesce(max(revision), 0) FROM smartetl.template", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read template revision");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetInt64(d);
}

/* Rebuild the cached miner from the table, in id order. */
static void
rebuild_miner(int64 revision)
{
	MemoryContext old;
	uint64		i;

	if (cached_miner)
		miner_free(cached_miner);
	old = MemoryContextSwitchTo(TopMemoryContext);
	cached_miner = miner_create();
	MemoryContextSwitchTo(old);
	if (SPI_execute("SELECT template_id, template FROM smartetl.template ORDER BY template_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read templates");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		char	   *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		/* ids are dense from 1: anything else means the table was edited by hand */
		if (id != (int64) miner_count(cached_miner) + 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("smartetl.template ids are not consecutive at %lld", (long long) id),
					 errhint("Template ids are assigned by the miner; do not insert or delete templates by hand.")));
		miner_restore(cached_miner, text);
	}
	cached_revision = revision;
}

/* Lock, refresh the cache if another session changed the templates. */
TemplateSession *
template_session_begin(void)
{
	TemplateSession *s = palloc0(sizeof(TemplateSession));
	int64		revision;

	s->cxt = CurrentMemoryContext;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(template_xact_callback, NULL);
		xact_callback_registered = true;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock("
					CppAsString2(TEMPLATE_LOCK_CLASS) ", " CppAsString2(TEMPLATE_LOCK_KEY) ")",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the template miner");
	revision = table_revision();
	if (cached_miner == NULL || revision != cached_revision)
		rebuild_miner(revision);
	SPI_finish();
	s->count_at_start = miner_count(cached_miner);
	return s;
}

static void
session_grow(TemplateSession *s, int id)
{
	int			newcap;

	if (id < s->cap)
		return;
	newcap = Max(id + 1, Max(64, s->cap * 2));
	if (s->cap == 0)
	{
		/* learning runs in per-row contexts: allocate in the session's */
		s->occurrences = MemoryContextAllocZero(s->cxt, sizeof(int64) * newcap);
		s->first_seen = MemoryContextAlloc(s->cxt, sizeof(TimestampTz) * newcap);
		s->last_seen = MemoryContextAlloc(s->cxt, sizeof(TimestampTz) * newcap);
		s->changed = MemoryContextAllocZero(s->cxt, sizeof(bool) * newcap);
	}
	else
	{
		s->occurrences = repalloc(s->occurrences, sizeof(int64) * newcap);
		s->first_seen = repalloc(s->first_seen, sizeof(TimestampTz) * newcap);
		s->last_seen = repalloc(s->last_seen, sizeof(TimestampTz) * newcap);
		s->changed = repalloc(s->changed, sizeof(bool) * newcap);
		memset(s->occurrences + s->cap, 0, sizeof(int64) * (newcap - s->cap));
		memset(s->changed + s->cap, 0, sizeof(bool) * (newcap - s->cap));
	}
	s->cap = newcap;
}

/*
 * Learn one message seen at ts; returns its template id, or 0 when the
 * miner is full and nothing matches.  Only the first line counts: a stack
 * trace below an error message is not part of its template.
 */
int64
template_session_learn(TemplateSession *s, const char *msg, TimestampTz ts)
{
	const char *nl = strchr(msg, '\n');
	int			len = nl ? (int) (nl - msg) : (int) strlen(msg);
	bool		changed = false;
	int			id;

	id = miner_add(cached_miner, msg, len, &changed);
	cached_dirty = true;
	if (id < 0)
		return 0;
	session_grow(s, id);
	if (s->occurrences[id] == 0 || ts < s->first_seen[id])
		s->first_seen[id] = ts;
	if (s->occurrences[id] == 0 || ts > s->last_seen[id])
		s->last_seen[id] = ts;
	s->occurrences[id]++;
	s->changed[id] |= changed;
	s->touched = true;
	return (int64) id + 1;
}

/* The current text of a template id learned in this session. */
const char *
template_session_text(TemplateSession *s, int64 template_id)
{
	return miner_template(cached_miner, (int) (template_id - 1));
}

/*
 * Store what the session learned: new and changed templates, counts and
 * first/last seen times, in one statement.  Call with SPI connected.
 */
void
template_session_end(TemplateSession *s)
{
	int			n = 0,
				i;
	Datum	   *ids,
			   *texts,
			   *firsts,
			   *lasts,
			   *counts;
	Datum		args[5];
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID, INT8ARRAYOID};

	if (!s->touched)
		return;
	ids = palloc(sizeof(Datum) * s->cap);
	texts = palloc(sizeof(Datum) * s->cap);
	firsts = palloc(sizeof(Datum) * s->cap);
	lasts = palloc(sizeof(Datum) * s->cap);
	counts = palloc(sizeof(Datum) * s->cap);
	for (i = 0; i < s->cap; i++)
	{
		if (s->occurrences[i] == 0)
			continue;
		ids[n] = Int64GetDatum((int64) i + 1);
		texts[n] = CStringGetTextDatum(miner_template(cached_miner, i));
		firsts[n] = TimestampTzGetDatum(s->first_seen[i]);
		lasts[n] = TimestampTzGetDatum(s->last_seen[i]);
		counts[n] = Int64GetDatum(s->occurrences[i]);
		n++;
	}
	args[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(texts, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(firsts, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(lasts, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[4] = PointerGetDatum(construct_array(counts, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("INSERT INTO smartetl.template AS t "
							  "(template_id, template, revision, first_seen, last_seen, occurrences) "
							  "SELECT id, tpl, nextval('smartetl.template_revision'), fs, ls, n "
							  "FROM unnest($1, $2, $3, $4, $5) AS u(id, tpl, fs, ls, n) "
							  "ON CONFLICT (template_id) DO UPDATE SET template = excluded.template, "
							  "revision = CASE WHEN t.template OPERATOR(pg_catalog.=) excluded.template "
							  "THEN t.revision ELSE excluded.revision END, "
							  "first_seen = LEAST(t.first_seen, excluded.first_seen), "
							  "last_seen = GREATEST(t.last_seen, excluded.last_seen), "
							  "occurrences = t.occurrences OPERATOR(pg_catalog.+) excluded.occurrences",
							  5, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store templates");
	cached_revision = table_revision();
	s->touched = false;
}

/* One message through a whole session, for the SQL functions below. */
static int64
learn_one(text *message, TemplateSession **session)
{
	char	   *msg = text_to_cstring(message);
	TemplateSession *s = template_session_begin();
	int64		id = template_session_learn(s, msg, GetCurrentTransactionStartTimestamp());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	template_session_end(s);
	SPI_finish();
	*session = s;
	return id;
}

/*
 * smartetl.log_template(message text) RETURNS text
 *		The message's template (variables as <*>), learning it if new.
 */
Datum
smartetl_log_template(PG_FUNCTION_ARGS)
{
	TemplateSession *s;
	int64		id = learn_one(PG_GETARG_TEXT_PP(0), &s);

	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(template_session_text(s, id)));
}

/*
 * smartetl.log_template_id(message text) RETURNS bigint
 *		The id of the message's template in smartetl.template.
 */
Datum
smartetl_log_template_id(PG_FUNCTION_ARGS)
{
	TemplateSession *s;
	int64		id = learn_one(PG_GETARG_TEXT_PP(0), &s);

	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}
