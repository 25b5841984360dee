/*-------------------------------------------------------------------------
 * src/alert/alert_outbox.c
 *		The delivery outbox as the worker sees it: claim due deliveries,
 *		record outcomes, recover after a crash.  Every function runs inside
 *		a short transaction of its own, with SPI connected by the caller;
 *		none of them waits on the network.
 *
 * Every statement the worker runs goes through alert_spi_execute(), which
 * pins the search_path and arms the worker's statement timeout: a
 * background worker does not pass through postgres.c, where
 * statement_timeout is normally armed.  Work is done a batch per
 * statement: the bodies of all the claimed deliveries are read in one
 * query, the outcomes of all the finished ones written in one UPDATE.  One
 * delivery can never fail the claim of the others: the bodies are read in
 * a subtransaction, and if that fails each body is loaded in a
 * subtransaction of its own; a body that cannot be loaded or is too large
 * is recorded as that delivery's failure.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdarg.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"

#include "alert/alert.h"

/* The worker's search_path: nothing a user can create is searched first. */
#define WORKER_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Claim: due deliveries become 'sending'.  A claimed delivery waits on its
 * predecessor of the same channel and group.  Channel options are read
 * without casts that could fail: one bad channel must not stop the claim.
 */
#define CLAIM_SQL \
	"WITH due AS (" \
	"  SELECT d.delivery_id FROM smartetl.delivery d" \
	"  WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= pg_catalog.now()" \
	"    AND NOT EXISTS (SELECT 1 FROM smartetl.delivery o" \
	"                    WHERE o.channel = d.channel AND o.group_key = d.group_key" \
	"                      AND o.delivery_id < d.delivery_id" \
	"                      AND o.status IN ('pending', 'retrying', 'sending'))" \
	"  ORDER BY d.delivery_id LIMIT $1 FOR UPDATE OF d SKIP LOCKED)" \
	" UPDATE smartetl.delivery d SET status = 'sending', attempts = d.attempts + 1" \
	" FROM due, smartetl.channel c" \
	" WHERE d.delivery_id = due.delivery_id AND c.name = d.channel" \
	" RETURNING d.delivery_id, d.channel, c.kind, c.target, c.secret, d.idempotency_key, d.attempts," \
	"  c.options->>'from'," \
	"  (SELECT pg_catalog.string_agg(a, E'\\n') FROM pg_catalog.jsonb_array_elements_text(" \
	"     CASE WHEN pg_catalog.jsonb_typeof(c.options->'to') = 'array' THEN c.options->'to' ELSE '[]' END) a)," \
	"  c.options->>'username'," \
	"  coalesce(pg_catalog.lower(c.options->>'starttls') IN ('true', 't', 'on', 'yes', '1'), false)," \
	"  coalesce(pg_catalog.lower(c.options->>'insecure_skip_verify') IN ('true', 't', 'on', 'yes', '1'), false)," \
	"  CASE WHEN c.options->>'timeout_ms' ~ '^\\s*[0-9]{1,9}\\s*$'" \
	"       THEN (c.options->>'timeout_ms')::pg_catalog.int4 ELSE 0 END"

/*
 * One claimed delivery's request: the body (NULL when larger than $2
 * bytes, with the text and HTML parts of a mail counted together), its
 * length, content type, HTML part and subject.
 */
#define BODY_SQL \
	"SELECT b.content_type," \
	"  CASE WHEN b.bytes <= $2 THEN b.body END, b.bytes," \
	"  CASE WHEN b.bytes <= $2 THEN b.html END, b.subject" \
	" FROM (SELECT p.*, coalesce(pg_catalog.octet_length(p.body)::pg_catalog.int8, 0)" \
	"                   + coalesce(pg_catalog.octet_length(p.html)::pg_catalog.int8, 0) AS bytes" \
	"       FROM (SELECT d.payload->>'content_type' AS content_type," \
	"               CASE WHEN $3 = 'email' THEN d.payload->>'text'" \
	"                    WHEN pg_catalog.jsonb_typeof(d.payload->'body') = 'string' THEN d.payload->>'body'" \
	"                    ELSE (d.payload->'body')::pg_catalog.text END AS body," \
	"               CASE WHEN $3 = 'email' THEN d.payload->>'html' END AS html," \
	"               pg_catalog.substr(d.payload->>'subject', 1, 1000) AS subject" \
	"             FROM smartetl.delivery d WHERE d.delivery_id = $1) p) b"

/*
 * The requests of all the claimed deliveries in one statement: BODY_SQL
 * over arrays of (id, limit, kind), in the order of the ids.
 */
#define BODIES_SQL \
	"SELECT b.delivery_id, b.content_type," \
	"  CASE WHEN b.bytes <= b.lim THEN b.body END, b.bytes," \
	"  CASE WHEN b.bytes <= b.lim THEN b.html END, b.subject" \
	" FROM (SELECT p.*, coalesce(pg_catalog.octet_length(p.body)::pg_catalog.int8, 0)" \
	"                   + coalesce(pg_catalog.octet_length(p.html)::pg_catalog.int8, 0) AS bytes" \
	"       FROM (SELECT d.delivery_id, u.lim, d.payload->>'content_type' AS content_type," \
	"               CASE WHEN u.kind = 'email' THEN d.payload->>'text'" \
	"                    WHEN pg_catalog.jsonb_typeof(d.payload->'body') = 'string' THEN d.payload->>'body'" \
	"                    ELSE (d.payload->'body')::pg_catalog.text END AS body," \
	"               CASE WHEN u.kind = 'email' THEN d.payload->>'html' END AS html," \
	"               pg_catalog.substr(d.payload->>'subject', 1, 1000) AS subject" \
	"             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[])," \
	"                             pg_catalog.unnest($3::pg_catalog.text[])) u(id, lim, kind)" \
	"             JOIN smartetl.delivery d ON d.delivery_id = u.id) p) b" \
	" ORDER BY b.delivery_id"

/* Outbox rows left 'sending' by a crash are sent again with the same key. */
#define RESET_STALE_SQL \
	"UPDATE smartetl.delivery SET status = 'retrying', " \
	"last_error = 'interrupted while sending (worker restarted)' WHERE status = 'sending'"

/* A channel dropped after its rule: nothing will ever send its deliveries. */
#define ORPHANS_SQL \
	"UPDATE smartetl.delivery SET status = 'dead', last_error = 'channel no longer exists' " \
	"WHERE status IN ('pending', 'retrying') " \
	"AND NOT EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = channel)"

/*
 * Record outcomes, a batch in one statement: sent; or retrying after
 * Retry-After or an exponential backoff (1 s, 2 s, 4 s ... capped at 10 min)
 * with +-50 % jitter so that many failed deliveries do not return at once;
 * or dead after max_attempts ($7) or a permanent failure, keeping the last
 * error.  The outcomes come as arrays (id, ok, permanent, HTTP status,
 * Retry-After, error); of two outcomes of one delivery the first counts,
 * as when they were written one at a time.
 */
#define RECORD_SQL \
	"UPDATE smartetl.delivery d SET last_status = o.http_status, last_error = o.error, " \
	"status = CASE WHEN o.ok THEN 'sent' WHEN o.permanent OR d.attempts >= $7 THEN 'dead' ELSE 'retrying' END, " \
	"sent_at = CASE WHEN o.ok THEN pg_catalog.now() END, " \
	"next_attempt_at = CASE WHEN o.ok OR o.permanent THEN d.next_attempt_at " \
	"  WHEN o.retry_after >= 0 THEN pg_catalog.now() + pg_catalog.make_interval(secs => least(o.retry_after, 3600)) " \
	"  ELSE pg_catalog.now() + pg_catalog.make_interval(secs => least(600, 2 ^ (d.attempts - 1)) " \
	"                                                     * (0.5 + pg_catalog.random())) END " \
	"FROM (SELECT DISTINCT ON (u.id) u.* " \
	"      FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.bool[]), " \
	"                      pg_catalog.unnest($3::pg_catalog.bool[]), pg_catalog.unnest($4::pg_catalog.int4[]), " \
	"                      pg_catalog.unnest($5::pg_catalog.int4[]), pg_catalog.unnest($6::pg_catalog.text[])) " \
	"           WITH ORDINALITY u(id, ok, permanent, http_status, retry_after, error, ord) " \
	"      ORDER BY u.id, u.ord) o " \
	"WHERE d.delivery_id = o.id AND d.status = 'sending'"

#define NEXT_DUE_SQL \
	"SELECT pg_catalog.date_part('epoch', pg_catalog.min(next_attempt_at) - pg_catalog.now()) " \
	"FROM smartetl.delivery WHERE status IN ('pending', 'retrying')"

/*
 * The worker's search_path, set at start-up and set again if a statement
 * (a user's rule query, say) changed it for the session.
 */
void
alert_pin_search_path(void)
{
	if (namespace_search_path == NULL || strcmp(namespace_search_path, WORKER_SEARCH_PATH) != 0)
		SetConfigOption("search_path", WORKER_SEARCH_PATH, PGC_SUSET,
						IsTransactionState() ? PGC_S_SESSION : PGC_S_OVERRIDE);
}

/*
 * Disarm the worker's statement timeout.  A timeout that fires after its
 * statement finished has nothing left to cancel, so its pending cancel is
 * dropped rather than thrown at some later, unrelated point.
 */
void
alert_statement_timeout_disarm(void)
{
	if (!IsBackgroundWorker)
		return;
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, true);
	if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
		QueryCancelPending = false;
}

/*
 * SPI_execute_with_args for the worker: search_path pinned and the
 * statement limited to smartetl.worker_statement_timeout.  In an ordinary
 * backend (smartetl.test_channel) postgres.c already applies the user's
 * statement_timeout and search_path is the caller's business.
 */
int
alert_spi_execute(const char *sql, int nargs, Oid *types, Datum *values,
				  const char *nulls, bool read_only, long count)
{
	volatile int rc = 0;
	bool		armed = IsBackgroundWorker && smartetl_worker_statement_timeout_ms > 0;

	if (IsBackgroundWorker)
		alert_pin_search_path();
	if (armed)
		enable_timeout_after(STATEMENT_TIMEOUT, smartetl_worker_statement_timeout_ms);
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, count);
	}
	PG_FINALLY();
	{
		if (armed)
			alert_statement_timeout_disarm();
	}
	PG_END_TRY();
	return rc;
}

/*
 * Set r->error from a format, clipped to the field on a character
 * boundary.  Text that is not valid in the database encoding (libcurl's
 * messages can quote a server) keeps its ASCII only: it is stored in a
 * text column.
 */
void
delivery_error(DeliveryResult *r, const char *fmt,...)
{
	char		buf[1024];
	va_list		ap;
	int			len;
	int			i;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	len = strlen(buf);
	if (!pg_verifymbstr(buf, len, true))
		for (i = 0; i < len; i++)
			if (IS_HIGHBIT_SET(buf[i]))
				buf[i] = '?';
	len = pg_mbcliplen(buf, len, sizeof(r->error) - 1);
	memcpy(r->error, buf, len);
	r->error[len] = '\0';
}

void
outbox_reset_stale(void)
{
	if (alert_spi_execute(RESET_STALE_SQL, 0, NULL, NULL, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reset interrupted deliveries");
}

static char *
copy_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* The largest body d may have: NOTIFY's limit for LISTEN/NOTIFY, else ALERT_MAX_BODY_BYTES. */
static int64
body_limit(const Delivery *d)
{
	return strcmp(d->kind, "notify") == 0 ? BLCKSZ : ALERT_MAX_BODY_BYTES;
}

static void
init_failure(DeliveryResult *failed, int64 id)
{
	memset(failed, 0, sizeof(*failed));
	failed->id = id;
	failed->retry_after_s = -1;
}

/*
 * Take d's request from a row of BODY_SQL or BODIES_SQL (its columns from
 * col on: content type, body, bytes, HTML part, subject) into cxt.
 * Returns false, with *failed filled in, when the body is too large.
 */
static bool
take_body(Delivery *d, DeliveryResult *failed, HeapTuple t, TupleDesc td, int col, MemoryContext cxt)
{
	bool		isnull;

	d->content_type = copy_value(t, td, col, cxt);
	d->body = copy_value(t, td, col + 1, cxt);
	d->body_bytes = DatumGetInt64(SPI_getbinval(t, td, col + 2, &isnull));
	d->html = copy_value(t, td, col + 3, cxt);
	d->subject = copy_value(t, td, col + 4, cxt);
	if (d->body_bytes <= body_limit(d) || strcmp(d->kind, "notify") == 0)
		return true;
	delivery_error(failed, "payload of " INT64_FORMAT " bytes exceeds the limit of %d bytes",
				   d->body_bytes, ALERT_MAX_BODY_BYTES);
	failed->permanent = true;
	return false;
}

/*
 * Load the request of claimed delivery d into cxt.  Returns false, with
 * *failed filled in, when it cannot be sent: too large, or unreadable.  A
 * LISTEN/NOTIFY body too long for NOTIFY is not loaded at all: it is sent
 * as a pointer to the delivery (alert_notify.c).
 */
static bool
load_body(Delivery *d, DeliveryResult *failed, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;

	init_failure(failed, d->id);

	/* one delivery's error (out of memory, a broken payload) stays its own */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			types[3] = {INT8OID, INT8OID, TEXTOID};
		Datum		args[3] = {Int64GetDatum(d->id), Int64GetDatum(body_limit(d)), CStringGetTextDatum(d->kind)};

		if (alert_spi_execute(BODY_SQL, 3, types, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the payload of delivery " INT64_FORMAT, d->id);
		if (SPI_processed == 1)
			ok = take_body(d, failed, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, cxt);
		else
			delivery_error(failed, "delivery vanished while it was claimed");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* a statement timeout or a cancel ends the whole claim */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		delivery_error(failed, "could not read the payload: %s", edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Load the requests of the claimed deliveries ds[0..n-1] (sorted by id)
 * into cxt with one statement; ok[i] says whether ds[i] can be sent, and
 * failed[i] why not.  The statement runs in a subtransaction: if it fails
 * (out of memory on one huge payload, say), the requests are loaded one at
 * a time instead, so that one delivery's error stays its own.
 */
static void
load_bodies(Delivery *ds, int n, bool *ok, DeliveryResult *failed, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool done = false;
	int			i;

	if (n == 0)
		return;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			types[3] = {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
		Datum		args[3];
		ArrayBuildState *ids = initArrayResult(INT8OID, CurrentMemoryContext, false);
		ArrayBuildState *limits = initArrayResult(INT8OID, CurrentMemoryContext, false);
		ArrayBuildState *kinds = initArrayResult(TEXTOID, CurrentMemoryContext, false);
		uint64		j = 0;
		int			k;

		for (k = 0; k < n; k++)
		{
			accumArrayResult(ids, Int64GetDatum(ds[k].id), false, INT8OID, CurrentMemoryContext);
			accumArrayResult(limits, Int64GetDatum(body_limit(&ds[k])), false, INT8OID, CurrentMemoryContext);
			accumArrayResult(kinds, CStringGetTextDatum(ds[k].kind), false, TEXTOID, CurrentMemoryContext);
		}
		args[0] = makeArrayResult(ids, CurrentMemoryContext);
		args[1] = makeArrayResult(limits, CurrentMemoryContext);
		args[2] = makeArrayResult(kinds, CurrentMemoryContext);
		if (alert_spi_execute(BODIES_SQL, 3, types, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the payloads of the claimed deliveries");
		/* both in the order of the ids */
		for (k = 0; k < n; k++)
		{
			HeapTuple	t = j < SPI_processed ? SPI_tuptable->vals[j] : NULL;
			bool		isnull;

			init_failure(&failed[k], ds[k].id);
			if (t != NULL && DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull)) == ds[k].id)
			{
				ok[k] = take_body(&ds[k], &failed[k], t, SPI_tuptable->tupdesc, 2, cxt);
				j++;
			}
			else
			{
				ok[k] = false;
				delivery_error(&failed[k], "delivery vanished while it was claimed");
			}
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		done = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* a statement timeout or a cancel ends the whole claim */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (!done)
		for (i = 0; i < n; i++)
			ok[i] = load_body(&ds[i], &failed[i], cxt);
}

static int
delivery_id_cmp(const void *a, const void *b)
{
	int64		x = ((const Delivery *) a)->id;
	int64		y = ((const Delivery *) b)->id;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * A channel dropped after its rule: its deliveries are dead.  Cheap enough
 * for every evaluation, not for every claim (it reads every due row).
 */
void
outbox_bury_orphans(void)
{
	if (alert_spi_execute(ORPHANS_SQL, 0, NULL, NULL, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark the deliveries of dropped channels dead");
}

/*
 * Claim up to max due deliveries; those ready to send are copied to *out
 * (in cxt), in the order of their ids, those that cannot be sent to
 * refused[*nrefused] (refused needs room for max results).  Returns the
 * number ready to send.
 */
int
outbox_claim(Delivery **out, int max, DeliveryResult *refused, int *nrefused, MemoryContext cxt)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(max)};
	SPITupleTable *claimed;
	Delivery   *all;
	bool	   *ok;
	DeliveryResult *failed;
	uint64		nclaimed;
	int			n = 0;
	uint64		i;

	*nrefused = 0;
	if (alert_spi_execute(CLAIM_SQL, 1, types, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim deliveries");
	/* loading the bodies runs more statements: keep the claimed rows */
	claimed = SPI_tuptable;
	nclaimed = SPI_processed;
	all = MemoryContextAllocZero(cxt, sizeof(Delivery) * Max(nclaimed, 1));
	for (i = 0; i < nclaimed; i++)
	{
		HeapTuple	t = claimed->vals[i];
		TupleDesc	td = claimed->tupdesc;
		Delivery   *dl = &all[i];
		bool		isnull;

		dl->id = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
		dl->channel = copy_value(t, td, 2, cxt);
		dl->kind = copy_value(t, td, 3, cxt);
		dl->target = copy_value(t, td, 4, cxt);
		dl->secret = copy_value(t, td, 5, cxt);
		dl->idempotency_key = copy_value(t, td, 6, cxt);
		dl->attempts = DatumGetInt32(SPI_getbinval(t, td, 7, &isnull));
		dl->mail_from = copy_value(t, td, 8, cxt);
		dl->mail_to = copy_value(t, td, 9, cxt);
		dl->username = copy_value(t, td, 10, cxt);
		dl->starttls = DatumGetBool(SPI_getbinval(t, td, 11, &isnull));
		dl->insecure = DatumGetBool(SPI_getbinval(t, td, 12, &isnull));
		dl->timeout_ms = DatumGetInt32(SPI_getbinval(t, td, 13, &isnull));
	}
	SPI_freetuptable(claimed);
	qsort(all, nclaimed, sizeof(Delivery), delivery_id_cmp);
	ok = MemoryContextAllocZero(cxt, sizeof(bool) * Max(nclaimed, 1));
	failed = MemoryContextAllocZero(cxt, sizeof(DeliveryResult) * Max(nclaimed, 1));
	load_bodies(all, (int) nclaimed, ok, failed, cxt);
	*out = MemoryContextAllocZero(cxt, sizeof(Delivery) * Max(nclaimed, 1));
	for (i = 0; i < nclaimed; i++)
		if (ok[i])
			(*out)[n++] = all[i];
		else
			refused[(*nrefused)++] = failed[i];
	return n;
}

/* Record outcomes (see RECORD_SQL), all of them in one statement. */
void
outbox_record(const DeliveryResult *results, int n, int max_attempts)
{
	Oid			types[7] = {INT8ARRAYOID, BOOLARRAYOID, BOOLARRAYOID, INT4ARRAYOID, INT4ARRAYOID,
	TEXTARRAYOID, INT4OID};
	ArrayBuildState *col[6];
	Oid			elem[6] = {INT8OID, BOOLOID, BOOLOID, INT4OID, INT4OID, TEXTOID};
	Datum		args[7];
	int			i;

	if (n <= 0)
		return;
	for (i = 0; i < 6; i++)
		col[i] = initArrayResult(elem[i], CurrentMemoryContext, false);
	for (i = 0; i < n; i++)
	{
		const DeliveryResult *r = &results[i];

		accumArrayResult(col[0], Int64GetDatum(r->id), false, INT8OID, CurrentMemoryContext);
		accumArrayResult(col[1], BoolGetDatum(r->ok), false, BOOLOID, CurrentMemoryContext);
		accumArrayResult(col[2], BoolGetDatum(r->permanent), false, BOOLOID, CurrentMemoryContext);
		accumArrayResult(col[3], Int32GetDatum((int32) r->http_status), r->http_status <= 0,
						 INT4OID, CurrentMemoryContext);
		accumArrayResult(col[4], Int32GetDatum(r->retry_after_s), false, INT4OID, CurrentMemoryContext);
		accumArrayResult(col[5], r->ok ? (Datum) 0 : CStringGetTextDatum(r->error), r->ok,
						 TEXTOID, CurrentMemoryContext);
	}
	for (i = 0; i < 6; i++)
		args[i] = makeArrayResult(col[i], CurrentMemoryContext);
	args[6] = Int32GetDatum(max_attempts);
	if (alert_spi_execute(RECORD_SQL, 7, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record delivery outcomes");
}

/* Seconds until the next delivery falls due (or a large number). */
double
outbox_seconds_to_next(void)
{
	bool		isnull;
	Datum		d;

	if (alert_spi_execute(NEXT_DUE_SQL, 0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the outbox");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 1e9 : DatumGetFloat8(d);
}
