#!/usr/bin/env bash
# test/bench/stale_stats_bench.sh — what the KPI rollup refresh costs when the
# planner's statistics are stale (measures and prints, asserts nothing).
#
# After autovacuum has seen smartetl.run and the rollups empty (a rolled-back
# or deleted load), pg_class keeps their pages with reltuples = 0, so a large
# load in the next transaction looks empty to the planner.  This forces that
# state (UPDATE pg_class: reltuples = 0 and a few hundred pages on the run,
# rollup and state tables, relpages = 2 on pipeline) in a throwaway cluster,
# then on the Google Borg trace of the shared data ($SMARTETL_DATA, 149,944
# runs of 14,828 logical jobs, as test/sql/predict_quality.sql loads it), in
# ONE transaction, times once each:
#   1. the bulk ingest of the trace;
#   2. the DELETE of the runs of the jobs with an odd id (about half of the
#      runs: _kpi_refresh recomputes every touched hour and day);
#   3. an UPDATE of every remaining run.
# The same steps then run in a second database with the statistics made
# fresh by an ANALYZE after the load (the load committed first).
# A step over $STALE_TIMEOUT seconds (default 300) is cancelled and shown as
# "timeout" (the later steps then do not run).
#
# Usage (as root): SMARTETL_DATA=/path/to/data test/bench/stale_stats_bench.sh
# Own throwaway cluster in /tmp/stalebench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54346); removed on exit.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
DATA=${SMARTETL_DATA:-$(pwd)/../shared/data}
BORG=$DATA/pipeline_runs/google_borg_2011/job_runs_7d.csv
[ -r "$BORG" ] || { echo "no Borg trace at $BORG (set SMARTETL_DATA)" >&2; exit 2; }
TIMEOUT=${STALE_TIMEOUT:-300}
source scripts/lib.sh
DIR=/tmp/stalebench.$$
PORT=${SMARTETL_BENCH_PORT:-54346}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
trap 'exit 143' TERM INT  # a timeout still stops the cluster (EXIT trap)
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

# steps DB MODE: MODE stale (forced pg_class, everything in one transaction)
# or analyzed (load committed, ANALYZE, then the changes in one transaction)
steps() {
	psql -X -q -c "CREATE DATABASE $1" >/dev/null
	psql -X -q -d "$1" -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"
	local load="SELECT smartetl.ingest_file('$BORG', 'csv',
      '{\"namespace\": \"borg\", \"columns\": {\"pipeline\": \"logical_job_id\", \"external_id\": \"job_id\",
        \"started_at\": \"schedule_us\", \"ended_at\": \"end_us\", \"status\": \"final_event\"},
        \"epoch_unit\": \"us\", \"epoch_origin\": \"2011-05-01 22:50:00+00\",
        \"status_map\": {\"EVICT\": \"failed\", \"LOST\": \"failed\"}}')"
	if [ "$2" = stale ]; then
		psql -X -q -d "$1" -c "UPDATE pg_class SET reltuples = 0, relpages = 800
			WHERE oid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'smartetl'::regnamespace AND c.relkind = 'r'
			              AND c.relname IN ('run', 'kpi_hourly', 'kpi_daily', 'kpi_monthly', 'run_anomaly_score',
			                                'anomaly_state', 'failure_streak'));
			UPDATE pg_class SET reltuples = 0, relpages = 2 WHERE oid = 'smartetl.pipeline'::regclass"
	else
		psql -X -q -d "$1" -c "$load" -c "ANALYZE" >/dev/null
	fi
	psql -X -q -At -d "$1" -v load="$load" -v mode="$2" -v timeout="$TIMEOUT" <<'SQL'
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.ms(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN round(1000 * extract(epoch FROM clock_timestamp() - t0)::numeric, 1)::text;
EXCEPTION WHEN query_canceled THEN
    RETURN 'timeout';
END $$;
CREATE TEMP TABLE t (step int, name text, n bigint, ms text);
SELECT set_config('statement_timeout', (:timeout * 1000)::text, false);
BEGIN;
INSERT INTO t SELECT 1, 'ingest_file of the trace', NULL,
    CASE WHEN :'mode' = 'stale' THEN pg_temp.ms(:'load') ELSE '(before, analyzed)' END;
UPDATE t SET n = (SELECT count(*) FROM smartetl.run) WHERE step = 1;
-- the benchmark's own statements read single tables or probe by pipeline_id
-- (= ANY of an array), so that only the extension's work meets the stale
-- statistics (a join of run and pipeline would itself be planned as a
-- nested loop of whole scans)
CREATE TEMP TABLE odd AS
SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'borg' AND name::bigint % 2 = 1;
INSERT INTO t SELECT 2, 'DELETE the runs of the odd jobs', (SELECT count(*) FROM smartetl.run), NULL;
UPDATE t SET ms = pg_temp.ms($q$DELETE FROM smartetl.run r
    WHERE r.pipeline_id = ANY (ARRAY(SELECT pipeline_id FROM odd))$q$) WHERE step = 2;
UPDATE t SET n = n - (SELECT count(*) FROM smartetl.run) WHERE step = 2;
INSERT INTO t SELECT 3, 'UPDATE every remaining run', (SELECT count(*) FROM smartetl.run), NULL
WHERE (SELECT ms FROM t WHERE step = 2) <> 'timeout';
UPDATE t SET ms = pg_temp.ms($q$UPDATE smartetl.run SET rows_written = coalesce(rows_written, 0) + 1$q$) WHERE step = 3;
COMMIT;
SELECT step, name, n, ms FROM t ORDER BY step;
SQL
}

log "Borg trace, stale statistics (reltuples = 0), one transaction (ms, once each)"
steps bench_stale stale | column -t -s'|'
log "the same changes with fresh statistics (load committed and ANALYZEd first)"
steps bench_analyzed analyzed | column -t -s'|'
