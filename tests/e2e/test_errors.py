"""Error answers a client can read (SPEC §2 "errors", §7 limits)."""

import json
import re
import socket
import time

from lib import (Client, Incomplete, MiB, build_request, check, check_eq, curl, fail, free_port, http,
                 raw_exchange, status_of, wait_for)


def test_503_connect_fail_inbound(env):
    dead = free_port()
    e = env.start(app_endpoint="127.0.0.1:%d" % dead)
    t0 = time.monotonic()
    r = http(e.port("inbound"), "GET", "/hello")
    check_eq(r.status, 503, "status when nothing listens on the cluster's port")
    check(b"app" in r.body, "503 body names the cluster 'app': %r" % r.body)
    check(time.monotonic() - t0 < 2, "a refused connect took %.1fs" % (time.monotonic() - t0))
    e.wait_stat("cluster.app.upstream_cx_connect_fail", lambda v: v >= 1)
    e.wait_stat("http.inbound.downstream_rq_5xx", lambda v: v >= 1)


def test_503_connect_fail_outbound(env):
    e = env.start()
    r = http(e.port("outbound"), "GET", "/hello", host="dead.local")
    check_eq(r.status, 503, "status")
    check(b"dead" in r.body, "503 body names the cluster 'dead': %r" % r.body)
    e.wait_stat("cluster.dead.upstream_cx_connect_fail", lambda v: v >= 1)
    # and the listener keeps working for routable hosts
    check_eq(http(e.port("outbound"), "GET", "/hello").status, 200, "next request to app.local")


def test_connect_timeout_503(env):
    """An endpoint that never completes the handshake: a listener whose accept queue is full
    drops further SYNs (loopback only, so no blackhole address)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(ls.getsockname())
            fillers.append(s)
        e = env.start(clusters={"app": {"endpoints": ["127.0.0.1:%d" % ls.getsockname()[1]],
                                        "connect_timeout": "300ms"}})
        t0 = time.monotonic()
        r = http(e.port("inbound"), "GET", "/hello", timeout=10)
        dt = time.monotonic() - t0
        check(r.status in (503, 504), "status %d for a connect timeout" % r.status)
        check(dt < 3, "connect timeout of 300ms took %.1fs" % dt)
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_504_request_timeout_outbound(env):
    e = env.start()
    t0 = time.monotonic()
    r = http(e.port("outbound"), "GET", "/delay?ms=3000", host="slow.local")
    dt = time.monotonic() - t0
    check_eq(r.status, 504, "status after request_timeout 500ms")
    check(0.4 <= dt < 2.5, "504 after %.2fs (request_timeout is 500ms)" % dt)
    r = http(e.port("outbound"), "GET", "/delay?ms=50", host="slow.local")
    check_eq(r.status, 200, "a request within the timeout")


def test_request_timeout_starts_when_the_request_ends(env):
    """request_timeout (500 ms on "slow") runs from the end of the request, as Envoy's route
    timeout does: a 1.5 s upload is not a slow upstream."""
    e = env.start()
    with Client(e.port("outbound")) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: slow.local\r\nContent-Length: 30\r\n\r\n")
        for _ in range(3):
            time.sleep(0.5)   # the scenario: a slow uploader
            c.send(b"x" * 10)
        r = c.response()
        check_eq(r.status, 200, "status of a slow upload to a cluster with request_timeout 500ms")
        check_eq(r.body, b"x" * 30, "echoed body")


def test_504_request_timeout_inbound(env):
    e = env.start(clusters={"app": {"request_timeout": "500ms"}})
    with Client(e.port("inbound")) as c:
        c.request("GET", "/delay?ms=3000")
        r = c.response()
        check_eq(r.status, 504, "status")
    st = e.stats()
    check(st.get("http.inbound.downstream_rq_5xx", 0) >= 1, "downstream_rq_5xx")


def test_503_upstream_close_before_headers(env):
    e = env.start()
    for path in ("/close-before-headers", "/rst-before-headers"):
        r = http(e.port("inbound"), "GET", path)
        check_eq(r.status, 503, "status for %s" % path)
    check_eq(http(e.port("inbound"), "GET", "/hello").status, 200, "next request")


def test_reset_after_headers_resets_downstream(env):
    e = env.start()
    for port in (e.port("inbound"), e.port("outbound")):
        with Client(port) as c:
            c.request("GET", "/reset-after-headers")
            try:
                r = c.response()
            except Incomplete as ex:
                # the head (and maybe the 10 bytes) arrived, then EOF/RST: the client can tell
                check(b" 200 " in ex.partial[:20] or ex.partial == b"",
                      "partial response %r" % ex.partial[:200])
                continue
            fail("client got a complete response for a reset upstream: %r" % r)
    code, body, p = curl("http://127.0.0.1:%d/reset-after-headers" % e.port("inbound"))
    check(p.returncode in (18, 52, 56), "curl exit %d (want 18/52/56 = partial/empty/recv error): %r"
          % (p.returncode, p.stderr))


def test_431_headers_too_large(env):
    e = env.start()
    r = http(e.port("inbound"), "GET", "/hello", [("X-Big", "a" * (70 * 1024))])
    check_eq(r.status, 431, "status for a 70 KiB header")
    r = http(e.port("inbound"), "GET", "/hello", [("X-Big", "a" * (50 * 1024))])
    check_eq(r.status, 200, "status for a 50 KiB header (under the 60 KiB default)")


def test_431_too_many_headers(env):
    e = env.start()
    r = http(e.port("inbound"), "GET", "/hello", [("X-H%d" % i, "v") for i in range(120)])
    check_eq(r.status, 431, "status for 121 header fields")
    r = http(e.port("inbound"), "GET", "/hello", [("X-H%d" % i, "v") for i in range(90)])
    check_eq(r.status, 200, "status for 91 header fields")


def test_431_configured_limits(env):
    e = env.start(limits={"max_header_count": 10, "max_request_headers": 2048,
                          "max_request_line": 1024})
    r = http(e.port("inbound"), "GET", "/hello", [("X-H%d" % i, "v") for i in range(12)])
    check_eq(r.status, 431, "status with 13 fields over max_header_count 10")
    r = http(e.port("inbound"), "GET", "/hello", [("X-Big", "a" * 3000)])
    check_eq(r.status, 431, "status with a 3 KB head over max_request_headers 2048")
    r = http(e.port("inbound"), "GET", "/hello", [("X-H%d" % i, "v") for i in range(5)])
    check_eq(r.status, 200, "status within the limits")


def test_414_request_line_too_long(env):
    e = env.start()
    r = http(e.port("inbound"), "GET", "/hello?x=" + "a" * (9 * 1024))
    check_eq(r.status, 414, "status for a 9 KiB request line")
    r = http(e.port("inbound"), "GET", "/hello?x=" + "a" * (7 * 1024))
    check_eq(r.status, 200, "status for a 7 KiB request line")


def test_413_body_too_large(env):
    e = env.start(limits={"max_request_body": MiB})
    port = e.port("inbound")
    r = http(port, "POST", "/sha256", body=b"a" * MiB)
    check_eq(r.status, 200, "status for a body of exactly max_request_body")
    # content-length over the limit: answered without waiting for the body
    with Client(port, timeout=5) as c:
        c.send(build_request("POST", "/sha256", [("Content-Length", str(2 * MiB))]))
        r = c.response()
        check_eq(r.status, 413, "status for content-length 2 MiB (body not sent)")
    with Client(port, timeout=5) as c:
        c.send(build_request("POST", "/sha256", [("Content-Length", str(2 * MiB)),
                                                 ("Expect", "100-continue")]))
        r = c.response()
        check_eq(r.status, 413, "status for Expect: 100-continue with 2 MiB")
        check_eq(r.interim, [], "ebb must not send 100 Continue before a 413")
    # chunked: discovered while streaming
    with Client(port, timeout=10) as c:
        c.send(build_request("POST", "/sha256", [("Transfer-Encoding", "chunked")]))
        chunk = b"%x\r\n" % 65536 + b"b" * 65536 + b"\r\n"
        try:
            for _ in range(40):
                c.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = c.response()
            check_eq(r.status, 413, "status for a 2.5 MiB chunked body")
        except Incomplete as ex:
            check(status_of(ex.partial) == 413, "no 413 for an oversized chunked body: %r"
                  % ex.partial[:200])
    log = env.be.log()
    check(not any(x["complete"] and x["body_bytes"] > MiB for x in log),
          "the backend received a whole oversized body")


def test_400_malformed_closes_and_isolates(env):
    e = env.start()
    port = e.port("inbound")
    slow = Client(port)
    slow.request("GET", "/delay?ms=600")              # in flight on another connection
    half = Client(port)
    half.send(b"GET /hello HTTP/1.1\r\nHost: app.local\r\n")   # head not finished yet
    for bad in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
                b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 4 + b"\r\n\r\n",
                b"GET / HTTP/1.1\r\nHo\x00st: a\r\n\r\n", b"GET / HTTP/1.1\r\n: empty\r\nHost: a\r\n\r\n"):
        data, how = raw_exchange(port, bad, timeout=5)
        check(how in ("eof", "reset"), "connection not closed after %r (%s, got %r)" % (bad, how, data[:100]))
        want = (400, 505) if b"HTTP/9.9" in bad else (400,)
        check(status_of(data) in want, "status for %r: want %s, got %r" % (bad, want, data[:200]))
    half.send(b"\r\n")
    check_eq(half.response().body, b"hello\n", "the half-sent request on another connection")
    check_eq(slow.response().body, b"delayed 600\n", "the in-flight request on another connection")
    slow.close()
    half.close()
    check_eq(http(port, "GET", "/hello").status, 200, "a new connection")
    check(e.alive(), "ebb died")


def test_later_http1_minor_version_served_as_1_1(env):
    # RFC 9110 §6.2: HTTP/1.2 is answered as the highest 1.x ebb knows, not 505
    e = env.start()
    data, _ = raw_exchange(e.port("inbound"),
                           b"GET /hello HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n",
                           timeout=5)
    check(data.startswith(b"HTTP/1.1 200 "), "HTTP/1.2 request: %r" % data[:100])
    check(data.endswith(b"hello\n"), "the body arrives: %r" % data[-50:])


def test_invalid_h2_preface_ends_the_connection(env):
    # the preface's request line promises HTTP/2: an HTTP/1.1 400 would be garbage to the
    # client; the connection ends without a byte (RFC 9113 §3.4)
    e = env.start()
    before = e.stat("http.inbound.downstream_cx_protocol_error")
    for bad in (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", b"PRI * HTTP/2.0\r\nHost: a\r\n\r\n"):
        data, how = raw_exchange(e.port("inbound"), bad, timeout=5)
        check_eq(data, b"", "answer to %r" % bad)
        check(how in ("eof", "reset"), "connection ended after %r (%s)" % (bad, how))
    check_eq(e.stat("http.inbound.downstream_cx_protocol_error"), before + 2,
             "counted as protocol errors")
    check_eq(http(e.port("inbound"), "GET", "/hello").status, 200, "a new connection")


def test_access_log_flags(env):
    """One JSON line per request with status and response flags UF / UT / UC."""
    e = env.start()
    http(e.port("outbound"), "GET", "/hello", host="dead.local")
    http(e.port("outbound"), "GET", "/delay?ms=2000", host="slow.local")
    http(e.port("inbound"), "GET", "/close-before-headers")
    http(e.port("inbound"), "GET", "/hello")

    def lines():
        l = e.access_log()
        return l if len(l) >= 4 else None
    got = wait_for(lines, 5, what="4 access log lines in %s" % e.cfg["access_log"])
    text = [json.dumps(x) for x in got]
    for flag, why in (("UF", "connect failure"), ("UT", "timeout"), ("UC", "upstream close")):
        check(any(re.search(r"\b%s\b" % flag, t) for t in text),
              "no access log line with flag %s (%s): %s" % (flag, why, "\n".join(text)))
    check(any("/hello" in t and "200" in t for t in text), "no 200 line for /hello: %s" % text)
    for t in text:
        check(not t.startswith('{"_raw"'), "access log line is not JSON: %s" % t)
