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
 * statement_timeout is normally armed.  One delivery can never fail the
 * claim of the others: its body is loaded in a subtransaction of its own,
 * and a body that cannot be loaded or is too large is recorded as that
 * delivery's failure.
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
 * Record an outcome: sent; or retrying after Retry-After or an exponential
 * backoff (1 s, 2 s, 4 s ... capped at 10 min) with +-50 % jitter so that
 * many failed deliveries do not return at once; or dead after max_attempts
 * ($7) or a permanent failure, keeping the last error.
 */
#define RECORD_SQL \
	"UPDATE smartetl.delivery SET last_status = $4, last_error = $6, " \
	"status = CASE WHEN $2 THEN 'sent' WHEN $3 OR attempts >= $7 THEN 'dead' ELSE 'retrying' END, " \
	"sent_at = CASE WHEN $2 THEN pg_catalog.now() END, " \
	"next_attempt_at = CASE WHEN $2 OR $3 THEN next_attempt_at " \
	"  WHEN $5 >= 0 THEN pg_catalog.now() + pg_catalog.make_interval(secs => least($5, 3600)) " \
	"  ELSE pg_catalog.now() + pg_catalog.make_interval(secs => least(600, 2 ^ (attempts - 1)) " \
	"                                                     * (0.5 + pg_catalog.random())) END " \
	"WHERE delivery_id = $1 AND status = 'sending'"

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
	bool		notify = strcmp(d->kind, "notify") == 0;
	int64		limit = notify ? BLCKSZ : ALERT_MAX_BODY_BYTES;
	volatile bool ok = false;

	memset(failed, 0, sizeof(*failed));
	failed->id = d->id;
	failed->retry_after_s = -1;

	/* one delivery's error (out of memory, a broken payload) stays its own */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			types[3] = {INT8OID, INT8OID, TEXTOID};
		Datum		args[3] = {Int64GetDatum(d->id), Int64GetDatum(limit), CStringGetTextDatum(d->kind)};
		bool		isnull;

		if (alert_spi_execute(BODY_SQL, 3, types, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the payload of delivery " INT64_FORMAT, d->id);
		if (SPI_processed == 1)
		{
			HeapTuple	t = SPI_tuptable->vals[0];
			TupleDesc	td = SPI_tuptable->tupdesc;

			d->content_type = copy_value(t, td, 1, cxt);
			d->body = copy_value(t, td, 2, cxt);
			d->body_bytes = DatumGetInt64(SPI_getbinval(t, td, 3, &isnull));
			d->html = copy_value(t, td, 4, cxt);
			d->subject = copy_value(t, td, 5, cxt);
			if (d->body_bytes <= limit || notify)
				ok = true;
			else
			{
				delivery_error(failed, "payload of " INT64_FORMAT " bytes exceeds the limit of %d bytes",
							   d->body_bytes, ALERT_MAX_BODY_BYTES);
				failed->permanent = true;
			}
		}
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
 * Claim up to max due deliveries; those ready to send are copied to *out
 * (in cxt), those that cannot be sent to refused[*nrefused] (refused needs
 * room for max results).  Returns the number ready to send.
 */
int
outbox_claim(Delivery **out, int max, DeliveryResult *refused, int *nrefused, MemoryContext cxt)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(max)};
	SPITupleTable *claimed;
	uint64		nclaimed;
	int			n = 0;
	uint64		i;

	*nrefused = 0;
	if (alert_spi_execute(ORPHANS_SQL, 0, NULL, NULL, NULL, false, 0) != SPI_OK_UPDATE ||
		alert_spi_execute(CLAIM_SQL, 1, types, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim deliveries");
	/* loading the bodies runs more statements: keep the claimed rows */
	claimed = SPI_tuptable;
	nclaimed = SPI_processed;
	*out = MemoryContextAllocZero(cxt, sizeof(Delivery) * Max(nclaimed, 1));
	for (i = 0; i < nclaimed; i++)
	{
		HeapTuple	t = claimed->vals[i];
		TupleDesc	td = claimed->tupdesc;
		Delivery   *dl = &(*out)[n];
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
		if (load_body(dl, &refused[*nrefused], cxt))
			n++;
		else
			(*nrefused)++;
	}
	SPI_freetuptable(claimed);
	return n;
}

/* Record outcomes (see RECORD_SQL). */
void
outbox_record(const DeliveryResult *results, int n, int max_attempts)
{
	Oid			types[7] = {INT8OID, BOOLOID, BOOLOID, INT4OID, INT4OID, TEXTOID, INT4OID};
	int			i;

	for (i = 0; i < n; i++)
	{
		const DeliveryResult *r = &results[i];
		Datum		args[7];
		char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		args[0] = Int64GetDatum(r->id);
		args[1] = BoolGetDatum(r->ok);
		args[2] = BoolGetDatum(r->permanent);
		args[3] = Int32GetDatum((int32) r->http_status);
		nulls[3] = r->http_status > 0 ? ' ' : 'n';
		args[4] = Int32GetDatum(r->retry_after_s);
		args[5] = CStringGetTextDatum(r->error);
		nulls[5] = r->ok ? 'n' : ' ';
		args[6] = Int32GetDatum(max_attempts);
		if (alert_spi_execute(RECORD_SQL, 7, types, args, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record a delivery outcome");
	}
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
