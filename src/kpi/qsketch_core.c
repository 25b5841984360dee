/*-------------------------------------------------------------------------
 * src/kpi/qsketch_core.c
 *		The quantile sketch itself: buckets, merging, quantiles and the
 *		serialized form.  See qsketch_core.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/int.h"
#include "kpi/qsketch_core.h"
#ifndef FRONTEND
#include "utils/memutils.h"
#endif

#define QS_HEADER_BYTES (4 + 5 * 8 + 3 * 8 + 2 * 4)
#define QS_PAIR_BYTES (4 + 8)

/* log(gamma), computed once (the same double every call computed before) */
static double
qs_log_gamma(void)
{
	static double lg = 0;

	if (lg == 0)
		lg = log((1.0 + QS_ALPHA) / (1.0 - QS_ALPHA));
	return lg;
}

int32_t
qs_value_key(double x)
{
	double		k = ceil(log(x) / qs_log_gamma());

	return (int32_t) Max(Min(k, QS_KEY_LIMIT), -QS_KEY_LIMIT);
}

/*
 * The same key, fast: from a table per binary exponent (a "binade" [2^e,
 * 2^(e+1))) cut into QS_SUBS equal slices by the top mantissa bits.  A
 * slice spans a ratio below 1 + 1/QS_SUBS < gamma, so it holds at most one
 * key boundary; the table keeps the slice's first key and the first double
 * (as bits) of the next key, found by bisection with qs_value_key itself.
 * So the result is qs_value_key(x) exactly, for every x, as long as
 * qs_value_key is non-decreasing (fuzz_qsketch checks the two agree).  A
 * binade's table is built the first time one of its values is seen (about
 * 3,400 calls of log, ~0.1 ms), once per process.
 */
#define QS_SUB_BITS 7
#define QS_SUBS (1 << QS_SUB_BITS)
#define QS_SLOW_KEY INT32_MIN	/* a slice with two boundaries: never seen */

typedef struct QsSlice
{
	uint64_t	next;			/* bits of the first double of key + 1 */
	int32_t		key;			/* key of the slice's first double */
} QsSlice;

static QsSlice *qs_binades[2048];

static int32_t
key_of_bits(uint64_t u)
{
	double		x;

	memcpy(&x, &u, sizeof(x));
	return qs_value_key(x);
}

static const QsSlice *
build_binade(uint32_t e)
{
	QsSlice    *t;
	uint32_t	j;

#ifdef FRONTEND
	t = malloc(sizeof(QsSlice) * QS_SUBS);
	if (t == NULL)
		return NULL;
#else
	t = MemoryContextAlloc(TopMemoryContext, sizeof(QsSlice) * QS_SUBS);
#endif
	for (j = 0; j < QS_SUBS; j++)
	{
		uint64_t	lo = ((uint64_t) e << 52) | ((uint64_t) j << (52 - QS_SUB_BITS));
		uint64_t	hi = lo + ((uint64_t) 1 << (52 - QS_SUB_BITS)) - 1;
		int32_t		klo = key_of_bits(lo);
		int32_t		khi = key_of_bits(hi);
		uint64_t	a = lo,
					b = hi;

		t[j].key = klo;
		t[j].next = UINT64_MAX;
		if (khi == klo)
			continue;
		if (khi != klo + 1)
		{
			t[j].key = QS_SLOW_KEY;
			continue;
		}
		/* key(a) == klo < key(b) */
		while (b - a > 1)
		{
			uint64_t	mid = a + (b - a) / 2;

			if (key_of_bits(mid) > klo)
				b = mid;
			else
				a = mid;
		}
		t[j].next = b;
	}
	qs_binades[e] = t;
	return t;
}

static inline int32_t
value_key_fast(double x)
{
	uint64_t	u;
	uint32_t	e;
	const QsSlice *t;
	const QsSlice *sl;

	memcpy(&u, &x, sizeof(u));
	e = (uint32_t) (u >> 52);
	/* subnormals, and anything not positive and finite */
	if (unlikely(e == 0 || e >= 2047))
		return qs_value_key(x);
	t = qs_binades[e];
	if (unlikely(t == NULL) && (t = build_binade(e)) == NULL)
		return qs_value_key(x);
	sl = &t[(u >> (52 - QS_SUB_BITS)) & (QS_SUBS - 1)];
	if (unlikely(sl->key == QS_SLOW_KEY))
		return qs_value_key(x);
	return sl->key + (u >= sl->next);
}

int32_t
qs_value_key_fast(double x)
{
	return value_key_fast(x);
}

double
qs_key_value(int32_t key)
{
	double		gamma = (1.0 + QS_ALPHA) / (1.0 - QS_ALPHA);

	return 2.0 * exp(key * qs_log_gamma()) / (gamma + 1.0);
}

static void
store_init(QStore *st)
{
	memset(st, 0, sizeof(*st));
	st->empty = true;
}

/*
 * Make the array cover [lo, hi] (hi - lo < QS_MAX_BUCKETS), folding the
 * counts of keys below lo into lo.
 */
static void
store_cover(QStore *st, int32_t lo, int32_t hi)
{
	int64_t    *counts;
	int32_t		cap,
				base,
				k;

	if (!st->empty && lo >= st->base && hi < st->base + st->cap)
	{
		for (k = st->min_key; k < lo && k <= st->max_key; k++)
		{
			st->counts[lo - st->base] += st->counts[k - st->base];
			st->counts[k - st->base] = 0;
		}
		return;
	}
	/* room for growth on both sides, within twice the bucket limit */
	cap = Max(64, Min(2 * (hi - lo + 1), 2 * QS_MAX_BUCKETS));
	base = lo - (cap - (hi - lo + 1)) / 2;
	counts = palloc0(sizeof(int64_t) * cap);
	for (k = st->min_key; !st->empty && k <= st->max_key; k++)
		counts[Max(k, lo) - base] += st->counts[k - st->base];
	if (st->counts)
		pfree(st->counts);
	st->counts = counts;
	st->base = base;
	st->cap = cap;
}

/* Add cnt to bucket key, folding the lowest buckets beyond the size limit. */
static void
store_add(QStore *st, int32_t key, int64_t cnt)
{
	int32_t		lo = st->empty ? key : Min(st->min_key, key);
	int32_t		hi = st->empty ? key : Max(st->max_key, key);

	if ((int64_t) hi - lo + 1 > QS_MAX_BUCKETS)
		lo = hi - QS_MAX_BUCKETS + 1;
	store_cover(st, lo, hi);
	st->counts[Max(key, lo) - st->base] += cnt;
	st->min_key = lo;
	st->max_key = hi;
	st->empty = false;
}

void
qs_init(QSketch *s)
{
	memset(s, 0, sizeof(*s));
	store_init(&s->pos);
	store_init(&s->neg);
}

static void
note_extremes(QSketch *s, double x)
{
	if (s->count == 0 || x < s->min)
		s->min = x;
	if (s->count == 0 || x > s->max)
		s->max = x;
}

/* store_add(st, key, 1), with the common case (key in range) inline */
static inline void
store_incr(QStore *st, int32_t key)
{
	if (likely(!st->empty && key >= st->min_key && key <= st->max_key))
		st->counts[key - st->base]++;
	else
		store_add(st, key, 1);
}

void
qs_add(QSketch *s, double x)
{
	/* the common case first: a positive finite value */
	if (likely(x > 0 && x < INFINITY))
	{
		note_extremes(s, x);
		s->count++;
		s->sum += x;
		store_incr(&s->pos, value_key_fast(x));
		return;
	}
	if (isnan(x))
	{
		s->nan++;
		return;
	}
	note_extremes(s, x);
	s->count++;
	if (isinf(x))
	{
		if (x > 0)
			s->pos_inf++;
		else
			s->neg_inf++;
		return;
	}
	s->sum += x;
	if (x < 0)
		store_incr(&s->neg, value_key_fast(-x));
	else
		s->zero++;
}

/*
 * qs_add of each value in turn, with the same result to the bit (the sum
 * too: same additions, same order).  Faster on many values: their bucket
 * keys are looked up first, then the counts incremented, so that the
 * processor overlaps the cache misses of the table and the counts instead
 * of waiting for each in turn.
 */
void
qs_add_many(QSketch *s, const double *xs, int n)
{
	int32_t		keys[64];
	int			i,
				done;

	for (done = 0; done < n; done += 64)
	{
		int			m = Min(64, n - done);
		const double *x = xs + done;

		for (i = 0; i < m; i++)
			keys[i] = likely(x[i] > 0 && x[i] < INFINITY) ? value_key_fast(x[i]) : 0;
		for (i = 0; i < m; i++)
		{
			if (likely(x[i] > 0 && x[i] < INFINITY))
			{
				note_extremes(s, x[i]);
				s->count++;
				s->sum += x[i];
				store_incr(&s->pos, keys[i]);
			}
			else
				qs_add(s, x[i]);
		}
	}
}

static void
store_merge(QStore *into, const QStore *from)
{
	int32_t		k;

	if (from->empty)
		return;
	/* the widest range first, so the adds below never reallocate */
	store_add(into, from->max_key, 0);
	store_add(into, from->min_key, 0);
	for (k = from->min_key; k <= from->max_key; k++)
		if (from->counts[k - from->base] != 0)
			store_add(into, k, from->counts[k - from->base]);
}

bool
qs_merge(QSketch *into, const QSketch *from)
{
	int64_t		unused;

	/* every other count is at most count or nan: these two bound them all */
	if (pg_add_s64_overflow(into->count, from->count, &unused) ||
		pg_add_s64_overflow(into->nan, from->nan, &unused))
		return false;
	if (from->count > 0 && into->count == 0)
	{
		into->min = from->min;
		into->max = from->max;
	}
	else if (from->count > 0)
	{
		into->min = Min(into->min, from->min);
		into->max = Max(into->max, from->max);
	}
	into->count += from->count;
	into->zero += from->zero;
	into->nan += from->nan;
	into->pos_inf += from->pos_inf;
	into->neg_inf += from->neg_inf;
	into->sum += from->sum;
	store_merge(&into->pos, &from->pos);
	store_merge(&into->neg, &from->neg);
	return true;
}

/* The rank-th smallest ranked value (0-based), as the sketch knows it. */
static double
qs_value_at(const QSketch *s, int64_t rank)
{
	int32_t		k;

	if (rank < s->neg_inf)
		return -INFINITY;
	rank -= s->neg_inf;
	for (k = s->neg.max_key; !s->neg.empty && k >= s->neg.min_key; k--)
	{
		if (rank < s->neg.counts[k - s->neg.base])
			return -qs_key_value(k);
		rank -= s->neg.counts[k - s->neg.base];
	}
	if (rank < s->zero)
		return 0.0;
	rank -= s->zero;
	for (k = s->pos.min_key; !s->pos.empty && k <= s->pos.max_key; k++)
	{
		if (rank < s->pos.counts[k - s->pos.base])
			return qs_key_value(k);
		rank -= s->pos.counts[k - s->pos.base];
	}
	return INFINITY;
}

/* The order statistic at rank, exact at both ends and clamped between. */
static double
qs_order_statistic(const QSketch *s, int64_t rank)
{
	double		v;

	if (rank <= 0)
		return s->min;
	if (rank >= s->count - 1)
		return s->max;
	v = qs_value_at(s, rank);
	return Max(s->min, Min(s->max, v));
}

double
qs_quantile(const QSketch *s, double p)
{
	double		r = p * (double) (s->count - 1);
	int64_t		lo = (int64_t) floor(r);
	double		frac;
	double		a;
	double		b;

	/*
	 * Above 2^53 values the rank is rounded: p = 1 may land below the last
	 * rank or past it.  The top stays the maximum, exactly.
	 */
	if (p >= 1.0 || lo >= s->count - 1)
		return qs_order_statistic(s, s->count - 1);
	frac = r - (double) lo;
	a = qs_order_statistic(s, lo);
	if (frac == 0.0)
		return a;
	b = qs_order_statistic(s, lo + 1);
	return a + (b - a) * frac;
}

/* Big-endian writers and readers, so the bytes mean the same everywhere. */
static char *
put_u64(char *p, uint64_t v)
{
	int			i;

	for (i = 7; i >= 0; i--)
		*p++ = (char) ((v >> (8 * i)) & 0xFF);
	return p;
}

static char *
put_u32(char *p, uint32_t v)
{
	int			i;

	for (i = 3; i >= 0; i--)
		*p++ = (char) ((v >> (8 * i)) & 0xFF);
	return p;
}

static char *
put_f64(char *p, double d)
{
	uint64_t	v;

	memcpy(&v, &d, sizeof(v));
	return put_u64(p, v);
}

static uint64_t
get_u64(const char **p)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char) *(*p)++;
	return v;
}

static uint32_t
get_u32(const char **p)
{
	uint32_t	v = 0;
	int			i;

	for (i = 0; i < 4; i++)
		v = (v << 8) | (unsigned char) *(*p)++;
	return v;
}

static double
get_f64(const char **p)
{
	uint64_t	v = get_u64(p);
	double		d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static int32_t
store_nonempty(const QStore *st)
{
	int32_t		n = 0,
				k;

	for (k = st->min_key; !st->empty && k <= st->max_key; k++)
		n += st->counts[k - st->base] != 0;
	return n;
}

static char *
put_store(char *p, const QStore *st)
{
	int32_t		k;

	for (k = st->min_key; !st->empty && k <= st->max_key; k++)
		if (st->counts[k - st->base] != 0)
		{
			p = put_u32(p, (uint32_t) k);
			p = put_u64(p, (uint64_t) st->counts[k - st->base]);
		}
	return p;
}

char *
qs_serialize(const QSketch *s, size_t *len)
{
	int32_t		npos = store_nonempty(&s->pos);
	int32_t		nneg = store_nonempty(&s->neg);
	char	   *buf,
			   *p;

	*len = QS_HEADER_BYTES + (size_t) (npos + nneg) * QS_PAIR_BYTES;
	buf = p = palloc(*len);
	p = put_u32(p, QS_FORMAT_VERSION);
	p = put_u64(p, (uint64_t) s->count);
	p = put_u64(p, (uint64_t) s->zero);
	p = put_u64(p, (uint64_t) s->nan);
	p = put_u64(p, (uint64_t) s->pos_inf);
	p = put_u64(p, (uint64_t) s->neg_inf);
	p = put_f64(p, s->sum);
	p = put_f64(p, s->min);
	p = put_f64(p, s->max);
	p = put_u32(p, (uint32_t) npos);
	p = put_u32(p, (uint32_t) nneg);
	p = put_store(p, &s->pos);
	put_store(p, &s->neg);
	return buf;
}

/* Read n (key, count) pairs into st; their sum into *total. */
static const char *
get_store(const char **p, int32_t n, QStore *st, int64_t *total)
{
	int32_t		i;
	int32_t		prev = 0;

	*total = 0;
	for (i = 0; i < n; i++)
	{
		int32_t		key = (int32_t) get_u32(p);
		int64_t		cnt = (int64_t) get_u64(p);

		if (key < -QS_KEY_LIMIT || key > QS_KEY_LIMIT)
			return "bucket key out of range";
		if (i > 0 && key <= prev)
			return "bucket keys not in increasing order";
		if (i > 0 && (int64_t) key - st->min_key >= QS_MAX_BUCKETS)
			return "bucket keys span more than the bucket limit";
		if (cnt <= 0 || *total > INT64_MAX - cnt)
			return "bucket count not positive or too large";
		store_add(st, key, cnt);
		*total += cnt;
		prev = key;
	}
	return NULL;
}

static bool
add_overflows(int64_t a, int64_t b)
{
	return b > INT64_MAX - a;
}

const char *
qs_deserialize(const char *buf, size_t len, QSketch *s)
{
	const char *p = buf;
	int32_t		npos,
				nneg;
	int64_t		pos_total,
				neg_total,
				ranked;
	const char *err;

	qs_init(s);
	if (len < QS_HEADER_BYTES)
		return "too short for a qsketch header";
	if (get_u32(&p) != QS_FORMAT_VERSION)
		return "unknown qsketch format version";
	s->count = (int64_t) get_u64(&p);
	s->zero = (int64_t) get_u64(&p);
	s->nan = (int64_t) get_u64(&p);
	s->pos_inf = (int64_t) get_u64(&p);
	s->neg_inf = (int64_t) get_u64(&p);
	s->sum = get_f64(&p);
	s->min = get_f64(&p);
	s->max = get_f64(&p);
	npos = (int32_t) get_u32(&p);
	nneg = (int32_t) get_u32(&p);
	if (npos < 0 || nneg < 0 || npos > QS_MAX_BUCKETS || nneg > QS_MAX_BUCKETS)
		return "bucket count out of range";
	if (len != QS_HEADER_BYTES + (size_t) (npos + nneg) * QS_PAIR_BYTES)
		return "length does not match the bucket counts";
	if (s->count < 0 || s->zero < 0 || s->nan < 0 || s->pos_inf < 0 || s->neg_inf < 0)
		return "negative count";
	if ((err = get_store(&p, npos, &s->pos, &pos_total)) != NULL ||
		(err = get_store(&p, nneg, &s->neg, &neg_total)) != NULL)
		return err;
	ranked = s->zero;
	if (add_overflows(ranked, s->pos_inf) || add_overflows(ranked += s->pos_inf, s->neg_inf) ||
		add_overflows(ranked += s->neg_inf, pos_total) || add_overflows(ranked += pos_total, neg_total))
		return "counts overflow";
	if (ranked + neg_total != s->count)
		return "bucket counts do not add up to the value count";
	if (s->count > 0 && (isnan(s->min) || isnan(s->max) || s->min > s->max))
		return "min and max are not an ordered pair";
	if (isnan(s->sum) && s->count > s->pos_inf + s->neg_inf)
		return "sum is not a number";
	return NULL;
}

/*
 * Check n serialized (key, count) pairs at *p as get_store does, without
 * storing them: their first and last keys and their sum.
 */
static const char *
check_pairs(const char **p, int32_t n, int32_t *first, int32_t *last, int64_t *total)
{
	int32_t		i;
	int32_t		prev = 0;

	*total = 0;
	for (i = 0; i < n; i++)
	{
		int32_t		key = (int32_t) get_u32(p);
		int64_t		cnt = (int64_t) get_u64(p);

		if (key < -QS_KEY_LIMIT || key > QS_KEY_LIMIT)
			return "bucket key out of range";
		if (i == 0)
			*first = key;
		else if (key <= prev)
			return "bucket keys not in increasing order";
		if (i > 0 && (int64_t) key - *first >= QS_MAX_BUCKETS)
			return "bucket keys span more than the bucket limit";
		if (cnt <= 0 || *total > INT64_MAX - cnt)
			return "bucket count not positive or too large";
		*total += cnt;
		prev = key;
	}
	*last = prev;
	return NULL;
}

/* Add n checked pairs at *p to st, its widest range first (as store_merge). */
static void
merge_pairs(const char **p, int32_t n, int32_t first, int32_t last, QStore *st)
{
	int32_t		i;

	if (n == 0)
		return;
	store_add(st, last, 0);
	store_add(st, first, 0);
	for (i = 0; i < n; i++)
	{
		int32_t		key = (int32_t) get_u32(p);
		int64_t		cnt = (int64_t) get_u64(p);

		st->counts[Max(key, st->min_key) - st->base] += cnt;
	}
}

/*
 * qs_merge(into, qs_deserialize(buf)) without building the second sketch:
 * the bytes are checked exactly as qs_deserialize checks them, then their
 * counts are added to into's buckets in place.  Returns QS_MERGE_OK,
 * QS_MERGE_INVALID (*err says why; into is unchanged) or QS_MERGE_OVERFLOW
 * (into is unchanged).
 */
int
qs_merge_bytes(QSketch *into, const char *buf, size_t len, const char **err)
{
	QSketch		h;
	const char *p = buf;
	const char *pairs;
	int32_t		npos,
				nneg,
				pos_first = 0,
				pos_last = 0,
				neg_first = 0,
				neg_last = 0;
	int64_t		pos_total,
				neg_total,
				ranked,
				unused;

	*err = NULL;
	memset(&h, 0, sizeof(h));
	if (len < QS_HEADER_BYTES)
		*err = "too short for a qsketch header";
	else if (get_u32(&p) != QS_FORMAT_VERSION)
		*err = "unknown qsketch format version";
	if (*err)
		return QS_MERGE_INVALID;
	h.count = (int64_t) get_u64(&p);
	h.zero = (int64_t) get_u64(&p);
	h.nan = (int64_t) get_u64(&p);
	h.pos_inf = (int64_t) get_u64(&p);
	h.neg_inf = (int64_t) get_u64(&p);
	h.sum = get_f64(&p);
	h.min = get_f64(&p);
	h.max = get_f64(&p);
	npos = (int32_t) get_u32(&p);
	nneg = (int32_t) get_u32(&p);
	if (npos < 0 || nneg < 0 || npos > QS_MAX_BUCKETS || nneg > QS_MAX_BUCKETS)
		*err = "bucket count out of range";
	else if (len != QS_HEADER_BYTES + (size_t) (npos + nneg) * QS_PAIR_BYTES)
		*err = "length does not match the bucket counts";
	else if (h.count < 0 || h.zero < 0 || h.nan < 0 || h.pos_inf < 0 || h.neg_inf < 0)
		*err = "negative count";
	if (*err)
		return QS_MERGE_INVALID;
	pairs = p;
	if ((*err = check_pairs(&p, npos, &pos_first, &pos_last, &pos_total)) != NULL ||
		(*err = check_pairs(&p, nneg, &neg_first, &neg_last, &neg_total)) != NULL)
		return QS_MERGE_INVALID;
	ranked = h.zero;
	if (add_overflows(ranked, h.pos_inf) || add_overflows(ranked += h.pos_inf, h.neg_inf) ||
		add_overflows(ranked += h.neg_inf, pos_total) || add_overflows(ranked += pos_total, neg_total))
		*err = "counts overflow";
	else if (ranked + neg_total != h.count)
		*err = "bucket counts do not add up to the value count";
	else if (h.count > 0 && (isnan(h.min) || isnan(h.max) || h.min > h.max))
		*err = "min and max are not an ordered pair";
	else if (isnan(h.sum) && h.count > h.pos_inf + h.neg_inf)
		*err = "sum is not a number";
	if (*err)
		return QS_MERGE_INVALID;

	/* as qs_merge, with the stores still in their serialized form */
	if (pg_add_s64_overflow(into->count, h.count, &unused) ||
		pg_add_s64_overflow(into->nan, h.nan, &unused))
		return QS_MERGE_OVERFLOW;
	if (h.count > 0 && into->count == 0)
	{
		into->min = h.min;
		into->max = h.max;
	}
	else if (h.count > 0)
	{
		into->min = Min(into->min, h.min);
		into->max = Max(into->max, h.max);
	}
	into->count += h.count;
	into->zero += h.zero;
	into->nan += h.nan;
	into->pos_inf += h.pos_inf;
	into->neg_inf += h.neg_inf;
	into->sum += h.sum;
	p = pairs;
	merge_pairs(&p, npos, pos_first, pos_last, &into->pos);
	merge_pairs(&p, nneg, neg_first, neg_last, &into->neg);
	return QS_MERGE_OK;
}
