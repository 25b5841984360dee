-- smartetl install script, assembled by the Makefile from src/sql/*.sql in
-- file-name order.  Edit the pieces, not the generated smartetl--*.sql.

\echo Use "CREATE EXTENSION smartetl" to load this file. \quit
