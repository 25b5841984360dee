/*-------------------------------------------------------------------------
 * src/template/template.h
 *		Template mining inside a transaction, backed by smartetl.template
 *		(see template_store.c for how sessions stay independent and when
 *		occurrence counts are stored).
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_TEMPLATE_H
#define SMARTETL_TEMPLATE_H

#include "datatype/timestamp.h"

/* GUC smartetl.template_limit (smartetl.c) */
extern int	smartetl_template_limit;

/* the epoch that tells backends their cached miner is stale */
extern void template_shmem_request(void);
extern void template_shmem_startup(void);

/*
 * Learn a message (its first line) seen at ts, or only look it up if the
 * caller may not ingest; its template id, 0 if none.
 */
extern int64 template_learn(const char *msg, int len, TimestampTz ts);
/* store the occurrences counted at this (sub)transaction level now */
extern void template_flush(void);

/* a dry run mines as learning would and stores nothing; end it with _end */
extern void template_mine_dry(const char *msg, int len);
extern void template_dry_run_end(void);

#endif							/* SMARTETL_TEMPLATE_H */
