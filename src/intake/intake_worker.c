/*-------------------------------------------------------------------------
 * src/intake/intake_worker.c
 *		The intake worker: serves the HTTP intake (when smartetl.http_listen
 *		is set) and follows the files of smartetl.source, in one database.
 *
 * Registered from shared_preload_libraries when smartetl.intake_database
 * (or else the first database of smartetl.database) names a database.
 * One loop, one thread:
 *   wait (latch, postmaster death, the HTTP daemon's epoll descriptor, or
 *   the next timeout of libmicrohttpd or of file polling)
 *   -> MHD_run(): read requests, queue the complete ones
 *   -> store the queue in one transaction, then answer (http_request.c)
 *   -> every smartetl.follow_interval: followed files (follow.c)
 * SIGHUP reloads the settings and restarts the listener if its address,
 * TLS files or limits changed; SIGTERM ends the worker; after a crash the
 * postmaster restarts it after 5 s.  Errors in a cycle are logged and the
 * cycle goes on: no request can stop the worker.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "alert/alert.h"
#include "intake/intake.h"

PGDLLEXPORT void smartetl_intake_worker_main(Datum main_arg);

/* requests stored per transaction: bounds the memory and the time of one batch */
#define BATCH_MAX_REQUESTS 512
#define BATCH_MAX_BYTES (64 * 1024 * 1024)
/* how often the list of sources is re-read */
#define SOURCE_RELOAD_MS 1000
/* how soon to retry a listener that could not start */
#define LISTEN_RETRY_MS 10000

/* The database of the intake worker: intake_database, else the first alert database. */
static char *
intake_database(void)
{
	char	   *list;
	char	   *tok;

	if (smartetl_intake_database && smartetl_intake_database[0])
		return pstrdup(smartetl_intake_database);
	list = pstrdup(smartetl_databases ? smartetl_databases : "");
	tok = strtok(list, ", ");
	return tok ? pstrdup(tok) : NULL;
}

void
intake_worker_register(void)
{
	BackgroundWorker w;
	char	   *db = intake_database();

	if (db == NULL)
		return;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "smartetl");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "smartetl_intake_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "smartetl intake worker for %s", db);
	snprintf(w.bgw_type, BGW_MAXLEN, "smartetl intake worker");
	strlcpy(w.bgw_extra, db, BGW_EXTRALEN);
	RegisterBackgroundWorker(&w);
}

/* The settings whose change restarts the listener. */
static char *
listener_settings(void)
{
	return psprintf("%s|%s|%s|%d|%d", smartetl_http_listen ? smartetl_http_listen : "",
					smartetl_http_tls_cert ? smartetl_http_tls_cert : "",
					smartetl_http_tls_key ? smartetl_http_tls_key : "",
					smartetl_http_max_connections, smartetl_http_idle_timeout_s);
}

/*
 * Each connection is a descriptor: allow as many as the hard limit permits
 * (the usual soft limit of 1024 would cap the listener far below its
 * setting), keeping room for the backend's own files.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t		want = (rlim_t) smartetl_http_max_connections + 2048;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = Min(want, rl.rlim_max);
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		ereport(LOG,
				(errmsg("smartetl intake: open files are limited to %lu, fewer than smartetl.http_max_connections needs",
						(unsigned long) rl.rlim_cur),
				 errhint("Raise the hard limit of open files (LimitNOFILE) of the PostgreSQL service.")));
}

static WaitEventSet *
make_wait_set(void)
{
	WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3);

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (http_server_running())
		AddWaitEventToSet(set, WL_SOCKET_READABLE, http_server_epoll_fd(), NULL, NULL);
	return set;
}

void
smartetl_intake_worker_main(Datum main_arg)
{
	char		dbname[BGW_EXTRALEN];
	MemoryContext loop_cxt;
	WaitEventSet *wait_set;
	char	   *listening_with = NULL;	/* listener_settings() of the running listener */
	TimestampTz next_listen_try = 0;
	TimestampTz next_follow = 0;
	TimestampTz next_source_reload = 0;

	memcpy(dbname, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname("smartetl intake worker");

	/*
	 * A 2xx promises the data survives a crash: flush the commit record
	 * before answering, whatever the server's synchronous_commit.  The
	 * search path of smartetl.ingest(), and no long waits on a pipeline an
	 * open SQL transaction holds (the request gets 503 and is retried).
	 */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "2s", PGC_SUSET, PGC_S_OVERRIDE);
	raise_fd_limit();
	/*
	 * No MHD_stop_daemon() at exit: a batch's connections may be suspended
	 * then, which libmicrohttpd forbids; the sockets close with the process.
	 */
	ereport(LOG, (errmsg("smartetl intake worker started for database \"%s\"", dbname)));

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "smartetl intake loop", ALLOCSET_DEFAULT_SIZES);
	wait_set = make_wait_set();
	for (;;)
	{
		WaitEvent	events[3];
		TimestampTz now = GetCurrentTimestamp();
		long		timeout;
		long		mhd_timeout;
		bool		want_http;

		MemoryContextSwitchTo(loop_cxt);

		/* (re)start or stop the listener as the settings say */
		want_http = smartetl_http_listen && smartetl_http_listen[0];
		if (listening_with && (!want_http || strcmp(listening_with, listener_settings()) != 0))
		{
			http_server_stop();
			pfree(listening_with);
			listening_with = NULL;
			FreeWaitEventSet(wait_set);
			wait_set = make_wait_set();
			ereport(LOG, (errmsg("smartetl intake: listener stopped")));
		}
		if (want_http && listening_with == NULL && now >= next_listen_try)
		{
			raise_fd_limit();
			if (http_server_start())
			{
				listening_with = MemoryContextStrdup(TopMemoryContext, listener_settings());
				FreeWaitEventSet(wait_set);
				wait_set = make_wait_set();
			}
			else
				next_listen_try = TimestampTzPlusMilliseconds(now, LISTEN_RETRY_MS);
		}

		timeout = Max(0, TimestampDifferenceMilliseconds(now, next_follow));
		mhd_timeout = http_server_timeout_ms();
		if (mhd_timeout >= 0)
			timeout = Min(timeout, mhd_timeout);
		if (http_server_pending() > 0)
			timeout = 0;
		(void) WaitEventSetWait(wait_set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_listen_try = 0;
		}

		http_server_run();
		if (http_server_pending() > 0)
		{
			IntakeRequest *batch = http_server_take_queue(BATCH_MAX_REQUESTS, BATCH_MAX_BYTES);
			IntakeRequest *r,
					   *next;

			intake_store_requests(batch);
			for (r = batch; r; r = next)
			{
				next = r->next_queued;
				http_server_answer(r);
			}
			/* send the answers now; the next loop takes the next batch at once */
			http_server_run();
		}

		now = GetCurrentTimestamp();
		if (now >= next_follow)
		{
			bool		reload = now >= next_source_reload;

			follow_poll(reload);
			if (reload)
				next_source_reload = TimestampTzPlusMilliseconds(now, SOURCE_RELOAD_MS);
			next_follow = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), smartetl_follow_interval_ms);
		}
		MemoryContextReset(loop_cxt);
	}
}
