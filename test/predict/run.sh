#!/bin/sh
# test/predict/run.sh — build and run the unit tests of src/predict/ (TAP).
#
# The model cores (training matrix, metrics, XGBoost and liblinear models)
# are frontend-safe: they are compiled here with -DFRONTEND against
# postgres_fe.h and linked with PostgreSQL's frontend static libraries
# (libpgcommon before libpgport: libpgcommon needs symbols from libpgport),
# libxgboost and liblinear.  No server is involved.
#
# Installs libxgboost-dev and liblinear-dev with apt-get when they are
# missing (as root).  Builds into test/predict/build/ with one compiler
# invocation.  VALGRIND=1 runs the binary under valgrind's memcheck.
#
# Environment: CC (default gcc), PG_CONFIG (default
# /usr/lib/postgresql/15/bin/pg_config), VALGRIND.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"

CC=${CC:-gcc}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pg_libdir=$("$PG_CONFIG" --libdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
pg_server_inc=$("$PG_CONFIG" --includedir-server 2>/dev/null || echo /usr/include/postgresql/15/server)
pg_internal_inc=$("$PG_CONFIG" --pkgincludedir 2>/dev/null || echo /usr/include/postgresql)/internal

need=""
[ -f /usr/include/xgboost/c_api.h ] || need="$need libxgboost-dev"
[ -f /usr/include/linear.h ] || need="$need liblinear-dev"
if [ "${VALGRIND:-}" = 1 ] && ! command -v valgrind >/dev/null 2>&1; then
	need="$need valgrind"
fi
if [ -n "$need" ]; then
	echo "run.sh: installing$need" >&2
	apt-get install -y -q $need >&2 ||
		{ apt-get update -q >&2 && apt-get install -y -q $need >&2; }
fi

# Debian keeps the static libraries next to the server modules
for d in "$pg_libdir" /usr/lib/postgresql/15/lib; do
	if [ -f "$d/libpgcommon.a" ] && [ -f "$d/libpgport.a" ]; then
		pglibs="$d/libpgcommon.a $d/libpgport.a"
		break
	fi
done
if [ -z "${pglibs:-}" ]; then
	echo "run.sh: libpgcommon.a / libpgport.a not found (pg_config --libdir: $pg_libdir)" >&2
	exit 1
fi

mkdir -p "$out"
src="$root/src/predict"
# shellcheck disable=SC2086
"$CC" -g -O1 -DFRONTEND -Wall -Wextra -Werror -Wno-unused-parameter \
	-I "$root/src" -I "$pg_server_inc" -I "$pg_internal_inc" \
	-o "$out/test_models" "$here/test_models.c" \
	"$src/../common/robust_stats.c" "$src/model_data.c" "$src/model_metrics.c" "$src/model_xgb.c" "$src/model_linear.c" \
	"$src/model_baseline.c" "$src/risk_features.c" "$src/risk_backtest.c" \
	$pglibs -lxgboost -lgomp -llinear -lm

if [ "${VALGRIND:-}" = 1 ]; then
	exec valgrind --leak-check=full --show-leak-kinds=all \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=2 \
		"$out/test_models"
fi
exec "$out/test_models"
