#!/bin/sh
# test/fuzz/build.sh — build the libFuzzer harnesses into test/fuzz/build/.
#
# Each harness is linked with the frontend-safe parser cores it exercises,
# compiled with -DFRONTEND, and PostgreSQL's frontend static libraries
# (libpgcommon before libpgport: libpgcommon needs symbols from libpgport).
#
# Environment: CC (default clang-14), PG_CONFIG (default
# /usr/lib/postgresql/15/bin/pg_config).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"

CC=${CC:-clang-14}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pg_libdir=$("$PG_CONFIG" --libdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
pg_server_inc=$("$PG_CONFIG" --includedir-server 2>/dev/null || echo /usr/include/postgresql/15/server)
pg_internal_inc=$("$PG_CONFIG" --pkgincludedir 2>/dev/null || echo /usr/include/postgresql)/internal

# Debian keeps the static libraries next to the server modules
for d in "$pg_libdir" /usr/lib/postgresql/15/lib; do
	if [ -f "$d/libpgcommon.a" ] && [ -f "$d/libpgport.a" ]; then
		pglibs="$d/libpgcommon.a $d/libpgport.a"
		break
	fi
done
if [ -z "${pglibs:-}" ]; then
	echo "build.sh: libpgcommon.a / libpgport.a not found (pg_config --libdir: $pg_libdir)" >&2
	exit 1
fi

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "build.sh: $CC not found (apt-get install clang-14)" >&2
	exit 1
fi
# the libFuzzer runtime ships in libclang-rt-14-dev
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
	"$CC" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	echo "build.sh: $CC cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)" >&2
	exit 1
fi

CFLAGS="-g -O1 -fno-omit-frame-pointer -DFRONTEND \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wno-ignored-attributes -Wno-unused-parameter"
INCLUDES="-I $root/src -I $here -I $pg_server_inc -I $pg_internal_inc"

mkdir -p "$out"

build() {
	name=$1
	shift
	echo "build.sh: $out/$name"
	# shellcheck disable=SC2086
	"$CC" $CFLAGS $INCLUDES -o "$out/$name" "$here/$name.c" "$here/fuzz_common.c" \
		"$@" $pglibs -lm
}

build fuzz_csv "$root/src/common/line_reader.c" "$root/src/ingest/csv_lexer.c"
build fuzz_jsonl "$root/src/common/line_reader.c" "$root/src/ingest/json_fields.c"
build fuzz_logformat "$root/src/ingest/log_format.c"
build fuzz_logsplit "$root/src/ingest/log_format.c" "$root/src/ingest/log_split.c"
build fuzz_template "$root/src/template/miner.c" "$root/src/template/tokenize.c"
build fuzz_airflow "$root/src/ingest/airflow_marker.c"
build fuzz_qsketch "$root/src/kpi/qsketch_core.c"
build fuzz_cron "$root/src/alert/cron.c"
