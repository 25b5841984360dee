-- Anomaly detection on synthetic run histories with planted anomalies:
-- 36 pipelines (hourly, 6-hourly, daily), log-normal durations with an
-- hour-of-day cycle and volumes with a weekend dip, 90 days of history;
-- in the last 30 days 1.5 % of runs get a planted duration or volume
-- anomaly (x3..x8 or x0.1..x0.3, volume x0.05..x0.2 or x4..x10).  Reports
-- precision and recall per kind; seeded, and on a fixed clock (:'clock'
-- stands for "now": the history, its hour-of-week alignment and every
-- range are the same in every run), so the figures repeat exactly and are
-- the ones README quotes.  Also: missing runs and freshness, and that a run
-- never counts in its own baseline (fixed clock too), and the anomalies
-- view, which reads the real now(), over a few runs placed just before it.
-- Scores are kept as runs arrive (run_anomaly_score): they must equal the
-- moving-window query that computed them from the runs on every call
-- before (pg_temp.oracle below), whatever the order and path of arrival.
\set ON_ERROR_STOP 1
\set clock '2025-03-10 12:00:00+00'
SET client_min_messages = warning;
BEGIN;
SELECT plan(11);
SELECT setseed(0.777);
CREATE FUNCTION pg_temp.gauss() RETURNS double precision LANGUAGE sql VOLATILE AS
$$ SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) $$;

INSERT INTO smartetl.pipeline (namespace, name)
SELECT 'tap_anomaly', 'job_' || g FROM generate_series(1, 36) g;

CREATE TEMP TABLE planted AS
SELECT p.pipeline_id, t AS run_at,
       (60 + 40 * (k % 7)) * exp(0.2 * pg_temp.gauss())
           * (1 + 0.5 * sin(2 * pi() * extract(hour FROM t) / 24)) AS duration_s,
       round((1000 + 500 * (k % 5)) * exp(0.1 * pg_temp.gauss())
           * CASE WHEN extract(isodow FROM t) >= 6 THEN 0.5 ELSE 1 END) AS rows_written,
       CASE WHEN t > :'clock'::timestamptz - interval '30 days' AND random() < 0.015
            THEN (ARRAY['duration', 'volume'])[1 + floor(random() * 2)::int] END AS planted,
       random() AS r
FROM smartetl.pipeline p,
     LATERAL (SELECT substr(p.name, 5)::int AS k) n,
     LATERAL (SELECT (ARRAY['1 hour', '6 hours', '1 day'])[1 + k % 3]::interval AS every) e,
     LATERAL generate_series(date_trunc('hour', :'clock'::timestamptz) - interval '90 days',
                             :'clock'::timestamptz - interval '1 hour', e.every) t
WHERE p.namespace = 'tap_anomaly'
ORDER BY k, t;
UPDATE planted SET duration_s = duration_s * CASE WHEN r < 0.5 THEN 3 + 5 * random() ELSE 0.1 + 0.2 * random() END
WHERE planted = 'duration';
UPDATE planted SET rows_written = round(rows_written * CASE WHEN r < 0.5 THEN 0.05 + 0.15 * random() ELSE 4 + 6 * random() END)
WHERE planted = 'volume';

INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration, rows_written)
SELECT pipeline_id, 'r' || row_number() OVER (), 'success', run_at, run_at + make_interval(secs => duration_s),
       make_interval(secs => duration_s), rows_written::bigint
FROM planted;

-- the oracle: the window query detect_anomalies ran on each call before
-- scores were kept (history from 120 days before from_ts)
CREATE FUNCTION pg_temp.oracle(from_ts timestamptz, to_ts timestamptz, threshold double precision)
RETURNS TABLE (run_id bigint, kind text, value double precision, expected double precision,
               expected_low double precision, expected_high double precision, score double precision,
               baseline text, baseline_runs integer)
LANGUAGE sql STABLE AS $$
    WITH runs AS (
        SELECT r.run_id, r.pipeline_id, r.run_at, m.kind, m.x, ln(1 + m.x) AS lx,
               (extract(isodow FROM r.run_at AT TIME ZONE 'UTC') * 24
                + extract(hour FROM r.run_at AT TIME ZONE 'UTC'))::int AS how
        FROM smartetl.run r
        CROSS JOIN LATERAL (VALUES ('duration', r.duration_s), ('volume', r.rows_written::float8)) m(kind, x)
        WHERE r.status = 'success' AND m.x >= 0
          AND r.run_at >= from_ts - interval '120 days' AND r.run_at < to_ts
    ), based AS (
        SELECT runs.*, smartetl.median_mad(lx) OVER seasonal AS season,
               smartetl.median_mad(lx) OVER recent AS recent
        FROM runs
        WINDOW seasonal AS (PARTITION BY pipeline_id, kind, how ORDER BY run_at, run_id
                            ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING),
               recent AS (PARTITION BY pipeline_id, kind ORDER BY run_at, run_id
                          ROWS BETWEEN 30 PRECEDING AND 1 PRECEDING)
    ), centered AS (
        SELECT based.*,
               CASE WHEN season[3] >= 4 THEN season[1] WHEN recent[3] >= 8 THEN recent[1] END AS center,
               CASE WHEN season[3] >= 4 THEN 'hour_of_week' ELSE 'recent_runs' END AS baseline,
               CASE WHEN season[3] >= 4 THEN season[3] ELSE recent[3] END AS n_base
        FROM based
    ), spread AS (
        SELECT centered.*, smartetl.median_mad(lx - center) OVER (
                   PARTITION BY pipeline_id, kind ORDER BY run_at, run_id
                   ROWS BETWEEN 100 PRECEDING AND 1 PRECEDING) AS resid
        FROM centered
    ), scored AS (
        SELECT *, greatest(1.4826 * resid[2], 0.05) AS scale
        FROM spread WHERE run_at >= from_ts AND center IS NOT NULL AND resid[3] >= 8
    )
    SELECT s.run_id, s.kind, s.x, exp(s.center) - 1,
           greatest(exp(s.center - threshold * s.scale) - 1, 0),
           exp(s.center + threshold * s.scale) - 1,
           (s.lx - s.center) / s.scale, s.baseline, s.n_base::int
    FROM scored s
    WHERE abs(s.lx - s.center) / s.scale > threshold
$$;
CREATE FUNCTION pg_temp.kept(from_ts timestamptz, to_ts timestamptz, threshold double precision)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT run_id, kind, value, expected, expected_low, expected_high, score, baseline, baseline_runs
    FROM smartetl.detect_anomalies(from_ts, to_ts, threshold)
$$;

CREATE TEMP TABLE found AS
SELECT a.* FROM smartetl.detect_anomalies(:'clock'::timestamptz - interval '30 days', :'clock') a
JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'tap_anomaly';

CREATE TEMP TABLE quality AS
SELECT k.kind,
       (SELECT count(*) FROM found f JOIN planted t ON t.pipeline_id = f.pipeline_id AND t.run_at = f.run_at
        WHERE f.kind = k.kind AND t.planted = k.kind) AS tp,
       (SELECT count(*) FROM found f WHERE f.kind = k.kind) AS flagged,
       (SELECT count(*) FROM planted t WHERE t.planted = k.kind) AS planted
FROM (VALUES ('duration'), ('volume')) k(kind);

SELECT cmp_ok(tp::float8 / flagged, '>=', 0.9::float8,
              kind || ' precision >= 0.9: ' || tp || ' of ' || flagged || ' flagged runs were planted ('
              || round(tp::numeric / flagged, 3) || ')')
FROM quality ORDER BY kind;
SELECT cmp_ok(tp::float8 / planted, '>=', 0.9::float8,
              kind || ' recall >= 0.9: ' || tp || ' of ' || planted || ' planted anomalies found ('
              || round(tp::numeric / planted, 3) || ')')
FROM quality ORDER BY kind;
-- the figures README quotes (section Anomalies)
SELECT is(string_agg(format('%s precision %s and recall %s', kind, round(tp::numeric / flagged, 3),
                            round(tp::numeric / planted, 3)), ', ' ORDER BY kind),
          'duration precision 0.945 and recall 0.958, volume precision 0.988 and recall 1.000',
          'precision and recall are the figures in README')
FROM quality;

-- every score (threshold -1), bit for bit, against the oracle
SELECT is((SELECT count(*) FROM (
               (SELECT * FROM pg_temp.kept(:'clock'::timestamptz - interval '30 days', :'clock', -1)
                   AS k(run_id bigint, kind text, value float8, expected float8, expected_low float8,
                        expected_high float8, score float8, baseline text, baseline_runs int)
                EXCEPT ALL SELECT * FROM pg_temp.oracle(:'clock'::timestamptz - interval '30 days', :'clock', -1))
               UNION ALL
               (SELECT * FROM pg_temp.oracle(:'clock'::timestamptz - interval '30 days', :'clock', -1)
                EXCEPT ALL SELECT * FROM pg_temp.kept(:'clock'::timestamptz - interval '30 days', :'clock', -1)
                   AS k(run_id bigint, kind text, value float8, expected float8, expected_low float8,
                        expected_high float8, score float8, baseline text, baseline_runs int))) d),
          0::bigint, 'kept scores equal the window query''s, every run of the last 30 days (one INSERT of the history)');

-- runs arriving in pieces: bulk ingest in three files (the last one late,
-- landing between earlier runs), one run at a time through SQL, a
-- corrected volume, a deleted run and a run that finishes later
CREATE TEMP TABLE incr AS
SELECT 'incr_' || (g % 3) AS job, g AS n,
       :'clock'::timestamptz - interval '40 days' + g * interval '1 hour' + (g % 3) * interval '7 minutes' AS start,
       round((100 + 50 * (g % 3)) * exp(0.2 * pg_temp.gauss())
             * CASE WHEN random() < 0.02 THEN 5 ELSE 1 END)::int AS secs,
       CASE WHEN g % 11 = 0 THEN NULL ELSE round(1000 * exp(0.1 * pg_temp.gauss()))::int END AS rows_out,
       CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'success' END AS status
FROM generate_series(1, 900) g;
CREATE FUNCTION pg_temp.incr_csv(lo int, hi int) RETURNS text LANGUAGE sql AS $$
    SELECT E'job,run_id,start,end,status,rows\n'
           || string_agg(format('%s,%s,%s,%s,%s,%s', job, n, start, start + make_interval(secs => secs), status,
                                coalesce(rows_out::text, '')), E'\n' ORDER BY n) || E'\n'
    FROM incr WHERE n BETWEEN lo AND hi AND n % 50 <> 7
$$;
\o /dev/null
SELECT inserted FROM smartetl.ingest('csv', pg_temp.incr_csv(1, 400), '{"namespace": "tap_incr"}');
SELECT inserted FROM smartetl.ingest('csv', pg_temp.incr_csv(401, 800), '{"namespace": "tap_incr"}');
SELECT count(*) FROM (
    SELECT smartetl.ingest('csv', pg_temp.incr_csv(n, n), '{"namespace": "tap_incr"}')
    FROM generate_series(801, 900) n ORDER BY n) s;
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status,rows\n'
       || (SELECT string_agg(format('%s,%s,%s,%s,%s,%s', job, n, start, start + make_interval(secs => secs), status,
                                    coalesce(rows_out::text, '')), E'\n' ORDER BY n)
           FROM incr WHERE n % 50 = 7 AND n < 800) || E'\n', '{"namespace": "tap_incr"}');
UPDATE smartetl.run SET rows_written = rows_written * 20
WHERE external_id = '600' AND pipeline_id IN (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'tap_incr');
DELETE FROM smartetl.run
WHERE external_id = '650' AND pipeline_id IN (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'tap_incr');
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at)
SELECT pipeline_id, 'late', 'running', :'clock'::timestamptz - interval '3 days 30 minutes'
FROM smartetl.pipeline WHERE namespace = 'tap_incr' AND name = 'incr_1';
UPDATE smartetl.run SET status = 'success', ended_at = started_at + interval '9000 seconds', rows_written = 900
WHERE external_id = 'late';
\o
SELECT is((SELECT count(*) FROM (
               (SELECT * FROM pg_temp.kept(:'clock'::timestamptz - interval '60 days', :'clock', -1)
                   AS k(run_id bigint, kind text, value float8, expected float8, expected_low float8,
                        expected_high float8, score float8, baseline text, baseline_runs int)
                EXCEPT ALL SELECT * FROM pg_temp.oracle(:'clock'::timestamptz - interval '60 days', :'clock', -1))
               UNION ALL
               (SELECT * FROM pg_temp.oracle(:'clock'::timestamptz - interval '60 days', :'clock', -1)
                EXCEPT ALL SELECT * FROM pg_temp.kept(:'clock'::timestamptz - interval '60 days', :'clock', -1)
                   AS k(run_id bigint, kind text, value float8, expected float8, expected_low float8,
                        expected_high float8, score float8, baseline text, baseline_runs int))) d),
          0::bigint, 'kept scores equal the window query''s after bulk, late, single, corrected, deleted and finishing runs');
SELECT cmp_ok((SELECT count(*) FROM smartetl.detect_anomalies(:'clock'::timestamptz - interval '60 days', :'clock', -1) a
               JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'tap_incr'),
              '>', 1200::bigint, 'the pieces were scored (both kinds of the three pipelines)');

-- the baseline never includes the run itself: 20 runs of 100..119 s an
-- hour apart, then one of 1000 s.  Its expected value is the median of
-- the 20 before it (109.5 s); with itself included it would be 110 s.
INSERT INTO smartetl.pipeline (namespace, name) VALUES ('tap_anomaly', 'self_check');
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, duration)
SELECT p.pipeline_id, 's' || g, 'success', :'clock'::timestamptz - interval '2 days' + make_interval(hours => g),
       make_interval(secs => CASE WHEN g < 20 THEN 100 + g ELSE 1000 END)
FROM smartetl.pipeline p, generate_series(0, 20) g WHERE p.name = 'self_check';
SELECT is((SELECT round(expected::numeric, 1) || ' s, ' || baseline || ', ' || baseline_runs || ' runs'
           FROM smartetl.detect_anomalies(:'clock'::timestamptz - interval '3 days', :'clock') WHERE pipeline = 'self_check'),
          '109.5 s, recent_runs, 20 runs', 'the expected value comes from the earlier runs only');

-- missing runs and freshness: an hourly pipeline silent for 5 hours, and
-- one that keeps running but fails
INSERT INTO smartetl.pipeline (namespace, name, expected_interval)
VALUES ('tap_anomaly', 'silent', '1 hour'), ('tap_anomaly', 'failing', '1 hour');
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at)
SELECT p.pipeline_id, p.name || g, CASE WHEN p.name = 'failing' AND g < 8 THEN 'failed' ELSE 'success' END::smartetl.run_status,
       :'clock'::timestamptz - make_interval(hours => g) - CASE WHEN p.name = 'silent' THEN interval '4 hours' ELSE interval '0' END,
       :'clock'::timestamptz - make_interval(hours => g) - CASE WHEN p.name = 'silent' THEN interval '4 hours' ELSE interval '0' END + interval '1 minute'
FROM smartetl.pipeline p, generate_series(0, 20) g WHERE p.name IN ('silent', 'failing');
SELECT results_eq(format($$SELECT pipeline, kind, last_at FROM smartetl.overdue_pipelines(%L)
                           WHERE pipeline IN ('silent', 'failing') ORDER BY 1, 2$$, :'clock'),
                  format($$VALUES ('failing', 'freshness', %L::timestamptz - interval '7 hours 59 minutes'),
                                  ('silent', 'freshness', %1$L::timestamptz - interval '3 hours 59 minutes'),
                                  ('silent', 'missing_run', %1$L::timestamptz - interval '4 hours')$$, :'clock'),
                  'overdue: the silent pipeline missed runs, the failing one is stale (since its last success ended)');

-- the view, over now(): a pipeline silent for the last 4 hours of its hourly runs
INSERT INTO smartetl.pipeline (namespace, name, expected_interval) VALUES ('tap_anomaly', 'silent_now', '1 hour');
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at)
SELECT p.pipeline_id, 'n' || g, 'success', now() - make_interval(hours => g + 4), now() - make_interval(hours => g + 4) + interval '1 minute'
FROM smartetl.pipeline p, generate_series(0, 20) g WHERE p.name = 'silent_now';
SELECT ok((SELECT count(*) FROM smartetl.anomalies WHERE pipeline = 'silent_now' AND kind = 'missing_run') = 1,
          'the anomalies view lists the missed run');

SELECT * FROM finish();
ROLLBACK;
