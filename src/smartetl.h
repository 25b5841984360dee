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

#endif							/* SMARTETL_H */
