-- Template mining on the adversarial synthetic logs of test/data/template_synth
-- (one file per failure class seen on Loghub systems the miner was not
-- developed on, with every line's true event; see generate.py there): through
-- smartetl.log_template_id, message by message in file order, into an empty
-- template store, each set must be grouped with GA >= 0.95.  Run from the
-- repository root (pg_prove test/sql/*.sql), as the files are read by \copy.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(11);
CREATE TEMP TABLE synth (set_name text, line_id int, event text, content text);
CREATE TEMP TABLE synth_in (line_id int, event text, content text);
\copy synth_in FROM 'test/data/template_synth/glued.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'glued', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/hostnames.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'hostnames', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/wordvars.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'wordvars', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/varlen.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'varlen', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/long.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'long', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_sshd.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_sshd', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_cbs.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_cbs', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_android.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_android', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_health.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_health', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_syslog.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_syslog', * FROM synth_in; TRUNCATE synth_in;
\copy synth_in FROM 'test/data/template_synth/style_mac.csv' WITH (FORMAT csv, HEADER)
INSERT INTO synth SELECT 'style_mac', * FROM synth_in; TRUNCATE synth_in;

-- each set into an empty store, its lines in order, one statement per set
CREATE FUNCTION pg_temp.mine(s text) RETURNS TABLE (line_id int, event text, mined bigint)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM smartetl.template_text;
    DELETE FROM smartetl.template_seen;
    RETURN QUERY SELECT x.line_id, x.event, smartetl.log_template_id(x.content)
                 FROM (SELECT * FROM synth WHERE set_name = s ORDER BY line_id) x;
END $$;
CREATE TEMP TABLE mined AS
SELECT s.set_name, m.* FROM (SELECT DISTINCT set_name FROM synth) s, LATERAL pg_temp.mine(s.set_name) m;

-- Loghub's grouping accuracy: a line counts when its mined group holds
-- exactly the lines of its true event
SELECT cmp_ok(ga, '>=', 0.95::numeric, format('%s: GA %s on %s lines', set_name, ga, n))
FROM (SELECT m.set_name, count(*) AS n,
             round(coalesce((SELECT sum(cardinality(g.members)) FROM
                 (SELECT array_agg(line_id ORDER BY line_id) AS members FROM mined x
                  WHERE x.set_name = m.set_name GROUP BY mined) g
                 JOIN (SELECT array_agg(line_id ORDER BY line_id) AS members FROM mined x
                       WHERE x.set_name = m.set_name GROUP BY event) t USING (members)), 0)::numeric
                   / count(*), 3) AS ga
      FROM mined m GROUP BY m.set_name) r
ORDER BY set_name;
SELECT * FROM finish();
ROLLBACK;
