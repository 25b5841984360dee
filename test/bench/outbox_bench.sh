#!/usr/bin/env bash
# test/bench/outbox_bench.sh — the alert worker's delivery path alone (a
# benchmark, not a test: it measures and prints).  N webhook deliveries are
# queued at once straight into the outbox (one INSERT, each its own group),
# and the worker sends them to a loopback nginx (Debian nginx-light) answering
# 200.  Prints, for each N: notifications/s from the commit and from the
# first to the last sent, the most files the worker held open and its peak
# memory (VmHWM) while sending, and the connections nginx accepted (reuse).
#
# Usage (as root; inside /work/lockrun.sh on the shared box):
#   test/bench/outbox_bench.sh [--queued N[,N...]] [--max-in-flight M]
# Own throwaway cluster /tmp/pgbench-outbox.<pid> on SMARTETL_BENCH_PORT
# (default a free port), nginx on the next free one; both stopped on exit.
set -euo pipefail

QUEUED=10000,100000
MAX_IN_FLIGHT=
while [ $# -gt 0 ]; do
	case "$1" in
		--queued) QUEUED=${2:?}; shift 2 ;;
		--max-in-flight) MAX_IN_FLIGHT=${2:?}; shift 2 ;;
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
DIR=/tmp/pgbench-outbox.$$
PORT=${SMARTETL_BENCH_PORT:-$(free_port)}
HTTP_PORT=$(free_port)
NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	cluster_stop "$DIR"; rm -rf "$DIR"
}
trap cleanup EXIT
psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

log "benchmark: the alert worker's delivery path, $QUEUED deliveries queued at once"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:    $(uname -srm), $(nproc) vCPU, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source:  $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')"
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
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location = /status { stub_status; }
        location / { return 200 'ok'; }
    }
}
CONF
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT) 2>/dev/null && break; sleep 0.1; done
accepted() { curl -s "http://127.0.0.1:$HTTP_PORT/status" | awk 'NR == 3 {print $1}'; }

cluster_init "$DIR" "$PORT"
echo "smartetl.naptime = 1" >>"$DIR/data/postgresql.conf"
[ -n "$MAX_IN_FLIGHT" ] && echo "smartetl.max_in_flight = $MAX_IN_FLIGHT" >>"$DIR/data/postgresql.conf"
cluster_start "$DIR" "$PORT"
psql_ -c "CREATE EXTENSION smartetl" \
      -c "INSERT INTO smartetl.channel (name, kind, target) VALUES ('nginx', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook')"
echo "max_in_flight: $(psql_ -c 'SHOW smartetl.max_in_flight')"
sleep 1.5
WPID=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smartetl alert worker'")

for n in ${QUEUED//,/ }; do
	psql_ -c "TRUNCATE smartetl.delivery" >/dev/null
	a0=$(accepted)
	# a webhook notification of one alert, about 1 kB, as _alert_notify queues it
	t0=$(psql_ -c "INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload)
	     SELECT 'nginx', 'bench/pipeline=p' || i, 'k' || i, n, smartetl._payload('webhook', n)
	     FROM generate_series(1, $n) i,
	          LATERAL (SELECT jsonb_build_object('idempotency_key', 'k' || i, 'group_key', 'bench/pipeline=p' || i,
	                       'status', 'firing', 'rule', jsonb_build_object('name', 'bench', 'kind', 'run_failed', 'severity', 'critical'),
	                       'group_labels', jsonb_build_object('pipeline', 'p' || i),
	                       'alerts', jsonb_build_array(jsonb_build_object('fingerprint', md5(i::text), 'status', 'firing',
	                           'starts_at', now(), 'labels', jsonb_build_object('alertname', 'bench', 'pipeline', 'p' || i,
	                           'namespace', 'default', 'severity', 'critical'),
	                           'annotations', jsonb_build_object('summary', 'p' || i || ' failed', 'description',
	                               '1 run(s) of default/p' || i || ' failed in a row since 2026-12-03 10:00 UTC',
	                               'error', 'boom ' || i, 'recent_history', '[]'::jsonb), 'value', 1)),
	                       'sent_at', now()) AS n) x" \
	     -c "SELECT extract(epoch FROM clock_timestamp())" | tail -1)
	maxfd=0; hwm=0
	deadline=$(( $(date +%s) + 600 ))
	while :; do
		fd=$(ls /proc/"$WPID"/fd 2>/dev/null | wc -l)
		[ "$fd" -gt "$maxfd" ] && maxfd=$fd
		left=$(psql_ -c "SELECT count(*) FROM smartetl.delivery WHERE status <> 'sent'")
		[ "$left" -eq 0 ] && break
		[ "$(date +%s)" -ge "$deadline" ] && { echo "$left of $n not sent after 600 s"; break; }
		sleep 0.2
	done
	hwm=$(awk '/^VmHWM/ {print $2, $3}' /proc/"$WPID"/status)
	psql_ -F ' ' -c "SELECT count(*), round(extract(epoch FROM min(sent_at)) - $t0, 3), round(extract(epoch FROM max(sent_at)) - $t0, 3),
	                        round(count(*) / nullif(extract(epoch FROM max(sent_at)) - $t0, 0)),
	                        round(count(*) / nullif(extract(epoch FROM max(sent_at) - min(sent_at)), 0)),
	                        count(*) FILTER (WHERE attempts > 1)
	                 FROM smartetl.delivery WHERE status = 'sent'" |
		awk -v n="$n" -v fd="$maxfd" -v hwm="$hwm" -v conns="$(( $(accepted) - a0 ))" \
			'{printf "queued %s: %s sent, first %s s after the commit, last %s s; %s/s end to end, %s/s first to last; %s retried; worker: at most %s open files, peak memory %s; nginx accepted %s connections\n", n, $1, $2, $3, $4, $5, $6, fd, hwm, conns}'
	psql_ -c "SELECT status, count(*) FROM smartetl.delivery GROUP BY 1 ORDER BY 1" | sed 's/^/         /'
done
