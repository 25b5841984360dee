/*-------------------------------------------------------------------------
 * src/smartetl.h
 *		Declarations shared by every smartetl module.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_H
#define SMARTETL_H

#define SMARTETL_VERSION "0.1.0"

/* Longest accepted physical line or CSV record, unless options say otherwise. */
#define SMARTETL_DEFAULT_MAX_LINE_BYTES (64 * 1024 * 1024)

/* smartetl.rule_timeout: time limit of a sql alert rule's query (src/alert/rule_query.c) */
extern int	smartetl_rule_timeout_ms;

#endif							/* SMARTETL_H */
