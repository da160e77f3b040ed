"""Chaos and hostile-client tests for the HTTP/1.1 data path (SPEC §2, §3, §7).

test_chaos_mix: a bounded chaos run.  Worker threads open connections to the inbound and
outbound listeners and do a random mix of valid requests, malformed requests (a table of
smuggling/garbage patterns), requests cut mid-head or mid-body, clients that close or reset
(SO_LINGER 0) at random points, slowloris trickles, pipelined bursts and WebSocket upgrades
abandoned midway.  Meanwhile a canary client does sequential GET/POST with body checks and
must never see a failure.  Afterwards ebb is alive, the gauges (listener downstream_cx_active,
http downstream_rq_active, cluster upstream_rq_active) return to 0 within a few seconds, and
ebb exits 0 on /quitquitquit (under build/san/ebb, run.py fails the test on any sanitizer
report in ebb's stderr).

The other tests are regressions for bugs found while reviewing h1.c, each failing before its
fix.
"""

import hashlib
import os
import random
import socket
import struct
import threading
import time

from lib import (Client, Incomplete, check, check_eq, fail, http, raw_exchange, status_of,
                 timeout, wait_for)


# -- helpers ---------------------------------------------------------------------------------

def _connect(port, t=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=t)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _rst(s):
    """Closes s with an RST (SO_LINGER 0)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def _read_until_close(s, limit=1 << 20, t=5.0):
    """Bytes until EOF/RST/timeout (bounded)."""
    out = bytearray()
    s.settimeout(t)
    try:
        while len(out) < limit:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    return bytes(out)


class RawUpstream:
    """A tiny origin in a thread: for every request head it reads, calls
    handler(sock, head_bytes, rest) which writes whatever it wants and returns the unread
    rest (or None to close the connection)."""

    def __init__(self, handler):
        self.handler = handler
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                i = buf.index(b"\r\n\r\n") + 4
                head, buf = buf[:i], buf[i:]
                buf = self.handler(s, head, buf)
                if buf is None:
                    return
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass


def _stat_sum(st, suffix, prefix=""):
    return sum(v for k, v in st.items()
               if k.endswith(suffix) and k.startswith(prefix) and isinstance(v, int))


# -- regressions -----------------------------------------------------------------------------

@timeout(30)
def test_preface_prefix_gets_request_headers_timeout(env):
    """A connection whose only bytes are a prefix of the HTTP/2 preface ("P", "PRI * HTTP/2.0")
    was held for idle_timeout (1 h by default) instead of request_headers_timeout: a slowloris
    only had to send "P"."""
    e = env.start(limits={"request_headers_timeout": "300ms", "idle_timeout": "1h"})
    for data in (b"P", b"PRI * HTTP/2.0\r\n", b"GET / HT"):
        t0 = time.monotonic()
        got, how = raw_exchange(e.port("inbound"), data, timeout=4)
        dt = time.monotonic() - t0
        check(how in ("eof", "reset") and dt < 3,
              "%r: connection still open after %.1fs (%s), want the 300ms headers timeout"
              % (data, dt, how))
        check_eq(status_of(got), 408, "%r: answer" % data)


@timeout(30)
def test_response_head_larger_than_client_buffer(env):
    """With buffer_size smaller than the head limit, an upstream response head that parsed
    but did not fit the client's buffer was written with the fields that did not fit silently
    dropped (unchecked appends): here X-Big vanished, and a field list ending near the
    ceiling could lose content-length (the client then misframes the body).  Now the head
    is sent whole or the answer is a 502."""
    big = "a" * 6000

    def handler(s, head, rest):
        path = head.split(b" ")[1]
        if path == b"/big":
            s.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + big.encode() +
                      b"\r\nContent-Length: 5\r\n\r\nhello")
        elif path == b"/edge":
            # fields that end just under the 4 KiB ceiling: content-length would not fit
            pad = 4096 - len("HTTP/1.1 200 OK\r\n") - len("x-pad: \r\n") - 4
            s.sendall(b"HTTP/1.1 200 OK\r\nx-pad: " + b"p" * pad +
                      b"\r\nContent-Length: 5\r\n\r\nhello")
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr, limits={"buffer_size": 4096}))
    for path in ("/big", "/edge"):
        with Client(e.port("inbound"), timeout=5) as c:
            c.request("GET", path)
            try:
                r = c.response()
            except Incomplete as ex:
                fail("%s: %s (partial %r)" % (path, ex, ex.partial[:200]))
            if r.status == 200:
                check_eq(r.body, b"hello", "%s body" % path)
                if path == "/big":
                    check(r.header("x-big") == big, "%s: X-Big header lost or cut (%d bytes)"
                          % (path, len(r.header("x-big") or "")))
            else:
                check_eq(r.status, 502, "%s status" % path)
        # the connection (or a new one) keeps working for a small response
        check_eq(http(e.port("inbound"), "GET", "/small").body, b"ok", "small after " + path)


@timeout(30)
def test_bytes_after_a_long_body_never_answer_the_next_request(env):
    """An upstream that sends more or less than its content-length.  More: a 2 MB body
    followed, in the same write, by a whole second response ("SMUGGLED").  ebb reads a long identity body straight
    from the socket into the client's buffer and never past the content-length, so the extra
    bytes stay in the socket; the connection must then not go back to the pool, or the next
    request sent on it would get the extra bytes as its answer."""
    body = b"b" * 2000000
    junk = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"

    def handler(s, head, rest):
        path = head.split(b" ")[1]
        if path == b"/long":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) +
                      body + junk)
        elif path.startswith(b"/cut-"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) +
                      body[:len(body) // 2])
            if path == b"/cut-rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return None
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr, clusters={"app": {"endpoints": [up.addr]}}))
    # cut short: the head promises 2 MB, 1 MB comes and then the upstream's FIN (or a reset).
    # The body is read straight from the socket by then; the client must see a cut answer,
    # never a complete-looking one (SPEC §2)
    for how in ("fin", "rst"):
        with Client(e.port("inbound"), timeout=10) as c:
            c.sock.sendall(b"GET /cut-%s HTTP/1.1\r\nHost: app.local\r\n\r\n" % how.encode())
            r = None
            try:
                r = c.response("GET")
            except (Incomplete, OSError):
                pass
            check(r is None, "%s after half the body: the client got a whole %s answer"
                  % (how, r and (r.status, len(r.body))))
    # pipelined: ebb takes the second request the moment the first answer is complete, from
    # the same loop turn, before an event on the pooled connection could say it holds bytes
    for i in range(5):
        with Client(e.port("inbound"), timeout=10) as c:
            c.sock.sendall(b"GET /long HTTP/1.1\r\nHost: app.local\r\n\r\n"
                           b"GET /small HTTP/1.1\r\nHost: app.local\r\n\r\n")
            r = c.response("GET")
            check_eq((r.status, len(r.body), r.body == body), (200, len(body), True),
                     "round %d: the long answer" % i)
            r = c.response("GET")
            check_eq(r.body, b"ok", "round %d: the answer after it" % i)


@timeout(40)
def test_client_stalled_mid_body_or_not_reading(env):
    """A client that stopped mid-body (or stopped reading a response) held its connection and
    an upstream connection forever: no timer ran once the request head was forwarded (the
    cluster request_timeout is off by default).  Now an exchange waiting on the client gives
    up after min(idle_timeout, 60 s) without a client event: 408 while the body is missing,
    a reset when the client does not read."""
    e = env.start(limits={"idle_timeout": "1s"})
    p = e.port("inbound")
    # 1. stalled mid-body: /sha256 answers only after the whole body
    s = _connect(p)
    s.sendall(b"POST /sha256 HTTP/1.1\r\nHost: app.local\r\nContent-Length: 100\r\n\r\nabc")
    t0 = time.monotonic()
    got = _read_until_close(s, t=5)
    dt = time.monotonic() - t0
    s.close()
    check(dt < 4, "mid-body stall: connection held %.1fs (idle_timeout 1s)" % dt)
    check_eq(status_of(got), 408, "mid-body stall answer")
    # 2. a client that never reads a large response
    s = _connect(p)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /size?n=50000000 HTTP/1.1\r\nHost: app.local\r\n\r\n")
    cx = e.lstat("inbound", "downstream_cx_active")
    wait_for(lambda: e.stat(cx) == 1, 3, what="the reader's connection")
    time.sleep(0.3)
    check_eq(e.stat(cx), 1, "non-reader cut at once")
    wait_for(lambda: e.stat(cx) == 0, 6, what="the non-reading client's connection closed")
    s.close()
    wait_for(lambda: _stat_sum(e.stats(), ".upstream_rq_active", "cluster.") == 0, 3,
             what="cluster upstream_rq_active back to 0")
    # 3. a slow but steady reader is not cut: 8 MiB with a 0.4 s pause after every MiB
    n = 8 * 1048576
    with Client(p, timeout=10) as c:
        c.request("GET", "/size?n=%d" % n)
        status, _, _, headers, _ = c.read_head()
        check_eq(status, 200, "slow reader status")
        got, mark = len(c.buf), 0
        c.buf.clear()
        while got < n:
            d = c.sock.recv(min(262144, n - got))
            check(d, "slow reader: connection closed after %d bytes" % got)
            got += len(d)
            if got // 1048576 > mark:
                mark = got // 1048576
                time.sleep(0.4)
    # 4. Expect: 100-continue waits on the upstream, not the client: not a stall
    r = http(p, "POST", "/continue", headers={"Expect": "100-continue"}, body=b"x" * 1000)
    check_eq(r.status, 200, "100-continue")


@timeout(30)
def test_upstream_reset_truncates_close_delimited_body(env):
    """An upstream reset (RST) in the middle of a close-delimited response body was taken for
    its end: the client got a clean "0\\r\\n\\r\\n" and a complete-looking, truncated 200
    (SPEC §2: never a silently truncated 200).  A FIN still ends it cleanly."""
    def handler(s, head, rest):
        path = head.split(b" ")[1]
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
                  b"x" * 1000)
        time.sleep(0.1)
        if path == b"/rst":
            _rst(s)
        else:
            s.sendall(b"y" * 10)
            s.close()
        return None
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr))
    with Client(e.port("inbound"), timeout=5) as c:
        c.request("GET", "/fin")
        r = c.response()
        check_eq((r.status, len(r.body)), (200, 1010), "FIN-delimited response")
    for listener in ("inbound", "outbound"):
        with Client(e.port(listener), timeout=5) as c:
            c.request("GET", "/rst")
            try:
                r = c.response()
            except Incomplete:
                continue
            fail("%s: reset upstream body delivered as a complete %d with %d bytes"
                 % (listener, r.status, len(r.body)))


@timeout(30)
def test_early_response_then_upstream_close_during_upload(env):
    """An upstream that answers before reading the whole request body and closes (a 413, a 401)
    made ebb's next write fail; ebb then stopped reading the upstream at once and answered
    503/reset instead of forwarding the answer it had been sent."""
    def handler(s, head, rest):
        got = len(rest)
        while got < 256 * 1024:                      # read some of the body, not all
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        s.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n"
                  b"Connection: close\r\n\r\ntoo big\n")
        return None                                  # close with the body unread: RST
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr))
    body = b"z" * (8 * 1024 * 1024)
    for i in range(6):
        s = _connect(e.port("inbound"))
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: app.local\r\nContent-Length: %d\r\n\r\n"
                  % len(body))
        try:
            s.sendall(body)
        except OSError:
            pass                                     # ebb may close after the answer
        got = _read_until_close(s, t=5)
        s.close()
        check_eq(status_of(got), 413, "early answer (try %d, got %r)" % (i, got[:80]))


# -- the chaos run ---------------------------------------------------------------------------

HOST = b"Host: app.local\r\n"

# malformed requests: smuggling patterns and garbage (ebb must answer 4xx/close, never crash)
BAD = [
    b"POST /x HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST /x HTTP/1.0\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + HOST + b"X-A : b\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + HOST + b"X-A: b\r\n c\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + HOST + b"X-A: b\rc\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX-A: b\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + HOST + HOST + b"\r\n",
    b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nx\r\n",
    b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: v\r\n" % i for i in range(300)) + b"\r\n",
    b"\x00\x01\x02\x03garbage\r\n\r\n",
    b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
    b"CONNECT app.local:80 HTTP/1.1\r\n" + HOST + b"\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\xff" * 40,
    b"GET /ws HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Content-Length: 3\r\n\r\nabcGET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n",
]


class Chaos:
    def __init__(self, e, seed):
        self.e = e
        self.ports = [e.port("inbound"), e.port("outbound")]
        self.tcp_port = e.port("tcp")
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.canary_errors = []
        self.canary_ok = 0
        self.errors = []             # unexpected answers to *valid* chaos requests
        self.holders = []            # stalled clients kept open past the run: ebb must cut them

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    # each action gets its own rng draw and a fresh connection; a socket error is part of
    # the game for hostile actions, but a wrong answer to a valid request is recorded
    def act(self, rng):
        port = rng.choice(self.ports)
        k = rng.randrange(14)
        name = ["valid", "post", "bad", "cut_head", "cut_body", "abandon_download",
                "slowloris", "pipeline", "ws_abandon", "errors", "drip_abandon",
                "expect_abandon", "tcp", "hold"][k]
        self.count(name)
        try:
            getattr(self, "a_" + name)(rng, port)
        except (OSError, Incomplete):
            pass

    def a_valid(self, rng, port):
        n = rng.choice([0, 1, 100, 70000, 300000])
        path = rng.choice(["/size?n=%d" % n, "/chunked?n=%d&chunk=%d" % (n, rng.randint(1, 9000))])
        with Client(port, timeout=10) as c:
            c.request("GET", path)
            r = c.response()
            if r.status != 200 or len(r.body) != n or r.body != (bytes(range(256)) * (n // 256 + 1))[:n]:
                self.errors.append("GET %s: %d, %d bytes" % (path, r.status, len(r.body)))

    def a_post(self, rng, port):
        body = os.urandom(rng.choice([1, 1000, 100000]))
        chunked = rng.random() < 0.5
        with Client(port, timeout=10) as c:
            if chunked:
                data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                                for i in range(0, len(body), 7000)) + b"0\r\n\r\n"
                c.request("POST", "/echo", [("Transfer-Encoding", "chunked")], data)
            else:
                c.request("POST", "/echo", None, body)
            r = c.response()
            if r.status != 200 or r.body != body:
                self.errors.append("POST /echo: %d, %d of %d bytes" % (r.status, len(r.body), len(body)))

    def a_bad(self, rng, port):
        s = _connect(port)
        try:
            s.sendall(rng.choice(BAD))
            got = _read_until_close(s, t=5)
            st = status_of(got)
            if st is not None and st < 400:
                self.errors.append("malformed request answered %d: %r" % (st, got[:100]))
        finally:
            s.close()

    def a_cut_head(self, rng, port):
        req = b"GET /hello HTTP/1.1\r\n" + HOST + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n"
        s = _connect(port)
        s.sendall(req[:rng.randrange(1, len(req) - 1)])
        time.sleep(rng.random() * 0.05)
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_cut_body(self, rng, port):
        s = _connect(port)
        if rng.random() < 0.5:
            s.sendall(b"POST /sha256 HTTP/1.1\r\n" + HOST + b"Content-Length: 100000\r\n\r\n" +
                      b"x" * rng.randrange(0, 60000))
        else:
            s.sendall(b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"1000\r\n" + b"y" * rng.randrange(0, 4096))
        time.sleep(rng.random() * 0.1)
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_abandon_download(self, rng, port):
        s = _connect(port)
        s.sendall(b"GET /size?n=%d HTTP/1.1\r\n" % rng.choice([100000, 3000000]) + HOST + b"\r\n")
        s.settimeout(5)
        want = rng.randrange(0, 200000)
        got = 0
        while got < want:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_slowloris(self, rng, port):
        req = b"GET /hello HTTP/1.1\r\n" + HOST + b"X-Slow: 1\r\n\r\n"
        s = _connect(port)
        cut = len(req) if rng.random() < 0.5 else rng.randrange(1, len(req))
        for i in range(cut):
            if self.stop.is_set():
                break
            s.sendall(req[i:i + 1])
            time.sleep(0.02)
        if cut == len(req):
            got = _read_until_close(s, limit=200, t=2)
            if got and status_of(got) not in (200, 408):
                self.errors.append("slowloris answered %r" % got[:80])
        _rst(s) if rng.random() < 0.3 else s.close()

    def a_pipeline(self, rng, port):
        sizes = [rng.randrange(0, 20000) for _ in range(rng.randint(2, 20))]
        data = b"".join(b"GET /size?n=%d HTTP/1.1\r\n" % n + HOST + b"\r\n" for n in sizes)
        with Client(port, timeout=10) as c:
            c.send(data)
            if rng.random() < 0.2:           # abandon the burst halfway
                c.response()
                _rst(c.sock)
                return
            for n in sizes:
                r = c.response()
                if r.status != 200 or len(r.body) != n:
                    self.errors.append("pipelined /size?n=%d: %d, %d bytes" % (n, r.status, len(r.body)))
                    return

    def a_ws_abandon(self, rng, port):
        s = _connect(port)
        s.sendall(b"GET /ws HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        if rng.random() < 0.7:
            s.settimeout(5)
            s.recv(4096)                      # the 101 (or an error)
            if rng.random() < 0.5:
                s.sendall(b"\x81\x85\x00\x00\x00\x00hel")   # half a masked frame
        time.sleep(rng.random() * 0.05)
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_errors(self, rng, port):
        path, host, want = rng.choice([
            ("/hello", "dead.local", 503), ("/delay?ms=900", "slow.local", 504),
            ("/rst-before-headers", "app.local", 503), ("/close-before-headers", "app.local", 503),
            ("/hello", "nowhere.local", 404), ("/status?code=500", "app.local", 500)])
        if port != self.ports[1] and host != "app.local":
            host = "app.local"
            path, want = "/status?code=404", 404
        with Client(port, timeout=10) as c:
            c.request("GET", path, host=host)
            r = c.response()
            if r.status != want:
                self.errors.append("GET %s %s: %d, want %d" % (host, path, r.status, want))

    def a_drip_abandon(self, rng, port):
        s = _connect(port)
        s.sendall(b"GET /drip?n=20&interval_ms=20 HTTP/1.1\r\n" + HOST + b"\r\n")
        time.sleep(rng.random() * 0.3)
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_expect_abandon(self, rng, port):
        s = _connect(port)
        s.sendall(b"POST /continue HTTP/1.1\r\n" + HOST +
                  b"Expect: 100-continue\r\nContent-Length: 50000\r\n\r\n")
        s.settimeout(5)
        s.recv(100)
        if rng.random() < 0.5:
            s.sendall(b"q" * rng.randrange(0, 50000))
        _rst(s) if rng.random() < 0.5 else s.close()

    def a_tcp(self, rng, port):
        s = _connect(self.tcp_port)
        data = os.urandom(rng.randrange(1, 50000))
        s.sendall(data)
        if rng.random() < 0.5:
            _rst(s)
            return
        s.shutdown(socket.SHUT_WR)
        got = _read_until_close(s, t=5)
        s.close()
        if got != data:
            self.errors.append("tcp echo: %d of %d bytes" % (len(got), len(data)))

    def a_hold(self, rng, port):
        """A client that stalls and stays connected: mid-head, preface prefix, mid-body,
        or a download it never reads."""
        with self.lock:
            if len(self.holders) >= 12:
                return
        s = _connect(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(rng.choice([
            b"GET /hello HTTP/1.1\r\nHo",
            b"PRI * HTTP/2.0\r\n",
            b"POST /sha256 HTTP/1.1\r\n" + HOST + b"Content-Length: 1000\r\n\r\nabc",
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n10\r\nab",
            b"GET /size?n=20000000 HTTP/1.1\r\n" + HOST + b"\r\n"]))
        with self.lock:
            self.holders.append(s)

    def worker(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            self.act(rng)

    def canary(self):
        rng = random.Random(1)
        port = self.ports[0]
        c = None
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if c is None or i % 10 == 0:
                    if c:
                        c.close()
                    port = self.ports[i % 2]
                    c = Client(port, timeout=10)
                if i % 2:
                    c.request("GET", "/hello")
                    r = c.response()
                    ok = r.status == 200 and r.body == b"hello\n"
                else:
                    body = os.urandom(rng.randrange(0, 200000))
                    c.request("POST", "/sha256", None, body)
                    r = c.response()
                    ok = r.status == 200 and r.json().get("sha256") == hashlib.sha256(body).hexdigest()
                if not ok:
                    self.canary_errors.append("canary #%d on %d: %r %r" % (i, port, r, r.body[:100]))
                else:
                    self.canary_ok += 1
            except Exception as ex:
                self.canary_errors.append("canary #%d on %d: %r" % (i, port, ex))
                c = None
            time.sleep(0.005)
        if c:
            c.close()


@timeout(60)
def test_chaos_mix(env):
    e = env.start(limits={"request_headers_timeout": "2s", "idle_timeout": "2s"})
    seed = int(os.environ.get("CHAOS_SEED", "0")) or random.randrange(1 << 30)
    print("chaos seed %d (rerun with CHAOS_SEED=%d)" % (seed, seed))
    ch = Chaos(e, seed)
    gauges_seen = []

    def gauges():
        st = e.stats()
        g = {k: v for k, v in st.items() if isinstance(v, int) and (
            k.endswith(".downstream_cx_active") or k.endswith(".downstream_rq_active") or
            k.endswith(".upstream_rq_active") or k.endswith(".upstream_cx_active") or
            k.endswith(".upstream_cx_idle") or k == "server.total_connections")}
        return g
    threads = [threading.Thread(target=ch.worker, args=(seed + i,), daemon=True) for i in range(6)]
    threads.append(threading.Thread(target=ch.canary, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        g = gauges()
        gauges_seen.append(g)
        neg = {k: v for k, v in g.items() if v < 0}
        check(not neg, "negative gauges during the run: %r" % neg)
        check(e.alive(), "ebb died during the chaos run")
    ch.stop.set()
    for t in threads:
        t.join(15)
    check(not any(t.is_alive() for t in threads), "a chaos client is stuck")
    print("actions: %r, canary ok %d" % (sorted(ch.counts.items()), ch.canary_ok))
    check(not ch.canary_errors, "canary failures (%d): %s" % (len(ch.canary_errors),
                                                            "; ".join(ch.canary_errors[:5])))
    check(ch.canary_ok > 20, "canary made only %d requests" % ch.canary_ok)
    check(not ch.errors, "wrong answers to valid requests (%d): %s"
          % (len(ch.errors), "; ".join(ch.errors[:5])))

    # everything must settle: no connection, request or upstream request left active
    def settled():
        g = gauges()
        busy = {k: v for k, v in g.items()
                if v != 0 and not k.endswith(".upstream_cx_active") and not k.endswith(".upstream_cx_idle")}
        # pooled upstream connections may stay, but only as idle ones
        for k, v in g.items():
            if k.endswith(".upstream_cx_active"):
                idle = g.get(k[:-len("active")] + "idle", 0)
                if v != idle:
                    busy[k] = "%d active, %d idle" % (v, idle)
        return not busy or (settled.last.update(busy) and False)
    settled.last = {}
    # the stalled clients are still connected: ebb must give up on them by itself
    # (request_headers_timeout, or min(idle_timeout, 60 s) for an exchange)
    try:
        wait_for(settled, 10, interval=0.1, what="gauges back to 0")
    except Exception:
        fail("gauges did not return to 0 with %d stalled clients still connected: %r"
             % (len(ch.holders), settled.last))
    finally:
        for s in ch.holders:
            s.close()
    check(e.alive(), "ebb died")
    rc = e.stop()
    check_eq(rc, 0, "ebb exit status on /quitquitquit")


@timeout(40)
def test_accept_out_of_fds_does_not_spin(env):
    """When accept() failed with EMFILE the listening socket stayed readable and the
    level-triggered loop retried at once, forever: 100% CPU and hundreds of thousands of log
    lines a second until a descriptor was freed.  Now the listener pauses for 100 ms, and
    resumes by itself."""
    from lib import Skip, have
    if not have("prlimit"):
        raise Skip("prlimit not installed")
    env.be = env.backend()
    cfg = env.config(env.be)
    wrapper = os.path.join(env.tmpdir, "ebb-nofile.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec prlimit --nofile=64 %s \"$@\"\n" % env.ebb_path)
    os.chmod(wrapper, 0o755)
    env.ebb_path = wrapper
    e = env.ebb(cfg)
    socks = []
    for _ in range(90):                  # more than the descriptors ebb has left
        socks.append(_connect(e.port("inbound"), t=2))

    def cpu_ticks():
        with open("/proc/%d/stat" % e.pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return int(st[11]) + int(st[12])
    time.sleep(0.3)
    lines0, t0 = len(e.stderr().splitlines()), cpu_ticks()
    time.sleep(1.5)
    lines1, t1 = len(e.stderr().splitlines()), cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    check((t1 - t0) / hz < 0.5, "ebb used %.2fs of CPU in 1.5s while out of descriptors"
          % ((t1 - t0) / hz))
    check(lines1 - lines0 < 300, "%d log lines in 1.5s while out of descriptors" % (lines1 - lines0))
    for s in socks:
        s.close()
    # the queued connections are accepted once descriptors are free, and new ones work
    wait_for(lambda: http(e.port("inbound"), "GET", "/hello", timeout=2).status == 200, 5,
             what="a request after descriptors were freed")


def _h2_trailer_origin(trailer_bytes):
    """A one-connection-at-a-time h2c origin (python3-h2, blocking, in a thread) answering
    every request with 200, "hi" and a trailer section of about trailer_bytes bytes."""
    import h2.config
    import h2.connection
    import h2.events
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(s):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                for ev in conn.receive_data(d):
                    if isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
                        conn.send_data(sid, b"hi")
                        conn.send_headers(sid, [("x-big-trailer", "t" * trailer_bytes)],
                                          end_stream=True)
                s.sendall(conn.data_to_send())
        except Exception:
            pass
        finally:
            s.close()

    def run():
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(s,), daemon=True).start()
    threading.Thread(target=run, daemon=True).start()
    return "127.0.0.1:%d" % ls.getsockname()[1]


@timeout(30)
def test_h1_to_h2c_trailers_larger_than_client_buffer(env):
    """h1 client -> h2c cluster: response trailers that could never fit the client buffer
    (buffer_size 4 KiB) left the exchange waiting for room forever with no socket interest
    set (the response never ended).  Now they are dropped and the response ends."""
    try:
        import h2.connection  # noqa: F401
    except ImportError:
        from lib import Skip
        raise Skip("python3-h2 not installed")
    origin = _h2_trailer_origin(6000)
    cfg = env.config(app_endpoint=origin, limits={"buffer_size": 4096})
    for cl in cfg["clusters"]:
        if cl["name"] == "app":
            cl["protocol"] = "h2c"
    e = env.ebb(cfg)
    for trailers_ok in (False, True):
        with Client(e.port("inbound"), timeout=5) as c:
            c.request("GET", "/t", [("TE", "trailers")] if trailers_ok else None)
            try:
                r = c.response()
            except (Incomplete, socket.timeout) as ex:
                fail("response never ended: %r" % ex)
            check_eq((r.status, r.body), (200, b"hi"), "response")


@timeout(30)
def test_request_head_larger_than_buffer_size(env):
    """With buffer_size below the head limit, a valid request head between the two (here
    6 KB with buffer_size 4 KiB, max_request_headers 60 KiB) was refused with 502: the
    upstream write buffer could not take the head although the read side is sized for it."""
    e = env.start(limits={"buffer_size": 4096})
    r = http(e.port("inbound"), "GET", "/headers", headers={"X-Big": "b" * 6000})
    check_eq(r.status, 200, "status")
    check(len(r.json()["headers"]) >= 2 and any(k.lower() == "x-big" and len(v) == 6000
                                                for k, v in r.json()["headers"]),
          "X-Big reached the upstream whole")


@timeout(30)
def test_no_automatic_retry_of_non_idempotent_request(env):
    """A bodiless POST sent on a pooled connection that the upstream then closed without an
    answer was retried on a fresh connection: the upstream saw (and may have acted on) it
    twice.  RFC 9112 §9.3.1: never retry a non-idempotent request automatically.  A GET is
    still retried once."""
    seen = []

    def handler(s, head, rest):
        method, path = head.split(b" ")[:2]
        seen.append((method, path))
        if path.startswith(b"/drop"):
            return None                              # processed, then closed: no answer
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr, extra={"concurrency": 1}))
    for method in ("POST", "GET"):
        with Client(e.port("inbound"), timeout=5) as c:
            c.request("GET", "/warm")                # leaves a pooled connection
            check_eq(c.response().status, 200, "warm-up")
            del seen[:]
            c.request(method, "/drop-" + method)
            r = c.response()
        n = sum(1 for m, p in seen if p == b"/drop-" + method.encode())
        check_eq(r.status, 503, "%s on a connection closed without an answer" % method)
        check_eq(n, 1 if method == "POST" else 2, "times the upstream saw the %s" % method)


@timeout(30)
def test_h2c_upgrade_not_forwarded(env):
    """"Upgrade: h2c" was forwarded: an upstream that accepts it answers 101 and the client
    then holds an HTTP/2 tunnel whose requests ebb never sees (h2c smuggling: no routing,
    no x-forwarded-*, no access log, no drain).  Envoy strips it; so does ebb now, and the
    request is an ordinary one.  WebSocket upgrades are still forwarded."""
    e = env.start()
    for listener in ("inbound", "outbound"):
        r = http(e.port(listener), "GET", "/headers", headers=[
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        check_eq(r.status, 200, "%s: status" % listener)
        names = {k.lower(): v for k, v in r.json()["headers"]}
        check("upgrade" not in names and "http2-settings" not in names and
              "upgrade" not in names.get("connection", "").lower(),
              "%s: h2c upgrade forwarded: %r" % (listener, names))
    # an upstream that would switch anyway is refused (502), never tunnelled
    def handler(s, head, rest):
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        return None
    up = RawUpstream(handler)
    e2 = env.ebb(env.config(app_endpoint=up.addr))
    got, how = raw_exchange(e2.port("inbound"), b"GET / HTTP/1.1\r\nHost: app.local\r\n"
                            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", timeout=3)
    check_eq(status_of(got), 502, "101 to a request ebb did not upgrade")


@timeout(30)
def test_request_trailers_never_reach_the_response(env):
    """Request and response trailers each keep their own: a client whose chunked request ends
    in a trailer, the final CRLF held back, while the upstream answers in full (chunked,
    without trailers) never gets its own trailer back.  They shared one buffer, and the
    response's last chunk carried what was in it: the request's trailer."""
    def handler(s, head, rest):
        s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nworld\r\n0\r\n\r\n")
        s.settimeout(20)
        while s.recv(65536):   # until ebb closes: an answer before the request's end ends it
            pass
        return None
    up = RawUpstream(handler)
    e = env.ebb(env.config(app_endpoint=up.addr))
    s = _connect(e.port("inbound"), 20)
    s.sendall(b"POST /t HTTP/1.1\r\nHost: app.local\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\nx-req: secret\r\n")
    resp = b""
    while not resp.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in resp:
        d = s.recv(65536)
        if not d:
            break
        resp += d
    s.close()
    check(resp.startswith(b"HTTP/1.1 200"), "the answer: %r" % resp[:80])
    check(b"\r\n0\r\n" in resp, "the answer's last chunk: %r" % resp)
    tail = resp[resp.index(b"\r\n0\r\n") + 2:]
    check_eq(tail, b"0\r\n\r\n", "the response's last chunk (no trailers)")
