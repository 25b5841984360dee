/*-------------------------------------------------------------------------
 * src/alert/alert.h
 *		The alert worker and the outbox it delivers.
 *
 * Flow: ingest and SQL changes to runs wake the worker of their database
 * at commit (alert_wake.c, a latch in shared memory).  The worker
 * (alert_worker.c) runs smartetl.evaluate_alerts() in a transaction, claims
 * due deliveries in another (alert_outbox.c), notifies LISTEN channels in a
 * third (alert_notify.c), sends the rest through the libcurl multi
 * interface with no transaction open (alert_send.c), and records the
 * outcomes known at each cycle, a batch in one statement.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_ALERT_H
#define SMARTETL_ALERT_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* GUCs (smartetl.c) */
extern char *smartetl_databases;
extern int	smartetl_naptime_s;
extern int	smartetl_http_timeout_ms;
extern int	smartetl_max_attempts;
extern int	smartetl_max_in_flight;
extern int	smartetl_evaluation_chunk;
extern char *smartetl_allowed_hosts;
extern int	smartetl_worker_statement_timeout_ms;

/*
 * Largest request body sent (HTTP body, or the text and HTML parts of a
 * mail together).  Larger ones are recorded as permanent failures: up to
 * smartetl.max_in_flight of them are held in memory at once.
 */
#define ALERT_MAX_BODY_BYTES (16 * 1024 * 1024)

/* alert_wake.c: one latch per worker database in shared memory */
extern void alert_shmem_request(void);
extern void alert_shmem_startup(void);
extern void alert_worker_attach(Oid dboid);
extern void alert_worker_detach(void);
extern void alert_worker_publish_cycle(void);
extern void alert_wake_at_commit(void);

/* A delivery claimed for sending. */
typedef struct Delivery
{
	int64		id;
	char	   *channel;
	char	   *kind;			/* teams, slack, webhook, alertmanager, email, notify */
	char	   *target;
	char	   *secret;			/* may be NULL */
	char	   *mail_from;		/* email: options.from */
	char	   *mail_to;		/* email: options.to, one address per line */
	char	   *username;		/* email: options.username */
	bool		starttls;		/* email: options.starttls */
	bool		insecure;		/* options.insecure_skip_verify */
	int			timeout_ms;		/* options.timeout_ms, else the GUC */
	char	   *content_type;
	char	   *body;			/* request body (email: the text part); NULL
								 * for a notify body too long for NOTIFY */
	int64		body_bytes;		/* its length, also when it was not loaded */
	char	   *html;			/* email only */
	char	   *subject;		/* email only */
	char	   *idempotency_key;
	int			attempts;		/* including this one */
} Delivery;

/* The outcome of one attempt. */
typedef struct DeliveryResult
{
	int64		id;
	bool		ok;
	bool		permanent;		/* no point retrying (host not allowed, bad request) */
	long		http_status;	/* 0 = no HTTP answer */
	int			retry_after_s;	/* from a 429/503 Retry-After, else -1 */
	char		error[256];		/* valid in the database encoding */
} DeliveryResult;

/* alert_outbox.c (SPI, inside a transaction) */
extern int	alert_spi_execute(const char *sql, int nargs, Oid *types, Datum *values,
							  const char *nulls, bool read_only, long count);
extern void alert_statement_timeout_disarm(void);
extern void alert_pin_search_path(void);
extern void delivery_error(DeliveryResult *r, const char *fmt,...) pg_attribute_printf(2, 3);
extern void outbox_reset_stale(void);
extern void outbox_bury_orphans(void);
extern int	outbox_claim(Delivery **out, int max, DeliveryResult *refused, int *nrefused,
						 MemoryContext cxt);
extern void outbox_record(const DeliveryResult *results, int n, int max_attempts);
extern double outbox_seconds_to_next(void);

/* alert_notify.c (inside a transaction, SPI connected) */
extern char *notify_payload(const Delivery *d);
extern bool notify_send(const Delivery *d, DeliveryResult *r);

/* alert_send.c (no transaction needed) */
typedef struct SendSet SendSet;
extern SendSet *send_set_create(MemoryContext cxt);
extern bool send_set_add(SendSet *set, Delivery *d, DeliveryResult *refused);
extern int	send_set_in_flight(SendSet *set);
extern void send_set_poll(SendSet *set, int timeout_ms);
extern int	send_set_collect(SendSet *set, DeliveryResult *out, int max);
extern void send_set_cancel(SendSet *set);
extern void send_set_destroy(SendSet *set);
extern bool host_allowed(const char *url, char *why, size_t whylen);

/* alert_worker.c */
extern void alert_worker_register(void);

#endif							/* SMARTETL_ALERT_H */
