#!/usr/bin/env bash
# test/bench/anomaly_bulk_bench.sh — what bulk changes of runs cost with the
# anomaly scores kept at ingest (measures and prints, asserts nothing).
#
# On the Google Borg trace of the shared data ($SMARTETL_DATA, 149,944 runs
# of 14,828 logical jobs, as test/sql/predict_quality.sql loads it), in one
# transaction like that test (so the planner sees statistics older than the
# data), times once each:
#   1. the bulk ingest of the trace (rollups and scores of the new runs);
#   2. the DELETE of the runs of the jobs with an odd id (predict_quality.sql:
#      about half of the runs and pipelines), every one of them rescored;
#   3. an UPDATE of every remaining run (every pipeline rescored from its
#      first run).
# Each step runs twice: as installed, and with smartetl._anomaly_refresh
# replaced by a no-op inside the rolled-back transaction (the same work but
# the scores: what it cost before scores were kept).  Ratio = with / without.
#
# Usage (as root): SMARTETL_DATA=/path/to/data test/bench/anomaly_bulk_bench.sh
# Own throwaway cluster in /tmp/anomalybench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54345); removed on exit.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
DATA=${SMARTETL_DATA:-$(pwd)/../shared/data}
BORG=$DATA/pipeline_runs/google_borg_2011/job_runs_7d.csv
[ -r "$BORG" ] || { echo "no Borg trace at $BORG (set SMARTETL_DATA)" >&2; exit 2; }
source scripts/lib.sh
DIR=/tmp/anomalybench.$$
PORT=${SMARTETL_BENCH_PORT:-54345}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

# steps DB SCORED: the three steps in one transaction in database DB, with
# the scores (true) or with _anomaly_refresh a no-op (false); prints
# "step|name|runs|ms" per step
steps() {
	psql -X -q -c "CREATE DATABASE $1" >/dev/null
	psql -X -q -d "$1" -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"
	if [ "$2" = false ]; then
		psql -X -q -d "$1" -c 'CREATE OR REPLACE FUNCTION smartetl._anomaly_refresh(pipeline_ids bigint[], times timestamptz[])
			RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$ BEGIN END $$'
	fi
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -v borg="$BORG" <<'SQL'
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE q; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END $$;
CREATE TEMP TABLE t (step int, name text, n bigint, ms float8);
BEGIN;
INSERT INTO t SELECT 1, 'ingest_file of the trace', NULL,
    pg_temp.ms(format($q$SELECT smartetl.ingest_file(%L, 'csv',
      '{"namespace": "borg", "columns": {"pipeline": "logical_job_id", "external_id": "job_id",
        "started_at": "schedule_us", "ended_at": "end_us", "status": "final_event"},
        "epoch_unit": "us", "epoch_origin": "2011-05-01 22:50:00+00",
        "status_map": {"EVICT": "failed", "LOST": "failed"}}')$q$, :'borg'));
UPDATE t SET n = (SELECT count(*) FROM smartetl.run) WHERE step = 1;
INSERT INTO t SELECT 2, 'DELETE the runs of the odd jobs',
    (SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
     WHERE p.namespace = 'borg' AND p.name::bigint % 2 = 1), NULL;
UPDATE t SET ms = pg_temp.ms($q$DELETE FROM smartetl.run r USING smartetl.pipeline p
    WHERE p.pipeline_id = r.pipeline_id AND p.namespace = 'borg' AND p.name::bigint % 2 = 1$q$) WHERE step = 2;
INSERT INTO t SELECT 3, 'UPDATE every remaining run', (SELECT count(*) FROM smartetl.run), NULL;
UPDATE t SET ms = pg_temp.ms($q$UPDATE smartetl.run SET rows_written = coalesce(rows_written, 0) + 1$q$) WHERE step = 3;
COMMIT;
SELECT step, name, n, round(ms::numeric, 1) FROM t ORDER BY step;
SQL
}

log "Borg trace, one transaction: ingest, DELETE of half the jobs' runs, UPDATE of the rest (ms, once each)"
WITH=$(steps bench_scored true)
WITHOUT=$(steps bench_unscored false)
printf '%-34s %8s %12s %12s %6s\n' step runs with_scores without ratio
join -t'|' <(echo "$WITH") <(echo "$WITHOUT" | cut -d'|' -f1,4) |
	awk -F'|' '{ printf "%-34s %8s %12s %12s %6.2f\n", $2, $3, $4, $5, $4 / $5 }'
psql -X -At -d bench_scored -c "SELECT 'scores kept after the three steps: ' || count(*) FROM smartetl.run_anomaly_score"
