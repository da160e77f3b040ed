"""WebSocket (HTTP/1.1 Upgrade) tunnelled as bytes through ebb (SPEC §2)."""

import os
import threading

from lib import Client, MiB, check, check_eq, http, timeout, ws_handshake, ws_recv, ws_send


def _echo_session(c):
    ws_send(c, 0x1, b"hello websocket")
    check_eq(ws_recv(c), (0x1, b"hello websocket"), "text echo")
    # bytes that look like HTTP must pass untouched once tunnelled
    fake = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ws_send(c, 0x2, fake)
    check_eq(ws_recv(c), (0x2, fake), "binary echo of HTTP-looking bytes")
    big = os.urandom(200000)
    ws_send(c, 0x2, big)
    op, got = ws_recv(c)
    check(op == 0x2 and got == big, "200 KB binary echo differs (%d bytes back)" % len(got))
    ws_send(c, 0x9, b"ping!")
    check_eq(ws_recv(c), (0xA, b"ping!"), "pong")
    ws_send(c, 0x8, b"\x03\xe8bye")
    check_eq(ws_recv(c), (0x8, b"\x03\xe8bye"), "close echo")
    check(c.closed_by_peer(3) is True, "tunnel not closed after the close handshake")


def test_ws_echo_inbound(env):
    e = env.start()
    with Client(e.port("inbound")) as c:
        ws_handshake(c)
        _echo_session(c)
    check_eq(http(e.port("inbound"), "GET", "/hello").status, 200, "plain request afterwards")


def test_ws_echo_outbound(env):
    e = env.start()
    with Client(e.port("outbound")) as c:
        ws_handshake(c, host="app.local")
        _echo_session(c)


def test_ws_upgrade_headers_reach_backend(env):
    e = env.start()
    with Client(e.port("inbound")) as c:
        ws_handshake(c)
        ws_send(c, 0x1, b"x")
        check_eq(ws_recv(c), (0x1, b"x"), "echo")
    log = [x for x in env.be.log() if x["target"] == "/ws"]
    check_eq(len(log), 1, "handshakes seen by the backend")
    h = {k.lower(): v for k, v in log[0]["headers"]}
    check_eq((h.get("upgrade") or "").lower(), "websocket", "Upgrade at the backend")
    check("upgrade" in (h.get("connection") or "").lower(), "Connection at the backend: %r"
          % h.get("connection"))
    check("sec-websocket-key" in h, "Sec-WebSocket-Key at the backend")


@timeout(60)
def test_ws_bulk_both_directions(env):
    """16 MiB in 64 KiB frames while echoes flow back concurrently (no deadlock, no loss)."""
    e = env.start()
    frames = [os.urandom(1024) * 64 for _ in range(4)]
    n = 256
    with Client(e.port("inbound"), timeout=30) as c:
        ws_handshake(c)
        err = []

        def writer():
            try:
                for i in range(n):
                    ws_send(c, 0x2, frames[i % 4])
            except Exception as ex:       # reported below
                err.append(ex)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        for i in range(n):
            op, got = ws_recv(c)
            check(op == 0x2 and got == frames[i % 4], "frame %d differs" % i)
        t.join(10)
        check(not err, "writer failed: %r" % err)


def test_ws_many_tunnels(env):
    e = env.start()
    cs = []
    try:
        for i in range(20):
            c = Client(e.port("inbound"))
            cs.append(c)
            ws_handshake(c)
        for i, c in enumerate(cs):
            ws_send(c, 0x1, b"tunnel %d" % i)
        for i, c in enumerate(cs):
            check_eq(ws_recv(c), (0x1, b"tunnel %d" % i), "echo on tunnel %d" % i)
    finally:
        for c in cs:
            c.close()


@timeout(30)
def test_ws_idle_tunnel_closed_after_tcp_idle_timeout(env):
    e = env.start(limits={"tcp_idle_timeout": "300ms"})
    with Client(e.port("inbound")) as c:
        ws_handshake(c)
        ws_send(c, 0x1, b"still here")
        check_eq(ws_recv(c), (0x1, b"still here"), "echo before going idle")
        check(c.closed_by_peer(15) is True, "the idle tunnel is closed")
    e.wait_stat("http.inbound.downstream_cx_idle_timeout", lambda v: v == 1,
                what="the idle close counted")
