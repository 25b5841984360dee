/*-------------------------------------------------------------------------
 * src/predict/model_sql.h
 *		Helpers of the model layer's SQL entry points (model_sql.c) that
 *		the failure-risk entry points (risk_backtest_sql.c) share: options,
 *		float8[] in and out, metrics as JSON, the PSI reference.
 *		Backend only.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_MODEL_SQL_H
#define SMARTETL_MODEL_SQL_H

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "predict/model_data.h"
#include "predict/model_metrics.h"

/* A number option of a jsonb (NULL: dflt); an error when it is not a number. */
extern double predict_option_number(Jsonb *options, const char *key, double dflt);

/* The values of a float8[] (NULL elements: NaN), palloc'd. */
extern double *predict_float8_array(ArrayType *a, int *n);
extern ArrayType *predict_float8_result(const double *v, int n);

/* "key": value (null when not finite), after a comma unless the object is empty. */
extern void predict_append_number(StringInfo s, const char *key, double v);

/* A classifier report's fields (roc_auc ... calibration), into an open object. */
extern void predict_append_report(StringInfo s, const MMClassifierReport *r);

/* Per feature, the training rows' PSI reference: 9 cuts then 10 shares. */
extern ArrayType *predict_psi_references(const ModelData *train);

#endif							/* SMARTETL_MODEL_SQL_H */
