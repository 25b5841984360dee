#!/usr/bin/env bash
# test/bench/pgnet_bench.sh — pg_net (supabase/pg_net) beside smartetl's
# delivery path on the same machine and receiver (a benchmark, not a test; it
# measures and prints, and is not part of the suite).  N POST requests of the
# same ~1 kB webhook body are queued with net.http_post() in one transaction,
# and pg_net's worker sends them to a loopback nginx (Debian nginx-light)
# answering 200.  For each pg_net.batch_size and N it prints: requests nginx
# received (its access log), requests/s from the queue's commit to the last
# one received, pg_net's failures (net._http_response rows with an error, a
# timeout or a status other than 200, and requests with no response row when
# the wait ended) with their most common error messages, and the most files
# pg_net's worker held open.  With --outbox, test/bench/outbox_bench.sh runs
# afterwards in the same session with the same N, and a table puts both side
# by side.
#
# pg_net is not shipped with smartetl: the script exits 0 with a message when
# it is not installed.  To build it (PostgreSQL 15 dev headers and
# libcurl4-openssl-dev; inside /work/lockrun.sh on the shared box):
#   make -C /path/to/pg_net PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
#
# Usage (as root; inside /work/lockrun.sh on the shared box):
#   test/bench/pgnet_bench.sh [--queued N[,N...]] [--batch-sizes B[,B...]]
#                             [--nofile L] [--outbox] [--wait S]
# --nofile L starts the server with its open-files soft limit raised to L
# (ulimit -n as the postgres user: at most its hard limit, 20,000 here; by
# default the server keeps the soft limit runuser gives it, 1,024 here);
# --wait S is the longest wait for one N (default 240 s).
# Own throwaway cluster /tmp/pgbench-pgnet.<pid> on SMARTETL_BENCH_PORT
# (default a free port), nginx on another free one; both stopped on exit.
set -euo pipefail

QUEUED=1000,10000,100000
BATCHES=1000,10000
NOFILE=
OUTBOX=0
WAIT=240
while [ $# -gt 0 ]; do
	case "$1" in
		--queued) QUEUED=${2:?}; shift 2 ;;
		--batch-sizes) BATCHES=${2:?}; shift 2 ;;
		--nofile) NOFILE=${2:?}; shift 2 ;;
		--outbox) OUTBOX=1; shift ;;
		--wait) WAIT=${2:?}; shift 2 ;;
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
if [ ! -f "$($PG_CONFIG --sharedir)/extension/pg_net.control" ] || [ ! -f "$($PG_CONFIG --pkglibdir)/pg_net.so" ]; then
	echo "pg_net is not installed in $($PG_CONFIG --sharedir)/extension: skipped (see the header of $0 to build it)"
	exit 0
fi

DIR=/tmp/pgbench-pgnet.$$
PORT=${SMARTETL_BENCH_PORT:-$(free_port)}
HTTP_PORT=$(free_port)
NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	cluster_stop "$DIR"; rm -rf "$DIR"
}
trap cleanup EXIT
psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

log "benchmark: pg_net, $QUEUED requests queued at once, batch sizes $BATCHES"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:    $(uname -srm), $(nproc) vCPU, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source:  $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')"
echo "nginx:   $(nginx -v 2>&1)"
echo "pg_net:  $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$($PG_CONFIG --sharedir)/extension/pg_net.control")"

# The receiver of outbox_bench.sh (return 200), with an access log (one line
# per request: the time it was answered and the status) and room for as many
# simultaneous connections as pg_net may open (outbox_bench's 4,096 would make
# nginx the limit, not pg_net).
mkdir -p "$DIR/nginx"
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log;
events { worker_connections 16384; }
http {
    log_format bench '\$msec \$status \$request_uri';
    access_log $DIR/nginx/access.log bench;
    client_body_temp_path $DIR/nginx;
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location = /status { access_log off; stub_status; }
        location / { return 200 'ok'; }
    }
}
CONF
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT) 2>/dev/null && break; sleep 0.1; done
ACCESS=$DIR/nginx/access.log
accepted() { curl -s "http://127.0.0.1:$HTTP_PORT/status" | awk 'NR == 3 {print $1}'; }

cluster_init "$DIR" "$PORT"
cat >>"$DIR/data/postgresql.conf" <<CONF
# pg_net alone (a later setting wins): smartetl's worker stays out of the way
shared_preload_libraries = 'pg_net'
pg_net.database_name = 'postgres'
pg_net.batch_size = ${BATCHES%%,*}
CONF
if [ -n "$NOFILE" ]; then
	cluster_configure "$DIR"
	as_postgres bash -c "ulimit -n $NOFILE && exec $PG_BIN/pg_ctl -D '$DIR/data' -l '$DIR/server.log' -w -t 120 start" >/dev/null
	export PGHOST="$(socket_dir "$DIR")" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
else
	cluster_start "$DIR" "$PORT"
fi
psql_ -c "CREATE EXTENSION pg_net"
psql_ -c "SELECT net.wait_until_running()" >/dev/null 2>&1 || sleep 2
worker_pid() { psql_ -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'pg_net%' OR backend_type LIKE 'pg_net%' LIMIT 1"; }
WPID=$(worker_pid)
echo "worker:  pid $WPID, open files limit $(awk '/Max open files/ {print $4 " (hard " $5 ")"}' /proc/"$WPID"/limits)"

RESULTS=$DIR/results
: >"$RESULTS"
for batch in ${BATCHES//,/ }; do
	psql_ -c "ALTER SYSTEM SET pg_net.batch_size = $batch" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	for n in ${QUEUED//,/ }; do
		psql_ -c "TRUNCATE net._http_response" >/dev/null
		: >"$ACCESS"
		a0=$(accepted)
		WPID=$(worker_pid)
		log0=$(wc -l <"$DIR/server.log")
		# the body outbox_bench.sh queues: a webhook notification of one alert
		t0=$(psql_ -c "SELECT count(net.http_post(url := 'http://127.0.0.1:$HTTP_PORT/hook', body := n,
		         headers := '{\"Content-Type\": \"application/json\"}'::jsonb))
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
		maxfd=0
		deadline=$(( $(date +%s) + WAIT ))
		waited=done
		while :; do
			fd=$(ls /proc/"$WPID"/fd 2>/dev/null | wc -l)
			[ "$fd" -gt "$maxfd" ] && maxfd=$fd
			# done when every request has its response row and the queue is empty
			read -r answered queued <<<"$(psql_ -F ' ' -c "SELECT (SELECT count(*) FROM net._http_response), (SELECT count(*) FROM net.http_request_queue)")"
			[ "$answered" -ge "$n" ] && [ "$queued" -eq 0 ] && break
			[ "$(date +%s)" -ge "$deadline" ] && { waited="gave up after ${WAIT} s"; break; }
			sleep 0.2
		done
		received=$(grep -c ' 200 /hook$' "$ACCESS" || true)
		last=$(awk '$3 == "/hook" {print $1}' "$ACCESS" | sort -n | tail -1)
		read -r ok failed timedout <<<"$(psql_ -F ' ' -c "SELECT count(*) FILTER (WHERE status_code = 200 AND error_msg IS NULL),
		         count(*) FILTER (WHERE error_msg IS NOT NULL OR timed_out OR status_code IS DISTINCT FROM 200),
		         count(*) FILTER (WHERE timed_out) FROM net._http_response")"
		missing=$(( n - ok - failed ))
		[ "$missing" -lt 0 ] && missing=0
		rate=$(awk -v r="$received" -v t0="$t0" -v last="${last:-0}" 'BEGIN { if (r > 0 && last > t0) printf "%d", r / (last - t0); else print 0 }')
		span=$(awk -v t0="$t0" -v last="${last:-0}" 'BEGIN { if (last > t0) printf "%.2f", last - t0; else print "-" }')
		echo "batch $batch, queued $n: nginx received $received (last ${span} s after the commit), ${rate}/s; pg_net: $ok ok, $failed failed ($timedout timed out), $missing without a response ($waited); worker: at most $maxfd open files; nginx accepted $(( $(accepted) - a0 )) connections"
		psql_ -c "SELECT '         ' || count(*) || ' x ' || coalesce(error_msg, 'status ' || status_code) FROM net._http_response
		          WHERE error_msg IS NOT NULL OR timed_out OR status_code IS DISTINCT FROM 200 GROUP BY error_msg, status_code ORDER BY count(*) DESC LIMIT 3"
		errs=$(grep -c -v 'signal process started' "$DIR/nginx/error.log" 2>/dev/null || true)
		[ "${errs:-0}" -gt 0 ] && { echo "         nginx error.log:"; grep -v 'signal process started' "$DIR/nginx/error.log" | sed 's/^.*\] //' | sort | uniq -c | sort -rn | head -3 | sed 's/^/           /'; : >"$DIR/nginx/error.log"; }
		emfile=$(tail -n +"$((log0 + 1))" "$DIR/server.log" | grep -c -i 'too many open files' || true)
		[ "$emfile" -gt 0 ] && tail -n +"$((log0 + 1))" "$DIR/server.log" | grep -i 'too many open files' | tail -1 | sed "s/^/         server.log ($emfile such lines): /"
		echo "pg_net/batch=$batch $n $received $rate $failed $missing" >>"$RESULTS"
		# the queue may still hold requests after a give-up: empty it before the next N
		psql_ -c "DELETE FROM net.http_request_queue" >/dev/null
	done
done

if [ "$OUTBOX" = 1 ]; then
	log "smartetl's delivery path (test/bench/outbox_bench.sh) with the same N"
	SMARTETL_BENCH_PORT= SMARTETL_BENCH_NO_BUILD=1 bash test/bench/outbox_bench.sh --queued "$QUEUED" | tee "$DIR/outbox.out"
	# queued N: S sent, first F s after the commit, last L s; R/s end to end, ...
	sed -n 's/^queued \([0-9]*\): \([0-9]*\) sent, .* last [0-9.]* s; \([0-9]*\)\/s end to end.*/smartetl\/outbox \1 \2 \3/p' "$DIR/outbox.out" |
		while read -r who n sent rate; do echo "$who $n $sent $rate 0 $((n - sent))"; done >>"$RESULTS"
fi

log "side by side: requests/s from the commit to the last one received"
sort -k2,2n -k1,1 "$RESULTS" | awk '
	BEGIN { printf "| %-20s | %8s | %9s | %10s | %6s | %10s |\n|---|---:|---:|---:|---:|---:|\n", "sender", "queued", "delivered", "per second", "failed", "not done *" }
	{ printf "| %-20s | %8s | %9s | %10s | %6s | %10s |\n", $1, $2, $3, $4, $5, $6 }'
echo "* not answered when the wait (--wait $WAIT s) ended; per second counts what was delivered by then"
