/*-------------------------------------------------------------------------
 * src/kpi/qsketch.c
 *		SQL type smartetl.qsketch: I/O, the aggregates qsketch_agg(float8)
 *		and qsketch_merge(qsketch) with combine/serialize/deserialize for
 *		parallel aggregation, and quantile(s) lookups.
 *
 * The datum is a varlena holding the serialized sketch (qsketch_core.c);
 * the same bytes travel as the aggregate's serialized state and as the
 * binary send/receive form.  The text form is JSON:
 *   {"alpha": 0.005, "count": 3, "zero": 0, "nan": 0, "pos_inf": 0,
 *    "neg_inf": 0, "sum": 6, "min": 1, "max": 3,
 *    "pos": [[0, 1], [139, 1], [220, 1]], "neg": []}
 * with non-finite floats as the strings "Infinity", "-Infinity", "NaN".
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "kpi/qsketch_core.h"

PG_FUNCTION_INFO_V1(qsketch_in);
PG_FUNCTION_INFO_V1(qsketch_out);
PG_FUNCTION_INFO_V1(qsketch_recv);
PG_FUNCTION_INFO_V1(qsketch_send);
PG_FUNCTION_INFO_V1(qsketch_add);
PG_FUNCTION_INFO_V1(qsketch_add_sketch);
PG_FUNCTION_INFO_V1(qsketch_combine);
PG_FUNCTION_INFO_V1(qsketch_serialize);
PG_FUNCTION_INFO_V1(qsketch_deserialize);
PG_FUNCTION_INFO_V1(qsketch_final);
PG_FUNCTION_INFO_V1(qsketch_quantile);
PG_FUNCTION_INFO_V1(qsketch_quantiles);
PG_FUNCTION_INFO_V1(qsketch_count);
PG_FUNCTION_INFO_V1(qsketch_mean);
PG_FUNCTION_INFO_V1(qsketch_combine2);

/* A sketch from serialized bytes, or an error saying what is wrong. */
static QSketch *
sketch_from_bytes(const char *buf, size_t len)
{
	QSketch    *s = palloc(sizeof(QSketch));
	const char *err = qs_deserialize(buf, len, s);

	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid qsketch: %s", err)));
	return s;
}

static QSketch *
sketch_from_datum(Datum d)
{
	bytea	   *b = DatumGetByteaPP(d);

	return sketch_from_bytes(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

static bytea *
sketch_to_bytea(const QSketch *s)
{
	size_t		len;
	char	   *buf = qs_serialize(s, &len);
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), buf, len);
	pfree(buf);
	return b;
}

/* ---- text form ---- */

static void
append_float(StringInfo out, double d)
{
	char	   *s = float8out_internal(d);

	if (isfinite(d))
		appendStringInfoString(out, s);
	else
		appendStringInfo(out, "\"%s\"", s);
}

static void
append_store(StringInfo out, const char *name, const QStore *st)
{
	int32_t		k;
	bool		first = true;

	appendStringInfo(out, ", \"%s\": [", name);
	for (k = st->min_key; !st->empty && k <= st->max_key; k++)
	{
		int64_t		c = st->counts[k - st->base];

		if (c == 0)
			continue;
		appendStringInfo(out, "%s[%d, " INT64_FORMAT "]", first ? "" : ", ", k, c);
		first = false;
	}
	appendStringInfoChar(out, ']');
}

Datum
qsketch_out(PG_FUNCTION_ARGS)
{
	QSketch    *s = sketch_from_datum(PG_GETARG_DATUM(0));
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out, "{\"alpha\": %s, \"count\": " INT64_FORMAT ", \"zero\": " INT64_FORMAT
					 ", \"nan\": " INT64_FORMAT ", \"pos_inf\": " INT64_FORMAT ", \"neg_inf\": " INT64_FORMAT,
					 float8out_internal(QS_ALPHA), s->count, s->zero, s->nan, s->pos_inf, s->neg_inf);
	appendStringInfoString(&out, ", \"sum\": ");
	append_float(&out, s->sum);
	appendStringInfoString(&out, ", \"min\": ");
	append_float(&out, s->min);
	appendStringInfoString(&out, ", \"max\": ");
	append_float(&out, s->max);
	append_store(&out, "pos", &s->pos);
	append_store(&out, "neg", &s->neg);
	appendStringInfoChar(&out, '}');
	PG_RETURN_CSTRING(out.data);
}

static void
text_form_error(const char *field, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type qsketch, field \"%s\"", field),
			 errdetail("Expected %s.", expected)));
}

/* A JSON number, or "Infinity"/"-Infinity"/"NaN", as a double. */
static double
json_float(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);

	if (v && v->type == jbvNumeric)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (v && v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0 || strcmp(s, "NaN") == 0)
			return DatumGetFloat8(DirectFunctionCall1(float8in, CStringGetDatum(s)));
	}
	text_form_error(key, "a number, or \"Infinity\", \"-Infinity\" or \"NaN\"");
	return 0;					/* not reached */
}

static int64
json_int(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvNumeric)
		text_form_error(key, "a non-negative integer");
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

/* [[key, count], ...] as serialized pairs. */
static void
json_store(JsonbContainer *obj, const char *key, StringInfo pairs, int32 *n)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;

	*n = 0;
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		text_form_error(key, "an array of [key, count] pairs");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		JsonbValue *k,
				   *c;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvBinary || !JsonContainerIsArray(elem.val.binary.data) ||
			JsonContainerSize(elem.val.binary.data) != 2 ||
			(k = getIthJsonbValueFromContainer(elem.val.binary.data, 0))->type != jbvNumeric ||
			(c = getIthJsonbValueFromContainer(elem.val.binary.data, 1))->type != jbvNumeric)
			text_form_error(key, "an array of [key, count] pairs of integers");
		pq_sendint32(pairs, DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(k->val.numeric))));
		pq_sendint64(pairs, DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(c->val.numeric))));
		(*n)++;
	}
}

/* The text form becomes the serialized bytes, then one validation path. */
Datum
qsketch_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
	JsonbContainer *obj = &j->root;
	StringInfoData buf,
				pos,
				neg;
	int32		npos,
				nneg;
	static const char *const counts[] = {"count", "zero", "nan", "pos_inf", "neg_inf"};
	static const char *const floats[] = {"sum", "min", "max"};
	int			i;

	if (!JB_ROOT_IS_OBJECT(j))
		text_form_error("(root)", "a JSON object");
	if (fabs(json_float(obj, "alpha") - QS_ALPHA) > 1e-12)
		text_form_error("alpha", psprintf("%s, the accuracy of this build", float8out_internal(QS_ALPHA)));
	initStringInfo(&buf);
	initStringInfo(&pos);
	initStringInfo(&neg);
	pq_sendint32(&buf, QS_FORMAT_VERSION);
	for (i = 0; i < lengthof(counts); i++)
		pq_sendint64(&buf, json_int(obj, counts[i]));
	for (i = 0; i < lengthof(floats); i++)
		pq_sendfloat8(&buf, json_float(obj, floats[i]));
	json_store(obj, "pos", &pos, &npos);
	json_store(obj, "neg", &neg, &nneg);
	pq_sendint32(&buf, npos);
	pq_sendint32(&buf, nneg);
	appendBinaryStringInfo(&buf, pos.data, pos.len);
	appendBinaryStringInfo(&buf, neg.data, neg.len);
	PG_RETURN_BYTEA_P(sketch_to_bytea(sketch_from_bytes(buf.data, buf.len)));
}

/* ---- binary form ---- */

Datum
qsketch_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	int			len = msg->len - msg->cursor;
	const char *bytes = pq_getmsgbytes(msg, len);

	PG_RETURN_BYTEA_P(sketch_to_bytea(sketch_from_bytes(bytes, len)));
}

Datum
qsketch_send(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---- aggregates ---- */

/*
 * The transition state: the sketch, and the values qsketch_agg received
 * but has not added yet, added in a batch (qs_add_many) when the buffer is
 * full or before anything reads the sketch (agg_flush).  The batch gives
 * the same sketch as adding each value at once, faster (see qs_add_many).
 * Every function that takes the state flushes it first, growing it in the
 * context it was created in.
 */
#define AGG_PENDING 32

typedef struct AggSketch
{
	QSketch		s;
	MemoryContext ctx;			/* the aggregate context it lives in */
	int			npending;
	double		pending[AGG_PENDING];
} AggSketch;

static void
agg_flush(AggSketch *a)
{
	MemoryContext old;

	if (a->npending == 0)
		return;
	old = MemoryContextSwitchTo(a->ctx);
	qs_add_many(&a->s, a->pending, a->npending);
	a->npending = 0;
	MemoryContextSwitchTo(old);
}

static AggSketch *
agg_new(MemoryContext aggctx)
{
	AggSketch  *a = MemoryContextAlloc(aggctx, sizeof(AggSketch));

	qs_init(&a->s);
	a->ctx = aggctx;
	a->npending = 0;
	return a;
}

/* The transition state argno (created on first use), flushed. */
static AggSketch *
agg_state(FunctionCallInfo fcinfo, int argno)
{
	MemoryContext aggctx;
	AggSketch  *a;

	if (!PG_ARGISNULL(argno))
	{
		a = (AggSketch *) PG_GETARG_POINTER(argno);
		agg_flush(a);
		return a;
	}
	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "qsketch aggregate function called in non-aggregate context");
	return agg_new(aggctx);
}

Datum
qsketch_add(PG_FUNCTION_ARGS)
{
	AggSketch  *a;

	if (PG_ARGISNULL(0))
	{
		MemoryContext aggctx;

		if (!AggCheckCallContext(fcinfo, &aggctx))
			elog(ERROR, "qsketch aggregate function called in non-aggregate context");
		a = agg_new(aggctx);
	}
	else
		a = (AggSketch *) PG_GETARG_POINTER(0);
	if (!PG_ARGISNULL(1))
	{
		if (a->npending == AGG_PENDING)
			agg_flush(a);
		a->pending[a->npending++] = PG_GETARG_FLOAT8(1);
	}
	PG_RETURN_POINTER(a);
}

/* Merge other into the state, growing it in its aggregate context. */
static AggSketch *
agg_merge(FunctionCallInfo fcinfo, const QSketch *other)
{
	AggSketch  *a = agg_state(fcinfo, 0);
	MemoryContext old = MemoryContextSwitchTo(a->ctx);
	bool		merged = qs_merge(&a->s, other);

	MemoryContextSwitchTo(old);
	if (!merged)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("qsketch value count out of range"),
				 errdetail("Merged sketches would count more than 2^63 - 1 values.")));
	return a;
}

Datum
qsketch_add_sketch(PG_FUNCTION_ARGS)
{
	AggSketch  *a = agg_state(fcinfo, 0);
	bytea	   *b;
	MemoryContext old;
	const char *err;
	int			rc;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(a);
	/* straight from the bytes: no second sketch to build and free */
	b = PG_GETARG_BYTEA_PP(1);
	old = MemoryContextSwitchTo(a->ctx);
	rc = qs_merge_bytes(&a->s, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &err);
	MemoryContextSwitchTo(old);
	if (rc == QS_MERGE_INVALID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid qsketch: %s", err)));
	if (rc == QS_MERGE_OVERFLOW)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("qsketch value count out of range"),
				 errdetail("Merged sketches would count more than 2^63 - 1 values.")));
	PG_RETURN_POINTER(a);
}

Datum
qsketch_combine(PG_FUNCTION_ARGS)
{
	AggSketch  *other;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(PG_ARGISNULL(0) ? NULL : agg_state(fcinfo, 0));
	other = agg_state(fcinfo, 1);
	PG_RETURN_POINTER(agg_merge(fcinfo, &other->s));
}

Datum
qsketch_serialize(PG_FUNCTION_ARGS)
{
	AggSketch  *a = (AggSketch *) PG_GETARG_POINTER(0);

	agg_flush(a);
	PG_RETURN_BYTEA_P(sketch_to_bytea(&a->s));
}

Datum
qsketch_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	MemoryContext old;
	AggSketch  *a;
	bytea	   *b;
	const char *err;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "qsketch aggregate function called in non-aggregate context");
	a = agg_new(aggctx);
	b = PG_GETARG_BYTEA_PP(0);
	old = MemoryContextSwitchTo(aggctx);
	err = qs_deserialize(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &a->s);
	MemoryContextSwitchTo(old);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid qsketch: %s", err)));
	PG_RETURN_POINTER(a);
}

/* NULL when no value (not even a NaN) was aggregated, like other aggregates. */
Datum
qsketch_final(PG_FUNCTION_ARGS)
{
	AggSketch  *a = PG_ARGISNULL(0) ? NULL : (AggSketch *) PG_GETARG_POINTER(0);

	if (a == NULL)
		PG_RETURN_NULL();
	agg_flush(a);
	if (a->s.count == 0 && a->s.nan == 0)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(sketch_to_bytea(&a->s));
}

/* ---- lookups ---- */

static void
check_fraction(double p)
{
	if (isnan(p) || p < 0 || p > 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("percentile value %g is not between 0 and 1", p)));
}

Datum
qsketch_quantile(PG_FUNCTION_ARGS)
{
	QSketch    *s = sketch_from_datum(PG_GETARG_DATUM(0));
	double		p = PG_GETARG_FLOAT8(1);

	check_fraction(p);
	if (s->count == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(qs_quantile(s, p));
}

Datum
qsketch_quantiles(PG_FUNCTION_ARGS)
{
	QSketch    *s = sketch_from_datum(PG_GETARG_DATUM(0));
	ArrayType  *ps = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(ps, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		check_fraction(DatumGetFloat8(elems[i]));
		if (s->count == 0)
			nulls[i] = true;
		else
			elems[i] = Float8GetDatum(qs_quantile(s, DatumGetFloat8(elems[i])));
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, ARR_NDIM(ps), ARR_DIMS(ps), ARR_LBOUND(ps),
											 FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
qsketch_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(sketch_from_datum(PG_GETARG_DATUM(0))->count);
}

/* Mean of the finite values; NULL when there are none. */
Datum
qsketch_mean(PG_FUNCTION_ARGS)
{
	QSketch    *s = sketch_from_datum(PG_GETARG_DATUM(0));
	int64		finite = s->count - s->pos_inf - s->neg_inf;

	if (finite == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->sum / finite);
}

/* qsketch_combine(a, b): one sketch of both; NULL only when both are. */
Datum
qsketch_combine2(PG_FUNCTION_ARGS)
{
	QSketch    *a;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? PG_GETARG_DATUM(1) : PG_GETARG_DATUM(0));
	}
	a = sketch_from_datum(PG_GETARG_DATUM(0));
	if (!qs_merge(a, sketch_from_datum(PG_GETARG_DATUM(1))))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("qsketch value count out of range"),
				 errdetail("Merged sketches would count more than 2^63 - 1 values.")));
	PG_RETURN_BYTEA_P(sketch_to_bytea(a));
}
