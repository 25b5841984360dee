#!/usr/bin/python3
"""End-to-end alerting against real receivers, with the alert worker running.

Usage: test/alert/e2e.py   (PGHOST/PGPORT/PGUSER of a cluster started by
scripts/lib.sh, whose alert worker serves database "postgres";
SMARTETL_CLUSTER_DIR = its directory, for the crash test)

Starts the HTTP sink, the SMTP sink (STARTTLS + AUTH) and Alertmanager from
test/receivers on loopback ports, creates one channel of every kind, then
checks, printing TAP:
  * a failed run reaches Teams, Slack, a webhook, Alertmanager, e-mail and
    LISTEN/NOTIFY in the shapes they accept, within seconds; recovery sends
    resolved notifications;
  * the webhook down for a minute, then back: every notification arrives,
    once per idempotency key, in order;
  * 429 with Retry-After: the next attempt waits for it;
  * a receiver that hangs: other channels keep flowing;
  * smartetl.allowed_hosts changed and reloaded (SIGHUP): the worker refuses
    other hosts; the SMTP password never reaches the server log;
  * kill -9 of the server in a storm of 1,000 alerts, restart: every
    notification arrives, and no group gets two keys for one notification.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECV = os.path.join(ROOT, "test", "receivers")
HTTP_PORT, SMTP_PORT, AM_PORT = 18181, 12525, 19093
# latency bounds, in seconds; under valgrind (SMARTETL_E2E_SLOW=1) everything is ~10x slower
PROMPT = 3.0 * (10 if os.environ.get("SMARTETL_E2E_SLOW") == "1" else 1)
tmp = tempfile.mkdtemp(prefix="smartetl-alert-e2e.")
procs = []
n_tests = 0
failed = 0


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


def psql(sql, db="postgres"):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         capture_output=True, text=True)
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


def control(path, **rule):
    rule["path"] = path
    http("POST", "/_control", rule)


def wait_for(fn, timeout=15.0, step=0.2):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def ingest(rows, ns="e2e"):
    csv = "job,run_id,start,end,status,error\\n" + "\\n".join(rows) + "\\n"
    return psql("SELECT inserted FROM smartetl.ingest('csv', E'%s', '{\"namespace\": \"%s\"}')"
                % (csv.replace("'", "''"), ns))


def setup():
    start([sys.executable, os.path.join(RECV, "http_sink.py"), "--port", str(HTTP_PORT),
           "--log", os.path.join(tmp, "http.jsonl")], "http")
    start(["/usr/bin/python3", os.path.join(RECV, "smtp_sink.py"), "--port", str(SMTP_PORT),
           "--log", os.path.join(tmp, "smtp.jsonl"), "--starttls", "--cert-dir", os.path.join(tmp, "cert"),
           "--user", "alerts", "--password", "s3cret"], "smtp")
    subprocess.run(["bash", os.path.join(RECV, "alertmanager.sh"), "start", os.path.join(tmp, "am"),
                    str(AM_PORT)], check=True, capture_output=True)
    psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl")
    # the worker may be evaluating: take its evaluation lock for the clean-up
    psql("""BEGIN; SELECT pg_advisory_xact_lock(1397572948, 1000);
            DELETE FROM smartetl.alert_rule; DELETE FROM smartetl.channel; DELETE FROM smartetl.delivery;
            DELETE FROM smartetl.alert; DELETE FROM smartetl.alert_group; DELETE FROM smartetl.alert_rule_state;
            DELETE FROM smartetl.pipeline WHERE namespace LIKE 'e2e%'; COMMIT;""")
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
      ('hosts', 'webhook', '%(u)s/hosts', '{}', NULL)""" % {"u": u, "am": AM_PORT, "smtp": SMTP_PORT})
    psql("""INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait, group_interval) VALUES
      ('e2e-failures', 'run_failed', '{"namespace": "e2e"}', 'critical', '{teams,slack,hook,am,mail,bus}', '0', '0'),
      ('e2e-down', 'run_failed', '{"namespace": "e2e_down"}', 'warning', '{down}', '0', '0'),
      ('e2e-slow', 'run_failed', '{"namespace": "e2e_slow"}', 'warning', '{slow}', '0', '0'),
      ('e2e-hang', 'run_failed', '{"namespace": "e2e_hang"}', 'warning', '{hang,hook}', '0', '0'),
      ('e2e-storm', 'run_failed', '{"namespace": "e2e_storm"}', 'warning', '{storm}', '0', '0'),
      ('e2e-hosts', 'run_failed', '{"namespace": "e2e_hosts"}', 'warning', '{hosts}', '0', '0')""")


def test_delivery_shapes():
    # two commands: LISTEN takes effect when its own transaction commits
    listener = subprocess.Popen(["psql", "-X", "-At", "-d", "postgres", "-c", "LISTEN smartetl_e2e",
                                 "-c", "SELECT pg_sleep(6)"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    t0 = time.time()
    ingest(["payments_load,1,2026-01-01 10:00:00,2026-01-01 10:05:00,failed,"
            "psycopg2.OperationalError: could not connect to server: Connection refused (10.0.3.12:5432)"])
    hook = wait_for(lambda: requests("/hook"))
    ok(bool(hook), "webhook receives the failure")
    if hook:
        ok(hook[0]["time"] - t0 < PROMPT, "within seconds of the ingest (%.3f s)" % (hook[0]["time"] - t0))
        j = hook[0]["json"]
        ok(j["status"] == "firing" and j["alerts"][0]["labels"]["pipeline"] == "payments_load"
           and j["alerts"][0]["annotations"]["error_template"].startswith("psycopg2.OperationalError"),
           "webhook body: status, pipeline label and error template", json.dumps(j)[:600])
        ok(hook[0]["headers"].get("Idempotency-Key") == j["idempotency_key"], "idempotency key header")
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
    control("/hang", mode="hang", seconds=60)
    t0 = time.time()
    ingest(["hang_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,stuck"], ns="e2e_hang")
    other = wait_for(lambda: [r for r in requests("/hook") if r["json"]["alerts"][0]["labels"]["pipeline"] == "hang_a"])
    ok(bool(other) and other[0]["time"] - t0 < PROMPT, "a hanging receiver does not hold up another channel (%.2f s)"
       % ((other[0]["time"] - t0) if other else -1))
    state = wait_for(lambda: psql("SELECT status || ':' || coalesce(last_error, '') FROM smartetl.delivery "
                                  "WHERE channel = 'hang' AND status = 'retrying'"), timeout=10)
    ok("Timeout" in state or "timed out" in state, "the hanging request times out and is retried: " + state)
    control("/hang", mode="ok")


def test_allowed_hosts_reload():
    psql("ALTER SYSTEM SET smartetl.allowed_hosts = 'example.invalid'")
    psql("SELECT pg_reload_conf()")
    time.sleep(1)
    ingest(["hosts_a,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,nope"], ns="e2e_hosts")
    state = wait_for(lambda: psql("SELECT status || ': ' || coalesce(last_error, '') FROM smartetl.delivery "
                                  "WHERE channel = 'hosts' AND status = 'dead'"), timeout=10)
    ok("not in smartetl.allowed_hosts" in state,
       "after SIGHUP the worker refuses hosts not in smartetl.allowed_hosts: " + state)
    psql("ALTER SYSTEM RESET smartetl.allowed_hosts")
    psql("SELECT pg_reload_conf()")
    time.sleep(1)


def test_secret_not_logged():
    log = os.path.join(os.environ["SMARTETL_CLUSTER_DIR"], "server.log")
    text = open(log, errors="replace").read()
    ok("s3cret" not in text, "the SMTP password never appears in the server log (%d bytes checked)" % len(text))


def restart_cluster():
    cdir = os.environ["SMARTETL_CLUSTER_DIR"]
    pid = int(open(os.path.join(cdir, "data", "postmaster.pid")).readline())
    os.kill(pid, signal.SIGKILL)
    time.sleep(3)
    subprocess.run(["bash", "-c", "source scripts/lib.sh && cluster_start '%s' '%s' >/dev/null"
                    % (cdir, os.environ["PGPORT"])], cwd=ROOT, check=True)


def test_storm_crash():
    rows = ["storm_%04d,1,2026-01-01 10:00:00,2026-01-01 10:01:00,failed,disk full on /dev/sd%d" % (i, i % 7)
            for i in range(1000)]
    control("/storm", mode="ok", delay=0.01)
    ingest(rows, ns="e2e_storm")
    wait_for(lambda: len(requests("/storm")) >= 100, timeout=30)
    before = len(requests("/storm"))
    restart_cluster()
    done = wait_for(lambda: psql("SELECT count(*) FILTER (WHERE status = 'sent') = 1000 "
                                 "FROM smartetl.delivery WHERE channel = 'storm'") == "t", timeout=120, step=1)
    reqs = [r for r in requests("/storm") if r["answered"] == 200]
    groups = {}
    for r in reqs:
        groups.setdefault(r["json"]["group_key"], set()).add(r["json"]["idempotency_key"])
    ok(done and len(groups) == 1000,
       "kill -9 during a storm of 1,000 alerts (%d sent before the crash): all 1,000 notifications arrive" % before,
       "groups received: %d" % len(groups))
    ok(all(len(k) == 1 for k in groups.values()),
       "no notification was sent twice under different keys (%d requests for 1,000 keys)" % len(reqs))


def main():
    try:
        setup()
        test_delivery_shapes()
        test_retry_after()
        test_hang()
        test_receiver_down()
        test_allowed_hosts_reload()
        if os.environ.get("SMARTETL_CLUSTER_DIR"):
            test_secret_not_logged()
            test_storm_crash()
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
