#!/bin/bash
# Run every smartetl test on a fresh Debian 12 machine, as root:
#   bash scripts/test.sh
# Installs the packages it needs, builds and installs the extension, starts a
# throwaway PostgreSQL 15 cluster (smartetl + pg_cron preloaded), runs the
# pg_regress suite (sql/, expected/), a short fuzzing pass over every parser
# (test/fuzz), the pgTAP suite (test/sql/*.sql) with pg_prove, then the
# end-to-end checks on a database loaded with the sample history: the
# Grafana dashboard's queries, a real Prometheus exporter, the HTML report
# in headless Chromium, the test receivers, and alerting with the worker
# delivering to real HTTP, SMTP and Alertmanager receivers (test/alert,
# including a kill -9 of the server), and the intake (test/intake: the HTTP
# intake with curl and wrk, followed files, both with kill -9).  Leaves
# nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source scripts/lib.sh

PORT=${SMARTETL_TEST_PORT:-54329}
# the shared real data sits beside the checkout (../shared/data)
if [ -z "${SMARTETL_DATA:-}" ]; then
	SMARTETL_DATA=$(cd "$REPO/.." && pwd)/shared/data
	[ -d "$SMARTETL_DATA" ] || SMARTETL_DATA=/work/shared/data
fi
export SMARTETL_DATA
FUZZ_SECONDS=${SMARTETL_FUZZ_SECONDS:-15}
TMPDIR_TEST=$(mktemp -d /tmp/smartetl-test.XXXXXX)

cleanup() {
	cluster_stop "$TMPDIR_TEST"
	rm -rf "$TMPDIR_TEST"
}
trap cleanup EXIT

install_packages
build_install
cluster_start "$TMPDIR_TEST" "$PORT"

log "pg_regress (sql/, expected/)"
if ! make -s PG_CONFIG=$PG_CONFIG with_llvm=no installcheck; then
	cat regression.diffs 2>/dev/null || true
	exit 1
fi

log "fuzzing every parser for ${FUZZ_SECONDS}s each (test/fuzz; long runs: test/fuzz/run.sh 600)"
bash test/fuzz/run.sh "$FUZZ_SECONDS"

log "pgTAP (test/sql/*.sql)"
psql_do -c 'CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS smartetl; CREATE EXTENSION IF NOT EXISTS pg_cron;'
# a file with one line longer than 1 GB between two good lines, for big_input.sql
export SMARTETL_BIG_FILE="$TMPDIR_TEST/big_line.csv"
{
	printf 'job,run_id,status\nbig_ok,1,ok\n'
	head -c 1100000000 /dev/zero | tr '\0' 'x'
	printf ',2,ok\nbig_ok,3,failed\n'
} >"$SMARTETL_BIG_FILE"
chown postgres "$SMARTETL_BIG_FILE"
[ -d "$SMARTETL_DATA" ] || echo "WARNING: real data not found at $SMARTETL_DATA; test/sql/real_data.sql will fail"
pg_prove -d postgres test/sql/*.sql

log "end-to-end: Grafana dashboard, Prometheus exporter, HTML report (sample history)"
psql_do -c 'DROP DATABASE IF EXISTS smartetl_sample' -c 'CREATE DATABASE smartetl_sample'
mkdir -p "$TMPDIR_TEST/sample" && chown postgres "$TMPDIR_TEST/sample"
PGDATABASE=smartetl_sample psql_do -c 'SET client_min_messages = warning; CREATE EXTENSION smartetl;'
PGDATABASE=smartetl_sample psql_do -v dir="$TMPDIR_TEST/sample" -f scripts/sample/generate.sql >/dev/null
PGDATABASE=smartetl_sample psql_do -c "SELECT * FROM smartetl.ingest_file('$TMPDIR_TEST/sample/runs.csv', 'csv', '{\"namespace\": \"demo\"}')"
# a risk model and a ranking, for the dashboard's risk panel
PGDATABASE=smartetl_sample psql_do -c "SELECT smartetl.train_risk_model('1 day', 'xgboost', '{\"step\": \"6 hours\"}')" \
	-c "SELECT count(*) AS ranked FROM smartetl.risk_ranking('1 day')"
export PGHOST=$(socket_dir "$TMPDIR_TEST") PGPORT=$PORT PGUSER=postgres
PGDATABASE=smartetl_sample bash test/grafana/run.sh
PGDATABASE=smartetl_sample bash test/prometheus/run.sh
PGDATABASE=smartetl_sample bash test/report/check_report.sh

log "test receivers (HTTP, SMTP, Alertmanager)"
bash test/receivers/selftest.sh

log "alerting end to end (worker, real receivers, receiver outage, kill -9)"
PGDATABASE=postgres SMARTETL_CLUSTER_DIR="$TMPDIR_TEST" /usr/bin/python3 test/alert/e2e.py

log "intake end to end (HTTP intake with curl, wrk and kill -9; followed files with rotation and kill -9)"
PGDATABASE=postgres SMARTETL_CLUSTER_DIR="$TMPDIR_TEST" bash test/intake/run.sh
