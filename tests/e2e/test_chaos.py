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
