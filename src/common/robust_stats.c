/*-------------------------------------------------------------------------
 * src/common/robust_stats.c
 *		Median and MAD; see robust_stats.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/robust_stats.h"

int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Median of n sorted values. */
static double
sorted_median(const double *v, int n)
{
	return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

void
median_mad_in_place(double *v, int n, double *median, double *mad)
{
	int			i;

	qsort(v, n, sizeof(double), double_cmp);
	*median = sorted_median(v, n);
	for (i = 0; i < n; i++)
		v[i] = fabs(v[i] - *median);
	qsort(v, n, sizeof(double), double_cmp);
	*mad = sorted_median(v, n);
}
