/*-------------------------------------------------------------------------
 * src/smartetl.c
 *		Module magic and _PG_init: the GUCs, and, when loaded through
 *		shared_preload_libraries, the alert workers and their shared memory
 *		and the intake worker.  Without preloading, everything but the
 *		workers still works.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "alert/alert.h"
#include "ingest/ingest.h"
#include "intake/intake.h"
#include "smartetl.h"
#include "template/miner.h"
#include "template/template.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *smartetl_databases = NULL;
int			smartetl_naptime_s = 10;
int			smartetl_http_timeout_ms = 10000;
int			smartetl_max_attempts = 8;
int			smartetl_max_in_flight = 64;
int			smartetl_evaluation_chunk = 500;
char	   *smartetl_allowed_hosts = NULL;
int			smartetl_rule_timeout_ms = 5000;
int			smartetl_worker_statement_timeout_ms = 60000;
char	   *smartetl_intake_database = NULL;
char	   *smartetl_http_listen = NULL;
char	   *smartetl_http_tls_cert = NULL;
char	   *smartetl_http_tls_key = NULL;
int			smartetl_http_max_body_kb = 16 * 1024;
int			smartetl_http_max_connections = 16384;
int			smartetl_http_idle_timeout_s = 15;
int			smartetl_http_request_timeout_s = 60;
int			smartetl_http_max_pending_kb = 256 * 1024;
int			smartetl_follow_interval_ms = 250;
char	   *smartetl_public_url = NULL;
int			smartetl_ack_link_ttl_s = SECS_PER_DAY;

static shmem_request_hook_type prev_shmem_request_hook = NULL;

/* smartetl.public_url: empty, or an http(s) URL without spaces, quotes or angle brackets */
static bool
check_public_url(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || v[0] == '\0')
		return true;
	if ((pg_strncasecmp(v, "https://", 8) != 0 && pg_strncasecmp(v, "http://", 7) != 0) ||
		strpbrk(v, " \t\r\n\"'<>\\?#") != NULL || strlen(v) > 1000)
	{
		GUC_check_errdetail("smartetl.public_url must be empty or an http:// or https:// URL without spaces, quotes, query or fragment, for example https://smartetl.example.com.");
		return false;
	}
	return true;
}

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
smartetl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	alert_shmem_request();
	template_shmem_request();
}

static void
smartetl_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	alert_shmem_startup();
	template_shmem_startup();
}

static void
define_gucs(void)
{
	DefineCustomStringVariable("smartetl.database",
							   "Databases to run an alert worker in (comma-separated).",
							   NULL, &smartetl_databases, "", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.naptime",
							"Seconds between alert evaluations when nothing wakes the worker.",
							NULL, &smartetl_naptime_s, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_timeout",
							"Timeout of one notification request.",
							NULL, &smartetl_http_timeout_ms, 10000, 100, 600000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.max_attempts",
							"Attempts before a delivery is dead.",
							NULL, &smartetl_max_attempts, 8, 1, 100, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.max_in_flight",
							"Notification requests in flight at once per worker.",
							NULL, &smartetl_max_in_flight, 64, 1, 1000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.evaluation_chunk",
							"Changed pipelines the alert worker evaluates per transaction (0 = all at once).",
							"A burst is evaluated in several passes, each committed, so that the first "
							"notifications are sent while the rest is evaluated.",
							&smartetl_evaluation_chunk, 500, 0, INT_MAX, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartetl.allowed_hosts",
							   "Hosts notifications may be sent to (comma-separated; * = any).",
							   "Empty: none.  Set in postgresql.conf only.",
							   &smartetl_allowed_hosts, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.template_limit",
							"Templates the miner learns before new messages go to the catch-all template.",
							"Bounds the memory of every backend's cached miner.",
							&smartetl_template_limit, 50000, 1, MINER_MAX_CLUSTERS - 1, PGC_SUSET, 0,
							NULL, NULL, NULL);
	/* superusers only: the limit protects the worker from the rules admins write */
	DefineCustomIntVariable("smartetl.rule_timeout",
							"Time limit of one sql alert rule's query.",
							"The query is canceled and the error recorded on its rule.",
							&smartetl_rule_timeout_ms, 5000, 10, 3600000, PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* a background worker never goes through postgres.c, which arms statement_timeout */
	DefineCustomIntVariable("smartetl.worker_statement_timeout",
							"Longest run of one SQL statement of the alert worker (0 = no limit).",
							"A statement that runs longer is cancelled, logged, and retried in a later cycle.",
							&smartetl_worker_statement_timeout_ms, 60000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/*
	 * The window of accepted run and log times (src/ingest/time_window.c).
	 * Superuser-only (grantable with GRANT SET ON PARAMETER): a writer who
	 * could widen it could again store a success dated years ahead, which
	 * hides that pipeline's failures from alerting.
	 */
	DefineCustomStringVariable("smartetl.min_timestamp",
							   "Earliest run or log event time that ingestion accepts.",
							   "A time without a zone is read in the session's TimeZone.",
							   &smartetl_min_timestamp_text, "1970-01-01 00:00:00+00", PGC_SUSET, 0,
							   ingest_check_min_timestamp, ingest_assign_min_timestamp, NULL);
	DefineCustomIntVariable("smartetl.max_future",
							"How far ahead of now a run or log event time may lie.",
							NULL, &smartetl_max_future_s, SECS_PER_DAY, 0, INT_MAX, PGC_SUSET,
							GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("smartetl.intake_database",
							   "Database of the intake worker (HTTP intake and followed files).",
							   "Empty: the first database of smartetl.database; no worker when both are empty.",
							   &smartetl_intake_database, "", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartetl.http_listen",
							   "Address (host:port) the HTTP intake listens on; empty = off.",
							   NULL, &smartetl_http_listen, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartetl.http_tls_cert",
							   "PEM certificate (chain) file of the HTTP intake; empty = plain HTTP.",
							   NULL, &smartetl_http_tls_cert, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("smartetl.http_tls_key",
							   "PEM private key file of the HTTP intake (mode 0600).",
							   NULL, &smartetl_http_tls_key, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_max_body",
							"Largest request body the HTTP intake accepts (larger: 413).",
							NULL, &smartetl_http_max_body_kb, 16 * 1024, 1, 1024 * 1024 - 1,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_max_connections",
							"Open connections the HTTP intake accepts at once (more are closed).",
							NULL, &smartetl_http_max_connections, 16384, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_idle_timeout",
							"Seconds a connection of the HTTP intake may stay silent before it is closed.",
							NULL, &smartetl_http_idle_timeout_s, 15, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_request_timeout",
							"Seconds a client may take to send one request body.",
							NULL, &smartetl_http_request_timeout_s, 60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.http_max_pending",
							"Request bodies held in memory at once before new requests get 429.",
							NULL, &smartetl_http_max_pending_kb, 256 * 1024, 1024, 16 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("smartetl.follow_interval",
							"How often the intake worker looks for new lines in followed files.",
							NULL, &smartetl_follow_interval_ms, 250, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	/*
	 * Acknowledge links (src/intake/ack_link.c, 86_oncall_ack_link.sql).
	 * Superuser-only: the URL goes into every notification, and a role that
	 * could set it could send on-call staff to a host of its choosing.
	 */
	DefineCustomStringVariable("smartetl.public_url",
							   "Public base URL of the HTTP intake for acknowledge links in notifications; empty = no links.",
							   "For example https://smartetl.example.com (links are <url>/ack/<token>).",
							   &smartetl_public_url, "", PGC_SUSET, 0, check_public_url, NULL, NULL);
	DefineCustomIntVariable("smartetl.ack_link_ttl",
							"How long an acknowledge link in a notification stays valid.",
							NULL, &smartetl_ack_link_ttl_s, SECS_PER_DAY, 60, 30 * SECS_PER_DAY,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	MarkGUCPrefixReserved("smartetl");
}

void
_PG_init(void)
{
	define_gucs();
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = smartetl_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = smartetl_shmem_startup;
	alert_worker_register();
	intake_worker_register();
}
