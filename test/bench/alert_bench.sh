#!/usr/bin/env bash
# test/bench/alert_bench.sh — alert evaluation and delivery at scale (a
# benchmark, not a test: it asserts nothing about speed, it measures and
# prints).  Receiver: a loopback nginx (Debian nginx-light) answering 200.
#
#   * burst: 10,000 failed runs of 10,000 pipelines ingested in one call, a
#     run_failed rule with group_wait 0 and a webhook channel: 10,000
#     notifications; prints the time from the commit to the first and the
#     last delivery recorded sent, and notifications/s;
#   * evaluation pass at 10,000 pipelines / 10,000 firing alerts:
#     evaluate_alerts() with nothing changed, and after one new failed run
#     (median and max of --passes passes, each after another pipeline's run);
#   * steady: one failed run of a new pipeline every 50 ms (20/s) for
#     --seconds, on top of the 10,000 firing alerts: commit -> sent
#     (delivery.sent_at, recorded when nginx answered, minus run.ingested_at)
#     p50/p95/p99;
#   * anomaly vs run_failed: --anomalies pipelines with 30 hourly runs of
#     about a minute each; then, every 100 ms, one of them gets a 10-minute
#     run (a duration_anomaly rule, group_wait 0) and a pipeline of its own
#     a failed run (the run_failed rule): commit -> sent p50/p95/p99 of each.
#
# Usage (as root, from anywhere; inside /work/lockrun.sh on the shared box):
#   test/bench/alert_bench.sh [--pipelines N] [--seconds S] [--passes P] [--anomalies A] [--chunk C]
#                             [--skip-burst] [--burst-only]
# --chunk sets smartetl.evaluation_chunk (default: the server's, 1000; 0 =
# the whole burst in one evaluation, as before chunked evaluation).
# Own throwaway cluster /tmp/pgbench-alert.<pid> on SMARTETL_BENCH_PORT
# (default a free port), nginx on the next free one; both stopped on exit.
set -euo pipefail

N=10000
SECONDS_RUN=30
PASSES=5
BURST=1
ANOMALIES=100
CHUNK=
BURST_ONLY=0
while [ $# -gt 0 ]; do
	case "$1" in
		--pipelines) N=${2:?}; shift 2 ;;
		--seconds) SECONDS_RUN=${2:?}; shift 2 ;;
		--passes) PASSES=${2:?}; shift 2 ;;
		--anomalies) ANOMALIES=${2:?}; shift 2 ;;
		--skip-burst) BURST=0; shift ;;
		--burst-only) BURST_ONLY=1; shift ;;
		--chunk) CHUNK=${2:?}; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install nginx-light" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
# shellcheck source=../../scripts/lib.sh
source scripts/lib.sh
DIR=/tmp/pgbench-alert.$$
PORT=${SMARTETL_BENCH_PORT:-$(free_port)}
HTTP_PORT=$(free_port)
NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	cluster_stop "$DIR"; rm -rf "$DIR"
}
trap cleanup EXIT
psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

log "benchmark: alert evaluation and delivery, $N pipelines"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:    $(uname -srm), $(nproc) vCPU, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"
echo "nginx:   $(nginx -v 2>&1)"
[ "${SMARTETL_BENCH_NO_BUILD:-0}" = 1 ] || build_install

mkdir -p "$DIR/nginx"
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx;
    server { listen 127.0.0.1:$HTTP_PORT; location / { return 200 'ok'; } }
}
CONF
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT) 2>/dev/null && break; sleep 0.1; done

cluster_init "$DIR" "$PORT"
echo "smartetl.naptime = 1" >>"$DIR/data/postgresql.conf"
[ -z "$CHUNK" ] || echo "smartetl.evaluation_chunk = $CHUNK" >>"$DIR/data/postgresql.conf"
echo "chunk:   smartetl.evaluation_chunk = ${CHUNK:-default}"
cluster_start "$DIR" "$PORT"
psql_ -c "CREATE EXTENSION smartetl" \
      -c "INSERT INTO smartetl.channel (name, kind, target) VALUES ('nginx', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook')" \
      -c "INSERT INTO smartetl.alert_rule (name, kind, channels, group_wait, group_interval) VALUES ('failed', 'run_failed', '{nginx}', '0', '0')"

# the burst: one ingest of N failed runs of N pipelines
ts() { date -u -d "@$1" '+%Y-%m-%dT%H:%M:%SZ'; }
now=$(date +%s)
{
	echo 'job,run_id,start,end,status,error'
	for i in $(seq 1 "$N"); do
		echo "p$i,1,$(ts $((now - 7200))),$(ts $((now - 7140))),success,"
		echo "p$i,2,$(ts $((now - 60))),$(ts $((now - 30))),failed,boom $i"
	done
} >"$DIR/burst.csv"
chmod 644 "$DIR/burst.csv"
t0=$(psql_ -c "SELECT inserted FROM smartetl.ingest_file('$DIR/burst.csv', 'csv')" -c "SELECT extract(epoch FROM clock_timestamp())")
t0=$(echo "$t0" | tail -1)
log "burst: $N notifications queued by one ingest"
deadline=$(( $(date +%s) + 600 ))
while :; do
	sent=$(psql_ -c "SELECT count(*) FROM smartetl.delivery WHERE status = 'sent'")
	[ "$sent" -ge "$N" ] && break
	[ "$(date +%s)" -ge "$deadline" ] && { echo "only $sent of $N sent after 600 s"; break; }
	sleep 0.5
done
psql_ -F ' ' -c "SELECT count(*), round(extract(epoch FROM min(sent_at)) - $t0, 3), round(extract(epoch FROM max(sent_at)) - $t0, 3),
                        round(count(*) / nullif(extract(epoch FROM max(sent_at)) - $t0, 0)),
                        round(count(*) / nullif(extract(epoch FROM max(sent_at) - min(sent_at)), 0))
                 FROM smartetl.delivery WHERE status = 'sent'" |
	awk '{printf "burst:   %s sent; first %s s after the commit, last %s s; %s notifications/s end to end, %s/s from the first to the last\n", $1, $2, $3, $4, $5}'
psql_ -c "SELECT status, count(*) FROM smartetl.delivery GROUP BY 1 ORDER BY 1" | sed 's/^/         /'
[ "$BURST_ONLY" = 0 ] || exit 0

# evaluation passes at N pipelines / N firing alerts (in this session, the
# worker evaluates too: each pass is timed inside the database)
psql_ -c "VACUUM ANALYZE" >/dev/null
log "evaluation pass: $(psql_ -c "SELECT count(*) FROM smartetl.alert WHERE state = 'firing'") firing alerts, $(psql_ -c "SELECT count(*) FROM smartetl.pipeline") pipelines"
# one session, as the worker's: each pass in a transaction that holds the
# evaluation lock from its start, so the worker (woken by the ingest) skips
# rather than evaluating first; the first two passes warm the session up
{
	echo '\timing on'
	for i in $(seq 1 $((PASSES + 2))); do
		echo "BEGIN; SELECT smartetl._xact_lock('alert_evaluation');"
		echo '\echo MARK idle'
		echo "SELECT smartetl.evaluate_alerts(); COMMIT;"
		echo "BEGIN; SELECT smartetl._xact_lock('alert_evaluation');"
		echo "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,status,error\\np$((i * 7)),x$i,$(ts "$(date +%s)"),failed,again\\n');"
		echo '\echo MARK one'
		echo "SELECT smartetl.evaluate_alerts(); COMMIT;"
	done
} >"$DIR/passes.sql"
psql -X -At -v ON_ERROR_STOP=1 -f "$DIR/passes.sql" >"$DIR/passes.out"
times() { awk -v k="$1" '$1 == "MARK" {m = $2; next} /^Time:/ && m != "" {if (m == k) print $2; m = ""}' "$DIR/passes.out" | tail -n "$PASSES"; }
mapfile -t idle < <(times idle)
mapfile -t one < <(times one)
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %s ms, max %s ms (%d passes)", a[int((NR+1)/2)], a[NR], NR}'; }
echo "nothing changed:        $(stats "${idle[@]}")"
echo "after one failed run:   $(stats "${one[@]}")"

# steady: 20 failed runs/s of new pipelines
log "steady: a failed run every 50 ms for ${SECONDS_RUN}s"
start_id=$(psql_ -c "SELECT coalesce(max(run_id), 0) FROM smartetl.run")
end=$(( $(date +%s) + SECONDS_RUN )); k=0; pids=()
while [ "$(date +%s)" -lt "$end" ]; do
	k=$((k + 1))
	psql_ -c "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,status,error\\ns$k,1,$(ts "$(date +%s)"),failed,steady\\n')" >/dev/null &
	pids+=($!)
	sleep 0.05
done
wait "${pids[@]}"	# not nginx
sleep 5
psql_ -F ' ' -c "WITH l AS (
    SELECT extract(epoch FROM d.sent_at - r.ingested_at) * 1000 AS ms
    FROM smartetl.delivery d
    JOIN smartetl.run r ON r.run_id = (d.notification->'alerts'->0->'annotations'->>'run_id')::bigint
    WHERE r.run_id > $start_id AND d.status = 'sent')
  SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)), round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)),
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)), round(max(ms)) FROM l" |
	awk -v k="$k" '{printf "steady:  %s of %s runs notified; commit -> sent p50 %s ms, p95 %s ms, p99 %s ms, max %s ms\n", $1, k, $2, $3, $4, $5}'

# anomaly vs run_failed: the same path, one rule scoring the run at ingest
log "anomaly vs run_failed: $ANOMALIES 10-minute runs and $ANOMALIES failed runs, one of each every 100 ms"
psql_ -c "INSERT INTO smartetl.alert_rule (name, kind, channels, selector, group_wait, group_interval)
          VALUES ('slow', 'duration_anomaly', '{nginx}', '{\"pipeline\": \"a*\"}', '0', '0')"
{
	echo 'job,run_id,start,end,status'
	for k in $(seq 1 "$ANOMALIES"); do
		for i in $(seq 1 30); do
			st=$((now - (32 - i) * 3600))
			echo "a$k,$i,$(ts $st),$(ts $((st + 60 + i % 5))),success"
		done
	done
} >"$DIR/history.csv"
chmod 644 "$DIR/history.csv"
psql_ -c "SELECT inserted FROM smartetl.ingest_file('$DIR/history.csv', 'csv')" >/dev/null
sleep 3
start_id=$(psql_ -c "SELECT coalesce(max(run_id), 0) FROM smartetl.run")
pids=()
for k in $(seq 1 "$ANOMALIES"); do
	t=$(date +%s)
	psql_ -c "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\\na$k,31,$(ts $((t - 700))),$(ts $((t - 100))),success\\n')" >/dev/null &
	pids+=($!)
	psql_ -c "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,status,error\\nf$k,1,$(ts "$t"),failed,steady\\n')" >/dev/null &
	pids+=($!)
	sleep 0.1
done
wait "${pids[@]}"
sleep 5
psql_ -F ' ' -c "WITH l AS (
    SELECT a.rule_name, extract(epoch FROM d.sent_at - r.ingested_at) * 1000 AS ms
    FROM smartetl.delivery d
    JOIN smartetl.alert_group a ON a.group_key = d.group_key
    JOIN smartetl.run r ON r.run_id = (d.notification->'alerts'->0->'annotations'->>'run_id')::bigint
    WHERE r.run_id > $start_id AND d.status = 'sent')
  SELECT rule_name, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)), round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)),
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)), round(max(ms)) FROM l GROUP BY 1 ORDER BY 1" |
	awk -v k="$ANOMALIES" '{printf "%-8s %s of %s runs notified; commit -> sent p50 %s ms, p95 %s ms, p99 %s ms, max %s ms\n", $1 ":", $2, k, $3, $4, $5, $6}'
