-- DROP EXTENSION leaves no object behind in the database.
SELECT * FROM smartetl.ingest('logline', E'2024-01-01 00:00:00 INFO a: b\n', '{"log_format": "<Date> <Time> <Level> <Component>: <Content>"}');
DROP EXTENSION smartetl;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'smartetl';
SELECT count(*) AS relations FROM pg_class WHERE relname LIKE 'log\_event%' OR relname IN ('run', 'pipeline', 'ingest_reject');
SELECT count(*) AS types FROM pg_type WHERE typname IN ('run_status', 'ingest_result');
SELECT count(*) AS functions FROM pg_proc WHERE proname IN ('ingest', 'ingest_file', 'parse_log', '_log_partitions_ensure');
-- and it installs again cleanly
CREATE EXTENSION smartetl;
SELECT count(*) FROM smartetl.run;
