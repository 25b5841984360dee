#!/bin/bash
# Run the pg_regress suite, the pgTAP tests of the C code (real data, roles,
# concurrency, qsketch, anomalies, document fuzzing) and the alerting
# end-to-end test (the worker and libcurl delivery) with every backend
# under valgrind memcheck, and fail on any error whose stack passes through
# smartetl.so.
#   bash test/valgrind.sh                  (everything, about an hour)
#   VALGRIND_QUICK=1 bash test/valgrind.sh (pg_regress only, a few minutes)
#   VALGRIND_TAP="role_matrix concurrency" SMARTETL_E2E_ONLY=large_notify,drop_extension \
#     bash test/valgrind.sh                (pg_regress, those pgTAP files and e2e tests)
# Parts, to run the whole in several shorter sessions: VALGRIND_REGRESS=0
# skips pg_regress, VALGRIND_TAP="" runs no pgTAP file, VALGRIND_E2E=0 skips
# the alerting end-to-end test, VALGRIND_INTAKE=1 adds the HTTP intake's
# end-to-end test (test/intake/intake_http.py: the intake worker; its
# timing checks may fail under valgrind's slowdown, reported apart), e.g.
#   VALGRIND_REGRESS=0 VALGRIND_TAP="" VALGRIND_E2E=0 VALGRIND_INTAKE=1 bash test/valgrind.sh
# VALGRIND_TIMEOUT=S bounds each part (timeout S; the cluster is still
# stopped at the end, so a shared lock is released cleanly).
# (AddressSanitizer is not an option here: a stock postgres started with
# libasan preloaded deadlocks in glibc's bindtextdomain before main()
# finishes; the frontend-safe parser cores run under ASan+UBSan in the
# libFuzzer harnesses instead.)  PostgreSQL itself is not built for
# valgrind, so errors inside it alone (padding bytes written to WAL, ...)
# are listed but do not fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source scripts/lib.sh
export SMARTETL_DATA=${SMARTETL_DATA:-$(cd .. && pwd)/shared/data}
DIR=$(mktemp -d /tmp/smartetl-vg.XXXXXX)
PORT=${SMARTETL_VALGRIND_PORT:-$(free_port)}

T=${VALGRIND_TIMEOUT:+timeout $VALGRIND_TIMEOUT}
cleanup() {
	runuser -u postgres -- $PG_BIN/pg_ctl -D "$DIR/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT

if ! command -v valgrind >/dev/null; then
	apt-get install -y -q valgrind >/dev/null
fi
install_packages
build_install
cluster_init "$DIR" "$PORT"
cluster_configure "$DIR"
mkdir -p "$DIR/vg" && chown postgres "$DIR/vg"
(cd / && runuser -u postgres -- valgrind --quiet --tool=memcheck --leak-check=no \
	--track-origins=no --error-markers=VGERROR-BEGIN,VGERROR-END --num-callers=30 \
	--log-file="$DIR/vg/%p.log" $PG_BIN/postgres -D "$DIR/data" >"$DIR/server.log" 2>&1 &)
export PGHOST="$(socket_dir "$DIR")" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
for i in $(seq 240); do
	psql -X -q -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.5
done

if [ "${VALGRIND_REGRESS:-1}" = 1 ]; then
log "pg_regress under valgrind"
mkdir -p "$DIR/regress"
$T $(dirname $($PG_CONFIG --pgxs))/../test/regress/pg_regress --inputdir="$REPO" \
	--outputdir="$DIR/regress" --bindir=$PG_BIN --dbname=contrib_regression \
	--load-extension=smartetl --encoding=UTF8 --no-locale \
	$(sed -n 's/^REGRESS = //p' Makefile) || { cat "$DIR/regress/regression.diffs"; exit 1; }
fi
tap_status=0
intake_status=0
if [ "${VALGRIND_QUICK:-0}" = 1 ]; then
	log "VALGRIND_QUICK=1: pg_regress only"
else
psql_do -c 'CREATE EXTENSION IF NOT EXISTS pgtap; CREATE EXTENSION IF NOT EXISTS smartetl; CREATE EXTENSION IF NOT EXISTS pg_cron;'
tap_files=${VALGRIND_TAP-real_data roles role_matrix ingest_paths concurrency qsketch anomalies fuzz_documents}
if [ -n "$tap_files" ]; then
log "pgTAP under valgrind: $tap_files"
# the test files are copied first: the tree may change during a long run
cp test/sql/*.sql "$DIR/"
# the real data shipped in test/data, used where ../shared/data is missing
cp -R test/data "$DIR/test-data" && chown -R postgres "$DIR/test-data"
export SMARTETL_TEST_DATA="$DIR/test-data"
$T pg_prove --directives -d postgres $(for f in $tap_files; do echo "$DIR/$f.sql"; done) || tap_status=$?
fi
if [ "${VALGRIND_E2E:-1}" = 1 ]; then
log "alerting end to end under valgrind (worker, libcurl delivery; no crash test)"
SMARTETL_E2E_SLOW=1 $T /usr/bin/python3 test/alert/e2e.py || tap_status=$?
fi
if [ "${VALGRIND_INTAKE:-0}" = 1 ]; then
log "HTTP intake end to end under valgrind (the intake worker; no kill -9 test)"
SMARTETL_CLUSTER_DIR="$DIR" $T /usr/bin/python3 test/intake/intake_http.py || intake_status=$?
fi
fi

# An error is ours when the innermost frame that is neither valgrind's nor
# libc's is in one of our source files; frames show their file's basename.
ours_re="($(cd src && find . -name '*.c' -printf '%f|' | sed 's/|$//')):[0-9]+"
classify() {
	awk -v ours="$ours_re" '
		/VGERROR-BEGIN/ { on = 1; first = ""; block = ""; next }
		/VGERROR-END/ {
			on = 0
			if (first ~ ours) { n_ours++; print block } else n_theirs++
			next
		}
		on {
			block = block "\n" $0
			if (first == "" && $0 ~ /(at|by) 0x/ && $0 !~ /vgpreload|libc\.so/) first = $0
		}
		END { printf "COUNTS %d %d\n", n_ours, n_theirs }' "$@"
}
result=$(classify "$DIR"/vg/*.log)
echo "$result" | grep -v '^COUNTS' || true
read -r _ ours theirs <<<"$(echo "$result" | grep '^COUNTS')"
echo "valgrind: $ours error(s) in smartetl code, $theirs in PostgreSQL alone"
[ "$intake_status" -eq 0 ] || echo "valgrind: the intake test had failures (see its TAP above; timing checks suffer from the slowdown)"
[ "$ours" -eq 0 ] && [ "$tap_status" -eq 0 ]
