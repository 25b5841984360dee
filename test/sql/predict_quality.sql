-- Prediction on real data: log-based anomaly detection on the labelled HDFS
-- block sessions (DeepLog's preprocessing of HDFS_v1: 4,855 normal and
-- 16,838 anomalous sessions as event-key sequences), as event-count vectors
-- per session, with smartetl.train (XGBoost and logistic regression) on a
-- stratified held-out split (every fifth session of each class).
-- loglizer publishes supervised results on HDFS (a different sample of the
-- same log): decision tree F1 0.998, SVM 0.965, logistic regression 0.933.
-- The sessions are Loghub data (research-only licence, not redistributable):
-- they are read from the shared data beside the checkout ($SMARTETL_DATA,
-- ../shared/data); without it the checks are skipped with pgTAP's skip(),
-- counted, and scripts/test.sh lists them at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\getenv data SMARTETL_DATA
\if :{?data}
\else
\set data '(SMARTETL_DATA not set)'
\endif
BEGIN;
SELECT plan(5);
SELECT (pg_stat_file(:'data' || '/loghub_labeled/deeplog_hdfs/hdfs_train', true)).size IS NOT NULL
   AND (pg_stat_file(:'data' || '/loghub_labeled/deeplog_hdfs/hdfs_test_abnormal', true)).size IS NOT NULL
       AS have_labeled \gset

\if :have_labeled

CREATE TEMP TABLE session AS
SELECT row_number() OVER () AS id, label, string_to_array(trim(line), ' ')::int[] AS keys
FROM (SELECT 0 AS label, unnest(string_to_array(pg_read_file(:'data' || '/loghub_labeled/deeplog_hdfs/hdfs_train'), E'\n')) AS line
      UNION ALL
      SELECT 1, unnest(string_to_array(pg_read_file(:'data' || '/loghub_labeled/deeplog_hdfs/hdfs_test_abnormal'), E'\n'))) s
WHERE trim(line) <> '';
SELECT is((SELECT count(*) FILTER (WHERE label = 0) || '/' || count(*) FILTER (WHERE label = 1) FROM session),
          '4855/16838', 'HDFS sessions: 4,855 normal, 16,838 anomalous');

-- one column per event key (1..28), the count of that key in the session
-- (no session id among the features: the files list normal sessions first)
SELECT format('CREATE TEMP TABLE hdfs AS SELECT label, %s FROM session ORDER BY id',
              string_agg(format('cardinality(array_positions(keys, %s)) AS e%s', k, k), ', ' ORDER BY k))
FROM generate_series(1, 28) k \gexec

SELECT smartetl.train('hdfs_xgb', 'SELECT * FROM hdfs', 'label', 'xgboost',
                      '{"split": "stratified"}') AS xgb_id \gset
SELECT smartetl.train('hdfs_lr', 'SELECT * FROM hdfs', 'label', 'linear',
                      '{"split": "stratified"}') AS lr_id \gset
SELECT cmp_ok((metrics->>'f1')::float8, '>=', 0.98::float8,
              'XGBoost event-count model: F1 ' || round((metrics->>'f1')::numeric, 4) || ', ROC-AUC '
              || round((metrics->>'roc_auc')::numeric, 4) || ' on ' || test_rows || ' held-out sessions (target >= 0.98)')
FROM smartetl.model WHERE model_id = :xgb_id;
SELECT cmp_ok((metrics->>'f1')::float8, '>=', 0.933::float8,
              'logistic regression: F1 ' || round((metrics->>'f1')::numeric, 4) || ' (loglizer''s LR: 0.933)')
FROM smartetl.model WHERE model_id = :lr_id;
-- predict() scores one session with the champion, in the query's column order
SELECT ok(smartetl.predict('hdfs_xgb', (SELECT ARRAY[e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14,
          e15, e16, e17, e18, e19, e20, e21, e22, e23, e24, e25, e26, e27, e28]::float8[] FROM hdfs WHERE label = 1 LIMIT 1))
          > 0.5, 'predict() flags an anomalous session');
SELECT is((SELECT count(*) FROM smartetl.model WHERE name IN ('hdfs_xgb', 'hdfs_lr') AND status = 'champion'),
          2::bigint, 'each trained model is its name''s champion');
\else
SELECT skip('Loghub data not found at ' || :'data'
            || ' (research-only licence, not redistributable); put shared/data beside the checkout to run them', 5);
\endif

SELECT * FROM finish();
ROLLBACK;
