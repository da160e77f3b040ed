"""test_h2_upstream_faults.py - the h2->h1 path (an HTTP/2 stream run as an HTTP/1.1 exchange on
a pooled upstream connection) facing upstream faults: regressions for the three bugs fixed in
h1.c's h1->h1 path (commits a20a2d1, 40ffc2d) and found again in h2.c, each failing before its
fix in h2.c:

  - an RST in the middle of a close-delimited response body ended the stream (END_STREAM):
    a complete-looking, truncated response; it must be reset (RST_STREAM INTERNAL_ERROR);
  - the transparent retry on a stale pooled connection repeated a bodiless POST;
  - a failed write to the upstream stopped reading it: an early answer (413) sent before the
    upstream closed became a 503.
"""

import time

import h2lib
from h2lib import H2Raw
from lib import check, check_eq, fail, timeout
from test_chaos import RawUpstream, _rst


def _h2_ebb(env, up, **kw):
    return env.ebb(env.config(app_endpoint=up.addr, **kw))


@timeout(30)
def test_h2_upstream_reset_truncates_close_delimited_body(env):
    """An upstream reset (RST) in the middle of a close-delimited response body (no
    content-length, no chunked) was taken for its end: the h2 client got DATA with
    END_STREAM, a complete-looking truncated 200.  Now the stream is reset with
    INTERNAL_ERROR.  A FIN still ends the body cleanly."""
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
    e = _h2_ebb(env, up)
    for listener in ("inbound", "outbound"):
        c = H2Raw(e.port(listener))
        st = c.wait_stream(c.request("/fin"))
        check_eq((st.status, st.ended, st.reset, len(st.body)), (200, True, None, 1010),
                 "%s: FIN-delimited response (status, ended, reset, body)" % listener)
        st = c.wait_stream(c.request("/rst"))
        if st.ended:
            fail("%s: reset upstream body delivered as a complete %s with %d bytes (END_STREAM)"
                 % (listener, st.status, len(st.body)))
        check_eq(st.reset, h2lib.INTERNAL_ERROR, "%s: RST_STREAM code" % listener)
        c.close()


@timeout(30)
def test_h2_no_automatic_retry_of_non_idempotent_request(env):
    """A bodiless POST on a pooled connection that the upstream then closed without an answer
    was retried on a fresh connection: the upstream saw (and may have acted on) it twice.
    RFC 9110 §9.2.2, RFC 9112 §9.3.1: only idempotent methods are retried.  A GET still is,
    once."""
    seen = []

    def handler(s, head, rest):
        method, path = head.split(b" ")[:2]
        seen.append((method, path))
        if path.startswith(b"/drop"):
            return None                              # processed, then closed: no answer
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    up = RawUpstream(handler)
    e = _h2_ebb(env, up, extra={"concurrency": 1})
    for method in ("POST", "DELETE", "PATCH", "GET"):
        c = H2Raw(e.port("inbound"))
        st = c.wait_stream(c.request("/warm"))       # leaves a pooled connection
        check_eq(st.status, 200, "warm-up")
        del seen[:]
        path = "/drop-" + method
        st = c.wait_stream(c.request(path, method=method))
        c.close()
        n = sum(1 for m, p in seen if p == path.encode())
        check_eq(st.status, 503, "%s on a connection closed without an answer" % method)
        check_eq(n, 2 if method in ("GET", "DELETE") else 1,
                 "times the upstream saw the %s" % method)
