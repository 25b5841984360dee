#!/bin/bash
# Run every query of the Grafana dashboard (grafana/dashboards/smartetl.json)
# against a database where smartetl is installed and holds runs, as
# Grafana's PostgreSQL data source would, and check the results (TAP).
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bash test/grafana/run.sh [options]
#
# The range is the last 30 days; $__interval is 6h so that every point of
# the time series merges several hourly rollups (qsketch_merge included).
# Every panel's values are compared with a recount from smartetl.run; with
# --sample (the database holds scripts/sample/generate.sql's history, as in
# scripts/test.sh) the anomaly, overdue and failure panels must show exactly
# the runs and pipelines the sample plants.
# When the connecting user may become smartetl_reader, the queries run as
# that role, the read-only role Grafana is meant to use.  Extra options go
# to check_dashboard.py (see its --help), e.g. --verbose or --var pipeline=x.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

command -v psql >/dev/null || { echo "run.sh: psql not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 not found" >&2; exit 2; }

if ! installed=$(psql -X -A -t -v ON_ERROR_STOP=1 \
		-c "SELECT count(*) FROM pg_extension WHERE extname = 'smartetl'"); then
	echo "run.sh: cannot connect (set PGHOST, PGPORT, PGUSER, PGDATABASE)" >&2
	exit 2
fi
if [ "$installed" != 1 ]; then
	echo "run.sh: smartetl is not installed in database ${PGDATABASE:-${PGUSER:-$USER}}" >&2
	exit 2
fi

role_args=()
reader=$(psql -X -A -t -c "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'smartetl_reader')
                                  AND pg_has_role('smartetl_reader', 'MEMBER')")
if [ "$reader" = t ]; then
	role_args=(--as-role smartetl_reader)
fi

dashboard="$(cd "$here/../../grafana/dashboards" && pwd)/smartetl.json"
exec python3 "$here/check_dashboard.py" --from now-30d --to now --interval 6h \
	"${role_args[@]}" "$@" "$dashboard"
