#!/usr/bin/env python3
"""Real HTTP/1.1 receiver for smartetl's webhook alerting tests.

Records every request it receives as one JSON line in --log and answers
according to per-path-prefix rules that tests change at run time:

    POST /_control   {"path": "/teams", "mode": "status", "status": 500, "times": 2}
    GET  /_control   current rules (JSON)
    GET  /_requests  recorded requests (JSON array); ?path=/teams filters by prefix,
                     ?since=SEQ keeps only seq > SEQ
    POST /_reset     forget recorded requests and rules, truncate the log, seq from 1

Modes: ok, status, hang, close, reset, retry_after (see README.md).
Standard library only.  Prints "ready" once listening; exits 0 on SIGTERM/SIGINT.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "status", "hang", "close", "reset", "retry_after")
CONTROL_PATHS = ("/_control", "/_requests", "/_reset", "/_health")


class State:
    """Shared, lock-protected state: rules, recorded requests, the log file."""

    def __init__(self, log_path):
        self.lock = threading.Lock()
        self.log_path = log_path
        self.rules = {}          # prefix -> rule dict
        self.records = []
        self.seq = 0
        self.stopping = threading.Event()
        d = os.path.dirname(os.path.abspath(log_path))
        os.makedirs(d, exist_ok=True)
        self.log = open(log_path, "a", encoding="utf-8")

    def take_rule(self, path):
        """Longest matching prefix rule; consumes one use of a 'times' rule."""
        with self.lock:
            best = None
            for prefix in self.rules:
                if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                    best = prefix
            if best is None:
                return {"mode": "ok"}
            rule = dict(self.rules[best])
            if rule.get("times") is not None:
                self.rules[best]["times"] -= 1
                if self.rules[best]["times"] <= 0:
                    del self.rules[best]
            return rule

    def record(self, rec):
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            self.records.append(rec)
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.log.flush()
            return self.seq

    def reset(self):
        with self.lock:
            self.rules.clear()
            self.records.clear()
            self.seq = 0
            self.log.seek(0)
            self.log.truncate()
            self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smartetl-http-sink/1.0"
    state = None      # set in main()
    verbose = False
    hang_max = 600.0

    # ---- plumbing -------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("http_sink: %s - %s\n" % (self.address_string(), fmt % args))

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after each chunk
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""))
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    # ---- dispatch -------------------------------------------------------
    def handle_any(self):
        body = self.read_body()
        path = urlsplit(self.path).path
        if path in CONTROL_PATHS:
            return self.control(path, body)
        return self.sink(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    # ---- control API (never recorded) -----------------------------------
    def control(self, path, body):
        st = self.state
        parts = urlsplit(self.path)
        if path == "/_health":
            return self.send(200, {"ok": True})
        if path == "/_reset":
            if self.command != "POST":
                return self.send(405, {"error": "POST /_reset"})
            st.reset()
            return self.send(200, {"ok": True})
        if path == "/_requests":
            q = parse_qs(parts.query)
            prefix = q.get("path", [""])[0]
            since = int(q.get("since", ["0"])[0] or 0)
            with st.lock:
                out = [r for r in st.records if r["path"].startswith(prefix) and r["seq"] > since]
            return self.send(200, out)
        # /_control
        if self.command == "GET":
            with st.lock:
                rules = dict(st.rules)
            return self.send(200, rules)
        if self.command != "POST":
            return self.send(405, {"error": "GET or POST /_control"})
        try:
            req = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
            prefix = req.get("path", "/")
            mode = req.get("mode", "ok")
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ValueError("path must be a string starting with /")
            if mode not in MODES:
                raise ValueError("mode must be one of " + ", ".join(MODES))
            rule = {"mode": mode}
            if mode == "status":
                rule["status"] = int(req.get("status", 500))
                if not 100 <= rule["status"] <= 599:
                    raise ValueError("status must be 100..599")
            if mode == "retry_after":
                rule["status"] = int(req.get("status", 429))
                rule["retry_after"] = req.get("retry_after", 1)
            if mode == "hang":
                rule["seconds"] = float(req.get("seconds", self.hang_max))
            if req.get("delay") is not None:
                rule["delay"] = float(req["delay"])
            if req.get("body") is not None:
                rule["body"] = req["body"]
            if req.get("headers") is not None:
                if not isinstance(req["headers"], dict):
                    raise ValueError("headers must be an object")
                rule["headers"] = {str(k): str(v) for k, v in req["headers"].items()}
            if req.get("times") is not None:
                rule["times"] = int(req["times"])
                if rule["times"] <= 0:
                    raise ValueError("times must be > 0")
        except (ValueError, TypeError) as e:
            return self.send(400, {"error": str(e)})
        with st.lock:
            if mode == "ok" and not {"times", "delay", "body", "headers"} & set(rule):
                st.rules.pop(prefix, None)      # plain ok == back to default
            else:
                st.rules[prefix] = rule
            rules = dict(st.rules)
        return self.send(200, {"ok": True, "rules": rules})

    # ---- recorded requests ----------------------------------------------
    def sink(self, body):
        st = self.state
        path = urlsplit(self.path).path
        rule = st.take_rule(path)
        mode = rule["mode"]
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        headers = {}
        for k, v in self.headers.items():
            headers[k] = headers[k] + ", " + v if k in headers else v
        if mode in ("hang", "close", "reset"):
            answered = mode
        elif mode == "ok":
            answered = 200
        else:
            answered = rule["status"]
        rec = {
            "seq": 0,
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "body": text,
            "json": parsed,
            "answered": answered,
        }
        seq = st.record(rec)

        if rule.get("delay"):
            st.stopping.wait(rule["delay"])

        if mode == "hang":
            self.hang(rule.get("seconds", self.hang_max))
            self.close_connection = True
            return
        if mode == "close":
            self.close_connection = True
            return
        if mode == "reset":
            # abortive close: RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.abort.add(self.connection)
            self.close_connection = True
            return

        slack = path.startswith("/slack")
        if mode == "ok":
            if "body" in rule:
                return self.send(200, rule["body"], "text/plain" if isinstance(rule["body"], str) else "application/json")
            if slack:
                return self.send(200, "ok", "text/plain")
            return self.send(200, {"ok": True, "seq": seq})
        status = rule["status"]
        extra = dict(rule.get("headers") or {})
        if mode == "retry_after":
            extra["Retry-After"] = rule["retry_after"]
        if "body" in rule:
            b = rule["body"]
            return self.send(status, b, "text/plain" if isinstance(b, str) else "application/json", extra)
        if slack:
            return self.send(status, "rate_limited" if status == 429 else "server_error", "text/plain", extra)
        return self.send(status, {"ok": False, "status": status, "seq": seq}, "application/json", extra)

    def hang(self, seconds):
        """Keep the connection open without answering until `seconds` pass,
        the client goes away, or the server stops."""
        deadline = time.monotonic() + min(seconds, self.hang_max)
        sock = self.connection
        while not self.state.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([sock], [], [], min(left, 0.5))
            if r:
                try:
                    if not sock.recv(4096, socket.MSG_PEEK):
                        return  # client closed
                    sock.recv(4096)  # discard anything else the client sends
                except OSError:
                    return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, *a, **kw):
        self.abort = set()  # sockets to close with RST (mode reset)
        super().__init__(*a, **kw)

    def shutdown_request(self, request):
        if request in self.abort:
            self.abort.discard(request)
            self.close_request(request)  # no shutdown(SHUT_WR): SO_LINGER 0 sends RST
            return
        super().shutdown_request(request)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", required=True, help="JSON-lines file of recorded requests (appended)")
    ap.add_argument("--hang-max", type=float, default=600.0, help="longest a hang lasts (s)")
    ap.add_argument("--verbose", action="store_true", help="access log on stderr")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM; with --tls-key)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    a = ap.parse_args()

    state = State(a.log)
    Handler.state = state
    Handler.verbose = a.verbose
    Handler.hang_max = a.hang_max
    srv = Server((a.host, a.port), Handler)
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        # the handshake happens in the connection's thread, on its first read:
        # a client that rejects the certificate fails that thread alone
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)

    def stop(signum, frame):
        state.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    finally:
        state.stopping.set()
        srv.server_close()
        state.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
