"""HTTP/1.1 proxying through the inbound and outbound listeners (SPEC §2)."""

import hashlib
import json
import os
import re
import socket
import time

from lib import (Client, MiB, build_request, check, check_eq, curl, fail, have, http,
                 pattern_sha256, run, Skip, timeout, wait_for)


def _random_file(env, n, name="body.bin"):
    path = os.path.join(env.tmpdir, name)
    data = os.urandom(n)
    with open(path, "wb") as f:
        f.write(data)
    return path, data


def test_get_inbound_curl(env):
    e = env.start()
    code, body, p = curl("http://127.0.0.1:%d/hello" % e.port("inbound"))
    check_eq(code, 200, "status (curl stderr %r)" % p.stderr)
    check_eq(body, b"hello\n", "body")


def test_get_outbound_host_routing(env):
    e = env.start()
    out = e.port("outbound")
    for host in ("app.local", "APP.local", "app.local:80", "api.local"):
        code, body, p = curl("-H", "Host: " + host, "http://127.0.0.1:%d/hello" % out)
        check_eq(code, 200, "status for Host %s (curl stderr %r)" % (host, p.stderr))
        check_eq(body, b"hello\n", "body for Host %s" % host)


def test_get_outbound_absolute_form(env):
    """An app with http_proxy=http://127.0.0.1:15001 sends absolute-form URIs (curl -x)."""
    e = env.start()
    code, body, p = curl("-x", "http://127.0.0.1:%d" % e.port("outbound"),
                         "http://app.local/headers?q=1")
    check_eq(code, 200, "status (curl stderr %r, body %r)" % (p.stderr, body))
    seen = json.loads(body)
    check_eq(seen["target"], "/headers?q=1", "target the backend saw (origin-form)")
    hosts = [v for k, v in seen["headers"] if k.lower() == "host"]
    check_eq(len(hosts), 1, "Host headers at the backend %r" % hosts)
    check(hosts[0].lower().startswith("app.local"), "Host at the backend: %r" % hosts[0])


def test_outbound_unknown_host_404(env):
    e = env.start()
    out = e.port("outbound")
    r = http(out, "GET", "/hello", host="nowhere.example")
    check_eq(r.status, 404, "status for an unrouted host")
    check(b"nowhere.example" in r.body, "404 body names the host: %r" % r.body)
    code, body, _ = curl("-x", "http://127.0.0.1:%d" % out, "http://other.example:8081/x")
    check_eq(code, 404, "status for an unrouted absolute-form URI")
    check(b"other.example" in body, "404 body names the host: %r" % body)
    check_eq(len(env.be.log()), 0, "requests that reached the backend")


def test_post_body_both_listeners(env):
    e = env.start()
    path, data = _random_file(env, 3 * MiB + 17)
    want = hashlib.sha256(data).hexdigest()
    for port, extra in ((e.port("inbound"), []), (e.port("outbound"), ["-H", "Host: app.local"])):
        code, body, p = curl(*extra, "--data-binary", "@" + path,
                             "http://127.0.0.1:%d/sha256" % port)
        check_eq(code, 200, "status (curl stderr %r)" % p.stderr)
        doc = json.loads(body)
        check_eq(doc["bytes"], len(data), "bytes the backend received")
        check_eq(doc["sha256"], want, "sha256 at the backend")
        code, body, p = curl(*extra, "--data-binary", "@" + path, "http://127.0.0.1:%d/echo" % port)
        check_eq(code, 200, "echo status")
        check(body == data, "echoed body differs (%d bytes back)" % len(body))


def test_chunked_request(env):
    e = env.start()
    path, data = _random_file(env, 2 * MiB + 5)
    code, body, p = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                         "http://127.0.0.1:%d/echo" % e.port("inbound"))
    check_eq(code, 200, "status (curl stderr %r)" % p.stderr)
    check(body == data, "echoed chunked body differs (%d bytes back, want %d)" % (len(body), len(data)))
    # hand-made chunks with an extension and a trailer, then a second request on the connection
    chunks = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n"
    with Client(e.port("inbound")) as c:
        c.send(build_request("POST", "/sha256", [("Transfer-Encoding", "chunked")]) + chunks)
        r = c.response()
        check_eq(r.status, 200, "status")
        doc = r.json()
        check_eq(doc["bytes"], 12, "bytes")
        check_eq(doc["sha256"], hashlib.sha256(b"hello world!").hexdigest(), "sha256")
        c.request("GET", "/hello")
        check_eq(c.response().body, b"hello\n", "next request on the connection")


def test_chunked_response(env):
    e = env.start()
    n = 1000003
    code, body, p = curl("http://127.0.0.1:%d/chunked?n=%d&chunk=4093" % (e.port("inbound"), n))
    check_eq(code, 200, "status (curl stderr %r)" % p.stderr)
    check_eq(len(body), n, "body length")
    check_eq(hashlib.sha256(body).hexdigest(), pattern_sha256(n), "body sha256")
    with Client(e.port("inbound")) as c:       # then the connection is still usable
        for _ in range(2):
            c.request("GET", "/chunked?n=10000&chunk=7")
            r = c.response()
            check_eq(r.status, 200, "status")
            check_eq(hashlib.sha256(r.body).hexdigest(), pattern_sha256(10000), "body sha256")


def test_pipelined_in_order(env):
    e = env.start()
    for port in (e.port("inbound"), e.port("outbound")):
        with Client(port) as c:
            c.send(build_request("GET", "/delay?ms=300") +
                   build_request("POST", "/echo", body=b"second") +
                   build_request("GET", "/hello") +
                   build_request("GET", "/size?n=10"))
            bodies = [c.response().body for _ in range(4)]
            check_eq(bodies, [b"delayed 300\n", b"second", b"hello\n", bytes(range(10))],
                     "pipelined responses (in order) on port %d" % port)
            c.request("GET", "/hello")
            check_eq(c.response().body, b"hello\n", "request after the pipeline")


def test_keepalive_reuse(env):
    e = env.start()
    port = e.port("inbound")
    with Client(port) as c:
        for i in range(5):
            c.request("GET", "/hello")
            r = c.response()
            check_eq(r.status, 200, "status of request %d" % i)
            check("close" not in (r.header("connection") or "").lower(),
                  "response %d asks to close: %r" % (i, r.headers))
        check(c.closed_by_peer(0.2) is False, "ebb closed a keep-alive connection")
    e.wait_stat("http.inbound.downstream_rq_total", lambda v: v == 5)
    name = e.lstat("inbound", "downstream_cx_total")
    check_eq(e.stat(name), 1, name)


def test_upstream_pool_reuse(env):
    """Sequential requests on one downstream connection reuse one pooled upstream connection."""
    e = env.start()
    peers = set()
    with Client(e.port("inbound")) as c:
        for _ in range(4):
            c.request("GET", "/headers")
            peers.add(c.response().json()["peer"])
    check_eq(len(peers), 1, "upstream connections used (peers seen by the backend: %s)" % peers)


def test_upstream_idle_close_not_an_error(env):
    """The app closes an idle pooled connection; the next request must not fail."""
    e = env.start()
    with Client(e.port("inbound")) as c:
        for i in range(3):
            c.request("GET", "/close?linger_ms=50")
            check_eq(c.response().status, 200, "status of /close %d" % i)
            time.sleep(0.3)          # let the backend's idle close reach ebb's pool
            c.request("GET", "/hello")
            r = c.response()
            check_eq(r.status, 200, "request after the backend closed its pooled connection")


def test_expect_100_continue_curl(env):
    e = env.start()
    path, data = _random_file(env, 2 * MiB)
    t0 = time.monotonic()
    code, body, p = curl("-H", "Expect: 100-continue", "--expect100-timeout", "5",
                         "--data-binary", "@" + path, "http://127.0.0.1:%d/continue" % e.port("inbound"))
    dt = time.monotonic() - t0
    check_eq(code, 200, "status (curl stderr %r)" % p.stderr)
    doc = json.loads(body)
    check_eq(doc["bytes"], len(data), "bytes")
    check_eq(doc["sha256"], hashlib.sha256(data).hexdigest(), "sha256")
    check(dt < 3, "took %.1fs: curl waited for a 100 Continue that never came" % dt)


def test_expect_100_continue_raw(env):
    e = env.start()
    body = b"x" * 100000
    with Client(e.port("inbound"), timeout=5) as c:
        c.send(build_request("POST", "/continue", [("Expect", "100-continue"),
                                                   ("Content-Length", str(len(body)))]))
        st, _, _, _, raw = c.read_head()
        check_eq(st, 100, "first response before the body is sent (%r)" % raw)
        c.send(body)
        r = c.response()
        check_eq(r.status, 200, "final status")
        check_eq(r.json()["bytes"], len(body), "bytes")


def test_hop_by_hop_and_forwarded_headers(env):
    e = env.start()
    hdrs = [("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("X-End-To-End", "yes")]
    r = http(e.port("inbound"), "GET", "/headers", hdrs)
    check_eq(r.status, 200, "status")
    seen = r.json()["headers"]
    names = {k.lower(): v for k, v in seen}
    for h in ("x-hop", "keep-alive", "proxy-connection", "te"):
        check(h not in names, "hop-by-hop header %s reached the backend: %r" % (h, seen))
    check("x-hop" not in names.get("connection", "").lower(),
          "Connection still names X-Hop: %r" % names.get("connection"))
    check_eq(names.get("x-end-to-end"), "yes", "end-to-end header")
    check("127.0.0.1" in names.get("x-forwarded-for", ""), "x-forwarded-for: %r" % seen)
    check_eq(names.get("x-forwarded-proto"), "http", "x-forwarded-proto")
    rid = names.get("x-request-id", "")
    check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid),
          "x-request-id generated, a version-4 UUID: %r" % rid)
    r2 = http(e.port("inbound"), "GET", "/headers")
    rid2 = {k.lower(): v for k, v in r2.json()["headers"]}.get("x-request-id")
    check(rid2 and rid2 != rid, "x-request-id not unique: %r %r" % (rid, rid2))
    r3 = http(e.port("outbound"), "GET", "/headers", [("X-Request-Id", "my-id-123")])
    seen3 = {k.lower(): v for k, v in r3.json()["headers"]}
    check_eq(seen3.get("x-request-id"), "my-id-123", "x-request-id kept")
    check_eq(seen3.get("x-forwarded-proto"), "http", "x-forwarded-proto on outbound")


def test_response_hop_by_hop_removed(env):
    e = env.start()
    with Client(e.port("inbound")) as c:
        c.request("GET", "/hop")
        r = c.response()
        check_eq(r.status, 200, "status")
        for h in ("x-resp-hop", "keep-alive", "proxy-connection"):
            check(not r.has_header(h), "hop-by-hop response header %s reached the client: %r"
                  % (h, r.headers))
        check("x-resp-hop" not in (r.header("connection") or "").lower(),
              "Connection still names X-Resp-Hop")
        check_eq(r.header("x-end-to-end"), "1", "end-to-end response header")
        c.request("GET", "/hello")
        check_eq(c.response().body, b"hello\n", "next request on the connection")


def test_head_and_bodyless_statuses_keep_framing(env):
    e = env.start()
    with Client(e.port("inbound")) as c:
        c.request("HEAD", "/size?n=5000")
        r = c.response("HEAD")
        check_eq(r.status, 200, "HEAD status")
        check_eq(r.header("content-length"), "5000", "HEAD content-length")
        for code in (204, 304):
            c.request("GET", "/status?code=%d" % code)
            check_eq(c.response().status, code, "status")
        c.request("GET", "/hello")
        r = c.response()
        check_eq(r.body, b"hello\n", "request after HEAD/204/304 on the same connection")


def test_http10_client(env):
    e = env.start()
    with Client(e.port("inbound")) as c:
        c.request("GET", "/hello", version="HTTP/1.0")
        r = c.response()
        check_eq(r.status, 200, "status")
        check_eq(r.body, b"hello\n", "body")
        check(c.closed_by_peer(3) is True, "HTTP/1.0 connection without keep-alive not closed")


def test_http10_without_host_gets_one_upstream(env):
    """HTTP/1.0 may omit Host; HTTP/1.1, which ebb speaks upstream, requires it (RFC 9112
    §3.2), so a strict origin would answer 400.  ebb sends the cluster endpoint's authority,
    as nginx sends its upstream's name."""
    e = env.start()
    with Client(e.port("inbound")) as c:
        c.request("GET", "/headers", host=None, version="HTTP/1.0")
        r = c.response()
        check_eq(r.status, 200, "status")
        hosts = [v for k, v in r.json()["headers"] if k.lower() == "host"]
        check_eq(hosts, [env.be.addr], "Host the origin saw")


def test_status_codes_passed_through(env):
    e = env.start()
    for code in (201, 404, 500, 503):
        r = http(e.port("inbound"), "GET", "/status?code=%d" % code)
        check_eq(r.status, code, "status passed through")
        check_eq(r.body, b"status %d\n" % code, "body")
    st = e.stats()
    check(st.get("http.inbound.downstream_rq_5xx", 0) >= 2, "downstream_rq_5xx %r" % st.get("http.inbound.downstream_rq_5xx"))
    check(st.get("http.inbound.downstream_rq_4xx", 0) >= 1, "downstream_rq_4xx")


def test_concurrent_connections(env):
    """64 connections with slow requests in flight at once."""
    e = env.start()
    clients = [Client(e.port("inbound")) for _ in range(64)]
    try:
        for i, c in enumerate(clients):
            c.request("GET", "/delay?ms=200")
        for i, c in enumerate(clients):
            r = c.response()
            check_eq(r.status, 200, "status of connection %d" % i)
    finally:
        for c in clients:
            c.close()


@timeout(60)
def test_wrk_load_stats_match(env):
    if not have("wrk"):
        raise Skip("wrk not installed")
    e = env.start()
    p = run(["wrk", "-t", "2", "-c", "16", "-d", "2s", "--timeout", "5s",
             "http://127.0.0.1:%d/hello" % e.port("inbound")], timeout=30)
    out = p.stdout.decode()
    check_eq(p.returncode, 0, "wrk exit status (%s)" % out)
    m = re.search(r"(\d+) requests in", out)
    check(m, "wrk output: %s" % out)
    n = int(m.group(1))
    check(n > 100, "only %d requests in 2 s:\n%s" % (n, out))
    check("Non-2xx" not in out, "wrk saw non-2xx responses:\n%s" % out)
    check("Socket errors" not in out, "wrk saw socket errors:\n%s" % out)
    e.wait_stat(e.lstat("inbound", "downstream_cx_active"), lambda v: v == 0, timeout=5)
    st = e.stats()
    rq = st.get("http.inbound.downstream_rq_total")
    ok2 = st.get("http.inbound.downstream_rq_2xx")
    up = st.get("cluster.app.upstream_rq_total")
    check(rq is not None and ok2 is not None and up is not None,
          "missing stats: rq_total=%r rq_2xx=%r upstream_rq_total=%r" % (rq, ok2, up))
    # wrk stops with up to one request per connection in flight: ebb may count those too
    check(n <= ok2 <= n + 16, "wrk counted %d responses, http.inbound.downstream_rq_2xx=%d" % (n, ok2))
    check(ok2 <= rq <= ok2 + 16, "downstream_rq_total=%d vs rq_2xx=%d" % (rq, ok2))
    check(rq - 16 <= up <= rq, "cluster.app.upstream_rq_total=%d vs downstream_rq_total=%d" % (up, rq))
    for k in ("http.inbound.downstream_rq_4xx", "http.inbound.downstream_rq_5xx"):
        check_eq(st.get(k, 0), 0, k)
    # wrk opens one probe connection (no request) before its 16
    name = e.lstat("inbound", "downstream_cx_total")
    check(st.get(name) in (16, 17), "%s = %r, want 16 (+1 wrk probe)" % (name, st.get(name)))
