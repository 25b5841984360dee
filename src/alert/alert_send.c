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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "common/base64.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "alert/alert.h"
#include "smartetl.h"

typedef struct Transfer
{
	MemoryContext cxt;			/* the transfer, its delivery copy, its strings */
	CURL	   *easy;
	Delivery   *d;
	struct curl_slist *headers;
	struct curl_slist *rcpts;
	curl_mime  *mime;
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

struct SendSet
{
	CURLM	   *multi;
	MemoryContext cxt;
	int			in_flight;
	DeliveryResult *done;
	int			ndone;
	int			done_cap;
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

SendSet *
send_set_create(MemoryContext cxt)
{
	SendSet    *set = MemoryContextAllocZero(cxt, sizeof(SendSet));

	set->multi = curl_multi_init();
	if (set->multi == NULL)
		elog(ERROR, "could not initialise libcurl");
	set->cxt = cxt;
	set->done_cap = 64;
	set->done = MemoryContextAllocZero(cxt, sizeof(DeliveryResult) * set->done_cap);
	return set;
}

static void
add_header(Transfer *t, const char *fmt, const char *value)
{
	char	   *h = psprintf(fmt, value);

	t->headers = curl_slist_append(t->headers, h);
	pfree(h);
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

/* A subject with non-ASCII characters as an RFC 2047 encoded word. */
static char *
encoded_subject(const char *subject)
{
	const unsigned char *p;
	char	   *b64;
	int			len = strlen(subject);
	int			n;

	for (p = (const unsigned char *) subject; *p && *p < 0x80 && *p >= 0x20; p++)
		;
	if (*p == '\0')
		return pstrdup(subject);
	b64 = palloc(pg_b64_enc_len(len) + 1);
	n = pg_b64_encode(subject, len, b64, pg_b64_enc_len(len));
	b64[Max(n, 0)] = '\0';
	return psprintf("=?UTF-8?B?%s?=", b64);
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

	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, d->body ? d->body : "");
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long) (d->body ? strlen(d->body) : 0));
	add_header(t, "Content-Type: %s", d->content_type ? d->content_type : "application/json");
	add_header(t, "Idempotency-Key: %s", d->idempotency_key);
	if (d->secret && strcmp(d->kind, "webhook") == 0)
		add_header(t, "Authorization: Bearer %s", d->secret);
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

	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(t->easy, CURLOPT_MAIL_FROM, d->mail_from);
	for (tok = strtok_r(to, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		t->rcpts = curl_slist_append(t->rcpts, tok);
	curl_easy_setopt(t->easy, CURLOPT_MAIL_RCPT, t->rcpts);
	if (d->starttls)
		curl_easy_setopt(t->easy, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
	if (d->username)
	{
		curl_easy_setopt(t->easy, CURLOPT_USERNAME, d->username);
		curl_easy_setopt(t->easy, CURLOPT_PASSWORD, d->secret ? d->secret : "");
	}
	add_header(t, "Subject: %s", encoded_subject(d->subject ? d->subject : "smartetl alert"));
	add_header(t, "From: %s", d->mail_from);
	add_header(t, "To: %s", address_list(d->mail_to));
	add_header(t, "Message-ID: <%s@smartetl>", d->idempotency_key);
	add_header(t, "X-Smartetl-Idempotency-Key: %s", d->idempotency_key);

	t->mime = curl_mime_init(t->easy);
	alt = curl_mime_init(t->easy);
	/* quoted-printable keeps lines under SMTP's 998-byte limit */
	part = curl_mime_addpart(alt);
	curl_mime_data(part, d->body ? d->body : "", CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/plain; charset=utf-8");
	curl_mime_encoder(part, "quoted-printable");
	if (d->html)
	{
		part = curl_mime_addpart(alt);
		curl_mime_data(part, d->html, CURL_ZERO_TERMINATED);
		curl_mime_type(part, "text/html; charset=utf-8");
		curl_mime_encoder(part, "quoted-printable");
	}
	part = curl_mime_addpart(t->mime);
	curl_mime_subparts(part, alt);
	curl_mime_type(part, "multipart/alternative");
	curl_easy_setopt(t->easy, CURLOPT_MIMEPOST, t->mime);
	pfree(to);
}

/*
 * Start sending d.  Returns false, with *refused filled in, when the
 * delivery can never be sent as configured (host not allowed).
 */
bool
send_set_add(SendSet *set, Delivery *src, DeliveryResult *refused)
{
	MemoryContext cxt;
	MemoryContext old;
	Transfer   *t;
	Delivery   *d;
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
	t->d = d = delivery_copy(src);
	t->easy = curl_easy_init();
	curl_easy_setopt(t->easy, CURLOPT_URL, d->target);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long) timeout);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(timeout, 10000));
	curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "smartetl/" SMARTETL_VERSION);
	if (d->insecure)
	{
		curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(t->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(d->kind, "email") == 0)
		prepare_mail(t);
	else
		prepare_http(t);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
	curl_multi_add_handle(set->multi, t->easy);
	set->in_flight++;
	MemoryContextSwitchTo(old);
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
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
	if (rc != CURLE_OK)
	{
		snprintf(r->error, sizeof(r->error), "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		r->permanent = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
			rc == CURLE_LOGIN_DENIED;
		if (strcmp(t->d->kind, "email") != 0)
			r->http_status = 0;
	}
	else if (strcmp(t->d->kind, "email") == 0 || (r->http_status >= 200 && r->http_status < 300))
		r->ok = true;
	else
	{
		snprintf(r->error, sizeof(r->error), "HTTP %ld", r->http_status);
		r->permanent = permanent_status(r->http_status);
		/* libcurl reports 0 when there is no Retry-After header */
		if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0 &&
			(r->http_status == 429 || r->http_status == 503))
			r->retry_after_s = (int) Min(retry_after, 86400);
	}
	curl_multi_remove_handle(set->multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	curl_slist_free_all(t->rcpts);
	if (t->mime)
		curl_mime_free(t->mime);
	set->in_flight--;
	MemoryContextDelete(t->cxt);
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
		Transfer   *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
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

void
send_set_destroy(SendSet *set)
{
	curl_multi_cleanup(set->multi);
}
