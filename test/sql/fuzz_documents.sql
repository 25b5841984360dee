-- Mutation fuzzing of the JSON and task-log formats inside the server: the
-- glue between PostgreSQL's JSON parser and the run store (openlineage,
-- dbt, airflow) is backend code the libFuzzer harnesses cannot reach.
-- Real documents from the shared data beside the checkout ($SMARTETL_DATA,
-- ../shared/data) are mutated two ways: a random value
-- anywhere in the document replaced by a value of another type (null, a
-- number, a bad date, an empty array or object, a huge string), and raw
-- text damage (truncation, a deleted or duplicated slice).  Every ingest
-- must either succeed or fail with a data exception (SQLSTATE class 22)
-- whose message names the line or field; never an internal error, a constraint
-- violation from the tables, or a crash.  Seeded, so runs repeat.
-- Without the shared data, the same OpenLineage and dbt files shipped in
-- test/data ($SMARTETL_TEST_DATA) are used, and smartetl's own Airflow task
-- log test/data/airflow/retry.log stands in for the real one (whose licence
-- does not allow shipping it).
\set ON_ERROR_STOP 1
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
SELECT plan(6);
SELECT setseed(0.4242);
SELECT (pg_stat_file(:'data' || '/format_refs/openlineage/spec_tests_example_full_event.json', true)).size IS NOT NULL AS have_refs,
       :'data' || '/format_refs/airflow/the_best_movies__filter_movies__manual__2023-09-13T13-05-53__attempt1_FAILED.log' AS airflow_real \gset
SELECT CASE WHEN :'have_refs' THEN :'data' || '/format_refs' ELSE :'shipped' END AS refs,
       CASE WHEN (pg_stat_file(:'airflow_real', true)).size IS NOT NULL THEN :'airflow_real'
            ELSE :'shipped' || '/airflow/retry.log' END AS airflow_doc \gset
SELECT diag('documents: ' || :'refs' || '/{openlineage,dbt}, ' || :'airflow_doc');

CREATE TEMP TABLE doc (format text, name text, body text);
INSERT INTO doc
SELECT 'openlineage', f, pg_read_file(:'refs' || '/openlineage/' || f)
FROM unnest(ARRAY['client_python_example_full_event.json', 'client_python_serde_example_run_event.json',
                  'spec_tests_example_full_event.json']) f
UNION ALL
SELECT 'dbt', d, pg_read_file(:'refs' || '/dbt/' || d || '/run_results.json')
FROM unnest(ARRAY['fail_dbt0.21', 'jaffle_shop_postgres_dbt1.3.1', 'no_test_metadata_dbt1.8.5']) d
UNION ALL
SELECT 'airflow', :'airflow_doc', pg_read_file(:'airflow_doc');

-- every path to a scalar or container inside a document
CREATE FUNCTION pg_temp.json_paths(j jsonb, prefix text[] DEFAULT '{}') RETURNS SETOF text[]
LANGUAGE sql AS $$
  SELECT prefix || k FROM jsonb_each(CASE jsonb_typeof(j) WHEN 'object' THEN j ELSE '{}' END) e(k, v)
  UNION ALL SELECT pg_temp.json_paths(v, prefix || k) FROM jsonb_each(CASE jsonb_typeof(j) WHEN 'object' THEN j ELSE '{}' END) e(k, v)
  UNION ALL SELECT prefix || (i - 1)::text FROM jsonb_array_elements(CASE jsonb_typeof(j) WHEN 'array' THEN j ELSE '[]' END) WITH ORDINALITY a(v, i)
  UNION ALL SELECT pg_temp.json_paths(v, prefix || (i - 1)::text) FROM jsonb_array_elements(CASE jsonb_typeof(j) WHEN 'array' THEN j ELSE '[]' END) WITH ORDINALITY a(v, i)
$$;

CREATE FUNCTION pg_temp.type_swap(body text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  j jsonb := body::jsonb;
  paths text[][];
  p text[];
  junk jsonb[] := ARRAY['null', '42', '-1', '1e308', '"2024-99-99T25:61:00Z"', '""', '[]', '{}',
                        '"FAIL"', 'true', to_jsonb(repeat('x', 100000)), '[{"a": []}]'];
BEGIN
  SELECT array_agg(x ORDER BY random()) INTO paths FROM (SELECT array_to_string(q, chr(1)) x FROM pg_temp.json_paths(j) q) s;
  p := string_to_array(paths[1], chr(1));
  RETURN jsonb_set(j, p, junk[1 + floor(random() * array_length(junk, 1))::int])::text;
END $$;

CREATE FUNCTION pg_temp.text_damage(body text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n int := length(body);
  a int := 1 + floor(random() * n)::int;
  b int := least(n, a + floor(random() * 40)::int);
BEGIN
  CASE floor(random() * 3)::int
    WHEN 0 THEN RETURN left(body, a);
    WHEN 1 THEN RETURN left(body, a - 1) || substr(body, b + 1);
    ELSE RETURN left(body, b) || substr(body, a);
  END CASE;
END $$;

CREATE TEMP TABLE outcome (format text, kind text, sqlstate text, message text);
DO $$
DECLARE
  d record;
  input text;
  k text;
  i int;
  st text;
  msg text;
BEGIN
  FOR d IN SELECT * FROM doc LOOP
    FOR i IN 1..150 LOOP
      k := CASE WHEN d.format = 'airflow' OR i % 2 = 0 THEN 'text' ELSE 'type' END;
      input := CASE k WHEN 'text' THEN pg_temp.text_damage(d.body) ELSE pg_temp.type_swap(d.body) END;
      BEGIN
        PERFORM smartetl.ingest(d.format, input, '{"namespace": "fuzz"}');
        st := 'OK';
        msg := NULL;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
      END;
      INSERT INTO outcome VALUES (d.format, k, st, msg);
    END LOOP;
  END LOOP;
END $$;

SELECT is((SELECT string_agg(DISTINCT sqlstate || ' ' || message, '; ') FROM outcome
           WHERE sqlstate <> 'OK' AND sqlstate NOT LIKE '22%'), NULL,
          'every failure is a data exception (class 22), no internal or constraint errors');
SELECT is((SELECT string_agg(DISTINCT message, '; ') FROM outcome
           WHERE sqlstate LIKE '22%' AND message !~ '(line|event) \d+|field "'), NULL,
          'every data error names the line, event or JSON field');
SELECT ok((SELECT count(*) FILTER (WHERE sqlstate = 'OK') > 0 AND count(*) FILTER (WHERE sqlstate <> 'OK') > 0
           FROM outcome WHERE format = f), f || ': mutations both accepted and rejected')
FROM unnest(ARRAY['openlineage', 'dbt', 'airflow']) f;
SELECT is((SELECT count(*) FROM outcome), 1050::bigint, 'all 1,050 mutated inputs ran');

SELECT * FROM finish();
ROLLBACK;
