/*-------------------------------------------------------------------------
 * src/predict/risk_features_sql.c
 *		smartetl._risk_feature_rows(pipeline_id, times[]): the features of
 *		one pipeline at each time, reading its runs once.
 *
 * A run counts from the moment its outcome was known (its end, else its
 * start), so a run still going at time t never leaks its status into the
 * features of t.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "predict/risk_features.h"

PG_FUNCTION_INFO_V1(smartetl_risk_feature_rows);
PG_FUNCTION_INFO_V1(smartetl_risk_feature_names);
PG_FUNCTION_INFO_V1(smartetl_risk_rows);
PG_FUNCTION_INFO_V1(smartetl_risk_feature_names2);

/* Seconds since 1970 of a timestamptz, the unit risk_features.c uses. */
static double
unix_seconds(TimestampTz t)
{
	return (double) t / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static RiskRun *
load_runs(int64 pipeline_id, int *n)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(pipeline_id)};
	RiskRun    *runs;
	uint64		i;

	if (SPI_execute_with_args(
		"SELECT coalesce(ended_at, run_at), status = 'failed', status IN ('success', 'failed'), "
		"coalesce(duration_s, -1), coalesce(rows_written, -1)::float8, attempt, coalesce(template_id, 0), "
		"coalesce(hashtext(host), 0), run_at, status = 'cancelled' "
		"FROM smartetl.run WHERE pipeline_id = $1 AND run_at IS NOT NULL ORDER BY 1, run_id",
		1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read runs");
	runs = palloc0(sizeof(RiskRun) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;

		runs[i].at = unix_seconds(DatumGetTimestampTz(SPI_getbinval(t, d, 1, &isnull)));
		runs[i].failed = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
		runs[i].finished = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		runs[i].duration_s = DatumGetFloat8(SPI_getbinval(t, d, 4, &isnull));
		runs[i].rows_written = DatumGetFloat8(SPI_getbinval(t, d, 5, &isnull));
		runs[i].attempt = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
		runs[i].template_id = DatumGetInt64(SPI_getbinval(t, d, 7, &isnull));
		runs[i].host_hash = (uint32) DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
		runs[i].start = unix_seconds(DatumGetTimestampTz(SPI_getbinval(t, d, 9, &isnull)));
		runs[i].cancelled = DatumGetBool(SPI_getbinval(t, d, 10, &isnull));
	}
	*n = (int) SPI_processed;
	risk_mark_first_templates(runs, *n);
	return runs;
}

/* _risk_feature_rows(pipeline_id bigint, times timestamptz[]) RETURNS TABLE (at timestamptz, features float8[]) */
Datum
smartetl_risk_feature_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		pipeline_id = PG_GETARG_INT64(0);
	ArrayType  *times = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *tv;
	bool	   *tnull;
	int			nt,
				nruns,
				i,
				f;
	RiskRun    *runs;

	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array(times, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &tv, &tnull, &nt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	runs = load_runs(pipeline_id, &nruns);
	for (i = 0; i < nt; i++)
	{
		double		feats[RISK_NFEATURES];
		Datum		fd[RISK_NFEATURES];
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (tnull[i])
			continue;
		risk_features_at(runs, nruns, unix_seconds(DatumGetTimestampTz(tv[i])), feats);
		for (f = 0; f < RISK_NFEATURES; f++)
			fd[f] = Float8GetDatum(feats[f]);
		values[0] = tv[i];
		values[1] = PointerGetDatum(construct_array(fd, RISK_NFEATURES, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* _risk_feature_names() RETURNS text[] */
Datum
smartetl_risk_feature_names(PG_FUNCTION_ARGS)
{
	Datum		names[RISK_NFEATURES];
	int			i;

	for (i = 0; i < RISK_NFEATURES; i++)
		names[i] = CStringGetTextDatum(risk_feature_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, RISK_NFEATURES, TEXTOID, -1, false, TYPALIGN_INT));
}

static double
interval_seconds(Interval *i)
{
	return i->time / (double) USECS_PER_SEC + (i->day + i->month * (double) DAYS_PER_MONTH) * SECS_PER_DAY;
}

/*
 * _risk_rows(pipeline_id bigint, times timestamptz[], horizon interval, active interval)
 *   RETURNS TABLE (at timestamptz, label float8, features float8[])
 * The current features at each time, and the label: 1 when a run of the
 * pipeline that started in (at, at + horizon] failed (0 also when that
 * window is not over yet: the caller asks only for times whose window
 * has passed).  With active not NULL, times at which the pipeline had no
 * run known within active before, or none at all yet, are skipped: the
 * samples of a training set, drawn for every pipeline that is alive.
 */
Datum
smartetl_risk_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		pipeline_id;
	ArrayType  *times;
	double		horizon,
				active;
	Datum	   *tv;
	bool	   *tnull;
	int			nt,
				nruns,
				nfails,
				i,
				f,
				next = 0;
	RiskRun    *runs;
	double	   *fails;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return (Datum) 0;
	pipeline_id = PG_GETARG_INT64(0);
	times = PG_GETARG_ARRAYTYPE_P(1);
	horizon = interval_seconds(PG_GETARG_INTERVAL_P(2));
	active = PG_ARGISNULL(3) ? -1 : interval_seconds(PG_GETARG_INTERVAL_P(3));
	if (horizon <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be positive")));
	deconstruct_array(times, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &tv, &tnull, &nt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	runs = load_runs(pipeline_id, &nruns);
	fails = palloc(sizeof(double) * Max(nruns, 1));
	nfails = risk_failed_starts(runs, nruns, fails);
	for (i = 0; i < nt; i++)
	{
		double		feats[RISK2_NFEATURES];
		Datum		fd[RISK2_NFEATURES];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		double		t;

		if (tnull[i])
			continue;
		t = unix_seconds(DatumGetTimestampTz(tv[i]));
		if (active >= 0)
		{
			/* the latest run known before t (times are usually ascending) */
			if (next > 0 && runs[next - 1].at >= t)
				next = 0;
			while (next < nruns && runs[next].at < t)
				next++;
			if (next == 0 || runs[next - 1].at < t - active)
				continue;
		}
		risk_features2_at(runs, nruns, t, horizon, feats);
		for (f = 0; f < RISK2_NFEATURES; f++)
			fd[f] = Float8GetDatum(feats[f]);
		values[0] = tv[i];
		values[1] = Float8GetDatum(risk_label(fails, nfails, t, horizon));
		values[2] = PointerGetDatum(construct_array(fd, RISK2_NFEATURES, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}

/* _risk_feature_names() RETURNS text[]: the current features */
Datum
smartetl_risk_feature_names2(PG_FUNCTION_ARGS)
{
	Datum		names[RISK2_NFEATURES];
	int			i;

	for (i = 0; i < RISK2_NFEATURES; i++)
		names[i] = CStringGetTextDatum(risk_feature2_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, RISK2_NFEATURES, TEXTOID, -1, false, TYPALIGN_INT));
}
