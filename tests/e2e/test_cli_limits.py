"""`ebb request` / `ebb wait` (SPEC §1) and the per-listener connection limit (SPEC §7)."""
import socket
import time

from lib import Client, check, check_eq, free_port, run


def test_wait_blocks_until_ready_and_times_out(env):
    # nothing listens: a bounded wait fails with exit 1, after about its timeout
    port = free_port()
    t0 = time.monotonic()
    p = run([env.ebb_path, "wait", "--url", "http://127.0.0.1:%d/healthz/ready" % port,
             "--timeout", "1", "--period", "100"], timeout=10)
    check_eq(p.returncode, 1, "ebb wait on a port nothing listens on (stderr %r)" % p.stderr)
    check(0.8 <= time.monotonic() - t0 < 5, "ebb wait gave up after %.2fs, --timeout 1"
          % (time.monotonic() - t0))
    # a running ebb: ready at once
    e = env.start()
    p = run([env.ebb_path, "wait", "--url",
             "http://127.0.0.1:%d/healthz/ready" % e.readiness_port, "--timeout", "5"], timeout=10)
    check_eq(p.returncode, 0, "ebb wait on a ready ebb (stderr %r)" % p.stderr)
    # draining: /healthz/ready answers 503, so wait must not succeed
    p = run([env.ebb_path, "request", "--port", str(e.cfg["admin"]["port"]), "POST",
             "/healthcheck/fail"], timeout=10)
    check_eq(p.returncode, 0, "ebb request POST /healthcheck/fail")
    p = run([env.ebb_path, "wait", "--url",
             "http://127.0.0.1:%d/healthz/ready" % e.readiness_port, "--timeout", "1",
             "--period", "100"], timeout=10)
    check_eq(p.returncode, 1, "ebb wait while readiness is 503")


def test_request_prints_body_and_exit_codes(env):
    e = env.start()
    admin = str(e.cfg["admin"]["port"])
    p = run([env.ebb_path, "request", "--port", admin, "GET", "server_info"], timeout=10)
    check_eq(p.returncode, 0, "GET server_info")
    check(b'"state":"LIVE"' in p.stdout, "server_info body printed: %r" % p.stdout[:200])
    check(b"HTTP/1.1" not in p.stdout, "only the body is printed")
    p = run([env.ebb_path, "request", "--port", admin, "GET", "/no/such/path"], timeout=10)
    check_eq(p.returncode, 0, "a 404 is not an error for ebb request (pilot-agent's rule)")
    p = run([env.ebb_path, "request", "--port", admin, "GET", "/quitquitquit"], timeout=10)
    check_eq(p.returncode, 1, "a 405 exits non-zero")
    p = run([env.ebb_path, "request", "--port", str(free_port()), "GET", "/ready"], timeout=10)
    check_eq(p.returncode, 1, "nothing listening exits non-zero")


def test_max_connections_per_listener(env):
    e = env.start()
    e.stop()
    cfg = dict(e.cfg)
    cfg["listeners"] = [dict(l) for l in cfg["listeners"]]
    for l in cfg["listeners"]:
        if l["name"] == "inbound":
            l["max_connections"] = 2
            l["port"] = free_port()
    e = env.ebb(cfg)
    port = e.port("inbound")
    a, b = Client(port), Client(port)
    for c in (a, b):   # two connections in use, each proven with a request
        c.request("GET", "/hello")
        check_eq(c.response().status, 200, "connection within the limit")
    addr = next(l["address"] for l in cfg["listeners"] if l["name"] == "inbound")
    stat = "listener.%s_%d.downstream_cx_overflow" % (addr, port)
    third = socket.create_connection(("127.0.0.1", port), timeout=5)
    third.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        got = third.recv(100)
    except ConnectionResetError:
        got = b""
    check_eq(got, b"", "a connection over max_connections is closed without an answer")
    third.close()
    e.wait_stat(stat, lambda v: v >= 1, what="%s to count the refused connection" % stat)
    a.close()
    e.wait_stat("listener.%s_%d.downstream_cx_active" % (addr, port), lambda v: v == 1)
    with Client(port) as c:
        c.request("GET", "/hello")
        check_eq(c.response().status, 200, "a connection once there is room again")
    b.close()


def test_idle_keepalive_timeout_closes_idle_connection(env):
    """limits.idle_timeout (SPEC §7, 1 h by default): an idle keep-alive connection is closed
    by ebb, and counted; a busy one is not."""
    e = env.start(limits={"idle_timeout": "500ms"})
    with Client(e.port("inbound")) as c:
        c.request("GET", "/hello")
        check_eq(c.response().status, 200, "first request")
        t0 = time.monotonic()
        check_eq(c.closed_by_peer(timeout=5), True, "idle connection closed by ebb")
        dt = time.monotonic() - t0
        check(0.3 <= dt < 4, "closed after %.2fs of idleness (idle_timeout 500ms)" % dt)
    e.wait_stat("http.inbound.downstream_cx_idle_timeout", lambda v: v >= 1)
    # a request taking longer than idle_timeout is not cut by it
    with Client(e.port("inbound")) as c:
        c.request("GET", "/delay?ms=1200")
        r = c.response()
        check_eq(r.status, 200, "a 1.2 s request with idle_timeout 500ms")
