/*-------------------------------------------------------------------------
 * src/kpi/rollup.c
 *		Add bulk-inserted runs to the KPI rollups.
 *
 * Runs changed with SQL refresh their buckets by recomputing them from the
 * runs (smartetl._kpi_refresh, from triggers).  Runs written by the bulk
 * inserter are all new, so their contribution can simply be added: counts
 * and sums add, sketches merge.  That reads the batch once instead of
 * looking every bucket up again in smartetl.run, which keeps loading a
 * year of history about as fast as it was without rollups.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "kpi/rollup.h"

/* Grouped contributions of the batch per pipeline and UTC `unit`. */
#define NEW_RUNS_GROUPED(unit) \
	"SELECT p.pipeline_id, smartetl._utc_trunc('" unit "', coalesce(b.started_at, b.ended_at)) AS bucket, " \
	"count(*) AS runs, " \
	"count(*) FILTER (WHERE b.status = 'success') AS successes, " \
	"count(*) FILTER (WHERE b.status = 'failed') AS failures, " \
	"count(*) FILTER (WHERE b.status = 'skipped') AS skipped, " \
	"count(*) FILTER (WHERE b.status = 'cancelled') AS cancelled, " \
	"count(*) FILTER (WHERE b.status = 'running') AS running, " \
	"count(*) FILTER (WHERE b.attempt > 1) AS retries, " \
	"count(*) FILTER (WHERE b.duration > p.sla) AS sla_breaches, " \
	"smartetl.qsketch_agg(date_part('epoch', b.duration)) " \
	"  FILTER (WHERE b.status IN ('success', 'failed')) AS duration, " \
	"sum(b.rows_read)::bigint AS rows_read, sum(b.rows_written)::bigint AS rows_written, " \
	"sum(b.bytes)::bigint AS bytes " \
	"FROM %s b JOIN smartetl.pipeline p " \
	"ON p.namespace OPERATOR(pg_catalog.=) b.namespace AND p.name OPERATOR(pg_catalog.=) b.pipeline " \
	"WHERE coalesce(b.started_at, b.ended_at) IS NOT NULL GROUP BY 1, 2"

/* A nullable sum: NULL only when both sides are. */
#define ADD_SUM(col) \
	col " = CASE WHEN k." col " IS NULL AND excluded." col " IS NULL THEN NULL " \
	"ELSE coalesce(k." col ", 0) + coalesce(excluded." col ", 0) END"

#define ADD_NEW_RUNS(table, unit) \
	"INSERT INTO smartetl." table " AS k " NEW_RUNS_GROUPED(unit) " " \
	"ON CONFLICT (pipeline_id, bucket) DO UPDATE SET " \
	"runs = k.runs + excluded.runs, successes = k.successes + excluded.successes, " \
	"failures = k.failures + excluded.failures, skipped = k.skipped + excluded.skipped, " \
	"cancelled = k.cancelled + excluded.cancelled, running = k.running + excluded.running, " \
	"retries = k.retries + excluded.retries, sla_breaches = k.sla_breaches + excluded.sla_breaches, " \
	"duration = smartetl.qsketch_combine(k.duration, excluded.duration), " \
	ADD_SUM("rows_read") ", " ADD_SUM("rows_written") ", " ADD_SUM("bytes")

void
rollup_add_new_runs(const char *batch_relation)
{
	if (SPI_execute(psprintf(ADD_NEW_RUNS("kpi_hourly", "hour"), batch_relation), false, 0) != SPI_OK_INSERT ||
		SPI_execute(psprintf(ADD_NEW_RUNS("kpi_daily", "day"), batch_relation), false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not add new runs to the KPI rollups");
}
