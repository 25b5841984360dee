#!/bin/bash
# test/intake/run.sh — the intake's end-to-end tests, run by scripts/test.sh
# against its cluster (PGHOST/PGPORT/PGUSER, SMARTETL_CLUSTER_DIR set):
#   intake_http.py    the HTTP intake: keys, endpoints, answers, hostile clients, TLS
#   intake_load.py    wrk for 30 s at 256 connections (floor 2,000 events/s), then kill -9 under load
#   intake_follow.py  followed files: rotation by a separate writer, kill -9
#   intake_ack.sh     signed acknowledge links with curl: page, POST, forged, expired, replayed
# Each prints TAP; the first failure fails the stage (after all of them ran).
set -uo pipefail
cd "$(dirname "$0")/../.."
rc=0
for t in intake_http intake_load intake_follow; do
	echo "# test/intake/$t.py"
	/usr/bin/python3 "test/intake/$t.py" || rc=1
done
echo "# test/intake/intake_ack.sh"
bash test/intake/intake_ack.sh || rc=1
exit $rc
