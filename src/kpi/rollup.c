/*-------------------------------------------------------------------------
 * src/kpi/rollup.c
 *		Add bulk-inserted runs to the KPI rollups.
 *
 * Runs changed with SQL refresh their buckets by recomputing them from the
 * runs (smartetl._kpi_refresh, from triggers).  Runs written by the bulk
 * inserter are all new, so their contribution can simply be added: counts
 * and sums add, sketches merge.  That reads the batch once instead of
 * looking every bucket up again in smartetl.run, which keeps loading a
 * year of history about as fast as it was without rollups.  The new runs
 * are also scored for anomalies, and their pipelines' failure streaks
 * redone, here (the triggers' path does both in smartetl._kpi_refresh).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "kpi/rollup.h"

/*
 * The statement comes from SQL (smartetl._kpi_rollup_sql, written from the
 * one list of rollup columns, smartetl._kpi_rollup_columns), so the bulk
 * path and the refresh from smartetl.run always fill the same columns the
 * same way.
 */
static void
add_new_runs(const char *step, const char *batch_relation)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(step), CStringGetTextDatum(batch_relation)};
	char	   *sql;

	if (SPI_execute_with_args("SELECT smartetl._kpi_rollup_sql($1, $2)", 2, argtypes, args, NULL,
							  true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the KPI rollup statement \"%s\"", step);
	sql = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (sql == NULL || SPI_execute(sql, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not add new runs to the KPI rollups");
}

/*
 * Redo the failure streaks the new runs touch (smartetl._streak_refresh)
 * and score the new runs for anomalies (smartetl._anomaly_refresh): per
 * pipeline, the earliest new run decides which streaks are recounted and
 * whether the kept baseline windows can go on over the new runs only or
 * the pipeline is rescored.
 */
static void
score_new_runs(const char *batch_relation)
{
	char	   *sql = psprintf("SELECT smartetl._streak_refresh(pipeline_ids, times), "
							   "smartetl._anomaly_refresh(pipeline_ids, times) "
							   "FROM (SELECT array_agg(pipeline_id) AS pipeline_ids, array_agg(t) AS times "
							   "FROM (SELECT p.pipeline_id, min(coalesce(r.started_at, r.ended_at)) AS t "
							   "FROM %s r JOIN smartetl.pipeline p "
							   "ON p.namespace OPERATOR(pg_catalog.=) r.namespace "
							   "AND p.name OPERATOR(pg_catalog.=) r.pipeline GROUP BY 1) s) a",
							   quote_identifier(batch_relation));

	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not redo the failure streaks and anomaly scores of new runs");
	pfree(sql);
}

void
rollup_add_new_runs(const char *batch_relation)
{
	add_new_runs("add_hourly", batch_relation);
	add_new_runs("add_daily", batch_relation);
	add_new_runs("add_monthly", batch_relation);
	score_new_runs(batch_relation);
}
