-- Every parser on real public data: the 9 Loghub 2k logs against Loghub's
-- own per-line ground truth, the Google Borg 2011 run history against the
-- counts in its PROVENANCE.md, and real OpenLineage, dbt and Airflow documents.
-- The data is the shared real data set beside the checkout, ../shared/data
-- (path in $SMARTETL_DATA): with it every check runs, as in CI.  Without it,
-- the redistributable part shipped in test/data (path in $SMARTETL_TEST_DATA)
-- is used instead: the same OpenLineage and dbt files, and a subset of the
-- Borg runs checked against the subset's own counts
-- (test/data/google_borg_2011/README.md); the checks on data smartetl may not
-- redistribute (Loghub: research-only licence; the Airflow task logs: no
-- licence stated) are then skipped with pgTAP's skip(), counted, and
-- scripts/test.sh lists them at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\getenv data SMARTETL_DATA
\getenv shipped SMARTETL_TEST_DATA
\if :{?data}
\else
\set data '(SMARTETL_DATA not set)'
\endif
\if :{?shipped}
\else
\set shipped '(SMARTETL_TEST_DATA not set)'
\endif
BEGIN;
SELECT plan(55);
SELECT (pg_stat_file(:'data' || '/loghub_2k/formats.csv', true)).size IS NOT NULL AS have_loghub,
       (pg_stat_file(:'data' || '/pipeline_runs/google_borg_2011/job_runs_7d.csv', true)).size IS NOT NULL AS have_borg,
       (pg_stat_file(:'data' || '/format_refs/openlineage/spec_tests_example_full_event.json', true)).size IS NOT NULL AS have_refs,
       (pg_stat_file(:'data' || '/format_refs/airflow/the_best_movies__filter_movies__manual__2023-09-13T13-05-53__attempt1_FAILED.log',
                     true)).size IS NOT NULL AS have_airflow \gset
-- OpenLineage and dbt documents: shared or shipped, the same files
SELECT CASE WHEN :'have_refs' THEN :'data' || '/format_refs' ELSE :'shipped' END AS refs \gset

\if :have_loghub
-- Loghub: lines, per-field ground truth, and the header of each structured file
CREATE TEMP TABLE loghub_format (dataset text, log_file text, log_format text);
SELECT format('COPY loghub_format FROM %L WITH (FORMAT csv, HEADER)',
              :'data' || '/loghub_2k/formats.csv') \gexec

CREATE FUNCTION pg_temp.loghub_check(dir text, file text, fmt text, dataset text)
RETURNS TABLE (lines bigint, unmatched bigint, mismatched bigint, example text,
               inserted bigint, rejected bigint, ga float8)
LANGUAGE plpgsql AS $$
DECLARE
    header text[];
    cmp text := '0';
    h text;
BEGIN
    DROP TABLE IF EXISTS pg_temp.raw_line, pg_temp.truth;
    CREATE TEMP TABLE raw_line (n serial, line text);
    -- bytes that never occur in these logs, so each line lands whole in one column
    EXECUTE format('COPY raw_line (line) FROM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')',
                   dir || '/' || file);
    header := string_to_array(rtrim(split_part(pg_read_file(dir || '/' || file || '_structured.csv', 0, 4096),
                                               E'\n', 1), E'\r'), ',');
    EXECUTE (SELECT format('CREATE TEMP TABLE truth (%s)', string_agg(quote_ident(x) || ' text', ', '))
             FROM unnest(header) x);
    EXECUTE format('COPY truth FROM %L WITH (FORMAT csv, HEADER)', dir || '/' || file || '_structured.csv');
    FOREACH h IN ARRAY header LOOP
        CONTINUE WHEN h IN ('LineId', 'EventId', 'EventTemplate');
        -- Loghub strips each line before splitting it
        cmp := cmp || format(' + (btrim(p->>%L) IS DISTINCT FROM btrim(t.%I))::int', h, h);
    END LOOP;
    EXECUTE format(
        'WITH x AS (SELECT r.n, r.line, smartetl.parse_log(r.line, %L) AS p FROM raw_line r)
         SELECT count(*), count(*) FILTER (WHERE p IS NULL),
                count(*) FILTER (WHERE p IS NOT NULL AND (%s) > 0),
                min(CASE WHEN p IS NULL OR (%s) > 0 THEN x.n || '': '' || x.line END)
         FROM x JOIN truth t ON t."LineId"::int = x.n', fmt, cmp, cmp)
        INTO lines, unmatched, mismatched, example;
    -- each system into an empty template store, as a new user's first log
    -- (and as test/bench/template_ga measures it)
    DELETE FROM smartetl.template_text;
    DELETE FROM smartetl.template_seen;
    SELECT r.inserted, r.rejected INTO inserted, rejected
    FROM smartetl.ingest_file(dir || '/' || file, 'logline',
                              jsonb_build_object('log_format', fmt, 'pipeline', dataset)) r;
    -- Loghub's grouping accuracy: a message counts when its mined group
    -- holds exactly the messages of its ground-truth group
    WITH pairs AS (
        SELECT e.line_no, e.template_id AS mined, t."EventId" AS truth
        FROM smartetl.log_event e JOIN truth t ON t."LineId"::bigint = e.line_no
        WHERE e.source = dir || '/' || file),
    mined AS (SELECT array_agg(line_no ORDER BY line_no) AS members FROM pairs GROUP BY mined),
    truth AS (SELECT array_agg(line_no ORDER BY line_no) AS members FROM pairs GROUP BY truth)
    SELECT coalesce(sum(cardinality(m.members)), 0)::float8 / (SELECT count(*) FROM pairs)
    INTO ga FROM mined m JOIN truth t ON m.members = t.members;
    RETURN NEXT;
END $$;

CREATE TEMP TABLE loghub_result AS
SELECT f.dataset, c.*
FROM loghub_format f,
     pg_temp.loghub_check(:'data' || '/loghub_2k/original', f.log_file, f.log_format, f.dataset) c;
-- The grouping accuracy README.md and BENCHMARKS.md give for each system
-- (test/bench/template_ga.sh), asserted to within 0.005; and Drain's
-- published figure (Zhu et al., ICSE-SEIP 2019, per-dataset settings)
CREATE TEMP TABLE drain_ga (dataset text, ga float8, ours float8);
INSERT INTO drain_ga VALUES ('HDFS', 0.998, 1.000), ('Hadoop', 0.948, 0.994), ('Spark', 0.920, 0.999),
  ('Zookeeper', 0.967, 0.995), ('BGL', 0.963, 1.000), ('HPC', 0.887, 0.980), ('Linux', 0.690, 1.000),
  ('Apache', 1.000, 1.000), ('OpenStack', 0.733, 1.000);

SELECT is(count(*), 9::bigint, 'the 9 Loghub 2k datasets are listed in formats.csv') FROM loghub_result;
SELECT is(lines, 2000::bigint, dataset || ': 2000 lines read') FROM loghub_result ORDER BY dataset;
SELECT is(unmatched + mismatched, 0::bigint,
          dataset || ': every field of every line equals the Loghub ground truth'
          || coalesce(' (first bad line ' || example || ')', ''))
FROM loghub_result ORDER BY dataset;
SELECT is(inserted + rejected, 2000::bigint, dataset || ': ingest_file stores 2000 events, rejects none')
FROM loghub_result WHERE rejected = 0 ORDER BY dataset;
SELECT cmp_ok(round(r.ga::numeric, 3), '>=', (d.ours - 0.005)::numeric,
              format('%s: template grouping accuracy %s, as documented (%s), above Drain''s %s',
                     r.dataset, to_char(r.ga, 'FM0.000'), to_char(d.ours, 'FM0.000'), to_char(d.ga, 'FM0.000')))
FROM loghub_result r JOIN drain_ga d USING (dataset) ORDER BY r.dataset;
SELECT is((SELECT count(*) FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'HDFS' AND e.ts BETWEEN '2008-11-09' AND '2008-11-12'), 2000::bigint,
          'HDFS event times come from <Date> <Time> (yyMMdd HHmmss)');

\else
SELECT skip('Loghub data not found at ' || :'data'
            || ' (research-only licence, not redistributable); put shared/data beside the checkout to run them', 38);
\endif

-- Google Borg 2011: 149,944 runs of 14,827 recurring jobs, or without the
-- shared data the shipped subset of 5,558 runs of 605 of them
CREATE TEMP TABLE borg_expect (label text, file text, source text, runs bigint, pipelines bigint,
                               finish bigint, kill bigint, fail bigint, evict bigint, lost bigint);
\if :have_borg
INSERT INTO borg_expect VALUES ('borg', :'data' || '/pipeline_runs/google_borg_2011/job_runs_7d.csv',
                                'PROVENANCE.md', 149944, 14827, 89595, 58528, 1806, 9, 6);
\else
INSERT INTO borg_expect VALUES ('borg subset', :'shipped' || '/google_borg_2011/job_runs_7d_subset.csv',
                                'test/data/google_borg_2011/README.md', 5558, 605, 2988, 2439, 116, 9, 6);
\endif
SELECT diag('Borg runs from ' || file) FROM borg_expect;
CREATE TEMP TABLE borg_options AS SELECT jsonb_build_object(
    'namespace', 'tap_borg',
    'columns', jsonb_build_object('pipeline', 'logical_job_id', 'external_id', 'job_id',
                                  'started_at', 'schedule_us', 'ended_at', 'end_us',
                                  'status', 'final_event'),
    'epoch_unit', 'us', 'epoch_origin', '2011-05-01 22:50:00+00',
    'status_map', jsonb_build_object('EVICT', 'failed', 'LOST', 'failed')) AS o;
SELECT is((smartetl.ingest_file(e.file, 'csv', o)).inserted,
          e.runs, format('%s: all %s runs inserted', e.label, to_char(e.runs, 'FM999,999')))
FROM borg_options, borg_expect e;
-- statistics for the runs just loaded in this transaction: an earlier file's
-- rolled-back load leaves run with pages and no tuples after autovacuum, and
-- the planner would take it for empty in the statements below
ANALYZE smartetl.run, smartetl.pipeline;
SELECT results_eq(
    $$SELECT r.status::text, count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'tap_borg' GROUP BY 1 ORDER BY 1$$,
    format($$VALUES ('cancelled', %s::bigint), ('failed', %s), ('success', %s)$$, kill, fail + evict + lost, finish),
    format('%s: FINISH %s, KILL %s, FAIL+EVICT+LOST %s+%s+%s as in %s', label, to_char(finish, 'FM999,999'),
           to_char(kill, 'FM999,999'), to_char(fail, 'FM999,999'), evict, lost, source))
FROM borg_expect;
SELECT is((SELECT count(*) FROM smartetl.pipeline WHERE namespace = 'tap_borg'), pipelines,
          label || ': one pipeline per logical job')
FROM borg_expect;
SELECT ok((SELECT min(started_at) >= '2011-05-01 23:00+00' AND max(started_at) < '2011-05-09 00:00+00'
           FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'tap_borg'),
          label || ': start times fall in the 7-day window')
FROM borg_expect;
SELECT is((smartetl.ingest_file(e.file, 'csv', o)).unchanged,
          e.runs, format('%s: re-ingest leaves all %s runs unchanged', e.label, to_char(e.runs, 'FM999,999')))
FROM borg_options, borg_expect e;

SELECT diag('OpenLineage and dbt documents from ' || :'refs');
-- OpenLineage: the RunEvent examples of the OpenLineage repository
CREATE TEMP TABLE ol_result AS
SELECT f, r.*
FROM unnest(ARRAY['client_python_example_full_event.json', 'client_python_serde_example_run_event.json',
                  'spec_tests_example_full_event.json']) f,
     LATERAL smartetl.ingest_file(:'refs' || '/openlineage/' || f, 'openlineage') r;
SELECT is(inserted + updated + unchanged + rejected, 1::bigint, 'openlineage ' || f || ': one run')
FROM ol_result ORDER BY f;
SELECT results_eq(
    $$SELECT p.namespace || '/' || p.name, r.status::text FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE r.external_id IN ('ea041791-68bc-4ae1-bd89-4c8106a157e4', '69f4acab-b87d-4fc0-b27b-8ea950370ff3',
                              'f69a6e9b-9bac-3c9a-9cf6-eacb70ecc9a9') ORDER BY 1$$,
    $$VALUES ('food_delivery/dbt', 'success'), ('my-scheduler-namespace/myjob.mytask', 'success'),
             ('openlineage/name', 'running')$$,
    'openlineage examples: job namespace/name as pipeline, eventType as status');

-- dbt: run_results.json of real dbt runs (schema v2, v4, v5)
CREATE TEMP TABLE dbt_result AS
SELECT d, r.*
FROM unnest(ARRAY['fail_dbt0.21', 'jaffle_shop_postgres_dbt1.3.1', 'no_test_metadata_dbt1.8.5']) d,
     LATERAL smartetl.ingest_file(:'refs' || '/dbt/' || d || '/run_results.json', 'dbt',
                                  '{"namespace": "tap_dbt"}') r;
SELECT results_eq($$SELECT d, inserted FROM dbt_result ORDER BY d$$,
    $$VALUES ('fail_dbt0.21', 5::bigint), ('jaffle_shop_postgres_dbt1.3.1', 6), ('no_test_metadata_dbt1.8.5', 22)$$,
    'dbt: one run per node result plus one per invocation');
SELECT results_eq(
    $$SELECT r.external_id, r.status::text, count(c.*) FROM smartetl.run r
      JOIN smartetl.pipeline p USING (pipeline_id) LEFT JOIN smartetl.run c ON c.parent_run_id = r.run_id
      WHERE p.namespace = 'tap_dbt' AND r.parent_run_id IS NULL GROUP BY 1, 2 ORDER BY 1$$,
    $$VALUES ('1269f08d-da04-4fbd-8207-1ddc9110cb1b', 'success', 5::bigint),
             ('8c814240-637d-4a36-937e-43787f5c79e0', 'failed', 4),
             ('ebb384bf-f2f3-4303-bb1b-98b1daa6d2d4', 'failed', 21)$$,
    'dbt: each invocation is a parent run, failed when a node errored or a test failed');
SELECT results_eq(
    $$SELECT r.status::text, count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'tap_dbt' AND r.parent_run_id IS NOT NULL GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('failed', 3::bigint), ('skipped', 1), ('success', 26)$$,
    'dbt: node statuses (error/fail failed, success/pass success, skipped)');

-- Airflow: real task logs of one DAG (a failed try, then a successful DAG run)
\if :have_airflow
CREATE TEMP TABLE af_result AS
SELECT f, r.*
FROM unnest(ARRAY['the_best_movies__filter_movies__manual__2023-09-13T13-05-53__attempt1_FAILED.log',
                  'the_best_movies__filter_movies__manual__2023-09-13T13-21-22__attempt1_SUCCESS.log',
                  'the_best_movies__insert_movies__manual__2023-09-13T13-21-22__attempt1_SUCCESS.log',
                  'the_best_movies__read_movies__manual__2023-09-13T13-21-22__attempt1_SUCCESS.log']) f,
     LATERAL smartetl.ingest_file(:'data' || '/format_refs/airflow/' || f, 'airflow', '{"namespace": "tap_airflow"}') r;
SELECT results_eq(
    $$SELECT p.name, r.external_id, r.attempt, r.status::text, r.host, r.attrs->>'operator'
      FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
      WHERE p.namespace = 'tap_airflow' ORDER BY 1, 2$$,
    $$VALUES ('the_best_movies.filter_movies', 'manual__2023-09-13T13:05:53.295314+00:00', 1, 'failed', '7f15b43741c2', '_PythonDecoratedOperator'),
             ('the_best_movies.filter_movies', 'manual__2023-09-13T13:21:22.841059+00:00', 1, 'success', '056025c9bfde', '_PythonDecoratedOperator'),
             ('the_best_movies.insert_movies', 'manual__2023-09-13T13:21:22.841059+00:00', 1, 'success', '056025c9bfde', '_PythonDecoratedOperator'),
             ('the_best_movies.read_movies', 'manual__2023-09-13T13:21:22.841059+00:00', 1, 'success', '056025c9bfde', '_PythonDecoratedOperator')$$,
    'airflow logs: one run per task try, named by dag.task and DAG run id, status from the markers');
SELECT is((SELECT r.error_message FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'tap_airflow' AND r.status = 'failed'),
          $$OSError: Cannot save file into a non-existent directory: 'tmp'$$,
          'airflow logs: the failed try''s error is the traceback''s exception');
SELECT is((SELECT r.ended_at - r.started_at FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'tap_airflow' AND r.status = 'failed'),
          interval '0.333 s', 'airflow logs: the try runs from "Starting attempt" to "Marking task as"');
SELECT results_eq(
    $$SELECT count(*), count(e.run_id), count(DISTINCT e.run_id), count(*) FILTER (WHERE e.attrs ? 'continuation_lines')
      FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'tap_airflow'$$,
    $$VALUES (53::bigint, 53::bigint, 4::bigint, 1::bigint)$$,
    'airflow logs: 71 lines are 53 entries (the traceback joins its ERROR entry), each linked to its run');
SELECT is((SELECT sum(unchanged) FROM (SELECT (smartetl.ingest_file(:'data' || '/format_refs/airflow/' || f, 'airflow',
                                               '{"namespace": "tap_airflow"}')).unchanged FROM af_result) s),
          57::numeric, 'airflow logs: re-ingest leaves 4 runs and 53 events unchanged');
\else
SELECT skip('Airflow task logs not found at ' || :'data' || '/format_refs/airflow'
            || ' (no licence stated, not redistributable); put shared/data beside the checkout to run them', 5);
\endif

SELECT * FROM finish();
ROLLBACK;
