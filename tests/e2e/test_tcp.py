"""TCP listeners relay bytes both ways, with half-close (SPEC §2)."""

import hashlib
import os
import socket
import threading
import time

from lib import MiB, Client, check, check_eq, fail, free_port, raw_exchange, timeout


def _exchange(port, payload, chunk=65536, timeout_s=30):
    """Sends payload (concurrently reading), shuts down the write side, reads until EOF.
    Returns (received bytes, how the read side ended)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    got = bytearray()
    how = []

    def reader():
        try:
            while True:
                d = s.recv(1 << 18)
                if not d:
                    how.append("eof")
                    return
                got.extend(d)
        except ConnectionResetError:
            how.append("reset")
        except socket.timeout:
            how.append("timeout")
        except OSError as e:
            how.append("error %r" % e)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    mv = memoryview(payload)
    for i in range(0, len(payload), chunk):
        s.sendall(mv[i:i + chunk])
    s.shutdown(socket.SHUT_WR)
    t.join(timeout_s)
    s.close()
    return bytes(got), how[0] if how else "still reading"


def test_tcp_echo_roundtrip(env):
    e = env.start()
    data = os.urandom(4 * MiB + 3)
    got, how = _exchange(e.port("tcp"), data)
    check_eq(how, "eof", "how the relay ended")
    check(got == data, "echo differs: %d bytes back of %d" % (len(got), len(data)))


def test_tcp_half_close_client_first(env):
    """The client shuts down its write side and still receives everything: the digest server
    answers only after it sees the client's FIN through ebb."""
    e = env.start()
    data = os.urandom(8 * MiB)
    got, how = _exchange(e.port("tcp_digest"), data)
    check_eq(how, "eof", "how the relay ended")
    check_eq(got, b"%s %d\n" % (hashlib.sha256(data).hexdigest().encode(), len(data)),
             "digest answered after the half-close")


def test_tcp_half_close_keeps_return_path(env):
    """After our FIN the echo of bytes sent just before it must still arrive in full."""
    e = env.start()
    s = socket.create_connection(("127.0.0.1", e.port("tcp")), timeout=10)
    s.sendall(b"last words")
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    check_eq(bytes(got), b"last words", "echo after half-close")


def test_tcp_many_connections(env):
    e = env.start()
    results = {}

    def one(i):
        data = b"conn %d " % i * 1000
        results[i] = _exchange(e.port("tcp"), data, timeout_s=20) == (data, "eof")
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    bad = [i for i in range(50) if not results.get(i)]
    check(not bad, "connections with a wrong echo: %s" % bad)
    e.wait_stat(e.lstat("tcp", "downstream_cx_active"), lambda v: v == 0)
    name = e.lstat("tcp", "downstream_cx_total")
    check(e.stat(name) >= 50, "%s = %r" % (name, e.stat(name)))


def test_tcp_upstream_down_closes_client(env):
    e = env.start(clusters={"echo": {"endpoints": ["127.0.0.1:%d" % free_port()],
                                     "connect_timeout": "500ms"}})
    t0 = time.monotonic()
    data, how = raw_exchange(e.port("tcp"), b"anyone there?", timeout=5)
    check(how in ("eof", "reset"), "client connection not closed when the upstream is down (%s)" % how)
    check_eq(data, b"", "bytes received")
    check(time.monotonic() - t0 < 3, "took %.1fs" % (time.monotonic() - t0))
    e.wait_stat("cluster.echo.upstream_cx_connect_fail", lambda v: v >= 1)


def test_tcp_upstream_closes_first(env):
    """The upstream (digest server) answers and closes after our FIN; a second connection works."""
    e = env.start()
    for _ in range(2):
        data, how = raw_exchange(e.port("tcp_digest"), b"abc", timeout=5, half_close=True)
        check_eq(how, "eof", "end of the relay")
        check_eq(data, b"%s 3\n" % hashlib.sha256(b"abc").hexdigest().encode(), "digest")


@timeout(30)
def test_tcp_idle_timeout_closes_a_silent_relay(env):
    # limits.tcp_idle_timeout (Envoy's tcp_proxy idle_timeout): a relay where no byte moves
    # either way is closed, so a vanished peer cannot hold a connection (and a draining pod)
    # forever
    e = env.start(limits={"tcp_idle_timeout": "300ms"})
    s = socket.create_connection(("127.0.0.1", e.port("tcp")), timeout=20)
    try:
        s.sendall(b"ping\n")
        check_eq(s.recv(100), b"ping\n", "echo before going idle")
        check_eq(s.recv(100), b"", "the idle relay is closed with a FIN")
    finally:
        s.close()
    e.wait_stat("tcp.tcp.idle_timeout", lambda v: v == 1,
                what="the idle close counted")
    # with the default (1 h) an idle relay stays
    e2 = env.ebb(env.config(env.be))
    s = socket.create_connection(("127.0.0.1", e2.port("tcp")), timeout=20)
    try:
        s.sendall(b"ping\n")
        check_eq(s.recv(100), b"ping\n", "echo")
        s.settimeout(1.0)
        try:
            got = s.recv(100)
            fail("the relay ended (%r) with the 1 h default" % got)
        except socket.timeout:
            pass
    finally:
        s.close()


@timeout(60)
def test_tcp_relay_never_takes_a_pooled_http_connection(env):
    """A TCP relay to a cluster whose HTTP/1.1 keep-alive connections are pooled gets a new
    connection of its own.  The pool is keyed by cluster and destination, not protocol, and
    the relay used to be lent an idle pooled connection: its bytes went into the middle of an
    HTTP/1.1 connection the pool still counted on."""
    be = env.backend()
    cfg = env.config(be, extra={"concurrency": 1})   # one worker: one pool for both
    cfg["listeners"].append({"name": "tcp_app", "address": "127.0.0.1", "port": free_port(),
                             "direction": "inbound", "protocol": "tcp", "cluster": "app"})
    e = env.ebb(cfg)
    with Client(e.port("inbound")) as c:
        c.request("GET", "/hello")
        r = c.response()
        check_eq((r.status, r.body), (200, b"hello\n"), "HTTP/1.1 request")
    e.wait_stat("cluster.app.upstream_cx_idle", lambda v: v == 1,
                what="the upstream connection back in the pool")
    req = b"GET /hello HTTP/1.1\r\nHost: app.local\r\nConnection: close\r\n\r\n"
    got, how = raw_exchange(e.port("tcp_app"), req, timeout=20)
    check_eq(how, "eof", "the relay's end")
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"hello\n"),
          "the relayed request answered: %r" % got[:200])
    check_eq(e.stat("cluster.app.upstream_cx_pool_reuse"), 0, "pooled connections lent")
    check_eq(e.stat("cluster.app.upstream_cx_total"), 2, "upstream connections")
    check_eq(e.stat("cluster.app.upstream_cx_idle"), 1, "the pooled connection, still idle")
