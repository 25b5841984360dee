#!/usr/bin/python3
"""The HTTP intake under load, and kill -9 of the server during the load.

Usage: test/intake/intake_load.py   (PGHOST/PGPORT/PGUSER of a cluster started
by scripts/lib.sh whose intake worker serves database "postgres";
SMARTETL_CLUSTER_DIR = its folder, for the restart)

With wrk (test/intake/load.lua: one OpenLineage event per request, each with
its own run id, 256 connections: more senders make bigger batches, which
keeps the floor well clear of what a busy 2-core machine leaves us) and TAP
output:
  * 30 s of load: at least 2,000 events/s acknowledged, every acknowledged
    event stored exactly once;
  * 25 s of load with kill -9 of every server process after 8 s and a
    restart: every event acknowledged before or after the crash is stored,
    exactly once.
Events are acknowledged only after their commit, with synchronous_commit on
in the intake worker whatever the server's setting (the test clusters run
with synchronous_commit = off, which is what makes the second check bite).
This is a correctness test with a floor; measured rates go in BENCHMARKS.md
(test/bench/intake_bench.sh).
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
import pgcluster  # noqa: E402
tmp = tempfile.mkdtemp(prefix="smartetl-intake-load.")
n_tests = 0
failed = 0
PORT = 0
CONNECTIONS = int(os.environ.get("SMARTETL_INTAKE_CONNECTIONS", "256"))
FLOOR = 2000


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


def psql(sql, db="postgres", stdin=None):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db] + (["-c", sql] if sql else []),
                         capture_output=True, text=True, input=stdin)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def health_ok():
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=1)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        up = s.recv(100).startswith(b"HTTP/1.1 200")
        s.close()
        return up
    except OSError:
        return False


def wait_for(fn, timeout=30.0, step=0.2):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def wrk(prefix, seconds, token):
    ack = os.path.join(tmp, prefix + ".ack")
    env = dict(os.environ, WRK_TOKEN=token, WRK_RUN_PREFIX=prefix, WRK_ACK_FILE=ack)
    p = subprocess.Popen(["wrk", "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", "%ds" % seconds,
                          "--timeout", "10s", "--latency", "-s", os.path.join(HERE, "load.lua"),
                          "http://127.0.0.1:%d/" % PORT],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return p, ack


def check_stored(prefix, ack):
    acked = [l for l in open(ack).read().split("\n") if l]
    with open(os.path.join(tmp, prefix + ".csv"), "w") as f:
        f.write("\n".join(acked) + "\n")
    out = psql(None, stdin="""
        CREATE TEMP TABLE acked (id text);
        \\copy acked FROM '%s'
        SELECT (SELECT count(*) FROM acked),
               (SELECT count(DISTINCT id) FROM acked),
               (SELECT count(*) FROM acked a WHERE NOT EXISTS
                   (SELECT 1 FROM smartetl.run r WHERE r.external_id = a.id AND r.external_id IS NOT NULL)),
               (SELECT count(*) FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
                 WHERE p.namespace = 'load' AND r.external_id LIKE '%s-%%'),
               (SELECT count(DISTINCT (r.pipeline_id, r.external_id)) FROM smartetl.run r
                  JOIN smartetl.pipeline p USING (pipeline_id)
                 WHERE p.namespace = 'load' AND r.external_id LIKE '%s-%%');
        """ % (os.path.join(tmp, prefix + ".csv"), prefix, prefix))
    n_acked, n_distinct, missing, stored, stored_distinct = map(int, out.split("\n")[-1].split("|"))
    return n_acked, n_distinct, missing, stored, stored_distinct


def crash_and_restart():
    n = pgcluster.kill9()
    pgcluster.start()
    return n


def main():
    global PORT
    PORT = free_port()
    psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl")
    psql("""DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake_load') THEN
              CREATE ROLE intake_load NOLOGIN; END IF; END $$;
            GRANT smartetl_writer TO intake_load;
            DELETE FROM smartetl.api_key WHERE name = 'load';""")
    token = psql("SELECT smartetl.create_api_key('load', 'intake_load', ARRAY['load'])")
    psql("ALTER SYSTEM SET smartetl.http_listen = '127.0.0.1:%d'" % PORT)
    psql("SELECT pg_reload_conf()")
    ok(wait_for(health_ok), "the listener is up on 127.0.0.1:%d" % PORT)
    try:
        # 30 s of load
        print("# loadavg before the load: %s" % open("/proc/loadavg").read().strip())
        p, ack = wrk("run1", 30, token)
        out = p.communicate()[0]
        print("# " + "\n# ".join(out.strip().splitlines()))
        n_acked, n_distinct, missing, stored, stored_distinct = check_stored("run1", ack)
        rate = n_acked / 30.0
        ok(rate >= FLOOR, "30 s with %d connections: %.0f events/s acknowledged (floor %d)"
           % (CONNECTIONS, rate, FLOOR))
        ok(n_acked == n_distinct and missing == 0,
           "every acknowledged event is stored (%d acknowledged, %d missing)" % (n_acked, missing))
        ok(stored == stored_distinct and stored >= n_acked and stored - n_acked <= CONNECTIONS,
           "each exactly once (%d runs stored for %d acknowledged; the rest were in flight at the end)"
           % (stored, n_acked))

        # kill -9 during the load
        p, ack = wrk("run2", 25, token)
        time.sleep(8)
        killed = crash_and_restart()
        up = wait_for(health_ok, timeout=30)
        out = p.communicate()[0]
        print("# " + "\n# ".join(out.strip().splitlines()))
        ok(up, "after kill -9 of the postmaster and its %d children and a restart, the intake is back" % killed)
        n_acked, n_distinct, missing, stored, stored_distinct = check_stored("run2", ack)
        ok(n_acked > 0 and n_acked == n_distinct and missing == 0,
           "kill -9 during the load: every acknowledged event survives (%d acknowledged, %d missing)"
           % (n_acked, missing))
        ok(stored == stored_distinct,
           "and is stored once (%d runs stored for %d acknowledged)" % (stored, n_acked))
    finally:
        psql("ALTER SYSTEM RESET smartetl.http_listen")
        psql("SELECT pg_reload_conf()")
    print("1..%d" % n_tests)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
