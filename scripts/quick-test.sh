#!/bin/bash
# The quick developer loop, in about two minutes:
#   bash scripts/quick-test.sh                  # pg_regress + every pgTAP file
#   bash scripts/quick-test.sh kpi definitions  # only these pg_regress tests, no pgTAP
#   SMARTETL_QUICK_TAP='test/sql/roles.sql' bash scripts/quick-test.sh   # these pgTAP files
# Builds and installs the extension, starts one throwaway PostgreSQL 15
# cluster (smartetl and pg_cron preloaded, port SMARTETL_QUICK_PORT, default
# 54339), runs `make installcheck` (sql/, expected/, docs check included) and
# the pgTAP suite (test/sql/*.sql with pg_prove; big_input.sql only when
# SMARTETL_BIG_FILE names its 1 GB file), then stops and removes the cluster.
# No packages, fuzzing, upgrade or end-to-end stages: scripts/test.sh runs
# those (and installs the packages; run it, or `bash scripts/demo.sh`, once
# first).
#
# As root, or as a user who may write PostgreSQL's extension folders
# ($(pg_config --pkglibdir), $(pg_config --sharedir)/extension): `make
# install` writes there; the cluster then runs as that user.
# The real-data pgTAP files read SMARTETL_DATA (default ../shared/data beside
# the checkout) and test/data, as in scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source scripts/lib.sh

PORT=${SMARTETL_QUICK_PORT:-54339}
START=$(date +%s)
DIR=$(mktemp -d /tmp/smartetl-quick.XXXXXX)
trap 'cluster_stop "$DIR"; rm -rf "$DIR"' EXIT

build_install
cluster_start "$DIR" "$PORT"

log "pg_regress (sql/, expected/)"
regress=()
[ $# -gt 0 ] && regress=(REGRESS="$*")
if ! make -s PG_CONFIG=$PG_CONFIG with_llvm=no installcheck "${regress[@]}"; then
	cat regression.diffs 2>/dev/null || true
	exit 1
fi

if [ $# -eq 0 ] || [ -n "${SMARTETL_QUICK_TAP:-}" ]; then
	log "pgTAP (pg_prove)"
	export SMARTETL_DATA=${SMARTETL_DATA:-$(cd "$REPO/.." && pwd)/shared/data}
	# test/data where the server (user postgres when root) can read it
	cp -R test/data "$DIR/test-data"
	[ "$(id -u)" = 0 ] && chown -R postgres "$DIR/test-data"
	export SMARTETL_TEST_DATA="$DIR/test-data"
	tap=${SMARTETL_QUICK_TAP:-$(ls test/sql/*.sql | grep -v '/big_input\.sql$' || true)}
	[ -z "${SMARTETL_QUICK_TAP:-}" ] && [ -n "${SMARTETL_BIG_FILE:-}" ] && tap="$tap test/sql/big_input.sql"
	psql_do -c 'CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS smartetl; CREATE EXTENSION IF NOT EXISTS pg_cron;'
	# shellcheck disable=SC2086
	pg_prove --directives -d postgres $tap
fi
log "quick test passed in $(($(date +%s) - START)) s"
