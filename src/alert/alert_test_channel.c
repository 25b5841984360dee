/*-------------------------------------------------------------------------
 * src/alert/alert_test_channel.c
 *		smartetl.test_channel(name) RETURNS jsonb: send a test notification
 *		through a channel now and report what happened.
 *
 * The test notification is built by smartetl._test_notification() and
 * rendered by the channel's payload builder, exactly as the worker would
 * send it, then sent through the same code (alert_send.c, alert_notify.c)
 * while the caller waits, at most the channel's timeout.  Nothing is
 * written to the outbox.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "alert/alert.h"

PG_FUNCTION_INFO_V1(smartetl_test_channel);

/* The channel and a rendered test payload, shaped like a claimed delivery. */
#define TEST_DELIVERY_SQL \
	"WITH n AS (SELECT smartetl._test_notification(c.name) AS n, c.* FROM smartetl.channel c WHERE c.name = $1)," \
	" p AS (SELECT smartetl._payload(kind, n, options) AS payload, n.* FROM n)" \
	" SELECT 0::int8, name, kind, target, secret, payload->>'content_type'," \
	"  CASE WHEN kind = 'email' THEN payload->>'text'" \
	"       WHEN jsonb_typeof(payload->'body') = 'string' THEN payload->>'body'" \
	"       ELSE (payload->'body')::text END," \
	"  payload->>'html', payload->>'subject', n->>'idempotency_key', 1, options->>'from'," \
	"  (SELECT string_agg(a, E'\\n') FROM jsonb_array_elements_text(" \
	"     CASE WHEN jsonb_typeof(options->'to') = 'array' THEN options->'to' ELSE '[]' END) a)," \
	"  options->>'username'," \
	"  coalesce(pg_catalog.lower(options->>'starttls') IN ('true', 't', 'on', 'yes', '1'), false)," \
	"  coalesce(pg_catalog.lower(options->>'insecure_skip_verify') IN ('true', 't', 'on', 'yes', '1'), false)," \
	"  CASE WHEN options->>'timeout_ms' ~ '^\\s*[0-9]{1,9}\\s*$' THEN (options->>'timeout_ms')::integer ELSE 0 END" \
	" FROM p"

static char *
value(int col)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

static bool
bool_value(int col)
{
	bool		isnull;

	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull));
}

/* The test delivery, its strings allocated in cxt (they outlive SPI_finish). */
static Delivery *
load_test_delivery(const char *name, MemoryContext cxt)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	Delivery   *d = MemoryContextAllocZero(cxt, sizeof(Delivery));

	if (SPI_execute_with_args(TEST_DELIVERY_SQL, 1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read channel");
	MemoryContextSwitchTo(cxt);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", name)));
	d->channel = value(2);
	d->kind = value(3);
	d->target = value(4);
	d->secret = value(5);
	d->content_type = value(6);
	d->body = value(7);
	d->body_bytes = d->body ? strlen(d->body) : 0;
	d->html = value(8);
	d->subject = value(9);
	d->idempotency_key = value(10);
	d->attempts = 1;
	d->mail_from = value(12);
	d->mail_to = value(13);
	d->username = value(14);
	d->starttls = bool_value(15);
	d->insecure = bool_value(16);
	d->timeout_ms = atoi(value(17));
	return d;
}

/* {"ok", "kind", "status", "elapsed_ms", "error"} */
static Datum
outcome_jsonb(const DeliveryResult *r, long elapsed_ms, const char *kind)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"ok\": %s, \"kind\": ", r->ok ? "true" : "false");
	escape_json(&s, kind);
	if (r->http_status > 0)
		appendStringInfo(&s, ", \"status\": %ld", r->http_status);
	else
		appendStringInfoString(&s, ", \"status\": null");
	appendStringInfo(&s, ", \"elapsed_ms\": %ld, \"error\": ", elapsed_ms);
	if (r->ok)
		appendStringInfoString(&s, "null");
	else
		escape_json(&s, r->error);
	appendStringInfoChar(&s, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}

/* Send d over HTTP or SMTP and wait for the outcome in *r. */
static void
send_now(Delivery *d, DeliveryResult *r)
{
	SendSet    *set;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "could not initialise libcurl");
	set = send_set_create(CurrentMemoryContext);
	/* libcurl's handles are freed also when the caller cancels */
	PG_TRY();
	{
		if (send_set_add(set, d, r))
		{
			while (send_set_in_flight(set) > 0)
			{
				CHECK_FOR_INTERRUPTS();
				send_set_poll(set, 100);
			}
			send_set_collect(set, r, 1);
		}
	}
	PG_FINALLY();
	{
		send_set_destroy(set);
	}
	PG_END_TRY();
}

Datum
smartetl_test_channel(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz start = GetCurrentTimestamp();
	DeliveryResult r;
	Delivery   *d;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	d = load_test_delivery(name, caller);
	memset(&r, 0, sizeof(r));
	if (strcmp(d->kind, "notify") == 0)
		notify_send(d, &r);
	else
		send_now(d, &r);
	SPI_finish();
	PG_RETURN_DATUM(outcome_jsonb(&r, (long) (TimestampDifferenceMilliseconds(start, GetCurrentTimestamp())),
								  d->kind));
}
