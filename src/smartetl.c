/*-------------------------------------------------------------------------
 * src/smartetl.c
 *		Module magic and _PG_init; this file only wires modules together.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "smartetl.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Nothing to set up yet: the ingest functions need no shared state, so
 * CREATE EXTENSION works with or without shared_preload_libraries.  GUCs
 * and the alert worker register here once they exist.
 */
void
_PG_init(void)
{
}
