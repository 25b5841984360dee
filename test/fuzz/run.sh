#!/bin/sh
# test/fuzz/run.sh [seconds] [harness ...]
#
# Build the harnesses, then run each one in turn (never two at once) for
# the given time, default 600 s.  Harness names: csv jsonl logformat
# logsplit template airflow qsketch cron (default: all eight).  `test/fuzz/run.sh 20` is the short CI mode.
#
# Seeds come from test/fuzz/corpus/<name>/ (read only); libFuzzer writes
# the inputs it finds to test/fuzz/build/corpus/<name>/ and crash/leak/
# timeout reproducers to test/fuzz/build/artifacts/<name>/, both under the
# gitignored build directory.  Logs: test/fuzz/build/logs/<name>.log, and a
# one-line summary per harness in test/fuzz/build/logs/summary.txt.
#
# Environment:
#   FRESH=1      start from the seeds only (discard build/corpus/<name>)
#   NICE=...     priority prefix, default "nice -n 19" (empty to disable)
#   FUZZ_FLAGS   extra libFuzzer flags, e.g. "-seed=1 -max_len=8192"
#
# Exit status: 0 if every harness ran clean, 1 if any reported a crash,
# leak, timeout or invariant violation.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
names=${*:-csv jsonl logformat logsplit template airflow qsketch cron}
NICE=${NICE-nice -n 19}
FUZZ_FLAGS=${FUZZ_FLAGS:-}

case $secs in
	''|*[!0-9]*) echo "usage: $0 [seconds] [csv|jsonl|logformat|logsplit|template|airflow|qsketch|cron ...]" >&2; exit 2 ;;
esac

"$here/build.sh"

mkdir -p "$here/build/logs"
summary="$here/build/logs/summary.txt"
: > "$summary"
status=0

for name in $names; do
	bin="$here/build/fuzz_$name"
	seeds="$here/corpus/$name"
	work="$here/build/corpus/$name"
	arts="$here/build/artifacts/$name"
	log="$here/build/logs/$name.log"

	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "run.sh: unknown harness '$name'" >&2
		exit 2
	fi
	[ "${FRESH:-0}" = 1 ] && rm -rf "$work"
	mkdir -p "$work" "$arts"

	echo "run.sh: fuzz_$name for ${secs}s (log: $log)"
	rc=0
	# shellcheck disable=SC2086
	$NICE "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
		-artifact_prefix="$arts/" $FUZZ_FLAGS "$work" "$seeds" > "$log" 2>&1 || rc=$?

	last=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	line="$name rc=$rc secs=$secs execs=${execs:-?} exec/s=${speed:-?} | $last"
	echo "$line" | tee -a "$summary"
	if [ "$rc" -ne 0 ]; then
		status=1
		grep -a -E 'ERROR: |FUZZ INVARIANT|SUMMARY:|Test unit written' "$log" | head -n 8 >&2 || true
	fi
done

exit $status
