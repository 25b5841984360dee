/*-------------------------------------------------------------------------
 * src/template/template_store.c
 *		The template miner's state: smartetl.template_text (each template's
 *		texts, one row per revision) and smartetl.template_seen (occurrence
 *		deltas), read together through the view smartetl.template.
 *
 * Learning runs inside the caller's transaction, which may stay open for a
 * long time, roll back to a savepoint, or be a PL/pgSQL block that catches
 * an error.  So nothing here takes a lock that lasts until commit and
 * nothing is ever updated in place: a new template takes its id from a
 * sequence, a template whose text generalises gets a new revision row, and
 * counts are inserted as deltas (folded by smartetl.template_compact()).
 * No session ever waits for another's open transaction.  The price: two
 * sessions that learn the same new message at the same moment each store a
 * template; a backend rebuilding its miner collapses identical texts into
 * one cluster answered with the lowest id.
 *
 * Each backend caches a miner rebuilt from the tables: restoring each
 * template's latest text in id order reproduces the miner (miner.h).  The
 * cache is checked against the table when a shared-memory epoch, bumped by
 * every commit that stored templates, has moved (without shared memory:
 * on every call).  A (sub)transaction abort drops a cache that learned in
 * this transaction, so no cluster that was never stored survives.
 *
 * Only this code writes the tables, as the extension's owner (writers need
 * no privilege on them).  Callers who may not ingest (not smartetl_writer)
 * only look messages up.  At smartetl.template_limit templates, messages
 * that match none go to the catch-all template "<*>" with a warning.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "template/miner.h"
#include "template/template.h"

PG_FUNCTION_INFO_V1(smartetl_log_template);
PG_FUNCTION_INFO_V1(smartetl_log_template_id);
PG_FUNCTION_INFO_V1(smartetl_template_touched);

int			smartetl_template_limit = 50000;

#define CATCH_ALL_TEMPLATE "<*>"

/* Bumped by each commit that stored or removed templates (any database). */
typedef struct TemplateShmem
{
	pg_atomic_uint64 epoch;
} TemplateShmem;

static TemplateShmem *template_shmem = NULL;

/* The backend's miner and what of the tables it reflects. */
typedef struct TemplateCache
{
	MemoryContext cxt;
	TemplateMiner *miner;
	int64	   *ids;			/* cluster -> template_id */
	int			capids;
	int64		rows;			/* template_text rows reflected */
	uint64		epoch;			/* 0: check the table at next use */
	int			catch_all;		/* cluster of CATCH_ALL_TEMPLATE, or -1 */
} TemplateCache;

static TemplateCache *cache = NULL;
static uint32 cache_generation = 0;
static bool cache_dirty = false;	/* learned in the current transaction */
static bool stored_templates = false;	/* this transaction wrote template_text */
static bool limit_warned = false;
static bool callbacks_registered = false;

/* What one session learned, per cluster, for the final insert. */
struct TemplateSession
{
	MemoryContext cxt;			/* where the arrays below live */
	uint32		generation;		/* of the cache it learned into */
	bool		learn;			/* false: lookups only */
	int			cap;
	int64	   *occurrences;
	TimestampTz *first_seen;
	TimestampTz *last_seen;
	bool	   *changed;		/* new, or its text generalised */
	bool		touched;
};

void
template_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(TemplateShmem)));
}

void
template_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	template_shmem = ShmemInitStruct("smartetl templates", sizeof(TemplateShmem), &found);
	if (!found)
		pg_atomic_init_u64(&template_shmem->epoch, 1);
	LWLockRelease(AddinShmemInitLock);
}

static uint64
current_epoch(void)
{
	return template_shmem ? pg_atomic_read_u64(&template_shmem->epoch) : 0;
}

static void
cache_drop(void)
{
	if (cache != NULL)
		MemoryContextDelete(cache->cxt);
	cache = NULL;
	cache_generation++;
}

static void
template_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* after ProcArrayEndTransaction: whoever sees the new epoch sees the rows */
			if (stored_templates && template_shmem)
				pg_atomic_fetch_add_u64(&template_shmem->epoch, 1);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (cache_dirty)
				cache_drop();
			break;
		default:
			return;
	}
	cache_dirty = false;
	stored_templates = false;
	limit_warned = false;
}

/* A rolled-back savepoint takes what its learning stored with it. */
static void
template_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && cache_dirty)
		cache_drop();
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(template_xact_callback, NULL);
	RegisterSubXactCallback(template_subxact_callback, NULL);
	callbacks_registered = true;
}

static int64
spi_int8(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* template_text's row count, with a fresh snapshot (read_only = false). */
static int64
table_rows(void)
{
	if (SPI_execute("SELECT count(*) FROM smartetl.template_text", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count templates");
	return spi_int8(0, 1);
}

static void
cache_map(int cluster, int64 template_id)
{
	if (cluster >= cache->capids)
	{
		int			newcap = Max(cluster + 1, cache->capids * 2);

		cache->ids = repalloc(cache->ids, sizeof(int64) * newcap);
		cache->capids = newcap;
	}
	cache->ids[cluster] = template_id;
}

/*
 * Rebuild the miner from the tables: each template's latest text in id
 * order, identical texts (concurrent learning of one message) collapsed
 * into the lowest id.
 */
static void
cache_rebuild(int64 rows)
{
	MemoryContext old;
	uint64		i;

	MemoryContext cxt;

	cache_drop();
	cxt = AllocSetContextCreate(TopMemoryContext, "smartetl template cache", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	cache = palloc0(sizeof(TemplateCache));
	cache->cxt = cxt;
	cache->miner = miner_create();
	cache->capids = 256;
	cache->ids = palloc(sizeof(int64) * cache->capids);
	cache->catch_all = -1;
	MemoryContextSwitchTo(old);

	if (SPI_execute("SELECT min(template_id), template FROM ("
					" SELECT DISTINCT ON (template_id) template_id, template"
					" FROM smartetl.template_text ORDER BY template_id, revision DESC) t"
					" GROUP BY template ORDER BY 1", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read templates");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		int			cluster = miner_restore(cache->miner, text);

		if (cluster < 0)
			break;				/* more rows than the miner holds: the rest match nothing */
		old = MemoryContextSwitchTo(cache->cxt);
		cache_map(cluster, spi_int8(i, 1));
		MemoryContextSwitchTo(old);
		if (strcmp(text, CATCH_ALL_TEMPLATE) == 0)
			cache->catch_all = cluster;
	}
	cache->rows = rows;
}

/* Bring the cache up to date with what other sessions committed. */
static void
cache_sync(void)
{
	uint64		epoch = current_epoch();
	int64		rows;

	if (cache != NULL && epoch != 0 && cache->epoch == epoch)
		return;
	rows = table_rows();
	if (cache == NULL || rows != cache->rows)
		cache_rebuild(rows);
	/*
	 * A transaction snapshot may predate commits counted by this epoch:
	 * then check again in the next transaction.
	 */
	cache->epoch = IsolationUsesXactSnapshot() ? 0 : epoch;
}

/* May the caller add templates?  Only roles that may ingest. */
static bool
caller_may_learn(void)
{
	Oid			writer = get_role_oid("smartetl_writer", true);

	return superuser() || (OidIsValid(writer) && has_privs_of_role(GetUserId(), writer));
}

/*
 * Begin learning (or, for callers who may not write, looking up) in the
 * current transaction: bring the cached miner up to date.
 */
TemplateSession *
template_session_begin(void)
{
	TemplateSession *s = palloc0(sizeof(TemplateSession));

	register_callbacks();
	s->cxt = CurrentMemoryContext;
	s->learn = caller_may_learn();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	cache_sync();
	SPI_finish();
	s->generation = cache_generation;
	return s;
}

static void
session_check(TemplateSession *s)
{
	if (cache == NULL || s->generation != cache_generation)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("smartetl template cache was reset during learning"),
				 errdetail("A subtransaction that learned templates was rolled back.")));
}

static void
session_grow(TemplateSession *s, int cluster)
{
	int			newcap;

	if (cluster < s->cap)
		return;
	newcap = Max(cluster + 1, Max(64, s->cap * 2));
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

static int64
new_template_id(void)
{
	Oid			nsp = get_namespace_oid("smartetl", false);
	Oid			seq = get_relname_relid("template_id_seq", nsp);

	if (!OidIsValid(seq))
		elog(ERROR, "sequence smartetl.template_id_seq does not exist");
	return nextval_internal(seq, false);
}

/* The catch-all cluster, created once the limit is reached. */
static int
catch_all_cluster(void)
{
	if (cache->catch_all < 0)
	{
		MemoryContext old = MemoryContextSwitchTo(cache->cxt);

		cache->catch_all = miner_restore(cache->miner, CATCH_ALL_TEMPLATE);
		if (cache->catch_all < 0)
			elog(ERROR, "the template miner is full");
		cache_map(cache->catch_all, new_template_id());
		MemoryContextSwitchTo(old);
	}
	return cache->catch_all;
}

/* Learn: the message's cluster, a new one if it matches none. */
static int
learn_cluster(const char *msg, int len, bool *changed)
{
	int			cluster;
	MemoryContext old;

	*changed = false;
	if (miner_count(cache->miner) < smartetl_template_limit)
	{
		int			before = miner_count(cache->miner);

		cluster = miner_add(cache->miner, msg, len, changed);
		if (cluster >= before)
		{
			old = MemoryContextSwitchTo(cache->cxt);
			cache_map(cluster, new_template_id());
			MemoryContextSwitchTo(old);
		}
		if (cluster >= 0)
			return cluster;
	}
	else if (miner_match(cache->miner, msg, len) >= 0)
		return miner_add(cache->miner, msg, len, changed);
	if (!limit_warned)
	{
		ereport(WARNING,
				(errmsg("smartetl template limit of %d reached: new messages get the catch-all template \"%s\"",
						smartetl_template_limit, CATCH_ALL_TEMPLATE),
				 errhint("Raise smartetl.template_limit (superuser) to learn more templates.")));
		limit_warned = true;
	}
	*changed = cache->catch_all < 0;
	return catch_all_cluster();
}

/*
 * The cluster of one message seen at ts (its first line only: a stack
 * trace below an error message is not part of its template), learning it
 * when the session may; -1 for a lookup that matches nothing.
 */
static int
session_cluster(TemplateSession *s, const char *msg, TimestampTz ts)
{
	const char *nl = strchr(msg, '\n');
	int			len = nl ? (int) (nl - msg) : (int) strlen(msg);
	bool		changed;
	int			cluster;

	session_check(s);
	if (!s->learn)
		return miner_match(cache->miner, msg, len);
	cluster = learn_cluster(msg, len, &changed);
	cache_dirty = true;
	session_grow(s, cluster);
	if (s->occurrences[cluster] == 0 || ts < s->first_seen[cluster])
		s->first_seen[cluster] = ts;
	if (s->occurrences[cluster] == 0 || ts > s->last_seen[cluster])
		s->last_seen[cluster] = ts;
	s->occurrences[cluster]++;
	s->changed[cluster] |= changed;
	s->touched = true;
	return cluster;
}

/* Learn one message seen at ts; its template id, 0 if none. */
int64
template_session_learn(TemplateSession *s, const char *msg, TimestampTz ts)
{
	int			cluster = session_cluster(s, msg, ts);

	return cluster < 0 ? 0 : cache->ids[cluster];
}

/* Run one statement with its arrays as the extension's owner. */
static void
insert_as_owner(const char *sql, int nargs, Oid *types, Datum *args)
{
	Oid			saved_user;
	int			saved_sec;
	Oid			owner;
	bool		isnull;

	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'smartetl'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "extension smartetl is not installed");
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store templates");
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
}

static Datum
int8_array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
tstz_array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Store what the session learned: a text row for each new or generalised
 * template and one count delta per template.  Call with SPI connected.
 */
void
template_session_end(TemplateSession *s)
{
	int			ntext = 0,
				nseen = 0,
				i;
	Datum	   *text_ids,
			   *texts,
			   *ids,
			   *firsts,
			   *lasts,
			   *counts;

	if (!s->touched)
		return;
	session_check(s);
	text_ids = palloc(sizeof(Datum) * s->cap);
	texts = palloc(sizeof(Datum) * s->cap);
	ids = palloc(sizeof(Datum) * s->cap);
	firsts = palloc(sizeof(Datum) * s->cap);
	lasts = palloc(sizeof(Datum) * s->cap);
	counts = palloc(sizeof(Datum) * s->cap);
	for (i = 0; i < s->cap; i++)
	{
		if (s->occurrences[i] == 0)
			continue;
		if (s->changed[i])
		{
			text_ids[ntext] = Int64GetDatum(cache->ids[i]);
			texts[ntext++] = CStringGetTextDatum(miner_template(cache->miner, i));
		}
		ids[nseen] = Int64GetDatum(cache->ids[i]);
		firsts[nseen] = TimestampTzGetDatum(s->first_seen[i]);
		lasts[nseen] = TimestampTzGetDatum(s->last_seen[i]);
		counts[nseen++] = Int64GetDatum(s->occurrences[i]);
	}
	if (ntext > 0)
	{
		Oid			types[2] = {INT8ARRAYOID, TEXTARRAYOID};
		Datum		args[2] = {int8_array(text_ids, ntext),
		PointerGetDatum(construct_array(texts, ntext, TEXTOID, -1, false, TYPALIGN_INT))};

		insert_as_owner("INSERT INTO smartetl.template_text (template_id, template) "
						"SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))", 2, types, args);
		cache->rows += ntext;
		stored_templates = true;
	}
	{
		Oid			types[4] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};
		Datum		args[4] = {int8_array(ids, nseen), tstz_array(firsts, nseen),
		tstz_array(lasts, nseen), int8_array(counts, nseen)};

		insert_as_owner("INSERT INTO smartetl.template_seen (template_id, first_seen, last_seen, occurrences) "
						"SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
						"pg_catalog.unnest($3), pg_catalog.unnest($4))", 4, types, args);
	}
	memset(s->occurrences, 0, sizeof(int64) * s->cap);
	memset(s->changed, 0, sizeof(bool) * s->cap);
	s->touched = false;
}

/* One message through a whole session: its cluster, or -1. */
static int
session_one(text *message)
{
	char	   *msg = text_to_cstring(message);
	TemplateSession *s = template_session_begin();
	int			cluster = session_cluster(s, msg, GetCurrentTransactionStartTimestamp());

	if (s->touched)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		template_session_end(s);
		SPI_finish();
	}
	return cluster;
}

/*
 * smartetl.log_template(message text) RETURNS text
 *		The message's template (variables as <*>), learning it if new; for a
 *		caller who may not learn and a message matching no template, the
 *		message with its variables masked.
 */
Datum
smartetl_log_template(PG_FUNCTION_ARGS)
{
	text	   *message = PG_GETARG_TEXT_PP(0);
	int			cluster = session_one(message);

	if (cluster < 0)
	{
		char	   *msg = text_to_cstring(message);
		const char *nl = strchr(msg, '\n');

		PG_RETURN_TEXT_P(cstring_to_text(miner_mask(msg, nl ? (int) (nl - msg) : (int) strlen(msg))));
	}
	PG_RETURN_TEXT_P(cstring_to_text(miner_template(cache->miner, cluster)));
}

/*
 * smartetl.log_template_id(message text) RETURNS bigint
 *		The id of the message's template in smartetl.template; NULL for a
 *		caller who may not learn and a message matching no template.
 */
Datum
smartetl_log_template_id(PG_FUNCTION_ARGS)
{
	int			cluster = session_one(PG_GETARG_TEXT_PP(0));

	if (cluster < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(cache->ids[cluster]);
}

/* Statement trigger on template_text: other backends must rebuild. */
Datum
smartetl_template_touched(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "smartetl_template_touched: not called as a trigger");
	register_callbacks();
	stored_templates = true;
	cache_dirty = true;			/* this backend too: drop the cache if it aborts */
	if (cache != NULL)
		cache->epoch = 0;
	return PointerGetDatum(NULL);
}
