-- KPI state kept as runs change: the monthly rollup (kpi_monthly) and the
-- failure streaks (failure_streak), and pipeline_kpi read from them.  After
-- each kind of change (plain INSERT, bulk ingest of new and late runs,
-- corrections by UPDATE and by re-ingest, DELETE, a pipeline deleted) they
-- must equal a recount from smartetl.run written here independently of
-- the extension's code:
--   * months: counts and finished runs per pipeline and UTC month;
--   * streaks: every failed run's next success (the first later success,
--     the earlier-finishing one at equal times) found by a LATERAL probe,
--     failed runs grouped by it;
--   * pipeline_kpi over ranges that cut streaks, cut months, or are wider
--     than the data: runs, failures, success rate, MTTR, MTBF and the
--     longest streak recomputed from the runs of the range as pipeline_kpi
--     did before the state was kept (one probe per failed run).
-- Histories are seeded and dense in failures (streaks of several runs,
-- failures and successes at equal times, runs that are neither).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(28);
SELECT setseed(0.4242);

-- ---- the oracles -------------------------------------------------------------
CREATE FUNCTION pg_temp.month_diff() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT pipeline_id, date_trunc('month', run_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
               count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failures,
               count(*) FILTER (WHERE status = 'success') AS successes,
               count(*) FILTER (WHERE status IN ('success', 'failed') AND duration IS NOT NULL) AS timed,
               sum(rows_written) AS rows_written
        FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
        WHERE p.namespace = 'tap_kpi' AND run_at IS NOT NULL GROUP BY 1, 2) r
    FULL JOIN (SELECT m.* FROM smartetl.kpi_monthly m JOIN smartetl.pipeline p USING (pipeline_id)
               WHERE p.namespace = 'tap_kpi') m USING (pipeline_id, bucket)
    WHERE r.runs IS DISTINCT FROM m.runs OR r.failures IS DISTINCT FROM m.failures
       OR r.successes IS DISTINCT FROM m.successes
       OR r.timed IS DISTINCT FROM coalesce(smartetl.qsketch_count(m.duration), 0)
       OR r.rows_written IS DISTINCT FROM m.rows_written
$$;
-- streaks over all time: (pipeline, began, last failed, failed runs, success run_at, success end)
CREATE FUNCTION pg_temp.oracle_streaks(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (pipeline_id bigint, began timestamptz, last_failed timestamptz, failed_runs bigint,
               recovered_at timestamptz, recovered timestamptz)
LANGUAGE sql AS $$
    SELECT f.pipeline_id, min(f.run_at), max(f.run_at), count(*), ns.run_at, ns.done
    FROM smartetl.run f
    JOIN smartetl.pipeline p ON p.pipeline_id = f.pipeline_id AND p.namespace = 'tap_kpi'
    LEFT JOIN LATERAL (
        SELECT s.run_at, coalesce(s.ended_at, s.run_at) AS done FROM smartetl.run s
        WHERE s.pipeline_id = f.pipeline_id AND s.run_at > f.run_at AND s.run_at < to_ts AND s.status = 'success'
        ORDER BY s.run_at, coalesce(s.ended_at, s.run_at) LIMIT 1) ns ON true
    WHERE f.status = 'failed' AND f.run_at >= from_ts AND f.run_at < to_ts
    GROUP BY f.pipeline_id, ns.run_at, ns.done
$$;
CREATE FUNCTION pg_temp.streak_diff() RETURNS bigint LANGUAGE sql AS $$
    WITH kept AS (SELECT k.* FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
                  WHERE p.namespace = 'tap_kpi'),
         want AS (SELECT * FROM pg_temp.oracle_streaks('-infinity', 'infinity'))
    SELECT (SELECT count(*) FROM (TABLE kept EXCEPT ALL TABLE want) a)
         + (SELECT count(*) FROM (TABLE want EXCEPT ALL TABLE kept) b)
$$;
-- pipeline_kpi's columns that the state feeds, against the runs of the range
CREATE FUNCTION pg_temp.kpi_diff(from_ts timestamptz, to_ts timestamptz) RETURNS bigint LANGUAGE sql AS $$
    WITH h AS (SELECT date_trunc('hour', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS h0,
                      date_trunc('hour', to_ts AT TIME ZONE 'UTC' - interval '1 microsecond') AT TIME ZONE 'UTC'
                          + interval '1 hour' AS h1),
    counts AS (
        SELECT r.pipeline_id, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failures,
               count(*) FILTER (WHERE status = 'success')::float8
                   / nullif(count(*) FILTER (WHERE status IN ('success', 'failed')), 0) AS success_rate,
               sum(r.rows_written) AS rows_written
        FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id), h
        WHERE p.namespace = 'tap_kpi' AND r.run_at >= h.h0 AND r.run_at < h.h1 GROUP BY 1),
    streaks AS (
        SELECT s.pipeline_id, avg(s.recovered - s.began) AS mttr,
               (max(s.began) - min(s.began)) / nullif(count(*) - 1, 0) AS mtbf, max(s.failed_runs) AS longest
        FROM pg_temp.oracle_streaks(from_ts, to_ts) s GROUP BY 1),
    want AS (
        SELECT c.pipeline_id, c.runs, c.failures, round(c.success_rate::numeric, 9) AS success_rate, c.rows_written,
               s.mttr, s.mtbf, s.longest
        FROM counts c LEFT JOIN streaks s USING (pipeline_id)),
    got AS (
        SELECT k.pipeline_id, k.runs, k.failures, round(k.success_rate::numeric, 9), k.rows_written,
               k.mttr, k.mtbf, k.longest_failure_streak
        FROM smartetl.pipeline_kpi(from_ts, to_ts) k WHERE k.namespace = 'tap_kpi')
    SELECT (SELECT count(*) FROM (TABLE got EXCEPT ALL TABLE want) a)
         + (SELECT count(*) FROM (TABLE want EXCEPT ALL TABLE got) b)
$$;
-- every check at once: months, streaks, and pipeline_kpi over seven ranges
CREATE FUNCTION pg_temp.all_diffs() RETURNS bigint[] LANGUAGE sql AS $$
    SELECT ARRAY[pg_temp.month_diff(), pg_temp.streak_diff(),
                 pg_temp.kpi_diff('2020-01-01', '2030-01-01'),
                 pg_temp.kpi_diff('2024-01-10 13:17', '2024-03-02 05:41'),
                 pg_temp.kpi_diff('2024-02-01', '2024-03-01'),
                 pg_temp.kpi_diff('2024-01-03 07:00', '2024-01-03 19:00'),
                 pg_temp.kpi_diff('2024-02-14 23:30', '2024-04-20'),
                 pg_temp.kpi_diff('2023-12-01', '2024-01-20 04:10'),
                 pg_temp.kpi_diff('2024-03-05 10:00', '2024-03-05 10:20')]
$$;

-- ---- histories: 8 pipelines over about 100 days, every 2 hours on average,
-- 35 % failed, some at equal times, some neither success nor failure
INSERT INTO smartetl.pipeline (namespace, name) SELECT 'tap_kpi', 'k' || g FROM generate_series(1, 8) g;
CREATE TEMP TABLE hist AS
SELECT p.pipeline_id, p.name, 'r' || g AS external_id,
       timestamptz '2024-01-01' + (floor(random() * 1200) * interval '2 hours') AS started_at,
       (ARRAY['failed', 'failed', 'failed', 'failed', 'failed', 'failed', 'failed',
              'success', 'success', 'success', 'success', 'success', 'success', 'success',
              'success', 'success', 'success', 'skipped', 'cancelled', 'running'])[1 + floor(random() * 20)::int]::smartetl.run_status AS status,
       (floor(random() * 5) * interval '7 minutes') AS duration,
       floor(random() * 100)::bigint AS rows_written
FROM smartetl.pipeline p, generate_series(1, 700) g WHERE p.namespace = 'tap_kpi';
UPDATE hist SET duration = NULL WHERE status IN ('running') OR random() < 0.05;

-- 1. plain INSERT (statement triggers) of the first half of each history
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration, rows_written)
SELECT pipeline_id, external_id, status, started_at, started_at + duration, duration, rows_written
FROM hist WHERE substr(external_id, 2)::int <= 350;
SELECT ok((SELECT count(*) FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.namespace = 'tap_kpi' AND k.failed_runs > 1) > 20,
          'the histories have streaks of several failed runs');
SELECT ok(EXISTS (SELECT FROM smartetl.run f JOIN smartetl.run s USING (pipeline_id, run_at)
                  JOIN smartetl.pipeline p USING (pipeline_id)
                  WHERE p.namespace = 'tap_kpi' AND f.status = 'failed' AND s.status = 'success'),
          'and failed and successful runs at equal times');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after plain INSERTs: months, streaks and pipeline_kpi equal the recount');

-- 2. bulk ingest of the second half: later runs, and late runs among the old
SELECT is((SELECT inserted FROM smartetl.ingest('csv',
            (SELECT 'job,run_id,start,end,status,rows' || E'\n'
                    || string_agg(format('%s,%s,%s,%s,%s,%s', name, external_id,
                                         to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                         coalesce(to_char((started_at + duration) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ''),
                                         status, rows_written), E'\n')
             FROM hist WHERE substr(external_id, 2)::int > 350 AND status <> 'running'),
            '{"namespace": "tap_kpi"}')), (SELECT count(*) FROM hist WHERE substr(external_id, 2)::int > 350 AND status <> 'running'),
          'bulk ingest stored the second half');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after bulk ingest of new and late runs: equal to the recount');

-- 3. corrections: failures turned successes and back, runs moved in time
UPDATE smartetl.run r SET status = CASE WHEN r.status = 'failed' THEN 'success' ELSE 'failed' END::smartetl.run_status
FROM smartetl.pipeline p
WHERE p.pipeline_id = r.pipeline_id AND p.namespace = 'tap_kpi' AND r.status IN ('failed', 'success') AND r.run_id % 9 = 0;
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after UPDATEs of statuses: equal to the recount');
UPDATE smartetl.run r SET started_at = started_at + interval '3 days 1 hour', ended_at = ended_at + interval '3 days 1 hour'
FROM smartetl.pipeline p
WHERE p.pipeline_id = r.pipeline_id AND p.namespace = 'tap_kpi' AND r.run_id % 13 = 0;
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after runs moved by days: equal to the recount');
-- one run of one pipeline: the smallest change
UPDATE smartetl.run SET status = 'failed'
WHERE run_id = (SELECT min(r.run_id) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
                WHERE p.name = 'k3' AND p.namespace = 'tap_kpi' AND r.status = 'success'
                  AND r.run_at > '2024-02-10');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after one success turned failed: equal to the recount');

-- 4. corrections by re-ingest (a new status for known runs)
SELECT is((SELECT updated FROM smartetl.ingest('csv',
            (SELECT 'job,run_id,start,end,status' || E'\n'
                    || string_agg(format('%s,%s,%s,%s,%s', name, external_id,
                                         to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                         coalesce(to_char((started_at + duration) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ''),
                                         CASE status WHEN 'failed' THEN 'success' ELSE 'failed' END), E'\n')
             FROM hist WHERE substr(external_id, 2)::int > 350 AND status IN ('success', 'failed')
               AND substr(external_id, 2)::int % 11 = 0),
            '{"namespace": "tap_kpi"}')) > 0, true, 'a re-ingest corrected the status of known runs');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after corrections by re-ingest: equal to the recount');

-- 5. DELETE: scattered runs, then a whole month of one pipeline
DELETE FROM smartetl.run r USING smartetl.pipeline p
WHERE p.pipeline_id = r.pipeline_id AND p.namespace = 'tap_kpi' AND r.run_id % 7 = 3;
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after scattered DELETEs: equal to the recount');
DELETE FROM smartetl.run r USING smartetl.pipeline p
WHERE p.pipeline_id = r.pipeline_id AND p.name = 'k2' AND p.namespace = 'tap_kpi'
  AND r.run_at >= '2024-02-01' AND r.run_at < '2024-03-01';
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after a month of one pipeline deleted: equal to the recount');
SELECT is((SELECT count(*) FROM smartetl.kpi_monthly m JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k2' AND p.namespace = 'tap_kpi' AND m.bucket = '2024-02-01 00:00+00'), 0::bigint,
          'the emptied month is gone from kpi_monthly');
-- every failure of a pipeline deleted: no streak left
DELETE FROM smartetl.run r USING smartetl.pipeline p
WHERE p.pipeline_id = r.pipeline_id AND p.name = 'k4' AND p.namespace = 'tap_kpi' AND r.status = 'failed';
SELECT is((SELECT count(*) FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k4' AND p.namespace = 'tap_kpi'), 0::bigint, 'a pipeline without failures has no streaks');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after every failure of a pipeline deleted: equal to the recount');

-- 6. runs appended one at a time after the last (the common path): a lasting
-- streak grows, then a success ends it
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration)
SELECT pipeline_id, 'tail1', 'failed', '2024-05-01 00:00+00', '2024-05-01 00:05+00', interval '5 minutes'
FROM smartetl.pipeline WHERE name = 'k5' AND namespace = 'tap_kpi';
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration)
SELECT pipeline_id, 'tail2', 'failed', '2024-05-01 01:00+00', '2024-05-01 01:05+00', interval '5 minutes'
FROM smartetl.pipeline WHERE name = 'k5' AND namespace = 'tap_kpi';
SELECT ok((SELECT k.failed_runs >= 2 AND k.recovered IS NULL AND k.last_failed = '2024-05-01 01:00+00'
           FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k5' AND p.namespace = 'tap_kpi' ORDER BY k.began DESC LIMIT 1),
          'a lasting streak grows with each failed run');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'with a lasting streak: equal to the recount');
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration)
SELECT pipeline_id, 'tail3', 'success', '2024-05-01 02:00+00', '2024-05-01 02:10+00', interval '10 minutes'
FROM smartetl.pipeline WHERE name = 'k5' AND namespace = 'tap_kpi';
SELECT is((SELECT k.recovered FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k5' AND p.namespace = 'tap_kpi' ORDER BY k.began DESC LIMIT 1),
          '2024-05-01 02:10+00'::timestamptz, 'a success ends it, recovered when the success finished');
-- a success and a failure at one time, then a second success at that time
-- that finished earlier: it ends the streak before
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration)
SELECT pipeline_id, x.e, x.s::smartetl.run_status, x.t::timestamptz, x.t::timestamptz + x.d::interval, x.d::interval
FROM smartetl.pipeline,
     (VALUES ('tail4', 'failed', '2024-05-02 00:00+00', '1 minute'), ('tail5', 'success', '2024-05-02 01:00+00', '30 minutes'),
             ('tail6', 'failed', '2024-05-02 01:00+00', '2 minutes')) x(e, s, t, d)
WHERE name = 'k5' AND namespace = 'tap_kpi';
INSERT INTO smartetl.run (pipeline_id, external_id, status, started_at, ended_at, duration)
SELECT pipeline_id, 'tail7', 'success', '2024-05-02 01:00+00', '2024-05-02 01:03+00', interval '3 minutes'
FROM smartetl.pipeline WHERE name = 'k5' AND namespace = 'tap_kpi';
SELECT is((SELECT array_agg(coalesce(k.recovered::text, 'lasting') ORDER BY k.began)
           FROM smartetl.failure_streak k JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k5' AND p.namespace = 'tap_kpi' AND k.began >= '2024-05-02'),
          ARRAY['2024-05-02 01:03:00+00', 'lasting'], 'at equal times the earlier-finishing success ends the streak before');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after equal-time runs: equal to the recount');
-- the range's end cuts the lasting streak and a recovered one
SELECT is(pg_temp.kpi_diff('2024-04-30', '2024-05-02 00:30'), 0::bigint, 'a range ending inside a streak: equal to the recount');
SELECT is(pg_temp.kpi_diff('2024-05-01 00:30', '2024-05-03'), 0::bigint, 'a range starting inside a streak: equal to the recount');

-- 7. the stored streaks redone from scratch equal the kept ones
CREATE TEMP TABLE kept AS SELECT * FROM smartetl.failure_streak;
SELECT smartetl._streak_refresh(array_agg(pipeline_id), array_agg('-infinity'::timestamptz)) FROM smartetl.pipeline;
SELECT is((SELECT count(*) FROM ((TABLE kept EXCEPT ALL SELECT * FROM smartetl.failure_streak)
                                 UNION ALL (SELECT * FROM smartetl.failure_streak EXCEPT ALL TABLE kept)) d),
          0::bigint, 'redoing every streak from the first run changes nothing');

-- 8. SLA change (rollups recounted) and pipeline deleted (its state goes)
UPDATE smartetl.pipeline SET sla = '10 minutes' WHERE name = 'k6' AND namespace = 'tap_kpi';
SELECT is((SELECT sum(m.sla_breaches) FROM smartetl.kpi_monthly m JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k6' AND p.namespace = 'tap_kpi'),
          (SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name = 'k6' AND p.namespace = 'tap_kpi' AND r.duration > interval '10 minutes')::numeric,
          'an SLA recounts the breaches of every month');
DELETE FROM smartetl.pipeline WHERE name = 'k7' AND namespace = 'tap_kpi';
SELECT is((SELECT count(*) FROM smartetl.kpi_monthly m WHERE m.pipeline_id NOT IN (SELECT pipeline_id FROM smartetl.pipeline))
          + (SELECT count(*) FROM smartetl.failure_streak k WHERE k.pipeline_id NOT IN (SELECT pipeline_id FROM smartetl.pipeline)),
          0::bigint, 'a deleted pipeline leaves no months or streaks');
SELECT is(pg_temp.all_diffs(), '{0,0,0,0,0,0,0,0,0}', 'after the SLA change and the pipeline deleted: equal to the recount');
-- a range wider than the data reads whole months only (and the same totals)
SELECT is((SELECT count(*) FROM smartetl._kpi_spans('2000-01-01', '2100-01-01') b
           WHERE b.bucket <> date_trunc('month', b.bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
          0::bigint, 'a range wider than the data reads kpi_monthly only');
SELECT is((SELECT sum(runs) FROM smartetl._kpi_spans('2024-01-10 13:17', '2024-03-02 05:41')),
          (SELECT sum(runs) FROM smartetl._kpi_buckets('2024-01-10 13:17', '2024-03-02 05:41')),
          '_kpi_spans and _kpi_buckets cover the same runs');

SELECT * FROM finish();
ROLLBACK;
