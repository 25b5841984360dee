-- KPIs: rollups kept current through ingest (bulk path) and plain SQL,
-- pipeline_kpi on a history with known answers.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
SELECT * FROM smartetl.ingest('csv', $$job,run_id,start,end,status,rows,error
k1,r1,2024-03-01 00:10:00,2024-03-01 00:11:00,success,100,
k1,r2,2024-03-01 01:10:00,2024-03-01 01:10:30,failed,,Timeout after 30 s
k1,r3,2024-03-01 02:10:00,2024-03-01 02:10:40,failed,,Timeout after 45 s
k1,r4,2024-03-01 03:10:00,2024-03-01 03:11:30,success,300,
k1,r5,2024-03-01 04:10:00,2024-03-01 04:12:00,success,200,
k1,r6,2024-03-01 05:10:00,2024-03-01 05:10:10,failed,,disk full on /dev/sda1
k1,r7,2024-03-01 06:10:00,2024-03-01 06:11:00,success,,
$$, '{"namespace": "kpi"}');
CREATE VIEW k1_hours AS
SELECT h.bucket, h.runs, h.successes, h.failures, h.sla_breaches, smartetl.qsketch_count(h.duration) AS timed, h.rows_written
FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'k1' ORDER BY h.bucket;
CREATE VIEW k1_days AS
SELECT d.bucket, d.runs, d.failures, d.sla_breaches, smartetl.qsketch_count(d.duration) AS timed, d.rows_written
FROM smartetl.kpi_daily d JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'k1' ORDER BY d.bucket;
SELECT * FROM k1_hours;
SELECT * FROM k1_days;

-- MTTR: (03:11:30 - 01:10) and (06:11 - 05:10) average 1:31:15; MTBF: 01:10 to 05:10
SELECT pipeline, runs, failures, round(success_rate::numeric, 4) AS success_rate,
       round(mean_duration_s::numeric, 3) AS mean_s, abs(p50_duration_s / 60 - 1) <= 0.005 AS p50_near_60,
       rows_written, round(throughput_rows_s::numeric, 4) AS rows_per_s, mttr, mtbf, longest_failure_streak,
       last_success, top_error, top_error_count
FROM smartetl.pipeline_kpi('2024-03-01', '2024-03-02') WHERE namespace = 'kpi';
-- the range is rounded out to whole hours: 00:30 .. 02:30 covers 00:00 to 03:00
SELECT runs, failures FROM smartetl.pipeline_kpi('2024-03-01 00:30', '2024-03-01 02:30') WHERE namespace = 'kpi';
-- a range spanning days reads whole days from kpi_daily
SELECT runs FROM smartetl.pipeline_kpi('2024-02-20', '2024-03-10') WHERE namespace = 'kpi';

-- a late run lands in its hour and day
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nk1,r0,2024-03-01 00:40:00,2024-03-01 00:40:50,success\n', '{"namespace": "kpi"}');
-- a corrected run (re-ingest with a new state) updates its bucket
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nk1,r2,2024-03-01 01:10:00,2024-03-01 01:10:30,success\n', '{"namespace": "kpi"}');
SELECT * FROM k1_hours WHERE bucket < '2024-03-01 02:00';
-- plain SQL: a run moved to the next day, a run deleted
UPDATE smartetl.run SET started_at = started_at + interval '1 day', ended_at = ended_at + interval '1 day'
WHERE external_id = 'r5';
DELETE FROM smartetl.run WHERE external_id = 'r7';
SELECT * FROM k1_hours;
SELECT * FROM k1_days;
-- an SLA recounts breaches in every bucket of the pipeline
UPDATE smartetl.pipeline SET sla = '45 seconds' WHERE name = 'k1';
SELECT sum(sla_breaches) AS breaches FROM k1_hours;
SELECT sla_breaches FROM smartetl.pipeline_kpi('2024-03-01', '2024-03-03') WHERE namespace = 'kpi';
-- the rollups equal a recomputation from the runs (runs with no time are not in them)
SELECT count(*) AS mismatched_hours FROM (
    SELECT pipeline_id, smartetl._utc_trunc('hour', run_at) AS bucket, count(*) AS runs,
           count(*) FILTER (WHERE status = 'failed') AS failures
    FROM smartetl.run WHERE run_at IS NOT NULL GROUP BY 1, 2) r
FULL JOIN smartetl.kpi_hourly h USING (pipeline_id, bucket)
WHERE r.runs IS DISTINCT FROM h.runs OR r.failures IS DISTINCT FROM h.failures;
DROP VIEW k1_hours, k1_days;
