/*-------------------------------------------------------------------------
 * src/intake/intake.h
 *		The intake worker: an HTTP endpoint for OpenLineage events and the
 *		other ingest formats, and followed server-side files.
 *
 * One background worker (intake_worker.c) runs in one database.  Its main
 * loop waits on a WaitEventSet holding the latch, postmaster death and the
 * epoll descriptor of the HTTP daemon (http_server.c, libmicrohttpd in
 * "external polling" mode, so every callback runs on this one thread: the
 * backend is not thread-safe).  Complete requests are queued and their
 * connections suspended; the loop then stores the whole queue in one
 * transaction, one subtransaction per request under the API key's role
 * (http_request.c), commits, and only then answers: a 2xx means committed.
 * Followed files (follow.c) are polled by the same loop and stored the same
 * way, each file's position committed with its rows.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_INTAKE_H
#define SMARTETL_INTAKE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/* GUCs (smartetl.c) */
extern char *smartetl_intake_database;
extern char *smartetl_http_listen;
extern char *smartetl_http_tls_cert;
extern char *smartetl_http_tls_key;
extern int	smartetl_http_max_body_kb;
extern int	smartetl_http_max_connections;
extern int	smartetl_http_idle_timeout_s;
extern int	smartetl_http_request_timeout_s;
extern int	smartetl_http_max_pending_kb;
extern int	smartetl_follow_interval_ms;
extern char *smartetl_public_url;
extern int	smartetl_ack_link_ttl_s;

/* What a request asks for. */
typedef enum IntakeRoute
{
	ROUTE_NONE,
	ROUTE_HEALTH,				/* GET /api/v1/health */
	ROUTE_LINEAGE,				/* POST /api/v1/lineage */
	ROUTE_INGEST,				/* POST /api/v1/ingest/{format} */
	ROUTE_ENVELOPE,				/* POST /api/v1/ingest with {"format", "payload", "options"} */
	ROUTE_ACK					/* GET (page) or POST (acknowledge) /ack/<token> */
} IntakeRoute;

/*
 * A complete request waiting to be stored, and its answer.  Allocated in
 * its own memory context (cxt), deleted when the connection is done with it.
 */
typedef struct IntakeRequest
{
	MemoryContext cxt;
	void	   *conn;			/* struct MHD_Connection */
	IntakeRoute route;
	char	   *format;			/* ROUTE_INGEST: from the path; ROUTE_ACK: the token */
	bool		confirm;		/* ROUTE_ACK: a POST (acknowledge), not a GET */
	char	   *options_json;	/* query parameters as a JSON object */
	char	   *token;			/* the bearer token (wiped after use) */
	StringInfoData body;
	size_t		declared_length;	/* Content-Length, or 0 */
	TimestampTz started;
	bool		queued;			/* waiting for the database */
	bool		answered;		/* status and answer are final */
	bool		oversize;		/* body went over the limit */

	/* the answer */
	int			status;
	char	   *answer;			/* JSON, or HTML when html */
	bool		html;
	int			retry_after_s;	/* > 0: send Retry-After */
	bool		auth_challenge; /* 401: send WWW-Authenticate */
	struct IntakeRequest *next_queued;
} IntakeRequest;

/* api_key.c */
#define API_TOKEN_PREFIX "smartetl_"
extern bool api_token_parse(const char *token, int64 *key_id, const char **secret);
extern void api_key_digest(const uint8 *salt, size_t saltlen, const char *secret, uint8 *out32);
extern bool api_key_equal(const uint8 *a, const uint8 *b, size_t len);

/* http_server.c (the only file that includes microhttpd.h) */
extern bool http_server_start(void);
extern void http_server_stop(void);
extern bool http_server_running(void);
extern int	http_server_epoll_fd(void);
extern long http_server_timeout_ms(void);
extern void http_server_run(void);
extern IntakeRequest *http_server_take_queue(int max_requests, size_t max_bytes);
extern void http_server_answer(IntakeRequest *req);
extern int	http_server_pending(void);
extern void http_server_set_health(bool ok, const char *why);

/* http_request.c: store queued requests (inside a transaction) */
extern void intake_store_requests(IntakeRequest *list);
extern void intake_set_answer(IntakeRequest *req, int status, const char *json);
extern void intake_set_error(IntakeRequest *req, int status, const char *code,
							 const char *message, const char *detail, const char *hint);

/* ack_link.c: the largest body of a POST /ack/<token> (a form with a name) */
#define ACK_MAX_BODY 4096

/* follow.c: followed files */
extern void follow_poll(bool reload_sources);
extern void follow_forget_all(void);

/* intake_worker.c */
extern void intake_worker_register(void);

#endif							/* SMARTETL_INTAKE_H */
