#!/usr/bin/env bash
# scripts/test-repeat.sh [N] — run the whole suite N times (default 3) in a row,
# each from a fresh clone of this checkout's HEAD (with ../shared beside the
# clones when it is beside this checkout), and check that the runs agree.
#
# Two runs agree when every check has the same outcome in both: the same
# TAP lines (ok / not ok, SKIP and TODO marks, descriptions) and pg_regress
# results in the same order, with numbers masked (descriptions carry
# measured figures: times, rates; and long hex strings, such as a signed
# link's random token), and the same per-stage counts.  Prints each
# run's wall time and outcome, then "identical" or the first differences.
# Logs are kept in /tmp/smartetl-repeat.<pid>/.  Runs as root (README's test
# command); takes N times the suite's time.
set -uo pipefail

N=${1:-3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/smartetl-repeat.$$
mkdir -p "$WORK"
[ -d "$REPO/../shared" ] && ln -s "$(cd "$REPO/../shared" && pwd)" "$WORK/shared"

outcomes() {
	# what must agree between runs, numbers masked
	grep -E '^(not )?ok [0-9]|^[^ ]+\.sql \.+|^(test| ) +[a-z_0-9]+ +\.\.\. |^pg_regress [0-9]|^[0-9]+ checks in|SKIP' "$1" |
		sed -E 's/[0-9a-f]{16,}([.][0-9a-f]{16,})?/HEX/g; s/[0-9]+([.,][0-9]+)*/N/g; s/ +/ /g; s/ $//'
}

rc_all=0
for i in $(seq 1 "$N"); do
	rm -rf "$WORK/main"
	git clone -q "$REPO" "$WORK/main"
	start=$(date +%s)
	(cd "$WORK/main" && bash .ci/run) > "$WORK/run$i.log" 2>&1
	rc=$?
	outcomes "$WORK/run$i.log" > "$WORK/run$i.outcomes"
	printf 'run %d: rc=%d, %d s, %s\n' "$i" "$rc" "$(($(date +%s) - start))" \
		"$(grep -E '^[0-9]+ checks in' "$WORK/run$i.log" | tail -1)"
	[ $rc -eq 0 ] || rc_all=1
done
rm -rf "$WORK/main"

same=1
for i in $(seq 2 "$N"); do
	if ! diff -q "$WORK/run1.outcomes" "$WORK/run$i.outcomes" >/dev/null; then
		same=0
		echo "run $i differs from run 1 (numbers masked):"
		diff "$WORK/run1.outcomes" "$WORK/run$i.outcomes" | head -20
	fi
done
if [ $same -eq 1 ]; then
	echo "identical: $N runs, $(wc -l < "$WORK/run1.outcomes") outcome lines each (logs in $WORK)"
else
	rc_all=1
fi
exit $rc_all
