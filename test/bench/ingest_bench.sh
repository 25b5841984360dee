#!/usr/bin/env bash
# test/bench/ingest_bench.sh — ingestion throughput benchmark (not a test:
# it asserts nothing about speed, it measures and prints).
#
# Compares smartetl.ingest_file() with a plain COPY of the same file into a
# one-column table, for
#   * runs.csv : N pipeline runs (csv format), first ingest into empty tables
#   * runs.csv again on top of the first ingest (idempotent path: all unchanged)
#   * app.log  : N physical log lines (logline format, ~1% multi-line traces)
# Rounds are interleaved (per round: csv COPY, parse only, smartetl,
# re-ingest; log COPY, parse only, smartetl) so a slow phase of the machine
# hits both sides.  "Parse only" uses the dry_run option when the build has
# it; store time is then full ingest minus parse only.  Times are taken
# server-side with clock_timestamp() around one EXECUTE, plus the backend's
# own CPU time from /proc/self/stat (wall >> cpu means the backend waited:
# I/O or another process on the CPU).
#
# Usage (as root, from anywhere):
#   test/bench/ingest_bench.sh [--rows N] [--rounds R] [--profile] [--keep] [--set G=V]...
#     --rows N     data rows of runs.csv and physical lines of app.log (default 1000000)
#     --rounds R   timed rounds (default 3); medians are reported
#     --profile    afterwards, one extra (untimed) ingest of each file with
#                  auto_explain on the nested store statements, and a perf
#                  profile of the backend when perf is installed
#     --keep       leave the cluster directory in place (it is stopped anyway)
#     --set G=V    set a server parameter in the benchmark cluster (repeatable),
#                  e.g. --set shared_buffers=1GB; printed with the other settings
#
# Own throwaway cluster: /tmp/pgbench.<pid>, port 54340 (never /tmp/pgdev or
# any other cluster); stopped and removed on exit.
set -euo pipefail

ROWS=1000000
ROUNDS=3
PROFILE=0
KEEP=0
PORT=54340
SETTINGS=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case "$1" in
		--rows) ROWS=${2:?--rows needs a number}; shift 2 ;;
		--rows=*) ROWS=${1#*=}; shift ;;
		--rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
		--rounds=*) ROUNDS=${1#*=}; shift ;;
		--profile) PROFILE=1; shift ;;
		--keep) KEEP=1; shift ;;
		--set) SETTINGS+=("${2:?--set needs NAME=VALUE}"); shift 2 ;;
		--set=*) SETTINGS+=("${1#*=}"); shift ;;
		-h|--help) usage; exit 0 ;;
		*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
case "$ROWS" in ''|*[!0-9]*) echo "--rows must be a positive integer" >&2; exit 2 ;; esac
case "$ROUNDS" in ''|*[!0-9]*) echo "--rounds must be a positive integer" >&2; exit 2 ;; esac
[ "$ROWS" -ge 1000 ] || { echo "--rows must be at least 1000" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] || { echo "--rounds must be at least 1" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
# shellcheck source=../../scripts/lib.sh
source scripts/lib.sh

DIR=/tmp/pgbench.$$
RUNS_CSV=$DIR/runs.csv
APP_LOG=$DIR/app.log
LOG_FORMAT='<Date> <Time> <Level>  \[<Thread>\] <Component>: <Content>'
# the same string as a JSON value (backslashes doubled)
LOG_OPTIONS=$(printf '{"log_format": "%s"}' "${LOG_FORMAT//\\/\\\\}")
PERF_PID=""

cleanup() {
	local rc=$?
	if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
	fi
	cluster_stop "$DIR"
	if [ "$KEEP" = 1 ]; then
		echo "cluster directory kept: $DIR" >&2
	else
		rm -rf "$DIR"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
elapsed() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

background_load() {
	printf 'loadavg: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'busy niced/background processes (NI > 0 or >20%% CPU, excluding this benchmark):\n'
	ps -eo pid,ni,pcpu,etime,comm --sort=-pcpu | awk -v self=$$ \
		'NR > 1 && $1 != self && ($2 > 0 || $3 > 20) && $5 != "ps" && $5 != "awk" \
		 { printf "  pid %s ni %s cpu %s%% up %s %s\n", $1, $2, $3, $4, $5; n++ }
		 END { if (!n) print "  (none)" }'
}

# ---------------------------------------------------------------------------
log "benchmark: smartetl.ingest_file vs COPY, rows=$ROWS rounds=$ROUNDS"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:    $(uname -srm), $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ {print $2}') GB RAM"
source_state() {	# the commit, and a fingerprint of uncommitted changes under src/
	local head diff
	head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
	diff=$(git -C "$REPO" diff HEAD -- src Makefile 2>/dev/null | sha1sum | cut -c1-10)
	if git -C "$REPO" diff --quiet HEAD -- src Makefile 2>/dev/null; then
		echo "$head (clean)"
	else
		echo "$head + uncommitted changes in $(git -C "$REPO" diff --name-only HEAD -- src Makefile | tr '\n' ' ')(diff sha1 $diff)"
	fi
}
background_load
echo "note: the machine has $(nproc) cores; a fuzzer may be running under nice in the"
echo "      background, which inflates wall times (compare wall with backend CPU below)."

# Build from a private copy of the working tree (Makefile, control file,
# src/), from scratch: an incremental build in a tree whose headers changed
# can link objects compiled against different struct layouts (PGXS tracks
# no header dependencies by itself), and the copy keeps this benchmark from
# racing other builds in a shared tree.  build_install still installs into
# the system PostgreSQL directories, as every other script here does.
echo "source:  $(source_state)"
mkdir -p "$DIR/build"
tar -C "$REPO" --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - Makefile smartetl.control src |
	tar -C "$DIR/build" -xf -
echo "snapshot of src/: sha1 $(cd "$DIR/build" && find src Makefile smartetl.control -type f | sort | xargs sha1sum | sha1sum | cut -c1-10)"
(cd "$DIR/build" && build_install)
echo "installed: $($PG_CONFIG --pkglibdir)/smartetl.so sha1 $(sha1sum "$($PG_CONFIG --pkglibdir)/smartetl.so" | cut -c1-10)"
log "starting cluster $DIR on port $PORT"
cluster_start "$DIR" "$PORT"
psql_ -c "ALTER SYSTEM SET autovacuum = off" >/dev/null
for setting in ${SETTINGS[@]+"${SETTINGS[@]}"}; do
	case "$setting" in *=*) ;; *) echo "--set wants NAME=VALUE, got: $setting" >&2; exit 2 ;; esac
	psql_ -v name="${setting%%=*}" -v value="${setting#*=}" <<'SQL' >/dev/null
SELECT format('ALTER SYSTEM SET %I = %L', :'name', :'value') \gexec
SQL
done
# restart so that every setting, including restart-only ones, is in effect
cluster_stop "$DIR"
cluster_start "$DIR" "$PORT"
psql_ -c "SELECT version()"
psql_ -F ' = ' -c "SELECT name, current_setting(name) FROM pg_settings
	WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'fsync', 'synchronous_commit',
	               'full_page_writes', 'wal_level', 'max_wal_size', 'autovacuum', 'jit', 'TimeZone')
	   OR source = 'configuration file' AND sourcefile LIKE '%postgresql.auto.conf'
	ORDER BY name" | sed 's/^/  /'

# ---------------------------------------------------------------------------
log "setting up the database"
psql_ -v clk="$(getconf CLK_TCK)" <<'SQL'
CREATE EXTENSION smartetl;
CREATE SCHEMA bench;
-- baseline target: one text column, no index
CREATE TABLE bench.raw (line text);
CREATE TABLE bench.result (
    round       int,
    input       text,
    method      text,
    lines       bigint,
    seconds     float8,
    cpu_seconds float8,
    outcome     text,
    at          timestamptz
);
-- user+system CPU seconds of this backend so far (fields 14, 15 of /proc/self/stat)
SELECT format($f$
CREATE FUNCTION bench.cpu_seconds() RETURNS float8 LANGUAGE sql VOLATILE AS $b$
    SELECT (f[12]::bigint + f[13]::bigint) / %s::float8
    FROM (SELECT string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f) s
$b$ $f$, :'clk') \gexec
-- Run one statement and record its server-side wall and CPU time.
CREATE FUNCTION bench.timed(p_round int, p_input text, p_method text, p_lines bigint, p_sql text)
RETURNS SETOF bench.result LANGUAGE plpgsql AS $$
DECLARE
    t0  timestamptz;
    c0  float8;
    res text;
    n   bigint;
    r   bench.result;
BEGIN
    c0 := bench.cpu_seconds();
    t0 := clock_timestamp();
    IF p_sql ~* '^\s*copy' THEN
        EXECUTE p_sql;
        GET DIAGNOSTICS n = ROW_COUNT;
        res := n || ' lines copied';
    ELSE
        EXECUTE p_sql INTO res;
    END IF;
    r := ROW(p_round, p_input, p_method, p_lines,
             extract(epoch FROM clock_timestamp() - t0)::float8,
             bench.cpu_seconds() - c0, res, clock_timestamp());
    INSERT INTO bench.result SELECT r.*;
    RETURN NEXT r;
END $$;
SQL
psql_ -c "SELECT bench.cpu_seconds()" >/dev/null	# /proc/self/stat is readable
# Parse-only timing needs the option "dry_run": "parse" (parse and validate,
# store nothing); older builds reject it.
if psql_ -c "SELECT smartetl.ingest('csv', E'pipeline,status,started_at\\nx,success,2025-01-01', '{\"dry_run\": \"parse\"}')" \
	>/dev/null 2>&1; then
	DRY_RUN=1
	echo "dry_run option supported: parse-only time is measured too (store = full - parse only)"
else
	DRY_RUN=0
	echo "dry_run option not supported by this build: no parse-only timing"
fi

# ---------------------------------------------------------------------------
log "generating $ROWS csv runs into $RUNS_CSV"
t0=$(date +%s.%N)
psql_ -v rows="$ROWS" -v file="$RUNS_CSV" >/dev/null <<'SQL'
SELECT setseed(0.2025);
CREATE TEMP TABLE pipelines AS
SELECT p, format('%s_%s_%s',
                 (ARRAY['sales', 'finance', 'marketing', 'ops', 'hr', 'product'])[p % 6 + 1],
                 (ARRAY['orders', 'customers', 'invoices', 'events', 'sessions', 'payments',
                        'inventory', 'shipments', 'refunds', 'campaigns'])[(p / 6) % 10 + 1],
                 (ARRAY['daily', 'hourly', 'load', 'sync', 'export'])[(p / 60) % 5 + 1]) AS name
FROM generate_series(0, 299) p;
CREATE TEMP TABLE runs AS
SELECT i,
       (SELECT array_agg(name ORDER BY p) FROM pipelines)[1 + (hashint4(i) & 2147483647) % 300] AS pipeline,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '2.6 s'
           + floor(random() * 2000) * interval '1 ms' AS started,
       random() AS r_status,
       random() AS r_len,
       random() AS r_val,
       floor(random() * 5)::int AS err
FROM generate_series(1, :rows) i;
COPY (
    SELECT pipeline,
           'run-' || lpad(i::text, 9, '0') AS run_id,
           to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
           CASE WHEN status <> 'running' THEN
               to_char((started + (1 + 7200 * r_len ^ 3) * interval '1 s') AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END AS ended_at,
           status,
           CASE status WHEN 'success' THEN floor(5e6 * r_val ^ 3)::bigint
                       WHEN 'failed' THEN 0 WHEN 'skipped' THEN 0 END AS rows_written,
           'etl-worker-' || lpad(((hashint4(i + 7) & 2147483647) % 24)::text, 2, '0')
               || '.dc1.internal' AS host,
           CASE WHEN status = 'failed' THEN
               CASE err
                   WHEN 0 THEN 'psycopg2.OperationalError: could not connect to server, connection timed out after 30 s'
                   WHEN 1 THEN format('KeyError: ''customer_id'', while processing batch %s of 64', i % 64)
                   WHEN 2 THEN 'HTTP 503 from https://api.example.com/v2/export, retries exhausted (5/5)'
                   WHEN 3 THEN format('relation "staging.orders_%s" does not exist, LINE 1: INSERT INTO "staging"...', i % 97)
                   ELSE format('FileNotFoundError: [Errno 2] No such file or directory: ''C:\data\in\batch_%s.csv'', aborting', i % 1000)
               END END AS error_message
    FROM (SELECT *, CASE WHEN r_status < 0.90 THEN 'success'
                         WHEN r_status < 0.93 THEN 'failed'
                         WHEN r_status < 0.96 THEN 'skipped'
                         WHEN r_status < 0.98 THEN 'cancelled'
                         ELSE 'running' END AS status
          FROM runs) r
    ORDER BY i
) TO :'file' WITH (FORMAT csv, HEADER);
SQL
echo "  $(wc -l <"$RUNS_CSV") lines, $(du -h "$RUNS_CSV" | cut -f1), $(grep -c '^[^,]*,[^,]*,[^,]*,[^,]*,failed,' "$RUNS_CSV") failed, $(grep -c ',"[^"]*,' "$RUNS_CSV") with a quoted comma field, in $(elapsed "$t0") s"
head -3 "$RUNS_CSV" | sed 's/^/  | /'
grep -m2 ',failed,' "$RUNS_CSV" | sed 's/^/  | /'

log "generating $ROWS log lines into $APP_LOG"
t0=$(date +%s.%N)
psql_ -v rows="$ROWS" -v file="$APP_LOG" >/dev/null <<'SQL'
SELECT setseed(0.7);
-- one row per event; 1% are ERROR events followed by a 4-9 line stack trace
CREATE TEMP TABLE events AS
SELECT e,
       timestamp '2025-01-01 00:00:00' + e * interval '4.7 s' + floor(random() * 1000) * interval '1 ms' AS ts,
       random() AS r_kind,
       floor(random() * 100000)::int AS n,
       floor(random() * 5000)::int AS ms,
       (ARRAY['orders', 'customers', 'invoices', 'events', 'sessions', 'payments'])[1 + floor(random() * 6)::int] AS ent,
       CASE WHEN random() < 0.9 THEN 'worker-' || (1 + floor(random() * 16)::int)
            ELSE (ARRAY['main', 'scheduler', 'http-pool-1'])[1 + floor(random() * 3)::int] END AS thread,
       4 + floor(random() * 6)::int AS trace_len
FROM generate_series(1, :rows) e;
COPY (
    SELECT line FROM (
        SELECT e, 0 AS j,
               to_char(ts, 'YYYY-MM-DD HH24:MI:SS,MS') || ' ' || rpad(level, 5) || ' [' || thread || '] '
               || component || ': ' || content AS line
        FROM (
            SELECT e, ts, thread,
                   CASE WHEN r_kind < 0.40 THEN 'INFO' WHEN r_kind < 0.55 THEN 'INFO'
                        WHEN r_kind < 0.80 THEN 'DEBUG' WHEN r_kind < 0.90 THEN 'INFO'
                        WHEN r_kind < 0.99 THEN 'WARN' ELSE 'ERROR' END AS level,
                   CASE WHEN r_kind < 0.40 THEN 'etl.Loader' WHEN r_kind < 0.55 THEN 'etl.Scheduler'
                        WHEN r_kind < 0.80 THEN 'etl.http.Client' WHEN r_kind < 0.90 THEN 'etl.Writer'
                        WHEN r_kind < 0.98 THEN 'etl.Retry' WHEN r_kind < 0.99 THEN 'etl.Loader'
                        ELSE 'etl.Worker' END AS component,
                   CASE WHEN r_kind < 0.40 THEN format('loaded %s rows from /data/%s/part-%s.csv in %s ms', n, ent, lpad((n % 512)::text, 5, '0'), ms)
                        WHEN r_kind < 0.55 THEN format('task sales_%s_daily started run run-%s attempt %s', ent, lpad(n::text, 9, '0'), 1 + n % 3)
                        WHEN r_kind < 0.80 THEN format('GET https://api.example.com/v1/%s?page=%s -> 200 in %s ms', ent, n % 400, ms)
                        WHEN r_kind < 0.90 THEN format('committed batch %s to warehouse.%s (%s rows, %s bytes)', n, ent, ms, n * 37)
                        WHEN r_kind < 0.98 THEN format('sales_%s_daily retrying after ConnectionResetError (attempt %s of 5), backoff %s s', ent, 2 + n % 4, 1 << (n % 5))
                        WHEN r_kind < 0.99 THEN format('skipped %s malformed rows in C:\data\in\%s_%s.csv', 1 + n % 20, ent, n)
                        ELSE format('task sales_%s_daily failed: ValueError: invalid literal for int() with base 10: ''%s''', ent, n) END AS content
            FROM events
        ) ev
        UNION ALL
        SELECT e, j, (ARRAY[
                   'Traceback (most recent call last):',
                   '  File "/opt/etl/etl/worker.py", line 212, in run',
                   '    rows = self.loader.load(task.path)',
                   '  File "/opt/etl/etl/loader.py", line 88, in load',
                   '    return int(value)',
                   'ValueError: invalid literal for int() with base 10: ''' || n || '''',
                   '',
                   'During handling of the above exception, another exception occurred:',
                   E'\tat etl.Worker.run(Worker.java:212) ~ C:\\opt\\etl\\lib\\etl.jar'])[j]
        FROM events, generate_series(1, trace_len) j
        WHERE r_kind >= 0.99 AND j <> 7
    ) l
    ORDER BY e, j
    LIMIT :rows
) TO :'file' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02');
SQL
echo "  $(wc -l <"$APP_LOG") lines, $(du -h "$APP_LOG" | cut -f1), $(grep -c ' ERROR \[' "$APP_LOG") ERROR events, $(grep -vc '^20[0-9][0-9]-' "$APP_LOG") continuation lines, $(grep -c '\\' "$APP_LOG") lines with a backslash, in $(elapsed "$t0") s"
head -3 "$APP_LOG" | sed 's/^/  | /'
grep -m1 -A5 ' ERROR \[' "$APP_LOG" | sed 's/^/  | /'

# ---------------------------------------------------------------------------
# Reset to empty smartetl tables and an empty baseline table (untimed).
reset_all() {
	psql_ >/dev/null <<'SQL'
TRUNCATE bench.raw;
TRUNCATE smartetl.run, smartetl.pipeline, smartetl.template_text, smartetl.template_seen, smartetl.ingest_reject,
         smartetl.log_event RESTART IDENTITY CASCADE;
SELECT smartetl.drop_log_partitions('infinity');
CHECKPOINT;
SQL
}

# timed ROUND INPUT METHOD SQL: run SQL once, record and print its times
timed() {
	psql_ -F $'\t' -v round="$1" -v input="$2" -v method="$3" -v lines="$ROWS" -v sql="$4" <<'SQL' |
SELECT round, input, method, lines, seconds, cpu_seconds, outcome
FROM bench.timed(:round, :'input', :'method', :lines, :'sql');
SQL
		awk -F '\t' '{ printf "  round %s  %-5s %-20s %8.3f s wall %8.3f s cpu %10.0f lines/s  %s\n",
		                        $1, $2, $3, $5, $6, $4 / $5, $7 }'
}

# COPY lines verbatim: csv mode never interprets backslashes, and \x01 / \x02
# (delimiter / quote) occur in neither file, so each line is one value.
copy_sql() {
	printf "COPY bench.raw (line) FROM '%s' WITH (FORMAT csv, DELIMITER E'\\\\x01', QUOTE E'\\\\x02')" "$1"
}

log "timed rounds (server-side wall time of one statement; cpu = that backend's user+sys)"
for round in $(seq 1 "$ROUNDS"); do
	echo "-- round $round/$ROUNDS  ($(cut -d' ' -f1-3 /proc/loadavg))"
	reset_all
	timed "$round" csv "COPY" "$(copy_sql "$RUNS_CSV")"
	if [ "$DRY_RUN" = 1 ]; then
		reset_all
		timed "$round" csv "smartetl parse only" "SELECT smartetl.ingest_file('$RUNS_CSV', 'csv', '{\"dry_run\": \"parse\"}')::text"
	fi
	reset_all
	timed "$round" csv "smartetl" "SELECT smartetl.ingest_file('$RUNS_CSV', 'csv', '{}')::text"
	# re-ingest the same file on top: every row is a conflict, merged, unchanged.
	# In practice a re-ingest comes after autovacuum has seen the table; do
	# that here (untimed) so hint bits and statistics are in place.
	psql_ -c "VACUUM ANALYZE smartetl.run, smartetl.pipeline" -c "CHECKPOINT"
	timed "$round" csv "smartetl re-ingest" "SELECT smartetl.ingest_file('$RUNS_CSV', 'csv', '{}')::text"
	reset_all
	timed "$round" log "COPY" "$(copy_sql "$APP_LOG")"
	if [ "$DRY_RUN" = 1 ]; then
		reset_all
		timed "$round" log "smartetl parse only" "SELECT smartetl.ingest_file('$APP_LOG', 'logline', '${LOG_OPTIONS%\}}, \"dry_run\": \"parse\"}')::text"
	fi
	reset_all
	timed "$round" log "smartetl" "SELECT smartetl.ingest_file('$APP_LOG', 'logline', '$LOG_OPTIONS')::text"
done

# ---------------------------------------------------------------------------
log "summary (medians over $ROUNDS rounds; lines/s = $ROWS input lines / median wall seconds)"
psql_ -P format=aligned -P tuples_only=off -P footer=off <<'SQL'
WITH m AS (
    SELECT input, method, max(lines) AS lines,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS wall,
           min(seconds) AS best, max(seconds) AS worst,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_seconds) AS cpu,
           min(outcome) AS outcome
    FROM bench.result GROUP BY input, method
), per_round AS (
    -- ratio of each round's smartetl rate to the same round's COPY rate
    SELECT s.input, s.method, c.seconds / s.seconds AS ratio
    FROM bench.result s JOIN bench.result c
      ON c.round = s.round AND c.input = s.input AND c.method = 'COPY'
)
SELECT m.input AS "input", m.method AS "method", m.lines AS "lines",
       round(m.wall::numeric, 3) AS "median s",
       round(m.best::numeric, 3) || ' / ' || round(m.worst::numeric, 3) AS "best / worst s",
       round(m.cpu::numeric, 2) AS "cpu s",
       round((m.lines / m.wall)::numeric) AS "lines/s",
       round((c.wall / m.wall)::numeric, 3) AS "ratio vs COPY",
       (SELECT string_agg(round(ratio::numeric, 3)::text, ' ' ORDER BY ratio)
        FROM per_round p WHERE p.input = m.input AND p.method = m.method) AS "per-round ratios",
       m.outcome AS "result (ins,upd,unch,rej)"
FROM m JOIN m c ON c.input = m.input AND c.method = 'COPY'
ORDER BY m.input, m.method <> 'COPY', m.method <> 'smartetl', m.method;
SQL
if [ "$DRY_RUN" = 1 ]; then
	echo
	echo "phases (medians): parse = the dry_run \"parse\" time; store = full ingest - parse; by wall time and,"
	echo "less sensitive to other processes on the CPUs, by the backend's CPU time"
	psql_ -P format=aligned -P tuples_only=off -P footer=off <<'SQL'
WITH m AS (
    SELECT input, method, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS wall,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_seconds) AS cpu
    FROM bench.result GROUP BY input, method
)
SELECT f.input AS "input", f.method AS "ingest",
       round(f.wall::numeric, 3) AS "total s",
       round(p.wall::numeric, 3) AS "parse s",
       round((f.wall - p.wall)::numeric, 3) AS "store s",
       round((100 * p.wall / f.wall)::numeric) || ' / ' || round((100 * (f.wall - p.wall) / f.wall)::numeric) AS "parse / store %",
       round(f.cpu::numeric, 2) AS "total cpu s",
       round(p.cpu::numeric, 2) AS "parse cpu s",
       round((f.cpu - p.cpu)::numeric, 2) AS "store cpu s",
       round((100 * p.cpu / f.cpu)::numeric) || ' / ' || round((100 * (f.cpu - p.cpu) / f.cpu)::numeric) AS "cpu parse / store %"
FROM m f JOIN m p ON p.input = f.input AND p.method = 'smartetl parse only'
WHERE f.method IN ('smartetl', 'smartetl re-ingest')
ORDER BY f.input, f.method;
SQL
fi
echo
echo "csv target: smartetl/COPY ratio >= 0.5"
background_load

# ---------------------------------------------------------------------------
# Where the time goes: nested statement times from auto_explain, parse time
# as the remainder, and a perf profile of the backend.
profile_one() {	# NAME FORMAT FILE OPTIONS [prepare]
	local name=$1 format=$2 file=$3 options=$4 prepare=${5:-reset}
	local pidfile=$DIR/$name.pid perfdata=$DIR/$name.perf
	echo "-- profile: $name"
	if [ "$prepare" = reset ]; then reset_all; fi
	: >"$pidfile"; chmod 666 "$pidfile"
	local logpos
	logpos=$(wc -c <"$DIR/server.log")
	psql_ -v file="$file" -v format="$format" -v options="$options" -v pidfile="$pidfile" >"$DIR/$name.out" <<'SQL' &
SELECT pg_backend_pid() \g :pidfile
SELECT pg_sleep(1);
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_triggers = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = warning;
\timing on
SELECT * FROM smartetl.ingest_file(:'file', :'format', :'options');
SQL
	local psql_pid=$!
	while [ ! -s "$pidfile" ]; do sleep 0.1; done
	local backend
	backend=$(tr -dc '0-9' <"$pidfile")
	if command -v perf >/dev/null; then
		perf record -q -F 99 --call-graph dwarf,16384 -p "$backend" -o "$perfdata" >/dev/null 2>&1 &
		PERF_PID=$!
	fi
	wait "$psql_pid"
	if [ -n "$PERF_PID" ]; then
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
		PERF_PID=""
	fi
	{ grep -E '^Time:|^[0-9]' "$DIR/$name.out" || true; } | sed 's/^/  /'
	# auto_explain output of this backend: one "duration: ... plan:" per statement
	tail -c +"$((logpos + 1))" "$DIR/server.log" | { grep -v 'pg_sleep\|pg_backend_pid' || true; } >"$DIR/$name.plans"
	# One block per statement ("duration: X ms  plan:" then "Query Text: ...").
	# Statements issued by store.c (those reading the batch relations
	# smartetl_batch_*, and a few more) are summed; statements run inside them
	# (trigger bodies, plpgsql) are listed as nested and not added again.
	awk '
		function flush() {
			if (q == "") return
			if (q ~ /smartetl\.ingest_file\(/) { top = d; kind = "total" }
			else if (q ~ /smartetl_batch_/ || q ~ /^(SELECT count\(\*\) FROM \(SELECT 1 FROM smartetl\.run|UPDATE smartetl\.run c|SELECT smartetl\._log_partitions_ensure|SELECT smartetl\._pipeline_ensure)/) {
				store += d; kind = "store" }
			else kind = "  nested"
			if (kind != "total") {
				printf "  %-9s %10.1f ms  %s\n", kind, d, substr(q, 1, 110)
				if (trig != "") printf "%s", trig
			}
			q = ""
		}
		/LOG:  duration: [0-9.]+ ms  plan:/ {
			flush(); match($0, /duration: [0-9.]+/); d = substr($0, RSTART + 10, RLENGTH - 10) + 0
			getline; q = $0; sub(/^[ \t]*Query Text: /, "", q); gsub(/[ \t]+/, " ", q); trig = ""; next }
		/LOG:/ { flush(); next }
		q != "" && /(Trigger .*calls=|^[ \t]*(->  )?(Insert on|Update on|Hash Join|Named Tuplestore Scan|Seq Scan|Index).*actual time)/ {
			t = $0; sub(/^[ \t]+/, "", t); sub(/\(cost=[^)]*\) /, "", t); trig = trig sprintf("  %-9s %13s  | %s\n", "", "", substr(t, 1, 110)) }
		END {
			flush()
			printf "  %-9s %10.1f ms  sum of the SQL statements issued by store.c\n", "STORE SQL", store
			printf "  %-9s %10.1f ms  total - store SQL: parsing, plus store work done in C (bulk inserter)\n", "REST", top - store
			printf "  %-9s %10.1f ms  smartetl.ingest_file() statement (instrumented)\n", "TOTAL", top
		}' "$DIR/$name.plans"
	echo "  (full plans with per-node rows, buffers and trigger calls: see the artefacts directory)"
	if [ -f "$perfdata" ]; then
		perf report -i "$perfdata" --children --stdio --no-demangle --sort sym -g none \
			>"$DIR/$name.perf-children.txt" 2>/dev/null || true
		perf report -i "$perfdata" --no-children --stdio --no-demangle --sort dso,sym -g none \
			>"$DIR/$name.perf-self.txt" 2>/dev/null || true
		rm -f "$perfdata"
		echo "  perf (stack copies are cut at 16 kB, so outer frames are undercounted):"
		echo "  inclusive share of samples (children) for the main phases:"
		{ grep -E '\] (ingest_(csv|logline|store)|csv_lexer_feed|csv_attrs|ingest_add_run|value_timestamp|tuplestore_(puttuple|putvalues|gettupleslot)|note_identity|line_reader_next|pg_regexec|pg_mb2wchar_with_len|JsonbValueToJsonb|pushJsonbValue|SPI_execute(_with_args)?|ExecInsert|ExecOnConflictUpdate|ExecCheckIndexConstraints|ExecInsertIndexTuples|btinsert|_bt_doinsert|heap_insert|heap_lock_tuple|RI_FKey_check_ins|AfterTriggerEndQuery|ExecComputeStoredGenerated|ExecConstraints|ExecHashJoin|standard_ExecutorRun|ExecScan|XLogInsert|varstr_cmp|bttextcmp|csv_next_record|csv_add_record|convert_times|convert_identity|log_matcher_match|log_capture|start_event|flush_event|log_event_time|pg_wchar2mb_with_len|AllocSetReset|MemoryContextReset|BufFileRead|BufFileWrite|ReadBuffer_common|FlushBuffer|asm_exc_page_fault)$' \
			"$DIR/$name.perf-children.txt" || true; } | awk 'NR <= 45 { printf "    %7s incl %7s self  %s\n", $1, $2, $NF }'
		echo "  top self symbols:"
		{ grep -E '^ +[0-9]' "$DIR/$name.perf-self.txt" || true; } | sed -n '1,25s/^/  /p'
	fi
}

if [ "$PROFILE" = 1 ]; then
	log "profile (untimed: auto_explain row counting and perf sampling add some overhead)"
	profile_one csv csv "$RUNS_CSV" '{}'
	psql_ -c "VACUUM ANALYZE smartetl.run, smartetl.pipeline" -c "CHECKPOINT"
	profile_one csv_reingest csv "$RUNS_CSV" '{}' keep
	profile_one log logline "$APP_LOG" "$LOG_OPTIONS"
	OUT=${BENCH_OUT:-/tmp/ingest_bench_profile.$$}
	mkdir -p "$OUT"
	cp "$DIR"/*.plans "$DIR"/*.perf-*.txt "$OUT"/ 2>/dev/null || true
	echo "profile artefacts (plans, perf reports) in $OUT"
fi
