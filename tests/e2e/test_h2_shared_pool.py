"""HTTP/2 streams to an HTTP/1.1 cluster waiting for one of the shared upstream connections
(src/proxy/h1_client.c, docs/http2.md "Bounded HTTP/1.1 upstream connections").

Found by the soak (tests/e2e/soak.py): under h2 downloads cancelled mid-response, h2load
uploads stalled forever.  A stream whose request body arrived while it waited for a
connection is told "no room" and waits for on_writable; when it was then lent a *pooled*
connection, the head went out but nothing ever called on_writable, so the body was never
asked for: the origin waited for the body, the client for the answer.
"""

import hashlib
import json

from h2lib import H2Raw
from lib import Client, check, check_eq, timeout


@timeout(60)
def test_h2_upload_waiting_for_a_shared_connection_gets_a_pooled_one(env):
    # one worker, so the h1 client's pooled connection and the h2 streams share a pool
    e = env.start(extra={"concurrency": 1}, clusters={"app": {"pool": {"max_idle": 16}}})
    port = e.port("inbound")
    c = H2Raw(port, timeout=30)
    # 16 long responses hold every shared connection (the bound is max(max_idle, 16))
    longs = [c.request("/delay?ms=4000") for _ in range(16)]
    e.wait_stat("cluster.app.upstream_rq_active", lambda v: v >= 16,
                what="16 upstream requests in flight")
    # an HTTP/1.1 exchange (not a shared one) leaves an idle connection in the pool
    with Client(port) as h:
        h.request("GET", "/hello")
        check_eq(h.response().body, b"hello\n", "h1 request")
    e.wait_stat("cluster.app.upstream_cx_active", lambda v: v >= 17,
                what="the h1 request's connection kept in the pool")
    # the upload waits (all 16 lent) with its body already here; after the 200 ms wait it is
    # lent the pooled connection: its body must follow the head
    body = bytes(range(256)) * 100
    sid = c.request("/sha256", method="POST", headers=[("content-length", str(len(body)))],
                    body=body)
    st = c.wait_stream(sid, 30)
    check(st.ended and st.reset is None,
          "the upload never completed (ended=%s reset=%s): its body was not sent on the pooled "
          "connection it was lent" % (st.ended, st.reset))
    check_eq(st.status, 200, "upload status")
    doc = json.loads(bytes(st.body))
    check_eq(doc.get("sha256"), hashlib.sha256(body).hexdigest(), "digest the origin saw")
    for s in longs:
        check_eq(c.wait_stream(s, 30).status, 200, "long stream %d" % s)
    c.close()
