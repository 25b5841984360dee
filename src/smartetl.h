/*-------------------------------------------------------------------------
 * src/smartetl.h
 *		Declarations shared by every smartetl module.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_H
#define SMARTETL_H

/*
 * SMARTETL_VERSION, the release ("x.y.z"), is not written here: the
 * Makefile reads default_version from smartetl.control and passes
 * -DSMARTETL_VERSION='"x.y.z"' to the compiler.
 */
#ifndef SMARTETL_VERSION
#error "SMARTETL_VERSION is not defined: build with the Makefile, which takes it from smartetl.control"
#endif

/* Longest accepted physical line or CSV record, unless options say otherwise. */
#define SMARTETL_DEFAULT_MAX_LINE_BYTES (64 * 1024 * 1024)

/* smartetl.rule_timeout: time limit of a sql alert rule's query (src/alert/rule_query.c) */
extern int	smartetl_rule_timeout_ms;

#endif							/* SMARTETL_H */
