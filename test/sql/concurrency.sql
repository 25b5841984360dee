-- Concurrent ingestion of the same data from several sessions (through
-- dblink): no error, no duplicate pipeline, run or log partition.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT plan(5);
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
                                            '2031-07-04 10:00:00 INFO concurrent session ' || i || ' opened from 10.1.2.' || i, i))
FROM generate_series(1, 4) i, payload;
CREATE TEMP TABLE outcome AS
SELECT i, r.ok FROM generate_series(1, 4) i,
       LATERAL dblink_get_result('s' || i, false) AS r(ok text, ev text);
SELECT is(count(*), 4::bigint, 'four concurrent ingests of the same 5,000 runs all succeed') FROM outcome;
SELECT is((SELECT count(*) FROM smartetl.pipeline WHERE name LIKE 'conc\_%'), 7::bigint,
          'each pipeline exists once');
SELECT is((SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
           WHERE p.name LIKE 'conc\_%'), 5000::bigint, 'each run exists once');
SELECT is((SELECT count(*) FROM smartetl.log_event WHERE source LIKE 'conc-%'), 4::bigint,
          'concurrent sessions share the new log partition');
SELECT is((SELECT count(*) FROM smartetl.template WHERE template LIKE 'concurrent session%'), 1::bigint,
          'the four sessions share one template for their messages');
SELECT dblink_disconnect('s' || i) FROM generate_series(1, 4) i;
SELECT * FROM finish();
-- not in a transaction (the sessions must see each other's commits): clean up
DELETE FROM smartetl.pipeline WHERE name LIKE 'conc\_%';
DELETE FROM smartetl.log_event WHERE source LIKE 'conc-%';
