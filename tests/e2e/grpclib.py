"""grpclib.py - a small gRPC service and client helpers for the gRPC interop tests
(test_grpc.py, the gRPC drain tests), written with Debian's python3-grpcio on both ends.

No code generation: the service is registered with grpc's generic handlers and every message
is raw bytes (requests that carry parameters are JSON).  The gRPC health-checking service
(grpc.health.v1.Health, Check and Watch) is implemented here with its two protobuf messages
encoded by hand, because Debian 12 does not package grpcio-health-checking.

The server runs in the test's own process (a thread pool), so a test reads what the server
saw (deadlines, cancellations, concurrency) straight from GrpcServer.events.
"""

import hashlib
import json
import threading
import time

from lib import Skip, fail

try:
    import grpc
except ImportError:                     # pragma: no cover - depends on the machine
    grpc = None

SVC = "/ebb.test.Interop/"
HEALTH = "/grpc.health.v1.Health/"

# health.proto: HealthCheckRequest { string service = 1; }
#               HealthCheckResponse { ServingStatus status = 1; }  SERVING 1, NOT_SERVING 2
SERVING, NOT_SERVING, SERVICE_UNKNOWN = 1, 2, 3


def need_grpc():
    if grpc is None:
        raise Skip("python3-grpcio not installed (scripts/deps.sh test installs it)")


def health_request(service):
    b = service.encode()
    return (b"\x0a" + _varint(len(b)) + b) if b else b""


def health_status(msg):
    """ServingStatus of a HealthCheckResponse (0 = UNKNOWN when the field is absent)."""
    if not msg:
        return 0
    if msg[0] != 0x08:
        fail("unexpected HealthCheckResponse bytes %r" % msg[:20])
    return msg[1]


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _health_service_of(req):
    if not req:
        return ""
    if req[0] != 0x0A:
        return None
    n, i, shift = 0, 1, 0
    while True:
        b = req[i]
        n |= (b & 0x7F) << shift
        i += 1
        shift += 7
        if not b & 0x80:
            break
    return req[i:i + n].decode()


def pattern(n, seed=0):
    """n bytes, not compressible by much (a hash chain), reproducible from seed."""
    out = bytearray()
    h = hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        out += h
        h = hashlib.sha256(h).digest()
    return bytes(out[:n])


class Events:
    """What the server saw, keyed by the x-call-id metadata of a call."""

    def __init__(self):
        self.cv = threading.Condition()
        self.items = {}                  # call id -> dict
        self.active = 0                  # Hold calls running now
        self.max_active = 0

    def put(self, cid, **kv):
        with self.cv:
            self.items.setdefault(cid, {}).update(kv)
            self.cv.notify_all()

    def get(self, cid):
        with self.cv:
            return dict(self.items.get(cid, {}))

    def wait(self, cid, key, timeout=20):
        """The value of key for call cid once the server has recorded it (fails on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while key not in self.items.get(cid, {}):
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("the server never recorded %r for call %r (saw %r)"
                         % (key, cid, self.items.get(cid)))
                self.cv.wait(left)
            return self.items[cid][key]


def _cid(context):
    for k, v in context.invocation_metadata():
        if k == "x-call-id":
            return v
    return "-"


class Service:
    """The handlers.  Each one is small and says what it is for."""

    def __init__(self, events):
        self.ev = events
        self.health = {"": SERVING, "ebb.test.Interop": SERVING}
        self.health_cv = threading.Condition()
        self.release = threading.Event()     # ends the Long streams early when set

    # -- unary --
    def echo(self, req, context):
        md = {k: v for k, v in context.invocation_metadata()}
        self.ev.put(_cid(context), metadata=md, time_remaining=context.time_remaining(),
                    size=len(req))
        return req

    def sized(self, req, context):
        """Answers with a message of the size asked for (JSON {"size": N, "seed": S})."""
        p = json.loads(req)
        return pattern(p["size"], p.get("seed", 0))

    def fail(self, req, context):
        """Ends with the status asked for: JSON {"code": name, "message": str, "headers": bool}.
        Without "headers" no header or message was sent before: a trailers-only answer."""
        p = json.loads(req)
        if p.get("headers"):
            context.send_initial_metadata((("x-initial", "yes"),))
        context.set_trailing_metadata((("x-detail-bin", bytes(range(256))),
                                       ("x-detail", "text value")))
        code = getattr(grpc.StatusCode, p["code"])
        if code == grpc.StatusCode.OK:
            context.set_details(p["message"])
            return b"ok"
        context.abort(code, p["message"])

    def wait_cancel(self, req, context):
        """Waits (bounded) until the client cancels or the deadline passes; records both."""
        cid = _cid(context)
        gone = threading.Event()
        context.add_callback(gone.set)
        self.ev.put(cid, time_remaining=context.time_remaining(), started=time.monotonic())
        gone.wait(30)
        self.ev.put(cid, cancelled=not context.is_active(), ended=time.monotonic())
        return b""

    def hold(self, req, context):
        """Counts concurrent calls (the peak is Events.max_active); waits a bounded while for
        `limit` of them to run together so the peak shows what the path lets through."""
        limit = json.loads(req)["limit"]
        ev = self.ev
        with ev.cv:
            ev.active += 1
            ev.max_active = max(ev.max_active, ev.active)
            ev.cv.notify_all()
            ev.cv.wait_for(lambda: ev.active >= limit, 1.0)
            ev.active -= 1
        return req

    # -- streaming --
    def server_stream(self, req, context):
        """JSON {"n", "size", "abort_after", "interval_ms"}: n messages of size bytes (message i
        is pattern(size, i)), an abort with INTERNAL after abort_after of them, an optional
        pause between messages (the drain tests' long streams)."""
        p = json.loads(req)
        cid = _cid(context)
        for i in range(p["n"]):
            if p.get("abort_after") is not None and i == p["abort_after"]:
                context.abort(grpc.StatusCode.INTERNAL, "aborted after %d messages" % i)
            if i and p.get("interval_ms") and not self.release.is_set():
                self.release.wait(p["interval_ms"] / 1000)
            yield pattern(p["size"], i)
            self.ev.put(cid, sent=i + 1)
        self.ev.put(cid, done=True)

    def stream_then_wait(self, req, context):
        """One message, then waits until the client cancels (records it)."""
        cid = _cid(context)
        gone = threading.Event()
        finished = []

        # grpc stops pulling a cancelled call's messages, so the generator may never resume:
        # the termination callback records it.  It runs before the handler finished only
        # when the call ended from the client's side.
        def on_end():
            self.ev.put(cid, cancelled=not finished)
            gone.set()
        context.add_callback(on_end)
        yield b"first"
        gone.wait(30)
        finished.append(True)

    def client_stream(self, it, context):
        h = hashlib.sha256()
        n = 0
        for m in it:
            h.update(m)
            n += 1
        return json.dumps({"n": n, "sha256": h.hexdigest()}).encode()

    def bidi(self, it, context):
        """Answers each message as it arrives: b"re:" + message."""
        for m in it:
            yield b"re:" + m

    # -- grpc.health.v1 --
    def health_check(self, req, context):
        svc = _health_service_of(req)
        with self.health_cv:
            st = self.health.get(svc)
        if st is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % svc)
        return b"\x08" + bytes([st])

    def health_watch(self, req, context):
        svc = _health_service_of(req)
        last = None
        deadline = time.monotonic() + 30
        while context.is_active() and time.monotonic() < deadline:
            with self.health_cv:
                st = self.health.get(svc, SERVICE_UNKNOWN)
                if st == last:
                    self.health_cv.wait(0.2)
                    continue
            last = st
            yield b"\x08" + bytes([st])

    def set_health(self, svc, st):
        with self.health_cv:
            self.health[svc] = st
            self.health_cv.notify_all()

    def handlers(self):
        u, ss, cs, bd = (grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler,
                         grpc.stream_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler)
        interop = grpc.method_handlers_generic_handler("ebb.test.Interop", {
            "Echo": u(self.echo), "Sized": u(self.sized), "Fail": u(self.fail),
            "WaitCancel": u(self.wait_cancel), "Hold": u(self.hold),
            "ServerStream": ss(self.server_stream), "StreamThenWait": ss(self.stream_then_wait),
            "ClientStream": cs(self.client_stream), "Bidi": bd(self.bidi)})
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": u(self.health_check), "Watch": ss(self.health_watch)})
        return (interop, health)


MSG_MAX = 64 * 1024 * 1024

# The server tolerates client keepalive pings (a gRPC server's default is one ping per 5 min
# without data, two strikes, then GOAWAY too_many_pings): the keepalive case runs directly
# against it as the control.
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MSG_MAX),
    ("grpc.max_send_message_length", MSG_MAX),
    ("grpc.http2.min_ping_interval_without_data_ms", 100),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


class GrpcServer:
    """The service on a loopback port (.port, .addr); .events, .svc.  stop() for Env.finish."""

    def __init__(self, env=None, options=(), workers=128):
        need_grpc()
        from concurrent.futures import ThreadPoolExecutor
        self.events = Events()
        self.svc = Service(self.events)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=workers),
                                  handlers=self.svc.handlers(),
                                  options=SERVER_OPTIONS + list(options),
                                  maximum_concurrent_rpcs=None)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            fail("grpc server could not bind a loopback port")
        self.addr = "127.0.0.1:%d" % self.port
        self.server.start()
        if env is not None:
            env.backends.append(self)

    def stop(self):
        self.svc.release.set()
        self.server.stop(grace=None).wait(5)


CLIENT_OPTIONS = [
    ("grpc.max_receive_message_length", MSG_MAX),
    ("grpc.max_send_message_length", MSG_MAX),
    ("grpc.enable_retries", 0),          # a failure must show, not be retried away
]


def channel(target, authority=None, options=(), compression=None):
    opts = CLIENT_OPTIONS + list(options)
    if authority:
        opts.append(("grpc.default_authority", authority))
    return grpc.insecure_channel(target, options=opts, compression=compression)


def stubs(ch):
    """{name: callable} for every method (raw bytes in and out)."""
    out = {}
    for name, kind in (("Echo", "uu"), ("Sized", "uu"), ("Fail", "uu"), ("WaitCancel", "uu"),
                       ("Hold", "uu"), ("ServerStream", "us"), ("StreamThenWait", "us"),
                       ("ClientStream", "su"), ("Bidi", "ss")):
        mk = {"uu": ch.unary_unary, "us": ch.unary_stream, "su": ch.stream_unary,
              "ss": ch.stream_stream}[kind]
        out[name] = mk(SVC + name)
    out["HealthCheck"] = ch.unary_unary(HEALTH + "Check")
    out["HealthWatch"] = ch.unary_stream(HEALTH + "Watch")
    return out


def call_id(prefix="c"):
    call_id.n += 1
    return "%s-%d" % (prefix, call_id.n)


call_id.n = 0


def md(cid, *extra):
    return (("x-call-id", cid),) + tuple(extra)
