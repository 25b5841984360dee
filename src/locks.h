/*-------------------------------------------------------------------------
 * src/locks.h
 *		Every advisory lock smartetl takes, defined once.
 *
 * All are transaction-level locks on the two-key form (class, sub), which
 * shares no key with the one-bigint form applications usually take.  The
 * classes spell "SMET", "SMEU", "SMEV", "SMEW" in ASCII.  The same numbers
 * must not change between releases: during an upgrade, sessions of the old
 * and the new release must still exclude each other.
 *
 * C code uses these macros (in SQL strings, CppAsString2()); SQL code takes
 * the locks by purpose through smartetl._xact_lock(purpose, item),
 * smartetl._try_xact_lock(purpose, item) and smartetl._lock_pipelines(ids)
 * (src/locks.c, 07_locks.sql), which read the table in locks.c built from
 * these macros; smartetl._lock_keys() lists it (sql/locks.sql tests that
 * both sides take the same locks).
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_LOCKS_H
#define SMARTETL_LOCKS_H

/*
 * "pipeline": one of 64 locks per pipeline id (sub = id % 64), taken in
 * ascending order by ingest (src/ingest/store.c) and by every rollup refresh
 * (smartetl._kpi_refresh), so that "is this run new?" and a bucket's
 * recomputation see the other writers of the same pipeline committed.
 */
#define LOCK_PIPELINE_CLASS 1397572948
#define LOCK_PIPELINE_SLOTS 64

/* "alert_evaluation": one smartetl.evaluate_alerts() at a time */
#define LOCK_ALERT_EVALUATION_CLASS 1397572948
#define LOCK_ALERT_EVALUATION_SUB 1000

/* "template_compact": one smartetl.template_compact() at a time (others skip) */
#define LOCK_TEMPLATE_COMPACT_CLASS 1397572949
#define LOCK_TEMPLATE_COMPACT_SUB 2

/* "pg_cron_sync": one smartetl.sync_pg_cron() at a time */
#define LOCK_PG_CRON_SYNC_CLASS 1397572950
#define LOCK_PG_CRON_SYNC_SUB 1

/*
 * "log_partition": creating one monthly log_event partition; the item (the
 * sub-key) is hashtext() of the partition's name
 */
#define LOCK_LOG_PARTITION_CLASS 1397572951

#endif							/* SMARTETL_LOCKS_H */
