/*-------------------------------------------------------------------------
 * src/alert/alert_send.c
 *		Send deliveries over HTTP(S) and SMTP(S) with the libcurl multi
 *		interface: many transfers in flight, each with its own timeout, so
 *		one slow or hanging receiver never holds up the others.
 *
 * A SendSet owns the transfers in flight.  The worker adds claimed
 * deliveries, polls, and collects outcomes as transfers finish; it keeps
 * no transaction open meanwhile.  Every request carries the delivery's
 * idempotency key (an Idempotency-Key header, a Message-ID for mail), so a
 * receiver can drop the duplicate of a notification re-sent after a crash.
 * Only hosts listed in smartetl.allowed_hosts are contacted, TLS
 * certificates are verified unless a channel opts out, and redirects are
 * not followed.  Error texts come from libcurl and never contain the
 * secret (credentials are never put in URLs).
 *
 * Every libcurl call that can fail while a request is prepared is
 * checked: a failure becomes that delivery's recorded error (permanent
 * when libcurl lacks the feature), never a silently different request.
 * Response bodies are discarded by a callback that cannot fail, and no
 * code here raises an error from inside a libcurl callback.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "common/base64.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "alert/alert.h"
#include "smartetl.h"

typedef struct Transfer
{
	dlist_node	node;			/* in SendSet.transfers */
	MemoryContext cxt;			/* the transfer, its delivery copy, its strings */
	CURL	   *easy;
	Delivery   *d;
	struct curl_slist *headers;
	struct curl_slist *rcpts;
	curl_mime  *mime;
	CURLcode	setup_rc;		/* the first libcurl call that failed ... */
	const char *setup_what;		/* ... and what it was */
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

struct SendSet
{
	CURLM	   *multi;
	MemoryContext cxt;
	dlist_head	transfers;		/* in flight */
	int			in_flight;
	DeliveryResult *done;
	int			ndone;
	int			done_cap;
	int			conn_limit;		/* connection limits as last set */
};

/* Is the URL's host in smartetl.allowed_hosts ("*" allows any)? */
bool
host_allowed(const char *url, char *why, size_t whylen)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	char	   *list,
			   *tok,
			   *save;
	bool		ok = false;

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
	{
		snprintf(why, whylen, "target is not a valid URL");
		curl_url_cleanup(u);
		return false;
	}
	list = pstrdup(smartetl_allowed_hosts ? smartetl_allowed_hosts : "");
	for (tok = strtok_r(list, ", ", &save); tok && !ok; tok = strtok_r(NULL, ", ", &save))
	{
		size_t		n = strlen(host);
		bool		bracketed = n > 2 && host[0] == '[' && host[n - 1] == ']';

		ok = strcmp(tok, "*") == 0 || pg_strcasecmp(tok, host) == 0 ||
			(bracketed && strlen(tok) == n - 2 && pg_strncasecmp(tok, host + 1, n - 2) == 0);
	}
	if (!ok)
		snprintf(why, whylen, "host %s is not in smartetl.allowed_hosts", host);
	pfree(list);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/*
 * Bound the connections: at most smartetl.max_in_flight open (in use or
 * idle) across all hosts, so open files stay bounded however many
 * deliveries are queued.  Idle connections stay in the multi handle's
 * cache and are reused by the next transfers to their host (keep-alive).
 */
static void
set_connection_limits(SendSet *set)
{
	long		limit = smartetl_max_in_flight;

	if (set->conn_limit == limit)
		return;
	if (curl_multi_setopt(set->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit) != CURLM_OK ||
		curl_multi_setopt(set->multi, CURLMOPT_MAXCONNECTS, limit) != CURLM_OK)
		elog(ERROR, "could not set the connection limits of libcurl");
	set->conn_limit = limit;
}

SendSet *
send_set_create(MemoryContext cxt)
{
	SendSet    *set = MemoryContextAllocZero(cxt, sizeof(SendSet));

	set->multi = curl_multi_init();
	if (set->multi == NULL)
		elog(ERROR, "could not initialise libcurl");
	set->cxt = cxt;
	dlist_init(&set->transfers);
	set->done_cap = 64;
	set->done = MemoryContextAllocZero(cxt, sizeof(DeliveryResult) * set->done_cap);
	return set;
}

/* Remember the first failed libcurl call of the request's preparation. */
static void
check(Transfer *t, CURLcode rc, const char *what)
{
	if (rc != CURLE_OK && t->setup_rc == CURLE_OK)
	{
		t->setup_rc = rc;
		t->setup_what = what;
	}
}

#define SETOPT(t, opt, val) check((t), curl_easy_setopt((t)->easy, (opt), (val)), #opt)

/* curl_slist_append returns NULL, leaving the list as it was, when out of memory. */
static struct curl_slist *
slist_append(Transfer *t, struct curl_slist *list, const char *s)
{
	struct curl_slist *n = curl_slist_append(list, s);

	if (n == NULL)
	{
		check(t, CURLE_OUT_OF_MEMORY, "curl_slist_append");
		return list;
	}
	return n;
}

static void
add_header(Transfer *t, const char *fmt, const char *value)
{
	char	   *h = psprintf(fmt, value);

	t->headers = slist_append(t, t->headers, h);
	pfree(h);
}

/* Response bodies are not needed; libcurl would print them to the server log. */
static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* "a@x\nb@y" as "a@x, b@y" for the To: header. */
static char *
address_list(const char *lines)
{
	StringInfoData s;
	const char *p;

	initStringInfo(&s);
	for (p = lines ? lines : ""; *p; p++)
		if (*p == '\n')
			appendStringInfoString(&s, ", ");
		else
			appendStringInfoChar(&s, *p);
	return s.data;
}

/*
 * A subject with non-ASCII characters as RFC 2047 encoded words of at most
 * 75 characters (45 bytes of UTF-8 each, cut between characters), folded
 * onto continuation lines: SMTP lines end at 998 bytes and a 250-character
 * subject can take 1,000 bytes before encoding.
 */
static char *
encoded_subject(const char *subject)
{
	const unsigned char *p;
	StringInfoData s;
	int			len = strlen(subject);
	int			off = 0;

	for (p = (const unsigned char *) subject; *p && *p < 0x80 && *p >= 0x20; p++)
		;
	if (*p == '\0')
		return pstrdup(subject);
	/* the header says UTF-8, whatever the database encoding */
	subject = pg_server_to_any(subject, len, PG_UTF8);
	len = strlen(subject);
	initStringInfo(&s);
	while (off < len)
	{
		int			chunk = pg_encoding_mbcliplen(PG_UTF8, subject + off, len - off, 45);
		char		b64[64];
		int			n;

		if (chunk <= 0)
			chunk = Min(len - off, 45);
		n = pg_b64_encode(subject + off, chunk, b64, sizeof(b64) - 1);
		b64[Max(n, 0)] = '\0';
		appendStringInfo(&s, "%s=?UTF-8?B?%s?=", off > 0 ? "\r\n " : "", b64);
		off += chunk;
	}
	return s.data;
}

/* The delivery's strings, copied into the transfer's own context. */
static Delivery *
delivery_copy(const Delivery *src)
{
	Delivery   *d = palloc(sizeof(Delivery));

	*d = *src;
#define COPY(f) d->f = src->f ? pstrdup(src->f) : NULL
	COPY(channel);
	COPY(kind);
	COPY(target);
	COPY(secret);
	COPY(mail_from);
	COPY(mail_to);
	COPY(username);
	COPY(content_type);
	COPY(body);
	COPY(html);
	COPY(subject);
	COPY(idempotency_key);
#undef COPY
	return d;
}

/* The body of an HTTP delivery: POST as JSON (or the payload's type). */
static void
prepare_http(Transfer *t)
{
	Delivery   *d = t->d;

	SETOPT(t, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(t, CURLOPT_POST, 1L);
	SETOPT(t, CURLOPT_POSTFIELDS, d->body ? d->body : "");
	SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (d->body ? strlen(d->body) : 0));
	add_header(t, "Content-Type: %s", d->content_type ? d->content_type : "application/json");
	add_header(t, "Idempotency-Key: %s", d->idempotency_key);
	/* no "Expect: 100-continue" round trip (or its 1 s wait) before bodies over 1 kB */
	t->headers = slist_append(t, t->headers, "Expect:");
	if (d->secret && strcmp(d->kind, "webhook") == 0)
		add_header(t, "Authorization: Bearer %s", d->secret);
}

/* A MIME part holding text of the given type, quoted-printable. */
static void
add_text_part(Transfer *t, curl_mime *mime, const char *text, const char *type)
{
	curl_mimepart *part = curl_mime_addpart(mime);

	if (part == NULL)
	{
		check(t, CURLE_OUT_OF_MEMORY, "curl_mime_addpart");
		return;
	}
	check(t, curl_mime_data(part, text, CURL_ZERO_TERMINATED), "curl_mime_data");
	check(t, curl_mime_type(part, type), "curl_mime_type");
	/* quoted-printable keeps lines under SMTP's 998-byte limit */
	check(t, curl_mime_encoder(part, "quoted-printable"), "curl_mime_encoder");
}

/* A mail with a text and an HTML alternative. */
static void
prepare_mail(Transfer *t)
{
	Delivery   *d = t->d;
	curl_mimepart *part;
	curl_mime  *alt;
	char	   *to = pstrdup(d->mail_to ? d->mail_to : "");
	char	   *tok,
			   *save;

	SETOPT(t, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SETOPT(t, CURLOPT_MAIL_FROM, d->mail_from);
	for (tok = strtok_r(to, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		t->rcpts = slist_append(t, t->rcpts, tok);
	SETOPT(t, CURLOPT_MAIL_RCPT, t->rcpts);
	if (d->starttls)
		SETOPT(t, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
	if (d->username)
	{
		SETOPT(t, CURLOPT_USERNAME, d->username);
		SETOPT(t, CURLOPT_PASSWORD, d->secret ? d->secret : "");
	}
	add_header(t, "Subject: %s", encoded_subject(d->subject ? d->subject : "smartetl alert"));
	add_header(t, "From: %s", d->mail_from);
	add_header(t, "To: %s", address_list(d->mail_to));
	add_header(t, "Message-ID: <%s@smartetl>", d->idempotency_key);
	add_header(t, "X-Smartetl-Idempotency-Key: %s", d->idempotency_key);

	pfree(to);

	t->mime = curl_mime_init(t->easy);
	alt = curl_mime_init(t->easy);
	if (t->mime == NULL || alt == NULL)
	{
		check(t, CURLE_OUT_OF_MEMORY, "curl_mime_init");
		curl_mime_free(alt);
		return;
	}
	add_text_part(t, alt, d->body ? d->body : "", "text/plain; charset=utf-8");
	if (d->html)
		add_text_part(t, alt, d->html, "text/html; charset=utf-8");
	part = curl_mime_addpart(t->mime);
	if (part == NULL || curl_mime_subparts(part, alt) != CURLE_OK)
	{
		/* alt belongs to the part only once attached */
		check(t, part ? CURLE_BAD_FUNCTION_ARGUMENT : CURLE_OUT_OF_MEMORY, "curl_mime_subparts");
		curl_mime_free(alt);
		return;
	}
	check(t, curl_mime_type(part, "multipart/alternative"), "curl_mime_type");
	SETOPT(t, CURLOPT_MIMEPOST, t->mime);
}

/* Free a transfer's libcurl handles and its memory. */
static void
transfer_free(Transfer *t)
{
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	curl_slist_free_all(t->rcpts);
	curl_mime_free(t->mime);
	MemoryContextDelete(t->cxt);
}

/*
 * Can a failed preparation succeed later?  Out of memory can; a missing
 * protocol, option or TLS backend in libcurl, or an argument libcurl
 * rejects, cannot.
 */
static bool
setup_permanent(CURLcode rc)
{
	return rc != CURLE_OUT_OF_MEMORY && rc != CURLE_FAILED_INIT;
}

/* Set up t's request; failures of libcurl calls are left in t->setup_rc. */
static void
prepare_transfer(Transfer *t, int timeout)
{
	Delivery   *d = t->d;

	t->easy = curl_easy_init();
	if (t->easy == NULL)
	{
		check(t, CURLE_FAILED_INIT, "curl_easy_init");
		return;
	}
	SETOPT(t, CURLOPT_URL, d->target);
	SETOPT(t, CURLOPT_PRIVATE, t);
	SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
	SETOPT(t, CURLOPT_NOSIGNAL, 1L);
	SETOPT(t, CURLOPT_TIMEOUT_MS, (long) timeout);
	SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(timeout, 10000));
	SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(t, CURLOPT_USERAGENT, "smartetl/" SMARTETL_VERSION);
	SETOPT(t, CURLOPT_WRITEFUNCTION, discard_body);
	if (d->insecure)
	{
		SETOPT(t, CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(t, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(d->kind, "email") == 0)
		prepare_mail(t);
	else
		prepare_http(t);
	SETOPT(t, CURLOPT_HTTPHEADER, t->headers);
}

/*
 * Start sending d.  Returns false, with *refused filled in, when it cannot
 * be sent: the host is not allowed, or libcurl failed to prepare it.
 */
bool
send_set_add(SendSet *set, Delivery *src, DeliveryResult *refused)
{
	MemoryContext cxt;
	MemoryContext old;
	Transfer   *t;
	CURLMcode	mrc;
	int			timeout = src->timeout_ms > 0 ? src->timeout_ms : smartetl_http_timeout_ms;

	memset(refused, 0, sizeof(*refused));
	refused->id = src->id;
	refused->retry_after_s = -1;
	if (!host_allowed(src->target, refused->error, sizeof(refused->error)))
	{
		refused->permanent = true;
		return false;
	}
	cxt = AllocSetContextCreate(set->cxt, "smartetl transfer", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	t = palloc0(sizeof(Transfer));
	t->cxt = cxt;
	PG_TRY();
	{
		t->d = delivery_copy(src);
		prepare_transfer(t, timeout);
	}
	PG_CATCH();
	{
		/* out of memory, say: free libcurl's part too */
		MemoryContextSwitchTo(old);
		transfer_free(t);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (t->setup_rc != CURLE_OK)
	{
		delivery_error(refused, "could not prepare the request: %s failed: %s",
					   t->setup_what, curl_easy_strerror(t->setup_rc));
		refused->permanent = setup_permanent(t->setup_rc);
		transfer_free(t);
		return false;
	}
	set_connection_limits(set);
	mrc = curl_multi_add_handle(set->multi, t->easy);
	if (mrc != CURLM_OK)
	{
		delivery_error(refused, "could not start the request: %s", curl_multi_strerror(mrc));
		transfer_free(t);
		return false;
	}
	dlist_push_tail(&set->transfers, &t->node);
	set->in_flight++;
	return true;
}

int
send_set_in_flight(SendSet *set)
{
	return set->in_flight;
}

/* 4xx answers other than timeouts and rate limits will not improve. */
static bool
permanent_status(long status)
{
	return status >= 400 && status < 500 && status != 408 && status != 409 &&
		status != 425 && status != 429;
}

static void
finish_transfer(SendSet *set, Transfer *t, CURLcode rc)
{
	DeliveryResult *r;
	curl_off_t	retry_after = -1;

	if (set->ndone == set->done_cap)
	{
		set->done_cap *= 2;
		set->done = repalloc(set->done, sizeof(DeliveryResult) * set->done_cap);
	}
	r = &set->done[set->ndone++];
	memset(r, 0, sizeof(*r));
	r->id = t->d->id;
	r->retry_after_s = -1;
	if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->http_status) != CURLE_OK)
		r->http_status = 0;
	if (rc != CURLE_OK)
	{
		delivery_error(r, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		r->permanent = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
			rc == CURLE_LOGIN_DENIED;
		if (strcmp(t->d->kind, "email") != 0)
			r->http_status = 0;
	}
	else if (strcmp(t->d->kind, "email") == 0 || (r->http_status >= 200 && r->http_status < 300))
		r->ok = true;
	else
	{
		delivery_error(r, "HTTP %ld", r->http_status);
		r->permanent = permanent_status(r->http_status);
		/* libcurl reports 0 when there is no Retry-After header */
		if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0 &&
			(r->http_status == 429 || r->http_status == 503))
			r->retry_after_s = (int) Min(retry_after, 86400);
	}
	curl_multi_remove_handle(set->multi, t->easy);
	dlist_delete(&t->node);
	set->in_flight--;
	transfer_free(t);
}

/* Let transfers progress for up to timeout_ms; finished ones are kept. */
void
send_set_poll(SendSet *set, int timeout_ms)
{
	int			running;
	int			queued;
	CURLMsg    *msg;

	curl_multi_perform(set->multi, &running);
	if (running > 0)
		curl_multi_poll(set->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(set->multi, &running);
	while ((msg = curl_multi_info_read(set->multi, &queued)) != NULL)
	{
		Transfer   *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK || t == NULL)
			elog(ERROR, "libcurl lost a transfer");
		finish_transfer(set, t, msg->data.result);
	}
}

/* Move up to max finished outcomes to out. */
int
send_set_collect(SendSet *set, DeliveryResult *out, int max)
{
	int			n = Min(max, set->ndone);

	memcpy(out, set->done, sizeof(DeliveryResult) * n);
	memmove(set->done, set->done + n, sizeof(DeliveryResult) * (set->ndone - n));
	set->ndone -= n;
	return n;
}

/*
 * Abandon every transfer in flight and every outcome not yet collected:
 * the outbox they belong to is gone (the extension was dropped).
 */
void
send_set_cancel(SendSet *set)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &set->transfers)
	{
		Transfer   *t = dlist_container(Transfer, node, it.cur);

		curl_multi_remove_handle(set->multi, t->easy);
		dlist_delete(&t->node);
		transfer_free(t);
	}
	set->in_flight = 0;
	set->ndone = 0;
}

void
send_set_destroy(SendSet *set)
{
	send_set_cancel(set);
	curl_multi_cleanup(set->multi);
}
