-- smartetl install script, assembled by the Makefile from src/sql/*.sql in
-- file-name order.  Edit the pieces, not the generated smartetl--*.sql.

\echo Use "CREATE EXTENSION smartetl" to load this file. \quit

-- Created here rather than by the control file, so that the schema is a
-- member of the extension and DROP EXTENSION removes it (as pg_cron does).
CREATE SCHEMA smartetl;
COMMENT ON SCHEMA smartetl IS 'smartetl: ETL pipeline monitoring, alerting and failure prediction';
