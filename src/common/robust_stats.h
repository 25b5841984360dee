/*-------------------------------------------------------------------------
 * src/common/robust_stats.h
 *		Medians and median absolute deviations of double arrays, shared by
 *		the anomaly baseline aggregate, the risk features and the model
 *		metrics.  Frontend-safe.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_ROBUST_STATS_H
#define SMARTETL_ROBUST_STATS_H

/* qsort comparator for doubles (NaN must have been removed). */
extern int	double_cmp(const void *a, const void *b);

/*
 * Median and MAD of v[0..n), n > 0.  v is reordered and then overwritten
 * with absolute deviations: pass a copy when the values are still needed.
 */
extern void median_mad_in_place(double *v, int n, double *median, double *mad);

#endif							/* SMARTETL_ROBUST_STATS_H */
