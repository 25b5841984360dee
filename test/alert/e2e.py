#!/usr/bin/python3
"""End-to-end alerting against real receivers, with the alert worker running.

Usage: test/alert/e2e.py   (PGHOST/PGPORT/PGUSER of a cluster started by
scripts/lib.sh, whose alert worker serves database "postgres";
SMARTETL_CLUSTER_DIR = its directory, for the crash test)

Starts the HTTP sink, an HTTPS sink with a self-signed certificate, the SMTP
sink (STARTTLS + AUTH) and Alertmanager from test/receivers on loopback ports
picked at run time (SMARTETL_E2E_PORTS=http,smtp,am,https pins them), creates
one channel of every kind, then checks, printing TAP:
  * a failed run reaches Teams, Slack, a webhook, Alertmanager, e-mail and
    LISTEN/NOTIFY in the shapes they accept; recovery sends resolved
    notifications;
  * an HTTPS receiver whose certificate does not verify: the delivery fails
    with the TLS error recorded and nothing is sent (insecure_skip_verify
    gets through); a 302 is a failed attempt and its Location is never
    requested; a delivery failing every time is dead after
    smartetl.max_attempts with its last error;
  * the webhook down for a minute, then back: every notification arrives,
    once per idempotency key, in order;
  * 429 with Retry-After: the next attempt waits for it;
  * a receiver that hangs: another channel's notification, queued after the
    hang began, arrives before the hanging request times out;
  * smartetl.allowed_hosts changed and reloaded (SIGHUP): the worker refuses
    other hosts; the SMTP password never reaches the server log;
  * kill -9 of the server in the middle of a storm of 1,000 alerts, restart:
    every delivery committed before the crash is sent under its key, every
    alert is notified under exactly one key, and only deliveries claimed at
    the crash are sent again;
  * a 20,000-byte error (a Java stack trace) on a LISTEN/NOTIFY rule and a
    webhook rule: the webhook gets the whole notification, the listener a
    truncated pointer to its delivery; a 17 MB payload and a channel with
    options that do not parse fail alone; a mail subject of 250 four-byte
    characters arrives folded and whole;
  * a statement of the worker past smartetl.worker_statement_timeout is
    cancelled, logged and survived: the worker delivers once it is fast;
  * DROP EXTENSION smartetl CASCADE while the worker is busy completes, and
    CREATE EXTENSION brings the same worker back to work;
  * on call: a deadline passing with no run since its scheduled start
    fires then, with smartetl.naptime at 60 s (webhook and Alertmanager); a
    maintenance window with alerts firing through it (still-firing ones
    notified at its end, cleared ones never); a dbt invocation failing with
    20 failed nodes gives one notification listing them; a task failing
    twice then succeeding on its third try notifies nobody; an
    unacknowledged alert escalates to e-mail, not before its step, and an
    acknowledged one does not.

No check is a timing: a notification must arrive within a bounded wait
(measured latencies are printed as "# " comments).  Every check that does
not run prints "ok N # SKIP reason": without SMARTETL_CLUSTER_DIR the server
log and kill -9 checks, and the tests not named in SMARTETL_E2E_ONLY=name,name
(which runs only those, after the setup).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
import pgcluster  # noqa: E402
RECV = os.path.join(ROOT, "test", "receivers")


def free_port():
    """A TCP port on 127.0.0.1 that the kernel says is free now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# the receivers' ports, picked at run time (SMARTETL_E2E_PORTS=http,smtp,am,tls pins them)
if os.environ.get("SMARTETL_E2E_PORTS"):
    HTTP_PORT, SMTP_PORT, AM_PORT, TLS_PORT = [int(x) for x in os.environ["SMARTETL_E2E_PORTS"].split(",")]
else:
    HTTP_PORT, SMTP_PORT, AM_PORT, TLS_PORT = free_port(), free_port(), free_port(), free_port()
# Latency is never asserted as a time: a notification must arrive within a
# bounded wait (wait_for's timeout, WAIT seconds; ~10x more under valgrind,
# SMARTETL_E2E_SLOW=1).  Measured times are printed as TAP comments.
SLOW = 10 if os.environ.get("SMARTETL_E2E_SLOW") == "1" else 1
WAIT = 15.0 * SLOW
tmp = tempfile.mkdtemp(prefix="smartetl-alert-e2e.")
procs = []
n_tests = 0
failed = 0


def skip(n, reason):
    """n checks not run, each an "ok N # SKIP reason" line (never silent)."""
    global n_tests
    for _ in range(n):
        n_tests += 1
        print("ok %d # SKIP %s" % (n_tests, reason))
    sys.stdout.flush()


def note(text):
    """A TAP comment: a measurement, not a check."""
    print("# " + text)
    sys.stdout.flush()


def ok(cond, name, detail=""):
    global n_tests, failed
    n_tests += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n_tests, name))
    if detail and not cond:
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()


def psql(sql, db="postgres", env=None):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


def start(cmd, name):
    out = open(os.path.join(tmp, name + ".out"), "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    procs.append(p)
    for _ in range(100):
        if "ready" in open(os.path.join(tmp, name + ".out")).read():
            return p
        time.sleep(0.1)
    raise RuntimeError(name + " did not start: " + open(os.path.join(tmp, name + ".out")).read())


def http(method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (HTTP_PORT, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def requests(path):
    return http("GET", "/_requests?path=" + path)


def tls_requests(path):
    """What the HTTPS receiver (self-signed certificate) recorded."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen("https://127.0.0.1:%d/_requests?path=%s" % (TLS_PORT, path), timeout=10,
                                context=ctx) as r:
        return json.loads(r.read() or b"null")


def control(path, **rule):
    rule["path"] = path
    http("POST", "/_control", rule)


def wait_for(fn, timeout=15.0, step=0.2):
    end = time.time() + timeout * SLOW
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def ingest(rows, ns="e2e", env=None):
    csv = "job,run_id,start,end,status,error\\n" + "\\n".join(rows) + "\\n"
    return psql("SELECT inserted FROM smartetl.ingest('csv', E'%s', '{\"namespace\": \"%s\"}')"
                % (csv.replace("'", "''"), ns), env=env)


def listen(channel, seconds):
    """A session LISTENing on channel for that long; communicate() gives what it got."""
    # two commands: LISTEN takes effect when its own transaction commits
    app = "e2e-listen-%s-%d" % (channel, time.time() * 1000)
    p = subprocess.Popen(["psql", "-X", "-At", "-d", "postgres", "-c", "LISTEN " + channel,
                          "-c", "SELECT pg_sleep(%d)" % seconds],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, PGAPPNAME=app))
    # listening once the second command runs (polled, not slept)
    if not wait_for(lambda: psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
                                 "AND query LIKE 'SELECT pg_sleep%%' AND state = 'active'" % app) == "1"):
        raise RuntimeError("the LISTEN session did not start")
    return p


def notifications(out, channel):
    return re.findall(r'Asynchronous notification "%s" with payload "(.*)" received from server process'
                      % re.escape(channel), out)


def ingest_jsonl(docs, ns):
    payload = "\n".join(json.dumps(d) for d in docs)
    assert "$e2e$" not in payload
    return psql("SELECT inserted FROM smartetl.ingest('jsonl', $e2e$%s$e2e$, '{\"namespace\": \"%s\"}')"
                % (payload, ns))


def settle(*channels):
    """Evaluate now (whatever is due is then queued) and wait until the worker has
    sent, or given up on, everything queued for these channels: a negative check
    after this needs no sleep."""
    psql("SELECT smartetl.evaluate_alerts()")
    return wait_for(lambda: psql("SELECT count(*) = 0 FROM smartetl.delivery WHERE channel = ANY('{%s}') "
                                 "AND status IN ('pending', 'sending')" % ",".join(channels)) == "t")


def reload_conf():
    """pg_reload_conf(), then wait (bounded) until the alert worker has read the
    settings and finished a cycle with them (smartetl.alert_worker_status())."""
    q = "SELECT settings_loaded_at FROM smartetl.alert_worker_status()"
    before = psql(q)
    psql("SELECT pg_reload_conf()")
    if not wait_for(lambda: psql(q) not in ("", before), timeout=20):
        raise RuntimeError("the alert worker did not reload its settings within 20 s")


def worker_pid():
    return psql("SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
                "WHERE backend_type = 'smartetl alert worker' AND datname = 'postgres'")


def server_log_size():
    d = os.environ.get("SMARTETL_CLUSTER_DIR")
    return os.path.getsize(os.path.join(d, "server.log")) if d else None


def server_log_since(offset):
    d = os.environ.get("SMARTETL_CLUSTER_DIR")
    if not d or offset is None:
        return None
    with open(os.path.join(d, "server.log"), errors="replace") as f:
        f.seek(offset)
        return f.read()


def setup_objects():
    """Channels and rules (again after CREATE EXTENSION)."""
    u = "http://127.0.0.1:%d" % HTTP_PORT
    psql("""INSERT INTO smartetl.channel (name, kind, target, options, secret) VALUES
      ('teams', 'teams', '%(u)s/teams', '{"link_template": "http://grafana.local/d/smartetl?var-pipeline={pipeline}"}', NULL),
      ('slack', 'slack', '%(u)s/slack', '{}', NULL),
      ('hook', 'webhook', '%(u)s/hook', '{}', NULL),
      ('am', 'alertmanager', 'http://127.0.0.1:%(am)d/api/v2/alerts', '{}', NULL),
      ('mail', 'email', 'smtp://127.0.0.1:%(smtp)d', '{"from": "etl@example.com", "to": ["team@example.com"],
              "username": "alerts", "starttls": true, "insecure_skip_verify": true}', 's3cret'),
      ('bus', 'notify', 'smartetl_e2e', '{}', NULL),
      ('down', 'webhook', '%(u)s/down', '{}', NULL),
      ('slow', 'webhook', '%(u)s/slow', '{}', NULL),
      ('hang', 'webhook', '%(u)s/hang', '{"timeout_ms": 4000}', NULL),
      ('storm', 'webhook', '%(u)s/storm', '{}', NULL),
      ('hosts', 'webhook', '%(u)s/hosts', '{}', NULL),
      ('bigbus', 'notify', 'smartetl_big', '{}', NULL),
      ('bighook', 'webhook', '%(u)s/bighook', '{}', NULL),
      ('tmo', 'webhook', '%(u)s/tmo', '{}', NULL),
      ('dropper', 'webhook', '%(u)s/dropper', '{}', NULL),
      ('ocdeadline', 'webhook', '%(u)s/oc-deadline', '{}', NULL),
      ('ocwindow', 'webhook', '%(u)s/oc-window', '{}', NULL),
      ('ocdbt', 'webhook', '%(u)s/oc-dbt', '{}', NULL),
      ('ocretry', 'webhook', '%(u)s/oc-retry', '{}', NULL),
      ('ocesc', 'webhook', '%(u)s/oc-esc', '{}', NULL),
      ('tlsbad', 'webhook', 'https://127.0.0.1:%(tls)d/bad', '{}', NULL),
      ('tlsskip', 'webhook', 'https://127.0.0.1:%(tls)d/skip', '{"insecure_skip_verify": true}', NULL),
      ('redir', 'webhook', '%(u)s/redir', '{}', NULL),
      ('deadend', 'webhook', '%(u)s/deadend', '{}', NULL)"""
         % {"u": u, "am": AM_PORT, "smtp": SMTP_PORT, "tls": TLS_PORT})
    psql("""INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait, group_interval) VALUES
      ('e2e-failures', 'run_failed', '{"namespace": "e2e"}', 'critical', '{teams,slack,hook,am,mail,bus}', '0', '0'),
      ('e2e-down', 'run_failed', '{"namespace": "e2e_down"}', 'warning', '{down}', '0', '0'),
      ('e2e-slow', 'run_failed', '{"namespace": "e2e_slow"}', 'warning', '{slow}', '0', '0'),
      ('e2e-hang', 'run_failed', '{"namespace": "e2e_hang"}', 'warning', '{hang,hook}', '0', '0'),
      ('e2e-storm', 'run_failed', '{"namespace": "e2e_storm"}', 'warning', '{storm}', '0', '0'),
      ('e2e-hosts', 'run_failed', '{"namespace": "e2e_hosts"}', 'warning', '{hosts}', '0', '0'),
      ('e2e-big', 'run_failed', '{"namespace": "e2e_big"}', 'critical', '{bigbus}', '0', '0'),
      ('e2e-big-hook', 'run_failed', '{"namespace": "e2e_big"}', 'warning', '{bighook}', '0', '0'),
      ('e2e-utf8', 'run_failed', '{"namespace": "e2e_utf8"}', 'warning', '{mail}', '0', '0'),
      ('e2e-timeout', 'run_failed', '{"namespace": "e2e_timeout"}', 'warning', '{tmo}', '0', '0'),
      ('e2e-drop', 'run_failed', '{"namespace": "e2e_drop"}', 'warning', '{dropper,bus}', '0', '0'),
      ('oc-deadline', 'deadline', '{"namespace": "e2e_oc"}', 'critical', '{ocdeadline,am}', '0', '0'),
      ('oc-window', 'run_failed', '{"namespace": "e2e_ocwin"}', 'warning', '{ocwindow}', '0', '0'),
      ('oc-dbt', 'run_failed', '{"namespace": "e2e_ocdbt"}', 'critical', '{ocdbt}', '0', '0'),
      ('oc-retry', 'run_failed', '{"namespace": "e2e_ocretry"}', 'critical', '{ocretry}', '0', '0'),
      ('e2e-tls', 'run_failed', '{"namespace": "e2e_tls"}', 'warning', '{tlsbad,tlsskip}', '0', '0'),
      ('e2e-redir', 'run_failed', '{"namespace": "e2e_redir"}', 'warning', '{redir}', '0', '0'),
      ('e2e-dead', 'run_failed', '{"namespace": "e2e_dead"}', 'warning', '{deadend}', '0', '0')""")
    psql("""INSERT INTO smartetl.escalation_policy (name, steps)
              VALUES ('oc-page', '[{"after": "3 seconds", "channels": ["mail"]}]')""")
    psql("""INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait, group_interval,
                                             escalation_policy)
              VALUES ('oc-esc', 'run_failed', '{"namespace": "e2e_ocesc"}', 'critical', '{ocesc}', '0', '0', 'oc-page')""")


def setup():
    start([sys.executable, os.path.join(RECV, "http_sink.py"), "--port", str(HTTP_PORT),
           "--log", os.path.join(tmp, "http.jsonl")], "http")
    start(["/usr/bin/python3", os.path.join(RECV, "smtp_sink.py"), "--port", str(SMTP_PORT),
           "--log", os.path.join(tmp, "smtp.jsonl"), "--starttls", "--cert-dir", os.path.join(tmp, "cert"),
           "--user", "alerts", "--password", "s3cret"], "smtp")
    # an HTTPS receiver whose self-signed certificate no system CA vouches for
    cert = os.path.join(tmp, "tls")
    os.makedirs(cert)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", os.path.join(cert, "key.pem"), "-out", os.path.join(cert, "cert.pem"),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    start([sys.executable, os.path.join(RECV, "http_sink.py"), "--port", str(TLS_PORT),
           "--log", os.path.join(tmp, "https.jsonl"), "--tls-cert", os.path.join(cert, "cert.pem"),
           "--tls-key", os.path.join(cert, "key.pem")], "https")
    subprocess.run(["bash", os.path.join(RECV, "alertmanager.sh"), "start", os.path.join(tmp, "am"),
                    str(AM_PORT)], check=True, capture_output=True)
    psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl")
    # the worker may be evaluating: take its evaluation lock for the clean-up
    psql("""BEGIN; SELECT pg_advisory_xact_lock(1397572948, 1000);
            DELETE FROM smartetl.alert_rule; DELETE FROM smartetl.escalation_policy;
            DELETE FROM smartetl.maintenance_window; DELETE FROM smartetl.channel; DELETE FROM smartetl.delivery;
            DELETE FROM smartetl.alert; DELETE FROM smartetl.alert_group; DELETE FROM smartetl.alert_rule_state;
            DELETE FROM smartetl.pipeline WHERE namespace LIKE 'e2e%'; COMMIT;""")
    setup_objects()


def test_delivery_shapes():
    # two commands: LISTEN takes effect when its own transaction commits
    listener = listen("smartetl_e2e", 6)
    t0 = time.time()
    ingest(["payments_load,1,2026-01-01 10:00:00,2026-01-01 10:05:00,failed,"
            "psycopg2.OperationalError: could not connect to server: Connection refused (10.0.3.12:5432)"])
    hook = wait_for(lambda: requests("/hook"))
    ok(bool(hook), "webhook receives the failure (within a bounded wait)")
    if hook:
        note("webhook latency from the ingest: %.3f s" % (hook[0]["time"] - t0))
    j = hook[0]["json"] if hook else {}
    ok(bool(hook) and j["status"] == "firing" and j["alerts"][0]["labels"]["pipeline"] == "payments_load"
       and j["alerts"][0]["annotations"]["error_template"].startswith("psycopg2.OperationalError"),
       "webhook body: status, pipeline label and error template", json.dumps(j)[:600])
    ok(bool(hook) and hook[0]["headers"].get("Idempotency-Key") == j["idempotency_key"], "idempotency key header")
    teams = wait_for(lambda: requests("/teams"))
    ok(bool(teams) and teams[0]["json"]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
       and teams[0]["json"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
       and "payments_load" in teams[0]["body"], "Teams gets an Adaptive Card naming the pipeline",
       teams and teams[0]["body"][:600])
    slack = wait_for(lambda: requests("/slack"))
    ok(bool(slack) and slack[0]["json"].get("text") and slack[0]["json"].get("blocks")
       and "payments_load" in slack[0]["body"], "Slack gets a Block Kit message with fallback text",
       slack and slack[0]["body"][:600])
    am = wait_for(lambda: json.loads(subprocess.run(
        ["bash", os.path.join(RECV, "alertmanager.sh"), "alerts", str(AM_PORT)],
        capture_output=True, text=True).stdout or "[]"))
    ok(bool(am) and am[0]["labels"].get("alertname") == "e2e-failures"
       and am[0]["labels"].get("pipeline") == "payments_load" and am[0]["labels"].get("severity") == "critical",
       "Alertmanager API shows the alert with its labels", json.dumps(am)[:600])
    mail = wait_for(lambda: [json.loads(l) for l in open(os.path.join(tmp, "smtp.jsonl"))]
                    if os.path.exists(os.path.join(tmp, "smtp.jsonl")) else [])
    ok(bool(mail) and "payments_load" in (mail[0].get("subject") or "") and mail[0].get("html")
       and mail[0].get("text") and mail[0].get("tls") and mail[0].get("auth_user") == "alerts",
       "e-mail over STARTTLS with AUTH, text and HTML parts", mail and json.dumps(mail[0])[:600])
    out, _ = listener.communicate(timeout=15)
    ok("smartetl_e2e" in out and "payments_load" in out, "LISTEN/NOTIFY channel gets the notification", out[:400])

    ingest(["payments_load,2,2026-01-01 11:00:00,2026-01-01 11:05:00,success,"])
    resolved = wait_for(lambda: [r for r in requests("/hook") if r["json"]["status"] == "resolved"])
    ok(bool(resolved) and resolved[0]["json"]["alerts"][0]["status"] == "resolved",
       "recovery sends a resolved notification")
    ok(wait_for(lambda: [r for r in requests("/teams") if "resolved" in r["body"].lower()]) != [],
       "Teams gets the resolved notification too")


def test_receiver_down():
    control("/down", mode="status", status=503)
    t0 = time.time()
    ingest(["down_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,timeout"], ns="e2e_down")
    time.sleep(2)
    ingest(["down_a,2,2026-01-01 11:00:00,2026-01-01 11:01:00,success,"], ns="e2e_down")
    time.sleep(max(0, 60 - (time.time() - t0)))
    control("/down", mode="ok")
    # the firing notification's 8th and last attempt can come 64 s +- 50 % after the 7th
    got = wait_for(lambda: [r for r in requests("/down") if r["answered"] == 200
                            and r["json"]["status"] == "resolved"], timeout=150, step=1)
    reqs = requests("/down")
    answered = [r for r in reqs if r["answered"] == 200]
    keys = [r["headers"].get("Idempotency-Key") for r in answered]
    ok(bool(got) and len(answered) == 2 and len(set(keys)) == 2,
       "receiver down for a minute, then back: both notifications arrive once each (%d attempts)" % len(reqs),
       json.dumps([(r["answered"], r["json"]["status"]) for r in reqs]))
    ok([r["json"]["status"] for r in answered] == ["firing", "resolved"], "in order: firing, then resolved")
    failed_attempts = [r["time"] for r in reqs if r["answered"] != 200]
    gaps = [b - a for a, b in zip(failed_attempts, failed_attempts[1:])]
    ok(len(gaps) >= 3 and gaps[-1] > gaps[0], "retries back off (gaps %s s)" % [round(g, 1) for g in gaps])


def test_retry_after():
    control("/slow", mode="retry_after", retry_after=4, times=1)
    ingest(["slow_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,quota"], ns="e2e_slow")
    got = wait_for(lambda: [r for r in requests("/slow") if r["answered"] == 200], timeout=30)
    reqs = requests("/slow")
    ok(bool(got) and len(reqs) == 2 and reqs[1]["time"] - reqs[0]["time"] >= 3.9,
       "429 with Retry-After: 4 is honoured (next attempt after %.2f s)"
       % ((reqs[1]["time"] - reqs[0]["time"]) if len(reqs) > 1 else -1))


def test_hang():
    """While one request hangs (until its 4 s timeout), another channel's
    notification, queued after it began hanging, is delivered: an ordering of
    events, not a latency."""
    control("/hang", mode="hang", seconds=60)
    ingest(["hang_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,stuck"], ns="e2e_hang")
    hanging = wait_for(lambda: requests("/hang"))
    ingest(["hang_b,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,stuck"], ns="e2e_hang")
    other = wait_for(lambda: [r for r in requests("/hook") if r["json"]["alerts"][0]["labels"]["pipeline"] == "hang_b"])
    first = psql("SELECT status || ':' || attempts FROM smartetl.delivery d WHERE channel = 'hang' "
                 "AND notification->'alerts'->0->'labels'->>'pipeline' = 'hang_a'")
    ok(bool(hanging) and bool(other) and other[0]["time"] < hanging[0]["time"] + 4.0,
       "a hanging receiver does not hold up another channel: the webhook got a notification queued after "
       "the hang began, before the hanging request timed out",
       "hang began %s, webhook got it %s; the hanging delivery now %s"
       % (hanging and hanging[0]["time"], other and other[0]["time"], first))
    state = wait_for(lambda: psql("SELECT status || ':' || coalesce(last_error, '') FROM smartetl.delivery "
                                  "WHERE channel = 'hang' AND status = 'retrying'"), timeout=10)
    ok("Timeout" in state or "timed out" in state, "the hanging request times out and is retried: " + state)
    control("/hang", mode="ok")


def test_worker_status():
    """smartetl.alert_worker_status() names the running worker, and its cycles move."""
    row = psql("SELECT pid || '|' || (last_cycle_at IS NOT NULL) || '|' || (started_at <= last_cycle_at) "
               "FROM smartetl.alert_worker_status()")
    ok(row == "%s|true|true" % worker_pid(), "alert_worker_status(): the worker's pid, cycles after its start", row)
    first = psql("SELECT last_cycle_at FROM smartetl.alert_worker_status()")
    ingest(["status_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,success,"], ns="e2e_status")
    ok(bool(wait_for(lambda: psql("SELECT last_cycle_at > '%s' FROM smartetl.alert_worker_status()" % first) == "t")),
       "a stored run wakes the worker: last_cycle_at moves")


def test_allowed_hosts_reload():
    psql("ALTER SYSTEM SET smartetl.allowed_hosts = 'example.invalid'")
    reload_conf()
    ingest(["hosts_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,nope"], ns="e2e_hosts")
    state = wait_for(lambda: psql("SELECT status || ': ' || coalesce(last_error, '') FROM smartetl.delivery "
                                  "WHERE channel = 'hosts' AND status = 'dead'"), timeout=10)
    ok("not in smartetl.allowed_hosts" in state,
       "after SIGHUP the worker refuses hosts not in smartetl.allowed_hosts: " + state)
    psql("ALTER SYSTEM RESET smartetl.allowed_hosts")
    reload_conf()


def test_secret_not_logged():
    log = os.path.join(os.environ["SMARTETL_CLUSTER_DIR"], "server.log")
    text = open(log, errors="replace").read()
    ok("s3cret" not in text, "the SMTP password never appears in the server log (%d bytes checked)" % len(text))








def test_storm_crash():
    """kill -9 of the server while it delivers 1,000 notifications: every delivery
    committed before the crash is sent after the restart, every alert is notified
    under exactly one key, and only the deliveries claimed at the crash are sent
    twice (with the same key, so the receiver can drop them): at most
    smartetl.max_in_flight transfers plus as many finished ones whose outcome
    was not yet written."""
    rows = ["storm_%04d,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,disk full on /dev/sd%d" % (i, i % 7)
            for i in range(1000)]
    in_flight = int(psql("SHOW smartetl.max_in_flight"))
    # 0.5 s per request, max_in_flight at once: the 1,000 take seconds, so the kill comes in the middle
    control("/storm", mode="ok", delay=0.5)
    ingest(rows, ns="e2e_storm")
    wait_for(lambda: len(requests("/storm")) >= 100, timeout=30)
    committed = dict(l.split("|") for l in psql(
        "SELECT delivery_id || '|' || idempotency_key FROM smartetl.delivery WHERE channel = 'storm'").splitlines())
    pgcluster.kill9()
    before = len(requests("/storm"))   # every request of the old server has come by now
    pgcluster.start()
    note("kill -9 with %d storm requests received, %d deliveries committed" % (before, len(committed)))
    ok(0 < before < 1000, "the kill came in the middle of the storm: %d of 1,000 requests received before it" % before)
    done = wait_for(lambda: psql("SELECT count(*) FILTER (WHERE status = 'sent') = 1000 "
                                 "FROM smartetl.delivery WHERE channel = 'storm'") == "t", timeout=120, step=1)
    rows = psql("SELECT count(*) || '|' || count(DISTINCT group_key) || '|' || count(DISTINCT idempotency_key) || '|' || "
                "count(*) FILTER (WHERE status = 'sent') FROM smartetl.delivery WHERE channel = 'storm'")
    alerts = psql("SELECT count(*) FROM smartetl.alert WHERE rule_name = 'e2e-storm' AND state = 'firing'")
    ok(done and rows == "1000|1000|1000|1000" and alerts == "1000",
       "after the restart: 1,000 alerts, one delivery each, all sent (deliveries|groups|keys|sent: %s)" % rows)
    lost = psql("SELECT count(*) FROM smartetl.delivery WHERE delivery_id = ANY('{%s}') AND status <> 'sent'"
                % ",".join(committed))
    reqs = [r for r in requests("/storm") if r["answered"] == 200]
    got_keys = set(r["json"]["idempotency_key"] for r in reqs)
    ok(len(committed) > 0 and lost == "0" and set(committed.values()) <= got_keys,
       "every one of the %d deliveries committed before the crash is sent, under the key it had" % len(committed),
       "not sent: %s; keys not received: %d" % (lost, len(set(committed.values()) - got_keys)))
    groups = {}
    for r in reqs:
        groups.setdefault(r["json"]["group_key"], set()).add(r["json"]["idempotency_key"])
    ok(len(groups) == 1000 and len(got_keys) == 1000 and all(len(k) == 1 for k in groups.values()),
       "the receiver got all 1,000 notifications, each under exactly one key",
       "groups: %d, keys: %d" % (len(groups), len(got_keys)))
    resent = len(reqs) - len(got_keys)
    note("%d requests sent again after the restart" % resent)
    ok(0 <= resent <= 2 * in_flight,
       "only deliveries claimed at the crash are sent again: %d repeats, at most twice smartetl.max_in_flight (%d)"
       % (resent, in_flight))


def test_large_notify():
    """A stack trace too long for NOTIFY must not stop the evaluation or another channel."""
    trace = "java.lang.IllegalStateException: sink rejected batch 42 of orders_2026_01\n"
    i = 0
    while len(trace) < 20000:
        trace += "\tat com.example.etl.stage%d.OrderLoader.load(OrderLoader.java:%d)\n" % (i % 17, 100 + i)
        i += 1
    trace = trace[:20000]
    listener = listen("smartetl_big", 8)
    t0 = time.time()
    ingest_jsonl([{"pipeline": "orders_load", "run_id": "big-1", "status": "failed",
                   "start": "2026-01-01T10:00:00Z", "error": trace}], "e2e_big")
    hook = wait_for(lambda: requests("/bighook"))
    ok(bool(hook) and len(hook[0]["json"]["alerts"][0]["annotations"].get("error", "")) == 20000,
       "a 20,000-byte error: the webhook of the other rule gets the whole notification (%.2f s)"
       % ((hook[0]["time"] - t0) if hook else -1), hook and hook[0]["body"][:300])
    out, _ = listener.communicate(timeout=20)
    got = notifications(out, "smartetl_big")
    p = None
    try:
        p = json.loads(got[0]) if got else None
    except ValueError:
        pass
    ok(p is not None and p.get("truncated") is True and p.get("status") == "firing"
       and isinstance(p.get("delivery_id"), int) and len(got[0].encode()) < 8000
       and p.get("alerts") and p["alerts"][0].get("fingerprint") and p.get("alerts_omitted") == 0,
       "the LISTEN channel gets a truncated notification (%d bytes) pointing to its delivery"
       % (len(got[0].encode()) if got else -1), out[:600])
    if p and isinstance(p.get("delivery_id"), int):
        row = psql("SELECT status || ':' || (notification->'alerts'->0->>'fingerprint') || ':' || "
                   "length(notification->'alerts'->0->'annotations'->>'error') "
                   "FROM smartetl.delivery WHERE delivery_id = %d" % p["delivery_id"])
        ok(row == "sent:%s:20000" % p["alerts"][0]["fingerprint"],
           "the full notification is in smartetl.delivery under that id, marked sent: " + row)


def test_outbox_isolation():
    """A 17 MB payload and a channel with odd options cannot stop the claim of the others."""
    psql("""INSERT INTO smartetl.channel (name, kind, target, options) VALUES
            ('odd', 'webhook', 'http://127.0.0.1:%d/odd', '{"timeout_ms": "soon", "starttls": "maybe"}')"""
         % HTTP_PORT)
    psql("""INSERT INTO smartetl.delivery (channel, group_key, idempotency_key, notification, payload) VALUES
            ('hook', 'e2e-iso/huge', 'iso-huge', '{}', jsonb_build_object('content_type', 'application/json',
                 'body', jsonb_build_object('blob', repeat('x', 17000000)))),
            ('odd', 'e2e-iso/odd', 'iso-odd', '{}', '{"content_type": "application/json", "body": {"hello": "odd"}}');
            SELECT smartetl._alert_wake()""")
    got = wait_for(lambda: requests("/odd"))
    ok(bool(got) and got[0]["json"] == {"hello": "odd"},
       "a channel whose options do not parse (timeout_ms \"soon\") still gets its delivery")
    state = wait_for(lambda: psql("SELECT status || ': ' || last_error FROM smartetl.delivery "
                                  "WHERE idempotency_key = 'iso-huge' AND status = 'dead'"))
    ok("exceeds the limit" in state and not [r for r in requests("/hook") if "blob" in r["body"][:20]],
       "a 17 MB payload is not sent and fails alone: " + state[:120])


def test_long_utf8_subject():
    """250 four-byte characters are 1,336 bytes encoded: folded, or SMTP refuses the line."""
    mail_log = os.path.join(tmp, "smtp.jsonl")
    before = len(open(mail_log).readlines()) if os.path.exists(mail_log) else 0
    name = "Ü\U0001F525" * 130
    ingest_jsonl([{"pipeline": name, "run_id": "u-1", "status": "failed", "start": "2026-01-01T10:00:00Z",
                   "error": "boom"}], "e2e_utf8")
    mails = wait_for(lambda: [json.loads(l) for l in open(mail_log).readlines()[before:]
                              if name[:20] in l] if os.path.exists(mail_log) else [])
    subj = mails[0]["subject"] if mails else ""
    longest = max(len(l.encode()) for l in mails[0]["raw"].split("\n")) if mails else -1
    ok(bool(mails) and subj.startswith("[FIRING] e2e-utf8: " + name[:100]) and longest <= 998,
       "a subject of 250 four-byte characters arrives whole, folded (longest line %d bytes)" % longest,
       subj[:200])


def test_statement_timeout():
    pid = worker_pid()
    log_at = server_log_size()
    psql("ALTER SYSTEM SET smartetl.worker_statement_timeout = '1s'")
    reload_conf()
    # the worker's evaluation stalls when it fires this rule's alert
    psql("""CREATE FUNCTION public.e2e_stall() RETURNS trigger LANGUAGE plpgsql AS
            $$BEGIN PERFORM pg_sleep(4); RETURN NEW; END$$;
            CREATE TRIGGER e2e_stall BEFORE INSERT ON smartetl.alert FOR EACH ROW
            WHEN (NEW.rule_name = 'e2e-timeout') EXECUTE FUNCTION public.e2e_stall()""")
    ingest(["stall_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,stuck"], ns="e2e_timeout")
    if log_at is not None:
        text = wait_for(lambda: (lambda t: t if "canceling statement due to statement timeout" in t else "")(
            server_log_since(log_at)), timeout=15)
        ok("smartetl alert worker could not evaluate alerts" in text,
           "a worker statement past smartetl.worker_statement_timeout is cancelled and logged",
           server_log_since(log_at)[-1500:])
    else:
        skip(1, "statement_timeout: " + NO_CLUSTER_DIR)
    ok(not requests("/tmo"), "nothing was sent for the stalled evaluation")
    psql("DROP TRIGGER e2e_stall ON smartetl.alert; DROP FUNCTION public.e2e_stall()")
    psql("ALTER SYSTEM RESET smartetl.worker_statement_timeout")
    reload_conf()
    got = wait_for(lambda: requests("/tmo"), timeout=20)
    ok(bool(got) and worker_pid() == pid,
       "the same worker (pid %s) goes on and delivers once the statement is fast" % pid,
       "worker now: %s" % worker_pid())


def test_drop_extension():
    """DROP EXTENSION while the worker evaluates, claims and sends; then CREATE again."""
    pid = worker_pid()
    log_at = server_log_size()
    control("/dropper", mode="ok", delay=0.2)
    stop = threading.Event()

    def stream():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                # an ingest session, unlike the worker, may deadlock with DROP: let it give up first
                ingest(["drop_%05d,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,busy" % n], ns="e2e_drop",
                       env={"PGOPTIONS": "-c lock_timeout=100ms"})
            except RuntimeError:
                pass            # the extension is gone for a moment
            time.sleep(0.05)

    # queueing a notification takes 0.1 s more, so that DROP EXTENSION
    # comes while the worker is in a transaction holding locks
    psql("""CREATE OR REPLACE FUNCTION public.e2e_slow_queue() RETURNS trigger LANGUAGE plpgsql AS
            $$BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END$$""")
    slow = ("CREATE TRIGGER e2e_slow_queue BEFORE INSERT ON smartetl.delivery FOR EACH ROW "
            "WHEN (NEW.channel = 'dropper') EXECUTE FUNCTION public.e2e_slow_queue()")
    times = []
    errors = []
    rounds = int(os.environ.get("SMARTETL_E2E_DROP_ROUNDS", "5"))
    for rnd in range(rounds):
        psql(slow)
        th = threading.Thread(target=stream)
        stop.clear()
        th.start()
        before = len(requests("/dropper"))
        wait_for(lambda: len(requests("/dropper")) >= before + 5, timeout=20)
        t0 = time.time()
        out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                              "-c", "SET lock_timeout = '30s'", "-c", "DROP EXTENSION smartetl CASCADE"],
                             capture_output=True, text=True)
        times.append(time.time() - t0)
        stop.set()
        th.join()
        if out.returncode != 0:
            errors.append(out.stderr)
            psql("DROP TRIGGER e2e_slow_queue ON smartetl.delivery")
            break
        psql("SET client_min_messages = warning; CREATE EXTENSION smartetl")
        setup_objects()
    psql("DROP FUNCTION public.e2e_slow_queue()")
    note("DROP EXTENSION took %s s" % [round(t, 2) for t in times])
    ok(not errors and len(times) == rounds,
       "DROP EXTENSION smartetl CASCADE with the worker busy: done within its 30 s lock_timeout, %d times" % rounds,
       "\n".join(errors))
    listener = listen("smartetl_e2e", 6)
    before = len(requests("/dropper"))
    t0 = time.time()
    ingest(["drop_back,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,again"], ns="e2e_drop")
    got = wait_for(lambda: [r for r in requests("/dropper")[before:]
                            if r["json"]["alerts"][0]["labels"]["pipeline"] == "drop_back"])
    out, _ = listener.communicate(timeout=15)
    if got:
        note("after CREATE EXTENSION: webhook in %.2f s" % (got[0]["time"] - t0))
    ok(bool(got) and "drop_back" in out,
       "after CREATE EXTENSION the worker delivers again (webhook and LISTEN/NOTIFY, within a bounded wait)", out[:300])
    ok(worker_pid() == pid, "the worker was not restarted (pid %s, now %s)" % (pid, worker_pid()))
    # without the extension the worker sleeps: its activity does not change every few ms
    psql("DROP EXTENSION smartetl CASCADE")
    time.sleep(1)
    ages = []
    for _ in range(6):
        ages.append(float(psql("SELECT extract(epoch FROM now() - state_change) FROM pg_stat_activity "
                               "WHERE pid = %s" % pid) or -1))
        time.sleep(0.3)
    psql("SET client_min_messages = warning; CREATE EXTENSION smartetl")
    setup_objects()
    ok(max(ages) > 0.5, "without the extension the worker sleeps instead of polling (idle for %s s)"
       % [round(a, 2) for a in ages])
    text = server_log_since(log_at)
    if text is not None:
        # (the stream's ingest sessions may deadlock with DROP: not the worker's business)
        marks = ("Process %s waits" % pid, "[%s] ERROR" % pid, "[%s] WARNING" % pid)
        mine = [l for l in text.splitlines() if any(m in l for m in marks)]
        ok(not mine, "the worker had no deadlock, error or warning", "\n".join(mine)[:1500])
    else:
        skip(1, "drop_extension: " + NO_CLUSTER_DIR)


def test_tls_verify():
    """An HTTPS receiver whose certificate does not verify (self-signed): the delivery
    fails with the TLS error recorded, and nothing reaches the receiver; the same
    receiver with insecure_skip_verify gets its notification."""
    ingest(["tls_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,boom"], ns="e2e_tls")
    skipped = wait_for(lambda: tls_requests("/skip"))
    ok(bool(skipped) and skipped[0]["json"]["alerts"][0]["labels"]["pipeline"] == "tls_a",
       "the HTTPS receiver gets the notification of the channel with insecure_skip_verify")
    state = wait_for(lambda: psql("SELECT status || ' | ' || attempts || ' | ' || last_error FROM smartetl.delivery "
                                  "WHERE channel = 'tlsbad' AND last_error IS NOT NULL"))
    ok(state.startswith("retrying | ") and "SSL certificate problem" in state,
       "a certificate that does not verify fails the delivery with the TLS error recorded", state)
    ok(not tls_requests("/bad") and psql("SELECT count(*) FROM smartetl.delivery WHERE channel = 'tlsbad' "
                                         "AND status = 'sent'") == "0",
       "nothing was sent over the unverified connection")
    out = json.loads(psql("SELECT smartetl.test_channel('tlsbad')"))
    ok(out.get("ok") is False and "SSL certificate problem" in (out.get("error") or "") and not tls_requests("/bad"),
       "test_channel reports the same TLS error", json.dumps(out))
    psql("DELETE FROM smartetl.delivery WHERE channel = 'tlsbad'")


def test_redirect():
    """Redirects are not followed (README, Security): a 302 is a failed attempt,
    recorded as such, and the Location is never requested."""
    target = "http://127.0.0.1:%d/moved-here" % HTTP_PORT
    control("/redir", mode="status", status=302, headers={"Location": target})
    ingest(["redir_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,boom"], ns="e2e_redir")
    state = wait_for(lambda: psql("SELECT status || ' | ' || last_status || ' | ' || last_error FROM smartetl.delivery "
                                  "WHERE channel = 'redir' AND last_error IS NOT NULL"))
    got = requests("/redir")
    ok(state == "retrying | 302 | HTTP 302" and got and got[0]["answered"] == 302,
       "a 302 answer is a failed attempt (HTTP 302 recorded), not a delivery", state)
    ok(not requests("/moved-here"), "the redirect's Location was never requested")
    control("/redir", mode="ok")
    psql("DELETE FROM smartetl.delivery WHERE channel = 'redir'")


def test_max_attempts():
    """A delivery that keeps failing is dead after smartetl.max_attempts (3 here),
    with its last error kept; exactly that many requests, under one key."""
    psql("ALTER SYSTEM SET smartetl.max_attempts = 3")
    reload_conf()
    try:
        control("/deadend", mode="status", status=500)
        ingest(["dead_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,boom"], ns="e2e_dead")
        # backoff 1 s then 2 s, +-50 %
        state = wait_for(lambda: psql("SELECT status || ' | ' || attempts || ' | ' || last_status || ' | ' || last_error "
                                      "FROM smartetl.delivery WHERE channel = 'deadend' AND status = 'dead'"), timeout=30)
        reqs = requests("/deadend")
        ok(state == "dead | 3 | 500 | HTTP 500",
           "a delivery failing every time is dead after smartetl.max_attempts (3), its last error kept", state)
        ok(len(reqs) == 3 and len(set(r["headers"].get("Idempotency-Key") for r in reqs)) == 1,
           "3 attempts reached the receiver, all under one idempotency key (%d)" % len(reqs))
    finally:
        control("/deadend", mode="ok")
        psql("ALTER SYSTEM RESET smartetl.max_attempts")
        reload_conf()


TESTS = ["delivery_shapes", "tls_verify", "redirect", "max_attempts", "retry_after", "hang", "large_notify", "outbox_isolation", "long_utf8_subject",
         "statement_timeout", "oncall_deadline", "oncall_window", "oncall_dbt", "oncall_retry", "oncall_escalation",
         "receiver_down", "worker_status", "allowed_hosts_reload", "secret_not_logged", "storm_crash", "drop_extension"]
# the tests that need the cluster's directory (server log, kill -9 and restart),
# with the number of checks each prints, all skipped without it
NEEDS_CLUSTER_DIR = {"secret_not_logged": 1, "storm_crash": 5}
NO_CLUSTER_DIR = "SMARTETL_CLUSTER_DIR is not set (the cluster's directory: server log, kill -9 and restart)"



# ---------------------------------------------------------------- on call (issue 15)

def test_oncall_deadline():
    """A deadline passing with no run since its scheduled start fires when it passes: with
    smartetl.naptime at 60 s for the test, the worker must wake at the deadline itself for the
    notification to arrive within the bounded wait (20 s)."""
    psql("ALTER SYSTEM SET smartetl.naptime = '60s'")
    reload_conf()
    try:
        oncall_deadline()
    finally:
        psql("ALTER SYSTEM RESET smartetl.naptime")
        reload_conf()


def oncall_deadline():
    # one success just before today's scheduled start (the minute now), so only today's deadline,
    # 3 s from now, is missed: no run at all after the scheduled start
    psql("""SELECT smartetl.ingest('csv', format(E'job,run_id,start,end,status\\noc_nightly,y1,%s,%s,success\\n',
                   date_trunc('minute', now()) - interval '40 seconds', date_trunc('minute', now()) - interval '30 seconds'),
                   '{"namespace": "e2e_oc"}')""")
    due = psql("""WITH u AS (UPDATE smartetl.pipeline
                  SET schedule = to_char(date_trunc('minute', now()) AT TIME ZONE 'UTC', 'FMMI FMHH24 * * *'),
                      deadline = now() - date_trunc('minute', now()) + interval '3 seconds'
                  WHERE namespace = 'e2e_oc' AND name = 'oc_nightly'
                  RETURNING extract(epoch FROM date_trunc('minute', now()) + deadline) AS due) SELECT due FROM u""")
    due = float(due)
    ok(not requests("/oc-deadline"), "nothing before the deadline")
    hook = wait_for(lambda: requests("/oc-deadline"), timeout=20)
    ok(bool(hook) and hook[0]["json"]["alerts"][0]["labels"]["pipeline"] == "oc_nightly"
       and "no run started since" in hook[0]["json"]["alerts"][0]["annotations"]["description"],
       "a deadline passing with no run since its scheduled start notifies", hook and hook[0]["body"][:500])
    late = psql("""SELECT extract(epoch FROM started_at - (annotations->>'deadline_at')::timestamptz)
                   FROM smartetl.alert WHERE rule_name = 'oc-deadline' AND state = 'firing'""")
    ok(late != "" and 0 <= float(late), "the alert fired at the deadline, not before it")
    note("fired %s s after the deadline; the webhook had it %.3f s after it"
         % (late, (hook[0]["time"] - due) if hook else -1))
    am = wait_for(lambda: [a for a in json.loads(subprocess.run(
        ["bash", os.path.join(RECV, "alertmanager.sh"), "alerts", str(AM_PORT)],
        capture_output=True, text=True).stdout or "[]") if a["labels"].get("alertname") == "oc-deadline"])
    ok(bool(am) and am[0]["labels"].get("pipeline") == "oc_nightly", "Alertmanager shows the missed deadline",
       json.dumps(am)[:400])
    ingest(["oc_nightly,t1,%s,%s,success," % (time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(time.time() - 1)),
                                             time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime()))], ns="e2e_oc")
    ok(wait_for(lambda: [r for r in requests("/oc-deadline") if r["json"]["status"] == "resolved"]) != [],
       "a late success resolves it")


def test_oncall_window():
    """A window starting and ending with alerts firing through it."""
    psql("""INSERT INTO smartetl.maintenance_window (name, time_intervals, rules, enabled)
            VALUES ('oc-upgrade', '[{}]', '{oc-window}', true)""")
    ingest(["win_still,1,2026-01-02 01:00:00,2026-01-02 01:01:00,failed,boom",
            "win_cleared,1,2026-01-02 01:00:00,2026-01-02 01:01:00,failed,boom"], ns="e2e_ocwin")
    # both failures are evaluated (here, whatever the worker does) before the success comes
    psql("SELECT smartetl.evaluate_alerts()")
    ingest(["win_cleared,2,2026-01-02 02:00:00,2026-01-02 02:01:00,success,"], ns="e2e_ocwin")
    settle("ocwindow")
    want = "win_cleared:resolved,win_still:firing"
    muted = psql("SELECT string_agg(labels->>'pipeline' || ':' || state, ',' ORDER BY labels->>'pipeline') FROM smartetl.alert "
                 "WHERE rule_name = 'oc-window' AND muted_by = 'oc-upgrade'")
    queued = psql("SELECT count(*) FROM smartetl.delivery WHERE channel = 'ocwindow'")
    ok(not requests("/oc-window") and muted == want and queued == "0",
       "during the window: alerts recorded as muted, nothing queued or sent", "%s; %s queued" % (muted, queued))
    t0 = time.time()
    psql("UPDATE smartetl.maintenance_window SET enabled = false WHERE name = 'oc-upgrade'")
    hook = wait_for(lambda: requests("/oc-window"))
    if hook:
        note("window end to the webhook: %.3f s" % (hook[0]["time"] - t0))
    ok(bool(hook) and [a["labels"]["pipeline"] for a in hook[0]["json"]["alerts"]] == ["win_still"]
       and hook[0]["json"]["status"] == "firing",
       "when it ends, the alert still firing is notified (within a bounded wait)", hook and hook[0]["body"][:400])
    settle("ocwindow")
    queued = psql("SELECT string_agg(notification->'alerts'->0->'labels'->>'pipeline', ',') FROM smartetl.delivery "
                  "WHERE channel = 'ocwindow'")
    ok(not [r for r in requests("/oc-window") if "win_cleared" in r["body"]] and queued == "win_still",
       "the alert that cleared during the window sends nothing (no orphan resolved)", "queued: " + queued)


def test_oncall_dbt():
    """A dbt invocation failing with 20 failed nodes gives one notification."""
    doc = {"metadata": {"dbt_version": "1.9.0", "generated_at": "2026-01-03T03:00:10Z", "invocation_id": "oc-inv-20"},
           "elapsed_time": 12.5,
           "results": [{"status": "error", "unique_id": "model.shop.m%02d" % i, "execution_time": 0.5, "timing": [],
                        "adapter_response": {}, "message": "relation raw.src%d does not exist" % i, "failures": None}
                       for i in range(1, 21)]}
    psql("SELECT smartetl.ingest('dbt', $oc$%s$oc$, '{\"namespace\": \"e2e_ocdbt\"}')" % json.dumps(doc))
    first = wait_for(lambda: requests("/oc-dbt"))
    settle("ocdbt")
    got = requests("/oc-dbt")
    ok(len(got) == 1 and psql("SELECT count(*) FROM smartetl.delivery WHERE channel = 'ocdbt'") == "1" and got[0]["json"]["alerts"][0]["labels"]["pipeline"] == "shop"
       and len(got[0]["json"]["alerts"][0]["annotations"].get("muted_alerts", [])) == 20,
       "one notification, for the invocation, listing the 20 nodes it muted (%d received)" % len(got),
       first and first[0]["body"][:400])


def test_oncall_retry():
    """A task failing twice then succeeding on its third try notifies nobody."""
    def try_(n, state):
        doc = {"task_instances": [{"dag_id": "ocdag", "task_id": "load", "dag_run_id": "scheduled__2026-01-04",
                                   "try_number": n, "max_tries": 2, "state": state,
                                   "start_date": "2026-01-04T00:0%d:00+00:00" % n, "end_date": "2026-01-04T00:0%d:30+00:00" % n}]}
        psql("SELECT smartetl.ingest('airflow', $oc$%s$oc$, '{\"namespace\": \"e2e_ocretry\"}')" % json.dumps(doc))
        # every try's state is evaluated (by this session, whatever the worker does)
        psql("SELECT smartetl.evaluate_alerts()")
    try_(1, "up_for_retry")
    try_(2, "up_for_retry")
    try_(3, "success")
    settle("ocretry")
    ok(not requests("/oc-retry") and psql("SELECT count(*) FROM smartetl.delivery WHERE channel = 'ocretry'") == "0",
       "failed twice, succeeded on the third try: no notification")
    psql("SELECT smartetl.ingest('airflow', $oc$%s$oc$, '{\"namespace\": \"e2e_ocretry\"}')" % json.dumps(
        {"task_instances": [{"dag_id": "ocdag", "task_id": "publish", "dag_run_id": "scheduled__2026-01-04", "try_number": n,
                             "max_tries": 2, "state": "up_for_retry" if n < 3 else "failed",
                             "start_date": "2026-01-04T01:0%d:00+00:00" % n, "end_date": "2026-01-04T01:0%d:30+00:00" % n}
                            for n in (1, 2, 3)]}))
    hook = wait_for(lambda: requests("/oc-retry"))
    ok(bool(hook) and "after 3 tries" in hook[0]["json"]["alerts"][0]["annotations"]["summary"],
       "a task failing its last try notifies, after 3 tries", hook and hook[0]["body"][:400])


def test_oncall_escalation():
    """An unacknowledged alert escalates on time (to e-mail), an acknowledged one does not."""
    ingest(["esc_ignored,1,2026-01-05 01:00:00,2026-01-05 01:01:00,failed,disk full",
            "esc_acked,1,2026-01-05 01:00:00,2026-01-05 01:01:00,failed,disk full"], ns="e2e_ocesc")
    first = wait_for(lambda: len(requests("/oc-esc")) >= 2 and requests("/oc-esc"))
    ok(bool(first), "both alerts are notified")
    t0 = min(r["time"] for r in first) if first else time.time()
    psql("SELECT smartetl.ack(alert_id, 'alice', 'on it') FROM smartetl.alert "
         "WHERE rule_name = 'oc-esc' AND labels->>'pipeline' = 'esc_acked'")

    def escalation_mails():
        path = os.path.join(tmp, "smtp.jsonl")
        return [m for m in (json.loads(l) for l in open(path)) if "oc-esc" in (m.get("subject") or "")] \
            if os.path.exists(path) else []
    mails = wait_for(escalation_mails, timeout=20)
    ok(bool(mails) and "esc_ignored" in mails[0]["subject"], "the unacknowledged alert escalates to e-mail",
       mails and json.dumps(mails[0])[:400])
    t = (mails[0].get("time") or time.time()) if mails else t0
    # not before its step (3 s); that it came at all is the bounded wait above
    ok(bool(mails) and t - t0 >= 3.0 - 0.5, "not before its step: %.2f s after its first notification (step: 3 s)"
       % (t - t0))
    # the two were notified together: the acknowledged one's step is due too
    settle("mail")
    ok(not [m for m in escalation_mails() if "esc_acked" in m["subject"]], "the acknowledged alert does not escalate")
    level = psql("SELECT string_agg(labels->>'pipeline' || ':' || escalation_level, ',' ORDER BY labels->>'pipeline') "
                 "FROM smartetl.alert WHERE rule_name = 'oc-esc'")
    ok(level == "esc_acked:0,esc_ignored:1", "escalation steps taken: " + level)

def main():
    only = [t for t in os.environ.get("SMARTETL_E2E_ONLY", "").split(",") if t]
    try:
        setup()
        for name in TESTS:
            if only and name not in only:
                skip(1, "test %s not selected by SMARTETL_E2E_ONLY" % name)
                continue
            if name in NEEDS_CLUSTER_DIR and not os.environ.get("SMARTETL_CLUSTER_DIR"):
                skip(NEEDS_CLUSTER_DIR[name], "%s: %s" % (name, NO_CLUSTER_DIR))
                continue
            globals()["test_" + name]()
    except Exception as e:  # report, do not hide
        ok(False, "e2e run raised " + type(e).__name__, str(e))
    finally:
        for p in procs:
            p.terminate()
        subprocess.run(["bash", os.path.join(RECV, "alertmanager.sh"), "stop", os.path.join(tmp, "am")],
                       capture_output=True)
    print("1..%d" % n_tests)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
