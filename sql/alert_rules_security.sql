-- sql alert rules are written by admins but evaluated by whoever calls
-- evaluate_alerts(), usually the worker, a superuser.  Each attack below is
-- tried the way a non-superuser admin would: refused when written, or, when
-- only running it can tell, recorded on the rule without effect.
SET timezone = 'UTC';
SET smartetl.rule_timeout = '2s';  -- legitimate rules finish well within it, even under valgrind
-- left over by an interrupted run, if any
DROP ROLE IF EXISTS regress_rule_admin;
CREATE ROLE regress_rule_admin LOGIN IN ROLE smartetl_admin;
CREATE SCHEMA regress_rule_own AUTHORIZATION regress_rule_admin;
-- a stable function a superuser installed that runs SQL text, as a
-- third-party extension might: a way past the write-time check, to show
-- that running the rule holds on its own
CREATE SCHEMA regress_rule_ext;
GRANT USAGE ON SCHEMA regress_rule_ext TO PUBLIC;
CREATE FUNCTION regress_rule_ext.run(q text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r text;
BEGIN
    EXECUTE q INTO r;
    RETURN r;
END $$;
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nsec_a,1,2024-05-01 10:00:00,2024-05-01 10:02:00,success\nsec_b,1,2024-05-01 10:00:00,2024-05-01 10:00:30,success\n', '{"namespace": "sec"}');
INSERT INTO smartetl.channel (name, kind, target) VALUES ('sec-bus', 'notify', 'smartetl_sec');

SET SESSION AUTHORIZATION regress_rule_admin;
SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
-- the time limit is the superuser's to set
SET smartetl.rule_timeout = '1h';

-- refused when written
INSERT INTO smartetl.alert_rule (name, kind, channels, query) VALUES ('sec-esc', 'sql', '{}', $q$SELECT 'p'::text, (query_to_xml(CASE WHEN set_config('role','postgres',true) IS NOT NULL THEN 'select current_user as u, (select rolsuper from pg_roles where rolname=current_user) as su' END, false, false, ''))::text::float8$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-esc2', 'sql', $q$SELECT 'p', length(set_config('role', 'postgres', true))$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-esc3', 'sql', 'SET ROLE postgres');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-lock1', 'sql', 'SELECT p.name, 1 FROM smartetl.pipeline p FOR/**/UPDATE');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-lock2', 'sql', 'SELECT s.name, 1 FROM (SELECT name FROM smartetl.pipeline FOR KEY SHARE) s');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-lock3', 'sql', $q$SELECT 'sec_a', 1 WHERE pg_advisory_lock(1397572948, 0) IS NOT NULL$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-sleep', 'sql', $q$SELECT 'sec_a', 1 FROM pg_sleep(3600)$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-write1', 'sql', $q$SELECT smartetl.log_template('x'), 1::float8$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-write2', 'sql', 'WITH d AS (DELETE FROM smartetl.run RETURNING 1) SELECT ''sec_a'', 1 FROM d');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-write3', 'sql', 'SELECT ''sec_a'' AS p, 1 AS v INTO regress_rule_table');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-write4', 'sql', $q$SELECT 'sec_a', nextval('smartetl.template_revision')$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-lo1', 'sql', $q$SELECT 'sec_a', lo_from_bytea(0, 'x')::bigint$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-lo2', 'sql', $q$SELECT 'sec_a', lo_export(lo_from_bytea(0, 'x'), '/tmp/smartetl_regress_rule_file')::float8$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-sqltext', 'sql', $q$SELECT 'sec_a', length(table_to_xml('smartetl.channel', false, false, '')::text)$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-two', 'sql', 'SELECT ''sec_a'', 1; SELECT ''sec_b'', 2');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-cols', 'sql', 'SELECT name, 1, 2 FROM smartetl.pipeline');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-cols2', 'sql', 'SELECT name, true FROM smartetl.pipeline');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-nothing', 'sql', NULL);
-- what smartetl_reader may not read or run
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-secrets', 'sql', 'SELECT name, length(secret) FROM smartetl.channel');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-train', 'sql', $q$SELECT 'sec_a', length(smartetl._risk_model_name('1 day'))$q$);
-- code the admin owns could be changed to do anything: refused, whatever it declares
CREATE FUNCTION regress_rule_own.one() RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT 1::float8';
CREATE VIEW regress_rule_own.locker AS SELECT 'sec_a'::text AS pipeline, pg_advisory_lock(1397572948, 1) IS NOT NULL AS held;
GRANT USAGE ON SCHEMA regress_rule_own TO smartetl_reader;
GRANT SELECT ON regress_rule_own.locker TO smartetl_reader;
CREATE DOMAIN regress_rule_own.locked AS text CHECK (pg_advisory_lock(1397572948, 2) IS NOT NULL);
CREATE TYPE regress_rule_own.pair AS (a regress_rule_own.locked);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-own1', 'sql', $q$SELECT 'sec_a', regress_rule_own.one()$q$);
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-own2', 'sql', 'SELECT pipeline, 1 FROM regress_rule_own.locker');
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-own3', 'sql', $q$SELECT 'x'::regress_rule_own.locked, 1$q$);
-- a composite literal runs the domain's check while the query is parsed: the lock is let go at once
INSERT INTO smartetl.alert_rule (name, kind, query) VALUES ('sec-own4', 'sql', $q$SELECT 'sec_a', 1 WHERE '(x)'::regress_rule_own.pair IS NOT NULL$q$);
SELECT count(*) AS advisory_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- accepted: legitimate rules, and queries only running can judge
INSERT INTO smartetl.alert_rule (name, kind, channels, selector, query, threshold, group_wait) VALUES
  ('sec-slow-loads', 'sql', '{sec-bus}', '{"namespace": "sec"}', 'SELECT p.name, max(r.duration_s) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) GROUP BY 1', 59, '0'),
  ('sec-comment', 'sql', '{sec-bus}', '{"namespace": "sec"}', 'SELECT ''sec_b'', 1 -- a trailing comment', NULL, '0'),
  ('sec-twice', 'sql', '{sec-bus}', '{"namespace": "sec"}', 'SELECT name, 1 FROM pipeline UNION ALL SELECT name, 2 FROM pipeline', NULL, '0'),
  ('sec-whoami', 'sql', '{}', '{}', $q$SELECT 'sec_a', (current_user || ' superuser=' || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))::float8$q$, NULL, '0'),
  ('sec-loop', 'sql', '{}', '{}', 'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT ''sec_a'', max(n) FROM t', NULL, '0'),
  ('sec-ext-role', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT set_config(''role'', ''postgres'', true)'))$q$, NULL, '0'),
  ('sec-ext-auth', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT set_config(''session_authorization'', ''postgres'', true)'))$q$, NULL, '0'),
  ('sec-ext-lock', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT pg_advisory_lock(1397572948, 3)::text'))$q$, NULL, '0'),
  ('sec-ext-lo', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT lo_export(lo_from_bytea(0, ''x''), ''/tmp/smartetl_regress_rule_file'')::text'))$q$, NULL, '0'),
  ('sec-ext-lo2', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT lo_from_bytea(0, ''x'')::text'))$q$, NULL, '0'),
  -- as smartetl_reader, log_template only looks up: it writes nothing, so this one fires harmlessly
  ('sec-ext-write', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT smartetl.log_template(''x'')'))$q$, NULL, '0'),
  ('sec-ext-sleep', 'sql', '{}', '{}', $q$SELECT 'sec_a', length(regress_rule_ext.run('SELECT pg_sleep(3600)'))$q$, NULL, '0'),
  ('sec-ext-whoami', 'sql', '{}', '{}', $q$SELECT 'sec_a', regress_rule_ext.run('SELECT current_user || '' superuser='' || rolsuper FROM pg_roles WHERE rolname = current_user')::float8$q$, NULL, '0');

CREATE VIEW regress_rule_own.outcome AS
SELECT s.rule_name, s.last_error, s.retry_at IS NOT NULL AS waits,
       (SELECT string_agg(a.labels->>'pipeline' || '=' || a.value, ', ' ORDER BY a.labels->>'pipeline')
        FROM smartetl.alert a WHERE a.rule_name = s.rule_name AND a.state = 'firing') AS firing
FROM smartetl.alert_rule_state s WHERE s.rule_name LIKE 'sec-%' ORDER BY 1;

-- evaluated by the admin: the broken rules are recorded, the others fire in
-- the same pass, the sleeps are cut at 2 s
SELECT clock_timestamp() AS t0 \gset
SELECT smartetl.evaluate_alerts() > 0 AS queued;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '60 seconds' AS not_held_up;  -- the sleeps are of an hour
SELECT * FROM regress_rule_own.outcome;
SELECT count(*) AS advisory_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- sec-ext-lo2 made a large object, inside its subtransaction: rolled back with it
SELECT count(*) AS large_objects FROM pg_largeobject_metadata;
SELECT count(*) AS notifications FROM smartetl.delivery WHERE channel = 'sec-bus';
-- the rules that ran out of time wait; the others are evaluated again
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT rule_name FROM smartetl.alert_rule_state WHERE retry_at > now() AND rule_name LIKE 'sec-%' ORDER BY 1;
-- changing the query lets it run at once
UPDATE smartetl.alert_rule SET query = 'SELECT ''sec_a'', 5' WHERE name = 'sec-loop';
SELECT retry_at IS NULL AS runs_again FROM smartetl.alert_rule_state WHERE rule_name = 'sec-loop';
UPDATE smartetl.alert_rule SET query = 'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT ''sec_a'', max(n) FROM t' WHERE name = 'sec-loop';
RESET SESSION AUTHORIZATION;

-- evaluated by a superuser (as the worker does): the same
UPDATE smartetl.alert_rule_state SET retry_at = NULL WHERE rule_name LIKE 'sec-%';
SELECT clock_timestamp() AS t0 \gset
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '60 seconds' AS not_held_up;  -- the sleeps are of an hour
SELECT * FROM regress_rule_own.outcome;
SELECT count(*) AS advisory_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT count(*) AS large_objects FROM pg_largeobject_metadata;
SELECT pg_stat_file('/tmp/smartetl_regress_rule_file', true) IS NULL AS no_file;
SELECT current_user, count(*) AS temp_tables FROM pg_class WHERE relpersistence = 't';
-- ingest takes the advisory locks the attacks aimed at: it is not blocked
SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,status\nsec_c,1,success\n', '{"namespace": "sec"}');

-- a cancel that is not the rule's own (here the statement's timeout) is not swallowed
UPDATE smartetl.alert_rule SET enabled = false WHERE name LIKE 'sec-%' AND name <> 'sec-loop';
DELETE FROM smartetl.alert_rule_state WHERE rule_name LIKE 'sec-%';
SET smartetl.rule_timeout = '10s';
SET statement_timeout = '300ms';
\set VERBOSITY terse
SELECT smartetl.evaluate_alerts();
\set VERBOSITY default
RESET statement_timeout;
RESET smartetl.rule_timeout;
SELECT count(*) AS recorded FROM smartetl.alert_rule_state WHERE rule_name = 'sec-loop';

DELETE FROM smartetl.alert_rule WHERE name LIKE 'sec-%';
SELECT smartetl.evaluate_alerts() >= 0 AS evaluated;
DROP SCHEMA regress_rule_own CASCADE;
DROP SCHEMA regress_rule_ext CASCADE;
DROP ROLE regress_rule_admin;
DELETE FROM smartetl.channel WHERE name = 'sec-bus';
