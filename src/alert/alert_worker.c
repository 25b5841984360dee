/*-------------------------------------------------------------------------
 * src/alert/alert_worker.c
 *		The alert worker: one background worker per database named in
 *		smartetl.database, registered from shared_preload_libraries.
 *
 * Each cycle: wait on the latch (set at commit by ingest and run changes,
 * alert_wake.c) or until the naptime, the next due delivery or the next
 * time the clock makes an evaluation due (a pipeline deadline, a group's
 * group_wait ...: smartetl.next_alert_due()); record the
 * outcomes of finished transfers; when woken or every naptime, run
 * smartetl.evaluate_alerts(); claim due deliveries and start sending them.
 * A burst is evaluated in chunks of smartetl.evaluation_chunk changed
 * pipelines, one transaction each, a chunk per cycle: the deliveries of the
 * first chunk are claimed and sent while the next ones are evaluated.
 *
 * Transactions are short and never span network waits, and each step has
 * its own, so that no step's failure can undo another's work: the
 * evaluation commits the deliveries it queued; the claim marks rows
 * 'sending' and commits; LISTEN/NOTIFY deliveries are notified in a third
 * transaction, one subtransaction each, with their outcomes (a NOTIFY that
 * fails, even at commit, fails only the notify deliveries); outcomes of
 * HTTP and SMTP transfers are written in a later transaction.  Rows left
 * 'sending' by a crash are retried at start-up with the same idempotency
 * key.
 *
 * Hardening: the session's search_path is pg_catalog, pg_temp; every
 * statement is limited by smartetl.worker_statement_timeout; a step that
 * fails (timeout included) is logged and retried after the naptime, and
 * the worker goes on; per-cycle memory lives in a context reset at the
 * start of every cycle.  DDL is never blocked: each transaction first
 * takes a share lock on the extension without waiting, so DROP EXTENSION
 * waits at most for the worker's current transaction and the worker backs
 * off while it runs (and lock_timeout bounds any other lock wait).  When
 * the extension is dropped, transfers in flight are abandoned and the
 * worker sleeps until CREATE EXTENSION.  SIGHUP reloads the configuration,
 * SIGTERM ends the worker, and the postmaster restarts it 10 s after a
 * crash.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "alert/alert.h"
#include "locks.h"

PGDLLEXPORT void smartetl_alert_worker_main(Datum main_arg);

#define MAX_WORKERS 32
#define POLL_MS 200

/* Give up a lock wait this soon: the worker retries, DDL must not wait on it. */
#define WORKER_LOCK_TIMEOUT "500ms"

/* Someone else is evaluating: look again this soon. */
#define BUSY_RETRY_MS 250

/* Empty claims are not repeated more often than this. */
#define MIN_CLAIM_INTERVAL_MS 200

/*
 * smartetl.evaluate_alerts() takes this lock for its whole run (see
 * 88_alert_eval.sql); the worker only tries it, and leaves the evaluation
 * to whoever holds it rather than waiting.
 */
#define EVALUATION_TRY_LOCK_SQL \
	"SELECT pg_catalog.pg_try_advisory_xact_lock(" CppAsString2(LOCK_ALERT_EVALUATION_CLASS) ", " \
	CppAsString2(LOCK_ALERT_EVALUATION_SUB) ")"
#define EVALUATE_SQL "SELECT smartetl.evaluate_alerts()"
/*
 * A chunked pass (smartetl.evaluation_chunk): at most about that many
 * changed pipelines per transaction, the rest left in smartetl.alert_backlog
 * for the next cycles, which come at once.  A database still at 0.1.0 has
 * neither.
 */
#define EVALUATE_CHUNK_EXISTS_SQL \
	"SELECT pg_catalog.to_regprocedure('smartetl._evaluate_alerts(integer)') IS NOT NULL"
#define EVALUATE_CHUNK_SQL "SELECT smartetl._evaluate_alerts($1)"
#define BACKLOG_SQL "SELECT EXISTS (SELECT FROM smartetl.alert_backlog)"

/*
 * Milliseconds until the clock makes the next evaluation due (a deadline,
 * a group's group_wait ...), from smartetl.next_alert_due(), which a
 * database still at 0.1.0 does not have.
 */
#define NEXT_DUE_EXISTS_SQL \
	"SELECT pg_catalog.to_regprocedure('smartetl.next_alert_due(timestamp with time zone)') IS NOT NULL"
#define NEXT_DUE_SQL \
	"SELECT pg_catalog.ceil(pg_catalog.date_part('epoch', d OPERATOR(pg_catalog.-) " \
	"pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000) FROM smartetl.next_alert_due() d"

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
	MemoryContext cxt;			/* lives as long as the worker */
	MemoryContext cycle_cxt;	/* reset at the start of every cycle */
	SendSet    *sends;
	DeliveryResult *unrecorded; /* outcomes not written yet, kept across
								 * failed cycles */
	int			nunrecorded;
	int			unrecorded_cap;
	Oid			ext_oid;		/* the extension as last seen */
	bool		absent_logged;
	bool		recovered;		/* stale 'sending' rows reset */
	bool		recorded;		/* outcomes written in this cycle */
	bool		evaluated;		/* an evaluation was due in this cycle */
	bool		plan_evaluation;	/* evaluated: ask when the next is due */
	TimestampTz next_evaluation;
	TimestampTz next_due;		/* the next delivery falls due */
	TimestampTz next_record;	/* after a failure to record outcomes */
} WorkerState;

typedef void (*WorkerStep) (WorkerState *ws);

static TimestampTz
in_ms(long ms)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
}

/* Keep an outcome until it is written. */
static void
keep_outcome(WorkerState *ws, const DeliveryResult *r)
{
	if (ws->nunrecorded == ws->unrecorded_cap)
	{
		ws->unrecorded_cap = Max(64, ws->unrecorded_cap * 2);
		ws->unrecorded = ws->unrecorded
			? repalloc(ws->unrecorded, sizeof(DeliveryResult) * ws->unrecorded_cap)
			: MemoryContextAlloc(ws->cxt, sizeof(DeliveryResult) * ws->unrecorded_cap);
	}
	ws->unrecorded[ws->nunrecorded++] = *r;
}

/*
 * The extension was dropped or created (or re-created) since the last
 * transaction: what the worker held about the old outbox is void.
 */
static void
extension_changed(WorkerState *ws, Oid ext)
{
	if (OidIsValid(ws->ext_oid))
	{
		if (send_set_in_flight(ws->sends) > 0 || ws->nunrecorded > 0)
			ereport(LOG,
					(errmsg("smartetl alert worker abandons %d transfers in flight and %d unrecorded outcomes",
							send_set_in_flight(ws->sends), ws->nunrecorded),
					 errdetail("The smartetl extension was dropped.")));
		send_set_cancel(ws->sends);
		ws->nunrecorded = 0;
	}
	if (!OidIsValid(ext) && !ws->absent_logged)
	{
		ereport(LOG,
				(errmsg("smartetl alert worker waits: extension \"smartetl\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION smartetl.")));
		ws->absent_logged = true;
	}
	if (OidIsValid(ext))
		ws->absent_logged = false;
	ws->ext_oid = ext;
	ws->recovered = false;
}

/*
 * Start a transaction with SPI connected, or return false (no transaction
 * open) when the extension is absent or someone holds it exclusively
 * (DROP EXTENSION): the worker then backs off instead of queueing behind
 * DDL.  The share lock taken here, first in every worker transaction,
 * makes DROP EXTENSION wait for the worker's current transaction before it
 * locks anything else, so the two can never deadlock.
 */
static bool
begin_xact(WorkerState *ws, const char *activity)
{
	Oid			ext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, activity);
	ext = get_extension_oid("smartetl", true);
	if (OidIsValid(ext) &&
		!ConditionalLockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock))
	{
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(ws->cycle_cxt);
		elog(DEBUG1, "smartetl alert worker backs off: the extension is locked");
		return false;
	}
	/* dropped just before we locked it? */
	if (OidIsValid(ext) && get_extension_oid("smartetl", true) != ext)
		ext = InvalidOid;
	if (ext != ws->ext_oid || (!OidIsValid(ext) && !ws->absent_logged))
		extension_changed(ws, ext);
	if (!OidIsValid(ext))
	{
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(ws->cycle_cxt);
		return false;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	return true;
}

static void
end_xact(WorkerState *ws)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(ws->cycle_cxt);
}

/*
 * After an error: copy it into the cycle's memory, roll back whatever
 * transaction was open (subtransactions included) and disarm the
 * statement timeout.
 */
static ErrorData *
abort_after_error(WorkerState *ws)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(ws->cycle_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	alert_statement_timeout_disarm();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(ws->cycle_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return edata;
}

/* Log a failed step; the worker goes on. */
static void
report_failure(ErrorData *edata, const char *what)
{
	/* lock waits given up on purpose are part of staying out of DDL's way */
	int			elevel = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ? LOG : WARNING;

	ereport(elevel,
			(errcode(edata->sqlerrcode),
			 errmsg("smartetl alert worker could not %s", what),
			 errdetail_internal("%s%s%s%s%s", edata->message,
								edata->detail ? " " : "", edata->detail ? edata->detail : "",
								edata->context ? "\nContext: " : "", edata->context ? edata->context : ""),
			 edata->sqlerrcode == ERRCODE_QUERY_CANCELED
			 ? errhint("smartetl.worker_statement_timeout is %d ms; the worker tries again in %d s.",
					   smartetl_worker_statement_timeout_ms, smartetl_naptime_s)
			 : errhint("The worker tries again in %d s.", smartetl_naptime_s)));
}

/* Run one step; an error is logged and rolled back, and false returned. */
static bool
run_step(WorkerState *ws, WorkerStep step, const char *what)
{
	volatile bool ok = true;

	PG_TRY();
	{
		step(ws);
	}
	PG_CATCH();
	{
		report_failure(abort_after_error(ws), what);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Write the outcomes kept so far, finished transfers' included. */
static void
record_outcomes(WorkerState *ws)
{
	DeliveryResult results[64];
	int			n;
	int			i;

	while ((n = send_set_collect(ws->sends, results, lengthof(results))) > 0)
		for (i = 0; i < n; i++)
			keep_outcome(ws, &results[i]);
	if (ws->nunrecorded == 0)
		return;
	if (!begin_xact(ws, "smartetl: recording delivery outcomes"))
		return;
	outbox_record(ws->unrecorded, ws->nunrecorded, smartetl_max_attempts);
	end_xact(ws);
	ws->nunrecorded = 0;
	ws->recorded = true;
}

/* Run smartetl.evaluate_alerts(), unless another session is at it. */
static void
evaluate(WorkerState *ws)
{
	bool		isnull;

	if (!begin_xact(ws, "smartetl: evaluating alerts"))
		return;
	if (alert_spi_execute(EVALUATION_TRY_LOCK_SQL, 0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not take the evaluation lock");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		bool		chunked = false;
		bool		more = false;

		if (smartetl_evaluation_chunk > 0 &&
			alert_spi_execute(EVALUATE_CHUNK_EXISTS_SQL, 0, NULL, NULL, NULL, true, 1) == SPI_OK_SELECT)
			chunked = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (chunked)
		{
			Oid			argtypes[1] = {INT4OID};
			Datum		args[1] = {Int32GetDatum(smartetl_evaluation_chunk)};

			if (alert_spi_execute(EVALUATE_CHUNK_SQL, 1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "smartetl._evaluate_alerts() failed");
			/* pipelines left for the next passes: the next cycle evaluates again, after its claim */
			if (alert_spi_execute(BACKLOG_SQL, 0, NULL, NULL, NULL, false, 1) == SPI_OK_SELECT)
				more = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		else if (alert_spi_execute(EVALUATE_SQL, 0, NULL, NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smartetl.evaluate_alerts() failed");
		if (more)
			ws->next_evaluation = GetCurrentTimestamp();
		else
		{
			/* when the clock makes the next one due: asked once the claimed deliveries are on their way */
			ws->plan_evaluation = true;
		}
	}
	else
		ws->next_evaluation = in_ms(BUSY_RETRY_MS);
	end_xact(ws);
}

/* Wake for the next deadline, group timer ... on time, not at the next naptime. */
static void
plan_evaluation(WorkerState *ws)
{
	bool		isnull;

	ws->plan_evaluation = false;
	if (!begin_xact(ws, "smartetl: planning the next evaluation"))
		return;
	if (alert_spi_execute(NEXT_DUE_EXISTS_SQL, 0, NULL, NULL, NULL, true, 1) == SPI_OK_SELECT &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
		alert_spi_execute(NEXT_DUE_SQL, 0, NULL, NULL, NULL, true, 1) == SPI_OK_SELECT)
	{
		Datum		ms = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			ws->next_evaluation = Min(ws->next_evaluation,
									  in_ms((long) Min(Max(DatumGetFloat8(ms), 0.0), 86400000.0) + 1));
	}
	end_xact(ws);
}

/*
 * Notify the claimed LISTEN/NOTIFY deliveries in a transaction of their
 * own, recording each outcome with it.  If that transaction fails (NOTIFY's
 * queue is full at commit, a timeout), nothing was notified and every one
 * of them is kept as a failed attempt, to be retried.
 */
static void
notify_claimed(WorkerState *ws, Delivery *claimed, int nclaimed)
{
	DeliveryResult *results = MemoryContextAllocZero(ws->cycle_cxt, sizeof(DeliveryResult) * Max(nclaimed, 1));
	int			i;
	int			n = 0;

	for (i = 0; i < nclaimed; i++)
		if (strcmp(claimed[i].kind, "notify") == 0)
			n++;
	if (n == 0)
		return;

	PG_TRY();
	{
		if (begin_xact(ws, "smartetl: notifying LISTEN channels"))
		{
			n = 0;
			for (i = 0; i < nclaimed; i++)
				if (strcmp(claimed[i].kind, "notify") == 0)
					notify_send(&claimed[i], &results[n++]);
			outbox_record(results, n, smartetl_max_attempts);
			end_xact(ws);
		}
		else if (OidIsValid(ws->ext_oid))
		{
			/* the extension is locked: try them again later */
			for (i = 0; i < nclaimed; i++)
				if (strcmp(claimed[i].kind, "notify") == 0)
				{
					DeliveryResult r = {.id = claimed[i].id, .retry_after_s = -1};

					delivery_error(&r, "not notified: the extension was locked");
					keep_outcome(ws, &r);
				}
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata = abort_after_error(ws);

		for (i = 0; i < nclaimed; i++)
			if (strcmp(claimed[i].kind, "notify") == 0)
			{
				DeliveryResult r = {.id = claimed[i].id, .retry_after_s = -1};

				delivery_error(&r, "could not notify: %s", edata->message);
				keep_outcome(ws, &r);
			}
		report_failure(edata, "notify LISTEN channels");
	}
	PG_END_TRY();
}

/* Start sending the claimed HTTP and SMTP deliveries; no transaction needed. */
static void
start_sending(WorkerState *ws, Delivery *claimed, int nclaimed)
{
	int			i;

	for (i = 0; i < nclaimed; i++)
	{
		DeliveryResult r;

		if (strcmp(claimed[i].kind, "notify") == 0)
			continue;
		PG_TRY();
		{
			if (!send_set_add(ws->sends, &claimed[i], &r))
				keep_outcome(ws, &r);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* claimed rows must get an outcome, or they stay 'sending' */
			MemoryContextSwitchTo(ws->cycle_cxt);
			edata = CopyErrorData();
			FlushErrorState();
			memset(&r, 0, sizeof(r));
			r.id = claimed[i].id;
			r.retry_after_s = -1;
			delivery_error(&r, "could not start sending: %s", edata->message);
			keep_outcome(ws, &r);
		}
		PG_END_TRY();
	}
}

/*
 * Claim due deliveries (the claim commits first), notify the LISTEN ones,
 * start sending the others, and write the outcomes known so far.
 */
static void
claim_and_send(WorkerState *ws)
{
	int			room = smartetl_max_in_flight - send_set_in_flight(ws->sends);
	Delivery   *claimed = NULL;
	DeliveryResult *refused;
	int			nclaimed = 0;
	int			nrefused = 0;

	if (!begin_xact(ws, "smartetl: claiming deliveries"))
	{
		/* extension absent or being dropped: sleep, do not poll */
		ws->next_due = in_ms(smartetl_naptime_s * 1000L);
		return;
	}
	if (!ws->recovered)
		outbox_reset_stale();
	if (ws->evaluated || !ws->recovered)
		outbox_bury_orphans();
	if (room > 0)
	{
		refused = MemoryContextAllocZero(ws->cycle_cxt, sizeof(DeliveryResult) * room);
		nclaimed = outbox_claim(&claimed, room, refused, &nrefused, ws->cycle_cxt);
		outbox_record(refused, nrefused, smartetl_max_attempts);
	}
	ws->next_due = in_ms((long) Max(Min(outbox_seconds_to_next(), 86400.0) * 1000, MIN_CLAIM_INTERVAL_MS));
	end_xact(ws);
	ws->recovered = true;

	notify_claimed(ws, claimed, nclaimed);
	start_sending(ws, claimed, nclaimed);
	record_outcomes(ws);
}

/* Wait for the latch, the naptime or the next due delivery. */
static bool
wait_for_work(WorkerState *ws)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = Max(10, TimestampDifferenceMilliseconds(now, Min(ws->next_evaluation, ws->next_due)));
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

/*
 * One cycle.  Each step fails alone: a failed evaluation does not stop
 * the claim of what is already queued, and a step that failed waits for
 * the naptime rather than retrying in a tight loop.
 */
static void
run_cycle(WorkerState *ws, bool woken)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		evaluating = woken || now >= ws->next_evaluation;

	MemoryContextReset(ws->cycle_cxt);
	MemoryContextSwitchTo(ws->cycle_cxt);
	ws->recorded = false;
	ws->evaluated = evaluating;

	/* outcomes first: a delivery's successor in its group may now be claimed */
	if (now >= ws->next_record && !run_step(ws, record_outcomes, "record delivery outcomes"))
		ws->next_record = in_ms(smartetl_naptime_s * 1000L);
	if (evaluating)
	{
		ws->next_evaluation = in_ms(smartetl_naptime_s * 1000L);
		run_step(ws, evaluate, "evaluate alerts");
	}
	if (evaluating || now >= ws->next_due || ws->recorded)
	{
		if (!run_step(ws, claim_and_send, "claim and send deliveries"))
			ws->next_due = in_ms(smartetl_naptime_s * 1000L);
	}
	if (ws->plan_evaluation)
		run_step(ws, plan_evaluation, "plan the next evaluation");
}

/*
 * Settings of the worker's session, over whatever the database or role
 * sets: a search_path where nothing a user creates comes first, a short
 * lock_timeout, and transactions that can write and never fail to
 * serialize.
 */
static void
pin_session_settings(void)
{
	alert_pin_search_path();
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
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
	pin_session_settings();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "could not initialise libcurl");
	alert_worker_attach(MyDatabaseId);
	ereport(LOG, (errmsg("smartetl alert worker started for database \"%s\"", dbname)));

	memset(&ws, 0, sizeof(ws));
	ws.cxt = AllocSetContextCreate(TopMemoryContext, "smartetl alert worker", ALLOCSET_DEFAULT_SIZES);
	ws.cycle_cxt = AllocSetContextCreate(ws.cxt, "smartetl alert cycle", ALLOCSET_DEFAULT_SIZES);
	ws.sends = send_set_create(ws.cxt);
	ws.ext_oid = InvalidOid;
	for (;;)
	{
		bool		woken = wait_for_work(&ws);

		/* a cancel between statements has nothing to cancel (as when idle in postgres.c) */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		run_cycle(&ws, woken);
		alert_worker_publish_cycle();
	}
}
