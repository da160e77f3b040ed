"""Request smuggling and ambiguous framing (SPEC §7, RFC 9112): each raw request in CASES must
be answered 400 with the connection closed, through both HTTP listeners of the real binary,
and must never reach the backend (for body-framing errors: never as a complete request).
Another request on another connection keeps working.

Adding a case is one line: (name, raw request, stage).  In the request, {P} is replaced by a
path unique to the case and {S} by the path of a request smuggled inside it; "stage" is "head"
when the error is visible in the request head (the backend must not see the request at all)
or "body" when it is in the chunked framing (the backend may have seen the head, never a
complete request).
"""

import re

from lib import check, check_eq, http, raw_exchange, status_of

H = b"Host: app.local\r\n"
SMUGGLED = b"GET {S} HTTP/1.1\r\nHost: app.local\r\n\r\n"

CASES = [
    # both content-length and transfer-encoding
    ("cl_and_te", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("te_and_cl", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n", "head"),
    # content-length ambiguity
    ("cl_duplicate_differing", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 41\r\n\r\nhello" + SMUGGLED, "head"),
    ("cl_list_differing", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 5, 41\r\n\r\nhello" + SMUGGLED, "head"),
    ("cl_plus_sign", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", "head"),
    ("cl_negative", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", "head"),
    ("cl_hex", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", "head"),
    ("cl_junk", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\nhello", "head"),
    ("cl_overflow", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\nhello", "head"),
    # transfer-encoding whose final coding is not chunked
    ("te_chunked_then_identity", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("te_gzip", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("te_xchunked", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("te_chunked_twice", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "head"),
    # transfer-encoding in HTTP/1.0
    ("te_in_http10", b"POST {P} HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    # whitespace between field name and colon
    ("space_before_colon_te", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\nContent-Length: 41\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("space_before_colon_cl", b"POST {P} HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\nhello", "head"),
    ("tab_before_colon", b"GET {P} HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n", "head"),
    ("space_in_field_name", b"GET {P} HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n", "head"),
    ("empty_field_name", b"GET {P} HTTP/1.1\r\n" + H + b": b\r\n\r\n", "head"),
    # obs-fold
    ("obs_fold", b"GET {P} HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", "head"),
    ("obs_fold_te", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, "head"),
    ("first_line_fold", b"GET {P} HTTP/1.1\r\n X-A: b\r\n" + H + b"\r\n", "head"),
    # bare CR
    ("bare_cr_in_value", b"GET {P} HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n", "head"),
    ("bare_cr_line_end", b"GET {P} HTTP/1.1\r\n" + H + b"X-A: b\r\rX-B: c\r\n\r\n", "head"),
    ("bare_cr_request_line", b"GET {P}\r HTTP/1.1\r\n" + H + b"\r\n", "head"),
    ("nul_in_value", b"GET {P} HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", "head"),
    # bare LF in chunked framing
    ("bare_lf_chunk_size", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "body"),
    ("bare_lf_after_data", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", "body"),
    ("bare_lf_last_chunk", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\n" + SMUGGLED, "body"),
    ("data_longer_than_size", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", "body"),
    # chunk size overflow / garbage
    ("chunk_size_overflow", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF5\r\nhello\r\n0\r\n\r\n", "body"),
    ("chunk_size_2pow64", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", "body"),
    ("chunk_size_not_hex", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5g\r\nhello\r\n0\r\n\r\n", "body"),
    ("chunk_size_negative", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "body"),
    ("chunk_size_empty", b"POST {P} HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", "body"),
    # Host
    ("missing_host_http11", b"GET {P} HTTP/1.1\r\nX-A: b\r\n\r\n", "head"),
    ("duplicate_host", b"GET {P} HTTP/1.1\r\n" + H + b"Host: other.local\r\n\r\n", "head"),
    ("invalid_host", b"GET {P} HTTP/1.1\r\nHost: app local\r\n\r\n", "head"),
]


def _run_case(env, idx, name, raw, stage):
    e = env.start()
    marker = "/smuggle-%s" % name
    smug = "/smuggled-%s" % name
    data = raw.replace(b"{P}", marker.encode()).replace(b"{S}", smug.encode())
    problems = []
    for listener in ("inbound", "outbound"):
        got, how = raw_exchange(e.port(listener), data, timeout=5)
        st = status_of(got)
        if st != 400:
            problems.append("%s: status %r, want 400 (response %r)" % (listener, st, got[:300]))
        if how not in ("eof", "reset"):
            problems.append("%s: connection not closed after the 400 (%s)" % (listener, how))
        if got.count(b"HTTP/1.") > 1:
            problems.append("%s: more than one response: %r" % (listener, got[:600]))
    log = env.be.log()
    for x in log:
        t = x["target"]
        if smug in t:
            problems.append("the smuggled request reached the backend: %r" % x)
        if marker in t and (stage == "head" or x["complete"]):
            problems.append("the bad request reached the backend%s: %r"
                            % (" complete" if stage == "body" else "", x))
    check(e.alive(), "ebb died")
    r = http(e.port("inbound"), "GET", "/hello")
    if r.status != 200:
        problems.append("a good request afterwards got %d" % r.status)
    check(not problems, "case %s:\n  %s" % (name, "\n  ".join(problems)))


def _make(idx, case):
    def t(env):
        _run_case(env, idx, *case)
    t.__name__ = "test_" + case[0]
    t.__qualname__ = t.__name__
    t.__module__ = __name__
    return t


for _i, _c in enumerate(CASES):
    globals()["test_" + _c[0]] = _make(_i, _c)


def test_good_requests_still_pass(env):
    """The control: well-formed neighbours of the cases above are proxied normally."""
    e = env.start()
    good = [
        b"POST /sha256 HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
        b"POST /sha256 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;ext=\"x\"\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nHost: app.local:80\r\nX-Tab:\tv\t\r\n\r\n",
        b"GET /hello HTTP/1.0\r\n\r\n",
    ]
    for raw in good:
        got, how = raw_exchange(e.port("inbound"), raw.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1),
                                timeout=5)
        check_eq(status_of(got), 200, "status for %r (response %r)" % (raw, got[:300]))
