-- A single line over 1 GB ($SMARTETL_BIG_FILE, written by test/run.sh) is a
-- clean error naming the line, never a crash or an out-of-memory; with
-- quarantine the lines around it are stored.
\set ON_ERROR_STOP 1
\getenv big SMARTETL_BIG_FILE
BEGIN;
SELECT plan(4);
SELECT ok((pg_stat_file(:'big')).size > 1073741824, 'the test file is larger than 1 GB');
SELECT throws_ok(format('SELECT smartetl.ingest_file(%L, ''csv'')', :'big'), '22P02',
                 'invalid csv input on line 3', 'a 1 GB line is rejected with its line number');
SELECT is(row(r.*)::text, '(2,0,0,1)',
          'quarantine stores the lines before and after it and records the long one')
FROM smartetl.ingest_file(:'big', 'csv', '{"on_error": "quarantine", "source": "big"}') r;
SELECT is(reason, 'line is longer than max_line_bytes (67108864 bytes)', 'the reject names the limit')
FROM smartetl.ingest_reject WHERE source = 'big';
SELECT * FROM finish();
ROLLBACK;
