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
 * once per statement).  A (sub)transaction abort drops a cache that learned
 * in this transaction, so no cluster that was never stored survives.
 *
 * Per message, learning costs no SQL: a template's text row is written
 * when the template is new or its text generalises (rare: a few times per
 * template in its life), so that an id never escapes without its row; its
 * occurrences are counted in memory and flushed as one insert per
 * statement: at the first learning call of the next statement, at the end
 * of an ingest, and at commit (XACT_EVENT_PRE_COMMIT; template_seen has no
 * triggers or constraints whose deferred work could be lost there).
 * Counts are kept per subtransaction nesting level, like pgstat's: a
 * committed subtransaction's counts join its parent's, an aborted one's
 * vanish, and a level is flushed only from its own level, so that rows it
 * wrote belong to the (sub)transaction that counted them.
 *
 * Only this code writes the tables, as the extension's owner (writers need
 * no privilege on them).  Callers who may not ingest (not smartetl_writer),
 * and read-only transactions, only look messages up.  At smartetl.template_limit templates, messages
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
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
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
	int64	   *ids;			/* cluster -> template_id (0: a dry run's) */
	int			capids;
	Oid			relid;			/* of smartetl.template_text */
	int64		rows;			/* template_text rows reflected */
	uint64		epoch;			/* 0: check the table at next use */
	int			catch_all;		/* cluster of CATCH_ALL_TEMPLATE, or -1 */
} TemplateCache;

static TemplateCache *cache = NULL;
static bool cache_dirty = false;	/* learned in the current transaction */
static bool cache_scratch = false;	/* a dry run mined into it: drop it after */
static bool stored_templates = false;	/* this transaction wrote template_text */
static bool limit_warned = false;
static bool callbacks_registered = false;

/* Without shared memory, the table is checked once per statement. */
static LocalTransactionId synced_lxid = InvalidLocalTransactionId;
static TimestampTz synced_stmt = 0;

/* May the current user learn?  Asked once per transaction and user. */
static LocalTransactionId priv_lxid = InvalidLocalTransactionId;
static Oid	priv_user = InvalidOid;
static bool priv_learn = false;

/* The extension's owner, once per transaction. */
static LocalTransactionId owner_lxid = InvalidLocalTransactionId;
static Oid	owner_oid = InvalidOid;

/* The two inserts, planned once per backend (SPI_keepplan). */
static SPIPlanPtr text_plan = NULL;
static SPIPlanPtr seen_plan = NULL;

/* Occurrences counted in memory, per template id. */
typedef struct PendingCount
{
	int64		template_id;	/* hash key */
	int64		occurrences;
	TimestampTz first_seen;
	TimestampTz last_seen;
} PendingCount;

/* The counts of one (sub)transaction nesting level, innermost first. */
typedef struct PendingLevel
{
	int			nest_level;
	TimestampTz stmt;			/* statement that counted last */
	HTAB	   *counts;
	struct PendingLevel *parent;
} PendingLevel;

static MemoryContext pending_cxt = NULL;	/* reset at transaction end */
static PendingLevel *pending = NULL;

/* Room for the epoch (shared_preload_libraries only). */
void
template_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(TemplateShmem)));
}

/* Create or attach the epoch; it starts at 1 (0 means "no shared memory"). */
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

/* The epoch, or 0 when smartetl is not preloaded. */
static uint64
current_epoch(void)
{
	return template_shmem ? pg_atomic_read_u64(&template_shmem->epoch) : 0;
}

/* Forget the cached miner (and a dry run's scratch state). */
static void
cache_drop(void)
{
	if (cache != NULL)
		MemoryContextDelete(cache->cxt);
	cache = NULL;
	cache_scratch = false;
}

/* The OID of one of the extension's tables, InvalidOid if there is none. */
static Oid
smartetl_relid(const char *name)
{
	Oid			nsp = get_namespace_oid("smartetl", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/* ---- Pending counts ---- */

/* A new, empty level of counts for a (sub)transaction nesting level. */
static PendingLevel *
pending_push(int nest_level)
{
	PendingLevel *l;
	HASHCTL		ctl;

	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext, "smartetl template counts",
											ALLOCSET_DEFAULT_SIZES);
	l = MemoryContextAllocZero(pending_cxt, sizeof(PendingLevel));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(PendingCount);
	ctl.hcxt = pending_cxt;
	l->counts = hash_create("smartetl template counts", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	l->nest_level = nest_level;
	l->parent = pending;
	pending = l;
	return l;
}

/* Count one occurrence of a template at ts, in the current level. */
static void
pending_add(int64 template_id, TimestampTz ts)
{
	int			nest = GetCurrentTransactionNestLevel();
	PendingCount *c;
	bool		found;

	if (pending == NULL || pending->nest_level < nest)
		(void) pending_push(nest);
	pending->stmt = GetCurrentStatementStartTimestamp();
	c = hash_search(pending->counts, &template_id, HASH_ENTER, &found);
	if (!found)
	{
		c->occurrences = 0;
		c->first_seen = c->last_seen = ts;
	}
	c->occurrences++;
	if (ts < c->first_seen)
		c->first_seen = ts;
	if (ts > c->last_seen)
		c->last_seen = ts;
}

/* Add a level's counts into another's. */
static void
pending_merge(PendingLevel *from, PendingLevel *into)
{
	HASH_SEQ_STATUS seq;
	PendingCount *c;

	hash_seq_init(&seq, from->counts);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		bool		found;
		PendingCount *d = hash_search(into->counts, &c->template_id, HASH_ENTER, &found);

		if (!found)
			*d = *c;
		else
		{
			d->occurrences += c->occurrences;
			d->first_seen = Min(d->first_seen, c->first_seen);
			d->last_seen = Max(d->last_seen, c->last_seen);
		}
	}
}

/* A subtransaction at nest_level ends: its counts join the parent's, or vanish. */
static void
pending_end_level(int nest_level, bool commit)
{
	while (pending != NULL && pending->nest_level >= nest_level)
	{
		PendingLevel *l = pending;

		if (commit && (l->parent == NULL || l->parent->nest_level < nest_level - 1))
		{
			l->nest_level = nest_level - 1;		/* the parent counted nothing yet */
			return;
		}
		if (commit)
			pending_merge(l, l->parent);
		hash_destroy(l->counts);
		pending = l->parent;
		pfree(l);
	}
}

/* Forget every level (the transaction ended). */
static void
pending_reset(void)
{
	pending = NULL;
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
}

/* ---- Writing, as the extension's owner ---- */

/* The extension's owner, looked up once per transaction; SPI is connected. */
static Oid
extension_owner(void)
{
	if (owner_lxid != MyProc->lxid)
	{
		bool		isnull;

		if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'smartetl'",
						true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "extension smartetl is not installed");
		owner_oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
		owner_lxid = MyProc->lxid;
	}
	return owner_oid;
}

/* A plan kept for the backend's life (revalidated by the plan cache). */
static SPIPlanPtr
keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		*plan = p;
	}
	return *plan;
}

/*
 * Run a kept insert as the extension's owner; SPI is connected.  A
 * snapshot is pushed when there is none (at commit).
 */
static void
insert_as_owner(SPIPlanPtr plan, Datum *args)
{
	Oid			saved_user;
	int			saved_sec;
	Oid			owner;
	bool		snap = !ActiveSnapshotSet();

	if (snap)
		PushActiveSnapshot(GetTransactionSnapshot());
	owner = extension_owner();
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store templates");
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
	if (snap)
		PopActiveSnapshot();
}

/* Store a template's (new) text now, so that its id never escapes without it. */
static void
store_text(int64 template_id, const char *text)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(template_id), CStringGetTextDatum(text)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	insert_as_owner(keep_plan(&text_plan,
							  "INSERT INTO smartetl.template_text (template_id, template) VALUES ($1, $2)",
							  2, types), args);
	SPI_finish();
	cache->rows++;
	stored_templates = true;
}

/* bigint[] and timestamptz[] of n datums, for the count insert. */
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

/* Insert one level's counts as deltas, one row per template, and forget them. */
static void
pending_flush(PendingLevel *l)
{
	long		n = hash_get_num_entries(l->counts);
	Oid			types[4] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};
	Datum		args[4];
	Datum	   *ids,
			   *firsts,
			   *lasts,
			   *counts;
	HASH_SEQ_STATUS seq;
	PendingCount *c;
	int			i = 0;

	if (n == 0)
		return;
	if (!OidIsValid(smartetl_relid("template_seen")))
		n = 0;					/* the extension was dropped: nothing to count */
	ids = palloc(sizeof(Datum) * Max(n, 1));
	firsts = palloc(sizeof(Datum) * Max(n, 1));
	lasts = palloc(sizeof(Datum) * Max(n, 1));
	counts = palloc(sizeof(Datum) * Max(n, 1));
	hash_seq_init(&seq, l->counts);
	while (n > 0 && (c = hash_seq_search(&seq)) != NULL)
	{
		ids[i] = Int64GetDatum(c->template_id);
		firsts[i] = TimestampTzGetDatum(c->first_seen);
		lasts[i] = TimestampTzGetDatum(c->last_seen);
		counts[i++] = Int64GetDatum(c->occurrences);
	}
	if (n > 0)
	{
		args[0] = int8_array(ids, n);
		args[1] = tstz_array(firsts, n);
		args[2] = tstz_array(lasts, n);
		args[3] = int8_array(counts, n);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		insert_as_owner(keep_plan(&seen_plan,
								  "INSERT INTO smartetl.template_seen (template_id, first_seen, last_seen, occurrences) "
								  "SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
								  "pg_catalog.unnest($3), pg_catalog.unnest($4))", 4, types), args);
		SPI_finish();
	}
	/* forget them: a fresh table is cheaper than deleting entry by entry */
	hash_destroy(l->counts);
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(PendingCount);
		ctl.hcxt = pending_cxt;
		l->counts = hash_create("smartetl template counts", 256, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

/* Flush the counts of the current level, if it has any (see the banner). */
void
template_flush(void)
{
	if (pending != NULL && pending->nest_level == GetCurrentTransactionNestLevel())
		pending_flush(pending);
}

/* ---- Transaction ends ---- */

/*
 * The transaction ends: store the counts before commit, tell the other
 * backends after it, and forget a cache whose clusters were never stored
 * after an abort.
 */
static void
template_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/* every subtransaction has ended: one level is left, if any */
			while (pending != NULL)
			{
				PendingLevel *l = pending;

				pending_flush(l);
				pending = l->parent;
			}
			return;
		case XACT_EVENT_PREPARE:
			/*
			 * XXX its templates become visible at COMMIT PREPARED, which
			 * bumps no epoch: other backends see them after the next commit
			 * that stores templates.
			 */
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* after ProcArrayEndTransaction: whoever sees the new epoch sees the rows */
			if (stored_templates && template_shmem)
			{
				uint64		old = pg_atomic_fetch_add_u64(&template_shmem->epoch, 1);

				/* nobody else stored templates since we synced: still current */
				if (cache != NULL && cache->epoch == old)
					cache->epoch = old + 1;
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (cache_dirty)
				cache_drop();
			break;
		default:
			return;
	}
	if (cache_scratch)
		cache_drop();
	pending_reset();
	cache_dirty = false;
	stored_templates = false;
	limit_warned = false;
}

/* A rolled-back savepoint takes what its learning stored with it. */
static void
template_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (cache_dirty)
			cache_drop();
		pending_end_level(GetCurrentTransactionNestLevel(), false);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		pending_end_level(GetCurrentTransactionNestLevel(), true);
}

static void template_relcache_callback(Datum arg, Oid relid);

/* Once per backend, at the first message. */
static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(template_xact_callback, NULL);
	RegisterSubXactCallback(template_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(template_relcache_callback, (Datum) 0);
	callbacks_registered = true;
}

/* ---- The cached miner ---- */

/* A bigint of the last SPI result, 0 for NULL. */
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

/* Record a cluster's template id, growing the map (in the cache's context). */
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
	MemoryContext cxt;
	uint64		i;

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

/*
 * Bring the cache up to date with what other sessions committed: only when
 * the epoch moved (without shared memory: once per statement; with a
 * transaction snapshot: once per transaction), or the table was recreated.
 */
static void
cache_sync(bool dry)
{
	uint64		epoch = current_epoch();
	Oid			relid;
	int64		rows;

	if (cache != NULL && cache_scratch && !dry)
		cache_drop();			/* what a dry run mined is not to be learned */
	if (cache != NULL)
	{
		if (epoch != 0 && cache->epoch == epoch)
			return;
		if (synced_lxid == MyProc->lxid &&
			(IsolationUsesXactSnapshot() ||
			 (epoch == 0 && synced_stmt == GetCurrentStatementStartTimestamp())))
			return;
	}
	relid = smartetl_relid("template_text");
	if (!OidIsValid(relid))
		elog(ERROR, "extension smartetl is not installed");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rows = table_rows();
	if (cache == NULL || rows != cache->rows || relid != cache->relid)
	{
		cache_rebuild(rows);
		cache->relid = relid;
	}
	SPI_finish();

	/*
	 * A transaction snapshot may predate commits counted by this epoch:
	 * then check again in the next transaction.
	 */
	cache->epoch = IsolationUsesXactSnapshot() ? 0 : epoch;
	synced_lxid = MyProc->lxid;
	synced_stmt = GetCurrentStatementStartTimestamp();
}

/* A relation changed (DROP EXTENSION, ...): check the table at next use. */
static void
template_relcache_callback(Datum arg, Oid relid)
{
	if (cache != NULL && (relid == InvalidOid || relid == cache->relid))
	{
		cache->epoch = 0;
		synced_lxid = InvalidLocalTransactionId;
	}
}

/* May the caller add templates?  Only roles that may ingest. */
static bool
caller_may_learn(void)
{
	Oid			user = GetUserId();

	if (priv_lxid != MyProc->lxid || priv_user != user)
	{
		Oid			writer = get_role_oid("smartetl_writer", true);

		priv_learn = superuser() || (OidIsValid(writer) && has_privs_of_role(user, writer));
		priv_user = user;
		priv_lxid = MyProc->lxid;
	}
	return priv_learn;
}

/*
 * Before a message: callbacks, an up-to-date cache, and the previous
 * statement's counts stored if they belong to this level.
 */
static void
template_prepare(bool dry)
{
	register_callbacks();
	cache_sync(dry);
	if (pending != NULL && pending->nest_level == GetCurrentTransactionNestLevel() &&
		pending->stmt != GetCurrentStatementStartTimestamp())
		pending_flush(pending);
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

/* A new cluster's id, mapped and (unless a dry run's) stored with its text. */
static void
cache_new_cluster(int cluster, bool dry)
{
	MemoryContext old = MemoryContextSwitchTo(cache->cxt);
	int64		id = dry ? 0 : new_template_id();

	cache_map(cluster, id);
	MemoryContextSwitchTo(old);
	if (!dry)
		store_text(id, miner_template(cache->miner, cluster));
}

/* The catch-all cluster, created once the limit is reached. */
static int
catch_all_cluster(bool dry)
{
	if (cache->catch_all < 0)
	{
		MemoryContext old = MemoryContextSwitchTo(cache->cxt);

		cache->catch_all = miner_restore(cache->miner, CATCH_ALL_TEMPLATE);
		MemoryContextSwitchTo(old);
		if (cache->catch_all < 0)
			elog(ERROR, "the template miner is full");
		cache_new_cluster(cache->catch_all, dry);
	}
	return cache->catch_all;
}

/*
 * Learn: the message's cluster, a new one if it matches none; texts of new
 * and generalised templates are stored at once (not in a dry run).
 */
static int
learn_cluster(const char *msg, int len, bool dry)
{
	int			cluster;
	bool		changed = false;

	if (miner_count(cache->miner) < smartetl_template_limit)
	{
		int			before = miner_count(cache->miner);

		cluster = miner_add(cache->miner, msg, len, &changed);
		if (cluster >= before)
			cache_new_cluster(cluster, dry);
		else if (changed && !dry && cache->ids[cluster] != 0)
			store_text(cache->ids[cluster], miner_template(cache->miner, cluster));
		if (cluster >= 0)
			return cluster;
	}
	else if (miner_match(cache->miner, msg, len) >= 0)
	{
		cluster = miner_add(cache->miner, msg, len, &changed);
		if (changed && !dry && cache->ids[cluster] != 0)
			store_text(cache->ids[cluster], miner_template(cache->miner, cluster));
		return cluster;
	}
	if (!limit_warned && !dry)
	{
		ereport(WARNING,
				(errmsg("smartetl template limit of %d reached: new messages get the catch-all template \"%s\"",
						smartetl_template_limit, CATCH_ALL_TEMPLATE),
				 errhint("Raise smartetl.template_limit (superuser) to learn more templates.")));
		limit_warned = true;
	}
	return catch_all_cluster(dry);
}

/* The length of a message's first line: a stack trace below is not its template. */
static inline int
first_line(const char *msg, int len)
{
	const char *nl = memchr(msg, '\n', len);

	return nl ? (int) (nl - msg) : len;
}

/*
 * The cluster of one message seen at ts (its first line), learning it when
 * the caller may; -1 for a lookup that matches nothing.
 */
static int
template_cluster(const char *msg, int len, TimestampTz ts)
{
	int			cluster;

	template_prepare(false);
	len = first_line(msg, len);
	/* a read-only transaction (or a standby) could not store what it learned */
	if (!caller_may_learn() || XactReadOnly)
		return miner_match(cache->miner, msg, len);
	cache_dirty = true;
	cluster = learn_cluster(msg, len, false);
	pending_add(cache->ids[cluster], ts);
	return cluster;
}

/* Learn one message seen at ts; its template id, 0 if none. */
int64
template_learn(const char *msg, int len, TimestampTz ts)
{
	int			cluster = template_cluster(msg, len, ts);

	return cluster < 0 ? 0 : cache->ids[cluster];
}

/*
 * Mine a message as learning would, storing nothing (a dry run): the
 * cache is dropped at template_dry_run_end() or at the transaction's end.
 */
void
template_mine_dry(const char *msg, int len)
{
	template_prepare(true);
	cache_dirty = true;
	cache_scratch = true;
	(void) learn_cluster(msg, first_line(msg, len), true);
}

/* A dry run is over: drop what it mined. */
void
template_dry_run_end(void)
{
	if (cache_scratch)
		cache_drop();
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
	const char *msg = VARDATA_ANY(message);
	int			len = VARSIZE_ANY_EXHDR(message);
	int			cluster = template_cluster(msg, len, GetCurrentTransactionStartTimestamp());

	if (cluster < 0)
		PG_RETURN_TEXT_P(cstring_to_text(miner_mask(msg, first_line(msg, len))));
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
	text	   *message = PG_GETARG_TEXT_PP(0);
	int			cluster = template_cluster(VARDATA_ANY(message), VARSIZE_ANY_EXHDR(message),
										   GetCurrentTransactionStartTimestamp());

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
	synced_lxid = InvalidLocalTransactionId;
	return PointerGetDatum(NULL);
}
