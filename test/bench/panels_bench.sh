#!/usr/bin/env bash
# test/bench/panels_bench.sh — every Grafana panel query and the Prometheus
# metrics query at scale (measures and prints, asserts nothing).
#
# Loads a year of runs (--runs N over --pipelines P, default 10,000,000 over
# 1,000; generated as test/bench/kpi_bench.sh does: 3 % failed, log-normal
# durations) with smartetl.ingest_file, in --chunks files in time order (as
# history would arrive; rollups, streaks and anomaly scores are kept during
# the load), VACUUM ANALYZEs, then times as smartetl_reader (the role Grafana
# and the exporter are meant to use), as the median of --rounds runs:
#   * every query of grafana/dashboards/smartetl.json as Grafana sends it
#     over the dashboard's default range (now-7d .. now, $__interval auto for
#     1,000 points; the template variable at All and at one pipeline),
#     expanded by test/bench/panel_queries.py;
#   * the query of prometheus/queries.yaml (smartetl.metrics).
# Prints the load time and a table: query, median ms, PASS (<= --limit ms,
# default 200) or OVER.  A query over 60 s is cancelled (shown as timeout).
#
# The generated CSV files are kept in --data DIR (default
# /tmp/smartetl-panels-bench) and reused when they exist for the same N and
# P (their times are relative to when they were made).
#
# Usage (as root): test/bench/panels_bench.sh [--runs N] [--pipelines P]
#          [--rounds R] [--chunks C] [--limit MS] [--data DIR]
# Own throwaway cluster in /tmp/panelsbench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54347); removed on exit.
set -euo pipefail

RUNS=10000000
PIPELINES=1000
ROUNDS=3
CHUNKS=10
LIMIT=200
DATA=/tmp/smartetl-panels-bench
while [ $# -gt 0 ]; do
	case "$1" in
		--runs) RUNS=$2; shift 2 ;;
		--pipelines) PIPELINES=$2; shift 2 ;;
		--rounds) ROUNDS=$2; shift 2 ;;
		--chunks) CHUNKS=$2; shift 2 ;;
		--limit) LIMIT=$2; shift 2 ;;
		--data) DATA=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source scripts/lib.sh
DIR=/tmp/panelsbench.$$
PORT=${SMARTETL_BENCH_PORT:-54347}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
trap 'exit 143' TERM INT  # a timeout still stops the cluster (EXIT trap)
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"

SET_DIR=$DATA/runs-$RUNS-$PIPELINES-$CHUNKS
mkdir -p "$SET_DIR" && chown postgres "$SET_DIR"
if [ ! -f "$SET_DIR/done" ]; then
	log "generating $RUNS runs of $PIPELINES pipelines over 365 days in $CHUNKS files ($SET_DIR)"
	for c in $(seq 0 $((CHUNKS - 1))); do
		psql -X -q -v runs="$RUNS" -v pipelines="$PIPELINES" -v chunks="$CHUNKS" -v c="$c" \
			-v file="$SET_DIR/runs-$c.csv" <<'SQL'
SELECT setseed(0.5 + :c / 100.0);
COPY (
  SELECT 'p' || (g % :pipelines) AS job, g AS run_id,
         now() - interval '365 days' + (g::float8 / :runs) * interval '365 days' AS start,
         round((30 + 10 * (g % 17)) * exp(0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::int AS duration,
         CASE WHEN random() < 0.03 THEN 'failed' ELSE 'success' END AS status,
         (1000 * random())::int AS rows
  FROM generate_series(:c::bigint * :runs / :chunks + 1, (:c + 1)::bigint * :runs / :chunks) g) TO :'file' WITH (FORMAT csv, HEADER);
SQL
	done
	touch "$SET_DIR/done"
fi

log "loading: ingest_file of $CHUNKS files in time order, then VACUUM ANALYZE"
t0=$(date +%s.%N)
for c in $(seq 0 $((CHUNKS - 1))); do
	psql -X -q -At -c "SELECT 'chunk $c: ' || inserted || ' runs' FROM smartetl.ingest_file('$SET_DIR/runs-$c.csv', 'csv', '{\"duration_unit\": \"s\"}')"
done
t1=$(date +%s.%N)
psql -X -q -c "VACUUM ANALYZE"
t2=$(date +%s.%N)
psql -X -At <<SQL
SELECT format('load: %s s ingest_file + %s s VACUUM ANALYZE; %s runs, %s pipelines, %s hourly / %s daily / %s monthly rollup rows, %s failure streaks',
              round(($t1 - $t0)::numeric, 1), round(($t2 - $t1)::numeric, 1),
              (SELECT count(*) FROM smartetl.run), (SELECT count(*) FROM smartetl.pipeline),
              (SELECT count(*) FROM smartetl.kpi_hourly), (SELECT count(*) FROM smartetl.kpi_daily),
              (SELECT count(*) FROM smartetl.kpi_monthly), (SELECT count(*) FROM smartetl.failure_streak));
SQL

log "the queries (dashboard default range, as smartetl_reader)"
python3 test/bench/panel_queries.py > "$DIR/queries.jsonl"
python3 - "$DIR/queries.jsonl" prometheus/queries.yaml > "$DIR/queries.sql" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
text = open(sys.argv[2]).read()
for m in re.finditer(r"^(\w+):\n  query: \|\n((?:    .*\n)+)", text, re.M):
    rows.append({"label": "prometheus %s (queries.yaml)" % m.group(1), "sql": m.group(2)})
print("CREATE TEMP TABLE q (n int, label text, sql text);")
for i, r in enumerate(rows):
    tag = "$q%d$" % i
    print("INSERT INTO q VALUES (%d, %s%s%s, %s%s%s);" % (i, tag, r["label"], tag, tag, r["sql"], tag))
PY
psql -X -q -v rounds="$ROUNDS" -v limit="$LIMIT" <<SQL
\i $DIR/queries.sql
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
EXCEPTION WHEN query_canceled THEN
    RETURN 'infinity';
END \$\$;
GRANT SELECT ON q TO smartetl_reader;
CREATE TEMP TABLE t (n int, r int, ms float8);
GRANT INSERT ON t TO smartetl_reader;
SET ROLE smartetl_reader;
SET statement_timeout = '60s';
SELECT format('INSERT INTO t SELECT %s, %s, pg_temp.ms(sql) FROM q WHERE n = %s', q.n, r, q.n)
FROM q, generate_series(1, :rounds) r ORDER BY r, q.n \gexec
RESET statement_timeout;
RESET ROLE;
\pset footer off
SELECT q.label AS query,
       CASE WHEN max(t.ms) = 'infinity' THEN 'timeout'
            ELSE round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms)::numeric, 1)::text END AS median_ms,
       CASE WHEN percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms) <= :limit THEN 'PASS'
            ELSE 'OVER ' || :limit || ' ms' END AS mark
FROM q JOIN t USING (n) GROUP BY q.n, q.label ORDER BY q.n;
SELECT count(*) FILTER (WHERE m <= :limit) || ' of ' || count(*) || ' queries within ' || :limit || ' ms' AS summary
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS m FROM t GROUP BY n) s;
SQL
