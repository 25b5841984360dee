-- Concepts defined once, checked where the one definition meets its uses:
-- the advisory locks (src/locks.h) as SQL and C take them, the KPI rollup
-- columns (_kpi_rollup_columns) against the tables and the two ways the
-- rollups are filled, the staleness factor.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';

-- ---- advisory locks ---------------------------------------------------------
SELECT purpose, class, first_sub, items FROM smartetl._lock_keys() ORDER BY purpose;
CREATE FUNCTION pg_temp.held() RETURNS TABLE (purpose text, item bigint)
LANGUAGE sql AS $$
    SELECT k.purpose, CASE WHEN k.items IS NOT NULL THEN l.objid::bigint - k.first_sub END
    FROM pg_locks l JOIN smartetl._lock_keys() k ON l.classid = k.class::oid
         AND (k.items IS NULL OR l.objid::bigint - k.first_sub BETWEEN 0 AND k.items - 1)
    WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.pid = pg_backend_pid()
    ORDER BY 1, 2
$$;
-- SQL takes them by purpose, to the end of the transaction
BEGIN;
SELECT smartetl._xact_lock('pg_cron_sync'), smartetl._try_xact_lock('template_compact'),
       smartetl._xact_lock('alert_evaluation'), smartetl._lock_pipelines('{5, 69, 3, NULL, 5}'),
       smartetl._xact_lock('log_partition', hashtext('smartetl.log_event_202401'));
SELECT * FROM pg_temp.held();
COMMIT;
SELECT count(*) AS after_commit FROM pg_temp.held();
SELECT smartetl._xact_lock('no_such_lock');
SELECT smartetl._xact_lock('pipeline', 64);
-- C takes the same ones: ingest its pipeline's lock (src/ingest/store.c)
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status,start\ndef_lock,1,success,2024-03-01 10:00\n', '{"namespace": "definitions"}');
BEGIN;
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,status,start\ndef_lock,2,success,2024-03-01 11:00\n', '{"namespace": "definitions"}');
SELECT array_agg(h.item) = ARRAY[(SELECT pipeline_id % 64 FROM smartetl.pipeline WHERE name = 'def_lock')] AS ingest_took_its_pipeline_lock
FROM pg_temp.held() h WHERE h.purpose = 'pipeline';
ROLLBACK;

-- ---- KPI rollup columns -----------------------------------------------------
SELECT name, kind, value, condition FROM smartetl._kpi_rollup_columns();
-- the list is the rollup tables' columns after (pipeline_id, bucket), in order
SELECT t.relname, array_agg(a.attname::text ORDER BY a.attnum) = (SELECT array_agg(name) FROM smartetl._kpi_rollup_columns()) AS columns_match
FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid
WHERE t.oid IN ('smartetl.kpi_hourly'::regclass, 'smartetl.kpi_daily'::regclass, 'smartetl.kpi_monthly'::regclass) AND a.attnum > 2 AND NOT a.attisdropped
GROUP BY t.relname ORDER BY 1;
-- bulk ingest adds new runs to the rollups (add_*); a recomputation from
-- smartetl.run (refresh_*) gives the same rows
UPDATE smartetl.pipeline SET sla = '50 seconds' WHERE name = 'def_lock';
SELECT * FROM smartetl.ingest('csv', $$job,run_id,attempt,status,start,end,rows_read,rows,bytes
def_lock,3,1,success,2024-03-01 10:20:00,2024-03-01 10:21:00,10,20,
def_lock,4,2,failed,2024-03-01 10:40:00,2024-03-01 10:40:30,,,
def_lock,5,1,running,2024-03-01 12:00:00,,,,
def_lock,6,1,skipped,2024-03-02 03:00:00,2024-03-02 03:00:01,,,
def_lock,7,1,cancelled,2024-03-02 03:30:00,2024-03-02 03:35:00,5,,7
def_roll,1,3,failed,2024-03-02 03:10:00,2024-03-02 03:12:00,1,1,1
$$, '{"namespace": "definitions"}');
CREATE TEMP VIEW def_rollups AS
SELECT 'hour' AS unit, p.name, h.bucket, h.runs, h.successes, h.failures, h.skipped, h.cancelled, h.running,
       h.retries, h.sla_breaches, smartetl.qsketch_count(h.duration) AS timed,
       round(smartetl.qsketch_mean(h.duration)::numeric, 6) AS mean_s, h.rows_read, h.rows_written, h.bytes
FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'definitions'
UNION ALL
SELECT 'day', p.name, d.bucket, d.runs, d.successes, d.failures, d.skipped, d.cancelled, d.running,
       d.retries, d.sla_breaches, smartetl.qsketch_count(d.duration),
       round(smartetl.qsketch_mean(d.duration)::numeric, 6), d.rows_read, d.rows_written, d.bytes
FROM smartetl.kpi_daily d JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'definitions'
UNION ALL
SELECT 'month', p.name, m.bucket, m.runs, m.successes, m.failures, m.skipped, m.cancelled, m.running,
       m.retries, m.sla_breaches, smartetl.qsketch_count(m.duration),
       round(smartetl.qsketch_mean(m.duration)::numeric, 6), m.rows_read, m.rows_written, m.bytes
FROM smartetl.kpi_monthly m JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'definitions';
CREATE TEMP TABLE def_bulk AS SELECT * FROM def_rollups;
SELECT * FROM def_bulk ORDER BY unit DESC, name, bucket;
SELECT smartetl._kpi_refresh(array_agg(r.pipeline_id), array_agg(r.run_at))
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'definitions';
SELECT count(*) AS differing_rows FROM ((TABLE def_bulk EXCEPT TABLE def_rollups) UNION ALL (TABLE def_rollups EXCEPT TABLE def_bulk)) d;
-- the SQL the refresh and the bulk path run is written from the list
SELECT step, strpos(smartetl._kpi_rollup_sql(step, 'batch'), 'sla_breaches') > 0 AS names_sla_breaches
FROM unnest('{refresh_hourly,refresh_daily,refresh_monthly,add_hourly,add_daily,add_monthly}'::text[]) step;
SELECT smartetl._kpi_rollup_sql('bogus');

-- ---- the staleness factor -----------------------------------------------------
SELECT smartetl._stale_factor();
-- every view and function that decides staleness reads it
SELECT p.oid::regprocedure AS reads_stale_factor FROM pg_proc p
WHERE p.pronamespace = 'smartetl'::regnamespace AND p.prosrc LIKE '%smartetl._stale_factor()%' ORDER BY 1;
SELECT c.relname AS view_reads_stale_factor FROM pg_class c
WHERE c.relnamespace = 'smartetl'::regnamespace AND c.relkind = 'v'
  AND pg_get_viewdef(c.oid) LIKE '%_stale_factor()%' ORDER BY 1;
DELETE FROM smartetl.pipeline WHERE namespace = 'definitions';
