/*-------------------------------------------------------------------------
 * src/kpi/rollup.h
 *		The (pipeline, hour) buckets that runs written without the executor
 *		(bulk ingest, which fires no triggers) touched, to refresh the KPI
 *		rollups once at the end of the store step.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_ROLLUP_H
#define SMARTETL_ROLLUP_H

#include "datatype/timestamp.h"

typedef struct TouchedHours
{
	int64	   *pipeline_ids;
	TimestampTz *hours;
	int64		n;
	int64		cap;
} TouchedHours;

extern void touched_hours_init(TouchedHours *t);
extern void touched_hours_add(TouchedHours *t, int64 pipeline_id, TimestampTz at);

/* Recompute those buckets (smartetl._kpi_refresh); SPI must be connected. */
extern void touched_hours_refresh(TouchedHours *t);

#endif							/* SMARTETL_ROLLUP_H */
