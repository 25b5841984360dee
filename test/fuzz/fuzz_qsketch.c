/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_qsketch.c
 *		libFuzzer harness: qs_deserialize on untrusted bytes (the binary
 *		receive form and the aggregate's serialized state), then the
 *		sketch operations on whatever it accepts.
 *
 * Invariants for an accepted sketch:
 *	- serializing it again gives back exactly the input bytes;
 *	- quantiles are non-decreasing in p, p = 0 gives min and p = 1 max;
 *	- merging it into an empty sketch and into itself keeps the counts
 *	  (count doubles) and the min and max, or is refused only when the
 *	  doubled counts would overflow;
 * and the first bytes also drive qs_add on a fresh sketch, whose
 * serialization must be accepted and equal that of qs_add_many of the same
 * values, and whose bucket keys from the table
 * (qs_value_key_fast) must equal the definition's (qs_value_key).
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <math.h>

#include "kpi/qsketch_core.h"

#include "fuzz_common.h"

static void
check_quantiles(const QSketch *s)
{
	double		prev = -INFINITY;
	int			i;

	if (s->count == 0)
		return;
	FUZZ_CHECK(qs_quantile(s, 0.0) == s->min || (isnan(s->min) && isnan(qs_quantile(s, 0.0))),
			   "p0 is not min");
	FUZZ_CHECK(qs_quantile(s, 1.0) == s->max, "p1 is not max");
	for (i = 0; i <= 20; i++)
	{
		double		q = qs_quantile(s, i / 20.0);

		if (isnan(q))
			continue;			/* -inf + (x - -inf) * frac */
		FUZZ_CHECK(q >= prev, "quantile decreases at p=%g (%g < %g)", i / 20.0, q, prev);
		prev = q;
	}
}

static void
check_accepted(const uint8_t *data, size_t size, const QSketch *s)
{
	size_t		len;
	char	   *again = qs_serialize(s, &len);
	QSketch		merged;

	FUZZ_CHECK(len == size && memcmp(again, data, size) == 0, "re-serialization differs");
	check_quantiles(s);
	qs_init(&merged);
	FUZZ_CHECK(qs_merge(&merged, s), "merge into an empty sketch refused");
	FUZZ_CHECK(s->count == 0 || (merged.min == s->min && merged.max == s->max),
			   "merge into an empty sketch changed min/max");
	if (!qs_merge(&merged, s))
	{
		/* refused only when the doubled counts would overflow */
		FUZZ_CHECK(s->count > INT64_MAX / 2 || s->nan > INT64_MAX / 2, "merge refused without overflow");
		return;
	}
	FUZZ_CHECK(merged.count == 2 * s->count, "merged count %lld != 2 * %lld",
			   (long long) merged.count, (long long) s->count);
	if (s->count > 0)
		FUZZ_CHECK(merged.min == s->min && merged.max == s->max, "merge changed min/max");
	check_quantiles(&merged);
}

/*
 * qs_add's table lookup gives the key of the definition, ceil(log(x) /
 * log(gamma)), for x and its neighbouring doubles (the key boundaries lie
 * between neighbours).
 */
static void
check_key(double x)
{
	double		y[3];
	int			i;

	x = fabs(x);
	if (!(x > 0) || isinf(x))
		return;
	y[0] = nextafter(x, 0);
	y[1] = x;
	y[2] = nextafter(x, INFINITY);
	for (i = 0; i < 3; i++)
		if (y[i] > 0 && !isinf(y[i]))
			FUZZ_CHECK(qs_value_key_fast(y[i]) == qs_value_key(y[i]),
					   "table key %d != key %d of %a", qs_value_key_fast(y[i]), qs_value_key(y[i]), y[i]);
}

/* Values from the input's bytes (8 at a time), added to a fresh sketch. */
static void
check_added(const uint8_t *data, size_t size)
{
	QSketch		s,
				back;
	size_t		i,
				len;
	char	   *bytes;

	qs_init(&s);
	for (i = 0; i + 8 <= size; i += 8)
	{
		double		x;

		memcpy(&x, data + i, 8);
		check_key(x);
		qs_add(&s, x);
	}
	bytes = qs_serialize(&s, &len);
	FUZZ_CHECK(qs_deserialize(bytes, len, &back) == NULL, "own serialization rejected");
	check_quantiles(&s);

	/* the batch (the aggregate's path) gives the very same sketch */
	if (size >= 8)
	{
		double	   *xs = palloc(size / 8 * sizeof(double));
		QSketch		many;
		size_t		len2;
		char	   *bytes2;

		memcpy(xs, data, size / 8 * sizeof(double));
		qs_init(&many);
		qs_add_many(&many, xs, (int) (size / 8));
		bytes2 = qs_serialize(&many, &len2);
		FUZZ_CHECK(len2 == len && memcmp(bytes2, bytes, len) == 0, "qs_add_many differs from qs_add");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	arena;
	QSketch		s;
	char	   *copy;

	fuzz_arena_init(&arena, "call");
	fuzz_arena_switch(&arena);
	copy = palloc(size + 1);	/* exact size: reads past the end are caught */
	memcpy(copy, data, size);
	if (qs_deserialize(copy, size, &s) == NULL)
		check_accepted(data, size, &s);
	check_added(data, size);
	fuzz_arena_reset(&arena);
	return 0;
}
