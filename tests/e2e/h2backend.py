#!/usr/bin/python3
"""h2backend.py - an h2c (prior knowledge) test origin for ebb's HTTP/2 tests, on python3-h2.

    h2backend.py --port 0 --ports-file F

Endpoints (query parameters in brackets):
  /hello                      200 "hello\\n"
  /delay [ms]                 200 after ms milliseconds
  /size [n]                   n bytes of the pattern (byte i = i % 256), honouring flow control
  /drip [n, interval_ms]      n chunks of "drip\\n", one per interval
  /echo                       the request body streamed back (same content-type)
  /grpc                       gRPC-style: content-type application/grpc, the body echoed, then
                              trailers grpc-status: 0, grpc-message: ok, x-request-trailers: the
                              names of the request trailers received
  /headers                    the request headers as JSON
  /status [code]              that status
  /trailers-only              200 with grpc-status 5 in one HEADERS frame that ends the stream
  /goaway                     200, then GOAWAY (last stream = this one) and close after 200 ms
  /early-no-window [ms]       200 "early\n" after ms, whatever of the request body came; that body is
                              never acknowledged (no WINDOW_UPDATE for the stream or the connection)
  /ebb.drill.Load/*           (`ebb drill`'s gRPC calls; test_drill.py runs this as a fake proxy)
                              --drill-answer unavailable: trailers-only grpc-status 14;
                              no-status: one empty message and the end, without grpc-status
Every stream is served by its own task, so streams are concurrent.
"""

import argparse
import asyncio
import json
import os
import sys
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PATTERN = bytes(range(256)) * 256


class Stream:
    def __init__(self, sid, headers):
        self.sid = sid
        self.headers = headers
        self.body = asyncio.Queue()        # bytes chunks, None at the end
        self.trailers = []
        self.ended = False
        # /early-no-window: the request body is never acknowledged (no WINDOW_UPDATE)
        self.no_ack = dict(headers).get(":path", "").startswith("/early-no-window")


class Conn(asyncio.Protocol):
    def __init__(self):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=True)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        self.window_waiters = {}
        self.transport = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
        self.h2.initiate_connection()
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def connection_lost(self, exc):
        self.closed = True
        for f in self.window_waiters.values():
            if not f.done():
                f.set_result(None)

    def data_received(self, data):
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                st = Stream(ev.stream_id, ev.headers)
                self.streams[ev.stream_id] = st
                asyncio.ensure_future(self.serve(st))
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st:
                    st.body.put_nowait(ev.data)
                if not (st and st.no_ack):
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                st = self.streams.get(ev.stream_id)
                if st:
                    st.trailers = ev.headers
            elif isinstance(ev, h2.events.StreamEnded):
                st = self.streams.get(ev.stream_id)
                if st:
                    st.ended = True
                    st.body.put_nowait(None)
            elif isinstance(ev, h2.events.StreamReset):
                st = self.streams.pop(ev.stream_id, None)
                if st:
                    st.body.put_nowait(None)
                self.wake(ev.stream_id)
            elif isinstance(ev, h2.events.WindowUpdated):
                if ev.stream_id == 0:
                    for sid in list(self.window_waiters):
                        self.wake(sid)
                else:
                    self.wake(ev.stream_id)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                for sid in list(self.window_waiters):
                    self.wake(sid)
        self.flush()

    def wake(self, sid):
        f = self.window_waiters.pop(sid, None)
        if f and not f.done():
            f.set_result(None)

    async def send_body(self, sid, data, end=True):
        mv = memoryview(data)
        while mv:
            if self.closed:
                return
            try:
                win = self.h2.local_flow_control_window(sid)
            except (h2.exceptions.StreamClosedError, KeyError, h2.exceptions.ProtocolError):
                return
            n = min(win, self.h2.max_outbound_frame_size, len(mv))
            if n <= 0:
                f = asyncio.get_event_loop().create_future()
                self.window_waiters[sid] = f
                await f
                continue
            try:
                self.h2.send_data(sid, bytes(mv[:n]))
            except h2.exceptions.StreamClosedError:
                return
            mv = mv[n:]
            self.flush()
        if end:
            self.end(sid)

    def end(self, sid):
        try:
            self.h2.end_stream(sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return
        self.flush()

    def respond(self, sid, status, headers=(), end=False):
        try:
            self.h2.send_headers(sid, [(":status", str(status))] + list(headers), end_stream=end)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        self.flush()
        return True

    async def drain(self, st):
        n = 0
        while True:
            d = await st.body.get()
            if d is None:
                return n
            n += len(d)

    async def serve(self, st):
        hd = dict(st.headers)
        url = urllib.parse.urlsplit(hd.get(":path", "/"))
        q = dict(urllib.parse.parse_qsl(url.query))
        name = url.path.strip("/") or "root"
        sid = st.sid
        try:
            if name.startswith("ebb.drill.Load/"):
                await self.drain(st)
                if DRILL_ANSWER == "unavailable":
                    self.respond(sid, 200, [("content-type", "application/grpc"),
                                            ("grpc-status", "14"), ("grpc-message", "fake")],
                                 end=True)
                else:
                    self.respond(sid, 200, [("content-type", "application/grpc")])
                    await self.send_body(sid, b"\0\0\0\0\0")
            elif name == "hello":
                await self.drain(st)
                self.respond(sid, 200, [("content-type", "text/plain"), ("content-length", "6")])
                await self.send_body(sid, b"hello\n")
            elif name == "delay":
                await self.drain(st)
                ms = int(q.get("ms", "0"))
                await asyncio.sleep(ms / 1000.0)
                body = b"delayed %d\n" % ms
                self.respond(sid, 200, [("content-type", "text/plain")])
                await self.send_body(sid, body)
            elif name == "early-no-window":
                # the whole answer after ms, without reading the request body (RFC 9113 §8.1),
                # whose window is never opened again
                await asyncio.sleep(int(q.get("ms", "0")) / 1000.0)
                self.respond(sid, 200, [("content-type", "text/plain")])
                await self.send_body(sid, b"early\n")
            elif name == "size":
                await self.drain(st)
                n = int(q.get("n", "0"))
                self.respond(sid, 200, [("content-type", "application/octet-stream"),
                                        ("content-length", str(n))])
                left = n
                while left > 0:
                    k = min(left, len(PATTERN))
                    await self.send_body(sid, PATTERN[:k], end=False)
                    left -= k
                self.end(sid)
            elif name == "drip":
                await self.drain(st)
                n = int(q.get("n", "5"))
                iv = int(q.get("interval_ms", "100"))
                self.respond(sid, 200, [("content-type", "text/plain")])
                for i in range(n):
                    if i:
                        await asyncio.sleep(iv / 1000.0)
                    await self.send_body(sid, b"drip\n", end=False)
                self.end(sid)
            elif name in ("echo", "grpc"):
                ctype = hd.get("content-type", "application/octet-stream")
                self.respond(sid, 200, [("content-type", ctype)])
                while True:
                    d = await st.body.get()
                    if d is None:
                        break
                    await self.send_body(sid, d, end=False)
                if name == "grpc":
                    names = ",".join(k for k, _ in st.trailers)
                    try:
                        self.h2.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "ok"),
                                                   ("x-request-trailers", names or "-")],
                                             end_stream=True)
                    except h2.exceptions.StreamClosedError:
                        pass
                    self.flush()
                else:
                    self.end(sid)
            elif name == "headers":
                n = await self.drain(st)
                doc = {"headers": st.headers, "body_bytes": n,
                       "trailers": st.trailers}
                body = json.dumps(doc).encode() + b"\n"
                self.respond(sid, 200, [("content-type", "application/json"),
                                        ("content-length", str(len(body)))])
                await self.send_body(sid, body)
            elif name == "status":
                await self.drain(st)
                code = int(q.get("code", "200"))
                self.respond(sid, code, [("content-length", "0")], end=True)
            elif name == "trailers-only":
                # a gRPC error as servers send it: one HEADERS frame with END_STREAM
                await self.drain(st)
                self.respond(sid, 200, [("content-type", "application/grpc"),
                                        ("grpc-status", "5"), ("grpc-message", "no such thing")],
                             end=True)
            elif name == "goaway":
                await self.drain(st)
                self.respond(sid, 200, [("content-length", "3")])
                await self.send_body(sid, b"ok\n")
                self.h2.close_connection(last_stream_id=sid)
                self.flush()
                await asyncio.sleep(0.2)
                self.transport.close()
            else:
                await self.drain(st)
                body = b"no such endpoint\n"
                self.respond(sid, 404, [("content-length", str(len(body)))])
                await self.send_body(sid, body)
        except Exception as e:                       # keep serving other streams
            sys.stderr.write("h2backend: stream %d: %r\n" % (sid, e))
        finally:
            self.streams.pop(sid, None)


DRILL_ANSWER = "unavailable"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ports-file")
    ap.add_argument("--drill-answer", choices=("unavailable", "no-status"), default="unavailable")
    a = ap.parse_args()
    global DRILL_ANSWER
    DRILL_ANSWER = a.drill_answer
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    srv = loop.run_until_complete(loop.create_server(Conn, a.host, a.port, backlog=1024))
    port = srv.sockets[0].getsockname()[1]
    if a.ports_file:
        tmp = a.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"h2": port}, f)
        os.rename(tmp, a.ports_file)
    sys.stderr.write("h2backend on %d\n" % port)
    loop.run_forever()


if __name__ == "__main__":
    main()
