/*-------------------------------------------------------------------------
 * src/kpi/qsketch_core.h
 *		A mergeable quantile sketch with a relative-error guarantee, in the
 *		manner of DDSketch (Masson, Rim, Lee, VLDB 2019).
 *
 * A positive value x is counted in bucket i = ceil(log_gamma(x)), with
 * gamma = (1 + alpha) / (1 - alpha); every value in a bucket is within a
 * relative distance alpha of the bucket's representative 2 gamma^i /
 * (gamma + 1).  Negative values are counted the same way by magnitude in a
 * second store, zeros apart, infinities apart, NaN apart (not ranked).  Each
 * store is dense over its key range and holds at most QS_MAX_BUCKETS
 * buckets: beyond that the buckets nearest zero are folded together, which
 * only happens for data spanning more than ~17 orders of magnitude.
 *
 * Quantiles follow percentile_cont: the value at rank p * (n - 1),
 * interpolated between the two neighbouring order statistics.  Each order
 * statistic is within relative error alpha (clamped to the exact min and
 * max), so for data of one sign the interpolated result is too.
 *
 * Frontend-safe (palloc only), so test/fuzz/fuzz_qsketch.c links it.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_QSKETCH_CORE_H
#define SMARTETL_QSKETCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QS_ALPHA 0.005
#define QS_MAX_BUCKETS 4096
#define QS_FORMAT_VERSION 1
#define QS_KEY_LIMIT 80000		/* |key| of any double: 745 / ln(gamma) < 75000 */

/*
 * Bucket counts of the keys [min_key, max_key], held in an array that
 * covers [base, base + cap) with room to grow on both sides.
 */
typedef struct QStore
{
	bool		empty;
	int32_t		min_key;
	int32_t		max_key;
	int32_t		base;
	int32_t		cap;
	int64_t    *counts;
} QStore;

typedef struct QSketch
{
	int64_t		count;			/* ranked values: finite and infinite */
	int64_t		zero;
	int64_t		nan;			/* counted, never ranked */
	int64_t		pos_inf;
	int64_t		neg_inf;
	double		sum;			/* of finite values */
	double		min;			/* exact, over ranked values */
	double		max;
	QStore		pos;
	QStore		neg;			/* by magnitude */
} QSketch;

extern void qs_init(QSketch *s);
extern void qs_add(QSketch *s, double x);
/* qs_add of xs[0], ..., xs[n - 1] in that order (the same sketch), faster */
extern void qs_add_many(QSketch *s, const double *xs, int n);
/* false, leaving into unchanged, when the counts would overflow int64 */
extern bool qs_merge(QSketch *into, const QSketch *from);

/*
 * Merge a serialized sketch into a sketch, checking the bytes as
 * qs_deserialize does but without building a second sketch.
 */
#define QS_MERGE_OK 0
#define QS_MERGE_INVALID 1		/* *err says why */
#define QS_MERGE_OVERFLOW 2		/* the counts would overflow int64 */
extern int	qs_merge_bytes(QSketch *into, const char *buf, size_t len, const char **err);

/* p in [0, 1]; the sketch must have count > 0. */
extern double qs_quantile(const QSketch *s, double p);

/*
 * Serialized form (the qsketch datum's payload after the varlena header):
 * a fixed header, then for each store its non-empty buckets as (key,
 * count) pairs in key order.  Returns a palloc'd buffer and its length.
 */
extern char *qs_serialize(const QSketch *s, size_t *len);

/*
 * Parse a serialized sketch.  Returns NULL on success, else a static
 * message saying what is wrong (truncated, bad version, keys out of order,
 * counts that do not add up, ...): input from the network is untrusted.
 */
extern const char *qs_deserialize(const char *buf, size_t len, QSketch *s);

/* The representative value of a bucket key, and the key of a value > 0. */
extern double qs_key_value(int32_t key);
extern int32_t qs_value_key(double x);
/* qs_value_key(x), exactly, from a table: what qs_add uses */
extern int32_t qs_value_key_fast(double x);

#endif							/* SMARTETL_QSKETCH_CORE_H */
