#!/bin/bash
# Run the pg_regress and pgTAP suites against an AddressSanitizer build of
# smartetl, loaded into a stock PostgreSQL 15 server with libasan preloaded.
#   bash test/asan.sh
# Fails if the server log shows any AddressSanitizer report.  Leak detection
# is off: memory contexts free in bulk, which LeakSanitizer reports as leaks.
# Reinstalls the normal build at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export SMARTETL_DATA=${SMARTETL_DATA:-$(cd .. && pwd)/shared/data}
DIR=$(mktemp -d /tmp/smartetl-asan.XXXXXX)
PORT=${SMARTETL_ASAN_PORT:-54339}
ASAN_LIB=$(gcc -print-file-name=libasan.so)

cleanup() {
	runuser -u postgres -- $PG_BIN/pg_ctl -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
	make -s clean >/dev/null
	build_install
}
trap cleanup EXIT

install_packages
make -s clean >/dev/null
make -s PG_CONFIG=$PG_CONFIG with_llvm=no \
	PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -fsanitize=address -fno-omit-frame-pointer -O1 -g" \
	SHLIB_LINK="-fsanitize=address" >/dev/null
make -s PG_CONFIG=$PG_CONFIG with_llvm=no install >/dev/null

# the server, and so every backend, runs with libasan preloaded; started
# directly because pg_ctl itself hangs when run under libasan
cluster_init "$DIR" "$PORT"
(cd / && runuser -u postgres -- env LD_PRELOAD="$ASAN_LIB" \
	ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$DIR/asan" \
	$PG_BIN/postgres -D "$DIR/data" >"$DIR/server.log" 2>&1 &)
for i in $(seq 120); do
	[ -S "$(socket_dir "$DIR")/.s.PGSQL.$PORT" ] && break
	sleep 0.5
done
export PGHOST="$(socket_dir "$DIR")" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
psql_do -c 'SELECT 1' >/dev/null || { cat "$DIR/server.log"; exit 1; }

log "pg_regress under AddressSanitizer"
make -s PG_CONFIG=$PG_CONFIG with_llvm=no installcheck || { cat regression.diffs; exit 1; }
log "pgTAP under AddressSanitizer"
psql_do -c 'CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS smartetl;'
pg_prove -d postgres test/sql/real_data.sql test/sql/roles.sql test/sql/concurrency.sql

if ls "$DIR"/asan.* >/dev/null 2>&1; then
	echo "AddressSanitizer reports:"
	cat "$DIR"/asan.*
	exit 1
fi
grep -q "AddressSanitizer" "$DIR/server.log" && { grep -A30 AddressSanitizer "$DIR/server.log"; exit 1; }
echo "AddressSanitizer: no reports"
