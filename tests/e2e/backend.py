#!/usr/bin/python3
"""backend.py - the test origin server (and demo app) behind ebb.

Standard library only, one thread per connection, raw sockets so that it can
do what http.server cannot (stream huge bodies, reset connections, tunnel
WebSocket frames, half-close TCP).

    /usr/bin/python3 tests/e2e/backend.py --port 8080
    /usr/bin/python3 tests/e2e/backend.py --port 0 --tcp-echo-port 0 --ports-file /tmp/p.json

HTTP endpoints (any method unless noted; query parameters in brackets):
    /hello                      "hello\\n"
    /delay?ms=N                 answers after N ms
    /size?n=BYTES               body of BYTES pattern bytes (byte i = i % 256), content-length
    /chunked?n=BYTES&chunk=C    the same pattern, chunked in C-byte chunks
    /drip?n=K&interval_ms=M     chunked, K chunks of "drip\\n", one every M ms
    /status?code=N              answers with status N
    /echo                       echoes the request body (chunked in -> chunked out,
                                content-length in -> same content-length out)
    /headers                    JSON: method, target, version, headers, peer, body_bytes
    /hop                        a response carrying hop-by-hop headers
    /sha256[?delay_ms=N]        streams the body through sha256: {"sha256":..., "bytes":N}
    /continue                   JSON: the Expect header seen, body bytes and sha256
    /close-before-headers       reads the request, closes the socket (FIN)
    /rst-before-headers         reads the request, resets the socket (RST)
    /reset-after-headers        content-length 1000, sends 10 bytes, then RST
    /close?linger_ms=N          a normal keep-alive response; the socket is then
                                closed after N ms (an upstream idle-close)
    /ws                         WebSocket echo (RFC 6455): text/binary echoed, ping->pong
    /_log                       JSON list of the request heads seen (not logged itself);
                                /_log?clear=1 empties it
Every endpoint honours "Expect: 100-continue" by sending 100 Continue before it reads
the body; /continue reports what it saw.

TCP modes:
    --tcp-echo-port P     echo until EOF, then shutdown(SHUT_WR)
    --tcp-digest-port P   read until EOF, then answer "<sha256hex> <bytes>\\n" and shut down
"""

import argparse
import base64
import collections
import hashlib
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

RECV = 256 * 1024
MAX_HEAD = 256 * 1024
PATTERN = bytes(range(256)) * 4096          # 1 MiB; byte i of any body is i % 256
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

LOG = collections.deque(maxlen=2000)        # request heads seen, newest last
LOG_LOCK = threading.Lock()
LOG_SEQ = [0]


class BadRequest(Exception):
    pass


class Closed(Exception):
    """The handler has finished with (closed or reset) the connection."""


class Reader:
    """Buffered reads from a socket; EOFError when the peer closes early."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(RECV)
        if not data:
            raise EOFError
        self.buf += data

    def head(self):
        """Bytes up to and including the blank line; None on clean EOF."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                out = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return out
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("head too large")
            start = max(0, len(self.buf) - 3)
            try:
                self._fill()
            except EOFError:
                if self.buf:
                    raise
                return None

    def line(self, limit=8192):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return out
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def some(self, limit):
        """Up to limit bytes: what is buffered, else one recv."""
        if self.buf:
            n = min(limit, len(self.buf))
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        data = self.sock.recv(min(limit, RECV))
        if not data:
            raise EOFError
        return data


class Request:
    def __init__(self, method, target, version, headers, peer):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers                  # [(name, value)] as received
        self.peer = peer
        u = urllib.parse.urlsplit(target)
        self.path = u.path
        self.query = dict(urllib.parse.parse_qsl(u.query))
        self.body_read = False
        self.body_bytes = 0
        self.log = None

    def header(self, name):
        name = name.lower()
        vals = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(vals) if vals else None

    def qint(self, name, default):
        try:
            return int(self.query.get(name, default))
        except ValueError:
            return default

    @property
    def chunked(self):
        te = self.header("transfer-encoding")
        return bool(te) and te.lower().replace(" ", "").split(",")[-1] == "chunked"

    @property
    def keep_alive(self):
        conn = (self.header("connection") or "").lower()
        toks = [t.strip() for t in conn.split(",")]
        if self.version == "HTTP/1.0":
            return "keep-alive" in toks
        return "close" not in toks


def parse_head(raw, peer):
    lines = raw[:-4].split(b"\r\n")
    try:
        method, target, version = lines[0].decode("latin-1").split(" ")
    except ValueError:
        raise BadRequest("bad request line %r" % lines[0][:200])
    if not version.startswith("HTTP/1."):
        raise BadRequest("bad version")
    headers = []
    for ln in lines[1:]:
        s = ln.decode("latin-1")
        if ":" not in s or s[0] in " \t":
            raise BadRequest("bad header line %r" % s[:200])
        k, v = s.split(":", 1)
        if k != k.strip():
            raise BadRequest("whitespace in header name")
        headers.append((k, v.strip(" \t")))
    return Request(method, target, version, headers, peer)


def body_chunks(r, req):
    """Yields the request body as it arrives (content-length or chunked)."""
    if req.body_read:
        return
    req.body_read = True
    if req.chunked:
        while True:
            ln = r.line()
            if not ln.endswith(b"\r\n"):
                raise BadRequest("bare LF in chunk size line")
            size_s = ln[:-2].split(b";", 1)[0].strip()
            if not size_s or len(size_s) > 16:
                raise BadRequest("bad chunk size")
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest("bad chunk size")
            if size == 0:
                while True:                     # trailers
                    t = r.line()
                    if t == b"\r\n":
                        break
                    if not t.endswith(b"\r\n"):
                        raise BadRequest("bare LF in trailer")
                break
            left = size
            while left:
                d = r.some(left)
                left -= len(d)
                req.body_bytes += len(d)
                yield d
            if r.exact(2) != b"\r\n":
                raise BadRequest("chunk data not followed by CRLF")
    else:
        cl = req.header("content-length")
        left = int(cl) if cl and cl.strip().isdigit() else 0
        while left:
            d = r.some(left)
            left -= len(d)
            req.body_bytes += len(d)
            yield d
    if req.log is not None:
        req.log["complete"] = True
        req.log["body_bytes"] = req.body_bytes


def has_body(req):
    if req.chunked:
        return True
    cl = req.header("content-length")
    return bool(cl) and cl.strip() not in ("", "0")


def status_line(code):
    reasons = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
               204: "No Content", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
               413: "Payload Too Large", 417: "Expectation Failed", 500: "Internal Server Error",
               502: "Bad Gateway", 503: "Service Unavailable"}
    return "HTTP/1.1 %d %s\r\n" % (code, reasons.get(code, "Status"))


class Conn:
    def __init__(self, sock, peer, args):
        self.sock = sock
        self.r = Reader(sock)
        self.peer = peer
        self.args = args

    def send(self, data):
        self.sock.sendall(data)

    def respond(self, req, code, body=b"", headers=(), ctype="text/plain"):
        ka = req.keep_alive
        h = status_line(code)
        if ctype:
            h += "Content-Type: %s\r\n" % ctype
        for k, v in headers:
            h += "%s: %s\r\n" % (k, v)
        if code >= 200 and code not in (204, 304):
            h += "Content-Length: %d\r\n" % len(body)
        if not ka:
            h += "Connection: close\r\n"
        h += "\r\n"
        out = h.encode("latin-1")
        if req.method != "HEAD":
            out += body
        self.send(out)
        return ka

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        raise Closed

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        raise Closed

    def drain_body(self, req):
        for _ in body_chunks(self.r, req):
            pass

    def serve(self):
        while True:
            raw = self.r.head()
            if raw is None:
                return
            try:
                req = parse_head(raw, self.peer)
            except BadRequest as e:
                self.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n"
                          b"Connection: close\r\n\r\nbad request\n")
                sys.stderr.write("backend: 400 %s\n" % e)
                return
            if not req.path.startswith("/_log"):
                with LOG_LOCK:
                    LOG_SEQ[0] += 1
                    req.log = {"seq": LOG_SEQ[0], "method": req.method, "target": req.target,
                               "version": req.version, "headers": req.headers,
                               "peer": "%s:%d" % self.peer[:2], "complete": not has_body(req),
                               "body_bytes": 0, "time": time.time()}
                    LOG.append(req.log)
            exp = (req.header("expect") or "").lower()
            if exp == "100-continue" and has_body(req) and req.version == "HTTP/1.1":
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            name = req.path.strip("/").replace("-", "_").replace("/", "_") or "root"
            fn = getattr(self, "ep_" + name, None)
            try:
                if fn is None:
                    self.drain_body(req)
                    ka = self.respond(req, 404, b"no such endpoint: %s\n" % req.path.encode())
                else:
                    ka = fn(req)
                if ka:
                    self.drain_body(req)        # whatever the endpoint did not read
            except BadRequest as e:
                sys.stderr.write("backend: bad body: %s\n" % e)
                self.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n"
                          b"Connection: close\r\n\r\nbad request\n")
                return
            if not ka:
                return

    # -- endpoints: each returns True to keep the connection alive ---------------------

    def ep_root(self, req):
        return self.respond(req, 200, b"ebb test backend\n")

    def ep_hello(self, req):
        return self.respond(req, 200, b"hello\n")

    def ep_delay(self, req):
        self.drain_body(req)
        ms = req.qint("ms", 0)
        time.sleep(ms / 1000.0)
        return self.respond(req, 200, b"delayed %d\n" % ms)

    def ep_status(self, req):
        self.drain_body(req)
        code = req.qint("code", 200)
        return self.respond(req, code, b"status %d\n" % code)

    def ep_size(self, req):
        self.drain_body(req)
        n = req.qint("n", 0)
        ka = req.keep_alive
        h = status_line(200) + "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % n
        if not ka:
            h += "Connection: close\r\n"
        self.send((h + "\r\n").encode())
        if req.method == "HEAD":
            return ka
        mv = memoryview(PATTERN)
        left = n
        while left:
            k = min(left, len(PATTERN))
            self.sock.sendall(mv[:k])
            left -= k
        return ka

    def ep_chunked(self, req):
        self.drain_body(req)
        n = req.qint("n", 0)
        chunk = max(1, req.qint("chunk", 4096))
        ka = req.keep_alive
        h = status_line(200) + "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
        if not ka:
            h += "Connection: close\r\n"
        self.send((h + "\r\n").encode())
        pos = 0
        while pos < n:
            k = min(chunk, n - pos)
            off = pos % 256
            data = (PATTERN[off:off + k] if off + k <= len(PATTERN)
                    else bytes((pos + i) % 256 for i in range(k)))
            self.send(b"%x\r\n" % k + data + b"\r\n")
            pos += k
        self.send(b"0\r\n\r\n")
        return ka

    def ep_drip(self, req):
        self.drain_body(req)
        n = req.qint("n", 5)
        iv = req.qint("interval_ms", 100)
        ka = req.keep_alive
        h = status_line(200) + "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        if not ka:
            h += "Connection: close\r\n"
        self.send((h + "\r\n").encode())
        for i in range(n):
            if i:
                time.sleep(iv / 1000.0)
            self.send(b"5\r\ndrip\n\r\n")
        self.send(b"0\r\n\r\n")
        return ka

    def ep_echo(self, req):
        ka = req.keep_alive
        ctype = req.header("content-type") or "application/octet-stream"
        if req.chunked:
            h = status_line(200) + "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n" % ctype
            if not ka:
                h += "Connection: close\r\n"
            self.send((h + "\r\n").encode())
            for d in body_chunks(self.r, req):
                self.send(b"%x\r\n" % len(d) + d + b"\r\n")
            self.send(b"0\r\n\r\n")
            return ka
        cl = req.header("content-length")
        n = int(cl) if cl and cl.strip().isdigit() else 0
        h = status_line(200) + "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, n)
        if not ka:
            h += "Connection: close\r\n"
        self.send((h + "\r\n").encode())
        for d in body_chunks(self.r, req):
            self.send(d)
        return ka

    def ep_headers(self, req):
        self.drain_body(req)
        doc = {"method": req.method, "target": req.target, "version": req.version,
               "headers": req.headers, "peer": "%s:%d" % self.peer[:2],
               "body_bytes": req.body_bytes}
        return self.respond(req, 200, json.dumps(doc).encode() + b"\n", ctype="application/json")

    def ep_hop(self, req):
        self.drain_body(req)
        hdrs = [("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=30"),
                ("Proxy-Connection", "keep-alive"), ("X-End-To-End", "1")]
        return self.respond(req, 200, b"hop\n", headers=hdrs)

    def ep_sha256(self, req):
        d = req.qint("delay_ms", 0)
        if d:
            time.sleep(d / 1000.0)
        h = hashlib.sha256()
        for chunk in body_chunks(self.r, req):
            h.update(chunk)
        doc = {"sha256": h.hexdigest(), "bytes": req.body_bytes}
        return self.respond(req, 200, json.dumps(doc).encode() + b"\n", ctype="application/json")

    def ep_continue(self, req):
        h = hashlib.sha256()
        for chunk in body_chunks(self.r, req):
            h.update(chunk)
        doc = {"expect": req.header("expect"), "bytes": req.body_bytes, "sha256": h.hexdigest()}
        return self.respond(req, 200, json.dumps(doc).encode() + b"\n", ctype="application/json")

    def ep_close_before_headers(self, req):
        self.drain_body(req)
        self.close()

    def ep_rst_before_headers(self, req):
        self.drain_body(req)
        self.reset()

    def ep_reset_after_headers(self, req):
        self.drain_body(req)
        self.send(status_line(200).encode() + b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: 1000\r\n\r\n" + b"0123456789")
        time.sleep(req.qint("delay_ms", 100) / 1000.0)
        self.reset()

    def ep_close(self, req):
        self.drain_body(req)
        ms = req.qint("linger_ms", 100)
        h = status_line(200) + "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nclose\n"
        self.send(h.encode())
        # an idle keep-alive connection closed by the server, as an idle timeout does
        self.sock.settimeout(ms / 1000.0)
        try:
            self.r.some(1)
        except (socket.timeout, EOFError, OSError):
            pass
        self.close()

    def ep_ws(self, req):
        key = req.header("sec-websocket-key")
        up = (req.header("upgrade") or "").lower()
        if not key or up != "websocket":
            return self.respond(req, 400, b"not a websocket handshake\n")
        accept = base64.b64encode(hashlib.sha1(key.strip().encode() + WS_GUID).digest()).decode()
        self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        r = self.r
        while True:
            try:
                b0, b1 = r.exact(2)
            except EOFError:
                self.close()
            opcode = b0 & 0x0F
            masked = b1 & 0x80
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", r.exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", r.exact(8))[0]
            mask = r.exact(4) if masked else b"\0\0\0\0"
            payload = bytearray(r.exact(n))
            if masked:
                m = (mask * (n // 4 + 1))[:n]
                payload = bytes(a ^ b for a, b in zip(payload, m)) if n < 4096 else \
                    (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
            payload = bytes(payload)
            if opcode == 0x9:                               # ping -> pong
                self.send(ws_frame(0xA, payload))
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:                             # close -> close, then FIN
                self.send(ws_frame(0x8, payload[:125]))
                self.close()
            else:                                           # text, binary, continuation
                self.send(ws_frame(opcode, payload, fin=bool(b0 & 0x80)))

    def ep__log(self, req):
        self.drain_body(req)
        with LOG_LOCK:
            if req.query.get("clear"):
                LOG.clear()
            body = json.dumps(list(LOG)).encode() + b"\n"
        return self.respond(req, 200, body, ctype="application/json")


def ws_frame(opcode, payload, fin=True, mask=None):
    """One WebSocket frame; masked when mask (4 bytes) is given."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        h = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        m = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
        return h + mask + payload
    return h + payload


class HTTPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(self.request, self.client_address, self.server.args)
        try:
            c.serve()
        except (Closed, EOFError, ConnectionError, BadRequest, socket.timeout, OSError):
            return
        except Exception as e:                              # never die on input
            sys.stderr.write("backend: error %r\n" % e)
        # staged close so that unread request bytes do not turn our FIN into an RST
        s = self.request
        try:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(0.5)
            for _ in range(64):
                if not s.recv(RECV):
                    break
        except OSError:
            pass


class TCPEchoHandler(socketserver.BaseRequestHandler):
    """Echo until EOF, then shutdown(SHUT_WR): a half-close relayed both ways."""

    def handle(self):
        s = self.request
        try:
            while True:
                d = s.recv(RECV)
                if not d:
                    break
                s.sendall(d)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(30)
            while s.recv(RECV):
                pass
        except OSError:
            pass


class TCPDigestHandler(socketserver.BaseRequestHandler):
    """Read until EOF, answer "<sha256> <bytes>\\n", shut down: works only if the
    client's FIN reaches us while our direction stays open."""

    def handle(self):
        s = self.request
        h = hashlib.sha256()
        n = 0
        try:
            while True:
                d = s.recv(RECV)
                if not d:
                    break
                h.update(d)
                n += len(d)
            s.sendall(b"%s %d\n" % (h.hexdigest().encode(), n))
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(args):
    servers = {}
    if args.port is not None:
        servers["http"] = Server((args.host, args.port), HTTPHandler)
    if args.tcp_echo_port is not None:
        servers["tcp_echo"] = Server((args.host, args.tcp_echo_port), TCPEchoHandler)
    if args.tcp_digest_port is not None:
        servers["tcp_digest"] = Server((args.host, args.tcp_digest_port), TCPDigestHandler)
    if not servers:
        sys.exit("backend: nothing to serve (give --port and/or --tcp-echo-port)")
    ports = {}
    for name, srv in servers.items():
        srv.args = args
        ports[name] = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5},
                         daemon=True).start()
        sys.stderr.write("backend: %s on %s:%d\n" % (name, args.host, ports[name]))
    sys.stderr.flush()
    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.rename(tmp, args.ports_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    for srv in servers.values():
        srv.server_close()


def main():
    p = argparse.ArgumentParser(description="ebb test origin server / demo app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="HTTP port (0 = any)")
    p.add_argument("--tcp-echo-port", type=int, default=None)
    p.add_argument("--tcp-digest-port", type=int, default=None)
    p.add_argument("--ports-file", help="write the bound ports here as JSON once listening")
    args = p.parse_args()
    if args.port is None and args.tcp_echo_port is None and args.tcp_digest_port is None:
        args.port = 8080
    serve(args)


if __name__ == "__main__":
    main()
