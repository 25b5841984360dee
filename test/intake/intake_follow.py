#!/usr/bin/python3
"""Followed files end to end, against the intake worker of a running cluster.

Usage: test/intake/intake_follow.py   (PGHOST/PGPORT/PGUSER of a cluster
started by scripts/lib.sh whose intake worker serves database "postgres";
SMARTETL_CLUSTER_DIR = its folder, for the restart)

Checks, printing TAP:
  * registering needs pg_read_server_files (an admin without it is
    refused), options are checked at INSERT, the owner is the registering
    role;
  * a CSV export that grows: new rows within a second, the header sent
    again, an unfinished last row held back until complete;
    "start": "end" skips what is already there;
  * a log written by a separate process (test/intake/log_writer.py, 20,000
    lines, rotated every 2,000 lines by rename and by copytruncate in turn,
    with lines cut in two): exactly its lines are stored, each once, whole;
  * kill -9 of the server while another log is written and rotated (by
    rename, during the downtime): after the restart exactly its lines are
    stored, each once (positions committed with the rows).
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
import pgcluster  # noqa: E402
n_tests = 0
failed = 0
FMT = "<Date> <Time> <Level> <Component>: <Content>"


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


def psql(sql, db="postgres", check=True):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip() if check else out


def wait_for(fn, timeout=30.0, step=0.1):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def expected_line(n):
    t = 1767261600 + n // 1000
    # the parser trims the message (seq=53 has no filler)
    return ("seq=%d %s" % (n, "x" * (n % 53))).rstrip(), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + ".%03d" % (n % 1000)


def check_lines(pipeline, first, count):
    rows = psql("SELECT e.message FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id) "
                "WHERE p.namespace = 'follow_test' AND p.name = '%s'" % pipeline).split("\n")
    rows = [r for r in rows if r]
    want = {expected_line(n)[0] for n in range(first, first + count)}
    got = set(rows)
    if got != want:
        print("# missing e.g. %s" % sorted(want - got)[:3])
        print("# unexpected e.g. %s" % sorted(got - want)[:3])
    return len(rows), len(got), len(want - got), len(got - want)


def n_events(pipeline):
    return int(psql("SELECT count(*) FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id) "
                    "WHERE p.namespace = 'follow_test' AND p.name = '%s'" % pipeline))


def register(path, fmt, options):
    """Register a file and wait until the worker has seen it (its row in
    smartetl.source_file), so that what the test writes next is new data."""
    import json
    psql("INSERT INTO smartetl.source (path, format, options) VALUES ('%s', '%s', '%s')"
         % (path, fmt, json.dumps(options)))
    seen = wait_for(lambda: psql("SELECT count(*) FROM smartetl.source_file f JOIN smartetl.source s "
                                 "USING (source_id) WHERE s.path = '%s'" % path) != "0", timeout=10)
    if not seen:
        raise RuntimeError("the worker did not pick up %s within 10 s" % path)


def crash_and_restart():
    n = pgcluster.kill9()
    pgcluster.start()
    return n


def main():
    d = tempfile.mkdtemp(prefix="smartetl-follow.")
    os.chmod(d, 0o755)
    psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl")
    psql("DELETE FROM smartetl.source; DELETE FROM smartetl.pipeline WHERE namespace = 'follow_test'")
    psql("""DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'follow_admin') THEN
              CREATE ROLE follow_admin NOLOGIN; END IF;
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'follow_files') THEN
              CREATE ROLE follow_files NOLOGIN; END IF; END $$;
            GRANT smartetl_admin TO follow_admin, follow_files; GRANT pg_read_server_files TO follow_files;""")

    # registration rights and checks
    out = psql("SET ROLE follow_admin; INSERT INTO smartetl.source (path, format) VALUES ('/etc/passwd', 'csv')",
               check=False)
    ok(out.returncode != 0 and "permission denied to follow a server-side file" in out.stderr,
       "an admin without pg_read_server_files cannot register a file", out.stderr)
    out = psql("SET ROLE follow_files; INSERT INTO smartetl.source (path, format, options) "
               "VALUES ('%s/x.log', 'logline', '{}')" % d, check=False)
    ok(out.returncode != 0 and "log_format" in out.stderr, "options are checked at INSERT", out.stderr)
    out = psql("SET ROLE follow_files; INSERT INTO smartetl.source (path, format, options, owner) "
               "VALUES ('%s/none.csv', 'csv', '{\"delimter\": \";\"}', 'postgres')" % d, check=False)
    ok(out.returncode != 0 and "unknown option" in out.stderr, "a misspelt option is refused", out.stderr)

    # a growing CSV export, registered by a role with pg_read_server_files
    csv = os.path.join(d, "runs.csv")
    with open(csv, "w") as f:
        f.write("job,run_id,status\nnightly,1,ok\n")
    psql("SET ROLE follow_files; INSERT INTO smartetl.source (path, format, options) "
         "VALUES ('%s', 'csv', '{\"namespace\": \"follow_test\"}')" % csv)
    owner = psql("SELECT owner FROM smartetl.source WHERE path = '%s'" % csv)
    ok(owner == "follow_files", "the owner is the registering role", owner)

    def runs():
        return psql("SELECT string_agg(p.name || '/' || r.external_id || '/' || r.status, ' ' ORDER BY 1) "
                    "FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) "
                    "WHERE p.namespace = 'follow_test'")
    ok(wait_for(lambda: runs() == "nightly/1/success", timeout=5), "the existing rows are stored", runs())
    t0 = time.time()
    with open(csv, "a") as f:
        f.write("nightly,2,failed\nnightly,3,o")
    got = wait_for(lambda: runs() == "nightly/1/success nightly/2/failed", timeout=5, step=0.05)
    ok(got and time.time() - t0 < 1.5, "an appended row is stored within %.2f s (the header is sent again)"
       % (time.time() - t0), runs())
    time.sleep(1)       # a negative check: the unfinished row must not come within a second
    ok(runs() == "nightly/1/success nightly/2/failed", "an unfinished last row is held back", runs())
    with open(csv, "a") as f:
        f.write("k\n")
    ok(wait_for(lambda: "nightly/3/success" in runs(), timeout=5), "and stored once complete", runs())
    state = psql("SELECT f.position, f.line_no, f.last_error IS NULL FROM smartetl.source_file f "
                 "JOIN smartetl.source s USING (source_id) WHERE s.path = '%s'" % csv)
    ok(state == "%d|4|t" % os.path.getsize(csv), "position and line_no are kept in smartetl.source_file", state)

    tail = os.path.join(d, "old.log")
    with open(tail, "w") as f:
        f.write("2026-01-01 09:00:00 INFO old: before registration\n")
    register(tail, "logline", {"log_format": FMT, "namespace": "follow_test", "pipeline": "old", "start": "end"})
    with open(tail, "a") as f:
        f.write("2026-01-01 09:00:01 INFO old: after registration\n")
    msgs = wait_for(lambda: psql("SELECT string_agg(message || '@' || line_no, ',') FROM smartetl.log_event e "
                                 "JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.name = 'old'"), timeout=5)
    ok(msgs == "after registration@2", "\"start\": \"end\" skips the existing lines (line numbers stay the file's)",
       msgs)

    # a log written by another process while it rotates
    log = os.path.join(d, "app.log")
    open(log, "w").close()
    register(log, "logline", {"log_format": FMT, "namespace": "follow_test", "pipeline": "app"})
    lines = 20000
    w = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "log_writer.py"), "--path", log,
                        "--lines", str(lines), "--rate", "2000", "--rotate-every", "2000", "--mode", "alternate"],
                       capture_output=True, text=True)
    ok(w.stdout.strip() == "done %d" % lines, "the writer wrote %d lines with 9 rotations" % lines, w.stderr)
    wait_for(lambda: n_events("app") >= lines, timeout=30)
    time.sleep(6)       # rotated files are finished after 5 quiet seconds: nothing more may come
    total, distinct, missing, extra = check_lines("app", 1, lines)
    ok(total == lines and distinct == lines and missing == 0 and extra == 0,
       "rotation by rename and copytruncate: exactly the %d lines, each once and whole "
       "(%d stored, %d distinct, %d missing, %d unexpected)" % (lines, total, distinct, missing, extra))
    files = psql("SELECT count(*), count(*) FILTER (WHERE f.done), count(*) FILTER (WHERE f.last_error IS NOT NULL "
                 "AND f.last_error NOT LIKE 'truncated%') FROM smartetl.source_file f "
                 "JOIN smartetl.source s USING (source_id) WHERE s.path = '" + log + "'")
    ok(files.split("|")[2] == "0", "no errors on the followed files (files, finished, errors: %s)" % files)

    # kill -9 of the server while a log is written; a rename rotation during the downtime
    log2 = os.path.join(d, "crash.log")
    open(log2, "w").close()
    register(log2, "logline", {"log_format": FMT, "namespace": "follow_test", "pipeline": "crash"})
    lines = 6000
    w = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "log_writer.py"), "--path", log2,
                          "--lines", str(lines), "--rate", "1000", "--rotate-every", "3500", "--mode", "rename"],
                         stdout=subprocess.PIPE, text=True)
    # kill at about 2,000 of the 6,000 lines: the rotation at 3,500 falls in or near the downtime
    before = wait_for(lambda: n_events("crash") >= 2000, timeout=15) and n_events("crash")
    crash_and_restart()
    out = w.communicate()[0]
    wait_for(lambda: n_events("crash") >= lines, timeout=30)
    time.sleep(6)       # as above: nothing more may come once the rotated file is finished
    total, distinct, missing, extra = check_lines("crash", 1, lines)
    ok(out.strip() == "done %d" % lines and before > 0 and total == lines and distinct == lines and missing == 0,
       "kill -9 after %d lines, a rotation while down, restart: exactly the %d lines, each once "
       "(%d stored, %d distinct, %d missing, %d unexpected)" % (before, lines, total, distinct, missing, extra))

    psql("DELETE FROM smartetl.source")
    print("1..%d" % n_tests)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
