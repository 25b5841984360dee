#!/usr/bin/env bash
# test/bench/parent_link_bench.sh — what linking children to parents costs an
# ingest call (measures and prints, asserts nothing).
#
# Loads --runs N runs (default 1,000,000) of --pipelines P pipelines (default
# 1,000) in one namespace, then times small ingest calls (--batch B runs,
# default 100, a tenth of them children of a parent in the same call), as
# medians of --rounds R calls:
#   1. baseline: nothing in the store waits for a parent;
#   2. with --orphans K children (default 1,000) whose parent never comes
#      (e.g. an OpenLineage parent from a system that does not emit);
#   3. the same with the statistics of smartetl.run made stale (reltuples = 0,
#      as after a rolled-back load and autovacuum), the planner's worst case.
# Ratios are the call's time over the baseline's (1.0: linking costs nothing
# more).  Run it on two checkouts to compare versions.
#
# Usage (as root): test/bench/parent_link_bench.sh [--runs N] [--pipelines P]
#                  [--batch B] [--orphans K] [--rounds R]
# Own throwaway cluster in /tmp/linkbench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54345); removed on exit.
set -euo pipefail

RUNS=1000000
PIPELINES=1000
BATCH=100
ORPHANS=1000
ROUNDS=15
while [ $# -gt 0 ]; do
	case "$1" in
		--runs) RUNS=$2; shift 2 ;;
		--pipelines) PIPELINES=$2; shift 2 ;;
		--batch) BATCH=$2; shift 2 ;;
		--orphans) ORPHANS=$2; shift 2 ;;
		--rounds) ROUNDS=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
source scripts/lib.sh
DIR=/tmp/linkbench.$$
PORT=${SMARTETL_BENCH_PORT:-54345}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"
mkdir -p "$DIR/data" && chown postgres "$DIR/data"

log "loading $RUNS runs of $PIPELINES pipelines"
psql -X -q -v runs="$RUNS" -v pipelines="$PIPELINES" -v file="$DIR/data/runs.csv" <<'SQL'
COPY (SELECT 'p' || (g % :pipelines) AS job, 'r' || g AS run_id,
             timestamptz '2026-01-01' + g * interval '10 s' AS start,
             timestamptz '2026-01-01' + g * interval '10 s' + interval '5 s' AS "end", 'success' AS status
      FROM generate_series(1, :runs) g) TO :'file' WITH (FORMAT csv, HEADER);
SQL
psql -X -At -c "SELECT inserted FROM smartetl.ingest_file('$DIR/data/runs.csv', 'csv', '{\"namespace\": \"bench\"}')"
psql -X -q -c "VACUUM ANALYZE"

# one call: B runs; every tenth is a child of the call's first run
measure() {
	psql -X -At -q -v rounds="$ROUNDS" -v batch="$BATCH" -v pipelines="$PIPELINES" -v label="$1" <<'SQL'
SET bench.rounds = :'rounds';
SET bench.batch = :'batch';
SET bench.pipelines = :'pipelines';
CREATE TEMP TABLE t (ms float8);
DO $$
DECLARE t0 timestamptz; doc text; k int;
BEGIN
    FOR k IN 1 .. current_setting('bench.rounds')::int LOOP
        SELECT 'job,run_id,parent_id,start,end,status' || E'\n' || string_agg(format('p%s,%s,%s,%s,%s,success',
                   g % current_setting('bench.pipelines')::int, 'b' || k || '-' || g,
                   CASE WHEN g > 1 AND g % 10 = 0 THEN 'b' || k || '-1' ELSE '' END,
                   timestamptz '2026-11-01' + (k * 1000 + g) * interval '1 s',
                   timestamptz '2026-11-01' + (k * 1000 + g) * interval '1 s' + interval '1 s'), E'\n')
          INTO doc FROM generate_series(1, current_setting('bench.batch')::int) g;
        t0 := clock_timestamp();
        PERFORM smartetl.ingest('csv', doc, '{"namespace": "bench"}');
        INSERT INTO t VALUES (1000 * extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END $$;
SELECT :'label' || '|' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) FROM t;
SQL
}
# the calls' children must find their parent: check once
check_links() {
	psql -X -At -c "SELECT count(*) FILTER (WHERE parent_run_id IS NULL) || ' unlinked of ' || count(*) || ' children of the calls'
	                FROM smartetl.run WHERE parent_external_id LIKE 'b%'"
}

log "timings: median of $ROUNDS calls of $BATCH runs (ms)"
base=$(measure "no child waits for a parent" | cut -d'|' -f2)
echo "no child waits for a parent: $base ms"
psql -X -q -v orphans="$ORPHANS" <<'SQL'
COPY (SELECT 'o' || g AS job, 'o' || g AS run_id, 'never-' || g AS parent_id, timestamptz '2026-06-01' AS start,
             timestamptz '2026-06-01 00:01' AS "end", 'success' AS status FROM generate_series(1, :orphans) g) TO '/tmp/linkbench-orphans.csv' WITH (FORMAT csv, HEADER);
SQL
psql -X -q -c "SELECT smartetl.ingest_file('/tmp/linkbench-orphans.csv', 'csv', '{\"namespace\": \"bench\"}')" -c "ANALYZE smartetl.run"
rm -f /tmp/linkbench-orphans.csv
orph=$(measure "with orphans" | cut -d'|' -f2)
psql -X -q -c "UPDATE pg_class SET reltuples = 0 WHERE oid = 'smartetl.run'::regclass"
stale=$(measure "stale" | cut -d'|' -f2)
check_links
printf '%-60s %10s %8s\n' "ingest call of $BATCH runs" "ms" "ratio"
printf '%-60s %10s %8s\n' "nothing waits for a parent (baseline)" "$base" "1.00"
awk -v b="$base" -v o="$orph" -v s="$stale" -v k="$ORPHANS" 'BEGIN {
	printf "%-60s %10.2f %8.2f\n", k " children whose parent never comes", o, o / b
	printf "%-60s %10.2f %8.2f\n", "the same, statistics stale (reltuples = 0)", s, s / b }' 
