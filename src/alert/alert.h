/*-------------------------------------------------------------------------
 * src/alert/alert.h
 *		The alert worker and the outbox it delivers.
 *
 * Flow: ingest and SQL changes to runs wake the worker of their database
 * at commit (alert_wake.c, a latch in shared memory).  The worker
 * (alert_worker.c) runs smartetl.evaluate_alerts() in a transaction, claims
 * due deliveries (alert_outbox.c), sends them through the libcurl multi
 * interface with no transaction open (alert_send.c), and records each
 * outcome as soon as it is known.
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
extern char *smartetl_allowed_hosts;

/* alert_wake.c: one latch per worker database in shared memory */
extern void alert_shmem_request(void);
extern void alert_shmem_startup(void);
extern void alert_worker_attach(Oid dboid);
extern void alert_worker_detach(void);
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
	char	   *body;			/* request body (email: the text part) */
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
	char		error[256];
} DeliveryResult;

/* alert_outbox.c (SPI, inside a transaction) */
extern void outbox_reset_stale(void);
extern int	outbox_claim(Delivery **out, int max, MemoryContext cxt);
extern void outbox_record(const DeliveryResult *results, int n, int max_attempts);
extern double outbox_seconds_to_next(void);

/* alert_send.c (no transaction needed) */
typedef struct SendSet SendSet;
extern SendSet *send_set_create(MemoryContext cxt);
extern bool send_set_add(SendSet *set, Delivery *d, DeliveryResult *refused);
extern int	send_set_in_flight(SendSet *set);
extern void send_set_poll(SendSet *set, int timeout_ms);
extern int	send_set_collect(SendSet *set, DeliveryResult *out, int max);
extern void send_set_destroy(SendSet *set);
extern bool host_allowed(const char *url, char *why, size_t whylen);

/* alert_worker.c */
extern void alert_worker_register(void);

#endif							/* SMARTETL_ALERT_H */
