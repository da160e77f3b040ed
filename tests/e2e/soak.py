#!/usr/bin/python3
"""soak.py - a long mixed-load run against the real build/ebb (`make soak`, issue 13 item 5).

    /usr/bin/python3 tests/e2e/soak.py --ebb build/ebb --seconds 600 --out build/soak

Two ebb processes run in front of tests/e2e/backend.py:
  A  the long-lived ebb: every load kind below runs through it for the whole run; its RSS and
     open fds are sampled every --sample-every seconds (10).
  B  a "pod" that is drained and restarted every --drain-every seconds (60): a new B starts on
     fresh ports, the load switches to it (the endpoint update), and the old one gets SIGTERM
     in exit-on-zero mode (SPEC §3.4) while the connections it holds finish.  Its exit summary
     line is collected; every drain must show forced=0.
Load kinds (each a thread; every loop is bounded in count and time):
  h1-keepalive   GETs on keep-alive connections (A, B), bodies checked byte for byte
  h1-pipelined   8 requests written at once, 8 responses read (A)
  h1-chunked-up  chunked POST /sha256 uploads, digest checked (A, B)
  h2c            h2load runs (A) and an HTTP/2 client with GOAWAY handling (B)
  tcp            TCP relay to the echo server, bytes checked (A, B)
  websocket      upgrade + masked frames echoed, close handshake (A, B)
  client-abort   requests cut mid-request body / mid-response (FIN or RST), h2 RST_STREAM (A)
  slowloris      a head trickled a header line at a time until request_headers_timeout (A)
  upstream-fault the origin resets before/after the head, closes, or stalls past the
                 cluster's request_timeout (A): 502, a cut body, 504 expected
Each operation ends as ok, an expected failure (a deliberate abort, reset, stall; named by
reason) or an unexpected failure (anything else).  The run fails (exit 1) if: any unexpected
failure, any drain with forced>0 (or without an exit summary, or rc!=0), A's RSS grew more
than --rss-limit-kib after the warm-up (--warmup, 60 s), A's fds did not return to the
pre-load count once the load stopped, A crashed or reported a sanitizer error, or a load kind
never succeeded.  Writes soak.md (tables), soak.svg (RSS and fds over time), soak.json.
"""

import argparse
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import lib  # noqa: E402
from lib import (PATTERN, Client, Incomplete, build_request, ws_handshake, ws_recv,  # noqa: E402
                 ws_send)

IO_TIMEOUT = 30.0            # any single socket wait; generous for a busy machine
MAX_OPS = 10 ** 7            # per load thread: the count bound next to the time bound
HEADERS_TIMEOUT_S = 2        # limits.request_headers_timeout of A: what cuts a slowloris
STALL_TIMEOUT_MS = 500       # request_timeout of the "slow" cluster: what cuts a stall
EOZ_ENV = "EXIT_ON_ZERO_ACTIVE_CONNECTIONS"

EXIT_LINE = re.compile(r"exit: reason=\"([^\"]*)\".*?drain_ms=(\d+) connections_at_drain_start=(\d+)"
                       r" closed_gracefully=(\d+) forced=(\d+) requests_completed_during_drain=(\d+)")


class Failure(Exception):
    """An operation went wrong in a way no deliberate fault explains."""


# -- counting ------------------------------------------------------------------------------

class Tally:
    """ok / expected[reason] / unexpected[reason] per load kind, plus a few unexpected details."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = {}
        self.details = []

    def _k(self, kind):
        return self.kinds.setdefault(kind, {"ok": 0, "expected": {}, "unexpected": {}})

    def ok(self, kind, n=1):
        with self.lock:
            self._k(kind)["ok"] += n

    def expected(self, kind, reason, n=1):
        with self.lock:
            e = self._k(kind)["expected"]
            e[reason] = e.get(reason, 0) + n

    def unexpected(self, kind, reason, detail=""):
        with self.lock:
            u = self._k(kind)["unexpected"]
            u[reason] = u.get(reason, 0) + 1
            if u[reason] <= 5:             # the first few of each kind and reason
                self.details.append("%.1fs %s: %s: %s" % (time.monotonic() - T0[0], kind,
                                                          reason, detail[:300]))

    def __deepcopy__(self, memo):
        t = Tally()
        with self.lock:
            t.kinds = json.loads(json.dumps(self.kinds))
            t.details = list(self.details)
        return t

    def totals(self):
        with self.lock:
            ok = sum(k["ok"] for k in self.kinds.values())
            exp = sum(sum(k["expected"].values()) for k in self.kinds.values())
            unexp = sum(sum(k["unexpected"].values()) for k in self.kinds.values())
            return ok, exp, unexp


T0 = [time.monotonic()]


# -- the two ebbs --------------------------------------------------------------------------

class Pod:
    """One ebb process; .draining is set just before it gets SIGTERM."""

    def __init__(self, ebb, index):
        self.ebb = ebb
        self.index = index
        self.draining = False

    def port(self, listener):
        return self.ebb.port(listener)


class Slot:
    """Where new connections of a target go: A's one pod, or the current B."""

    def __init__(self, name, pod):
        self.name = name
        self._pod = pod
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            return self._pod

    def swap(self, pod):
        with self._lock:
            old, self._pod = self._pod, pod
            return old


def ebb_config(env, be, limits=None, drain=None):
    cfg = env.config(be, clusters={"app": {"pool": {"max_idle": 16, "idle_timeout": "2s"}},
                                   "slow": {"request_timeout": "%dms" % STALL_TIMEOUT_MS,
                                            "pool": {"max_idle": 16, "idle_timeout": "2s"}}},
                     limits=limits, drain=drain)
    # The access log is formatted and written (the code path a leak could hide in) but not
    # kept: a 10-minute run would write hundreds of MB.
    cfg["access_log"] = "/dev/null"
    return cfg


# -- load operations -----------------------------------------------------------------------
# Each op(s, slot, rng) does one bounded unit of work and records its outcome in s.tally;
# an exception escaping it is counted as unexpected by the loop.

def _body_for(path):
    m = re.match(r"/size\?n=(\d+)$", path) or re.match(r"/chunked\?n=(\d+)&", path)
    if m:
        n = int(m.group(1))
        return PATTERN[:n]
    return b"hello\n"


def _get_paths(rng):
    k = rng.random()
    if k < 0.5:
        return "/hello"
    if k < 0.8:
        return "/size?n=%d" % rng.randint(0, 65536)
    if k < 0.85:
        return "/chunked?n=%d&chunk=1" % rng.randint(1, 2000)
    return "/chunked?n=%d&chunk=%d" % (rng.randint(1, 200000), rng.choice((100, 4096, 16384)))


def _is_close(r):
    return "close" in [t.strip().lower() for t in (r.header("connection") or "").split(",")]


def _retry_get(s, kind, slot, path, why):
    """A request lost to a drain race on a reused connection, resent on a new one (as an
    HTTP client retries an idempotent request whose reused connection closed before any
    response byte, RFC 9112 §9.3.1); the retry itself must succeed."""
    s.tally.expected(kind, why)
    pod = slot.get()
    with Client(pod.port("inbound"), timeout=IO_TIMEOUT) as c:
        c.request("GET", path)
        r = c.response()
    if r.status != 200 or r.body != _body_for(path):
        raise Failure("retry of %s: status %d, %d body bytes" % (path, r.status, len(r.body)))
    s.tally.ok(kind)


def op_keepalive(s, slot, rng, kind="h1-keepalive"):
    pod = slot.get()
    c = Client(pod.port("inbound"), timeout=IO_TIMEOUT)
    try:
        for i in range(rng.randint(5, 40)):
            if s.stop.is_set():
                return
            path = _get_paths(rng)
            try:
                c.request("GET", path)
                r = c.response()
            except (Incomplete, OSError) as ex:
                partial = getattr(ex, "partial", b"")
                if i > 0 and pod.draining and not partial:
                    _retry_get(s, kind, slot, path, "drain: reused connection closed before "
                                                    "the response (retried)")
                    return
                raise Failure("%s on request %d of a connection to %s: %r"
                              % (path, i + 1, "draining B" if pod.draining else slot.name, ex))
            want = _body_for(path)
            if r.status != 200 or r.body != want:
                raise Failure("%s: status %d, %d body bytes (want 200, %d)"
                              % (path, r.status, len(r.body), len(want)))
            s.tally.ok(kind)
            if _is_close(r):
                if not pod.draining:
                    raise Failure("Connection: close from an ebb that is not draining")
                s.drain_closes[0] += 1
                return
    finally:
        c.close()


def op_pipelined(s, slot, rng, kind="h1-pipelined"):
    pod = slot.get()
    paths = [_get_paths(rng) for _ in range(8)]
    with Client(pod.port("inbound"), timeout=IO_TIMEOUT) as c:
        c.send(b"".join(build_request("GET", p) for p in paths))
        for i, p in enumerate(paths):
            r = c.response()
            want = _body_for(p)
            if r.status != 200 or r.body != want:
                raise Failure("pipelined %d/8 %s: status %d, %d body bytes"
                              % (i + 1, p, r.status, len(r.body)))
            s.tally.ok(kind)


def _chunked_upload(c, body, rng):
    c.send(b"POST /sha256 HTTP/1.1\r\nHost: app.local\r\nTransfer-Encoding: chunked\r\n\r\n")
    mv = memoryview(body)
    out = bytearray()
    while len(mv):
        n = min(len(mv), rng.choice((1, 7, 512, 4096, 16384, 65536)))
        out += b"%x\r\n" % n + bytes(mv[:n]) + b"\r\n"
        mv = mv[n:]
        if len(out) > 65536:
            c.send(bytes(out))
            out.clear()
    c.send(bytes(out) + b"0\r\n\r\n")


def op_chunked_upload(s, slot, rng, kind="h1-chunked-up"):
    pod = slot.get()
    with Client(pod.port("inbound"), timeout=IO_TIMEOUT) as c:
        for i in range(rng.randint(1, 5)):
            if s.stop.is_set():
                return
            body = rng.randbytes(rng.randint(0, 300000))
            try:
                _chunked_upload(c, body, rng)
                r = c.response()
            except (Incomplete, OSError) as ex:
                if i > 0 and pod.draining and not getattr(ex, "partial", b""):
                    s.tally.expected(kind, "drain: reused connection closed before the "
                                           "response (retried)")
                    with Client(slot.get().port("inbound"), timeout=IO_TIMEOUT) as c2:
                        _chunked_upload(c2, body, rng)
                        r = c2.response()
                    _check_digest(r, body)
                    s.tally.ok(kind)
                    return
                raise Failure("upload %d of a connection: %r" % (i + 1, ex))
            _check_digest(r, body)
            s.tally.ok(kind)
            if _is_close(r):
                if not pod.draining:
                    raise Failure("Connection: close from an ebb that is not draining")
                return


def _check_digest(r, body):
    if r.status != 200:
        raise Failure("upload of %d bytes: status %d" % (len(body), r.status))
    doc = json.loads(r.body)
    if doc.get("sha256") != hashlib.sha256(body).hexdigest() or doc.get("bytes") != len(body):
        raise Failure("upload of %d bytes: origin saw %r" % (len(body), doc))


H2LOAD_RX = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def op_h2load(s, slot, rng, kind="h2c"):
    """A bounded h2load run (h2c prior knowledge) against A; every request must be a 2xx."""
    pod = slot.get()
    n = rng.choice((100, 200, 400))
    argv = ["h2load", "-n", str(n), "-c", "2", "-m", "8", "-t", "1", "-T", "30", "-N", "30"]
    if rng.random() < 0.3:
        argv += ["-d", s.upload_file]
        path = "/sha256"
    else:
        path = rng.choice(("/hello", "/size?n=20000", "/chunked?n=70000&chunk=4096"))
    argv.append("http://127.0.0.1:%d%s" % (pod.port("inbound"), path))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    m = H2LOAD_RX.search(out)
    st = H2LOAD_STATUS.search(out)
    if not m or not st:
        raise Failure("h2load output not understood (rc=%d): %s" % (p.returncode, out[-300:]))
    total, succeeded = int(m.group(1)), int(m.group(4))
    twoxx = int(st.group(1))
    if succeeded != total or twoxx != total:
        raise Failure("h2load %s: %d of %d succeeded, %d 2xx: %s"
                      % (path, succeeded, total, twoxx, m.group(0)))
    s.tally.ok(kind, total)


def op_h2_client(s, slot, rng, kind="h2c"):
    """HTTP/2 batches on one connection (B).  A drain's GOAWAY ends the connection: streams at
    or below its last stream id must complete; streams above it were never processed and are
    resent on a new connection (RFC 9113 §6.8), counted as expected."""
    import h2lib
    pod = slot.get()
    c = h2lib.H2Raw(pod.port("inbound"), timeout=IO_TIMEOUT)
    try:
        for _ in range(rng.randint(1, 10)):
            if s.stop.is_set():
                return
            # frames that arrived while idle (a drain's GOAWAY) are read before a new batch
            while not c.goaways and select.select([c.sock], [], [], 0)[0]:
                try:
                    c.read_frame(IO_TIMEOUT)
                except EOFError:
                    break
            if c.goaways or c.eof:
                return
            want = {}
            for _ in range(rng.randint(1, 6)):
                if rng.random() < 0.25:
                    body = rng.randbytes(rng.randint(0, 40000))
                    sid = c.request("/sha256", method="POST", body=None, end=False)
                    c.send_data_fc(sid, body, timeout=IO_TIMEOUT)
                    want[sid] = ("/sha256", body)
                else:
                    path = rng.choice(("/hello", "/size?n=%d" % rng.randint(0, 50000)))
                    sid = c.request(path)
                    want[sid] = (path, None)

            def done(cc):
                last = min([g[0] for g in cc.goaways], default=1 << 31)
                return all(sid > last or cc.streams[sid].ended or
                           cc.streams[sid].reset is not None for sid in want)
            c.wait(done, timeout=IO_TIMEOUT)
            last = min([g[0] for g in c.goaways], default=1 << 31)
            for sid, (path, body) in sorted(want.items()):
                st = c.streams[sid]
                if sid > last and not st.ended:
                    if not pod.draining:
                        raise Failure("GOAWAY (last %d) from an ebb that is not draining" % last)
                    s.tally.expected(kind, "drain: stream above GOAWAY's last stream id "
                                           "(resent)")
                    _h2_one(slot, path, body)
                    s.tally.ok(kind)
                    continue
                if not st.ended or st.reset is not None:
                    raise Failure("stream %d %s: ended=%s reset=%s (GOAWAYs %s, eof=%s)"
                                  % (sid, path, st.ended, st.reset, c.goaways, c.eof))
                _h2_check(st, path, body)
                s.tally.ok(kind)
    finally:
        c.close()


def _h2_check(st, path, body):
    if st.status != 200:
        raise Failure("h2 %s: status %s" % (path, st.status))
    if body is not None:
        doc = json.loads(bytes(st.body))
        if doc.get("sha256") != hashlib.sha256(body).hexdigest():
            raise Failure("h2 upload of %d bytes: origin saw %r" % (len(body), doc))
    elif bytes(st.body) != _body_for(path):
        raise Failure("h2 %s: %d body bytes" % (path, len(st.body)))


def _h2_one(slot, path, body):
    import h2lib
    c = h2lib.H2Raw(slot.get().port("inbound"), timeout=IO_TIMEOUT)
    try:
        if body is None:
            sid = c.request(path)
        else:
            sid = c.request(path, method="POST", end=False)
            c.send_data_fc(sid, body, timeout=IO_TIMEOUT)
        st = c.wait_stream(sid, timeout=IO_TIMEOUT)
        if not st.ended or st.reset is not None:
            raise Failure("resent h2 stream %s: ended=%s reset=%s" % (path, st.ended, st.reset))
        _h2_check(st, path, body)
    finally:
        c.close()


def _recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        d = sock.recv(min(1 << 20, n - len(out)))
        if not d:
            raise Failure("TCP relay: EOF after %d of %d echoed bytes" % (len(out), n))
        out += d
    return bytes(out)


def op_tcp(s, slot, rng, kind="tcp"):
    pod = slot.get()
    sock = socket.create_connection(("127.0.0.1", pod.port("tcp")), timeout=IO_TIMEOUT)
    try:
        for _ in range(rng.randint(1, 20)):
            data = rng.randbytes(rng.randint(1, 64 * 1024))
            sock.sendall(data)
            if _recv_exact(sock, len(data)) != data:
                raise Failure("TCP relay: echoed bytes differ")
        sock.shutdown(socket.SHUT_WR)
        if sock.recv(1):
            raise Failure("TCP relay: bytes after the echo")
        s.tally.ok(kind)
    finally:
        sock.close()


def op_ws(s, slot, rng, kind="websocket"):
    pod = slot.get()
    with Client(pod.port("inbound"), timeout=IO_TIMEOUT) as c:
        ws_handshake(c)
        for _ in range(rng.randint(1, 20)):
            op = rng.choice((1, 2, 9))
            payload = (rng.randbytes(rng.randint(0, 70000)) if op == 2 else
                       b"ping" if op == 9 else
                       ("x" * rng.randint(0, 3000)).encode())
            ws_send(c, op, payload)
            got_op, got = ws_recv(c)
            want_op = 0xA if op == 9 else op
            if got_op != want_op or got != payload:
                raise Failure("WebSocket: sent op %d %d bytes, got op %d %d bytes"
                              % (op, len(payload), got_op, len(got)))
        ws_send(c, 8, struct.pack("!H", 1000))
        got_op, _ = ws_recv(c)
        if got_op != 8:
            raise Failure("WebSocket: no close frame back (op %d)" % got_op)
        s.tally.ok(kind)


def _rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def op_abort(s, slot, rng, kind="client-abort"):
    pod = slot.get()
    how = rng.choice(("mid-request", "mid-response", "h2-cancel"))
    rst = rng.random() < 0.5
    if how == "h2-cancel":
        import h2lib
        c = h2lib.H2Raw(pod.port("inbound"), timeout=IO_TIMEOUT)
        try:
            sid = c.request("/size?n=%d" % (4 * lib.MiB))
            c.wait(lambda cc: len(cc.streams[sid].body) > 0 or cc.streams[sid].ended,
                   timeout=IO_TIMEOUT)
            if c.streams[sid].status != 200:
                raise Failure("h2 before the cancel: status %s" % c.streams[sid].status)
            c.send(h2lib.rst(sid, h2lib.CANCEL))
        finally:
            _rst_close(c.sock) if rst else c.close()
        s.tally.expected(kind, "h2 stream cancelled mid-response")
        return
    sock = socket.create_connection(("127.0.0.1", pod.port("inbound")), timeout=IO_TIMEOUT)
    try:
        if how == "mid-request":
            n = rng.randint(10000, 200000)
            sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: app.local\r\nContent-Length: %d\r\n\r\n"
                         % (n * 2) + rng.randbytes(n))
        else:
            sock.sendall(build_request("GET", "/size?n=%d" % (8 * lib.MiB)))
            got = 0
            want = rng.randint(1, 512 * 1024)
            while got < want:
                d = sock.recv(65536)
                if not d:
                    raise Failure("response ended after %d bytes before the abort" % got)
                got += len(d)
    finally:
        _rst_close(sock) if rst else sock.close()
    s.tally.expected(kind, "client %s %s" % ("reset" if rst else "closed", how))


def op_slowloris(s, slot, rng, kind="slowloris"):
    """A head trickled one header line every 300 ms: request_headers_timeout must end it."""
    pod = slot.get()
    sock = socket.create_connection(("127.0.0.1", pod.port("inbound")), timeout=IO_TIMEOUT)
    try:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: app.local\r\n")
        t0 = time.monotonic()
        i = 0
        while True:
            if time.monotonic() - t0 > HEADERS_TIMEOUT_S + IO_TIMEOUT:
                raise Failure("slowloris connection still open after %.0fs"
                              % (time.monotonic() - t0))
            r, _, _ = select.select([sock], [], [], 0.3)
            if r:
                try:
                    d = sock.recv(65536)
                except ConnectionResetError:
                    d = b""
                if d and not d.startswith(b"HTTP/1.1 408"):
                    raise Failure("slowloris got %r" % d[:80])
                s.tally.expected(kind, "cut by request_headers_timeout (%s)"
                                 % ("408" if d else "closed"))
                return
            i += 1
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                s.tally.expected(kind, "cut by request_headers_timeout (closed)")
                return
    finally:
        sock.close()


def op_upstream_fault(s, slot, rng, kind="upstream-fault"):
    pod = slot.get()
    what = rng.choice(("rst-before-headers", "close-before-headers", "reset-after-headers",
                       "stall"))
    if what == "stall":
        port, host, path, want = pod.port("outbound"), "slow.local", "/delay?ms=3000", 504
    else:
        # SPEC §2: an upstream reset before the response head is 503 (UC), as in Envoy
        port, host, path = pod.port("inbound"), "app.local", "/" + what
        want = 503
    with Client(port, timeout=IO_TIMEOUT) as c:
        c.request("GET", path, host=host)
        try:
            r = c.response()
        except Incomplete as ex:
            if what == "reset-after-headers" and ex.partial.startswith(b"HTTP/1.1 200"):
                s.tally.expected(kind, "origin reset after the head: response cut")
                return
            raise Failure("%s: %r" % (what, ex))
    if what == "reset-after-headers":
        raise Failure("origin reset after the head, but the client got a whole response %d"
                      % r.status)
    if r.status != want:
        raise Failure("%s: status %d, want %d" % (what, r.status, want))
    s.tally.expected(kind, {"stall": "origin stalled: 504", "rst-before-headers":
                            "origin reset before the head: 503", "close-before-headers":
                            "origin closed before the head: 503"}[what])


# -- the run -------------------------------------------------------------------------------

class Soak:
    def __init__(self, env, seconds, drain_every, sample_every, min_drain, warmup,
                 rss_limit_kib, log=print):
        self.env = env
        self.seconds = seconds
        self.drain_every = drain_every
        self.sample_every = sample_every
        self.min_drain = min_drain
        self.warmup = warmup
        self.rss_limit_kib = rss_limit_kib
        self.log = log
        self.tally = Tally()
        self.stop = threading.Event()
        self.samples = []
        self.drains = []
        self.drain_closes = [0]
        self.watchers = []
        self.problems = []
        self.b_count = 0
        self.upload_file = os.path.join(env.tmpdir, "h2-upload.bin")
        with open(self.upload_file, "wb") as f:
            f.write(os.urandom(16384))

    # ebbs
    def start_a(self):
        cfg = ebb_config(self.env, self.be,
                         limits={"request_headers_timeout": "%ds" % HEADERS_TIMEOUT_S})
        return Pod(lib.Ebb(self.env, cfg, name="ebb-a", log_level="info"), 0)

    def start_b(self):
        self.b_count += 1
        # drain_deadline bounds a stuck drain: it then exits with forced>0, which fails the run
        cfg = ebb_config(self.env, self.be, drain={"drain_deadline": "60s"})
        e = lib.Ebb(self.env, cfg, name="ebb-b%d" % self.b_count, log_level="info",
                    env_vars={EOZ_ENV: "true", "MINIMUM_DRAIN_DURATION": self.min_drain})
        return Pod(e, self.b_count)

    def drain(self, pod):
        """SIGTERM in exit-on-zero mode; a thread waits for the exit and reads its summary."""
        rec = {"pod": pod.ebb.name, "at": round(time.monotonic() - T0[0], 1)}
        self.drains.append(rec)
        pod.draining = True
        pod.ebb.signal(signal.SIGTERM)

        def watch():
            try:
                rc = pod.ebb.proc.wait(60 + 30)
            except subprocess.TimeoutExpired:
                rec["error"] = "did not exit within 90s of SIGTERM"
                return
            pod.ebb.stopped = True
            pod.ebb.returncode = rc
            rec["rc"] = rc
            rec["exited_after"] = round(time.monotonic() - T0[0] - rec["at"], 1)
            m = EXIT_LINE.search(pod.ebb.stderr())
            if not m:
                rec["error"] = "no exit summary line"
                return
            rec.update(reason=m.group(1), drain_ms=int(m.group(2)),
                       at_drain_start=int(m.group(3)), closed_gracefully=int(m.group(4)),
                       forced=int(m.group(5)), completed_during_drain=int(m.group(6)))
            self.problems += ["%s: %s" % (pod.ebb.name, p) for p in pod.ebb.problems()]
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        self.watchers.append(t)

    def drainer(self):
        n = 0
        while not self.stop.wait(self.drain_every) and n < 10 ** 5:
            n += 1
            try:
                new = self.start_b()
            except Exception as ex:
                self.problems.append("starting a new B failed: %r" % ex)
                return
            old = self.slot_b.swap(new)        # the endpoint update: new connections go to new
            self.drain(old)
            self.log("%6.1fs drained %s, now %s" % (time.monotonic() - T0[0], old.ebb.name,
                                                   new.ebb.name))

    # sampling
    def sample(self):
        pid = self.a.ebb.pid
        try:
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            fds = None
        ok, exp, unexp = self.tally.totals()
        s = {"t": round(time.monotonic() - T0[0], 1), "rss_kib": lib.rss_kib(pid), "fds": fds,
             "ok": ok, "expected": exp, "unexpected": unexp}
        self.samples.append(s)
        return s

    def sampler(self):
        n = 0
        while not self.stop.wait(self.sample_every) and n < 10 ** 6:
            n += 1
            s = self.sample()
            self.log("%6.1fs rss %s KiB fds %s ok %d expected %d unexpected %d"
                     % (s["t"], s["rss_kib"], s["fds"], s["ok"], s["expected"], s["unexpected"]))

    def loop(self, kind, op, slot, seed):
        rng = random.Random(seed)
        n = 0
        while not self.stop.is_set() and n < MAX_OPS:
            n += 1
            try:
                op(self, slot, rng)
            except Failure as ex:
                self.tally.unexpected(kind, "failure", str(ex))
            except Exception as ex:
                self.tally.unexpected(kind, type(ex).__name__, "%s on %s: %r"
                                      % (op.__name__, slot.name, ex))

    def run(self):
        env = self.env
        self.be = env.be = env.backend()
        self.a = self.start_a()
        self.slot_a = Slot("A", self.a)
        self.slot_b = Slot("B", self.start_b())
        self.fds_before = len(os.listdir("/proc/%d/fd" % self.a.ebb.pid))
        self.rss_before = lib.rss_kib(self.a.ebb.pid)
        T0[0] = time.monotonic()
        self.sample()
        A, B = self.slot_a, self.slot_b
        plan = [("h1-keepalive", op_keepalive, A), ("h1-keepalive", op_keepalive, A),
                ("h1-keepalive", op_keepalive, B), ("h1-keepalive", op_keepalive, B),
                ("h1-pipelined", op_pipelined, A),
                ("h1-chunked-up", op_chunked_upload, A), ("h1-chunked-up", op_chunked_upload, B),
                ("h2c", op_h2load, A), ("h2c", op_h2_client, B),
                ("tcp", op_tcp, A), ("tcp", op_tcp, B),
                ("websocket", op_ws, A), ("websocket", op_ws, B),
                ("client-abort", op_abort, A),
                ("slowloris", op_slowloris, A), ("slowloris", op_slowloris, A),
                ("upstream-fault", op_upstream_fault, A)]
        self.kinds = sorted({k for k, _, _ in plan})
        threads = [threading.Thread(target=self.loop, args=(k, op, slot, i), daemon=True)
                   for i, (k, op, slot) in enumerate(plan)]
        threads += [threading.Thread(target=self.sampler, daemon=True),
                    threading.Thread(target=self.drainer, daemon=True)]
        for t in threads:
            t.start()
        self.stop.wait(self.seconds)
        self.stop.set()
        for t in threads:
            t.join(IO_TIMEOUT * 3)
            if t.is_alive():
                self.problems.append("a load thread did not stop within %.0fs" % (IO_TIMEOUT * 3))
        self.sample()
        self.drain(self.slot_b.get())          # the last B goes the same way
        for t in self.watchers:
            t.join(100)
        self.settle()
        return self.verdict()

    def settle(self):
        """After the load: A's fds must come back to the pre-load count (client connections
        closed, pooled upstream connections idle out after the pool's 2 s idle_timeout)."""
        pid = self.a.ebb.pid
        deadline = time.monotonic() + 60
        fds = None
        while time.monotonic() < deadline:
            fds = len(os.listdir("/proc/%d/fd" % pid))
            if fds == self.fds_before:
                break
            time.sleep(0.2)
        self.fds_after = fds
        self.rss_after = lib.rss_kib(pid)
        self.problems += ["ebb-a: %s" % p for p in self.a.ebb.problems()]
        if not self.a.ebb.alive():
            self.problems.append("ebb-a exited (rc=%s)" % self.a.ebb.proc.returncode)

    def verdict(self):
        """(passed, [reasons]) and the figures the report shows."""
        why = list(self.problems)
        during = [x for x in self.samples if x["rss_kib"] is not None]
        ref = next((x for x in during if x["t"] >= self.warmup), None)
        end = during[-1] if during else None
        self.rss_ref, self.rss_end = ref, end
        if ref is None or end is None or end is ref:
            why.append("no RSS sample after the %.0fs warm-up" % self.warmup)
        else:
            growth = end["rss_kib"] - ref["rss_kib"]
            self.rss_growth = growth
            if growth > self.rss_limit_kib:
                why.append("RSS grew %d KiB after the warm-up (%d KiB at %.0fs, %d KiB at %.0fs;"
                           " limit %d KiB)" % (growth, ref["rss_kib"], ref["t"], end["rss_kib"],
                                               end["t"], self.rss_limit_kib))
        if self.fds_after != self.fds_before:
            why.append("open fds not flat: %d before the load, %s after it (waited 60s)"
                       % (self.fds_before, self.fds_after))
        for k in self.kinds:
            c = self.tally.kinds.get(k, {"ok": 0, "expected": {}, "unexpected": {}})
            if c["unexpected"]:
                why.append("%s: unexpected failures %s" % (k, c["unexpected"]))
            if not c["ok"] and not c["expected"]:
                why.append("%s: no operation completed" % k)
        for d in self.drains:
            if "error" in d:
                why.append("drain of %s: %s" % (d["pod"], d["error"]))
            elif d.get("forced") or d.get("rc") != 0:
                why.append("drain of %s: rc=%s forced=%s reason=%s" % (d["pod"], d.get("rc"),
                                                                      d.get("forced"),
                                                                      d.get("reason")))
        if len(self.drains) < 2:
            why.append("only %d drains" % len(self.drains))
        return not why, why


# -- report --------------------------------------------------------------------------------

def _nice_step(span, n=5):
    """A round tick step (1, 2, 5 x 10^k) giving about n ticks over span."""
    raw = max(span, 1e-9) / n
    k = 10 ** int(("%e" % raw).split("e")[1])
    return next(m * k for m in (1, 2, 5, 10) if m * k >= raw)


def _panel(out, x0, y0, w, h, tmax, series, y_lo, y_hi, label, color, right=None, hline=None):
    """One plot box: series [(t, v)] on a left axis [y_lo, y_hi]; right: (series, hi, label,
    color) on a right axis from 0; hline: (value, text) dashed on the left axis."""
    def X(t):
        return x0 + w * t / tmax

    def Y(v, lo, hi):
        return y0 + h * (1 - (v - lo) / (hi - lo))
    out.append("<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>"
               % (x0, y0, w, h))
    st = _nice_step(tmax)
    t = 0.0
    while t <= tmax + 1e-9:
        out.append("<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#eee'/>"
                   % (X(t), y0, X(t), y0 + h))
        out.append("<text x='%.1f' y='%d' text-anchor='middle'>%g s</text>" % (X(t), y0 + h + 15, t))
        t += st
    st = _nice_step(y_hi - y_lo)
    v = st * int(y_lo / st)
    while v <= y_hi + 1e-9:
        if v >= y_lo:
            out.append("<text x='%d' y='%.1f' text-anchor='end' fill='%s'>%g</text>"
                       % (x0 - 6, Y(v, y_lo, y_hi) + 4, color, round(v, 6)))
        v += st
    out.append("<text x='%d' y='%d' fill='%s' transform='rotate(-90 %d %d)' "
               "text-anchor='middle'>%s</text>" % (x0 - 48, y0 + h // 2, color, x0 - 48,
                                                    y0 + h // 2, label))
    if hline:
        yv = Y(hline[0], y_lo, y_hi)
        out.append("<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#c33' "
                   "stroke-dasharray='6 4'/>" % (x0, yv, x0 + w, yv))
        out.append("<text x='%d' y='%.1f' fill='#c33' text-anchor='end'>%s</text>"
                   % (x0 + w - 4, yv - 4, hline[1]))
    out.append("<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>"
               % (color, " ".join("%.1f,%.1f" % (X(t), Y(v, y_lo, y_hi)) for t, v in series)))
    if right:
        rs, r_hi, r_label, r_color = right
        st = _nice_step(r_hi)
        v = 0.0
        while v <= r_hi + 1e-9:
            out.append("<text x='%d' y='%.1f' fill='%s'>%g</text>"
                       % (x0 + w + 6, Y(v, 0, r_hi) + 4, r_color, v))
            v += st
        out.append("<text x='%d' y='%d' fill='%s' transform='rotate(90 %d %d)' "
                   "text-anchor='middle'>%s</text>" % (x0 + w + 44, y0 + h // 2, r_color,
                                                        x0 + w + 44, y0 + h // 2, r_label))
        out.append("<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>"
                   % (r_color, " ".join("%.1f,%.1f" % (X(t), Y(v, 0, r_hi)) for t, v in rs)))
    return X


def svg_plot(samples, drains, warmup=60, rss_limit_kib=1024, width=780, height=640):
    """Plain SVG, two panels: ebb A's RSS (MiB, left) and open fds (right) over the whole run
    with the drains of B as red ticks; below, RSS growth (KiB) against the sample at the end
    of the warm-up, with the limit as a dashed line."""
    pts = [x for x in samples if x["rss_kib"] is not None and x["fds"] is not None]
    if not pts:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>\n"
    L, R, W = 80, 80, width - 160
    tmax = max(1.0, max(x["t"] for x in pts))
    out = ["<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
           "font-family='sans-serif' font-size='12'>" % (width, height),
           "<rect width='100%' height='100%' fill='white'/>",
           "<text x='%d' y='22' font-size='14'>ebb A (long-lived) during the soak: RSS (blue) "
           "and open fds (green); red ticks: drains of B</text>" % L]
    rss = [(x["t"], x["rss_kib"] / 1024.0) for x in pts]
    r_hi = max(v for _, v in rss) * 1.15
    f_hi = max(x["fds"] for x in pts) * 1.2 + 1
    top, h1 = 40, 300
    X = _panel(out, L, top, W, h1, tmax, rss, 0.0, r_hi, "RSS (MiB)", "#1f5fbf",
               right=([(x["t"], x["fds"]) for x in pts], f_hi, "open fds", "#2a8f2a"))
    for d in drains:
        if d["at"] <= tmax:
            out.append("<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#c33' "
                       "stroke-width='2'/>" % (X(d["at"]), top + h1 - 10, X(d["at"]), top + h1))
    ref = next((x for x in pts if x["t"] >= warmup), None)
    top2, h2 = top + h1 + 70, height - (top + h1 + 70) - 40
    if ref is not None:
        growth = [(x["t"], x["rss_kib"] - ref["rss_kib"]) for x in pts if x["t"] >= ref["t"]]
        lo = min(0, min(v for _, v in growth)) - 64
        hi = max(rss_limit_kib, max(v for _, v in growth)) * 1.15
        out.append("<text x='%d' y='%d' font-size='14'>RSS growth after the %g s warm-up "
                   "(KiB, against %d KiB at %g s); dashed: the limit</text>"
                   % (L, top2 - 12, warmup, ref["rss_kib"], ref["t"]))
        _panel(out, L, top2, W, h2, tmax, growth, lo, hi, "RSS growth (KiB)", "#1f5fbf",
               hline=(rss_limit_kib, "limit +%d KiB" % rss_limit_kib))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def report_md(s, passed, why, command):
    o = ["# Soak run: %s" % ("PASS" if passed else "FAIL"), "",
         "Command: `%s`  " % command,
         "Duration %.0f s of load; drain of B every %.0f s; RSS/fds of A every %.0f s; "
         "RSS warm-up %.0f s, limit %d KiB." % (s.seconds, s.drain_every, s.sample_every,
                                                s.warmup, s.rss_limit_kib), ""]
    if why:
        o += ["Failed because:", ""] + ["- " + w for w in why] + [""]
    ref, end = s.rss_ref, s.rss_end
    o += ["| criterion | measured |", "|---|---|"]
    if ref and end:
        o.append("| RSS growth after the warm-up | %+d KiB (%d KiB at %.0f s, %d KiB at %.0f s; "
                 "max %d KiB) |" % (end["rss_kib"] - ref["rss_kib"], ref["rss_kib"], ref["t"],
                                    end["rss_kib"], end["t"],
                                    max(x["rss_kib"] for x in s.samples if x["rss_kib"])))
        half = next((x for x in s.samples if x["rss_kib"] and x["t"] >= s.seconds / 2), None)
        if half is not None and half is not end:
            o.append("| RSS growth over the second half (a leak grows linearly; not a "
                     "criterion) | %+d KiB (%d KiB at %.0f s) |"
                     % (end["rss_kib"] - half["rss_kib"], half["rss_kib"], half["t"]))
    fd_vals = [x["fds"] for x in s.samples if x["fds"] is not None]
    o.append("| open fds of A | %d before the load, %s after it; %d-%d while loaded |"
             % (s.fds_before, s.fds_after, min(fd_vals), max(fd_vals)))
    ok, exp, unexp = s.tally.totals()
    o.append("| operations | %d ok, %d expected failures, %d unexpected failures |"
             % (ok, exp, unexp))
    o.append("| drains | %d, forced %s |" % (len(s.drains), "+".join(str(d.get("forced", "?"))
                                                                   for d in s.drains)))
    o += ["", "## Load", "", "| kind | ok | expected failures (deliberate) | unexpected |",
          "|---|---:|---|---|"]
    for k in s.kinds:
        c = s.tally.kinds.get(k, {"ok": 0, "expected": {}, "unexpected": {}})
        o.append("| %s | %d | %s | %s |" % (
            k, c["ok"], "<br>".join("%s: %d" % kv for kv in sorted(c["expected"].items())) or "-",
            "<br>".join("%s: %d" % kv for kv in sorted(c["unexpected"].items())) or "0"))
    if s.tally.details:
        o += ["", "Unexpected failures (the first 5 of each kind and reason):", ""]
        o += ["    " + d for d in s.tally.details]
    o += ["", "## Drains of B (SIGTERM, exit-on-zero, MINIMUM_DRAIN_DURATION=%s)" % s.min_drain,
          "", "| pod | SIGTERM at | exited after | rc | exit reason | drain_ms | at drain start "
          "| closed gracefully | forced | completed during drain |",
          "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for d in s.drains:
        o.append("| %s | %.1f s | %s s | %s | %s | %s | %s | %s | %s | %s |" % (
            d["pod"], d["at"], d.get("exited_after", "-"), d.get("rc", "-"),
            d.get("reason", d.get("error", "-")), d.get("drain_ms", "-"),
            d.get("at_drain_start", "-"), d.get("closed_gracefully", "-"), d.get("forced", "-"),
            d.get("completed_during_drain", "-")))
    o += ["", "Responses carrying `Connection: close` from a draining B (keep-alive clients "
          "then reconnected to the new B): %d." % s.drain_closes[0]]
    o += ["", "## RSS and open fds of A", "", "| t | RSS (KiB) | fds | ok so far | expected so far "
          "| unexpected so far |", "|---:|---:|---:|---:|---:|---:|"]
    for x in s.samples:
        o.append("| %.0f s | %s | %s | %d | %d | %d |" % (x["t"], x["rss_kib"], x["fds"], x["ok"],
                                                          x["expected"], x["unexpected"]))
    o.append("| after the load settled | %s | %s | | | |" % (s.rss_after, s.fds_after))
    return "\n".join(o) + "\n"


def write_results(s, passed, why, out_dir, command):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "soak.md"), "w") as f:
        f.write(report_md(s, passed, why, command))
    with open(os.path.join(out_dir, "soak.svg"), "w") as f:
        f.write(svg_plot(s.samples, s.drains, s.warmup, s.rss_limit_kib))
    with open(os.path.join(out_dir, "soak.json"), "w") as f:
        json.dump({"passed": passed, "why": why, "seconds": s.seconds, "samples": s.samples,
                   "drains": s.drains, "kinds": s.tally.kinds, "details": s.tally.details,
                   "fds_before": s.fds_before, "fds_after": s.fds_after,
                   "rss_before": s.rss_before, "rss_after": s.rss_after}, f, indent=1)


def run_soak(env, seconds, drain_every=60, sample_every=10, min_drain="5s",
             warmup=60, rss_limit_kib=1024, log=print):
    """Runs the soak in env (a lib.Env); returns (passed, reasons, Soak)."""
    for tool in ("h2load",):
        if not lib.have(tool):
            raise lib.Skip("%s not installed (Debian: nghttp2-client)" % tool)
    s = Soak(env, seconds, drain_every, sample_every, min_drain, warmup, rss_limit_kib, log)
    try:
        passed, why = s.run()
    finally:
        s.stop.set()
    return passed, why, s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ebb", default=os.path.join(lib.REPO, "build", "ebb"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--out", default=os.path.join(lib.REPO, "build", "soak"))
    ap.add_argument("--drain-every", type=float, help="default 60 s (a third of a short run)")
    ap.add_argument("--sample-every", type=float, help="default 10 s (a tenth of a short run)")
    ap.add_argument("--min-drain", default="5s", help="MINIMUM_DRAIN_DURATION of B")
    ap.add_argument("--warmup", type=float,
                    help="RSS reference sample time: default 60 s (a quarter of a short run)")
    ap.add_argument("--rss-limit-kib", type=int, default=1024)
    a = ap.parse_args()
    a.drain_every = a.drain_every or min(60.0, a.seconds / 3)
    a.sample_every = a.sample_every or min(10.0, a.seconds / 10)
    a.warmup = a.warmup if a.warmup is not None else min(60.0, a.seconds / 4)
    a.out = os.path.abspath(a.out)         # ebb runs in the work directory
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="work-", dir=a.out)
    env = lib.Env(work, os.path.abspath(a.ebb))
    command = "make soak SOAK_SECONDS=%g" % a.seconds
    s = None
    try:
        passed, why, s = run_soak(env, a.seconds, a.drain_every, a.sample_every, a.min_drain,
                                  a.warmup, a.rss_limit_kib, log=lambda m: print(m, flush=True))
    except lib.Skip as ex:
        print("soak: cannot run: %s" % ex)
        sys.exit(2)
    finally:
        problems = env.finish()        # stops every process (and reports a crash of any)
    if problems:
        passed = False
        why += problems
    write_results(s, passed, why, a.out, command)
    with open(os.path.join(a.out, "soak.md")) as f:
        print(f.read())
    print("soak: %s (results in %s, logs in %s)" % ("PASS" if passed else "FAIL", a.out, work))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
