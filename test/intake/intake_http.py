#!/usr/bin/python3
"""The HTTP intake end to end, against the intake worker of a running cluster.

Usage: test/intake/intake_http.py   (PGHOST/PGPORT/PGUSER of a cluster started by
scripts/lib.sh whose intake worker serves database "postgres";
SMARTETL_DATA = the shared data folder; SMARTETL_CLUSTER_DIR = the cluster
folder, for the server log)

Turns the listener on at a free loopback port (ALTER SYSTEM + reload), then
checks, printing TAP:
  * health, unknown paths (404), wrong methods (405);
  * API keys: only a hash is stored, admins cannot read it; keys cannot act
    as superusers, for roles their creator cannot act as, or for roles that
    may not ingest; missing, malformed, wrong, revoked keys get 401; a key
    limited to namespaces gets 403 elsewhere (nothing stored); a key whose
    role lost smartetl_writer gets 403;
  * the OpenLineage samples of ../shared/data posted with curl (one by one
    and as one array) give exactly the rows smartetl.ingest() gives in a
    second database;
  * 400 with the same message, detail and hint as smartetl.ingest();
    the JSON envelope; csv/logline with query options;
  * 415 (form data, gzip), 413 (declared 1 GB body: answered before the
    body is sent; 1 GB chunked: dropped), 429 with Retry-After when the
    pending bodies exceed smartetl.http_max_pending;
  * a slow client trickling its body is dropped after
    smartetl.http_request_timeout, one trickling headers holds only its own
    connection, and 10,000 idle connections are closed after
    smartetl.http_idle_timeout; other clients are served meanwhile;
  * an HTTP-ingested failure raises its alert as fast as a SQL-ingested one;
  * TLS with smartetl.http_tls_cert/key;
  * the worker never restarted and the token never reached the server log.
"""
import gzip
import http.client
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("SMARTETL_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
# the same OpenLineage samples are shipped in test/data (Apache-2.0) for a clone without ../shared
OL_DIR = os.path.join(DATA, "format_refs", "openlineage")
if not os.path.isdir(OL_DIR):
    OL_DIR = os.path.join(HERE, "..", "data", "openlineage")
SAMPLES = ["client_python_example_full_event.json", "client_python_serde_example_run_event.json",
           "spec_tests_example_full_event.json"]
tmp = tempfile.mkdtemp(prefix="smartetl-intake-http.")
n_tests = 0
failed = 0
PORT = 0
TOKENS = []


def ok(cond, name, detail="", todo=None):
    global n_tests, failed
    n_tests += 1
    if not cond and not todo:
        failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n_tests, name) + (" # TODO " + todo if todo else ""))
    if detail and not cond:
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()


def psql(sql, db="postgres", check=True, stdin=None, args=()):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, *args]
                         + (["-c", sql] if sql is not None else []),
                         capture_output=True, text=True, input=stdin)
    if check and out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip() if check else out


def sql_error(sql, db="postgres"):
    """message, detail, hint of the error a statement raises (psql VERBOSITY default)."""
    out = psql(sql, db=db, check=False)
    msg = detail = hint = None
    for line in out.stderr.splitlines():
        if line.startswith("ERROR:  "):
            msg = line[8:]
        elif line.startswith("DETAIL:  "):
            detail = line[9:]
        elif line.startswith("HINT:  "):
            hint = line[7:]
    return msg, detail, hint


def partitions_todo():
    """Log events need smartetl._log_partitions_ensure, which writers may call once the
    ingest hardening (SECURITY DEFINER + grant, another branch) is merged."""
    if psql("SELECT has_function_privilege('smartetl_writer', "
            "'smartetl._log_partitions_ensure(timestamptz, timestamptz)', 'EXECUTE')") == "t":
        return None
    return "writers cannot create log_event partitions before the ingest hardening is merged"


def wait_for(fn, timeout=15.0, step=0.1):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(method, path, body=None, token=None, ctype="application/json", headers=None, tls_ctx=None,
            timeout=30):
    if tls_ctx:
        conn = http.client.HTTPSConnection("127.0.0.1", PORT, timeout=timeout, context=tls_ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    h = {}
    if ctype:
        h["Content-Type"] = ctype
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    if isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed


def post(path, body, token=None, **kw):
    return request("POST", path, body, token, **kw)


def health_info():
    try:
        st, h, b = request("GET", "/api/v1/health", timeout=2)
        return b if isinstance(b, dict) else {}
    except OSError:
        return {}


def set_conf(applied=False, **settings):
    """ALTER SYSTEM + reload; with applied=True (the listener stays where it is), wait
    until the intake worker says it has read the new settings."""
    before = health_info().get("settings_loaded_at") if applied else None
    for k, v in settings.items():
        if v is None:
            psql("ALTER SYSTEM RESET smartetl.%s" % k)
        else:
            psql("ALTER SYSTEM SET smartetl.%s = '%s'" % (k, v))
    psql("SELECT pg_reload_conf()")
    if applied and not wait_for(lambda: health_info().get("settings_loaded_at") not in (None, before), timeout=10):
        raise RuntimeError("the intake worker did not reload its settings within 10 s")


def worker_pid():
    return psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'smartetl intake worker'")


def health_ok():
    try:
        return request("GET", "/api/v1/health", timeout=2)[0] == 200
    except OSError:
        return False


def ol_event(ns, job, run_id, etype="COMPLETE", when="2026-01-02T03:04:05.000Z", extra=None):
    ev = {"eventType": etype, "eventTime": when, "run": {"runId": run_id},
          "job": {"namespace": ns, "name": job}, "inputs": [], "outputs": [],
          "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/airflow",
          "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    if extra:
        ev["run"]["facets"] = extra
    return ev


def runs(ns, db="postgres"):
    return psql("SELECT p.name || '/' || r.external_id || '/' || r.status FROM smartetl.run r "
                "JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = '%s' ORDER BY 1" % ns, db=db)


# ---------------------------------------------------------------- setup

def setup():
    global PORT
    PORT = free_port()
    psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl")
    psql("""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake_bot') THEN
                CREATE ROLE intake_bot NOLOGIN; END IF;
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake_reader') THEN
                CREATE ROLE intake_reader NOLOGIN; END IF;
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake_admin') THEN
                CREATE ROLE intake_admin NOLOGIN; END IF;
            END $$;
            GRANT smartetl_writer TO intake_bot; GRANT smartetl_reader TO intake_reader;
            GRANT smartetl_admin TO intake_admin;
            DELETE FROM smartetl.api_key;""")
    set_conf(http_listen="127.0.0.1:%d" % PORT, http_idle_timeout=3, http_request_timeout=5)
    ok(wait_for(health_ok, timeout=20), "the listener starts on reload (smartetl.http_listen = 127.0.0.1:%d)" % PORT)


def new_key(name, role="intake_bot", namespaces=None):
    ns = "NULL" if namespaces is None else "ARRAY[%s]" % ",".join("'%s'" % n for n in namespaces)
    tok = psql("SELECT smartetl.create_api_key('%s', '%s', %s)" % (name, role, ns))
    TOKENS.append(tok)
    return tok


# ---------------------------------------------------------------- tests

def test_routes():
    st, h, body = request("GET", "/api/v1/health")
    ok(st == 200 and body["status"] == "ok", "GET /api/v1/health: 200 ok", body)
    st, h, body = request("POST", "/api/v1/health", "{}")
    ok(st == 405 and "GET" in h.get("allow", ""), "POST /api/v1/health: 405 with Allow", (st, h))
    st, h, body = request("GET", "/api/v1/lineage")
    ok(st == 405 and h.get("allow") == "POST", "GET /api/v1/lineage: 405 with Allow: POST", (st, h))
    st, h, body = request("GET", "/etc/passwd")
    ok(st == 404, "an unknown path: 404", st)
    st, h, body = post("/api/v1/ingest/../../x", "a")
    ok(st in (400, 404), "a path with dots: refused (%d)" % st, st)


def test_keys():
    tok = new_key("bot")
    ok(tok.startswith("smartetl_") and len(tok.split("_")[-1]) == 64, "create_api_key returns a token", tok)
    row = psql("SELECT name, role, namespaces IS NULL, length(hash), length(salt) FROM smartetl.api_key WHERE name = 'bot'")
    ok(row == "bot|intake_bot|t|32|16", "only a 32-byte salted hash is stored", row)
    dump = psql("SELECT row_to_json(k)::text FROM smartetl.api_key k")
    ok(tok.split("_")[-1] not in dump, "the token is in no column of smartetl.api_key")
    err = sql_error("SET ROLE intake_admin; SELECT hash FROM smartetl.api_key")
    ok(err[0] and "permission denied" in err[0], "smartetl_admin cannot read the hashes", err)
    err = sql_error("SET ROLE intake_admin; SELECT key_id, name, role, last_used_at FROM smartetl.api_key")
    ok(err[0] is None, "smartetl_admin reads the other columns", err)
    err = sql_error("SET ROLE intake_admin; INSERT INTO smartetl.api_key (name, role, salt, hash, created_by) "
                    "VALUES ('x', 'postgres', '', '', 'x')")
    ok(err[0] and "permission denied" in err[0], "no role writes smartetl.api_key directly", err)
    err = sql_error("SELECT smartetl.create_api_key('root', 'postgres')")
    ok(err[0] and "superuser" in err[0], "a key cannot act as a superuser", err)
    err = sql_error("SET ROLE intake_admin; SELECT smartetl.create_api_key('other', 'intake_bot')")
    ok(err[0] and "permission denied to create an API key for role" in err[0],
       "an admin cannot create a key for a role it cannot act as", err)
    err = sql_error("SELECT smartetl.create_api_key('reader', 'intake_reader')")
    ok(err[0] and "may not ingest" in err[0] and err[2] and "smartetl_writer" in err[2],
       "a key for a role that may not ingest is refused, with a hint", err)
    err = sql_error("SELECT smartetl.create_api_key('bot', 'intake_bot')")
    ok(err[0] and "already exists" in err[0], "names are unique among active keys", err)
    err = sql_error("SET ROLE intake_bot; SELECT smartetl.create_api_key('self', 'intake_bot')")
    ok(err[0] and "permission denied" in err[0], "writers cannot create keys", err)

    body = json.dumps(ol_event("intake_keys", "job", "k-1"))
    st, h, b = post("/api/v1/lineage", body)
    ok(st == 401 and h.get("www-authenticate", "").startswith("Bearer"),
       "no Authorization: 401 with WWW-Authenticate: Bearer", (st, h, b))
    st, h, b = post("/api/v1/lineage", body, headers={"Authorization": "Basic Ym90OmJvdA=="})
    ok(st == 401, "Basic authentication: 401", st)
    st, h, b = post("/api/v1/lineage", body, token="not-a-token")
    ok(st == 401, "a malformed token: 401", st)
    wrong = tok[:-1] + ("0" if tok[-1] != "0" else "1")
    st, h, b = post("/api/v1/lineage", body, token=wrong)
    ok(st == 401 and b["error"]["message"] == "invalid API key", "a wrong secret: 401", (st, b))
    st, h, b = post("/api/v1/lineage", body, token="smartetl_999999_" + "a" * 64)
    ok(st == 401, "an unknown key id: 401", st)
    st, h, b = post("/api/v1/lineage", body, token=tok)
    ok(st == 201 and b == {"status": "stored"}, "the key stores the event: 201", (st, b))
    ok(runs("intake_keys") == "job/k-1/success", "the run is stored", runs("intake_keys"))
    used = psql("SELECT last_used_at IS NOT NULL FROM smartetl.api_key WHERE name = 'bot'")
    ok(used == "t", "last_used_at is recorded")

    ns_tok = new_key("team_a", namespaces=["team_a"])
    st, h, b = post("/api/v1/lineage", json.dumps(ol_event("team_b", "job", "ns-1")), token=ns_tok)
    ok(st == 403 and "may not write namespace \"team_b\"" in b["error"]["message"],
       "a key limited to team_a: 403 for team_b", (st, b))
    ok(runs("team_b") == "", "nothing of the refused request is stored")
    mixed = json.dumps([ol_event("team_a", "job", "ns-2"), ol_event("team_b", "job", "ns-3")])
    st, h, b = post("/api/v1/lineage", mixed, token=ns_tok)
    ok(st == 403 and runs("team_a") == "", "one foreign event refuses the whole request", (st, runs("team_a")))
    st, h, b = post("/api/v1/lineage", json.dumps(ol_event("team_a", "job", "ns-4")), token=ns_tok)
    ok(st == 201 and runs("team_a") == "job/ns-4/success", "the same key stores into team_a", (st, b))
    st, h, b = post("/api/v1/ingest/csv", "job,run_id,status\nbackup,1,ok\n", token=ns_tok, ctype="text/csv")
    ok(st == 200 and runs("team_a") == "backup/1/success\njob/ns-4/success",
       "csv without a namespace option goes to the key's namespace", (st, b, runs("team_a")))
    st, h, b = post("/api/v1/ingest/logline?log_format=%3CLevel%3E%20%3CContent%3E", "INFO hello\n",
                    token=ns_tok, ctype="text/plain")
    ok(st == 403 and "named pipeline" in b["error"]["message"],
       "log lines of no pipeline: 403 for a limited key", (st, b))

    psql("SELECT smartetl.revoke_api_key('bot')")
    st, h, b = post("/api/v1/lineage", body, token=tok)
    ok(st == 401, "a revoked key: 401 at once", st)
    err = sql_error("SELECT smartetl.revoke_api_key('bot')")
    ok(err[0] and "does not exist or is already revoked" in err[0], "revoking twice is an error", err)
    tok2 = new_key("bot")
    ok(tok2 != tok and post("/api/v1/lineage", json.dumps(ol_event("intake_keys", "job", "k-2")),
                            token=tok2)[0] == 201, "a revoked key's name can be given to a new key")

    lost = new_key("lost")
    psql("CREATE ROLE intake_tmp NOLOGIN; GRANT smartetl_writer TO intake_tmp")
    tmp_tok = new_key("tmp", role="intake_tmp")
    psql("REVOKE smartetl_writer FROM intake_tmp")
    st, h, b = post("/api/v1/lineage", body, token=tmp_tok)
    ok(st == 403 and "may not ingest" in b["error"]["message"],
       "a key whose role lost smartetl_writer: 403", (st, b))
    psql("DROP ROLE intake_tmp")
    st, h, b = post("/api/v1/lineage", body, token=tmp_tok)
    ok(st == 403 and "no longer exists" in b["error"]["message"], "a key whose role was dropped: 403", (st, b))
    return tok2, lost


def sample_projection(db, namespaces):
    ns = ",".join("'%s'" % n for n in namespaces)
    runs_q = psql("""SELECT concat_ws(' | ', p.namespace, p.name, r.external_id, r.attempt, r.status, r.started_at,
                                    r.ended_at, r.duration, r.rows_read, r.rows_written, r.bytes, r.host,
                                    r.error_message, r.parent_external_id, r.attrs, t.template)
                     FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
                     LEFT JOIN smartetl.template t USING (template_id)
                     WHERE p.namespace IN (%s) ORDER BY 1""" % ns, db=db)
    events = psql("""SELECT concat_ws(' | ', e.source, e.line_no, e.ts, e.level, e.component, e.message, e.attrs)
                     FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id)
                     WHERE p.namespace IN (%s) ORDER BY 1""" % ns, db=db)
    return runs_q + "\n--\n" + events


def test_samples(tok):
    psql("DROP DATABASE IF EXISTS intake_ref")
    psql("CREATE DATABASE intake_ref")
    psql("SET client_min_messages = warning; CREATE EXTENSION smartetl", db="intake_ref")
    namespaces = set()
    for name in SAMPLES:
        path = os.path.join(OL_DIR, name)
        namespaces.add(json.load(open(path))["job"]["namespace"])
        psql(None, db="intake_ref", args=["-v", "p=" + open(path).read()],
             stdin="SELECT smartetl.ingest('openlineage', :'p');")
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                              "-H", "Content-Type: application/json", "-H", "Authorization: Bearer " + tok,
                              "--data-binary", "@" + path, "http://127.0.0.1:%d/api/v1/lineage" % PORT],
                             capture_output=True, text=True)
        ok(out.stdout == "201", "curl POST %s: 201" % name, out.stdout + out.stderr)
    mine = sample_projection("postgres", namespaces)
    ref = sample_projection("intake_ref", namespaces)
    ok(mine == ref and mine.count("\n") >= 3,
       "the samples over HTTP give exactly the rows of smartetl.ingest() (%d lines compared)" % (mine.count("\n") + 1),
       "HTTP:\n%s\nSQL:\n%s" % (mine, ref))

    # the three as one JSON array, in a fresh namespace set: same as SQL on the same array
    arr = []
    for name in SAMPLES:
        ev = json.load(open(os.path.join(OL_DIR, name)))
        ev["job"]["namespace"] = "intake_arr"
        arr.append(ev)
    body = json.dumps(arr, indent=2)
    st, h, b = post("/api/v1/lineage", body, token=tok)
    psql(None, db="intake_ref", args=["-v", "p=" + body], stdin="SELECT smartetl.ingest('openlineage', :'p');")
    mine = sample_projection("postgres", ["intake_arr"])
    ref = sample_projection("intake_ref", ["intake_arr"])
    ok(st == 201 and mine == ref and mine.count("\n") >= 3,
       "a JSON array of the samples: the same rows as smartetl.ingest()", "HTTP:\n%s\nSQL:\n%s" % (mine, ref))
    psql("DROP DATABASE intake_ref")

    # a failure with a stack trace, sent twice (a client that lost the first answer)
    ev = json.dumps(ol_event("intake_retry", "job", "st-1", "FAIL", extra={"errorMessage": {
        "message": "boom", "programmingLanguage": "python",
        "stackTrace": "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom"}}))
    codes = [post("/api/v1/lineage", ev, token=tok)[0] for _ in range(2)]
    n = psql("SELECT count(*) FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id) "
             "WHERE p.namespace = 'intake_retry'")
    ok(codes == [201, 201] and n == "1" and runs("intake_retry") == "job/st-1/failed",
       "an event sent twice is stored once, its stack trace too", (codes, n), todo=partitions_todo())


def test_errors(tok):
    csv = "job,run_id,status,start\nbackup,1,ok,2026-01-01 00:00:00\nbackup,2,ok,yesterday-ish\n"
    st, h, b = post("/api/v1/ingest/csv?namespace=intake_err", csv, token=tok, ctype="text/csv")
    want = sql_error("SELECT smartetl.ingest('csv', $$%s$$, '{\"namespace\": \"intake_err\"}')" % csv)
    got = (b["error"]["message"], b["error"].get("detail"), b["error"].get("hint")) if st == 400 else None
    ok(st == 400 and got == want, "a bad csv value: 400 with the message, detail and hint of smartetl.ingest()",
       "HTTP %s %s\nSQL  %s" % (st, got, want))
    ok(runs("intake_err") == "", "nothing of the bad request is stored")
    st, h, b = post("/api/v1/ingest/csv?namespace=intake_err&on_error=quarantine", csv, token=tok, ctype="text/csv")
    ok(st == 200 and b == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 1},
       "quarantine as a query option: 200 with the counts", (st, b))

    bad = '{"eventType": "COMPLETE",\n "run": {"runId": "x"},\n "job": {"namespace": "a" "name": "b"}}'
    st, h, b = post("/api/v1/lineage", bad, token=tok)
    want = sql_error("SELECT smartetl.ingest('openlineage', $$%s$$)" % bad)
    ok(st == 400 and b["error"]["message"] == want[0] and "line 3" in want[0],
       "bad JSON: 400 naming the line, as smartetl.ingest()", (st, b, want))
    st, h, b = post("/api/v1/lineage", "", token=tok)
    ok(st == 400 and "no records" in b["error"]["message"], "an empty body: 400", (st, b))
    st, h, b = post("/api/v1/lineage", b'{"eventType": "\xff"}', token=tok)
    ok(st == 400, "invalid UTF-8: 400", (st, b))
    st, h, b = post("/api/v1/ingest/nosuchformat", "x", token=tok, ctype="text/plain")
    ok(st == 400 and "unknown ingest format" in b["error"]["message"], "an unknown format: 400", (st, b))
    st, h, b = post("/api/v1/ingest/csv?delimter=%3B", "a\n", token=tok, ctype="text/csv")
    ok(st == 400 and "unknown option \"delimter\"" in b["error"]["message"], "a misspelt option: 400", (st, b))

    env = {"format": "logline", "payload": "2026-01-01 10:00:00 ERROR disk full\n2026-01-01 10:00:01 INFO retry\n",
           "options": {"log_format": "<Date> <Time> <Level> <Content>", "namespace": "intake_env", "pipeline": "p"}}
    st, h, b = post("/api/v1/ingest", json.dumps(env), token=tok)
    n = psql("SELECT count(*) FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id) "
             "WHERE p.namespace = 'intake_env'")
    ok(st == 200 and b["inserted"] == 2 and n == "2", "the JSON envelope (logline with options): 200, 2 events",
       (st, b, n), todo=partitions_todo())
    env = {"format": "jsonl", "payload": [{"job": "j", "run_id": "1", "status": "failed"}],
           "options": {"namespace": "intake_env"}}
    st, h, b = post("/api/v1/ingest", json.dumps(env), token=tok)
    ok(st == 200 and runs("intake_env") == "j/1/failed", "an envelope whose payload is JSON", (st, b))
    st, h, b = post("/api/v1/ingest", '{"payload": "x"}', token=tok)
    ok(st == 400 and "format" in b["error"]["message"], "an envelope without format: 400", (st, b))


def test_media_and_size(tok):
    body = json.dumps(ol_event("intake_media", "job", "m-1"))
    st, h, b = post("/api/v1/lineage", body, token=tok, ctype="application/x-www-form-urlencoded")
    ok(st == 415, "form data: 415", (st, b))
    st, h, b = post("/api/v1/lineage", gzip.compress(body.encode()), token=tok,
                    headers={"Content-Encoding": "gzip"})
    ok(st == 415, "a gzip body: 415", (st, b))
    st, h, b = post("/api/v1/lineage", body, token=tok, ctype="application/json; charset=latin1")
    ok(st == 415, "charset latin1: 415", (st, b))
    st, h, b = post("/api/v1/lineage", body, token=tok, ctype="application/json; charset=utf-8")
    ok(st == 201, "charset utf-8: 201", (st, b))

    # a declared 1 GB body: refused from the headers alone
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    t0 = time.time()
    s.sendall(("POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Authorization: Bearer %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % (tok, 1 << 30)).encode())
    answer = s.recv(4096).decode(errors="replace")
    s.close()
    ok(answer.startswith("HTTP/1.1 413") and time.time() - t0 < 2,
       "a declared 1 GB body: 413 before any of it is sent (%.2f s)" % (time.time() - t0), answer[:200])

    # 1 GB sent chunked: dropped once it passes smartetl.http_max_body; others are served meanwhile
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(("POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n" % tok).encode())
    chunk = ("%x\r\n" % (1 << 20)).encode() + b"x" * (1 << 20) + b"\r\n"
    sent = 0
    dropped = False
    t0 = time.time()
    served = None
    try:
        while sent < (1 << 30):
            s.sendall(chunk)
            sent += 1 << 20
            if sent == 4 << 20:
                served = post("/api/v1/lineage", json.dumps(ol_event("intake_media", "job", "m-2")), token=tok)[0]
    except OSError:
        dropped = True
    s.close()
    ok(dropped and sent < (64 << 20), "1 GB chunked: the connection is dropped after %d MB (%.1f s)"
       % (sent >> 20, time.time() - t0), "sent %d" % sent)
    ok(served == 201, "another client is served during the upload", served)


def test_saturation(tok):
    set_conf(applied=True, http_max_pending="1MB")
    held = []
    for i in range(2):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(("POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n[" % (tok, 400000)).encode())
        held.append(s)
    ok(wait_for(lambda: health_info().get("buffered", 0) >= 2 * 400000, timeout=10),
       "the two held uploads are accounted (health: buffered %s bytes)" % health_info().get("buffered"))
    st, h, b = post("/api/v1/lineage", "[" + " " * 400000 + json.dumps(ol_event("intake_sat", "j", "s-1")) + "]",
                    token=tok)
    ok(st == 429 and h.get("retry-after") == "1", "pending bodies over smartetl.http_max_pending: 429 with Retry-After",
       (st, h, b))
    for s in held:
        s.close()
    ok(wait_for(lambda: health_info().get("buffered", -1) == 0, timeout=10),
       "closing them frees what they held (health: buffered %s bytes)" % health_info().get("buffered"))
    st, h, b = post("/api/v1/lineage", json.dumps(ol_event("intake_sat", "j", "s-2")), token=tok)
    ok(st == 201, "once they are gone: 201 again", (st, b))
    set_conf(applied=True, http_max_pending=None)


def test_slow_and_idle(tok):
    # a client trickling its body: dropped after smartetl.http_request_timeout (5 s here)
    s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    s.sendall(("POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Authorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n" % tok).encode())
    # and one trickling its headers
    h = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    t0 = time.time()
    closed_after = None
    served = []
    i = 0
    while time.time() - t0 < 12 and closed_after is None:
        try:
            s.sendall(b" ")
            h.sendall(b"X-Slow-%d: y\r\n" % i if i else b"POST /api/v1/lineage HTTP/1.1\r\n")
        except OSError:
            closed_after = time.time() - t0
            break
        if i % 4 == 0:
            served.append(post("/api/v1/lineage", json.dumps(ol_event("intake_slow", "j", "slow-%d" % i)),
                               token=tok, timeout=5)[0])
        s.settimeout(0.5)
        try:
            if s.recv(100) == b"":
                closed_after = time.time() - t0
        except socket.timeout:
            pass
        except OSError:
            closed_after = time.time() - t0
        i += 1
    s.close()
    h.close()
    ok(closed_after is not None and 4 <= closed_after <= 9,
       "a body trickled byte by byte is dropped after smartetl.http_request_timeout (%.1f s)" % (closed_after or -1))
    ok(served and all(x == 201 for x in served), "%d other requests were served meanwhile" % len(served), served)

    # 10,000 idle connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 12000), hard))
    idle = []
    t0 = time.time()
    try:
        for i in range(10000):
            c = socket.socket()
            c.setblocking(True)
            c.connect(("127.0.0.1", PORT))
            idle.append(c)
    except OSError as e:
        print("# stopped opening connections at %d: %s" % (len(idle), e))
    opened = time.time() - t0
    t1 = time.time()
    st = post("/api/v1/lineage", json.dumps(ol_event("intake_idle", "j", "idle-1")), token=tok, timeout=10)[0]
    took = time.time() - t1
    hst, hh, hb = request("GET", "/api/v1/health")
    rss = psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'smartetl intake worker'")
    try:
        rss_kb = int([l for l in open("/proc/%s/status" % rss) if l.startswith("VmRSS")][0].split()[1])
    except (OSError, IndexError, ValueError):
        rss_kb = -1
    ok(len(idle) == 10000 and st == 201 and took < 2,
       "with 10,000 idle connections open (%.1f s to open) a request is served in %.3f s (worker RSS %d MB, "
       "%s connections)" % (opened, took, rss_kb // 1024, hb.get("connections") if isinstance(hb, dict) else "?"),
       (len(idle), st, took))
    time.sleep(3 + 3)
    closed = 0
    for c in idle[:200]:
        c.settimeout(0.05)
        try:
            if c.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except OSError:
            closed += 1
    for c in idle:
        c.close()
    ok(closed == 200, "idle connections are closed after smartetl.http_idle_timeout (%d of 200 checked)" % closed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_alert_latency(tok):
    psql("""BEGIN; SELECT pg_advisory_xact_lock(1397572948, 1000);
            DELETE FROM smartetl.alert_rule WHERE name LIKE 'intake-%';
            DELETE FROM smartetl.channel WHERE name = 'intake-bus';
            INSERT INTO smartetl.channel (name, kind, target) VALUES ('intake-bus', 'notify', 'smartetl_intake');
            INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait)
            VALUES ('intake-sql', 'run_failed', '{"namespace": "intake_alert_sql"}', 'critical', '{intake-bus}', '0'),
                   ('intake-http', 'run_failed', '{"namespace": "intake_alert_http"}', 'critical', '{intake-bus}', '0');
            COMMIT;""")
    time.sleep(1)

    def alert_of(rule):
        return psql("SELECT count(*) FROM smartetl.alert WHERE rule_name = '%s' AND state = 'firing'" % rule) != "0"

    t0 = time.time()
    psql("SELECT smartetl.ingest('openlineage', $$%s$$)" % json.dumps(
        ol_event("intake_alert_sql", "load", "a-1", "FAIL", extra={"errorMessage": {
            "message": "disk full", "programmingLanguage": "python"}})))
    sql_ok = wait_for(lambda: alert_of("intake-sql"), timeout=10, step=0.05)
    sql_s = time.time() - t0
    t0 = time.time()
    st = post("/api/v1/lineage", json.dumps(ol_event("intake_alert_http", "load", "a-1", "FAIL", extra={
        "errorMessage": {"message": "disk full", "programmingLanguage": "python"}})), token=tok)[0]
    http_ok = wait_for(lambda: alert_of("intake-http"), timeout=10, step=0.05)
    http_s = time.time() - t0
    ok(st == 201 and sql_ok and http_ok and http_s < 3 and http_s <= sql_s + 1.0,
       "an HTTP-ingested failure fires its alert as fast as a SQL one (HTTP %.2f s, SQL %.2f s)" % (http_s, sql_s))
    psql("""BEGIN; SELECT pg_advisory_xact_lock(1397572948, 1000);
            DELETE FROM smartetl.alert_rule WHERE name LIKE 'intake-%';
            DELETE FROM smartetl.delivery WHERE channel = 'intake-bus';
            DELETE FROM smartetl.channel WHERE name = 'intake-bus'; COMMIT;""")


def test_tls(tok):
    cert_dir = tempfile.mkdtemp(prefix="smartetl-intake-tls.")
    key, crt = os.path.join(cert_dir, "key.pem"), os.path.join(cert_dir, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    subprocess.run(["chown", "-R", "postgres", cert_dir], check=True)
    os.chmod(cert_dir, 0o755)
    os.chmod(key, 0o644)
    set_conf(http_tls_cert=crt, http_tls_key=key)
    server_log = os.path.join(os.environ["SMARTETL_CLUSTER_DIR"], "server.log")
    ok(wait_for(lambda: "has group or world access" in open(server_log, errors="replace").read(), timeout=10),
       "a world-readable TLS key is refused")
    os.chmod(key, 0o600)
    set_conf(http_tls_cert=crt, http_tls_key=key)
    ctx = ssl.create_default_context(cafile=crt)
    up = wait_for(lambda: _tls_health(ctx), timeout=15, step=0.5)
    ok(up, "TLS with smartetl.http_tls_cert/key: GET health over https")
    if up:
        st, h, b = post("/api/v1/lineage", json.dumps(ol_event("intake_tls", "j", "t-1")), token=tok, tls_ctx=ctx)
        ok(st == 201 and runs("intake_tls") == "j/t-1/success", "a lineage event over https: 201, stored", (st, b))
    else:
        ok(False, "a lineage event over https")
    set_conf(http_tls_cert=None, http_tls_key=None)
    ok(wait_for(health_ok, timeout=15, step=0.5), "plain HTTP again after the TLS settings are reset")


def _tls_health(ctx):
    try:
        return request("GET", "/api/v1/health", tls_ctx=ctx, timeout=2)[0] == 200
    except (OSError, ssl.SSLError):
        return False


def main():
    try:
        setup()
        pid = worker_pid()
        test_routes()
        tok, spare = test_keys()
        test_samples(tok)
        test_errors(tok)
        test_media_and_size(tok)
        test_saturation(tok)
        test_slow_and_idle(tok)
        test_alert_latency(tok)
        test_tls(tok)
        ok(worker_pid() == pid, "the intake worker never restarted (pid %s)" % pid, worker_pid())
        log = open(os.path.join(os.environ["SMARTETL_CLUSTER_DIR"], "server.log"), errors="replace").read()
        ok(not any(t.split("_")[-1] in log for t in TOKENS),
           "no token reached the server log (%d tokens, %d bytes checked)" % (len(TOKENS), len(log)))
    finally:
        set_conf(http_listen=None, http_idle_timeout=None, http_request_timeout=None,
                 http_tls_cert=None, http_tls_key=None, http_max_pending=None)
    print("1..%d" % n_tests)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
