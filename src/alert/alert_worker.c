/*-------------------------------------------------------------------------
 * src/alert/alert_worker.c
 *		The alert worker: one background worker per database named in
 *		smartetl.database, registered from shared_preload_libraries.
 *
 * Each cycle: wait on the latch (set at commit by ingest and run changes,
 * alert_wake.c) or until the naptime or the next due delivery; record the
 * outcomes of finished transfers; when woken or every naptime, run
 * smartetl.evaluate_alerts(); claim due deliveries and start sending them.
 * Transactions are short and never span network waits: claiming marks rows
 * 'sending' and commits, outcomes are written in a later transaction, and
 * rows left 'sending' by a crash are retried at start-up with the same
 * idempotency key.  An error in a cycle is logged and the cycle retried
 * after the naptime; SIGHUP reloads the configuration, SIGTERM ends the
 * worker, and the postmaster restarts it 10 s after a crash.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "alert/alert.h"

PGDLLEXPORT void smartetl_alert_worker_main(Datum main_arg);

#define MAX_WORKERS 32
#define POLL_MS 200

/* Register one worker per database of smartetl.database. */
void
alert_worker_register(void)
{
	char	   *list = pstrdup(smartetl_databases ? smartetl_databases : "");
	char	   *tok,
			   *save;
	int			n = 0;

	for (tok = strtok_r(list, ", ", &save); tok && n < MAX_WORKERS; tok = strtok_r(NULL, ", ", &save), n++)
	{
		BackgroundWorker w;

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = 10;
		snprintf(w.bgw_library_name, BGW_MAXLEN, "smartetl");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "smartetl_alert_worker_main");
		snprintf(w.bgw_name, BGW_MAXLEN, "smartetl alert worker for %s", tok);
		snprintf(w.bgw_type, BGW_MAXLEN, "smartetl alert worker");
		strlcpy(w.bgw_extra, tok, BGW_EXTRALEN);
		RegisterBackgroundWorker(&w);
	}
	pfree(list);
}

/* State of one worker between cycles. */
typedef struct WorkerState
{
	MemoryContext cxt;
	SendSet    *sends;
	TimestampTz last_evaluation;
	TimestampTz next_due;
	bool		recovered;		/* stale 'sending' rows reset */
} WorkerState;

static void
begin_xact(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static bool
extension_installed(void)
{
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'smartetl'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the smartetl extension");
	return SPI_processed > 0;
}

/* Write finished transfers' outcomes, if any. */
static void
record_finished(WorkerState *ws)
{
	DeliveryResult results[64];
	int			n;

	while ((n = send_set_collect(ws->sends, results, lengthof(results))) > 0)
	{
		begin_xact("smartetl: recording delivery outcomes");
		outbox_record(results, n, smartetl_max_attempts);
		end_xact();
	}
}

/* LISTEN/NOTIFY deliveries complete in the claiming transaction. */
static void
notify_now(Delivery *d, DeliveryResult *r)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(d->target), CStringGetTextDatum(d->body ? d->body : "")};

	memset(r, 0, sizeof(*r));
	r->id = d->id;
	r->retry_after_s = -1;
	r->ok = SPI_execute_with_args("SELECT pg_catalog.pg_notify($1, $2)", 2, types, args, NULL,
								  false, 0) == SPI_OK_SELECT;
}

/*
 * One evaluation and claiming pass.  Deliveries are claimed and LISTEN
 * ones notified in one transaction; the rest start sending after commit.
 */
static void
evaluate_and_claim(WorkerState *ws, bool evaluate)
{
	MemoryContext batch = AllocSetContextCreate(ws->cxt, "smartetl claim", ALLOCSET_DEFAULT_SIZES);
	int			room = smartetl_max_in_flight - send_set_in_flight(ws->sends);
	Delivery   *claimed = NULL;
	DeliveryResult *refused = MemoryContextAllocZero(batch, sizeof(DeliveryResult) * Max(room, 1));
	int			nclaimed = 0,
				nrefused = 0,
				i;

	begin_xact("smartetl: evaluating alerts");
	if (extension_installed())
	{
		if (!ws->recovered)
		{
			outbox_reset_stale();
			ws->recovered = true;
		}
		if (evaluate && SPI_execute("SELECT smartetl.evaluate_alerts()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smartetl.evaluate_alerts() failed");
		if (room > 0)
			nclaimed = outbox_claim(&claimed, room, batch);
		for (i = 0; i < nclaimed; i++)
			if (strcmp(claimed[i].kind, "notify") == 0)
				notify_now(&claimed[i], &refused[nrefused++]);
		outbox_record(refused, nrefused, smartetl_max_attempts);
		nrefused = 0;
		ws->next_due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   (int64) Min(outbox_seconds_to_next(), 86400.0) * 1000);
	}
	end_xact();
	if (evaluate)
		ws->last_evaluation = GetCurrentTimestamp();

	for (i = 0; i < nclaimed; i++)
		if (strcmp(claimed[i].kind, "notify") != 0 &&
			!send_set_add(ws->sends, &claimed[i], &refused[nrefused]))
			nrefused++;
	if (nrefused > 0)
	{
		begin_xact("smartetl: recording refused deliveries");
		outbox_record(refused, nrefused, smartetl_max_attempts);
		end_xact();
	}
	MemoryContextDelete(batch);
}

/* Wait for the latch, the naptime or the next due delivery. */
static bool
wait_for_work(WorkerState *ws)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_eval = TimestampTzPlusMilliseconds(ws->last_evaluation, smartetl_naptime_s * 1000L);
	long		wait_ms = Max(10, TimestampDifferenceMilliseconds(now, Min(next_eval, ws->next_due)));
	int			rc;

	if (send_set_in_flight(ws->sends) > 0)
	{
		send_set_poll(ws->sends, POLL_MS);
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 0, PG_WAIT_EXTENSION);
	}
	else
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	return (rc & WL_LATCH_SET) != 0;
}

/* One cycle, with errors logged and survived rather than fatal. */
static void
run_cycle(WorkerState *ws, bool woken)
{
	MemoryContext cycle = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();
	volatile bool evaluate = woken ||
		now >= TimestampTzPlusMilliseconds(ws->last_evaluation, smartetl_naptime_s * 1000L);

	PG_TRY();
	{
		record_finished(ws);
		if (evaluate || now >= ws->next_due)
			evaluate_and_claim(ws, evaluate);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cycle);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		/* try again after the naptime, not in a tight loop */
		ws->last_evaluation = now;
		ws->next_due = TimestampTzPlusMilliseconds(now, smartetl_naptime_s * 1000L);
	}
	PG_END_TRY();
}

void
smartetl_alert_worker_main(Datum main_arg)
{
	char		dbname[BGW_EXTRALEN];
	WorkerState ws;

	memcpy(dbname, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname("smartetl alert worker");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "could not initialise libcurl");
	alert_worker_attach(MyDatabaseId);
	ereport(LOG, (errmsg("smartetl alert worker started for database \"%s\"", dbname)));

	memset(&ws, 0, sizeof(ws));
	ws.cxt = AllocSetContextCreate(TopMemoryContext, "smartetl alert worker", ALLOCSET_DEFAULT_SIZES);
	ws.sends = send_set_create(ws.cxt);
	ws.last_evaluation = 0;
	ws.next_due = 0;
	for (;;)
	{
		bool		woken = wait_for_work(&ws);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		run_cycle(&ws, woken);
	}
}
