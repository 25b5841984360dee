/*-------------------------------------------------------------------------
 * src/template/template.h
 *		Template mining inside a transaction, backed by smartetl.template
 *		(see template_store.c for how sessions stay independent).
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_TEMPLATE_H
#define SMARTETL_TEMPLATE_H

#include "datatype/timestamp.h"

typedef struct TemplateSession TemplateSession;

/* GUC smartetl.template_limit (smartetl.c) */
extern int	smartetl_template_limit;

/* the epoch that tells backends their cached miner is stale */
extern void template_shmem_request(void);
extern void template_shmem_startup(void);

/* bring the cached miner up to date; lookups only unless the caller may ingest */
extern TemplateSession *template_session_begin(void);
/* learn a message (its first line) seen at ts; its template id, 0 if none */
extern int64 template_session_learn(TemplateSession *s, const char *msg, TimestampTz ts);
extern const char *template_session_text(TemplateSession *s, int64 template_id);
/* store new and changed templates and counts; SPI must be connected */
extern void template_session_end(TemplateSession *s);

#endif							/* SMARTETL_TEMPLATE_H */
