#!/bin/bash
# test/intake/intake_ack.sh — signed acknowledge links end to end, with curl
# against the intake worker of a running cluster (PGHOST/PGPORT/PGUSER of a
# cluster started by scripts/lib.sh whose workers serve database
# "postgres"; SMARTETL_CLUSTER_DIR = its folder, for the server log).
#
# Turns the listener on at a free loopback port with smartetl.public_url
# pointing at it, fires a real alert (a failed run, a rule, a notify
# channel, evaluate_alerts), takes the link from the queued notification,
# then checks, printing TAP: GET and HEAD show the page and change nothing;
# a forged link (one signature digit changed), an expired one, a malformed
# one and a wrong method are refused with their page and 4xx; the POST of
# the page's form acknowledges (smartetl.alert.acked_by = the name typed);
# the same link again, and another link of the acknowledged alert, are
# refused; the next notification says who acknowledged and has no link;
# the worker never restarted and no token reached the server log.
set -uo pipefail
cd "$(dirname "$0")/../.."

n=0
failed=0
ok() {	# ok COND-EXIT-STATUS NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | head -20 | sed 's/^/#   /'
	fi
}
is() {	# is GOT WANT NAME
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3" "got:  $1
want: $2"; fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
TMP=$(mktemp -d /tmp/smartetl-intake-ack.XXXXXX)
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

cleanup() {
	q "ALTER SYSTEM RESET smartetl.http_listen; ALTER SYSTEM RESET smartetl.public_url" >/dev/null 2>&1
	q "SELECT pg_reload_conf()" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

# code BODYFILE HEADERFILE METHOD URL [curl args]: the HTTP status
code() {
	local body=$1 head=$2 method=$3 url=$4
	shift 4
	if [ "$method" = HEAD ]; then
		curl -s -I -o "$head" -w '%{http_code}' --max-time 20 "$url" "$@"
		: >"$body"
	else
		curl -s -X "$method" -o "$body" -D "$head" -w '%{http_code}' --max-time 20 "$url" "$@"
	fi
}
acked_by() { q "SELECT coalesce(acked_by, '<none>') FROM smartetl.alert WHERE alert_id = $ALERT"; }
used() { q "SELECT count(*) FROM smartetl.ack_link_use WHERE alert_id = $ALERT"; }

# ---------------------------------------------------------------- setup
q "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl" >/dev/null
q "ALTER SYSTEM SET smartetl.http_listen = '127.0.0.1:$PORT'" >/dev/null
q "ALTER SYSTEM SET smartetl.public_url = '$BASE/'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 200); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/api/v1/health")" = 200 ] && break
	sleep 0.1
done
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/api/v1/health")" 200 \
	"the listener runs (smartetl.http_listen = 127.0.0.1:$PORT, smartetl.public_url = $BASE/)"
PID=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smartetl intake worker'")

q "INSERT INTO smartetl.channel (name, kind, target) VALUES ('ack_e2e_bus', 'notify', 'ack_e2e_bus');
   INSERT INTO smartetl.alert_rule (name, kind, selector, channels, group_wait, repeat_interval)
   VALUES ('ack-e2e', 'run_failed', '{\"namespace\": \"ack_e2e\"}', '{ack_e2e_bus}', '0', '1 second')" >/dev/null
q "SELECT smartetl.ingest('csv', E'job,run_id,start,end,status,error\\nack_e2e_load,1,' || (now() - interval '2 minutes')::text || ',' || (now() - interval '1 minute')::text || ',failed,disk full on /data',
                          '{\"namespace\": \"ack_e2e\"}')" >/dev/null
q "SELECT smartetl.evaluate_alerts()" >/dev/null
ALERT=$(q "SELECT alert_id FROM smartetl.alert WHERE rule_name = 'ack-e2e' AND state = 'firing'")
URL=$(q "SELECT a->'annotations'->>'ack_url' FROM smartetl.delivery d, jsonb_array_elements(d.notification->'alerts') a
         WHERE d.channel = 'ack_e2e_bus' AND a->'annotations' ? 'ack_url' ORDER BY d.delivery_id LIMIT 1")
TOKEN=${URL##*/ack/}
ok "$([[ -n "$ALERT" && "$URL" =~ ^$BASE/ack/$ALERT\.[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64}$ ]]; echo $?)" \
	"the alert's notification carries its signed link ($URL)"
SLACK=$(q "SELECT b->'accessory'->>'url' FROM smartetl.delivery d,
           jsonb_array_elements(smartetl._payload('slack', d.notification)->'body'->'blocks') b
           WHERE d.channel = 'ack_e2e_bus' AND b ? 'accessory' ORDER BY d.delivery_id LIMIT 1")
is "$SLACK" "$URL" "its Slack payload has an Acknowledge button with that link"
SPARE=$(q "SELECT smartetl.ack_link($ALERT)")
SPARE=${SPARE##*/ack/}

# ---------------------------------------------------------------- GET, HEAD: nothing changes
st=$(code "$TMP/get.html" "$TMP/get.h" GET "$URL")
is "$st" 200 "GET of the link: 200"
ok "$(grep -qi '^content-type: text/html; charset=utf-8' "$TMP/get.h" && grep -qi "^content-security-policy: default-src 'none'" "$TMP/get.h" &&
	grep -qi '^referrer-policy: no-referrer' "$TMP/get.h" && grep -qi '^cache-control: no-store' "$TMP/get.h"; echo $?)" \
	"the page is HTML, without script, framing, caching or Referer" "$(cat "$TMP/get.h")"
ok "$(grep -q '<h1>Acknowledge this alert?</h1>' "$TMP/get.html" && grep -q '<form method="post" action=""' "$TMP/get.html" &&
	grep -q 'ack_e2e/ack_e2e_load' "$TMP/get.html"; echo $?)" "the page shows the alert and a POST button" "$(head -c 2000 "$TMP/get.html")"
st=$(code "$TMP/head.html" "$TMP/head.h" HEAD "$URL")
is "$st" 200 "HEAD of the link: 200"
is "$(acked_by)/$(used)" "<none>/0" "GET and HEAD acknowledge nothing (what link previews and mail scanners do)"

# ---------------------------------------------------------------- refused links
last=${TOKEN: -1}
if [ "$last" = 0 ]; then swap=1; else swap=0; fi
FORGED="${TOKEN%?}$swap"
st=$(code "$TMP/f.html" "$TMP/f.h" GET "$BASE/ack/$FORGED")
is "$st" 403 "GET of a forged link (one signature digit changed): 403"
st=$(code "$TMP/f.html" "$TMP/f.h" POST "$BASE/ack/$FORGED" --data 'by=mallory')
is "$st" 403 "POST of the forged link: 403"
ok "$(grep -q '<h1>Invalid acknowledge link</h1>' "$TMP/f.html"; echo $?)" "with a page saying the link is invalid" "$(cat "$TMP/f.html")"
OTHER_ID="$((ALERT + 1000)).${TOKEN#*.}"
st=$(code "$TMP/f.html" "$TMP/f.h" POST "$BASE/ack/$OTHER_ID" --data 'by=mallory')
is "$st" 403 "POST of the link's signature on another alert id: 403"
EXPIRED=$(q "SELECT smartetl._ack_link_token($ALERT, now() - interval '1 second')")
st=$(code "$TMP/e.html" "$TMP/e.h" POST "$BASE/ack/$EXPIRED" --data 'by=mallory')
is "$st" 410 "POST of an expired link: 410"
ok "$(grep -q '<h1>Expired acknowledge link</h1>' "$TMP/e.html"; echo $?)" "with a page saying it expired" "$(cat "$TMP/e.html")"
st=$(code "$TMP/m.html" "$TMP/m.h" GET "$BASE/ack/${TOKEN:0:40}")
is "$st" 400 "GET of a cut link: 400"
st=$(code "$TMP/m.html" "$TMP/m.h" POST "$BASE/ack/%3Cscript%3E" --data 'by=mallory')
is "$st" 400 "POST of a path that is no token: 400"
st=$(code "$TMP/m.html" "$TMP/m.h" PUT "$BASE/ack/$TOKEN" --data 'by=mallory')
ok "$([ "$st" = 405 ] && grep -qi '^allow: GET, HEAD, POST' "$TMP/m.h"; echo $?)" "PUT: 405 with Allow" "$st $(cat "$TMP/m.h")"
is "$(acked_by)/$(used)" "<none>/0" "no refused request acknowledged anything"

# ---------------------------------------------------------------- POST: acknowledged, once
st=$(code "$TMP/p.html" "$TMP/p.h" POST "$URL" --data-urlencode 'by=Alice Smith')
is "$st" 200 "POST of the page's form: 200"
ok "$(grep -q '<h1>Alert acknowledged</h1>' "$TMP/p.html"; echo $?)" "with a page saying so" "$(cat "$TMP/p.html")"
is "$(q "SELECT acked_by || '|' || ack_comment || '|' || (acked_at > now() - interval '1 minute') FROM smartetl.alert WHERE alert_id = $ALERT")" \
	"Alice Smith|acknowledged with a signed link|true" "smartetl.alert.acked_by is the name typed on the page"
st=$(code "$TMP/r.html" "$TMP/r.h" POST "$URL" --data 'by=mallory')
is "$st" 409 "the same link again (replay): 409"
ok "$(grep -q '<h1>Acknowledge link already used</h1>' "$TMP/r.html"; echo $?)" "with a page saying it was used" "$(cat "$TMP/r.html")"
st=$(code "$TMP/r.html" "$TMP/r.h" GET "$BASE/ack/$SPARE")
is "$st" 409 "another link of the acknowledged alert: 409"
ok "$(grep -q '<h1>Alert already acknowledged</h1>' "$TMP/r.html" && grep -q 'by Alice Smith' "$TMP/r.html"; echo $?)" \
	"with a page saying who acknowledged it" "$(cat "$TMP/r.html")"
is "$(acked_by)/$(used)" "Alice Smith/1" "the acknowledgement stands, the link is recorded as used once"

# the next notification (repeat_interval 1 s) says who acknowledged and carries no link
sleep 1.2
q "SELECT smartetl.evaluate_alerts()" >/dev/null
is "$(q "SELECT (a->'annotations'->>'acked_by') || '|' || (a->'annotations' ? 'ack_url') FROM smartetl.delivery d,
         jsonb_array_elements(d.notification->'alerts') a WHERE d.channel = 'ack_e2e_bus' ORDER BY d.delivery_id DESC LIMIT 1")" \
	"Alice Smith|false" "the next notification says who acknowledged and has no link"

# ---------------------------------------------------------------- the worker
is "$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smartetl intake worker'")" "$PID" "the intake worker never restarted"
log=${SMARTETL_CLUSTER_DIR:+$SMARTETL_CLUSTER_DIR/server.log}
if [ -n "$log" ] && [ -r "$log" ]; then
	ok "$(! grep -q "${TOKEN##*.}" "$log"; echo $?)" "no link signature reached the server log"
fi

q "DELETE FROM smartetl.alert_rule WHERE name = 'ack-e2e'; DELETE FROM smartetl.delivery WHERE channel = 'ack_e2e_bus';
   DELETE FROM smartetl.channel WHERE name = 'ack_e2e_bus'; DELETE FROM smartetl.alert WHERE rule_name = 'ack-e2e';
   DELETE FROM smartetl.alert_group WHERE rule_name = 'ack-e2e'; DELETE FROM smartetl.ack_link_use;
   DELETE FROM smartetl.pipeline WHERE namespace = 'ack_e2e'" >/dev/null
echo "1..$n"
[ "$failed" = 0 ]
