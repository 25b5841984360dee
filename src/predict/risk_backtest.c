/*-------------------------------------------------------------------------
 * src/predict/risk_backtest.c
 *		Rolling-origin evaluation of the failure-risk candidates (baselines
 *		and learned models) with out-of-time calibration, and the choice of
 *		the candidate to serve.  See risk_backtest.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>
#include <time.h>

#include "predict/risk_backtest.h"

static char backtest_error[256];

void
risk_backtest_default_params(RiskBacktestParams *p)
{
	memset(p, 0, sizeof(*p));
	p->horizon = 86400;
	p->step = 6 * 3600;
	p->from = NAN;
	p->until = NAN;
	p->folds = 3;
	p->validation_share = 0.3;
	p->min_gain = 0.02;
	p->bootstrap = 200;
	p->xgboost = true;
	p->linear = false;
	/*
	 * Shallower, slower and subsampled trees than smartetl.train's
	 * defaults: run histories are small and noisy, and these held up
	 * out of time on the development histories (see BENCHMARKS.md).
	 */
	xgb_default_params(&p->xgb, false);
	p->xgb.max_depth = 3;
	p->xgb.eta = 0.05;
	p->xgb.n_rounds = 200;
	p->xgb.min_child_weight = 10;
	p->xgb.subsample = 0.8;
	p->xgb.colsample_bytree = 0.8;
	linear_default_params(&p->lin, false);
}

/* First row with t >= x (rows sorted by t). */
static int
lower_bound(const double *t, int n, double x)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (t[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First row with t > x. */
static int
upper_bound(const double *t, int n, double x)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (t[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static double
logit(double p)
{
	p = fmin(fmax(p, 1e-6), 1 - 1e-6);
	return log(p / (1 - p));
}

static double
sigmoid(double z)
{
	return 1.0 / (1.0 + exp(-z));
}

const char *
risk_platt_fit(const double *score, const float *label, int n, double *a, double *b)
{
	ModelData	one;
	LinearParams p;
	LinearModel *lm = NULL;
	const char *err;
	int			i,
				pos = 0;
	double		mean = 0;

	for (i = 0; i < n; i++)
	{
		pos += label[i] > 0.5f;
		mean += score[i];
	}
	*a = 1.0;
	*b = 0.0;
	if (n == 0)
		return NULL;
	mean /= n;
	if (pos == 0 || pos == n)
	{
		/* one class: keep the order, move the mean to the smoothed base rate */
		*b = logit((pos + 0.5) / (n + 1.0)) - mean;
		return NULL;
	}
	if ((err = md_init(&one, 1, false)) != NULL)
		return err;
	for (i = 0; i < n; i++)
		if ((err = md_append_row_double(&one, &score[i], label[i], 1.0)) != NULL)
		{
			md_free(&one);
			return err;
		}
	linear_default_params(&p, false);
	p.C = 100.0;				/* two parameters: barely regularised */
	err = linear_train(&one, &p, &lm);
	md_free(&one);
	if (err)
		return err;
	/* liblinear standardised the score: undo it */
	*a = lm->weights[0] / lm->stds[0];
	*b = lm->bias - *a * lm->means[0];
	linear_free(lm);
	if (!isfinite(*a) || !isfinite(*b))
	{
		*a = 1.0;
		*b = 0.0;
	}
	return NULL;
}

double
risk_weighted_auc(const int *order, const double *score, const float *label,
				  const double *weight, int n)
{
	double		wpos = 0,
				wneg = 0,
				sum = 0;
	int			i,
				j;

	for (i = 0; i < n; i = j)
	{
		double		gpos = 0,
					gneg = 0;

		/* rows i .. j-1 share one score: half a correct ordering each */
		for (j = i; j < n && score[order[j]] == score[order[i]]; j++)
		{
			double		w = weight ? weight[order[j]] : 1.0;

			if (label[order[j]] > 0.5f)
				gpos += w;
			else
				gneg += w;
		}
		sum += gpos * (wneg + 0.5 * gneg);
		wpos += gpos;
		wneg += gneg;
	}
	if (wpos <= 0 || wneg <= 0)
		return NAN;
	return sum / (wpos * wneg);
}

/* ---- sorting row indexes by a score ---- */

static const double *sort_key;

static int
cmp_by_key(const void *a, const void *b)
{
	double		x = sort_key[*(const int *) a],
				y = sort_key[*(const int *) b];

	return x < y ? -1 : x > y ? 1 : (*(const int *) a - *(const int *) b);
}

static int *
order_by(const double *key, int n)
{
	int		   *o = palloc(sizeof(int) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		o[i] = i;
	sort_key = key;
	qsort(o, n, sizeof(int), cmp_by_key);
	return o;
}

/* ---- seeded PRNG for the bootstrap: splitmix64 ---- */

static uint64_t
splitmix(uint64_t *state)
{
	uint64_t	z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/*
 * Standard error of AUC(a) - AUC(b) over the rows, resampling whole
 * groups (pipelines) with replacement.
 */
static double
bootstrap_gain_se(const double *a, const double *b, const float *label, const int64_t *group,
				  int n, int replicates)
{
	int64_t    *ids = palloc(sizeof(int64_t) * Max(n, 1));
	int		   *gi = palloc(sizeof(int) * Max(n, 1));
	int		   *oa = order_by(a, n);
	int		   *ob = order_by(b, n);
	double	   *w = palloc(sizeof(double) * Max(n, 1));
	double	   *count;
	int			ng = 0,
				i,
				r,
				used = 0;
	double		sum = 0,
				sum2 = 0;
	uint64_t	state = 20240501;

	memcpy(ids, group, sizeof(int64_t) * n);
	qsort(ids, n, sizeof(int64_t), cmp_int64);
	for (i = 0; i < n; i++)
		if (i == 0 || ids[i] != ids[ng - 1])
			ids[ng++] = ids[i];
	for (i = 0; i < n; i++)
	{
		int64_t    *hit = bsearch(&group[i], ids, ng, sizeof(int64_t), cmp_int64);

		gi[i] = (int) (hit - ids);
	}
	count = palloc(sizeof(double) * Max(ng, 1));
	for (r = 0; r < replicates && ng > 1; r++)
	{
		double		d;

		memset(count, 0, sizeof(double) * ng);
		for (i = 0; i < ng; i++)
			count[splitmix(&state) % (uint64_t) ng] += 1;
		for (i = 0; i < n; i++)
			w[i] = count[gi[i]];
		d = risk_weighted_auc(oa, a, label, w, n) - risk_weighted_auc(ob, b, label, w, n);
		if (isnan(d))
			continue;
		sum += d;
		sum2 += d * d;
		used++;
	}
	pfree(ids);
	pfree(gi);
	pfree(oa);
	pfree(ob);
	pfree(w);
	pfree(count);
	if (used < 2)
		return NAN;
	return sqrt(fmax(0.0, (sum2 - sum * sum / used) / (used - 1)));
}

/* ---- fitting one learned candidate ---- */

static const char *
fit_learned(const RiskCandidate *c, const RiskBacktestParams *p, const ModelData *train,
			XgbModel **xgb, LinearModel **lin)
{
	*xgb = NULL;
	*lin = NULL;
	if (c->kind == RISK_XGBOOST)
		return xgb_train(train, &p->xgb, xgb);
	return linear_train(train, &p->lin, lin);
}

static const char *
margin_learned(const RiskCandidate *c, XgbModel *xgb, LinearModel *lin, const float *x, int nrows,
			   int ncols, double *out)
{
	if (c->kind == RISK_XGBOOST)
		return xgb_predict_margin(xgb, x, nrows, ncols, out);
	return linear_predict_margin(lin, x, nrows, ncols, out);
}

/* A view of the first n rows of md. */
static ModelData
prefix_view(const ModelData *md, int n)
{
	ModelData	v = *md;

	v.nrows = n;
	v.caprows = n;
	v.owns_data = false;
	return v;
}

/*
 * Scores of candidate c for rows [from, to) of block k, trained on the
 * first ntrain rows (learned) or read from the feature (baselines).
 */
static const char *
score_block(const RiskSamples *s, const RiskBacktestParams *p, const RiskCandidate *c,
			int ntrain, int from, int to, double *out)
{
	const ModelData *md = &s->md;
	int			i,
				pos = 0;
	ModelData	train;
	XgbModel   *xgb;
	LinearModel *lin;
	const char *err;

	if (c->kind == RISK_BASELINE)
	{
		const BaselineSpec *b = &baseline_specs[c->baseline];

		for (i = from; i < to; i++)
			out[i] = baseline_score(b->transform, md_row(md, i)[b->feature]);
		return NULL;
	}
	for (i = 0; i < ntrain; i++)
		pos += md->y[i] > 0.5f;
	if (ntrain < 10 || pos == 0 || pos == ntrain)
	{
		/* nothing to learn from yet: the smoothed base rate */
		for (i = from; i < to; i++)
			out[i] = logit((pos + 0.5) / (ntrain + 1.0));
		return NULL;
	}
	train = prefix_view(md, ntrain);
	if ((err = fit_learned(c, p, &train, &xgb, &lin)) != NULL)
		return err;
	err = margin_learned(c, xgb, lin, md_row(md, from), to - from, md->ncols, out + from);
	xgb_free(xgb);
	linear_free(lin);
	return err;
}

static void
add_candidate(RiskBacktestResult *r, RiskCandidateKind kind, int baseline)
{
	RiskCandidate *c = &r->candidates[r->ncandidates++];

	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->baseline = baseline;
	c->gain = NAN;
	c->gain_se = NAN;
	c->platt_a = 1.0;
	if (kind == RISK_BASELINE)
		snprintf(c->name, sizeof(c->name), "baseline:%s", baseline_specs[baseline].name);
	else
		snprintf(c->name, sizeof(c->name), "%s", kind == RISK_XGBOOST ? "xgboost" : "linear");
}

static double
auc_or_minus(double auc)
{
	return isnan(auc) ? -1.0 : auc;
}

const char *
risk_backtest(const RiskSamples *s, const RiskBacktestParams *p,
			  bool (*cancel) (void *), void *cancel_arg, RiskBacktestResult *r)
{
	const ModelData *md = &s->md;
	int			n = md->nrows,
				nb = p->folds + 1,
				k,
				c,
				i;
	int			bstart[RISK_MAX_FOLDS + 1],
				ntrain[RISK_MAX_FOLDS];
	double		lo,
				end,
				from,
				bl;
	double	   *labels,
			  **raw,
			  **prob;
	int			s0,
				s1,
				e;
	const char *err;

	memset(r, 0, sizeof(*r));
	r->best_baseline = r->served = -1;
	if (n < 1)
		return "no samples";
	if (!(p->horizon > 0) || !(p->step > 0))
		return "horizon and step must be positive";
	if (p->folds < 1 || nb > RISK_MAX_FOLDS)
		return "folds must be between 1 and 11";
	lo = s->t[0];
	end = isnan(p->until) ? s->t[n - 1] + p->step : p->until;
	if (isnan(p->from))
	{
		bl = fmax(p->step, round(p->validation_share * (end - lo) / p->folds / p->step) * p->step);
		from = end - p->folds * bl;
	}
	else
	{
		from = p->from;
		bl = (end - from) / p->folds;
	}
	if (!(bl > 0))
		return "the evaluated period is empty";
	for (k = 0; k <= nb; k++)
		bstart[k] = lower_bound(s->t, n, from + (k - 1) * bl);
	for (k = 0; k < nb; k++)
		ntrain[k] = upper_bound(s->t, n, from + (k - 1) * bl - p->horizon);
	s0 = bstart[0];
	s1 = bstart[1];
	e = bstart[nb];
	if (ntrain[1] == 0 || e == s1)
	{
		snprintf(backtest_error, sizeof(backtest_error),
				 "not enough history for a rolling-origin evaluation: %d samples, none %s",
				 n, e == s1 ? "in the evaluated period" : "known before its first block");
		return backtest_error;
	}
	r->from = from;
	r->until = end;
	r->block = bl;
	r->scored_rows = e - s1;

	for (i = 0; i < BASELINE_COUNT; i++)
		add_candidate(r, RISK_BASELINE, i);
	if (p->xgboost)
		add_candidate(r, RISK_XGBOOST, -1);
	if (p->linear)
		add_candidate(r, RISK_LINEAR, -1);

	labels = md_labels_double(md);
	raw = palloc(sizeof(double *) * r->ncandidates);
	prob = palloc(sizeof(double *) * r->ncandidates);
	for (c = 0; c < r->ncandidates; c++)
	{
		RiskCandidate *cand = &r->candidates[c];

		raw[c] = palloc(sizeof(double) * n);
		prob[c] = palloc(sizeof(double) * n);
		for (k = 0; k < nb; k++)
		{
			if (cancel && cancel(cancel_arg))
				return "training cancelled";
			if ((err = score_block(s, p, cand, ntrain[k], bstart[k], bstart[k + 1], raw[c])) != NULL)
				return err;
		}
		/* each scored block calibrated on the blocks before it */
		for (k = 1; k < nb; k++)
		{
			double		a,
						b;

			if ((err = risk_platt_fit(raw[c] + s0, md->y + s0, bstart[k] - s0, &a, &b)) != NULL)
				return err;
			for (i = bstart[k]; i < bstart[k + 1]; i++)
				prob[c][i] = sigmoid(a * raw[c][i] + b);
			cand->block_from[k - 1] = from + (k - 1) * bl;
			cand->block_n[k - 1] = bstart[k + 1] - bstart[k];
			cand->block_auc[k - 1] = mm_roc_auc(prob[c] + bstart[k], labels + bstart[k], cand->block_n[k - 1]);
			for (i = bstart[k]; i < bstart[k + 1]; i++)
				cand->block_positives[k - 1] += md->y[i] > 0.5f;
		}
		cand->nblocks = nb - 1;
		mm_classifier_report(prob[c] + s1, labels + s1, e - s1, 10, &cand->report);
		/* served with a calibration fitted on every block */
		if ((err = risk_platt_fit(raw[c] + s0, md->y + s0, e - s0, &cand->platt_a, &cand->platt_b)) != NULL)
			return err;
	}

	/* the best baseline, then the learned candidates against it */
	r->best_baseline = 0;
	for (c = 1; c < BASELINE_COUNT; c++)
		if (auc_or_minus(r->candidates[c].report.roc_auc) >
			auc_or_minus(r->candidates[r->best_baseline].report.roc_auc))
			r->best_baseline = c;
	r->served = r->best_baseline;
	{
		double		best = -INFINITY;
		RiskCandidate *base = &r->candidates[r->best_baseline];

		for (c = BASELINE_COUNT; c < r->ncandidates; c++)
		{
			RiskCandidate *cand = &r->candidates[c];
			double		lower;

			cand->gain = cand->report.roc_auc - base->report.roc_auc;
			if (isnan(cand->gain))
				continue;
			cand->gain_se = bootstrap_gain_se(prob[c] + s1, prob[r->best_baseline] + s1, md->y + s1,
											  s->group + s1, e - s1, p->bootstrap);
			lower = cand->gain - (isnan(cand->gain_se) ? 0 : cand->gain_se);
			if (lower >= p->min_gain && lower > best)
			{
				best = lower;
				r->served = c;
			}
		}
	}
	r->candidates[r->served].served = true;

	if (p->final)
	{
		int			pos = md_count_positive(md);

		for (c = BASELINE_COUNT; c < r->ncandidates; c++)
		{
			RiskCandidate *cand = &r->candidates[c];
			clock_t		t0 = clock();

			if (pos == 0 || pos == n)
				return "every sample has the same label: no run failed within the horizon of a sample, or every one did";
			if (cancel && cancel(cancel_arg))
				return "training cancelled";
			if ((err = fit_learned(cand, p, md, &cand->xgb, &cand->lin)) != NULL)
				return err;
			cand->train_rows = n;
			cand->train_seconds = (double) (clock() - t0) / CLOCKS_PER_SEC;
		}
	}
	for (c = 0; c < r->ncandidates; c++)
	{
		pfree(raw[c]);
		pfree(prob[c]);
	}
	pfree(raw);
	pfree(prob);
	pfree(labels);
	return NULL;
}

void
risk_backtest_free(RiskBacktestResult *r)
{
	int			c;

	for (c = 0; c < r->ncandidates; c++)
	{
		xgb_free(r->candidates[c].xgb);
		linear_free(r->candidates[c].lin);
		r->candidates[c].xgb = NULL;
		r->candidates[c].lin = NULL;
	}
}
