-- Concurrent ingestion of the same data from several sessions (through
-- dblink): no error, no duplicate pipeline, run or log partition.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT plan(14);
SELECT format('dbname=%s port=%s host=%s user=%s', current_database(), current_setting('port'),
              current_setting('unix_socket_directories'), current_user) AS conn \gset
CREATE TEMP TABLE payload AS
SELECT 'job,run_id,start,status' || E'\n' ||
       string_agg(format('conc_%s,%s,2024-03-%s 00:00:00,%s', g % 7, g, 1 + g % 28,
                         CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'ok' END), E'\n') AS csv
FROM generate_series(1, 5000) g;
SELECT dblink_connect('s' || i, :'conn') FROM generate_series(1, 4) i;
SELECT dblink_send_query('s' || i, format($$SELECT smartetl.ingest('csv', %L)$$, csv)
                                  || format($$, smartetl.ingest('logline', %L, '{"log_format": "<Date> <Time> <Level> <Content>", "source": "conc-%s"}')$$,
                                            '1999-07-04 10:00:00 INFO concurrent session ' || i || ' opened from 10.1.2.' || i, i))
FROM generate_series(1, 4) i, payload;
CREATE TEMP TABLE outcome AS
SELECT i, r.ok FROM generate_series(1, 4) i,
       LATERAL dblink_get_result('s' || i, false) AS r(ok text, ev text);
SELECT is(count(*), 4::bigint, 'four concurrent ingests of the same 5,000 runs all succeed') FROM outcome;
-- an async query's results end with an empty one: read it so the connection is free again
SELECT count(*) FROM generate_series(1, 4) i, LATERAL dblink_get_result('s' || i) AS r(ok text, ev text);
SELECT is((SELECT count(*) FROM smartetl.pipeline WHERE name LIKE 'conc\_%'), 7::bigint,
          'each pipeline exists once');
SELECT is((SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name LIKE 'conc\_%'), 5000::bigint, 'each run exists once');
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE source LIKE 'conc-%'), 4::bigint,
          'concurrent sessions share the new log partition');
-- sessions learning the same new message at once may each store it; the
-- texts are one, and a new session answers them all with one id
SELECT is((SELECT count(DISTINCT template) FROM smartetl.template WHERE template LIKE 'concurrent session%'), 1::bigint,
          'the four sessions learn one template text for their messages');
SELECT dblink_connect('fresh', :'conn');
SELECT is((SELECT count(DISTINCT id) FROM generate_series(1, 4) i,
                  LATERAL dblink('fresh', format('SELECT smartetl.log_template_id(%L)',
                                                 'concurrent session ' || i || ' opened from 10.1.2.' || i)) AS t(id bigint)),
          1::bigint, 'a new session gives all four messages the same template id');
SELECT dblink_disconnect('fresh');

-- learning never waits for another session's open transaction: s1 learns
-- a new template and stays open; s2 ingests a failed run with a new error
-- and learns the same message, within a statement timeout
SELECT dblink_exec('s1', 'BEGIN');
SELECT * FROM dblink('s1', $$SELECT smartetl.log_template_id('open transaction learned this 1')$$) AS t(id bigint);
SELECT dblink_exec('s2', $$SET statement_timeout = '5s'$$);
SELECT lives_ok(format('SELECT * FROM dblink(%L, %L) AS t(n text)', 's2',
                       $q$SELECT (smartetl.ingest('csv', E'job,run_id,status,error\nopenconc,1,failed,Never blocked failure 77\n')).inserted$q$),
                'a writer ingests a failed run while another session that learned stays open');
SELECT lives_ok(format('SELECT * FROM dblink(%L, %L) AS t(n bigint)', 's2',
                       $q$SELECT smartetl.log_template_id('open transaction learned this 2')$q$),
                'and learns the same new message the open session learned');
SELECT dblink_exec('s1', 'COMMIT');

-- different runs of the same pipelines and hours from four sessions at
-- once: the KPI rollups count every run (each refresh sees the others)
SELECT dblink_send_query('s' || i, format($$SELECT (smartetl.ingest('csv', %L)).inserted$$,
       'job,run_id,start,status' || E'\n' ||
       string_agg(format('conc_%s,s%s_%s,2024-03-%s 00:%s:00,ok', g % 7, i, g, lpad((1 + g % 28)::text, 2, '0'),
                         lpad((g % 60)::text, 2, '0')), E'\n')))
FROM generate_series(1, 4) i, generate_series(1, 1000) g GROUP BY i;
SELECT is((SELECT sum(n::bigint) FROM generate_series(1, 4) i, LATERAL dblink_get_result('s' || i) AS r(n text)),
          4000::numeric, 'four sessions insert 1,000 new runs each into the same pipelines and hours');
SELECT is((SELECT sum(runs) FROM smartetl.kpi_daily d JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name LIKE 'conc\_%'), 9000::numeric, 'the daily rollups count all 9,000 runs');
SELECT is((SELECT count(*) FROM (
              SELECT pipeline_id, smartetl._utc_trunc('hour', run_at) AS bucket, count(*) AS runs
              FROM smartetl.run JOIN smartetl.pipeline p USING (pipeline_id)
              WHERE p.name LIKE 'conc\_%' GROUP BY 1, 2) r
           FULL JOIN (SELECT h.* FROM smartetl.kpi_hourly h JOIN smartetl.pipeline p USING (pipeline_id)
                      WHERE p.name LIKE 'conc\_%') h USING (pipeline_id, bucket)
           WHERE r.runs IS DISTINCT FROM h.runs), 0::bigint,
          'every hourly rollup equals a recount of its runs');

SELECT count(*) FROM generate_series(1, 4) i, LATERAL dblink_get_result('s' || i) AS r(n text);

-- two sessions ingest the same new log lines at once: the second one's
-- plain insert (a new file for it) waits for the first one's rows, meets
-- them at its commit, and falls back to ON CONFLICT: no error, no line twice
SELECT * FROM dblink('s4', 'SELECT pg_backend_pid()') AS t(pid int) \gset s4_
SELECT set_config('conc.s4_pid', :'s4_pid', false) IS NOT NULL AS pid_set;
SELECT dblink_exec('s3', 'BEGIN');
SELECT * FROM dblink('s3', $q$SELECT (smartetl.ingest('logline', E'1999-07-05 10:00:00 INFO same file line 1 here\n1999-07-05 10:00:01 INFO same file line 2 here\n', '{"log_format": "<Date> <Time> <Level> <Content>", "source": "conc-same"}')).inserted$q$) AS t(n bigint);
SELECT dblink_send_query('s4', $q$SELECT (r).inserted, (r).unchanged FROM (SELECT smartetl.ingest('logline', E'1999-07-05 10:00:00 INFO same file line 1 here\n1999-07-05 10:00:01 INFO same file line 2 here\n', '{"log_format": "<Date> <Time> <Level> <Content>", "source": "conc-same"}') AS r) s$q$);
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity WHERE pid = current_setting('conc.s4_pid')::int AND wait_event_type = 'Lock');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT ok(EXISTS (SELECT FROM pg_stat_activity WHERE pid = :s4_pid AND wait_event_type = 'Lock'),
          'the second session waits for the first one''s uncommitted lines');
SELECT dblink_exec('s3', 'COMMIT');
SELECT is((SELECT inserted || '/' || unchanged FROM dblink_get_result('s4') AS t(inserted bigint, unchanged bigint)), '0/2',
          'then stores none of them again: 0 inserted, 2 unchanged');
SELECT count(*) FROM dblink_get_result('s4') AS t(inserted bigint, unchanged bigint);
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE source = 'conc-same'), 2::bigint,
          'each line of the file is stored once');
SELECT dblink_disconnect('s' || i) FROM generate_series(1, 4) i;
SELECT * FROM finish();
-- not in a transaction (the sessions must see each other's commits): clean up
DELETE FROM smartetl.pipeline WHERE name LIKE 'conc\_%' OR name = 'openconc';
DELETE FROM smartetl.log_event WHERE source LIKE 'conc-%';
