#!/usr/bin/python3
"""Real SMTP receiver for smartetl's e-mail alerting tests (Debian python3-aiosmtpd).

Stores every accepted message as one JSON line in --log:
  {"seq", "time", "peer", "mail_from", "rcpt_tos", "subject", "headers",
   "text", "html", "raw", "tls", "auth_user"}

  --starttls            offer STARTTLS with a self-signed cert made by `openssl req`
                        at start-up (required before MAIL unless --no-require-tls)
  --tls                 implicit TLS (smtps://) with the same kind of cert
  --cert-dir DIR        write cert.pem/key.pem there (kept) instead of a temp dir,
                        so clients can verify with --cacert DIR/cert.pem
  --user U --password P AUTH PLAIN/LOGIN with this one account; then required for MAIL
                        (--auth-optional to relax).  Over TLS sessions only, unless the
                        server has no TLS at all (plain port: auth allowed in clear)
  --reject-rcpt REGEX   answer 550 to RCPT TO addresses matching REGEX

Prints "ready" once listening; exits 0 on SIGTERM/SIGINT.
"""

import os
import sys

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's python3-aiosmtpd lives in /usr/lib/python3/dist-packages, which a
    # pyenv/venv python3 earlier on PATH does not see: re-run with Debian's python.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.stderr.write("smtp_sink: python module aiosmtpd missing: apt-get install -y python3-aiosmtpd\n")
    sys.exit(2)

import argparse
import asyncio
import email
import email.policy
import json
import logging
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
         "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def part_text(msg, subtype):
    """Content of the first text/<subtype> body part (not an attachment), or None.
    Line endings are normalised to \n (the "raw" field keeps the wire bytes)."""
    t = _part_text(msg, subtype)
    return t.replace("\r\n", "\n") if t is not None else None


def _part_text(msg, subtype):
    try:
        if msg.is_multipart():
            part = msg.get_body(preferencelist=(subtype,))
        else:
            part = msg if msg.get_content_type() == "text/" + subtype else None
        return part.get_content() if part is not None else None
    except Exception:  # malformed MIME: fall back to the raw payload
        try:
            for part in msg.walk():
                if part.get_content_type() == "text/" + subtype:
                    return part.get_payload(decode=True).decode("utf-8", "replace")
        except Exception:
            pass
        return None


class Sink:
    def __init__(self, log_path, reject_rcpt=None):
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        self.log = open(log_path, "a", encoding="utf-8")
        self.seq = 0
        self.lock = threading.Lock()
        self.reject = re.compile(reject_rcpt) if reject_rcpt else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            return "550 5.1.1 <%s>: recipient rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw_bytes = envelope.original_content or envelope.content
        if isinstance(raw_bytes, str):
            raw_bytes = raw_bytes.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw_bytes, policy=email.policy.default)
        headers = {}
        for k, v in msg.items():
            v = str(v)
            if k in headers:
                headers[k] = (headers[k] if isinstance(headers[k], list) else [headers[k]]) + [v]
            else:
                headers[k] = v
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        rec = {
            "seq": 0,
            "time": time.time(),
            "peer": list(session.peer[:2]) if session.peer else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg["Subject"]) if msg["Subject"] is not None else None,
            "headers": headers,
            "text": part_text(msg, "plain"),
            "html": part_text(msg, "html"),
            "raw": raw_bytes.decode("utf-8", "replace"),
            "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            "auth_user": auth_user,
        }
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.log.flush()
        return "250 2.0.0 Message accepted for delivery (seq %d)" % rec["seq"]


def authenticator_for(user, password):
    def auth(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return auth


async def serve(a):
    tmp = None
    tls_ctx = None
    if a.starttls or a.tls:
        d = a.cert_dir
        if d:
            os.makedirs(d, exist_ok=True)
        else:
            d = tmp = tempfile.mkdtemp(prefix="smtp_sink_tls.")
        cert, key = make_cert(d)
        tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ctx.load_cert_chain(cert, key)

    sink = Sink(a.log, a.reject_rcpt)
    kw = dict(data_size_limit=a.max_size, enable_SMTPUTF8=True, decode_data=False,
              hostname="smtp-sink.localhost", ident="smartetl smtp_sink", timeout=60)
    if a.starttls:
        kw["tls_context"] = tls_ctx
        kw["require_starttls"] = not a.no_require_tls
    if a.user is not None:
        kw["authenticator"] = authenticator_for(a.user, a.password or "")
        kw["auth_required"] = not a.auth_optional
        # Auth only inside TLS when the server offers TLS; a plain port allows it in clear.
        kw["auth_require_tls"] = bool(a.starttls) and not a.no_require_tls

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, **kw), host=a.host, port=a.port,
        ssl=tls_ctx if a.tls else None, reuse_address=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 2)
        except asyncio.TimeoutError:
            pass
        sink.log.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", required=True, help="JSON-lines file of received messages (appended)")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--tls", action="store_true", help="implicit TLS (smtps)")
    ap.add_argument("--no-require-tls", action="store_true",
                    help="with --starttls: allow MAIL and AUTH without STARTTLS")
    ap.add_argument("--cert-dir")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth-optional", action="store_true")
    ap.add_argument("--reject-rcpt")
    ap.add_argument("--max-size", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--verbose", action="store_true", help="aiosmtpd session log on stderr")
    a = ap.parse_args()
    # aiosmtpd warns when AUTH is allowed without STARTTLS (plain port, or implicit TLS)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR,
                        format="smtp_sink: %(levelname)s %(message)s")
    if a.starttls and a.tls:
        ap.error("--starttls and --tls are exclusive")
    if a.user is not None and a.password is None:
        ap.error("--user needs --password")
    asyncio.run(serve(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
