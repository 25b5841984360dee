-- qsketch: special values, text and binary forms, bad input.
-- NaN is counted but never ranked; infinities rank at the ends; negatives
-- are sketched by magnitude; zero is exact; NULLs are skipped.
SELECT smartetl.qsketch_agg(x) FROM (VALUES (1.0::float8), (2), (3)) v(x);
SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0, 0.25, 0.5, 0.75, 1}')
FROM (VALUES ('-100'::float8), ('-1'), ('0'), ('0'), ('1'), ('100'), (NULL), ('NaN')) v(x);
SELECT smartetl.qsketch_count(s), smartetl.qsketch_mean(s), smartetl.quantiles(s, '{0, 0.5, 1}')
FROM (SELECT smartetl.qsketch_agg(x) s
      FROM (VALUES ('-Infinity'::float8), ('1'), ('2'), ('3'), ('Infinity'), ('NaN')) v(x)) q;
-- only NaN: a sketch with nothing to rank; no rows at all: NULL
SELECT smartetl.quantile(smartetl.qsketch_agg('NaN'::float8), 0.5) IS NULL AS nan_only_is_null,
       smartetl.qsketch_agg(x) IS NULL AS empty_is_null
FROM (SELECT 1.0::float8 WHERE false) e(x);
-- 16 orders of magnitude fit in the 4096 buckets: every value keeps its accuracy
SELECT bool_and(abs(smartetl.quantile(s, p) / v - 1) <= 0.005 + 1e-12) AS within_bound
FROM (SELECT smartetl.qsketch_agg(x) s FROM (VALUES (1e-8::float8), (1.0), (1e8)) v(x)) q,
     (VALUES (0.0, 1e-8::float8), (0.5, 1.0), (1.0, 1e8)) w(p, v);
-- beyond that the buckets nearest zero fold together: min and max stay
-- exact, the lowest values read as the lowest kept bucket
SELECT smartetl.quantile(s, 0) AS min, smartetl.quantile(s, 0.5) > 1e280 AS mid_folded_up,
       smartetl.quantile(s, 1) AS max
FROM (SELECT smartetl.qsketch_agg(x) s FROM (VALUES (1e-300::float8), (1.0), (1e300)) v(x)) q;
-- fractions outside [0, 1] are errors, like percentile_cont
SELECT smartetl.quantile(smartetl.qsketch_agg(1.0), 1.5);
SELECT smartetl.quantiles(smartetl.qsketch_agg(1.0), '{0.5, NaN}');
-- text form round trip and validation
SELECT '{"alpha": 0.005, "count": 2, "zero": 1, "nan": 0, "pos_inf": 0, "neg_inf": 0, "sum": 5, "min": 0, "max": 5, "pos": [[323, 1]], "neg": []}'::smartetl.qsketch;
SELECT '{"alpha": 0.01, "count": 0, "zero": 0, "nan": 0, "pos_inf": 0, "neg_inf": 0, "sum": 0, "min": 0, "max": 0, "pos": [], "neg": []}'::smartetl.qsketch;
SELECT '{"alpha": 0.005, "count": 3, "zero": 1, "nan": 0, "pos_inf": 0, "neg_inf": 0, "sum": 5, "min": 0, "max": 5, "pos": [[323, 1]], "neg": []}'::smartetl.qsketch;
SELECT '{"alpha": 0.005, "count": 2, "zero": 0, "nan": 0, "pos_inf": 0, "neg_inf": 0, "sum": 5, "min": 0, "max": 5, "pos": [[323, 1], [20, 1]], "neg": []}'::smartetl.qsketch;
SELECT '{"alpha": 0.005, "count": 1, "zero": 0, "nan": 0, "pos_inf": 0, "neg_inf": 0, "sum": 5, "min": 0, "max": 5, "pos": [[323]], "neg": []}'::smartetl.qsketch;
SELECT '{"alpha": 0.005, "count": 1, "zero": 0, "nan": 0, "pos_inf": 1, "neg_inf": 0, "sum": 0, "min": "Infinity", "max": "Infinity", "pos": [], "neg": []}'::smartetl.qsketch;
SELECT '[1, 2]'::smartetl.qsketch;
-- binary form: COPY BINARY out and back in
CREATE TABLE qs_copy (s smartetl.qsketch);
INSERT INTO qs_copy SELECT smartetl.qsketch_agg(g) FROM generate_series(-50, 1000) g;
-- (through a file of this session's own, read back and removed)
SELECT '/tmp/smartetl_qs_copy_' || pg_backend_pid() || '_' || md5(random()::text) || '.bin' AS qs_file \gset
SELECT 'cat ' || :'qs_file' || ' && rm -f ' || :'qs_file' AS qs_read \gset
COPY qs_copy TO :'qs_file' WITH (FORMAT binary);
COPY qs_copy FROM PROGRAM :'qs_read' WITH (FORMAT binary);
SELECT count(*), count(DISTINCT s::text) FROM qs_copy;
DROP TABLE qs_copy;
