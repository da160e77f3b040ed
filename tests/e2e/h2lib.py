"""h2lib.py - a raw HTTP/2 client for ebb's h2 tests: frames built by hand (so malformed ones
can be sent), HPACK from python3-hpack, every read bounded in time.

    c = H2Raw(port)                       # preface + SETTINGS sent
    sid = c.request("/hello")             # HEADERS (END_STREAM)
    st = c.wait_stream(sid)               # StreamResult: status, headers, body, trailers, reset
"""

import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def rst(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def goaway_payload(p):
    last, code = struct.unpack(">II", p[:8])
    return last & 0x7fffffff, code


class Frame:
    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload

    def __repr__(self):
        return "<Frame type=%d flags=%#x sid=%d len=%d>" % (self.type, self.flags, self.sid,
                                                           len(self.payload))


class StreamResult:
    def __init__(self):
        self.status = None
        self.headers = []
        self.trailers = []
        self.body = bytearray()
        self.ended = False
        self.reset = None          # RST_STREAM error code

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


class H2Raw:
    """One client connection.  auto_window: send WINDOW_UPDATE for every DATA received;
    auto_ping: ack PINGs; all frames received are kept in .frames (in order)."""

    def __init__(self, port, preface=True, settings_pairs=(), auto_window=True, auto_ping=True,
                 timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = bytearray()
        self.frames = []
        self.streams = {}
        self.next_sid = 1
        self.auto_window = auto_window
        self.auto_ping = auto_ping
        self.eof = False
        self.goaways = []           # (last_stream_id, error_code, time)
        self.pings = []             # opaque data of PINGs received (not acks)
        self._hblock = None
        self.send_window = 65535        # connection send window
        self.stream_windows = {}        # sid -> send window
        self.peer_initial = 65535       # peer's SETTINGS_INITIAL_WINDOW_SIZE
        if preface:
            self.send(PREFACE + settings(settings_pairs))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def headers_block(self, headers):
        return self.enc.encode(headers)

    def request(self, path, method="GET", headers=(), body=None, trailers=None, sid=None,
                authority="app.local", end=True):
        sid = sid or self.next_sid
        self.next_sid = max(self.next_sid, sid + 2)
        hdrs = [(":method", method), (":scheme", "http"), (":authority", authority),
                (":path", path)] + list(headers)
        last = body is None and trailers is None and end
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if last else 0), sid,
                        self.enc.encode(hdrs)))
        self.streams.setdefault(sid, StreamResult())
        if body is not None:
            self.send_data(sid, body, end=trailers is None and end)
        if trailers is not None:
            self.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, self.enc.encode(trailers)))
        return sid

    def send_data(self, sid, body, end=True):
        mv = memoryview(body)
        while len(mv) > 16384:
            self.send(frame(DATA, 0, sid, bytes(mv[:16384])))
            mv = mv[16384:]
        self.send(frame(DATA, END_STREAM if end else 0, sid, bytes(mv)))

    def send_data_fc(self, sid, body, end=True, timeout=30.0):
        """Sends body on sid within the peer's flow-control windows (reading frames while
        waiting for WINDOW_UPDATE)."""
        deadline = time.monotonic() + timeout
        mv = memoryview(body)
        self.stream_windows.setdefault(sid, self.peer_initial)
        while len(mv):
            n = min(16384, len(mv), self.send_window, self.stream_windows[sid])
            if n <= 0:
                self.read_frame(max(0.01, deadline - time.monotonic()))
                continue
            last = end and n == len(mv)
            self.send(frame(DATA, END_STREAM if last else 0, sid, bytes(mv[:n])))
            self.send_window -= n
            self.stream_windows[sid] -= n
            mv = mv[n:]
        if end and not len(body):
            self.send(frame(DATA, END_STREAM, sid, b""))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("h2 read timed out")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("h2 read timed out")
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            raise EOFError("connection closed")
        self.buf += d

    def read_frame(self, timeout=5.0):
        """The next frame (handled: stream state, acks, window updates), or raises
        EOFError / TimeoutError."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 9:
            self._fill(deadline)
        n = int.from_bytes(self.buf[:3], "big")
        while len(self.buf) < 9 + n:
            self._fill(deadline)
        ftype, flags, sid = struct.unpack(">BBI", bytes(self.buf[3:9]))
        sid &= 0x7fffffff
        payload = bytes(self.buf[9:9 + n])
        del self.buf[:9 + n]
        f = Frame(ftype, flags, sid, payload)
        self.frames.append(f)
        self._handle(f)
        return f

    def _handle(self, f):
        st = self.streams.setdefault(f.sid, StreamResult()) if f.sid else None
        if f.type == SETTINGS and not f.flags & ACK:
            for i in range(0, len(f.payload) - 5, 6):
                k, v = struct.unpack(">HI", f.payload[i:i + 6])
                if k == S_INITIAL_WINDOW_SIZE:
                    for s in self.stream_windows:
                        self.stream_windows[s] += v - self.peer_initial
                    self.peer_initial = v
            self.send(settings(ack=True))
        elif f.type == WINDOW_UPDATE:
            inc = struct.unpack(">I", f.payload[:4])[0] & 0x7fffffff
            if f.sid == 0:
                self.send_window += inc
            else:
                self.stream_windows[f.sid] = self.stream_windows.get(f.sid, self.peer_initial) + inc
        elif f.type == PING and not f.flags & ACK:
            self.pings.append(f.payload)
            if self.auto_ping:
                self.send(frame(PING, ACK, 0, f.payload))
        elif f.type == GOAWAY:
            last, code = goaway_payload(f.payload)
            self.goaways.append((last, code, time.monotonic()))
        elif f.type in (HEADERS, CONTINUATION):
            p = f.payload
            if f.type == HEADERS:
                if f.flags & PADDED:
                    pad = p[0]
                    p = p[1:len(p) - pad]
                if f.flags & PRIO:
                    p = p[5:]
                self._hblock = (f.sid, f.flags & END_STREAM, bytearray(p))
            else:
                self._hblock[2].extend(p)
            if f.flags & END_HEADERS:
                sid, end, block = self._hblock
                self._hblock = None
                hdrs = [(k.decode() if isinstance(k, bytes) else k,
                         v.decode() if isinstance(v, bytes) else v)
                        for k, v in self.dec.decode(bytes(block))]
                st = self.streams.setdefault(sid, StreamResult())
                status = dict(hdrs).get(":status")
                if st.status is None and status is not None:
                    if int(status) >= 200:
                        st.status = int(status)
                        st.headers = hdrs
                else:
                    st.trailers = hdrs
                if end:
                    st.ended = True
        elif f.type == DATA:
            p = f.payload
            if f.flags & PADDED:
                p = p[1:len(p) - p[0]]
            st.body += p
            if f.flags & END_STREAM:
                st.ended = True
            if self.auto_window and f.payload:
                self.send(window_update(0, len(f.payload)) +
                          (window_update(f.sid, len(f.payload)) if not st.ended else b""))
        elif f.type == RST_STREAM:
            st.reset = struct.unpack(">I", f.payload[:4])[0]

    def wait(self, pred, timeout=10.0):
        """Reads frames until pred(self) holds; returns True, or False on EOF."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            try:
                self.read_frame(max(0.01, deadline - time.monotonic()))
            except EOFError:
                return pred(self)
        return True

    def wait_stream(self, sid, timeout=10.0):
        self.wait(lambda c: c.streams.get(sid) is not None and
                  (c.streams[sid].ended or c.streams[sid].reset is not None), timeout)
        return self.streams[sid]

    def wait_eof(self, timeout=10.0):
        """Reads until EOF; returns True if the connection closed within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.read_frame(max(0.01, deadline - time.monotonic()))
        except EOFError:
            return True
        except TimeoutError:
            return False

    def first(self, ftype, sid=None):
        for f in self.frames:
            if f.type == ftype and (sid is None or f.sid == sid):
                return f
        return None
