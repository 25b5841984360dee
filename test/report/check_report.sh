#!/bin/bash
# Check smartetl.report_html() end to end, printing TAP:
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bash test/report/check_report.sh
#
# Needs a database with smartetl (report_html included) and some run history,
# and a PostgreSQL user that may ingest and SET ROLE smartetl_reader (a
# superuser will do).  Inside one transaction that is rolled back (the
# database is left as it was) it adds a pipeline named
# <script>alert(1)</script>&"x" with a failed run whose error is HTML, and a
# pipeline (in namespace report<&>check) with one run 100 times slower than
# its usual, then writes the report of the last 30 days as smartetl_reader
# to a temporary directory, and two more (an empty range, 400 days).  Then:
#   - check_html.py: balanced tags (python3 html.parser), self-contained;
#   - render.mjs: headless Debian Chromium through playwright-core: loads
#     with no console error and no network request at all, the sections,
#     at least 3 SVG charts with visible bars, titles and axis labels, the
#     HTML in names and errors shown as text with no script run; saves a
#     full-page PNG screenshot and prints its path.
# Installs chromium (apt, as root) when missing.  playwright-core comes from
# the committed package-lock.json, installed with the packages
# (scripts/lib.sh install_node_modules, i.e. npm ci in test/report): when it
# is missing this check fails, it never downloads at test time.  A checker
# that crashes is a failure of its own.  Exits non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d /tmp/smartetl-report.XXXXXX)
RAW="$OUT/tap.raw"
: >"$RAW"
STAGE_FAILED=0

EVIL='<script>alert(1)</script>&"x"'
# the report shows an error's template: no quoted phrase, which the miner masks
EVIL_ERROR='<img src=x onerror=alert(document.domain)> & boom'
PLANTED='report_check_planted'

note() { echo "# $*" >>"$RAW"; }
result() { # result OK|FAIL description
	if [ "$1" = OK ]; then echo "ok - $2" >>"$RAW"; else echo "not ok - $2" >>"$RAW"; fi
}

# ---- tools --------------------------------------------------------------------
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "# installing chromium (apt-get)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >"$OUT/apt.log" 2>&1 ||
			{ DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$OUT/apt.log" 2>&1 &&
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$OUT/apt.log" 2>&1; } ||
			{ tail -20 "$OUT/apt.log" >&2; }
	fi
fi
export CHROMIUM

# check_html FILE LABEL EXPECT...: the static checks, whose "not ok" lines are
# the failures; a checker that stops early (a crash, a missing file) is one
# more failure, with its error output
check_html() {
	local rc
	python3 "$HERE/check_html.py" "$@" >"$OUT/check_html.out" 2>"$OUT/check_html.err"
	rc=$?
	cat "$OUT/check_html.out" >>"$RAW"
	if [ $rc -ne 0 ] && ! grep -q '^not ok' "$OUT/check_html.out"; then
		result FAIL "check_html.py ran to the end on the $2 report (exit $rc)"
		sed 's/^/#   /' "$OUT/check_html.err" | tail -20 >>"$RAW"
		STAGE_FAILED=1
	fi
}

# ---- reports --------------------------------------------------------------------
# One transaction: test rows in, three reports out (as smartetl_reader), rolled back.
T0=$(date +%s%N)
if psql -X -q -At -v ON_ERROR_STOP=1 -v evil="$EVIL" -v evil_error="$EVIL_ERROR" -v planted="$PLANTED" \
	-v out="$OUT/report.html" -v out_empty="$OUT/report_empty.html" -v out_long="$OUT/report_400d.html" \
	-v timing="$OUT/timing.txt" >"$OUT/psql.log" 2>&1 <<'SQL'
BEGIN;
SELECT * FROM smartetl.ingest('jsonl', (
    SELECT string_agg(json_strip_nulls(j)::text, E'\n')
    FROM (SELECT json_build_object('pipeline', :'evil', 'run_id', 'report-check-' || i,
                                   'status', CASE i WHEN 1 THEN 'failed' ELSE 'success' END,
                                   'started_at', now() - make_interval(hours => 4 - i), 'duration', 30,
                                   'rows_written', CASE i WHEN 2 THEN 10 END,
                                   'error', CASE i WHEN 1 THEN :'evil_error' END) AS j
          FROM generate_series(1, 2) i
          UNION ALL
          -- 40 hourly runs of about a minute, then one of 100 minutes
          SELECT json_build_object('pipeline', :'planted', 'namespace', 'report<&>check',
                                   'run_id', 'planted-' || i, 'status', 'success',
                                   'started_at', now() - make_interval(hours => 43 - i),
                                   'duration', CASE WHEN i = 41 THEN 6000 ELSE 60 + i % 7 END,
                                   'rows_written', 1000 + i % 5)
          FROM generate_series(1, 41) i) s));
SET LOCAL ROLE smartetl_reader;
SELECT clock_timestamp() AS t0 \gset
\o :out
SELECT smartetl.report_html(now() - interval '30 days', now());
\o :timing
SELECT 'report_html of the last 30 days: '
       || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000) || ' ms';
\o :out_empty
SELECT smartetl.report_html('1990-01-01 00:00+00', '1990-01-08 00:00+00');
\o :out_long
SELECT smartetl.report_html(now() - interval '400 days', now());
\o
ROLLBACK;
SQL
then
	result OK "report_html() runs as smartetl_reader (30 days, an empty range, 400 days)"
else
	result FAIL "report_html() runs as smartetl_reader (30 days, an empty range, 400 days)"
	sed 's/^/#   /' "$OUT/psql.log" >>"$RAW"
	STAGE_FAILED=1
fi
T1=$(date +%s%N)
note "$(cat "$OUT/timing.txt" 2>/dev/null) (whole psql session, with the test rows and 3 reports: $(((T1 - T0) / 1000000)) ms)"

if [ -s "$OUT/report.html" ]; then
	note "report: $OUT/report.html, $(wc -c <"$OUT/report.html") bytes"
	# ---- static checks (python3 html.parser) ------------------------------------
	check_html "$OUT/report.html" "30 days" \
		"$EVIL" "$EVIL_ERROR" "report<&>check/$PLANTED" "Runs per day" "Busiest hours"
	check_html "$OUT/report_empty.html" "empty range" \
		"No runs in this range." "No pipeline ran in this range." "No errors in this range." \
		"No anomalies in this range."
	if grep -q '<svg' "$OUT/report_empty.html"; then
		result FAIL "empty range: no chart, only sentences"
	else
		result OK "empty range: no chart, only sentences"
	fi
	check_html "$OUT/report_400d.html" "400 days" "Runs per week"

	# ---- headless Chromium -------------------------------------------------------
	if [ ! -x "$CHROMIUM" ] || [ ! -d "$HERE/node_modules/playwright-core" ]; then
		result FAIL "chromium ($CHROMIUM) and playwright-core are available"
		note "playwright-core is installed from test/report/package-lock.json with the packages: (cd test/report && npm ci)"
		STAGE_FAILED=1
	elif ! (cd "$HERE" && node render.mjs "$OUT/report.html" "$OUT/report.png" "$EVIL" "$EVIL_ERROR" "$PLANTED") \
		>>"$RAW" 2>"$OUT/render.err"; then
		result FAIL "render.mjs ran to the end"
		sed 's/^/#   /' "$OUT/render.err" | head -30 >>"$RAW"
		STAGE_FAILED=1
	fi
else
	result FAIL "report.html was written"
	STAGE_FAILED=1
fi

# ---- TAP: number the results ----------------------------------------------------
awk '/^(not )?ok - / { n++; sub(/^ok - /, "ok " n " - "); sub(/^not ok - /, "not ok " n " - ") } { print } END { print "1.." n }' "$RAW"
if grep -q '^not ok' "$RAW" || [ "$STAGE_FAILED" = 1 ]; then
	echo "# FAILED (files in $OUT)"
	exit 1
fi
echo "# all passed (files in $OUT)"
