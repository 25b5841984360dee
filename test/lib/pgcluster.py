"""kill -9 and restart of a test cluster started by scripts/lib.sh, shared by the
end-to-end tests (alerting, intake) that check what survives a crash.

The cluster's folder is $SMARTETL_CLUSTER_DIR, its port $PGPORT.  Waits are
polled and bounded, never plain sleeps.
"""
import os
import signal
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _wait_for(fn, timeout, step=0.05):
    end = time.time() + timeout
    while not fn():
        if time.time() > end:
            return False
        time.sleep(step)
    return True


def _alive(pid):
    # a zombie has exited; its parent (the dead postmaster) will never reap it
    try:
        with open("/proc/%d/status" % pid) as f:
            return "zombie" not in f.read().lower()
    except OSError:
        return False


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def kill9():
    """kill -9 the postmaster and every child, and wait until all are gone;
    returns how many children there were."""
    cdir = os.environ["SMARTETL_CLUSTER_DIR"]
    pm = int(open(os.path.join(cdir, "data", "postmaster.pid")).readline())
    children = _children(pm)
    for p in [pm] + children:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    if not _wait_for(lambda: not any(_alive(p) for p in [pm] + children), timeout=30):
        raise RuntimeError("the killed server's processes are still there after 30 s")
    return len(children)


def start():
    """Start the cluster again; the old shared memory may look in use for a
    moment after kill -9, so try again, boundedly."""
    cdir = os.environ["SMARTETL_CLUSTER_DIR"]
    err = ""
    for _ in range(20):
        r = subprocess.run(["bash", "-c", "source scripts/lib.sh && cluster_start '%s' '%s' >/dev/null"
                            % (cdir, os.environ["PGPORT"])], cwd=ROOT, capture_output=True, text=True)
        if r.returncode == 0:
            return
        err = r.stderr
        time.sleep(0.5)
    raise RuntimeError("the cluster did not start again after kill -9: " + err[-1000:])
