/*-------------------------------------------------------------------------
 * src/predict/model_metrics.c
 *		Classifier and regressor metrics, calibration table and population
 *		stability index.  See model_metrics.h for the definitions.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/robust_stats.h"
#include "predict/model_metrics.h"

/* A prediction with its label and row number, for sorting. */
typedef struct ScoredRow
{
	double		pred;
	bool		positive;
	int			row;
} ScoredRow;

static bool
is_positive(double label)
{
	return label > 0.5;
}

static bool
any_nan(const double *v, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (isnan(v[i]))
			return true;
	return false;
}

static int
count_positive(const double *label, int n)
{
	int			pos = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (is_positive(label[i]))
			pos++;
	return pos;
}

/* ascending prediction, then row order */
static int
cmp_ascending(const void *a, const void *b)
{
	const ScoredRow *x = a;
	const ScoredRow *y = b;

	if (x->pred != y->pred)
		return x->pred < y->pred ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

/* descending prediction, then row order */
static int
cmp_descending(const void *a, const void *b)
{
	const ScoredRow *x = a;
	const ScoredRow *y = b;

	if (x->pred != y->pred)
		return x->pred > y->pred ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

/* A palloc'd copy of the rows sorted by cmp; the caller pfrees it. */
static ScoredRow *
sorted_rows(const double *pred, const double *label, int n,
			int (*cmp) (const void *, const void *))
{
	ScoredRow  *rows = palloc(sizeof(ScoredRow) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		rows[i].pred = pred[i];
		rows[i].positive = is_positive(label[i]);
		rows[i].row = i;
	}
	qsort(rows, n, sizeof(ScoredRow), cmp);
	return rows;
}

double
mm_roc_auc(const double *pred, const double *label, int n)
{
	int			pos = count_positive(label, n);
	int			neg = n - pos;
	ScoredRow  *rows;
	double		rank_sum = 0;
	int			i,
				j;

	if (pos == 0 || neg == 0 || any_nan(pred, n))
		return NAN;
	rows = sorted_rows(pred, label, n, cmp_ascending);
	for (i = 0; i < n; i = j)
	{
		double		avg_rank;
		int			k;

		/* rows i .. j-1 share one score: each gets the average of ranks i+1 .. j */
		for (j = i + 1; j < n && rows[j].pred == rows[i].pred; j++)
			;
		avg_rank = (i + 1 + j) / 2.0;
		for (k = i; k < j; k++)
			if (rows[k].positive)
				rank_sum += avg_rank;
	}
	pfree(rows);
	return (rank_sum - (double) pos * (pos + 1) / 2.0) / ((double) pos * neg);
}

double
mm_average_precision(const double *pred, const double *label, int n)
{
	int			pos = count_positive(label, n);
	ScoredRow  *rows;
	double		ap = 0,
				prev_recall = 0;
	int			tp = 0,
				i,
				j;

	if (pos == 0 || any_nan(pred, n))
		return NAN;
	rows = sorted_rows(pred, label, n, cmp_descending);
	for (i = 0; i < n; i = j)
	{
		double		recall;

		/* one threshold per distinct score: take the whole tie group */
		for (j = i; j < n && rows[j].pred == rows[i].pred; j++)
			if (rows[j].positive)
				tp++;
		recall = (double) tp / pos;
		ap += (recall - prev_recall) * ((double) tp / j);
		prev_recall = recall;
	}
	pfree(rows);
	return ap;
}

double
mm_brier(const double *pred, const double *label, int n)
{
	double		sum = 0;
	int			i;

	if (n <= 0)
		return NAN;
	for (i = 0; i < n; i++)
	{
		double		d = pred[i] - (is_positive(label[i]) ? 1.0 : 0.0);

		sum += d * d;
	}
	return sum / n;
}

double
mm_log_loss(const double *pred, const double *label, int n)
{
	double		sum = 0;
	int			i;

	if (n <= 0)
		return NAN;
	for (i = 0; i < n; i++)
	{
		double		p = Min(Max(pred[i], MM_LOGLOSS_CLIP), 1.0 - MM_LOGLOSS_CLIP);

		sum -= is_positive(label[i]) ? log(p) : log(1.0 - p);
	}
	return sum / n;
}

void
mm_top_k(const double *pred, const double *label, int n, int k,
		 double *precision, double *recall)
{
	int			pos = count_positive(label, n);
	ScoredRow  *rows;
	int			tp = 0,
				i;

	*precision = *recall = NAN;
	if (n <= 0 || any_nan(pred, n))
		return;
	k = Max(0, Min(k, n));
	rows = sorted_rows(pred, label, n, cmp_descending);
	for (i = 0; i < k; i++)
		if (rows[i].positive)
			tp++;
	pfree(rows);
	if (k > 0)
		*precision = (double) tp / k;
	if (pos > 0)
		*recall = (double) tp / pos;
}

int
mm_calibration(const double *pred, const double *label, int n, int nbins,
			   MMCalibrationBin *bins)
{
	ScoredRow  *rows;
	int			used = 0,
				b;

	if (n <= 0 || nbins <= 0 || any_nan(pred, n))
		return 0;
	rows = sorted_rows(pred, label, n, cmp_ascending);
	for (b = 0; b < nbins; b++)
	{
		int			first = (int) ((int64_t) b * n / nbins);
		int			end = (int) ((int64_t) (b + 1) * n / nbins);
		double		sum_pred = 0;
		int			positives = 0,
					i;

		if (end <= first)
			continue;
		for (i = first; i < end; i++)
		{
			sum_pred += rows[i].pred;
			positives += rows[i].positive ? 1 : 0;
		}
		bins[used].count = end - first;
		bins[used].mean_predicted = sum_pred / (end - first);
		bins[used].observed_rate = (double) positives / (end - first);
		used++;
	}
	pfree(rows);
	return used;
}

void
mm_accuracy_f1(const double *pred, const double *label, int n,
			   double *accuracy, double *f1)
{
	int			tp = 0,
				fp = 0,
				fn = 0,
				tn = 0,
				i;

	*accuracy = *f1 = NAN;
	if (n <= 0 || any_nan(pred, n))
		return;
	for (i = 0; i < n; i++)
	{
		bool		predicted = pred[i] >= 0.5;
		bool		actual = is_positive(label[i]);

		if (predicted && actual)
			tp++;
		else if (predicted)
			fp++;
		else if (actual)
			fn++;
		else
			tn++;
	}
	*accuracy = (double) (tp + tn) / n;
	*f1 = tp == 0 ? 0.0 : 2.0 * tp / (2.0 * tp + fp + fn);
}

void
mm_rmse_r2(const double *pred, const double *actual, int n,
		   double *rmse, double *r2)
{
	double		mean = 0,
				ss_res = 0,
				ss_tot = 0;
	int			i;

	*rmse = *r2 = NAN;
	if (n <= 0)
		return;
	for (i = 0; i < n; i++)
		mean += actual[i];
	mean /= n;
	for (i = 0; i < n; i++)
	{
		ss_res += (actual[i] - pred[i]) * (actual[i] - pred[i]);
		ss_tot += (actual[i] - mean) * (actual[i] - mean);
	}
	*rmse = sqrt(ss_res / n);
	if (ss_tot > 0)
		*r2 = 1.0 - ss_res / ss_tot;
}

void
mm_classifier_report(const double *pred, const double *label, int n,
					 int top_k, MMClassifierReport *report)
{
	memset(report, 0, sizeof(*report));
	report->n = n;
	report->positives = count_positive(label, n);
	report->roc_auc = mm_roc_auc(pred, label, n);
	report->pr_auc = mm_average_precision(pred, label, n);
	report->brier = mm_brier(pred, label, n);
	report->log_loss = mm_log_loss(pred, label, n);
	report->top_k = Max(0, Min(top_k, n));
	mm_top_k(pred, label, n, top_k, &report->precision_at_k, &report->recall_at_k);
	mm_accuracy_f1(pred, label, n, &report->accuracy, &report->f1);
	report->n_calibration = mm_calibration(pred, label, n, MM_CALIBRATION_BINS,
										   report->calibration);
}

/* ---- population stability index ---- */

/* The non-NaN values of v, sorted, palloc'd; their number in *m. */
static double *
sorted_values(const double *v, int n, int *m)
{
	double	   *s = palloc(sizeof(double) * Max(n, 1));
	int			i;

	*m = 0;
	for (i = 0; i < n; i++)
		if (!isnan(v[i]))
			s[(*m)++] = v[i];
	qsort(s, *m, sizeof(double), double_cmp);
	return s;
}

/* percentile_cont(p) of m sorted values */
static double
percentile_cont(const double *sorted, int m, double p)
{
	double		pos = p * (m - 1);
	int			lo = (int) floor(pos);
	double		frac = pos - lo;

	if (lo + 1 >= m || frac == 0)
		return sorted[lo];
	return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

static int
psi_bin(const double *cuts, double x)
{
	int			b;

	for (b = 0; b < MM_PSI_BINS - 1; b++)
		if (x <= cuts[b])
			return b;
	return MM_PSI_BINS - 1;
}

/* Shares of the non-NaN values of v in each bin; false if there are none. */
static bool
bin_shares(const double *cuts, const double *v, int n, double *shares)
{
	int			counts[MM_PSI_BINS] = {0};
	int			m = 0,
				i,
				b;

	for (i = 0; i < n; i++)
	{
		if (isnan(v[i]))
			continue;
		counts[psi_bin(cuts, v[i])]++;
		m++;
	}
	for (b = 0; b < MM_PSI_BINS; b++)
		shares[b] = m > 0 ? (double) counts[b] / m : 0;
	return m > 0;
}

const char *
mm_psi_reference(const double *reference, int n, MMPsiReference *ref)
{
	int			m,
				b;
	double	   *sorted = sorted_values(reference, n, &m);

	memset(ref, 0, sizeof(*ref));
	if (m == 0)
	{
		pfree(sorted);
		return "the reference sample has no value";
	}
	for (b = 0; b < MM_PSI_BINS - 1; b++)
		ref->cuts[b] = percentile_cont(sorted, m, (double) (b + 1) / MM_PSI_BINS);
	pfree(sorted);
	bin_shares(ref->cuts, reference, n, ref->shares);
	return NULL;
}

double
mm_psi_against(const MMPsiReference *ref, const double *current, int n)
{
	double		shares[MM_PSI_BINS];
	double		psi = 0;
	int			b;

	if (!bin_shares(ref->cuts, current, n, shares))
		return NAN;
	for (b = 0; b < MM_PSI_BINS; b++)
	{
		double		e = Max(ref->shares[b], MM_PSI_EPSILON);
		double		a = Max(shares[b], MM_PSI_EPSILON);

		psi += (a - e) * log(a / e);
	}
	return psi;
}

double
mm_psi(const double *reference, int n_reference, const double *current,
	   int n_current)
{
	MMPsiReference ref;

	if (mm_psi_reference(reference, n_reference, &ref) != NULL)
		return NAN;
	return mm_psi_against(&ref, current, n_current);
}
