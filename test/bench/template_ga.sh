#!/bin/sh
# test/bench/template_ga.sh — build and run the template miner's grouping
# accuracy benchmark on the Loghub 2k datasets (not a test of speed: it
# measures and prints; it fails only if the restore check fails).
#
# The miner core is frontend-safe: it is compiled with -DFRONTEND and
# linked with PostgreSQL's frontend static libraries (libpgcommon before
# libpgport), as test/fuzz/build.sh does.
#
# Usage: test/bench/template_ga.sh [-d DATADIR] [-D NAMES] [-r ROUNDS] [-s N] [-v NAME] [-t MIN] [-m]
#   (options of template_ga.c, see there)
# Environment: CC (default gcc), PG_CONFIG (default
# /usr/lib/postgresql/15/bin/pg_config).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${TMPDIR:-/tmp}/smartetl-template_ga"	# build output, outside the repo

CC=${CC:-gcc}
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
	echo "template_ga.sh: libpgcommon.a / libpgport.a not found (pg_config --libdir: $pg_libdir)" >&2
	exit 1
fi

# all warnings as errors (clang: PG headers use gnu_printf, hence the -Wno)
CFLAGS="-O2 -g -DFRONTEND -Wall -Wextra -Werror -Wno-ignored-attributes"
INCLUDES="-I $root/src -I $pg_server_inc -I $pg_internal_inc"

mkdir -p "$out"
# shellcheck disable=SC2086
"$CC" $CFLAGS $INCLUDES -o "$out/template_ga" "$here/template_ga.c" \
	"$root/src/template/miner.c" "$root/src/template/tokenize.c" $pglibs -lm
exec "$out/template_ga" -S "$root/test/data/template_synth" "$@"
