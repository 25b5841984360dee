/*-------------------------------------------------------------------------
 * src/predict/model_data.c
 *		The dense training matrix: growth by doubling with checked sizes,
 *		and the time-ordered train/test split.  See model_data.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <limits.h>
#include <math.h>

#include "predict/model_data.h"

#define MD_FIRST_ROWS 64

/* palloc that returns NULL instead of raising an error when memory is short */
static void *
alloc_or_null(size_t bytes)
{
	return palloc_extended(Max(bytes, 1), MCXT_ALLOC_NO_OOM);
}

const char *
md_init(ModelData *md, int ncols, bool with_weights)
{
	memset(md, 0, sizeof(*md));
	if (ncols < 1 || ncols > MD_MAX_COLS)
		return "the number of features must be between 1 and 10000";
	md->ncols = ncols;
	md->owns_data = true;
	md->w = NULL;
	if (with_weights)
	{
		/* a non-NULL marker until the first row allocates the array */
		md->w = alloc_or_null(sizeof(float));
		if (md->w == NULL)
			return "out of memory";
	}
	return NULL;
}

static float *
alloc_floats(size_t n)
{
	return (float *) alloc_or_null(n * sizeof(float));
}

/* Make room for one more row; NULL or an error message. */
static const char *
reserve_row(ModelData *md)
{
	size_t		max_rows = MD_MAX_BYTES / ((size_t) md->ncols * sizeof(float));
	size_t		cap;
	float	   *x = NULL,
			   *y = NULL,
			   *w = NULL;

	if (md->nrows < md->caprows)
		return NULL;
	if ((size_t) md->nrows >= max_rows || md->nrows >= INT_MAX / 2)
		return "training set too large (the feature matrix is limited to 1 GB)";
	cap = Min(Max((size_t) MD_FIRST_ROWS, 2 * (size_t) md->caprows), max_rows);

	/* allocate all three before touching md, so a failure changes nothing */
	x = alloc_floats(cap * md->ncols);
	y = alloc_floats(cap);
	if (md->w != NULL)
		w = alloc_floats(cap);
	if (x == NULL || y == NULL || (md->w != NULL && w == NULL))
	{
		if (x)
			pfree(x);
		if (y)
			pfree(y);
		if (w)
			pfree(w);
		return "out of memory";
	}
	if (md->nrows > 0)
	{
		memcpy(x, md->x, (size_t) md->nrows * md->ncols * sizeof(float));
		memcpy(y, md->y, (size_t) md->nrows * sizeof(float));
		if (w)
			memcpy(w, md->w, (size_t) md->nrows * sizeof(float));
	}
	if (md->x)
		pfree(md->x);
	if (md->y)
		pfree(md->y);
	if (md->w)
		pfree(md->w);
	md->x = x;
	md->y = y;
	md->w = w;
	md->caprows = (int) cap;
	return NULL;
}

static const char *
check_label_weight(const ModelData *md, double label, double weight)
{
	/* features may be NaN (missing), labels and weights may not */
	if (!isfinite(label))
		return "a label is not a finite number";
	if (md->w != NULL && (!isfinite(weight) || weight < 0))
		return "a weight is negative or not a finite number";
	return NULL;
}

/* XGBoost refuses infinite inputs: say so here, with the row at hand */
static const char *
check_features(const ModelData *md, const float *features)
{
	int			j;

	for (j = 0; j < md->ncols; j++)
		if (isinf(features[j]))
			return "a feature value is infinite (use NaN for a missing value)";
	return NULL;
}

const char *
md_append_row(ModelData *md, const float *features, float label, float weight)
{
	const char *err;

	if (!md->owns_data)
		return "cannot append to a split view";
	if ((err = check_features(md, features)) != NULL ||
		(err = check_label_weight(md, label, weight)) != NULL ||
		(err = reserve_row(md)) != NULL)
		return err;
	memcpy(md->x + (size_t) md->nrows * md->ncols, features,
		   (size_t) md->ncols * sizeof(float));
	md->y[md->nrows] = label;
	if (md->w)
		md->w[md->nrows] = weight;
	md->nrows++;
	return NULL;
}

const char *
md_append_row_double(ModelData *md, const double *features, double label,
					 double weight)
{
	const char *err;
	float	   *row;
	int			j;

	if (!md->owns_data)
		return "cannot append to a split view";
	if ((err = check_label_weight(md, label, weight)) != NULL ||
		(err = reserve_row(md)) != NULL)
		return err;
	row = md->x + (size_t) md->nrows * md->ncols;
	for (j = 0; j < md->ncols; j++)
		row[j] = (float) features[j];
	/* a double beyond FLT_MAX becomes an infinite float */
	if ((err = check_features(md, row)) != NULL)
		return err;
	md->y[md->nrows] = (float) label;
	if (md->w)
		md->w[md->nrows] = (float) weight;
	md->nrows++;
	return NULL;
}

/* A non-owning view of rows [first, first + n) of md. */
static void
make_view(const ModelData *md, int first, int n, ModelData *view)
{
	memset(view, 0, sizeof(*view));
	view->nrows = n;
	view->ncols = md->ncols;
	view->caprows = n;
	view->owns_data = false;
	view->x = md->x + (size_t) first * md->ncols;
	view->y = md->y + first;
	view->w = md->w ? md->w + first : NULL;
}

const char *
md_split_rows(const ModelData *md, int n_train, ModelData *train,
			  ModelData *test)
{
	if (n_train < 1 || n_train >= md->nrows)
		return "a time split needs at least one training row and one test row";
	make_view(md, 0, n_train, train);
	make_view(md, n_train, md->nrows - n_train, test);
	return NULL;
}

const char *
md_split_fraction(const ModelData *md, double test_fraction, ModelData *train,
				  ModelData *test)
{
	int			n_test;

	if (!(test_fraction > 0 && test_fraction < 1))
		return "the test fraction must be between 0 and 1 (exclusive)";
	if (md->nrows < 2)
		return "a time split needs at least two rows";
	n_test = (int) floor(md->nrows * test_fraction + 0.5);
	n_test = Max(1, Min(n_test, md->nrows - 1));
	return md_split_rows(md, md->nrows - n_test, train, test);
}

int
md_count_positive(const ModelData *md)
{
	int			n = 0;
	int			i;

	for (i = 0; i < md->nrows; i++)
		if (md->y[i] > 0.5f)
			n++;
	return n;
}

double *
md_labels_double(const ModelData *md)
{
	double	   *labels = palloc(sizeof(double) * Max(md->nrows, 1));
	int			i;

	for (i = 0; i < md->nrows; i++)
		labels[i] = md->y[i];
	return labels;
}

void
md_free(ModelData *md)
{
	if (!md->owns_data)
		return;
	if (md->x)
		pfree(md->x);
	if (md->y)
		pfree(md->y);
	if (md->w)
		pfree(md->w);
	md->x = md->y = md->w = NULL;
	md->nrows = md->caprows = 0;
}
