#!/usr/bin/env bash
# test/bench/kpi_bench.sh — KPI benchmark (measures and prints, asserts nothing).
#
# Loads a year of runs (--runs N over --pipelines P, default 1,000,000 over
# 300) with smartetl.ingest_file (the rollups are maintained during the
# load), then times, as medians of --rounds R runs in the same session:
#   1. qsketch_agg + quantiles vs percentile_cont over all run durations;
#   2. pipeline_kpi(year), and over the last 90 days, vs the same
#      per-pipeline counts, mean and p50/p95/p99 computed from the raw runs
#      with percentile_cont;
#   3. a year of daily p95 per pipeline from kpi_daily vs percentile_cont
#      over the raw runs grouped by day;
#   4. the anomalies of the last 7 days (detect_anomalies);
# then pipeline_kpi over the year by part (rollup merge, failure streaks,
# last success, expected interval, top error), medians of R;
# then, once each, what a bulk change costs the anomaly scores: an UPDATE
# of every run of the last day (every pipeline is rescored from its first
# run, with the rollups of that day) and the rescoring of every pipeline
# alone (_anomaly_refresh from -infinity).
# Ratios are baseline time / smartetl time (> 1: smartetl is faster).
#
# Usage (as root): test/bench/kpi_bench.sh [--runs N] [--pipelines P] [--rounds R]
# Own throwaway cluster in /tmp/kpibench.<pid>, port $SMARTETL_BENCH_PORT
# (default 54344); removed on exit.
set -euo pipefail

RUNS=1000000
PIPELINES=300
ROUNDS=3
while [ $# -gt 0 ]; do
	case "$1" in
		--runs) RUNS=$2; shift 2 ;;
		--pipelines) PIPELINES=$2; shift 2 ;;
		--rounds) ROUNDS=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }

cd "$(dirname "$0")/../.."
source scripts/lib.sh
DIR=/tmp/kpibench.$$
PORT=${SMARTETL_BENCH_PORT:-54344}
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"
mkdir -p "$DIR/data" && chown postgres "$DIR/data"

log "generating $RUNS runs of $PIPELINES pipelines over 365 days"
psql -X -q -v runs="$RUNS" -v pipelines="$PIPELINES" -v file="$DIR/data/runs.csv" <<'SQL'
SELECT setseed(0.5);
COPY (
  SELECT 'p' || (g % :pipelines) AS job, g AS run_id,
         now() - interval '365 days' + (g::float8 / :runs) * interval '365 days' AS start,
         round((30 + 10 * (g % 17)) * exp(0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::int AS duration,
         CASE WHEN random() < 0.03 THEN 'failed' ELSE 'success' END AS status,
         (1000 * random())::int AS rows
  FROM generate_series(1, :runs) g) TO :'file' WITH (FORMAT csv, HEADER);
SQL

log "ingest (rollups maintained during the load)"
psql -X -At <<SQL
\timing on
SELECT * FROM smartetl.ingest_file('$DIR/data/runs.csv', 'csv', '{"duration_unit": "s"}');
SELECT 'hourly rollup rows: ' || count(*) FROM smartetl.kpi_hourly;
SELECT 'daily rollup rows:  ' || count(*) FROM smartetl.kpi_daily;
SQL
psql -X -q -c "VACUUM ANALYZE"

log "timings: median of $ROUNDS rounds (ms)"
psql -X -q -v rounds="$ROUNDS" <<'SQL'
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE q; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END $$;
CREATE TEMP TABLE bench (name text, smartetl text, baseline text);
INSERT INTO bench VALUES
 ('quantiles of all durations',
  $$SELECT smartetl.quantiles(smartetl.qsketch_agg(duration_s), '{0.5,0.95,0.99}') FROM smartetl.run$$,
  $$SELECT percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY duration_s) FROM smartetl.run$$),
 ('pipeline KPIs over the year',
  $$SELECT count(*) FROM smartetl.pipeline_kpi(now() - interval '366 days', now())$$,
  $$SELECT count(*) FROM (SELECT pipeline_id, count(*), count(*) FILTER (WHERE status = 'failed'), avg(duration_s),
        percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY duration_s)
        FROM smartetl.run WHERE run_at >= now() - interval '366 days' GROUP BY pipeline_id) s$$),
 ('pipeline KPIs over the last 90 days',
  $$SELECT count(*) FROM smartetl.pipeline_kpi(now() - interval '90 days', now())$$,
  $$SELECT count(*) FROM (SELECT pipeline_id, count(*), count(*) FILTER (WHERE status = 'failed'), avg(duration_s),
        percentile_cont(ARRAY[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY duration_s)
        FROM smartetl.run WHERE run_at >= now() - interval '90 days' GROUP BY pipeline_id) s$$),
 ('daily p95 per pipeline, one year',
  $$SELECT count(smartetl.quantile(duration, 0.95)) FROM smartetl.kpi_daily WHERE bucket >= now() - interval '366 days'$$,
  $$SELECT count(p) FROM (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) p FROM smartetl.run
        WHERE run_at >= now() - interval '366 days' GROUP BY pipeline_id, date_trunc('day', run_at)) s$$),
 ('anomalies of the last 7 days',
  $$SELECT count(*) FROM smartetl.detect_anomalies(now() - interval '7 days', now())$$, NULL);
CREATE TEMP TABLE t AS
SELECT b.name, r, pg_temp.ms(b.smartetl) AS s_ms,
       CASE WHEN b.baseline IS NOT NULL THEN pg_temp.ms(b.baseline) END AS b_ms
FROM bench b, generate_series(1, :rounds) r;
\pset footer off
SELECT name, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s_ms)::numeric, 1) AS smartetl_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY b_ms)::numeric, 1) AS baseline_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY b_ms) / percentile_cont(0.5) WITHIN GROUP (ORDER BY s_ms))::numeric, 1) AS speedup
FROM t GROUP BY name ORDER BY min(r), name;
SQL

log "pipeline_kpi over the year by part (ms, median of $ROUNDS)"
psql -X -q -v rounds="$ROUNDS" <<'SQL'
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE q; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END $$;
CREATE TEMP TABLE part (n int, name text, q text);
INSERT INTO part VALUES
 (1, 'rollup rows merged per pipeline (_kpi_spans)',
  $$SELECT count(*) FROM (SELECT pipeline_id, smartetl.qsketch_merge(duration), sum(runs) FROM smartetl._kpi_spans(now() - interval '366 days', now()) GROUP BY 1) s$$),
 (2, 'failure streaks (_failure_streaks)',
  $$SELECT count(*) FROM (SELECT pipeline_id, avg(recovered - began), max(failed_runs) FROM smartetl._failure_streaks(now() - interval '366 days', now()) GROUP BY 1) s$$),
 (3, 'last success per pipeline',
  $$SELECT count(*) FROM smartetl.pipeline p CROSS JOIN LATERAL (SELECT coalesce(r.ended_at, r.run_at) FROM smartetl.run r WHERE r.pipeline_id = p.pipeline_id AND r.status = 'success' AND r.run_at < now() ORDER BY r.run_at DESC LIMIT 1) ls$$),
 (4, 'expected interval per pipeline',
  $$SELECT count(smartetl._expected_interval(pipeline_id, now())) FROM smartetl.pipeline$$),
 (5, 'top error per pipeline',
  $$SELECT count(*) FROM smartetl.pipeline p CROSS JOIN LATERAL (SELECT r.template_id, t.template, count(*) AS n FROM smartetl.run r JOIN smartetl.template t USING (template_id) WHERE r.pipeline_id = p.pipeline_id AND r.run_at >= now() - interval '366 days' AND r.run_at < now() AND r.status = 'failed' GROUP BY r.template_id, t.template ORDER BY n DESC, r.template_id LIMIT 1) te$$),
 (6, 'pipeline_kpi, all of it',
  $$SELECT count(*) FROM smartetl.pipeline_kpi(now() - interval '366 days', now())$$);
CREATE TEMP TABLE pt AS SELECT n, name, r, pg_temp.ms(q) AS ms FROM part, generate_series(1, :rounds) r;
\pset footer off
SELECT name AS part, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS ms FROM pt GROUP BY n, name ORDER BY n;
SQL

log "bulk changes (ms, once each, rolled back)"
psql -X -q <<'SQL'
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE q; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END $$;
\pset footer off
BEGIN;
SELECT 'UPDATE every run of the last day (' || count(*) || ' runs, every pipeline rescored)' AS change,
       round(pg_temp.ms($$UPDATE smartetl.run SET rows_written = rows_written WHERE run_at >= now() - interval '1 day'$$)::numeric, 1) AS ms
FROM smartetl.run WHERE run_at >= now() - interval '1 day';
ROLLBACK;
BEGIN;
SELECT 'rescore every pipeline from its first run (' || count(*) || ' scores)' AS change,
       round(pg_temp.ms($$SELECT smartetl._anomaly_refresh(array_agg(pipeline_id), array_agg('-infinity'::timestamptz)) FROM smartetl.pipeline$$)::numeric, 1) AS ms
FROM smartetl.run_anomaly_score;
ROLLBACK;
SQL
