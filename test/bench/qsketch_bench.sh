#!/usr/bin/env bash
# test/bench/qsketch_bench.sh — qsketch benchmark (measures and prints, asserts nothing).
#
# 2,000,000 log-normal values in 97 groups (--values N, --groups G): per
# group p50/p95/p99 by qsketch_agg + quantiles against percentile_cont over
# the same rows, as medians of --rounds R runs in one session, and the
# worst relative error of the sketch's quantiles against percentile_cont's
# (the sketch's bound is 1 %).  Also: merging the groups' sketches
# (qsketch_merge of stored sketches, what the KPI rollups do).  Ratio =
# percentile_cont time / qsketch time (> 1: qsketch is faster).
#
# Serial unless a row says otherwise (max_parallel_workers_per_gather = 0
# for both sides).  The "floor" row times count(x) per group over the same
# scan: no aggregate can beat that, so its ratio bounds the first row's.
# The parallel row lets both sides use 2 workers: qsketch_agg has a combine
# function, percentile_cont (an ordered-set aggregate) cannot go parallel.
#
# Usage (as root): test/bench/qsketch_bench.sh [--values N] [--groups G] [--rounds R]
# Own throwaway cluster in /tmp/qsbench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54345); removed on exit.
set -euo pipefail

VALUES=2000000
GROUPS_N=97
ROUNDS=5
while [ $# -gt 0 ]; do
	case "$1" in
		--values) VALUES=$2; shift 2 ;;
		--groups) GROUPS_N=$2; shift 2 ;;
		--rounds) ROUNDS=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
source scripts/lib.sh
DIR=/tmp/qsbench.$$
PORT=${SMARTETL_BENCH_PORT:-54345}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"

log "$VALUES log-normal values in $GROUPS_N groups; medians of $ROUNDS rounds (ms)"
psql -X -q -v values="$VALUES" -v groups="$GROUPS_N" -v rounds="$ROUNDS" <<'SQL'
SELECT setseed(0.25);
CREATE TABLE v AS
SELECT g % :groups AS grp, exp(3 + 1.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS x
FROM generate_series(1, :values) g;
CREATE TABLE sk AS SELECT grp, smartetl.qsketch_agg(x) AS s FROM v GROUP BY grp;
SET max_parallel_workers_per_gather = 0;
VACUUM ANALYZE v;
VACUUM ANALYZE sk;
CREATE FUNCTION pg_temp.ms(q text, workers int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; BEGIN
  PERFORM set_config('max_parallel_workers_per_gather', workers::text, true);
  t0 := clock_timestamp(); EXECUTE q; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END $$;
CREATE TEMP TABLE bench (name text, workers int, smartetl text, baseline text);
INSERT INTO bench VALUES
 ('p50/p95/p99 per group (qsketch_agg + quantiles vs percentile_cont)', 0,
  $$SELECT count(q) FROM (SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0.5,0.95,0.99}') q FROM v GROUP BY grp) s$$,
  $$SELECT count(q) FROM (SELECT percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY x) q FROM v GROUP BY grp) s$$),
 ('floor: count(x) per group vs percentile_cont (scan + grouping alone)', 0,
  $$SELECT count(q) FROM (SELECT count(x) q FROM v GROUP BY grp) s$$,
  $$SELECT count(q) FROM (SELECT percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY x) q FROM v GROUP BY grp) s$$),
 ('p50/p95/p99 per group, 2 parallel workers allowed (percentile_cont cannot use them)', 2,
  $$SELECT count(q) FROM (SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0.5,0.95,0.99}') q FROM v GROUP BY grp) s$$,
  $$SELECT count(q) FROM (SELECT percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY x) q FROM v GROUP BY grp) s$$),
 ('merge the groups'' sketches 1000 times (qsketch_merge)', 0,
  $$SELECT count(m) FROM (SELECT smartetl.qsketch_merge(s) m FROM sk, generate_series(1, 1000) i GROUP BY i) s$$, NULL);
CREATE TEMP TABLE t AS
SELECT b.name, r, pg_temp.ms(b.smartetl, b.workers) AS s_ms,
       CASE WHEN b.baseline IS NOT NULL THEN pg_temp.ms(b.baseline, b.workers) END AS b_ms
FROM bench b, generate_series(1, :rounds) r;
\pset footer off
SELECT name, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s_ms)::numeric, 1) AS smartetl_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY b_ms)::numeric, 1) AS baseline_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY b_ms) / percentile_cont(0.5) WITHIN GROUP (ORDER BY s_ms))::numeric, 2) AS speedup
FROM t GROUP BY name ORDER BY min(r), name;
SELECT round(max(abs(q[i] / e[i] - 1))::numeric, 5) AS worst_relative_error
FROM (SELECT smartetl.quantiles(smartetl.qsketch_agg(x), '{0.5,0.95,0.99}') AS q,
             percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY x) AS e
      FROM v GROUP BY grp) s, generate_series(1, 3) i;
SQL
