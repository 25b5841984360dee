/*-------------------------------------------------------------------------
 * src/kpi/rollup.h
 *		KPI rollups for runs stored without the executor (bulk ingest,
 *		which fires no triggers).
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_ROLLUP_H
#define SMARTETL_ROLLUP_H

/*
 * Add the runs of the registered ephemeral relation (batch run rows, all
 * of them new runs) to kpi_hourly and kpi_daily, and score them for
 * anomalies (run_anomaly_score).  SPI must be connected
 * and the caller must hold the ingest locks of their pipelines.
 */
extern void rollup_add_new_runs(const char *batch_relation);

#endif							/* SMARTETL_ROLLUP_H */
