#!/usr/bin/env bash
# test/bench/intake_bench.sh — HTTP intake throughput (a benchmark, not a
# test: it asserts nothing about speed, it measures and prints).
#
# For each setting, wrk posts OpenLineage COMPLETE events to POST
# /api/v1/lineage for --seconds (test/intake/load.lua: every event its own
# run id, one connection per wrk thread); the events acknowledged with a 2xx
# are counted and checked against the table (every one stored).  Settings:
#   * one event per request at 16, 64 and 256 connections;
#   * 10 events per request (a JSON array) at 64 connections;
#   * the SQL path for comparison: pgbench, 64 sessions each calling
#     smartetl.ingest('openlineage', <one event>) with synchronous_commit on
#     (what the intake worker always uses).
# Twice: on a cluster like the test clusters (fsync = off), and --durable
# (fsync = on, full_page_writes = on: every acknowledged commit is flushed
# to disk, which bounds the HTTP rate by the commit rate of one worker).
#
# Usage (as root, from anywhere):
#   test/bench/intake_bench.sh [--seconds S] [--durable-only|--fast-only]
# Own throwaway cluster /tmp/pgbench-intake.<pid>, port 54342 (HTTP: a free
# loopback port); stopped and removed on exit.
set -euo pipefail

SECONDS_RUN=30
MODES="fast durable"
PORT=54342
while [ $# -gt 0 ]; do
	case "$1" in
		--seconds) SECONDS_RUN=${2:?}; shift 2 ;;
		--durable-only) MODES=durable; shift ;;
		--fast-only) MODES=fast; shift ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
# shellcheck source=../../scripts/lib.sh
source scripts/lib.sh
DIR=/tmp/pgbench-intake.$$
cleanup() { cluster_stop "$DIR"; rm -rf "$DIR"; }
trap cleanup EXIT

psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
HTTP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

log "benchmark: HTTP intake, ${SECONDS_RUN}s per setting"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:    $(uname -srm), $(nproc) vCPU, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"
echo "tools:   $(wrk -v 2>&1 | head -1), $($PG_BIN/pgbench --version)"
build_install

# one row per setting: mode | what | connections | events/s | p50 ms | p99 ms | stored check
results=()

run_wrk() {	# mode label connections batch
	local mode=$1 label=$2 conns=$3 batch=$4 prefix="b$RANDOM" out acked stored p50 p99
	out=$(WRK_TOKEN=$TOKEN WRK_RUN_PREFIX=$prefix WRK_BATCH=$batch WRK_ACK_FILE=$DIR/$prefix.ack \
		wrk -t "$conns" -c "$conns" -d "${SECONDS_RUN}s" --timeout 10s --latency \
		-s test/intake/load.lua "http://127.0.0.1:$HTTP_PORT/")
	echo "$out" | sed 's/^/    /'
	acked=$(wc -l <"$DIR/$prefix.ack")
	stored=$(psql_ -c "SELECT count(*) FROM smartetl.run WHERE external_id LIKE '$prefix-%' AND external_id IS NOT NULL")
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	results+=("$mode | $label | $conns | $(awk -v a="$acked" -v s="$SECONDS_RUN" 'BEGIN {printf "%.0f", a / s}') | $p50 | $p99 | $([ "$stored" -ge "$acked" ] && echo "all $acked stored" || echo "MISSING $((acked - stored))")")
}

run_sql() {	# mode
	local mode=$1 out tps
	cat >"$DIR/ingest.sql" <<'SQL'
\set id random(1, 2000000000)
SELECT smartetl.ingest('openlineage', '{"eventType":"COMPLETE","eventTime":"2026-01-02T03:04:05.000Z","run":{"runId":"sql-' || :id || '-' || pg_backend_pid() || '"},"job":{"namespace":"load","name":"job_' || (:id % 50) || '"},"inputs":[],"outputs":[],"producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/airflow","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}');
SQL
	out=$(PGOPTIONS='-c synchronous_commit=on' $PG_BIN/pgbench -n -c 64 -j 2 -T "$SECONDS_RUN" -f "$DIR/ingest.sql" postgres 2>&1)
	echo "$out" | sed 's/^/    /'
	tps=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
	results+=("$mode | SQL: smartetl.ingest() per event (pgbench) | 64 | $tps | $(echo "$out" | awk '/latency average/ {print $4}') (avg) | - | -")
}

for mode in $MODES; do
	cluster_stop "$DIR"
	rm -rf "$DIR"
	cluster_init "$DIR" "$PORT"
	if [ "$mode" = durable ]; then
		sed -i 's/^fsync = off/fsync = on/; s/^full_page_writes = off/full_page_writes = on/' "$DIR/data/postgresql.conf"
	fi
	cluster_start "$DIR" "$PORT"
	echo "$mode: fsync=$(psql_ -c 'SHOW fsync'), full_page_writes=$(psql_ -c 'SHOW full_page_writes'), server synchronous_commit=$(psql_ -c 'SHOW synchronous_commit') (the intake worker commits with on)"
	psql_ -c "SET client_min_messages = warning; CREATE EXTENSION smartetl" \
		-c "CREATE ROLE bench_bot NOLOGIN" -c "GRANT smartetl_writer TO bench_bot" \
		-c "ALTER SYSTEM SET smartetl.http_listen = '127.0.0.1:$HTTP_PORT'" -c "SELECT pg_reload_conf()"
	TOKEN=$(psql_ -c "SELECT smartetl.create_api_key('bench', 'bench_bot')")
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
	for conns in 16 64 256; do
		log "$mode: one event per request, $conns connections"
		run_wrk "$mode" "HTTP: 1 event per request" "$conns" 1
	done
	log "$mode: 10 events per request, 64 connections"
	run_wrk "$mode" "HTTP: 10 events per request" 64 10
	log "$mode: SQL path"
	run_sql "$mode"
done

log "summary (events/s acknowledged after commit; latency per request)"
echo "| cluster | path | connections | events/s | p50 | p99 | acknowledged vs stored |"
echo "|---|---|---:|---:|---:|---:|---|"
for r in "${results[@]}"; do echo "| $r |"; done
