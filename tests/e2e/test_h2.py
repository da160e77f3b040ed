"""test_h2.py - HTTP/2 end to end: h2c by prior knowledge on http listeners, h2->h1, h2->h2c,
h1->h2c, gRPC-style trailers, flow control as back-pressure, upstream GOAWAY, the two-phase
GOAWAY drain, and h2load through ebb to an h2c and an HTTP/1.1 origin."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import h2lib
from h2lib import H2Raw
from lib import (Client, PY, HERE, Skip, check, check_eq, fail, free_port, nginx_origin, tail,
                 timeout, wait_for, PATTERN)


class H2Backend:
    """tests/e2e/h2backend.py in a subprocess: .port, .addr."""

    def __init__(self, env, name="h2backend"):
        pf = os.path.join(env.tmpdir, name + ".ports.json")
        self.log_path = os.path.join(env.tmpdir, name + ".log")
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PY, os.path.join(HERE, "h2backend.py"), "--port", "0",
                                      "--ports-file", pf], stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()

        def ready():
            if self.proc.poll() is not None:
                fail("h2backend exited: %s" % tail(self.log_path))
            return os.path.exists(pf)
        wait_for(ready, 10, what="h2backend ports file")
        with open(pf) as f:
            self.port = json.load(f)["h2"]
        self.addr = "127.0.0.1:%d" % self.port
        env.backends.append(self)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


def h2_config(env, h2c_app=True, h2app=None, **kw):
    """The ebb.yaml dict of start_h2 (h2app: more settings of the `h2app` cluster, e.g. its
    pool); starts the backends it needs."""
    be = env.backend() if env.be is None else env.be
    env.be = be
    hb = H2Backend(env)
    env.h2be = hb
    clusters = {"h2app": dict({"endpoints": [hb.addr], "protocol": "h2c"}, **(h2app or {}))}
    if h2c_app:
        clusters["app"] = {"endpoints": [hb.addr], "protocol": "h2c"}
    cfg = env.config(be, clusters=clusters, **kw)
    for l in cfg["listeners"]:
        if l["name"] == "outbound":
            l["routes"].insert(0, {"host": "h2.local", "cluster": "h2app"})
    return cfg


def start_h2(env, h2c_app=True, **kw):
    """ebb whose `app` cluster is the h2c backend (h2c_app) or the HTTP/1.1 backend, with an
    extra cluster `h2app` (h2c) routed from h2.local on the outbound listener."""
    env.ebbp = env.ebb(h2_config(env, h2c_app, **kw))
    return env.ebbp


# -- basic exchanges -----------------------------------------------------------------------

@timeout(30)
def test_h2c_prior_knowledge_to_h1_backend(env):
    e = env.start()
    port = e.port("inbound")
    c = H2Raw(port)
    sid = c.request("/hello")
    st = c.wait_stream(sid)
    check_eq(st.status, 200, "status")
    check_eq(bytes(st.body), b"hello\n", "body")
    # the h1 backend saw a rewritten HTTP/1.1 request
    sid = c.request("/headers", headers=[("x-test", "1"), ("cookie", "a=1"), ("cookie", "b=2")])
    st = c.wait_stream(sid)
    doc = json.loads(bytes(st.body))
    hd = {k.lower(): v for k, v in doc["headers"]}
    check_eq(doc["version"], "HTTP/1.1", "upstream version")
    check_eq(hd.get("host"), "app.local", "host from :authority")
    check_eq(hd.get("cookie"), "a=1; b=2", "cookie crumbs joined")
    check(hd.get("x-forwarded-for") == "127.0.0.1", "x-forwarded-for: %r" % hd)
    check_eq(hd.get("x-forwarded-proto"), "http", "x-forwarded-proto")
    check(re.match(r"[0-9a-f-]{36}$", hd.get("x-request-id", "")), "x-request-id")
    c.close()
    # real clients
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-w",
                              "%{http_version} %{http_code}",
                              "http://127.0.0.1:%d/hello" % port], capture_output=True, timeout=10)
        check_eq(out.stdout, b"hello\n2 200", "curl --http2-prior-knowledge")
    if shutil.which("nghttp"):
        out = subprocess.run(["nghttp", "-s", "http://127.0.0.1:%d/size?n=1000000" % port],
                             capture_output=True, timeout=10)
        check_eq(out.returncode, 0, "nghttp exit status: %r" % out.stderr[-300:])
    # HTTP/1.1 on the same listener still works
    with Client(port) as hc:
        hc.request("GET", "/hello")
        check_eq(hc.response().body, b"hello\n", "h1 on the same listener")
    check(e.stat("http2.streams_total") >= 2, "http2.streams_total")


@timeout(90)
def test_h2_to_h1_connection_bound(env):
    """h2 streams to an HTTP/1.1 cluster share at most max(pool.max_idle, 16) keep-alive
    connections per worker: the rest wait (never failed) and reuse the connections given back.
    When none was given back for 200 ms, a waiting stream connects one more, so long
    responses cannot starve the rest.  Each such connection is counted
    (cluster.app.upstream_cx_shared_waited); a frozen machine can still produce one."""
    e = env.start(clusters={"app": {"pool": {"max_idle": 16}}})
    c = H2Raw(e.port("inbound"))

    def waited():   # streams that saw no connection given back in 200 ms and connected one more
        return e.stat("cluster.app.upstream_cx_shared_waited")
    sids = [c.request("/hello") for _ in range(48)]
    for sid in sids:
        st = c.wait_stream(sid, 30)
        check_eq(st.status, 200, "stream %d status" % sid)
    cx, extra = e.stat("cluster.app.upstream_cx_total"), waited()
    check(1 <= cx <= 16 + extra, "48 concurrent streams used %d upstream connections "
          "(bound 16, plus %d for streams that saw none given back in 200 ms)" % (cx, extra))
    # 16 long responses hold every shared connection; a short request still gets through,
    # long before any of them ends (none comes back for 200 ms: it connects one more)
    longs = [c.request("/delay?ms=10000") for _ in range(16)]
    wait_for(lambda: e.stat("cluster.app.upstream_rq_active") >= 16, 30,
             what="the 16 long requests on upstream connections")
    st = c.wait_stream(c.request("/hello"), 30)
    check_eq(st.status, 200, "short request behind long ones")
    done = [sid for sid in longs if c.streams.get(sid) is not None and c.streams[sid].ended]
    check_eq(done, [], "long streams ended before the short one behind them")
    for sid in longs:
        check_eq(c.wait_stream(sid, 40).status, 200, "long stream %d" % sid)
    check(e.stat("cluster.app.upstream_cx_total") <= cx + 16 + (waited() - extra),
          "connections after the long ones")
    c.close()


@timeout(60)
def test_h2_to_h2c_and_h1_to_h2c(env):
    e = start_h2(env)
    port = e.port("inbound")
    c = H2Raw(port)
    sid = c.request("/headers", headers=[("x-test", "2")])
    st = c.wait_stream(sid)
    check_eq(st.status, 200, "h2->h2c status")
    doc = json.loads(bytes(st.body))
    hd = dict((k, v) for k, v in doc["headers"])
    check_eq(hd.get(":authority"), "app.local", ":authority")
    check_eq(hd.get("x-test"), "2", "x-test")
    check_eq(hd.get("x-forwarded-proto"), "http", "x-forwarded-proto")
    # many concurrent streams on one connection
    sids = [c.request("/delay?ms=200") for _ in range(50)]
    for s in sids:
        st = c.wait_stream(s, 15)
        check_eq(st.status, 200, "stream %d" % s)
        check_eq(bytes(st.body), b"delayed 200\n", "stream %d body" % s)
    c.close()
    # h1 -> h2c: content-length kept, chunked otherwise
    with Client(port) as hc:
        hc.request("GET", "/size?n=300000")
        r = hc.response()
        check_eq(r.status, 200, "h1->h2c status")
        check_eq(r.body, PATTERN[:300000], "h1->h2c body")
        hc.request("POST", "/echo", body=b"x" * 100000)
        r = hc.response()
        check_eq(len(r.body), 100000, "h1->h2c echo")
    # outbound routing by :authority
    c = H2Raw(e.port("outbound"))
    sid = c.request("/hello", authority="h2.local")
    st = c.wait_stream(sid)
    check_eq(bytes(st.body), b"hello\n", "outbound h2.local -> h2c")
    sid = c.request("/hello", authority="nowhere.local")
    check_eq(c.wait_stream(sid).status, 404, "no route")
    c.close()


def test_h2c_answer_ending_with_its_headers(env):
    """An h2c origin's answer that is a single HEADERS frame with END_STREAM (gRPC's
    trailers-only error) keeps its fields on the way to either client: one HEADERS with
    END_STREAM for an h2 client, an empty body with content-length: 0 for an HTTP/1.1 one."""
    e = start_h2(env)
    port = e.port("inbound")
    c = H2Raw(port)
    sid = c.request("/trailers-only")
    st = c.wait_stream(sid)
    check_eq(st.status, 200, "h2 status")
    hd = dict(st.headers)
    check_eq(hd.get("grpc-status"), "5", "grpc-status in the head")
    check_eq(hd.get("grpc-message"), "no such thing", "grpc-message in the head")
    check_eq(bytes(st.body), b"", "no body")
    check(c.first(h2lib.DATA, sid) is None, "a DATA frame was sent for an answer without a body")
    c.close()
    with Client(port) as hc:
        hc.request("GET", "/trailers-only")
        r = hc.response()
        check_eq(r.status, 200, "h1 status")
        check_eq(r.header("grpc-status"), "5", "h1 grpc-status")
        check_eq(r.header("content-length"), "0", "h1 content-length")
        check_eq(r.body, b"", "h1 body")
        hc.request("GET", "/hello")   # the connection is still good for the next request
        check_eq(hc.response().body, b"hello\n", "next request on the same connection")


@timeout(60)
def test_h2c_connection_idles_out_after_a_finished_stream_is_let_go(env):
    """An h2c upstream stream that ended while its client still held part of the answer (here:
    a client granting no stream window) is let go when the client cancels.  The connection
    then has no stream and must close after the pool's idle_timeout; it used to stay open for
    good, counted in upstream_cx_active, because no run of the connection followed."""
    e = start_h2(env, h2c_app=False, h2app={"pool": {"idle_timeout": "1s"}})
    c = H2Raw(e.port("outbound"), settings_pairs=[(h2lib.S_INITIAL_WINDOW_SIZE, 0)],
              auto_window=False)
    # 64 KiB fill ebb's buffer towards the client, 50,000 bytes stay with the upstream stream
    sid = c.request("/size?n=%d" % (65536 + 50000), authority="h2.local")
    c.wait(lambda cl: cl.streams[sid].status is not None, 10)
    check_eq(c.streams[sid].status, 200, "status")
    # what stays upstream fits the upstream stream's window: the upstream stream ends at once
    wait_for(lambda: e.stat("cluster.h2app.upstream_rq_total") == 1 and
             e.stat("cluster.h2app.upstream_rq_active") == 0, 20,
             what="the upstream stream ended while the client holds the answer")
    check_eq(len(c.streams[sid].body), 0, "body bytes sent into a zero window")
    check_eq(e.stat("cluster.h2app.upstream_cx_active"), 1, "the h2c connection")
    c.send(h2lib.rst(sid, h2lib.CANCEL))
    wait_for(lambda: e.stat("cluster.h2app.upstream_cx_active") == 0, 30,
             what="the h2c connection closed by the pool's idle_timeout (1 s)")
    c.close()
    c = H2Raw(e.port("outbound"))   # the cluster still serves the next request
    st = c.wait_stream(c.request("/hello", authority="h2.local"), 20)
    check_eq((st.status, bytes(st.body)), (200, b"hello\n"), "next request")
    c.close()


@timeout(60)
def test_h2c_bytes_held_for_a_cancelled_stream_go_back_to_the_window(env):
    """Response bytes an h2c upstream sent for a stream that ended upstream, still held for a
    client that then cancels, go back to the connection's receive window.  They were dropped
    without telling nghttp2 (its windows are opened by hand), so each such cancel shrank a
    long-lived pooled connection's window for good, until no DATA could come on it at all.
    cluster.<name>.upstream_cx_rx_bytes_buffered counts the bytes held."""
    e = start_h2(env, h2c_app=False, h2app={"pool": {"idle_timeout": "60s"}},
                 extra={"concurrency": 1})   # one worker: one pooled h2c connection
    held = "cluster.h2app.upstream_cx_rx_bytes_buffered"
    for round_ in range(2):   # the same pooled connection both times
        c = H2Raw(e.port("outbound"), settings_pairs=[(h2lib.S_INITIAL_WINDOW_SIZE, 0)],
                  auto_window=False)
        sid = c.request("/size?n=%d" % (65536 + 50000), authority="h2.local")
        c.wait(lambda cl: cl.streams[sid].status is not None, 10)
        # 64 KiB wait in the client's stream buffer; the upstream stream ends with the rest
        wait_for(lambda: e.stat("cluster.h2app.upstream_rq_total") == round_ + 1 and
                 e.stat("cluster.h2app.upstream_rq_active") == 0, 20,
                 what="the upstream stream ended while the client holds the answer")
        check_eq(e.stat(held), 50000, "bytes held for the client (round %d)" % round_)
        c.send(h2lib.rst(sid, h2lib.CANCEL))
        wait_for(lambda: e.stat(held) == 0, 20,
                 what="the held bytes given back after the cancel (round %d): %s = %s"
                 % (round_, held, e.stat(held)))
        c.close()
    check_eq(e.stat("cluster.h2app.upstream_cx_total"), 1, "h2c connections")
    c = H2Raw(e.port("outbound"))
    st = c.wait_stream(c.request("/size?n=300000", authority="h2.local"), 20)
    check_eq((st.status, len(st.body)), (200, 300000), "a large answer on the connection after")
    c.close()


@timeout(60)
def test_h2c_stream_whose_request_end_waits_for_window_is_cancelled(env):
    """The upstream answers in full before the request body has all come (RFC 9113 §8.1) and
    never opens its window again.  When the client's exchange ends, the upstream stream,
    still open on ebb's side with request bytes queued, must be cancelled (RST_STREAM); it
    used to stay open for good, counted in upstream_rq_active, and its connection never
    idled out."""
    e = start_h2(env, h2c_app=False, h2app={"pool": {"idle_timeout": "1s"}})
    # the upstream's stream window, and 10,000 bytes more that wait in ebb with the request's
    # end; the answer comes 1 s after the head, once the client has sent it all (were the
    # machine so slow that it has not, ebb would cancel the unfinished request anyway)
    body = b"u" * (65535 + 10000)
    c = H2Raw(e.port("outbound"))
    sid = c.request("/early-no-window?ms=1000", method="POST", end=False, authority="h2.local",
                    headers=[("content-length", str(len(body)))])
    c.send_data_fc(sid, body)
    st = c.wait_stream(sid, 20)
    check_eq((st.status, bytes(st.body)), (200, b"early\n"), "the early answer")
    c.close()
    wait_for(lambda: e.stat("cluster.h2app.upstream_rq_active") == 0, 20,
             what="the upstream stream cancelled: upstream_rq_active = %s"
             % e.stat("cluster.h2app.upstream_rq_active"))
    wait_for(lambda: e.stat("cluster.h2app.upstream_cx_active") == 0, 30,
             what="the h2c connection closed by the pool's idle_timeout (1 s)")


@timeout(60)
def test_h2_stream_whose_client_stops_reading_is_reset(env):
    """A client that grants a stream no window while its answer waits holds the stream, and
    towards an HTTP/1.1 upstream one of the bounded shared connections.  After
    min(idle_timeout, 60 s) with nothing read, the stream is reset, as an HTTP/1.1 client that
    stops reading is; it used to be held for good."""
    e = start_h2(env, h2c_app=False, limits={"idle_timeout": "2s"})
    c = H2Raw(e.port("inbound"), settings_pairs=[(h2lib.S_INITIAL_WINDOW_SIZE, 0)],
              auto_window=False)
    sid = c.request("/size?n=1000000")
    c.wait(lambda cl: cl.streams[sid].reset is not None, 20)
    check_eq(c.streams[sid].status, 200, "the answer's head")
    check_eq(len(c.streams[sid].body), 0, "body bytes sent into a zero window")
    check_eq(c.streams[sid].reset, h2lib.INTERNAL_ERROR, "RST_STREAM code")
    e.wait_stat("cluster.app.upstream_rq_active", lambda v: v == 0,
                what="the upstream exchange let go")
    check_eq(e.stat("http.inbound.downstream_rq_timeout"), 1, "downstream_rq_timeout")
    # the connection goes on: a stream that reads is answered
    c.send(h2lib.settings([(h2lib.S_INITIAL_WINDOW_SIZE, 65535)]))
    st = c.wait_stream(c.request("/hello"), 20)
    check_eq((st.status, bytes(st.body)), (200, b"hello\n"), "the next stream")
    c.close()


@timeout(60)
def test_h2_request_body_never_sent_gets_408(env):
    """A stream whose client sends its head but not the body it announced, towards an
    HTTP/1.1 upstream, gets 408 after min(idle_timeout, 60 s), as an HTTP/1.1 client does; it
    held its shared upstream connection for good."""
    e = start_h2(env, h2c_app=False, limits={"idle_timeout": "2s"})
    c = H2Raw(e.port("inbound"))
    sid = c.request("/sha256", method="POST", end=False, headers=[("content-length", "10")])
    st = c.wait_stream(sid, 20)
    check_eq(st.status, 408, "status")
    e.wait_stat("cluster.app.upstream_rq_active", lambda v: v == 0,
                what="the upstream exchange let go")
    c.close()


@timeout(60)
def test_h2_large_bodies_both_ways(env):
    """20 MiB up and down through h2->h1 and h2->h2c, checked by digest."""
    for h2c_app in (False, True):
        e = start_h2(env, h2c_app=h2c_app)
        port = e.port("inbound")
        body = os.urandom(1 << 20) * 20
        c = H2Raw(port)
        sid = c.request("/echo", method="POST", end=False,
                        headers=[("content-length", str(len(body)))])
        c.send_data_fc(sid, body)
        st = c.wait_stream(sid, 60)
        check_eq(st.status, 200, "echo status (h2c_app=%s)" % h2c_app)
        check_eq(hashlib.sha256(st.body).hexdigest(), hashlib.sha256(body).hexdigest(),
                 "echo digest (h2c_app=%s)" % h2c_app)
        sid = c.request("/size?n=%d" % (30 << 20))
        st = c.wait_stream(sid, 60)
        check_eq(len(st.body), 30 << 20, "download size (h2c_app=%s)" % h2c_app)
        check(bytes(st.body[:1024]) == PATTERN[:1024], "download pattern")
        c.close()
        e.stop()
        env.be = None


@timeout(60)
def test_h2_slow_reader_backpressure(env):
    """A client that grants no window beyond the initial 64 KiB holds a 200 MiB response:
    ebb's memory must stay flat (the upstream is not read ahead)."""
    for h2c_app in (False, True):
        e = start_h2(env, h2c_app=h2c_app)
        rss0 = e.rss_kib()
        c = H2Raw(e.port("inbound"), auto_window=False)
        sid = c.request("/size?n=%d" % (200 << 20))
        c.wait(lambda cl: len(cl.streams[sid].body) >= 65535, 10)
        time.sleep(1.0)
        rss1 = e.rss_kib()
        check(rss1 - rss0 < 20 * 1024, "rss grew by %d KiB with a stalled reader (h2c_app=%s)"
              % (rss1 - rss0, h2c_app))
        check_eq(len(c.streams[sid].body), 65535, "bytes beyond the window")
        # then read it all quickly: everything arrives
        c.auto_window = True
        c.send(h2lib.window_update(0, 1 << 30) + h2lib.window_update(sid, 1 << 30))
        st = c.wait_stream(sid, 40)
        check_eq(len(st.body), 200 << 20, "whole body after the window opened")
        c.close()
        e.stop()
        env.be = None


@timeout(30)
def test_grpc_trailers_h2_to_h2c(env):
    e = start_h2(env)
    c = H2Raw(e.port("inbound"))
    msg = b"\x00\x00\x00\x00\x05hello"
    sid = c.request("/grpc", method="POST", headers=[("content-type", "application/grpc"),
                                                       ("te", "trailers")],
                    body=msg, trailers=[("x-client-trailer", "1")])
    st = c.wait_stream(sid)
    check_eq(st.status, 200, "status")
    check_eq(st.header("content-type"), "application/grpc", "content-type")
    check_eq(bytes(st.body), msg, "message echoed")
    tr = dict(st.trailers)
    check_eq(tr.get("grpc-status"), "0", "grpc-status trailer")
    check_eq(tr.get("grpc-message"), "ok", "grpc-message trailer")
    check_eq(tr.get("x-request-trailers"), "x-client-trailer", "request trailers passed on")
    c.close()


@timeout(30)
def test_grpc_trailers_h1_to_h2c(env):
    """h1 chunked request with trailers -> h2c upstream -> chunked response with trailers."""
    e = start_h2(env)
    with Client(e.port("inbound")) as hc:
        hc.send(b"POST /grpc HTTP/1.1\r\nHost: app.local\r\nContent-Type: application/grpc\r\n"
                b"TE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\nx-h1-trailer: 1\r\n\r\n")
        status, _, _, headers, _ = hc.read_head()
        check_eq(status, 200, "status")
        raw = b""
        deadline = time.monotonic() + 5
        while not raw.endswith(b"\r\n\r\n") or b"grpc-status" not in raw:
            if time.monotonic() > deadline:
                fail("no chunked trailers: %r" % raw)
            if not hc.buf:
                hc._fill()
            raw += bytes(hc.buf)
            hc.buf.clear()
        check(b"hello" in raw, "body echoed: %r" % raw)
        check(b"grpc-status: 0\r\n" in raw, "grpc-status in the chunked trailer: %r" % raw)
        check(b"x-request-trailers: x-h1-trailer\r\n" in raw,
              "h1 request trailer reached the h2 upstream: %r" % raw)


@timeout(30)
def test_h2c_upstream_goaway_then_new_connection(env):
    e = start_h2(env)
    c = H2Raw(e.port("inbound"))
    st = c.wait_stream(c.request("/goaway"))
    check_eq(st.status, 200, "goaway endpoint")
    time.sleep(0.5)
    for i in range(5):
        st = c.wait_stream(c.request("/hello"))
        check_eq(st.status, 200, "request %d after the upstream GOAWAY" % i)
    c.close()
    check(e.stat("http2.upstream_goaway_received") >= 1, "upstream GOAWAY counted")
    check(e.stat("http2.upstream_cx_total") >= 2, "a new upstream connection was opened")


@timeout(30)
def test_h2_upstream_errors(env):
    e = start_h2(env)
    c = H2Raw(e.port("outbound"))
    st = c.wait_stream(c.request("/hello", authority="dead.local"))
    check_eq(st.status, 503, "connect failure -> 503")
    c.close()


@timeout(30)
def test_h2_request_timeout_starts_when_the_request_ends(env):
    """The cluster's request_timeout (500 ms on "slow") runs from the end of the request for an
    HTTP/2 stream too, as for HTTP/1.1 (test_errors) and Envoy's route timeout: a 1.5 s upload
    is not a slow upstream (/sha256 answers after the whole body); a slow upstream still gets
    504 once the request is in."""
    e = start_h2(env, h2c_app=False)
    c = H2Raw(e.port("outbound"))
    sid = c.request("/sha256", method="POST", headers=[("content-length", "30")], end=False,
                    authority="slow.local")
    for i in range(3):
        time.sleep(0.5)   # the scenario: a slow uploader
        c.send_data(sid, b"x" * 10, end=i == 2)
    st = c.wait_stream(sid)
    check_eq(st.status, 200, "status of a slow upload to a cluster with request_timeout 500ms")
    want = hashlib.sha256(b"x" * 30).hexdigest()
    check_eq(json.loads(bytes(st.body)).get("sha256"), want, "digest of the body the upstream read")
    st = c.wait_stream(c.request("/delay?ms=3000", authority="slow.local"))
    check_eq(st.status, 504, "a slow upstream after the request ended")
    check(b"request timeout" in bytes(st.body), "504 body names the timeout: %r" % bytes(st.body))
    c.close()


# -- the two-phase GOAWAY drain (SPEC §3.3.4) ------------------------------------------------

MAXID = 0x7fffffff


def _drain_case(env, ack_ping):
    e = start_h2(env, drain={"drain_timeout": "600ms"}, extra={
        "terminationDrainDuration": "4s"} if False else None)
    port = e.port("inbound")
    c = H2Raw(port, auto_ping=ack_ping)
    c.wait(lambda cl: cl.first(h2lib.SETTINGS) is not None, 5)
    sids = [c.request("/drip?n=6&interval_ms=250") for _ in range(3)]
    time.sleep(0.3)
    t0 = time.monotonic()
    e.signal(signal.SIGTERM)
    c.wait(lambda cl: len(cl.goaways) >= 1, 5)
    last, code, _ = c.goaways[0]
    check_eq((last, code), (MAXID, 0), "first GOAWAY (last stream id, error)")
    check(any(p == b"ebbdrain" for p in c.pings), "a PING follows the first GOAWAY")
    c.wait(lambda cl: len(cl.goaways) >= 2, 5)
    last, code, t2 = c.goaways[1]
    check_eq((last, code), (max(sids), 0), "final GOAWAY (last stream id, error)")
    if not ack_ping:
        check(t2 - t0 >= 0.5, "without a PING ack the final GOAWAY waits drain_timeout "
              "(%.2fs)" % (t2 - t0))
    # a stream opened after the final GOAWAY is not processed
    late = c.request("/hello")
    for s in sids:
        st = c.wait_stream(s, 10)
        check_eq(st.status, 200, "in-flight stream %d status" % s)
        check(st.reset is None, "stream %d reset" % s)
        check_eq(bytes(st.body), b"drip\n" * 6, "in-flight stream %d body" % s)
    check(c.streams[late].status is None, "stream above the final GOAWAY got an answer")
    check(c.wait_eof(5), "connection closed after its last stream")
    check_eq(len(c.goaways), 2, "GOAWAY frames")
    c.close()
    return e


@timeout(40)
def test_h2_drain_two_phase_goaway(env):
    e = _drain_case(env, ack_ping=True)
    # a connection accepted during the drain gets the same right after the server preface
    c = H2Raw(e.port("inbound"))
    c.wait(lambda cl: len(cl.goaways) >= 2, 5)
    check_eq(c.frames[0].type, h2lib.SETTINGS, "server preface first")
    check_eq(c.goaways[0][:2], (MAXID, 0), "first GOAWAY on a connection accepted while draining")
    check_eq(c.goaways[1][:2], (0, 0), "final GOAWAY with no stream processed")
    check(c.wait_eof(5), "closed")
    c.close()
    st, body = e.admin("GET", "/stats?filter=http2")
    m = re.search(r"http2\.goaway_sent: (\d+)", body)
    check(m and int(m.group(1)) >= 4, "http2.goaway_sent: %s" % body)


@timeout(40)
def test_h2_drain_final_goaway_after_timeout_without_ping_ack(env):
    _drain_case(env, ack_ping=False)


# -- load ------------------------------------------------------------------------------------

H2LOAD_N = int(os.environ.get("EBB_H2LOAD_N", "200000"))


def _h2load(port, n):
    if not shutil.which("h2load"):
        raise Skip("h2load not installed")
    out = subprocess.run(["h2load", "-n", str(n), "-c", "16", "-m", "64", "-t", "1",
                          "http://127.0.0.1:%d/" % port], capture_output=True, timeout=300)
    text = out.stdout.decode("utf-8", "replace")
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    r = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    if not m:
        fail("h2load output: %s %s" % (text[-800:], out.stderr[-400:]))
    return [int(x) for x in m.groups()], float(r.group(1)) if r else 0.0, text


@timeout(660)
def test_h2load_through_ebb_to_h2c_and_h1(env):
    """h2load -n 200000 -c 16 -m 64 through ebb to an h2c origin and to an HTTP/1.1 origin
    (nginx in both roles, so the origin is not the bottleneck): every response 2xx.
    EBB_H2LOAD_N overrides n."""
    h1 = nginx_origin(env, False)
    h2 = nginx_origin(env, True)
    for name, ep, proto in (("h2c", h2, "h2c"), ("http1", h1, "http1")):
        cfg = env.config(None, clusters={"app": {"endpoints": [ep], "protocol": proto}})
        if os.environ.get("EBB_H2LOAD_LOG") != "1":
            cfg["access_log"] = "off"
        e = env.ebb(cfg, log_level="info")
        codes, rps, text = _h2load(e.port("inbound"), H2LOAD_N)
        check_eq(codes, [H2LOAD_N, 0, 0, 0], "h2load status codes via ebb to %s origin" % name)
        if proto == "http1":
            # 1024 concurrent streams share at most pool.max_idle (64) keep-alive connections
            # per worker (2 workers): no connect/close per request (without the bound it was
            # about 190,000 connections for 200,000 requests).  A stream connects one more only
            # when no connection came back for 200 ms (test_h2_to_h1_connection_bound): a slow
            # turn on a busy machine is a queue, not a stall.  Counting a connection per 200 ms
            # wait instead made tens of thousands under stress-ng; so every connection beyond
            # n/20 must be one a stalled stream connected, and those stay few.
            cx = e.stat("cluster.app.upstream_cx_total")
            waited = e.stat("cluster.app.upstream_cx_shared_waited")
            check(cx <= H2LOAD_N // 20 + waited, "upstream connections for %d requests: %d "
                  "(%d by streams that saw none given back in 200 ms)" % (H2LOAD_N, cx, waited))
            check(waited <= H2LOAD_N // 20, "streams that connected one more: %d for %d requests"
                  % (waited, H2LOAD_N))
        print("h2load -n %d -c 16 -m 64 via ebb -> %s origin: %.0f req/s" % (H2LOAD_N, name, rps))
        e.stop()
