/*-------------------------------------------------------------------------
 * src/predict/risk_backtest_sql.c
 *		smartetl._risk_backtest(): the rolling-origin evaluation of the
 *		failure-risk candidates over a query's samples, and with final =
 *		true the models to store.  train_risk_model() and backtest() in
 *		src/sql/89_predict.sql call it; risk_backtest.c does the work.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/resource.h>
#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "predict/model_sql.h"
#include "predict/risk_backtest.h"
#include "predict/risk_features.h"

PG_FUNCTION_INFO_V1(smartetl_risk_backtest);

static double
to_unix(TimestampTz t)
{
	return (double) t / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static double
interval_seconds(Interval *i)
{
	return i->time / (double) USECS_PER_SEC + (i->day + i->month * (double) DAYS_PER_MONTH) * SECS_PER_DAY;
}

static void
backtest_error(const char *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("risk backtest: %s", err)));
}

/*
 * The samples of the query, (t timestamptz, pipeline_id bigint, label
 * float8, features float8[]) ordered by t, into s (allocated in cxt).
 */
static void
read_samples(const char *query, RiskSamples *s, MemoryContext cxt)
{
	Portal		portal;
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	int			cap = 0;
	long		row = 0;
	const char *err;

	if (plan == NULL)
		elog(ERROR, "could not prepare the sample query: %s", SPI_result_code_string(SPI_result));
	MemoryContextSwitchTo(cxt);
	if ((err = md_init(&s->md, RISK2_NFEATURES, false)) != NULL)
		backtest_error(err);
	s->t = NULL;
	s->group = NULL;
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		MemoryContextSwitchTo(cxt);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		n1,
						n2,
						n3,
						n4;
			Datum		t = SPI_getbinval(tup, d, 1, &n1);
			Datum		g = SPI_getbinval(tup, d, 2, &n2);
			Datum		label = SPI_getbinval(tup, d, 3, &n3);
			Datum		feats = SPI_getbinval(tup, d, 4, &n4);
			double	   *x;
			int			n;

			row++;
			if (n1 || n2 || n3 || n4)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("sample %ld has a NULL time, pipeline, label or feature array", row)));
			x = predict_float8_array(DatumGetArrayTypeP(feats), &n);
			if (n != RISK2_NFEATURES)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("sample %ld has %d features, expected %d", row, n, RISK2_NFEATURES)));
			if ((err = md_append_row_double(&s->md, x, DatumGetFloat8(label), 1.0)) != NULL)
				backtest_error(err);
			if (s->md.nrows > cap)
			{
				cap = Max(1024, cap * 2);
				s->t = s->t ? repalloc_huge(s->t, sizeof(double) * cap) : palloc_extended(sizeof(double) * cap, MCXT_ALLOC_HUGE);
				s->group = s->group ? repalloc_huge(s->group, sizeof(int64_t) * cap)
					: palloc_extended(sizeof(int64_t) * cap, MCXT_ALLOC_HUGE);
			}
			s->t[s->md.nrows - 1] = to_unix(DatumGetTimestampTz(t));
			s->group[s->md.nrows - 1] = DatumGetInt64(g);
			if (s->md.nrows > 1 && s->t[s->md.nrows - 1] < s->t[s->md.nrows - 2])
				elog(ERROR, "the samples are not ordered by time");
			pfree(x);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

static bool
cancel_requested(void *arg)
{
	return InterruptPending;
}

/* The final models are XGBoost's memory: release them with the call's memory. */
static void
free_result_callback(void *arg)
{
	risk_backtest_free((RiskBacktestResult *) arg);
}

/* "key": "2024-03-01T06:00:00Z" (UTC, whatever the session's DateStyle) */
static void
append_time(StringInfo s, const char *key, double t)
{
	time_t		secs = (time_t) floor(t);
	struct tm	tm;
	char		text[32];

	gmtime_r(&secs, &tm);
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	appendStringInfo(s, ", \"%s\": \"%s\"", key, text);
}

/* One candidate's metrics as JSON text. */
static char *
candidate_json(const RiskBacktestResult *r, const RiskCandidate *c, const RiskBacktestParams *p)
{
	StringInfoData s;
	int			k;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	predict_append_report(&s, &c->report);
	predict_append_number(&s, "pipeline_times", c->report.n);
	predict_append_number(&s, "base_rate", c->report.n ? (double) c->report.positives / c->report.n : NAN);
	append_time(&s, "evaluated_from", r->from);
	append_time(&s, "evaluated_until", r->until);
	predict_append_number(&s, "min_gain", p->min_gain);
	if (c->kind != RISK_BASELINE)
	{
		predict_append_number(&s, "gain_over_baseline", c->gain);
		predict_append_number(&s, "gain_se", c->gain_se);
	}
	appendStringInfo(&s, ", \"best_baseline\": \"%s\"", r->candidates[r->best_baseline].name);
	appendStringInfo(&s, ", \"served\": %s", c->served ? "true" : "false");
	appendStringInfoString(&s, ", \"folds\": [");
	for (k = 0; k < c->nblocks; k++)
	{
		StringInfoData f;

		initStringInfo(&f);
		appendStringInfoChar(&f, '{');
		predict_append_number(&f, "roc_auc", c->block_auc[k]);
		predict_append_number(&f, "pipeline_times", c->block_n[k]);
		predict_append_number(&f, "positives", c->block_positives[k]);
		append_time(&f, "from", c->block_from[k]);
		appendStringInfoChar(&f, '}');
		appendStringInfo(&s, "%s%s", k ? ", " : "", f.data);
	}
	appendStringInfoString(&s, "]}");
	return s.data;
}

static bytea *
to_bytea(const char *buf, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), buf, len);
	return b;
}

/*
 * _risk_backtest(query text, horizon interval, step interval, "from" timestamptz,
 *                until timestamptz, algorithms text[], options jsonb, final boolean)
 *   RETURNS TABLE (candidate text, algorithm text, served boolean, model bytea,
 *                  metrics jsonb, calibration float8[], reference float8[],
 *                  train_rows int, test_rows int, train_seconds float8, peak_rss_kb bigint)
 * One row per candidate, baselines first.  model is the baseline's bytes,
 * or with final the learned model trained on every sample (else NULL).
 */
Datum
smartetl_risk_backtest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	Jsonb	   *options = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	RiskBacktestParams p;
	RiskSamples s;
	RiskBacktestResult *r;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContextCallback *cb;
	ArrayType  *reference;
	struct rusage ru;
	const char *err;
	int			c;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query, horizon and step must not be NULL")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	risk_backtest_default_params(&p);
	p.horizon = interval_seconds(PG_GETARG_INTERVAL_P(1));
	p.step = interval_seconds(PG_GETARG_INTERVAL_P(2));
	if (!PG_ARGISNULL(3))
		p.from = to_unix(PG_GETARG_TIMESTAMPTZ(3));
	if (!PG_ARGISNULL(4))
		p.until = to_unix(PG_GETARG_TIMESTAMPTZ(4));
	p.xgboost = false;
	if (!PG_ARGISNULL(5))
	{
		Datum	   *algs;
		bool	   *nulls;
		int			nalgs,
					i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(5), TEXTOID, -1, false, TYPALIGN_INT, &algs, &nulls, &nalgs);
		for (i = 0; i < nalgs; i++)
		{
			char	   *a = nulls[i] ? "" : TextDatumGetCString(algs[i]);

			if (strcmp(a, "xgboost") == 0)
				p.xgboost = true;
			else if (strcmp(a, "linear") == 0)
				p.linear = true;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown algorithm \"%s\"", a),
						 errhint("Risk models are xgboost, linear, or auto (both, the better one served).")));
		}
	}
	p.final = !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);
	p.folds = (int) predict_option_number(options, "folds", p.folds);
	p.validation_share = predict_option_number(options, "validation_share", p.validation_share);
	p.min_gain = predict_option_number(options, "min_gain", p.min_gain);
	p.bootstrap = (int) predict_option_number(options, "bootstrap", p.bootstrap);
	p.xgb.max_depth = (int) predict_option_number(options, "max_depth", p.xgb.max_depth);
	p.xgb.eta = predict_option_number(options, "eta", p.xgb.eta);
	p.xgb.n_rounds = (int) predict_option_number(options, "n_rounds", p.xgb.n_rounds);
	p.xgb.min_child_weight = predict_option_number(options, "min_child_weight", p.xgb.min_child_weight);
	p.xgb.subsample = predict_option_number(options, "subsample", p.xgb.subsample);
	p.xgb.colsample_bytree = predict_option_number(options, "colsample_bytree", p.xgb.colsample_bytree);
	p.xgb.scale_pos_weight = predict_option_number(options, "scale_pos_weight", p.xgb.scale_pos_weight);
	p.lin.C = predict_option_number(options, "C", p.lin.C);
	p.xgb.cancel_requested = cancel_requested;
	if (!(p.validation_share > 0 && p.validation_share < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"validation_share\" must be between 0 and 1")));
	if (p.bootstrap < 0 || p.bootstrap > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"bootstrap\" must be between 0 and 10000")));

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read_samples(query, &s, caller);
	SPI_finish();
	MemoryContextSwitchTo(caller);
	if (s.md.nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no samples to evaluate"),
				 errdetail("A sample is a pipeline at a time with a run before it and a label known afterwards."),
				 errhint("The history needs runs over more than one horizon.")));

	r = palloc0(sizeof(RiskBacktestResult));
	cb = palloc0(sizeof(MemoryContextCallback));
	cb->func = free_result_callback;
	cb->arg = r;
	MemoryContextRegisterResetCallback(caller, cb);
	err = risk_backtest(&s, &p, cancel_requested, NULL, r);
	CHECK_FOR_INTERRUPTS();
	if (err)
		backtest_error(err);
	reference = predict_psi_references(&s.md);
	getrusage(RUSAGE_SELF, &ru);

	for (c = 0; c < r->ncandidates; c++)
	{
		RiskCandidate *cand = &r->candidates[c];
		Datum		values[11];
		bool		nulls[11] = {false};
		char	   *buf = NULL;
		size_t		len = 0;

		values[0] = CStringGetTextDatum(cand->name);
		values[1] = CStringGetTextDatum(cand->kind == RISK_BASELINE ? "baseline" :
										cand->kind == RISK_XGBOOST ? "xgboost" : "linear");
		values[2] = BoolGetDatum(cand->served);
		if (cand->kind == RISK_BASELINE)
			buf = baseline_serialize(baseline_make(cand->baseline, RISK2_NFEATURES), &len);
		else if (cand->xgb)
		{
			if ((err = xgb_serialize(cand->xgb, &buf, &len)) != NULL)
				backtest_error(err);
		}
		else if (cand->lin)
			buf = linear_serialize(cand->lin, &len);
		nulls[3] = buf == NULL;
		if (buf)
			values[3] = PointerGetDatum(to_bytea(buf, len));
		values[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(candidate_json(r, cand, &p)));
		values[5] = PointerGetDatum(predict_float8_result((double[]) {cand->platt_a, cand->platt_b}, 2));
		values[6] = PointerGetDatum(reference);
		values[7] = Int32GetDatum(cand->kind == RISK_BASELINE ? 0 : cand->train_rows);
		values[8] = Int32GetDatum(cand->report.n);
		values[9] = Float8GetDatum(cand->train_seconds);
		values[10] = Int64GetDatum((int64) ru.ru_maxrss);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
