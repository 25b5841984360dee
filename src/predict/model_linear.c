/*-------------------------------------------------------------------------
 * src/predict/model_linear.c
 *		Standardised logistic / ridge regression with liblinear, our own
 *		prediction and contributions, and the validated byte format.  See
 *		model_linear.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>
#include <linear.h>

#include "predict/model_linear.h"

static const char linear_magic[4] = {'S', 'E', 'L', 'R'};

/* liblinear prints progress to stdout unless told otherwise */
static void
print_nothing(const char *text)
{
}

void
linear_default_params(LinearParams *p, bool regression)
{
	memset(p, 0, sizeof(*p));
	p->regression = regression;
	p->C = 1.0;
	p->eps = regression ? 0.0001 : 0.01;
	p->positive_weight = 1.0;
}

static LinearModel *
alloc_model(int n_features, bool regression)
{
	LinearModel *m = palloc0(sizeof(LinearModel));

	m->regression = regression;
	m->n_features = n_features;
	m->means = palloc0(sizeof(double) * n_features);
	m->stds = palloc0(sizeof(double) * n_features);
	m->weights = palloc0(sizeof(double) * n_features);
	m->target_mean = 0;
	m->target_std = 1;
	return m;
}

void
linear_free(LinearModel *model)
{
	if (model == NULL)
		return;
	pfree(model->means);
	pfree(model->stds);
	pfree(model->weights);
	pfree(model);
}

/* ---- training ---- */

static const char *
check_training_set(const ModelData *data, const LinearParams *p)
{
	int			pos,
				i;

	if (data->w != NULL)
		return "row weights are not supported by the linear model (liblinear 2.3)";
	if (data->nrows < 2)
		return "at least two training rows are needed";
	if (!(p->C > 0 && isfinite(p->C)))
		return "C must be a positive number";
	if (!(p->eps > 0 && isfinite(p->eps)))
		return "eps must be a positive number";
	if (!(p->positive_weight > 0 && isfinite(p->positive_weight)))
		return "positive_weight must be a positive number";
	if (p->regression)
		return NULL;
	for (i = 0; i < data->nrows; i++)
		if (data->y[i] != 0.0f && data->y[i] != 1.0f)
			return "classifier labels must be 0 or 1";
	pos = md_count_positive(data);
	if (pos == 0 || pos == data->nrows)
		return "the training rows have a single class";
	return NULL;
}

/* Mean and population std of the finite values of column j (std 1 if 0). */
static void
column_stats(const ModelData *data, int j, double *mean, double *std)
{
	double		sum = 0,
				ss = 0;
	int			n = 0,
				i;

	for (i = 0; i < data->nrows; i++)
	{
		float		v = md_row(data, i)[j];

		if (isfinite(v))
		{
			sum += v;
			n++;
		}
	}
	*mean = n > 0 ? sum / n : 0;
	for (i = 0; i < data->nrows; i++)
	{
		float		v = md_row(data, i)[j];

		if (isfinite(v))
			ss += (v - *mean) * (v - *mean);
	}
	*std = n > 0 ? sqrt(ss / n) : 0;
	if (!(*std > 1e-12) || !isfinite(*std) || !isfinite(*mean))
	{
		*std = 1;
		if (!isfinite(*mean))
			*mean = 0;
	}
}

static void
target_stats(const ModelData *data, double *mean, double *std)
{
	double		sum = 0,
				ss = 0;
	int			i;

	for (i = 0; i < data->nrows; i++)
		sum += data->y[i];
	*mean = sum / data->nrows;
	for (i = 0; i < data->nrows; i++)
		ss += (data->y[i] - *mean) * (data->y[i] - *mean);
	*std = sqrt(ss / data->nrows);
	if (!(*std > 1e-12) || !isfinite(*std))
		*std = 1;
}

/* The standardised value of feature j (0 for NaN: imputed with the mean). */
static double
standardize(const LinearModel *m, int j, float v)
{
	if (!isfinite(v))
		return 0;
	return (v - m->means[j]) / m->stds[j];
}

/*
 * liblinear's problem: one sparse row per training row (its non-zero
 * standardised features, the bias feature n+1 = 1, a terminator), all in
 * one palloc'd node array.  False if memory is short.
 */
static bool
build_problem(const ModelData *data, const LinearModel *m,
			  struct problem *prob, struct feature_node **nodes)
{
	size_t		n_nodes = (size_t) data->nrows * (data->ncols + 2);
	struct feature_node *next;
	int			i,
				j;

	memset(prob, 0, sizeof(*prob));
	*nodes = palloc_extended(n_nodes * sizeof(struct feature_node),
							 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	prob->x = palloc_extended(sizeof(struct feature_node *) * data->nrows,
							  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	prob->y = palloc_extended(sizeof(double) * data->nrows,
							  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (*nodes == NULL || prob->x == NULL || prob->y == NULL)
		return false;
	prob->l = data->nrows;
	prob->n = data->ncols + 1;
	prob->bias = 1.0;
	next = *nodes;
	for (i = 0; i < data->nrows; i++)
	{
		const float *row = md_row(data, i);

		prob->x[i] = next;
		for (j = 0; j < data->ncols; j++)
		{
			double		z = standardize(m, j, row[j]);

			if (z != 0)
			{
				next->index = j + 1;
				next->value = z;
				next++;
			}
		}
		next->index = data->ncols + 1;
		next->value = 1.0;
		next++;
		next->index = -1;
		next->value = 0;
		next++;
		prob->y[i] = m->regression ?
			(data->y[i] - m->target_mean) / m->target_std : data->y[i];
	}
	return true;
}

static void
free_problem(struct problem *prob, struct feature_node *nodes)
{
	if (nodes)
		pfree(nodes);
	if (prob->x)
		pfree(prob->x);
	if (prob->y)
		pfree(prob->y);
}

/*
 * Copy liblinear's weights into m.  For a classifier liblinear's decision
 * value is positive for its first label, the one seen first in the data:
 * flip the signs when that is 0, so a positive margin always means "1".
 */
static const char *
copy_weights(const struct model *lm, LinearModel *m)
{
	double		sign = 1;
	int			j;

	if (lm->nr_feature != m->n_features)
		return "liblinear returned a model of another width";
	if (!m->regression)
	{
		if (lm->nr_class != 2)
			return "liblinear did not see two classes";
		sign = lm->label[0] == 1 ? 1 : -1;
	}
	for (j = 0; j < m->n_features; j++)
		m->weights[j] = sign * lm->w[j];
	m->bias = sign * lm->w[m->n_features] * lm->bias;
	return NULL;
}

/* Run liblinear on prob and copy the result into m. */
static const char *
run_liblinear(const struct problem *prob, const LinearParams *p, LinearModel *m)
{
	struct parameter param;
	struct model *lm;
	int			weight_label[1] = {1};
	double		weight[1];
	const char *err;

	memset(&param, 0, sizeof(param));
	param.solver_type = p->regression ? L2R_L2LOSS_SVR : L2R_LR;
	param.eps = p->eps;
	param.C = p->C;
	param.p = 0;				/* SVR epsilon 0: squared loss, i.e. ridge */
	param.init_sol = NULL;
	if (!p->regression && p->positive_weight != 1.0)
	{
		weight[0] = p->positive_weight;
		param.nr_weight = 1;
		param.weight_label = weight_label;
		param.weight = weight;
	}
	set_print_string_function(print_nothing);
	if ((err = check_parameter(prob, &param)) != NULL)
		return err;				/* a static string of liblinear's */
	lm = train(prob, &param);
	if (lm == NULL)
		return "liblinear failed to train";
	err = copy_weights(lm, m);
	free_and_destroy_model(&lm);
	return err;
}

const char *
linear_train(const ModelData *data, const LinearParams *params,
			 LinearModel **out)
{
	LinearModel *m;
	struct problem prob;
	struct feature_node *nodes;
	const char *err;
	int			j;

	*out = NULL;
	if ((err = check_training_set(data, params)) != NULL)
		return err;
	m = alloc_model(data->ncols, params->regression);
	for (j = 0; j < data->ncols; j++)
		column_stats(data, j, &m->means[j], &m->stds[j]);
	if (params->regression)
		target_stats(data, &m->target_mean, &m->target_std);
	if (!build_problem(data, m, &prob, &nodes))
		err = "out of memory";
	else
		err = run_liblinear(&prob, params, m);
	free_problem(&prob, nodes);
	if (err != NULL)
	{
		linear_free(m);
		return err;
	}
	*out = m;
	return NULL;
}

/* ---- prediction ---- */

static double
row_margin(const LinearModel *m, const float *row)
{
	double		margin = m->bias;
	int			j;

	for (j = 0; j < m->n_features; j++)
		margin += m->weights[j] * standardize(m, j, row[j]);
	return margin;
}

/* 1 / (1 + exp(-t)) without overflow for large |t| */
static double
sigmoid(double t)
{
	if (t >= 0)
		return 1.0 / (1.0 + exp(-t));
	return exp(t) / (1.0 + exp(t));
}

static const char *
check_shape(const LinearModel *m, int nrows, int ncols)
{
	if (ncols != m->n_features)
		return "the number of features does not match the model";
	if (nrows < 0)
		return "negative row count";
	return NULL;
}

const char *
linear_predict_margin(const LinearModel *model, const float *x, int nrows,
					  int ncols, double *out)
{
	const char *err = check_shape(model, nrows, ncols);
	int			i;

	if (err)
		return err;
	for (i = 0; i < nrows; i++)
		out[i] = row_margin(model, x + (size_t) i * ncols);
	return NULL;
}

const char *
linear_predict(const LinearModel *model, const float *x, int nrows, int ncols,
			   double *out)
{
	const char *err = linear_predict_margin(model, x, nrows, ncols, out);
	int			i;

	if (err)
		return err;
	for (i = 0; i < nrows; i++)
		out[i] = model->regression ?
			model->target_mean + model->target_std * out[i] : sigmoid(out[i]);
	return NULL;
}

const char *
linear_contributions(const LinearModel *model, const float *x, int nrows,
					 int ncols, double *out)
{
	const char *err = check_shape(model, nrows, ncols);
	double		scale = model->regression ? model->target_std : 1.0;
	double		offset = model->regression ? model->target_mean : 0.0;
	int			i,
				j;

	if (err)
		return err;
	for (i = 0; i < nrows; i++)
	{
		const float *row = x + (size_t) i * ncols;
		double	   *c = out + (size_t) i * (ncols + 1);

		for (j = 0; j < ncols; j++)
			c[j] = scale * model->weights[j] * standardize(model, j, row[j]);
		c[ncols] = offset + scale * model->bias;
	}
	return NULL;
}

/* ---- serialization: little-endian whatever the host ---- */

static void
put_u32(char **p, uint32_t v)
{
	int			i;

	for (i = 0; i < 4; i++)
		*(*p)++ = (char) ((v >> (8 * i)) & 0xff);
}

static void
put_f64(char **p, double d)
{
	uint64_t	v;
	int			i;

	memcpy(&v, &d, sizeof(v));
	for (i = 0; i < 8; i++)
		*(*p)++ = (char) ((v >> (8 * i)) & 0xff);
}

static uint32_t
get_u32(const char **p)
{
	uint32_t	v = 0;
	int			i;

	for (i = 0; i < 4; i++)
		v |= (uint32_t) (unsigned char) *(*p)++ << (8 * i);
	return v;
}

static double
get_f64(const char **p)
{
	uint64_t	v = 0;
	double		d;
	int			i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t) (unsigned char) *(*p)++ << (8 * i);
	memcpy(&d, &v, sizeof(d));
	return d;
}

char *
linear_serialize(const LinearModel *model, size_t *len)
{
	int			n = model->n_features;
	char	   *buf;
	char	   *p;
	int			j;

	*len = LINEAR_HEADER_BYTES + (size_t) n * 3 * sizeof(double);
	buf = palloc(*len);
	p = buf;
	memcpy(p, linear_magic, 4);
	p += 4;
	put_u32(&p, LINEAR_FORMAT_VERSION);
	put_u32(&p, model->regression ? 1 : 0);
	put_u32(&p, (uint32_t) n);
	put_f64(&p, model->bias);
	put_f64(&p, model->target_mean);
	put_f64(&p, model->target_std);
	for (j = 0; j < n; j++)
		put_f64(&p, model->means[j]);
	for (j = 0; j < n; j++)
		put_f64(&p, model->stds[j]);
	for (j = 0; j < n; j++)
		put_f64(&p, model->weights[j]);
	return buf;
}

/* Read n doubles, all finite (and > 0 if positive); false otherwise. */
static bool
get_f64_array(const char **p, int n, bool positive, double *out)
{
	int			j;

	for (j = 0; j < n; j++)
	{
		out[j] = get_f64(p);
		if (!isfinite(out[j]) || (positive && !(out[j] > 0)))
			return false;
	}
	return true;
}

/* The header's fields; NULL or what is wrong with it. */
static const char *
read_header(const char **p, size_t len, uint32_t *kind, uint32_t *n)
{
	if (len < LINEAR_HEADER_BYTES)
		return "linear model truncated (shorter than its header)";
	if (memcmp(*p, linear_magic, 4) != 0)
		return "not a smartetl linear model (bad magic)";
	*p += 4;
	if (get_u32(p) != LINEAR_FORMAT_VERSION)
		return "unknown linear model format version";
	*kind = get_u32(p);
	*n = get_u32(p);
	if (*kind > 1)
		return "unknown linear model kind";
	if (*n < 1 || *n > MD_MAX_COLS)
		return "linear model feature count out of range";
	if (len != LINEAR_HEADER_BYTES + (size_t) *n * 3 * sizeof(double))
		return "linear model length does not match its feature count";
	return NULL;
}

const char *
linear_deserialize(const char *buf, size_t len, LinearModel **out)
{
	const char *p = buf;
	const char *err;
	uint32_t	kind,
				n;
	LinearModel *m;

	*out = NULL;
	if ((err = read_header(&p, len, &kind, &n)) != NULL)
		return err;
	m = alloc_model((int) n, kind == 1);
	m->bias = get_f64(&p);
	m->target_mean = get_f64(&p);
	m->target_std = get_f64(&p);
	if (!isfinite(m->bias) || !isfinite(m->target_mean) ||
		!(isfinite(m->target_std) && m->target_std > 0))
		err = "linear model has a non-finite bias or target scale";
	else if (!m->regression && (m->target_mean != 0 || m->target_std != 1))
		err = "linear classifier with a target scale";
	else if (!get_f64_array(&p, (int) n, false, m->means) ||
			 !get_f64_array(&p, (int) n, true, m->stds) ||
			 !get_f64_array(&p, (int) n, false, m->weights))
		err = "linear model has a non-finite coefficient or a non-positive std";
	if (err != NULL)
	{
		linear_free(m);
		return err;
	}
	*out = m;
	return NULL;
}
