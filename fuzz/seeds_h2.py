#!/usr/bin/python3
"""fuzz/seeds_h2.py - writes the hand-made seeds of fuzz_h2 (fuzz/corpus/h2/gen_*) and
fuzz_h2c_upstream (fuzz/corpus/h2c_upstream/*) with python3-hyperframe and python3-hpack.

Each seed is byte 0 (the driver's flags), byte 1 (the slice size), then the peer's frames;
see the drivers' header comments for the flags.  Run from the repository root:
    /usr/bin/python3 fuzz/seeds_h2.py
"""
import os

from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame,
                              PushPromiseFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)


def ser(*frames):
    return b"".join(f.serialize() for f in frames)


def headers(enc, sid, fields, flags=("END_HEADERS",)):
    f = HeadersFrame(sid, data=enc.encode(fields))
    f.flags = set(flags)
    return f


def data(sid, payload, end=False):
    f = DataFrame(sid, data=payload)
    if end:
        f.flags.add("END_STREAM")
    return f


def write(dirname, name, flags, slice_, body):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, name), "wb") as fh:
        fh.write(bytes([flags, slice_]) + body)


def downstream():
    d = "fuzz/corpus/h2"
    req = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a")]
    post = [(":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "a"),
            ("content-length", "5")]
    # a GET per upstream answer kind (flags bits 2-4), preface prepended (bit 0)
    for ans in range(8):
        e = Encoder()
        write(d, "gen_get_answer%d" % ans, 1 | ans << 2, 0,
              ser(SettingsFrame(0), headers(e, 1, req, ("END_HEADERS", "END_STREAM"))))
    # a POST with a body, trailers; the big answer with WINDOW_UPDATEs to read it all
    e = Encoder()
    write(d, "gen_post_big", 1 | 7 << 2, 0,
          ser(SettingsFrame(0), headers(e, 1, post), data(1, b"hello"),
              headers(e, 1, [("x-t", "1")], ("END_HEADERS", "END_STREAM")),
              WindowUpdateFrame(0, window_increment=1 << 20),
              WindowUpdateFrame(1, window_increment=1 << 20)))
    # three streams on the small server (2 streams), one reset, then drain (bit 5)
    e = Encoder()
    write(d, "gen_three_drain", 1 | 2 | 0x20, 9,
          ser(SettingsFrame(0), headers(e, 1, req, ("END_HEADERS", "END_STREAM")),
              headers(e, 3, req, ("END_HEADERS", "END_STREAM")),
              headers(e, 5, req, ("END_HEADERS", "END_STREAM")),
              RstStreamFrame(3, error_code=8), PingFrame(0, opaque_data=b"12345678")))
    # a header block split into CONTINUATION frames, 7 bytes per round
    e = Encoder()
    blk = e.encode(req + [("x-long", "v" * 300)])
    h = HeadersFrame(1, data=blk[:100])
    h.flags = {"END_STREAM"}
    c = ContinuationFrame(1, data=blk[100:])
    c.flags = {"END_HEADERS"}
    write(d, "gen_continuation", 1, 7, ser(SettingsFrame(0), h, c))
    # without the preface (bit 0 clear) the bytes are HTTP/1.1 for the h1 codec: each
    # exchange's state is allocated at its request and freed at its end, so keep-alive
    # sequences, local answers between exchanges and the drain's idle close are the seeds
    get = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"
    h1 = {
        "pipelined": get * 3,
        "post_then_get": b"POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello" + get,
        "chunked_trailers": b"POST /g HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n" + get,
        "expect_continue": b"PUT /e HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n"
                           b"content-length: 3\r\n\r\nabc" + get,
        "bad_then_get": b"GET / HTTP/1.1\r\nho st: a\r\n\r\n" + get,
        "http10_head": b"HEAD / HTTP/1.0\r\n\r\n" + get,
        "upgrade": b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
                   b"\r\ntunnel bytes",
        "close": b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n" + get,
    }
    for i, (name, body) in enumerate(sorted(h1.items())):
        ans = 6 if name == "upgrade" else i % 6
        write(d, "gen_h1_" + name, ans << 2, 0, body)
        write(d, "gen_h1_%s_drain" % name, 2 | 0x20 | ans << 2, 11, body)


def upstream():
    d = "fuzz/corpus/h2c_upstream"
    ok = [(":status", "200"), ("content-length", "2")]
    # bit 3: the driver prepends the server's SETTINGS; the ACK of ebb's follows here
    ack = SettingsFrame(0)
    ack.flags = {"ACK"}

    def seed(name, flags, slice_, *frames):
        write(d, name, flags, slice_, ser(*frames))

    e = Encoder()
    seed("get_200", 8 | 0x10, 0, ack, headers(e, 1, ok), data(1, b"ok", True))
    e = Encoder()
    seed("head_200_sliced", 1 | 8, 5, ack, headers(e, 1, ok, ("END_HEADERS", "END_STREAM")))
    e = Encoder()
    seed("post_100_then_200", 2 | 8, 0, ack, headers(e, 1, [(":status", "100")]),
         headers(e, 1, ok), data(1, b"o"), data(1, b"k", True))
    e = Encoder()
    seed("grpc_trailers", 3 | 8, 0, ack,
         headers(e, 1, [(":status", "200"), ("content-type", "application/grpc")]),
         data(1, b"\0\0\0\0\x02hi"),
         headers(e, 1, [("grpc-status", "0"), ("grpc-message", "ok")],
                 ("END_HEADERS", "END_STREAM")))
    seed("rst_refused", 8, 0, ack, RstStreamFrame(1, error_code=7))
    seed("goaway_0", 8 | 0x10, 0, ack, GoAwayFrame(0, last_stream_id=0, error_code=0))
    e = Encoder()
    seed("two_streams_h2_client", 4 | 8, 0, ack,
         headers(e, 3, ok), headers(e, 1, ok), data(3, b"ok", True), data(1, b"ok", True))
    e = Encoder()
    seed("pipelined_keepalive", 0x40 | 8, 0, ack, headers(e, 1, ok), data(1, b"ok", True),
         headers(e, 3, ok), data(3, b"ok", True))
    e = Encoder()
    big = [data(1, b"x" * 3000) for _ in range(3)] + [data(1, b"x" * 3, True)]
    seed("big_body_small_server", 0x20 | 8, 0, ack,
         headers(e, 1, [(":status", "200"), ("content-length", "9003")]), *big)
    e = Encoder()
    seed("ping_window_settings", 8, 0, ack, PingFrame(0, opaque_data=b"abcdefgh"),
         WindowUpdateFrame(0, window_increment=1000), SettingsFrame(0, settings={3: 1, 4: 1 << 20}),
         headers(e, 1, ok), data(1, b"ok", True))
    e = Encoder()
    blk = e.encode(ok + [("x-long", "v" * 200)])
    h = HeadersFrame(1, data=blk[:50])
    c = ContinuationFrame(1, data=blk[50:])
    c.flags = {"END_HEADERS", }
    seed("continuation", 8, 0, ack, h, c, data(1, b"ok", True))
    e = Encoder()
    seed("push_promise", 8, 0, ack, PushPromiseFrame(1, promised_stream_id=2,
                                                   data=e.encode([(":method", "GET"),
                                                                  (":path", "/p")])))
    e = Encoder()
    seed("bad_status", 8, 0, ack, headers(e, 1, [(":status", "2x0")]), data(1, b"", True))
    seed("no_settings_garbage", 0x10, 3, data(1, b"HTTP/1.1 200 OK\r\n\r\n"))


if __name__ == "__main__":
    downstream()
    upstream()
