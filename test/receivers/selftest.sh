#!/usr/bin/env bash
# Self-test of the real test receivers: http_sink.py, smtp_sink.py, alertmanager.sh.
# Starts each on free 127.0.0.1 ports in a temp dir, drives them with curl, prints
# TAP, stops everything on exit and exits non-zero on any failure.
#   bash test/receivers/selftest.sh        (KEEP=1 keeps the temp dir)
set -uo pipefail
shopt -s lastpipe   # `cmd | check ...` runs check in this shell, so the TAP counter sticks

here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

"$here/deps.sh" || { echo "Bail out! could not install the receivers' dependencies"; exit 1; }

T=$(mktemp -d /tmp/receivers-selftest.XXXXXX)
PIDS=()
AM_DIRS=()
n=0
failed=0

cleanup() {
    local p d
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for d in "${AM_DIRS[@]}"; do "$here/alertmanager.sh" stop "$d" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$failed" -gt 0 ] || [ -n "${KEEP:-}" ]; then
        echo "# logs kept in $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {   # ok <condition-exit-status> <description> [diagnostic]
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        failed=$((failed + 1))
        echo "not ok $n - $2"
        [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
    fi
}

# cmd | check <description> <python expression over d, the JSON read from stdin>
check() {
    local desc=$1 expr=$2 input out
    input=$(cat)
    out=$(printf '%s' "$input" | "$PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
r = eval(sys.argv[1])
sys.exit(0 if r else 1)' "$expr" 2>&1)
    ok $? "$desc" "expected: $expr
got: ${input:0:1500}
$out"
}

free_ports() {   # free_ports N : N distinct free TCP ports on 127.0.0.1
    "$PY" -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# start_bg <name> <cmd...> : start in background, wait for "ready" on stdout
start_bg() {
    local name=$1; shift
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        grep -q '^ready$' "$T/$name.out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$T/$name.err" >&2
    return 1
}

read -r HP SP SP2 AP AP2 <<<"$(free_ports 5)"
H="http://127.0.0.1:$HP"

# ---------------------------------------------------------------- HTTP sink
start_bg http "$PY" "$here/http_sink.py" --port "$HP" --log "$T/http.jsonl"
ok $? "http_sink ready on 127.0.0.1:$HP"

ctl() { curl -sfS --max-time 5 -X POST "$H/_control" -H 'Content-Type: application/json' -d "$1" >/dev/null; }
post() {   # post <path> <json> : prints "<http_code>"; body in $T/body, headers in $T/hdr
    curl -sS --max-time "${MAXT:-5}" -o "$T/body" -D "$T/hdr" -w '%{http_code}' \
        -X POST "$H$1" -H 'Content-Type: application/json' -d "$2"
}

code=$(post /teams '{"text":"Pipeline x failed","n":1}')
ok "$([ "$code" = 200 ]; echo $?)" "mode ok: POST /teams answers 200" "got $code"
check "mode ok: JSON answer body" 'd.get("ok") is True' < "$T/body"
curl -sfS "$H/_requests?path=/teams" | check "request recorded with method, path, headers, body and parsed json" \
    'len(d)==1 and d[0]["method"]=="POST" and d[0]["path"]=="/teams" and d[0]["json"]=={"text":"Pipeline x failed","n":1} and d[0]["headers"]["Content-Type"]=="application/json" and d[0]["answered"]==200 and d[0]["seq"]==1 and isinstance(d[0]["time"], float)'

code=$(post /slack/T000/B000/XXX '{"text":"hi"}')
ok "$([ "$code" = 200 ] && [ "$(cat "$T/body")" = ok ] && grep -qi '^content-type: text/plain' "$T/hdr"; echo $?)" \
    "mode ok on /slack: text/plain \"ok\" like Slack's API" "code=$code body=$(cat "$T/body")"

ctl '{"path":"/teams","mode":"status","status":500,"times":2}'
codes="$(post /teams '{"try":1}') $(post /teams '{"try":2}') $(post /teams '{"try":3}')"
ok "$([ "$codes" = "500 500 200" ]; echo $?)" "mode status 500 times 2, then back to ok" "got $codes"
curl -sfS "$H/_requests?path=/teams" | check "the three tries are recorded with their answers" \
    '[r["answered"] for r in d] == [200, 500, 500, 200] and [r["json"] for r in d[1:]] == [{"try":1},{"try":2},{"try":3}]'

ctl '{"path":"/generic","mode":"retry_after","retry_after":2,"times":1}'
code=$(post /generic/hook '{"a":1}')
ra=$(tr -d '\r' < "$T/hdr" | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
ok "$([ "$code" = 429 ] && [ "$ra" = 2 ]; echo $?)" "mode retry_after: 429 with Retry-After: 2" "code=$code retry-after=$ra"
code=$(post /generic/hook '{"a":2}')
ok "$([ "$code" = 200 ]; echo $?)" "retry_after times 1 reverts to ok" "got $code"

ctl '{"path":"/close","mode":"close"}'
post /close '{"a":1}' >/dev/null 2>&1
rc=$?
ok "$([ "$rc" = 52 ]; echo $?)" "mode close: connection closed without an answer (curl exit 52)" "curl exit $rc"

ctl '{"path":"/hang","mode":"hang"}'
t0=$(date +%s%N)
( MAXT=2 post /hang '{"a":1}' >/dev/null 2>&1; echo $? > "$T/hang.rc" ) &
hang_pid=$!
sleep 0.5
t1=$(date +%s%N)
code=$(post /other '{"while":"hanging"}')
t2=$(date +%s%N)
still=$(kill -0 "$hang_pid" 2>/dev/null && echo yes || echo no)
wait "$hang_pid"
t3=$(date +%s%N)
ok "$([ "$code" = 200 ] && [ "$still" = yes ] && [ $(( (t2 - t1) / 1000000 )) -lt 1000 ]; echo $?)" \
    "another request is served while one hangs" "code=$code hang-still-open=$still took=$(( (t2 - t1) / 1000000 ))ms"
ok "$([ "$(cat "$T/hang.rc")" = 28 ] && [ $(( (t3 - t0) / 1000000 )) -ge 1900 ]; echo $?)" \
    "mode hang: no answer until curl --max-time 2 gives up (curl exit 28)" "curl exit $(cat "$T/hang.rc") after $(( (t3 - t0) / 1000000 ))ms"

curl -sfS "$H/_requests" | check "hang/close recorded as such; control and query requests not recorded" \
    '[r["answered"] for r in d if r["path"] in ("/close","/hang")] == ["close","hang"] and not any(r["path"].startswith("/_") for r in d)'

"$PY" -c '
import json, sys, urllib.request
lines = [json.loads(l) for l in open(sys.argv[1])]
api = json.load(urllib.request.urlopen(sys.argv[2] + "/_requests"))
sys.exit(0 if lines == api and [r["seq"] for r in lines] == list(range(1, len(lines) + 1)) else 1)' "$T/http.jsonl" "$H"
ok $? "log file holds the same JSON lines as /_requests, seq 1..n"

curl -sfS -X POST "$H/_reset" >/dev/null
curl -sfS "$H/_requests" | check "POST /_reset clears the records" 'd == []'
ok "$([ ! -s "$T/http.jsonl" ] && [ "$(post /hang '{}')" = 200 ]; echo $?)" "reset also truncates the log and clears the rules"

# ---------------------------------------------------------------- SMTP sink
printf '%s\r\n' \
    'From: smartetl <a@x>' 'To: b@y' 'Subject: =?utf-8?q?Pipeline_failed_=E2=80=94_x?=' \
    'Date: Sun, 22 Nov 2026 10:00:00 +0000' 'Message-ID: <selftest-1@x>' 'MIME-Version: 1.0' \
    'Content-Type: multipart/alternative; boundary="=_b"' '' \
    '--=_b' 'Content-Type: text/plain; charset=utf-8' 'Content-Transfer-Encoding: 8bit' '' \
    'Pipeline x failed at step load.' 'Caf'$'\xc3\xa9'' is closed.' \
    '--=_b' 'Content-Type: text/html; charset=utf-8' '' \
    '<p>Pipeline <b>x</b> failed.</p>' '--=_b--' > "$T/msg.eml"

start_bg smtp "$PY" "$here/smtp_sink.py" --port "$SP" --log "$T/smtp.jsonl"
ok $? "smtp_sink ready on 127.0.0.1:$SP (plain)"
curl -sS --max-time 10 "smtp://127.0.0.1:$SP" --mail-from a@x --mail-rcpt b@y --mail-rcpt c@z -T "$T/msg.eml" 2>"$T/curl.err"
ok $? "curl smtp:// sends a multipart/alternative message" "$(cat "$T/curl.err")"
tail -n1 "$T/smtp.jsonl" 2>/dev/null | check "stored line: envelope, decoded subject, text and html parts, raw" \
    'd["seq"]==1 and d["mail_from"]=="a@x" and d["rcpt_tos"]==["b@y","c@z"] and d["subject"]=="Pipeline failed \u2014 x" and d["text"]=="Pipeline x failed at step load.\nCaf\u00e9 is closed." and d["html"]=="<p>Pipeline <b>x</b> failed.</p>" and d["headers"]["Message-ID"]=="<selftest-1@x>" and "multipart/alternative" in d["raw"] and d["tls"] is False and d["auth_user"] is None'

start_bg smtps "$PY" "$here/smtp_sink.py" --port "$SP2" --log "$T/smtp2.jsonl" --starttls --user alice --password 's3cret' --cert-dir "$T/tls"
ok $? "smtp_sink ready on 127.0.0.1:$SP2 (STARTTLS + AUTH)"
curl -sS --max-time 10 "smtp://127.0.0.1:$SP2" --mail-from a@x --mail-rcpt b@y -T "$T/msg.eml" 2>/dev/null
rc=$?
ok "$([ "$rc" != 0 ]; echo $?)" "STARTTLS server refuses MAIL without TLS" "curl exit $rc"
curl -sS --max-time 10 "smtp://127.0.0.1:$SP2" --ssl-reqd -k --user alice:wrong --mail-from a@x --mail-rcpt b@y -T "$T/msg.eml" 2>/dev/null
rc=$?
ok "$([ "$rc" = 67 ]; echo $?)" "wrong password refused (curl exit 67)" "curl exit $rc"
curl -sS --max-time 10 "smtp://127.0.0.1:$SP2" --ssl-reqd -k --user alice:s3cret --mail-from a@x --mail-rcpt b@y -T "$T/msg.eml" 2>"$T/curl.err"
ok $? "curl --ssl-reqd -k --user: STARTTLS + AUTH PLAIN accepted" "$(cat "$T/curl.err")"
curl -sS --max-time 10 "smtp://127.0.0.1:$SP2" --ssl-reqd --cacert "$T/tls/cert.pem" --login-options AUTH=LOGIN --user alice:s3cret --mail-from a@x --mail-rcpt b@y -T "$T/msg.eml" 2>"$T/curl.err"
ok $? "AUTH LOGIN, certificate verified with --cacert (CN/SAN localhost, 127.0.0.1)" "$(cat "$T/curl.err")"
"$PY" -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$T/smtp2.jsonl" | \
    check "both stored with tls=true and auth_user=alice, nothing stored for the refused tries" \
    'len(d)==2 and all(m["tls"] is True and m["auth_user"]=="alice" and m["html"]=="<p>Pipeline <b>x</b> failed.</p>" for m in d)'

# ---------------------------------------------------------------- Alertmanager
AM_DIRS+=("$T/am")
out=$("$here/alertmanager.sh" start "$T/am" "$AP" 2>&1)
ok "$([ "$out" = ready ]; echo $?)" "alertmanager.sh start: Alertmanager ready on 127.0.0.1:$AP" "$out"
curl -sfS "http://127.0.0.1:$AP/api/v2/status" | check "status: clustering disabled, our config loaded" \
    '"null" in d["config"]["original"] and d.get("cluster", {}).get("status") in ("disabled", None)'
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
code=$(curl -sS --max-time 10 -o "$T/body" -w '%{http_code}' -X POST "http://127.0.0.1:$AP/api/v2/alerts" \
    -H 'Content-Type: application/json' \
    -d '[{"labels":{"alertname":"PipelineFailed","pipeline":"x","severity":"critical"},"annotations":{"summary":"Pipeline x failed","description":"step load: connection refused"},"startsAt":"'"$now"'","generatorURL":"http://127.0.0.1/x"}]')
ok "$([ "$code" = 200 ]; echo $?)" "POST /api/v2/alerts accepted" "code=$code $(cat "$T/body")"
"$here/alertmanager.sh" alerts "$AP" | check "alert read back via /api/v2/alerts with its labels and annotations" \
    'len(d)==1 and d[0]["labels"]=={"alertname":"PipelineFailed","pipeline":"x","severity":"critical"} and d[0]["annotations"]["summary"]=="Pipeline x failed" and d[0]["generatorURL"]=="http://127.0.0.1/x" and d[0]["status"]["state"]=="active" and [r["name"] for r in d[0]["receivers"]]==["null"]'
"$here/alertmanager.sh" alerts "$AP" 'pipeline="y"' | check "alerts <port> <filter> filters by label matcher" 'd == []'

# Alertmanager forwarding to the HTTP sink (optional webhook-url argument).
AM_DIRS+=("$T/am2")
out=$("$here/alertmanager.sh" start "$T/am2" "$AP2" "$H/am-webhook" 2>&1)
ok "$([ "$out" = ready ]; echo $?)" "alertmanager.sh start with a webhook receiver" "$out"
curl -sfS -o /dev/null -X POST "http://127.0.0.1:$AP2/api/v2/alerts" -H 'Content-Type: application/json' \
    -d '[{"labels":{"alertname":"PipelineFailed","pipeline":"x"},"startsAt":"'"$now"'"}]'
got=1
for _ in $(seq 1 50); do   # group_wait 1s
    curl -sfS "$H/_requests?path=/am-webhook" | "$PY" -c 'import json,sys; sys.exit(0 if json.load(sys.stdin) else 1)' && { got=0; break; }
    sleep 0.2
done
ok $got "Alertmanager delivers the group to the HTTP sink within ~1 s"
curl -sfS "$H/_requests?path=/am-webhook" | check "webhook payload: version 4, status firing, our alert" \
    'd[0]["json"]["version"]=="4" and d[0]["json"]["status"]=="firing" and d[0]["json"]["alerts"][0]["labels"]["pipeline"]=="x"'

"$here/alertmanager.sh" stop "$T/am"
pid_gone=0
curl -sf --max-time 2 "http://127.0.0.1:$AP/api/v2/status" >/dev/null 2>&1 && pid_gone=1
ok $pid_gone "alertmanager.sh stop: no longer answering"

# ---------------------------------------------------------------- SIGTERM
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}"; rc1=$?
kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}"; rc2=$?
ok "$([ "$rc1" = 0 ] && [ "$rc2" = 0 ]; echo $?)" "http_sink and smtp_sink exit 0 on SIGTERM" "http=$rc1 smtp=$rc2"

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
