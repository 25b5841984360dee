/*-------------------------------------------------------------------------
 * src/predict/model_data.h
 *		The dense training matrix every model of src/predict/ learns from.
 *
 * A ModelData holds rows x cols float features in row-major order, one
 * float label per row and, optionally, one float weight per row.  Floats,
 * not doubles, because that is what XGBoost's DMatrix takes and it halves
 * the memory of a large training set; a missing feature value is NaN.
 *
 * A feature may be NaN (missing) but not infinite: XGBoost refuses
 * infinities, so md_append_row does too, naming the problem early.
 *
 * Rows are appended one at a time as the SQL layer reads them, and the
 * arrays grow by doubling.  Every allocation is checked against
 * MD_MAX_BYTES and made with MCXT_ALLOC_NO_OOM, so a too-large training set
 * is an error message returned to the caller, never an ereport() from deep
 * inside: the caller decides how to report it.
 *
 * Evaluation splits are by time, never random: the caller appends rows in
 * time order and md_split_rows() / md_split_fraction() hand back the first
 * rows as the training part and the rest as the test part, so a model is
 * always judged on runs later than the ones it learnt from.  The two parts
 * are views into the parent's arrays (they own nothing).
 *
 * Frontend-safe (palloc only), so test/predict/test_models.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_DATA_H
#define SMARTETL_MODEL_DATA_H

#include <stdbool.h>
#include <stddef.h>

/* largest single array: the backend's palloc limit, 1 GB - 1 */
#define MD_MAX_BYTES ((size_t) 0x3fffffff)
#define MD_MAX_COLS 10000

typedef struct ModelData
{
	int			nrows;
	int			ncols;
	int			caprows;		/* rows allocated */
	bool		owns_data;		/* false for the views md_split_* returns */
	float	   *x;				/* nrows * ncols, row-major; NaN = missing */
	float	   *y;				/* nrows labels: 0/1 for a classifier */
	float	   *w;				/* nrows weights, or NULL (all 1) */
} ModelData;

/*
 * Start an empty matrix of ncols features (1..MD_MAX_COLS).  with_weights
 * asks for a per-row weight array.  Returns NULL or an error message.
 */
extern const char *md_init(ModelData *md, int ncols, bool with_weights);

/*
 * Append one row: ncols features, its label, its weight (ignored without
 * weights).  Returns NULL, or an error message (non-finite label or weight,
 * negative weight, matrix too large, out of memory) leaving md unchanged.
 */
extern const char *md_append_row(ModelData *md, const float *features,
								 float label, float weight);

/* Same, from doubles (what a float8[] gives); values are cast to float. */
extern const char *md_append_row_double(ModelData *md, const double *features,
										double label, double weight);

/* Pointer to row i's ncols features. */
static inline const float *
md_row(const ModelData *md, int i)
{
	return md->x + (size_t) i * md->ncols;
}

/*
 * Split into the first n_train rows and the rest.  Both parts must be
 * non-empty.  train and test are views into md: free md, not them.
 */
extern const char *md_split_rows(const ModelData *md, int n_train,
								 ModelData *train, ModelData *test);

/*
 * Time split: the last round(nrows * test_fraction) rows (at least one,
 * at most nrows - 1) are the test part.  test_fraction in (0, 1).
 */
extern const char *md_split_fraction(const ModelData *md, double test_fraction,
									 ModelData *train, ModelData *test);

/* Count rows whose label is > 0.5 (the positives of a classifier). */
extern int	md_count_positive(const ModelData *md);

/* The labels as a palloc'd double array, for the metrics of model_metrics.h. */
extern double *md_labels_double(const ModelData *md);

/* Release the arrays of a matrix md_init made; no-op on a view. */
extern void md_free(ModelData *md);

#endif							/* SMARTETL_MODEL_DATA_H */
