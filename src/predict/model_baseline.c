/*-------------------------------------------------------------------------
 * src/predict/model_baseline.c
 *		Baseline risk "models": one feature through a fixed transform.
 *		See model_baseline.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "predict/model_baseline.h"
#include "predict/risk_features.h"

static const char magic[4] = {'S', 'E', 'B', 'L'};

const BaselineSpec baseline_specs[BASELINE_COUNT] = {
	{"fail_rate_7d", "failure rate of the last 7 days", RF_FAIL_RATE_7D, BASELINE_IDENTITY},
	{"fail_count_7d", "failure count of the last 7 days", RF_FAIL_COUNT_7D, BASELINE_LOG1P},
	{"last_failed", "last outcome repeated", RF_LAST_FAILED, BASELINE_IDENTITY}
};

double
baseline_score(BaselineTransform transform, double x)
{
	if (isnan(x))
		return 0.0;
	return transform == BASELINE_LOG1P ? log1p(fmax(x, 0.0)) : x;
}

BaselineModel *
baseline_make(int i, int n_features)
{
	BaselineModel *m = palloc0(sizeof(BaselineModel));

	m->n_features = n_features;
	m->feature = baseline_specs[i].feature;
	m->transform = baseline_specs[i].transform;
	return m;
}

static const char *
check_shape(const BaselineModel *m, int ncols)
{
	if (ncols != m->n_features)
		return "the feature count does not match the baseline's";
	return NULL;
}

const char *
baseline_predict_margin(const BaselineModel *m, const float *x, int nrows, int ncols, double *out)
{
	const char *err = check_shape(m, ncols);
	int			i;

	if (err)
		return err;
	for (i = 0; i < nrows; i++)
		out[i] = baseline_score(m->transform, x[(size_t) i * ncols + m->feature]);
	return NULL;
}

const char *
baseline_predict(const BaselineModel *m, const float *x, int nrows, int ncols, double *out)
{
	const char *err = baseline_predict_margin(m, x, nrows, ncols, out);
	int			i;

	if (err)
		return err;
	for (i = 0; i < nrows; i++)
		out[i] = 1.0 / (1.0 + exp(-out[i]));
	return NULL;
}

const char *
baseline_contributions(const BaselineModel *m, const float *x, int nrows, int ncols, double *out)
{
	const char *err = check_shape(m, ncols);
	int			i;

	if (err)
		return err;
	memset(out, 0, sizeof(double) * (size_t) nrows * (ncols + 1));
	for (i = 0; i < nrows; i++)
		out[(size_t) i * (ncols + 1) + m->feature] =
			baseline_score(m->transform, x[(size_t) i * ncols + m->feature]);
	return NULL;
}

static void
put_u32(char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static uint32_t
get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return u[0] | (u[1] << 8) | (u[2] << 16) | ((uint32_t) u[3] << 24);
}

char *
baseline_serialize(const BaselineModel *m, size_t *len)
{
	char	   *b = palloc(BASELINE_BYTES);

	memcpy(b, magic, 4);
	put_u32(b + 4, BASELINE_FORMAT_VERSION);
	put_u32(b + 8, (uint32_t) m->n_features);
	put_u32(b + 12, (uint32_t) m->feature);
	put_u32(b + 16, (uint32_t) m->transform);
	*len = BASELINE_BYTES;
	return b;
}

const char *
baseline_deserialize(const char *buf, size_t len, BaselineModel **out)
{
	BaselineModel m;

	*out = NULL;
	if (len != BASELINE_BYTES)
		return "a baseline model is 20 bytes";
	if (memcmp(buf, magic, 4) != 0)
		return "not a baseline model (bad magic)";
	if (get_u32(buf + 4) != BASELINE_FORMAT_VERSION)
		return "unknown baseline model version";
	m.n_features = (int) get_u32(buf + 8);
	m.feature = (int) get_u32(buf + 12);
	m.transform = (BaselineTransform) get_u32(buf + 16);
	if (m.n_features < 1 || m.n_features > 10000 || m.feature < 0 || m.feature >= m.n_features)
		return "the baseline's feature is out of range";
	if (m.transform != BASELINE_IDENTITY && m.transform != BASELINE_LOG1P)
		return "unknown baseline transform";
	*out = palloc(sizeof(BaselineModel));
	**out = m;
	return NULL;
}

void
baseline_free(BaselineModel *m)
{
	if (m)
		pfree(m);
}
