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

import array
import fcntl
import socket
import termios
import threading
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
    # one RST_STREAM sent per reset stream (each was counted twice, as decided and as sent)
    check_eq(e.stat("http2.tx_reset"), 2, "http2.tx_reset")


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


class _UploadRefuser:
    """A one-shot origin for the early-answer test: its socket buffers are small (fixed
    SO_RCVBUF/SO_SNDBUF, so ebb's writes back up as soon as it stops reading); it reads some
    of the request body, answers 413 with a body of `answer_len` bytes, waits until the whole
    answer left its send queue (it is then in ebb's socket), and closes with the rest of the
    request unread: an RST.  .done is set then; .drained says whether the answer was all
    sent before the RST."""

    def __init__(self, answer_len, read_first=256 * 1024):
        self.answer_len, self.read_first = answer_len, read_first
        self.done = threading.Event()
        self.drained = None
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        s, _ = self.ls.accept()
        try:
            s.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf or len(buf) < self.read_first:
                d = s.recv(65536)
                if not d:
                    return
                buf += d
            s.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % self.answer_len + b"a" * self.answer_len)
            deadline = time.monotonic() + 5
            outq = array.array("i", [1])
            while time.monotonic() < deadline:
                fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, outq, True)
                if outq[0] == 0:
                    break
                time.sleep(0.005)
            self.drained = outq[0] == 0
            _rst(s)
        except OSError:
            pass
        finally:
            self.done.set()


@timeout(60)
def test_h2_early_response_then_upstream_close_during_upload(env):
    """An upstream that answers before reading the whole request body and closes (a 413, a
    401) made ebb's next write fail; ebb then took the upstream for gone (u->eof): it stopped
    reading it, and the part of the answer still in the socket was lost (here: the 413's
    headers went out, then RST_STREAM instead of the rest of its body; had the head not been
    read yet, a 503).  Now a failed write only drops the request bytes and the whole answer
    is forwarded.  The client grants no response window until the upstream has closed, so
    ebb's buffers are full and the answer's tail is still in the socket when the write fails
    (limits keep ebb's upstream buffer at 8 KiB)."""
    answer_len = 160 * 1024
    up = _UploadRefuser(answer_len)
    e = env.ebb(env.config(app_endpoint=up.addr,
                           limits={"buffer_size": 4096, "max_request_headers": 4096}))
    body = b"z" * (16 * 1024 * 1024)
    c = H2Raw(e.port("inbound"), settings_pairs=[(h2lib.S_INITIAL_WINDOW_SIZE, 0)], timeout=5)
    sid = c.request("/upload", method="POST", headers=[("content-length", str(len(body)))],
                    end=False)
    st = c.streams[sid]
    c.stream_windows.setdefault(sid, c.peer_initial)
    mv = memoryview(body)
    deadline = time.monotonic() + 20
    until = None                                     # keep sending this long after the RST
    while st.reset is None and not st.ended and time.monotonic() < deadline:
        if up.done.is_set() and until is None:
            until = time.monotonic() + 0.5
        if until is not None and time.monotonic() > until:
            break
        n = min(16384, len(mv), c.send_window, c.stream_windows[sid])
        if n <= 0:
            try:
                c.read_frame(0.05)
            except TimeoutError:
                pass
            continue
        try:
            c.send(h2lib.frame(h2lib.DATA, 0, sid, bytes(mv[:n])))
        except OSError:
            break
        c.send_window -= n
        c.stream_windows[sid] -= n
        mv = mv[n:]
    check(up.done.is_set(), "the upstream never answered")
    check(up.drained, "the upstream's answer did not all leave its socket before the RST")
    c.send(h2lib.window_update(sid, 1 << 20))        # now let the answer through
    st = c.wait_stream(sid, timeout=10)
    c.close()
    check_eq((st.status, st.ended, st.reset, len(st.body)), (413, True, None, answer_len),
             "early answer (status, ended, reset, body length)")
