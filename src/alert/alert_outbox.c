/*-------------------------------------------------------------------------
 * src/alert/alert_outbox.c
 *		The delivery outbox as the worker sees it: claim due deliveries,
 *		record outcomes, recover after a crash.  Every function runs inside
 *		a short transaction of its own, with SPI connected by the caller;
 *		none of them waits on the network.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "alert/alert.h"

/* A claimed delivery waits on its predecessor of the same channel and group. */
#define CLAIM_SQL \
	"WITH due AS (" \
	"  SELECT d.delivery_id FROM smartetl.delivery d" \
	"  WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= now()" \
	"    AND NOT EXISTS (SELECT 1 FROM smartetl.delivery o" \
	"                    WHERE o.channel = d.channel AND o.group_key = d.group_key" \
	"                      AND o.delivery_id < d.delivery_id" \
	"                      AND o.status IN ('pending', 'retrying', 'sending'))" \
	"  ORDER BY d.delivery_id LIMIT $1 FOR UPDATE OF d SKIP LOCKED)" \
	" UPDATE smartetl.delivery d SET status = 'sending', attempts = d.attempts + 1" \
	" FROM due, smartetl.channel c" \
	" WHERE d.delivery_id = due.delivery_id AND c.name = d.channel" \
	" RETURNING d.delivery_id, d.channel, c.kind, c.target, c.secret," \
	"  d.payload->>'content_type'," \
	"  CASE WHEN c.kind = 'email' THEN d.payload->>'text'" \
	"       WHEN jsonb_typeof(d.payload->'body') = 'string' THEN d.payload->>'body'" \
	"       ELSE (d.payload->'body')::text END," \
	"  d.payload->>'html', d.payload->>'subject', d.idempotency_key, d.attempts," \
	"  c.options->>'from'," \
	"  (SELECT string_agg(a, E'\\n') FROM jsonb_array_elements_text(" \
	"     CASE WHEN jsonb_typeof(c.options->'to') = 'array' THEN c.options->'to' ELSE '[]' END) a)," \
	"  c.options->>'username', coalesce((c.options->>'starttls')::boolean, false)," \
	"  coalesce((c.options->>'insecure_skip_verify')::boolean, false)," \
	"  coalesce((c.options->>'timeout_ms')::integer, 0)"

/* After a crash or kill, what was being sent is sent again (same key). */
void
outbox_reset_stale(void)
{
	if (SPI_execute("UPDATE smartetl.delivery SET status = 'retrying', "
					"last_error = 'interrupted while sending (worker restarted)' "
					"WHERE status = 'sending'", false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reset interrupted deliveries");
}

static char *
copy_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* Claim up to max due deliveries; their copies live in cxt. */
int
outbox_claim(Delivery **out, int max, MemoryContext cxt)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(max)};
	int			i;

	/* a channel dropped after its rule: nothing will ever send its deliveries */
	if (SPI_execute("UPDATE smartetl.delivery SET status = 'dead', last_error = 'channel no longer exists' "
					"WHERE status IN ('pending', 'retrying') "
					"AND NOT EXISTS (SELECT 1 FROM smartetl.channel c WHERE c.name = channel)",
					false, 0) != SPI_OK_UPDATE ||
		SPI_execute_with_args(CLAIM_SQL, 1, types, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim deliveries");
	*out = MemoryContextAllocZero(cxt, sizeof(Delivery) * Max(SPI_processed, 1));
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Delivery   *dl = &(*out)[i];
		bool		isnull;

		dl->id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		dl->channel = copy_value(t, d, 2, cxt);
		dl->kind = copy_value(t, d, 3, cxt);
		dl->target = copy_value(t, d, 4, cxt);
		dl->secret = copy_value(t, d, 5, cxt);
		dl->content_type = copy_value(t, d, 6, cxt);
		dl->body = copy_value(t, d, 7, cxt);
		dl->html = copy_value(t, d, 8, cxt);
		dl->subject = copy_value(t, d, 9, cxt);
		dl->idempotency_key = copy_value(t, d, 10, cxt);
		dl->attempts = DatumGetInt32(SPI_getbinval(t, d, 11, &isnull));
		dl->mail_from = copy_value(t, d, 12, cxt);
		dl->mail_to = copy_value(t, d, 13, cxt);
		dl->username = copy_value(t, d, 14, cxt);
		dl->starttls = DatumGetBool(SPI_getbinval(t, d, 15, &isnull));
		dl->insecure = DatumGetBool(SPI_getbinval(t, d, 16, &isnull));
		dl->timeout_ms = DatumGetInt32(SPI_getbinval(t, d, 17, &isnull));
	}
	return (int) SPI_processed;
}

/*
 * Record outcomes: sent; or retrying after Retry-After or an exponential
 * backoff (1 s, 2 s, 4 s ... capped at 10 min) with +-50 % jitter so that
 * many failed deliveries do not return at once; or dead after max_attempts
 * or a permanent failure, keeping the last error.
 */
void
outbox_record(const DeliveryResult *results, int n, int max_attempts)
{
	Oid			types[6] = {INT8OID, BOOLOID, BOOLOID, INT4OID, INT4OID, TEXTOID};
	int			i;

	for (i = 0; i < n; i++)
	{
		const DeliveryResult *r = &results[i];
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		args[0] = Int64GetDatum(r->id);
		args[1] = BoolGetDatum(r->ok);
		args[2] = BoolGetDatum(r->permanent);
		args[3] = Int32GetDatum((int32) r->http_status);
		nulls[3] = r->http_status > 0 ? ' ' : 'n';
		args[4] = Int32GetDatum(r->retry_after_s);
		args[5] = CStringGetTextDatum(r->error);
		nulls[5] = r->ok ? 'n' : ' ';
		if (SPI_execute_with_args(psprintf(
			"UPDATE smartetl.delivery SET last_status = $4, last_error = $6, "
			"status = CASE WHEN $2 THEN 'sent' WHEN $3 OR attempts >= %d THEN 'dead' ELSE 'retrying' END, "
			"sent_at = CASE WHEN $2 THEN now() END, "
			"next_attempt_at = CASE WHEN $2 OR $3 THEN next_attempt_at "
			"  WHEN $5 >= 0 THEN now() + make_interval(secs => least($5, 3600)) "
			"  ELSE now() + make_interval(secs => least(600, 2 ^ (attempts - 1)) * (0.5 + random())) END "
			"WHERE delivery_id = $1 AND status = 'sending'", max_attempts),
			6, types, args, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record a delivery outcome");
	}
}

/* Seconds until the next delivery falls due (or a large number). */
double
outbox_seconds_to_next(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 "
					"FROM smartetl.delivery WHERE status IN ('pending', 'retrying')",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the outbox");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 1e9 : DatumGetFloat8(d);
}
