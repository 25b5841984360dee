/*-------------------------------------------------------------------------
 * src/alert/alert_notify.c
 *		LISTEN/NOTIFY deliveries: a payload that always fits NOTIFY, sent
 *		in a subtransaction of its own.
 *
 * NOTIFY refuses payloads of BLCKSZ - NAMEDATALEN - 128 bytes or more
 * (async.c; 7,999 bytes of text with 8 kB pages; the channel name has its
 * own NAMEDATALEN in that sum).  A notification that long (one Java stack
 * trace in an alert is enough) is replaced by a compact JSON pointer:
 *
 *   {"truncated": true, "delivery_id": 42, "idempotency_key": "...",
 *    "group_key": "...", "status": "firing", "rule": "...", "bytes": 23456,
 *    "alerts": [{"fingerprint": "..."}, ...], "alerts_omitted": 0}
 *
 * and the listener reads the full notification from smartetl.delivery
 * (column notification) by delivery_id.  Any other NOTIFY error is rolled
 * back with its subtransaction and recorded on that delivery alone.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "alert/alert.h"

/* Longest payload NOTIFY takes, in bytes without the terminating NUL. */
#define NOTIFY_MAX_PAYLOAD (BLCKSZ - NAMEDATALEN - 128 - 1)

/* Room kept for the closing of the alerts array and "alerts_omitted". */
#define POINTER_TAIL_RESERVE 48

/*
 * The notification's identity, from the delivery row when there is one
 * ($1), else from the body ($2, smartetl.test_channel).
 */
#define POINTER_SQL \
	"SELECT n->>'group_key', n->>'status', n->'rule'->>'name'," \
	"  ARRAY(SELECT a->>'fingerprint' FROM pg_catalog.jsonb_array_elements(" \
	"          CASE WHEN pg_catalog.jsonb_typeof(n->'alerts') = 'array' THEN n->'alerts' ELSE '[]' END)" \
	"        WITH ORDINALITY AS x(a, ord) ORDER BY x.ord)" \
	" FROM (SELECT coalesce((SELECT d.notification FROM smartetl.delivery d WHERE d.delivery_id = $1)," \
	"                       $2::pg_catalog.jsonb) AS n) s"

/*
 * Append v as a JSON string of at most max_out bytes, cut on a character
 * boundary (escaping can make text up to six times longer).
 */
static void
append_clipped(StringInfo s, const char *v, int max_out)
{
	StringInfoData e;
	int			len;

	if (v == NULL)
	{
		appendStringInfoString(s, "null");
		return;
	}
	initStringInfo(&e);
	len = pg_mbcliplen(v, strlen(v), max_out - 2);
	for (;;)
	{
		char	   *part = pnstrdup(v, len);

		resetStringInfo(&e);
		escape_json(&e, part);
		pfree(part);
		if (e.len <= max_out || len == 0)
			break;
		len = pg_mbcliplen(v, len, len / 2);
	}
	appendBinaryStringInfo(s, e.data, e.len);
	pfree(e.data);
}

static char *
column(int col)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

/* The compact pointer to a notification too long for NOTIFY. */
static char *
notify_pointer(const Delivery *d)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(d->id), d->body ? CStringGetTextDatum(d->body) : (Datum) 0};
	char		nulls[2] = {' ', d->body ? ' ' : 'n'};
	StringInfoData s;
	Datum	   *fps = NULL;
	bool	   *fpnulls = NULL;
	int			nfps = 0;
	int			shown = 0;
	int			i;
	bool		isnull;
	Datum		arr;

	if (alert_spi_execute(POINTER_SQL, 2, types, args, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read notification of delivery " INT64_FORMAT, d->id);

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"truncated\": true, \"delivery_id\": ");
	if (d->id > 0)
		appendStringInfo(&s, INT64_FORMAT, d->id);
	else
		appendStringInfoString(&s, "null");
	/* output budgets that leave at least 4,000 bytes for fingerprints */
	appendStringInfoString(&s, ", \"idempotency_key\": ");
	append_clipped(&s, d->idempotency_key, 300);
	appendStringInfoString(&s, ", \"group_key\": ");
	append_clipped(&s, column(1), 2000);
	appendStringInfoString(&s, ", \"status\": ");
	append_clipped(&s, column(2), 40);
	appendStringInfoString(&s, ", \"rule\": ");
	append_clipped(&s, column(3), 400);
	appendStringInfo(&s, ", \"bytes\": " INT64_FORMAT ", \"alerts\": [", d->body_bytes);

	arr = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &fps, &fpnulls, &nfps);
	for (i = 0; i < nfps; i++)
	{
		StringInfoData e;

		if (fpnulls[i])
			continue;
		initStringInfo(&e);
		appendStringInfoString(&e, shown > 0 ? ", {\"fingerprint\": " : "{\"fingerprint\": ");
		append_clipped(&e, TextDatumGetCString(fps[i]), 200);
		appendStringInfoChar(&e, '}');
		if (s.len + e.len + POINTER_TAIL_RESERVE > NOTIFY_MAX_PAYLOAD)
			break;
		appendBinaryStringInfo(&s, e.data, e.len);
		pfree(e.data);
		shown++;
	}
	appendStringInfo(&s, "], \"alerts_omitted\": %d}", nfps - i);
	if (s.len > NOTIFY_MAX_PAYLOAD)
		elog(ERROR, "notification pointer of %d bytes does not fit NOTIFY", s.len);
	return s.data;
}

/* The payload to NOTIFY for d: its body when it fits, else a pointer. */
char *
notify_payload(const Delivery *d)
{
	if (d->body != NULL && strlen(d->body) <= NOTIFY_MAX_PAYLOAD)
		return d->body;
	return notify_pointer(d);
}

/*
 * NOTIFY d's channel in a subtransaction: an error is rolled back and
 * recorded in *r, and the caller's transaction (the other deliveries)
 * goes on.  The notification itself leaves when that transaction
 * commits.  A statement timeout or cancel is not a delivery's failure and
 * is re-thrown.
 */
bool
notify_send(const Delivery *d, DeliveryResult *r)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	memset(r, 0, sizeof(*r));
	r->id = d->id;
	r->retry_after_s = -1;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Async_Notify(d->target, notify_payload(d));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		r->ok = true;
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
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		delivery_error(r, "could not notify: %s", edata->message);
		/* a bad channel name stays bad */
		r->permanent = edata->sqlerrcode == ERRCODE_INVALID_PARAMETER_VALUE;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return r->ok;
}
