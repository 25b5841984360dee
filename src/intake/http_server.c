/*-------------------------------------------------------------------------
 * src/intake/http_server.c
 *		The HTTP side of the intake worker, on libmicrohttpd (the only
 *		file that includes microhttpd.h).
 *
 * Why libmicrohttpd: it is packaged by Debian (libmicrohttpd12, 0.9.75),
 * mature (GNU, used by systemd-journal-remote, Kodi, ...), parses HTTP/1.1
 * fully (chunked bodies, 100-continue, pipelining, header limits), speaks
 * TLS through GnuTLS, and -- what decides it -- can be driven entirely from
 * the application's own event loop ("external polling").  The backend is
 * not thread-safe, so the daemon runs without any thread: the worker's
 * WaitEventSet watches the daemon's epoll descriptor and calls MHD_run(),
 * and all callbacks below run on the worker's only thread.  epoll (not
 * select) is what lets thousands of idle connections cost nothing.
 *
 * A request is checked as soon as its headers are in (route, method, bearer
 * token syntax, content type, declared length, saturation), so refusals
 * never read the body.  A complete body is queued and its connection
 * suspended; the worker stores the queue (http_request.c), sets each
 * answer, and resumes the connection, whose handler then sends the answer.
 * Nothing here may raise an error into libmicrohttpd (a longjmp through its
 * stack would corrupt it): each callback catches errors and closes the
 * connection instead.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <microhttpd.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "smartetl.h"
#include "ingest/ingest.h"
#include "intake/intake.h"

#define BODY_CHUNK_MIN 8192
/* more requests than this waiting for the database: answer 429 */
#define MAX_QUEUED_REQUESTS 20000

static struct MHD_Daemon *mhd = NULL;
static MemoryContext http_cxt = NULL;	/* parent of every request's context */
static char *tls_key = NULL;
static char *tls_cert = NULL;

static IntakeRequest *queue_head = NULL;
static IntakeRequest *queue_tail = NULL;
static int	queued_requests = 0;
static size_t buffered_bytes = 0;	/* bodies being received or waiting */

static bool health_ok = false;
static char health_why[256] = "starting";

/* Option keys whose query-parameter values are JSON (booleans, numbers, objects). */
static const char *const json_option_keys[] = {
	"header", "dry_run", "max_line_bytes", "columns", "status_map", NULL
};

static size_t
max_body(void)
{
	return (size_t) smartetl_http_max_body_kb * 1024;
}

static size_t
max_pending(void)
{
	return (size_t) smartetl_http_max_pending_kb * 1024;
}

/* An answer in the request's own memory. */
void
intake_set_answer(IntakeRequest *req, int status, const char *json)
{
	req->status = status;
	req->answer = MemoryContextStrdup(req->cxt, json);
	req->answered = true;
}

/* {"error": {"status": ..., "code": ..., "message": ..., "detail": ..., "hint": ...}} */
void
intake_set_error(IntakeRequest *req, int status, const char *code, const char *message,
				 const char *detail, const char *hint)
{
	StringInfoData s;
	MemoryContext old = MemoryContextSwitchTo(req->cxt);

	initStringInfo(&s);
	appendStringInfo(&s, "{\"error\": {\"status\": %d, \"code\": ", status);
	escape_json(&s, code);
	appendStringInfoString(&s, ", \"message\": ");
	escape_json(&s, message);
	if (detail)
	{
		appendStringInfoString(&s, ", \"detail\": ");
		escape_json(&s, detail);
	}
	if (hint)
	{
		appendStringInfoString(&s, ", \"hint\": ");
		escape_json(&s, hint);
	}
	appendStringInfoString(&s, "}}");
	MemoryContextSwitchTo(old);
	req->status = status;
	req->answer = s.data;
	req->answered = true;
	req->html = false;
	if (status == 429 || status == 503)
		req->retry_after_s = 1;
	if (status == 401)
		req->auth_challenge = true;
}

static enum MHD_Result
send_answer(struct MHD_Connection *conn, IntakeRequest *req)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer(strlen(req->answer), req->answer,
										   MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (req->html)
	{
		/* the acknowledge pages: no framing, no script, no token in a Referer */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
		MHD_add_response_header(resp, "Content-Security-Policy",
								"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
		MHD_add_response_header(resp, "X-Robots-Tag", "noindex, nofollow");
	}
	else
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "smartetl/" SMARTETL_VERSION);
	if (req->retry_after_s > 0)
	{
		char		secs[16];

		snprintf(secs, sizeof(secs), "%d", req->retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	if (req->auth_challenge)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								"Bearer realm=\"smartetl\"");
	if (req->status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
								req->route == ROUTE_HEALTH ? "GET, HEAD" :
								req->route == ROUTE_ACK ? "GET, HEAD, POST" : "POST");
	rc = MHD_queue_response(conn, (unsigned int) req->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* Case-insensitive "does s start with prefix". */
static bool
starts_with_ci(const char *s, const char *prefix)
{
	return pg_strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Is the Content-Type acceptable for the route?  JSON routes take
 * application/json; the format routes also take text and JSON-lines types.
 * A charset, if named, must be the database's encoding.  No header is
 * accepted (curl --data-binary sends none with -H 'Content-Type:').
 */
static bool
content_type_ok(IntakeRequest *req, const char *ct, const char **why)
{
	static const char *const text_types[] = {
		"text/plain", "text/csv", "application/x-ndjson", "application/jsonl",
		"application/x-jsonlines", "application/json-seq", "application/octet-stream", NULL
	};
	const char *semi;
	const char *charset;
	size_t		len;
	int			i;
	bool		ok;

	if (ct == NULL)
		return true;
	semi = strchr(ct, ';');
	len = semi ? (size_t) (semi - ct) : strlen(ct);
	while (len > 0 && ct[len - 1] == ' ')
		len--;
	ok = (len == strlen("application/json") && starts_with_ci(ct, "application/json"));
	for (i = 0; !ok && req->route == ROUTE_INGEST && text_types[i]; i++)
		ok = (len == strlen(text_types[i]) && starts_with_ci(ct, text_types[i]));
	if (!ok)
	{
		*why = req->route == ROUTE_INGEST ?
			"Send the payload as text/plain, text/csv, application/json or application/x-ndjson." :
			"Send the body as application/json.";
		return false;
	}
	charset = semi ? strstr(semi, "charset=") : NULL;
	if (charset)
	{
		char		name[64];
		const char *v = charset + strlen("charset=");
		size_t		n = strcspn(v, " ;");

		if (*v == '"')
			v++, n = strcspn(v, "\"");
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, v, n);
		name[n] = '\0';
		if (pg_char_to_encoding(name) != GetDatabaseEncoding())
		{
			*why = psprintf("The body must be encoded in %s.", GetDatabaseEncodingName());
			return false;
		}
	}
	return true;
}

static bool
is_json_option(const char *key)
{
	int			i;

	for (i = 0; json_option_keys[i]; i++)
		if (strcmp(key, json_option_keys[i]) == 0)
			return true;
	return false;
}

/* One query parameter into the options object being built. */
static enum MHD_Result
add_query_option(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	StringInfo	s = (StringInfo) cls;
	char	   *detail;
	int			line;

	if (key == NULL || key[0] == '\0')
		return MHD_YES;
	appendStringInfoString(s, s->len > 1 ? ", " : "");
	escape_json(s, key);
	appendStringInfoString(s, ": ");
	if (is_json_option(key) && (value == NULL || value[0] == '\0'))
		appendStringInfoString(s, "true");
	else if (is_json_option(key) && json_doc_valid((char *) value, strlen(value), &detail, &line))
		appendStringInfoString(s, value);	/* one JSON value, nothing more */
	else
		escape_json(s, value ? value : "");	/* the option check will say what it wants */
	return MHD_YES;
}

/*
 * Where a path leads; ROUTE_NONE for unknown paths.  The format of
 * /api/v1/ingest/{format} is checked by the ingest code itself, but must
 * look like a format name.
 */
static IntakeRoute
route_of(const char *url, char **format)
{
	const char *prefix = "/api/v1/ingest/";
	const char *ack = "/ack/";

	*format = NULL;
	if (strncmp(url, ack, strlen(ack)) == 0)
	{
		const char *t = url + strlen(ack);
		size_t		n = strlen(t);

		/* a token has digits, lower-case hex and dots; anything else is no token */
		*format = (n <= 200 && strspn(t, "0123456789abcdef.") == n) ? pstrdup(t) : pstrdup("");
		return ROUTE_ACK;
	}
	if (strcmp(url, "/api/v1/health") == 0)
		return ROUTE_HEALTH;
	if (strcmp(url, "/api/v1/lineage") == 0)
		return ROUTE_LINEAGE;
	if (strcmp(url, "/api/v1/ingest") == 0)
		return ROUTE_ENVELOPE;
	if (strncmp(url, prefix, strlen(prefix)) == 0)
	{
		const char *f = url + strlen(prefix);
		size_t		n = strspn(f, "abcdefghijklmnopqrstuvwxyz0123456789_");

		if (n > 0 && n <= 32 && f[n] == '\0')
		{
			*format = pstrdup(f);
			return ROUTE_INGEST;
		}
	}
	return ROUTE_NONE;
}

static void
health_answer(IntakeRequest *req)
{
	char	   *json;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	StringInfoData s;

	initStringInfo(&s);
	/*
	 * buffered and settings_loaded_at let a client (and our tests) wait for
	 * an upload to be accounted or a reload to be applied instead of sleeping.
	 */
	appendStringInfo(&s, "{\"status\": \"%s\", \"version\": \"%s\", \"queued\": %d, \"connections\": %u, "
					 "\"buffered\": %zu, \"settings_loaded_at\": \"%s\"",
					 health_ok ? "ok" : "unavailable", SMARTETL_VERSION, queued_requests,
					 info ? info->num_connections : 0, buffered_bytes, timestamptz_to_str(PgReloadTime));
	if (!health_ok)
	{
		appendStringInfoString(&s, ", \"reason\": ");
		escape_json(&s, health_why);
	}
	appendStringInfoChar(&s, '}');
	json = s.data;
	intake_set_answer(req, health_ok ? 200 : 503, json);
	if (!health_ok)
		req->retry_after_s = 5;
}

/*
 * The first call for an acknowledge link: GET and HEAD show the page, POST
 * (with a small form body: the name) acknowledges; both go to the database
 * like an ingest request.  No API key: the link's signature is the
 * credential, checked there (ack_link.c, _ack_link_page).
 */
static void
ack_begin(IntakeRequest *req, struct MHD_Connection *conn, const char *method)
{
	const char *len;

	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		req->confirm = true;
	else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
	{
		intake_set_error(req, 405, "method_not_allowed", "use GET or POST", NULL, NULL);
		return;
	}
	len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (len != NULL && strtoull(len, NULL, 10) > ACK_MAX_BODY)
	{
		intake_set_error(req, 413, "content_too_large", "an acknowledge form is small", NULL, NULL);
		return;
	}
	if (queued_requests >= MAX_QUEUED_REQUESTS || buffered_bytes + ACK_MAX_BODY > max_pending())
	{
		intake_set_error(req, 429, "too_many_requests", "the intake is saturated", NULL,
						 "Retry after the time in Retry-After.");
		return;
	}
	req->body.maxlen = ACK_MAX_BODY + 1;
	req->body.data = palloc(req->body.maxlen);
	resetStringInfo(&req->body);
	buffered_bytes += req->body.maxlen;
}

/*
 * The first call for a request (headers complete): refuse what can be
 * refused without the body, else get ready to receive it.
 */
static void
request_begin(IntakeRequest *req, struct MHD_Connection *conn, const char *url,
			  const char *method)
{
	const char *auth;
	const char *ct;
	const char *len;
	const char *why = NULL;
	int64		key_id;
	const char *secret;
	StringInfoData opts;

	req->route = route_of(url, &req->format);
	if (req->route == ROUTE_NONE)
	{
		intake_set_error(req, 404, "not_found", "no such endpoint", NULL,
						 "The endpoints are POST /api/v1/lineage, POST /api/v1/ingest/{format}, POST /api/v1/ingest and GET /api/v1/health.");
		return;
	}
	if (req->route == ROUTE_HEALTH)
	{
		if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
			health_answer(req);
		else
			intake_set_error(req, 405, "method_not_allowed", "use GET", NULL, NULL);
		return;
	}
	if (req->route == ROUTE_ACK)
	{
		ack_begin(req, conn, method);
		return;
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
	{
		intake_set_error(req, 405, "method_not_allowed", "use POST", NULL, NULL);
		return;
	}

	/* the token's shape only; the key itself is checked in the database */
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth == NULL || !starts_with_ci(auth, "Bearer "))
	{
		intake_set_error(req, 401, "unauthorized", "missing API key", NULL,
						 "Send the token of smartetl.create_api_key() as \"Authorization: Bearer <token>\".");
		return;
	}
	auth += strlen("Bearer ");
	while (*auth == ' ')
		auth++;
	if (!api_token_parse(auth, &key_id, &secret))
	{
		intake_set_error(req, 401, "unauthorized", "invalid API key", NULL, NULL);
		return;
	}
	req->token = pstrdup(auth);

	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING) != NULL &&
		pg_strcasecmp(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												  MHD_HTTP_HEADER_CONTENT_ENCODING), "identity") != 0)
	{
		intake_set_error(req, 415, "unsupported_media_type", "compressed bodies are not accepted",
						 NULL, "Send the body uncompressed.");
		return;
	}
	ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!content_type_ok(req, ct, &why))
	{
		intake_set_error(req, 415, "unsupported_media_type",
						 psprintf("content type \"%s\" is not accepted here", ct), NULL, why);
		return;
	}

	len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (len != NULL)
	{
		char	   *end;
		unsigned long long n = strtoull(len, &end, 10);

		if (n > max_body())
		{
			intake_set_error(req, 413, "content_too_large",
							 psprintf("the body has %llu bytes, more than smartetl.http_max_body (%zu bytes)",
									  n, max_body()),
							 NULL, "Split the events over several requests.");
			return;
		}
		req->declared_length = (size_t) n;
	}
	if (queued_requests >= MAX_QUEUED_REQUESTS ||
		buffered_bytes + req->declared_length > max_pending())
	{
		intake_set_error(req, 429, "too_many_requests", "the intake is saturated", NULL,
						 "Retry after the time in Retry-After.");
		return;
	}

	/* query parameters become ingest options */
	initStringInfo(&opts);
	appendStringInfoChar(&opts, '{');
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_option, &opts);
	appendStringInfoChar(&opts, '}');
	req->options_json = opts.data;

	/* the declared length at once (it is within the limit), else grow as it comes */
	req->body.maxlen = (int) Max(BODY_CHUNK_MIN, req->declared_length + 1);
	req->body.data = palloc_extended(req->body.maxlen, MCXT_ALLOC_HUGE);
	resetStringInfo(&req->body);
	buffered_bytes += req->body.maxlen;
}

/* Body bytes: false to drop the connection (too large, too slow, saturated). */
static bool
request_data(IntakeRequest *req, const char *data, size_t n)
{
	int			before = req->body.maxlen;

	if (req->body.len + n > (req->route == ROUTE_ACK ? ACK_MAX_BODY : max_body()))
		return false;			/* a chunked body over the limit: nothing to answer with */
	if (TimestampDifferenceExceeds(req->started, GetCurrentTimestamp(),
								   smartetl_http_request_timeout_s * 1000))
		return false;
	appendBinaryStringInfo(&req->body, data, (int) n);
	buffered_bytes += req->body.maxlen - before;
	return buffered_bytes <= max_pending() + max_body();
}

static void
enqueue(IntakeRequest *req)
{
	req->queued = true;
	req->next_queued = NULL;
	if (queue_tail)
		queue_tail->next_queued = req;
	else
		queue_head = req;
	queue_tail = req;
	queued_requests++;
}

/* The access handler: every call for every request comes through here. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		   const char *version, const char *upload_data, size_t *upload_data_size,
		   void **req_cls)
{
	IntakeRequest *volatile req = (IntakeRequest *) *req_cls;
	MemoryContext caller = CurrentMemoryContext;
	volatile enum MHD_Result rc = MHD_NO;

	PG_TRY();
	{
		if (req == NULL)
		{
			MemoryContext cxt = AllocSetContextCreate(http_cxt, "smartetl intake request",
													  ALLOCSET_SMALL_SIZES);

			req = MemoryContextAllocZero(cxt, sizeof(IntakeRequest));
			req->cxt = cxt;
			req->conn = conn;
			req->started = GetCurrentTimestamp();
			*req_cls = req;
			MemoryContextSwitchTo(cxt);
			request_begin(req, conn, url, method);
			rc = req->answered ? send_answer(conn, req) : MHD_YES;
		}
		else if (*upload_data_size > 0)
		{
			MemoryContextSwitchTo(req->cxt);
			rc = (!req->answered && request_data(req, upload_data, *upload_data_size)) ? MHD_YES : MHD_NO;
			*upload_data_size = 0;
		}
		else if (req->answered)
			rc = send_answer(conn, req);
		else if (!req->queued)
		{
			/* complete: wait for the database */
			enqueue(req);
			MHD_suspend_connection(conn);
			rc = MHD_YES;
		}
		else
			rc = MHD_YES;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		EmitErrorReport();
		FlushErrorState();
		rc = MHD_NO;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	return rc;
}

/* The request is over (answered, dropped or timed out): free it. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	IntakeRequest *req = (IntakeRequest *) *req_cls;

	if (req == NULL)
		return;
	*req_cls = NULL;
	if (req->body.data)
		buffered_bytes -= Min(buffered_bytes, (size_t) req->body.maxlen);
	if (req->token)
		explicit_bzero(req->token, strlen(req->token));
	MemoryContextDelete(req->cxt);
}

/*
 * A new connection: no Nagle delay.  Answers are small and follow the
 * request after a commit; with Nagle, a keep-alive client's delayed ACK
 * would hold each one back by up to 40 ms.
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *info;
	int			one = 1;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info)
		(void) setsockopt(info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* libmicrohttpd's own messages: debugging detail, never request contents. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	elog(DEBUG1, "smartetl intake (libmicrohttpd): %s", buf);
}

/* Its internal state is broken: leave, and let the postmaster restart us. */
static void
on_mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
	ereport(FATAL,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("smartetl intake: libmicrohttpd failed at %s:%u: %s",
					file ? file : "?", line, reason ? reason : "?")));
}

/*
 * A TLS file's contents.  Like ssl_key_file, the key must not be readable
 * by group or others (0640 if owned by root).
 */
static char *
read_tls_file(const char *path, bool is_key)
{
	struct stat st;
	FILE	   *f;
	char	   *buf;

	if (stat(path, &st) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("smartetl intake: could not access TLS file \"%s\": %m", path)));
		return NULL;
	}
	if (is_key && ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
				   (st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))) ||
				   (st.st_uid != 0 && st.st_uid != geteuid())))
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("smartetl intake: TLS key file \"%s\" has group or world access", path),
				 errdetail("It must be owned by the database user with permissions u=rw (0600) or less, or by root with u=rw,g=r (0640) or less.")));
		return NULL;
	}
	if (st.st_size <= 0 || st.st_size > 1024 * 1024)
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("smartetl intake: TLS file \"%s\" is empty or too large", path)));
		return NULL;
	}
	f = AllocateFile(path, "r");
	if (f == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("smartetl intake: could not open TLS file \"%s\": %m", path)));
		return NULL;
	}
	buf = MemoryContextAllocZero(TopMemoryContext, st.st_size + 1);
	if (fread(buf, 1, st.st_size, f) != (size_t) st.st_size)
	{
		FreeFile(f);
		pfree(buf);
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("smartetl intake: could not read TLS file \"%s\": %m", path)));
		return NULL;
	}
	FreeFile(f);
	return buf;
}

static void
free_tls(void)
{
	if (tls_key)
	{
		explicit_bzero(tls_key, strlen(tls_key));
		pfree(tls_key);
	}
	if (tls_cert)
		pfree(tls_cert);
	tls_key = tls_cert = NULL;
}

/* Split "host:port" ("[v6]:port", ":port" or "*:port" = every address). */
static bool
split_listen(const char *listen, char **host, char **port)
{
	const char *colon = strrchr(listen, ':');
	char	   *h;

	if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	h = pnstrdup(listen, colon - listen);
	if (h[0] == '[' && h[strlen(h) - 1] == ']')
	{
		h[strlen(h) - 1] = '\0';
		h++;
	}
	*host = (h[0] == '\0' || strcmp(h, "*") == 0) ? NULL : h;
	*port = pstrdup(colon + 1);
	return true;
}

/*
 * Start listening on smartetl.http_listen; false (after logging why) if
 * the setting is wrong or the address cannot be bound.
 */
bool
http_server_start(void)
{
	char	   *host,
			   *port;
	struct addrinfo hints,
			   *ai = NULL;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	bool		tls = smartetl_http_tls_cert && smartetl_http_tls_cert[0];
	int			rc;

	Assert(mhd == NULL);
	if (http_cxt == NULL)
	{
		http_cxt = AllocSetContextCreate(TopMemoryContext, "smartetl intake requests",
										 ALLOCSET_DEFAULT_SIZES);
		MHD_set_panic_func(on_mhd_panic, NULL);
	}
	if (!split_listen(smartetl_http_listen, &host, &port))
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("smartetl intake: invalid smartetl.http_listen \"%s\"", smartetl_http_listen),
				 errhint("Use host:port, for example 127.0.0.1:8080, [::1]:8080 or *:8080.")));
		return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0)
	{
		ereport(LOG,
				(errmsg("smartetl intake: could not resolve \"%s\": %s", smartetl_http_listen,
						gai_strerror(rc))));
		return false;
	}
	if (ai->ai_family == AF_INET6)
		flags |= host ? MHD_USE_IPv6 : MHD_USE_DUAL_STACK;
	if (tls)
	{
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		{
			freeaddrinfo(ai);
			ereport(LOG, (errmsg("smartetl intake: this libmicrohttpd has no TLS support")));
			return false;
		}
		tls_cert = read_tls_file(smartetl_http_tls_cert, false);
		tls_key = tls_cert ? read_tls_file(smartetl_http_tls_key ? smartetl_http_tls_key : "", true) : NULL;
		if (tls_key == NULL)
		{
			free_tls();
			freeaddrinfo(ai);
			return false;
		}
		flags |= MHD_USE_TLS;
	}

	errno = 0;
	mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
						   MHD_OPTION_SOCK_ADDR, ai->ai_addr,
						   MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
						   MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
						   MHD_OPTION_CONNECTION_LIMIT, (unsigned int) smartetl_http_max_connections,
						   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) smartetl_http_idle_timeout_s,
						   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (32 * 1024),
						   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
						   MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
						   MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
						   tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert,
						   MHD_OPTION_HTTPS_MEM_KEY, tls_key,
						   MHD_OPTION_END);
	if (mhd == NULL)
	{
		int			save_errno = errno;

		freeaddrinfo(ai);
		free_tls();
		ereport(LOG,
				(errmsg("smartetl intake: could not listen on %s%s", smartetl_http_listen,
						save_errno ? psprintf(": %s", strerror(save_errno)) : "")));
		return false;
	}
	freeaddrinfo(ai);
	ereport(LOG,
			(errmsg("smartetl intake listening on %s://%s", tls ? "https" : "http",
					smartetl_http_listen)));
	return true;
}

/* Stop listening and drop every connection (nothing queued is answered 2xx). */
void
http_server_stop(void)
{
	IntakeRequest *r;

	if (mhd == NULL)
		return;
	/* suspended connections must be resumed before the daemon stops */
	for (r = queue_head; r; r = r->next_queued)
		MHD_resume_connection((struct MHD_Connection *) r->conn);
	queue_head = queue_tail = NULL;
	queued_requests = 0;
	MHD_stop_daemon(mhd);
	mhd = NULL;
	free_tls();
	buffered_bytes = 0;
}

bool
http_server_running(void)
{
	return mhd != NULL;
}

int
http_server_epoll_fd(void)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

/* Longest wait before MHD_run() must be called again; -1 = none. */
long
http_server_timeout_ms(void)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (mhd == NULL || MHD_get_timeout(mhd, &t) != MHD_YES)
		return -1;
	return (long) Min(t, (MHD_UNSIGNED_LONG_LONG) 60000);
}

void
http_server_run(void)
{
	if (mhd)
		MHD_run(mhd);
}

/*
 * Detach up to max_requests queued requests (and at least one, whatever
 * max_bytes says), oldest first.
 */
IntakeRequest *
http_server_take_queue(int max_requests, size_t max_bytes)
{
	IntakeRequest *head = queue_head;
	IntakeRequest *last = NULL;
	IntakeRequest *r = queue_head;
	size_t		bytes = 0;
	int			n = 0;

	while (r && n < max_requests && (n == 0 || bytes + r->body.len <= max_bytes))
	{
		bytes += r->body.len;
		n++;
		last = r;
		r = r->next_queued;
	}
	if (last == NULL)
		return NULL;
	queue_head = last->next_queued;
	if (queue_head == NULL)
		queue_tail = NULL;
	last->next_queued = NULL;
	queued_requests -= n;
	return head;
}

/* The answer is set: free the body early and let the connection send it. */
void
http_server_answer(IntakeRequest *req)
{
	if (req->body.data)
	{
		buffered_bytes -= Min(buffered_bytes, (size_t) req->body.maxlen);
		pfree(req->body.data);
		req->body.data = NULL;
		req->body.len = req->body.maxlen = 0;
	}
	if (req->token)
	{
		explicit_bzero(req->token, strlen(req->token));
		req->token = NULL;
	}
	if (!req->answered)
		intake_set_error(req, 503, "unavailable", "the request was not stored", NULL,
						 "Retry after the time in Retry-After.");
	MHD_resume_connection((struct MHD_Connection *) req->conn);
}

int
http_server_pending(void)
{
	return queued_requests;
}

void
http_server_set_health(bool ok, const char *why)
{
	health_ok = ok;
	strlcpy(health_why, why ? why : "", sizeof(health_why));
}
