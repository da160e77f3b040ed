"""drainlib.py - helpers for the drain tests (test_drain.py), the configuration-source tests
(test_config_sources.py) and bench/drain_timing.py.

Builds on lib.py (which it does not change): starting ebb with ProxyConfig knobs from a
chosen source, sending signals and waiting for the exit with a precise timestamp, reading
ebb's process log (its timestamps are CLOCK_MONOTONIC, the same clock as time.monotonic()),
in-flight requests in threads, and telling a graceful close (FIN) from a reset (RST).

Everything is on loopback and every wait is bounded.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import lib  # noqa: E402
from lib import Client, Incomplete, TestFailure, check, check_eq, fail, wait_for  # noqa: E402

# knobs the tests set explicitly; inherited values would make a run depend on the shell
_SCRUB = ("PROXY_CONFIG", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "MINIMUM_DRAIN_DURATION")


def scrub_environment():
    """Removes the drain knobs from this process's environment (ebb inherits it)."""
    for k in _SCRUB:
        os.environ.pop(k, None)


scrub_environment()


# -- starting ebb -------------------------------------------------------------------------

def write(env, name, text):
    """Writes text (str or bytes) to a file in the test's tmpdir; returns its path."""
    path = os.path.join(env.tmpdir, name)
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    return path


def annotations_line(value, key="proxy.istio.io/config"):
    """One downward-API line as kubelet writes it: key="Go-quoted value"."""
    out = []
    for ch in value:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7f:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return '%s="%s"' % (key, "".join(out))


def start(env, drain=None, proxy_config=None, env_vars=None, mesh=None, annotations=None,
          listeners=None, clusters=None, extra=None, wait=True, log_level="debug"):
    """Backend (once per test) + ebb with the standard config of lib.Env.config().

    drain: ebb.yaml `drain:` keys; proxy_config: ebb.yaml `proxy_config:` map (source
    "file"); env_vars: extra environment (PROXY_CONFIG, EXIT_ON_ZERO_ACTIVE_CONNECTIONS...);
    mesh: text of a mesh config file (--mesh-config); annotations: text of a downward-API
    file (--pod-annotations).  Returns the lib.Ebb."""
    if env.be is None:
        env.be = env.backend()
    cfg = env.config(env.be, drain=drain, listeners=listeners, clusters=clusters, extra=extra)
    if proxy_config:
        cfg["proxy_config"] = dict(proxy_config)
    args = []
    n = len(env.ebbs)
    if mesh is not None:
        args += ["--mesh-config", write(env, "mesh%d.yaml" % n, mesh)]
    if annotations is not None:
        args += ["--pod-annotations", write(env, "annotations%d" % n, annotations)]
    e = env.ebb(cfg, env_vars=env_vars, extra_args=args, wait=wait, log_level=log_level)
    return e


def proxy_config_env(**fields):
    """{"PROXY_CONFIG": json} for Ebb's env_vars."""
    return {"PROXY_CONFIG": json.dumps(fields)}


# -- signals and exit ---------------------------------------------------------------------

def send_signal(e, sig=signal.SIGTERM):
    """Sends sig to ebb; returns time.monotonic() just before the kill() call."""
    t = time.monotonic()
    os.kill(e.pid, sig)
    return t


class ExitWatch:
    """Watches ebb's pid through a pidfd: .time is the monotonic time at which the process
    became a zombie (observed by a thread blocked in poll(), so within microseconds)."""

    def __init__(self, e):
        self.e = e
        self.time = None
        self._fd = os.pidfd_open(e.pid)
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        p = select.poll()
        p.register(self._fd, select.POLLIN)
        while not self._done.is_set():
            if p.poll(200):
                self.time = time.monotonic()
                break
        os.close(self._fd)
        self._done.set()

    def wait(self, timeout):
        """Waits for the exit; returns (returncode, exit time) or fails on timeout."""
        if not self._done.wait(timeout) or self.time is None:
            fail("ebb did not exit within %.1fs" % timeout)
        rc = self.e.proc.wait(5)
        self.e.stopped = True
        self.e.returncode = rc
        return rc, self.time

    def exited(self):
        return self.time is not None

    def stop(self):
        self._done.set()


def expect_alive(e, what):
    check(e.alive(), "ebb exited (rc=%s) but should still run: %s" % (e.proc.poll(), what))


# -- ebb's process log ----------------------------------------------------------------------

LOG_LINE = re.compile(r"^\s*(\d+\.\d+)\s+(\w+)\s+([\w./-]+):\s(.*)$")


def log_lines(e):
    """[(monotonic seconds, level, subsystem, message)] of ebb's stderr."""
    out = []
    for ln in e.stderr().splitlines():
        m = LOG_LINE.match(ln)
        if m:
            out.append((float(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return out


def find_log(e, rx, subsys=None):
    """(time, message, match) of the first log line whose message matches rx, or None."""
    r = re.compile(rx)
    for t, lvl, sub, msg in log_lines(e):
        if subsys and sub != subsys:
            continue
        m = r.search(msg)
        if m:
            return t, msg, m
    return None


def find_logs(e, rx, subsys=None):
    r = re.compile(rx)
    return [(t, msg, r.search(msg)) for t, lvl, sub, msg in log_lines(e)
            if (not subsys or sub == subsys) and r.search(msg)]


def wait_log(e, rx, timeout=10, subsys=None):
    """Polls ebb's stderr until a line matches; returns (time, message, match)."""
    return wait_for(lambda: find_log(e, rx, subsys), timeout, interval=0.01,
                    what="ebb log line matching %r" % rx)


def drain_started(e, timeout=10):
    return wait_log(e, r"^drain (started|extended):", timeout, "drain")


# -- readiness, admin -------------------------------------------------------------------------

def readiness(e, timeout=5):
    """{"15021": status, "15020": status, "15000": status} of the three readiness endpoints."""
    return {
        "readiness /healthz/ready": e.admin("GET", "/healthz/ready", port=e.readiness_port,
                                            timeout=timeout)[0],
        "status /healthz/ready": e.admin("GET", "/healthz/ready", port=e.status_port,
                                         timeout=timeout)[0],
        "admin /ready": e.admin("GET", "/ready", timeout=timeout)[0],
    }


def check_readiness(e, want, what):
    got = readiness(e)
    for k, v in got.items():
        check(v == want, "%s: %s answered %d, want %d (all: %s)" % (what, k, v, want, got))


def post(e, path, port=None):
    """(status, body) of POST path on the admin port (or port)."""
    return e.admin("POST", path, port=port)


# -- connections ----------------------------------------------------------------------------

def is_close(r):
    """True when Response r carries Connection: close."""
    return "close" in [t.strip().lower() for t in (r.header("connection") or "").split(",")]


def peer_end(c, timeout=5.0):
    """How the peer ends Client c's connection after what was read so far: 'fin' (EOF with no
    reset seen afterwards), 'rst', 'data' (more bytes arrived) or 'timeout'."""
    if c.buf:
        return "data"
    c.sock.settimeout(timeout)
    try:
        d = c.sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return "rst"
    except socket.timeout:
        return "timeout"
    if d:
        c.buf += d
        return "data"
    # EOF: a reset right behind the FIN would still surface on the next call
    time.sleep(0.05)
    try:
        c.sock.settimeout(0.5)
        d = c.sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return "rst"
    except socket.timeout:
        return "fin"
    return "fin" if not d else "data"


def connect_refused(port, timeout=3.0):
    """True when a TCP connect to 127.0.0.1:port is refused; False when it is accepted."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def get(port, path, host="app.local", headers=None, timeout=10):
    """One request on a new connection: (Response, how ebb ended the connection) when the
    response says Connection: close, else (Response, None) without waiting."""
    with Client(port, timeout=timeout) as c:
        c.request("GET", path, headers, host=host)
        r = c.response()
        return r, peer_end(c, timeout=timeout) if is_close(r) else None


class Request(threading.Thread):
    """An HTTP/1.1 request in a thread: .resp (Response) or .error (Incomplete/OSError),
    .t_sent, .t_done (monotonic), .end ('fin'/'rst'/... after the response, if complete).
    Pass client to reuse a connection."""

    def __init__(self, port, path, method="GET", host="app.local", headers=None, body=b"",
                 timeout=30, client=None, check_end=True):
        threading.Thread.__init__(self, daemon=True)
        self.port, self.path, self.method, self.host = port, path, method, host
        self.headers, self.body, self.timeout = headers, body, timeout
        self.client = client
        self.check_end = check_end
        self.resp = self.error = self.end = None
        self.t_sent = self.t_done = None
        self.sent = threading.Event()
        self.start()

    def run(self):
        c = self.client
        try:
            if c is None:
                c = Client(self.port, timeout=self.timeout)
            c.sock.settimeout(self.timeout)
            self.t_sent = time.monotonic()
            c.request(self.method, self.path, self.headers, self.body, host=self.host)
            self.sent.set()
            self.resp = c.response(self.method)
            self.t_done = time.monotonic()
            if self.check_end:
                self.end = peer_end(c, timeout=self.timeout)
        except (Incomplete, OSError) as ex:
            self.t_done = time.monotonic()
            self.error = ex
        finally:
            self.sent.set()
            if self.client is None and c is not None:
                c.close()

    def result(self, timeout):
        self.join(timeout)
        check(not self.is_alive(), "request %s did not finish within %.0fs" % (self.path, timeout))
        return self


def wait_backend_saw(be, path_prefix, n=1, timeout=10):
    """Waits until the backend has seen n requests whose target starts with path_prefix
    (so a request is really in flight before the test triggers a drain)."""
    def seen():
        return len([r for r in be.log() if r["target"].startswith(path_prefix)]) >= n
    wait_for(seen, timeout, interval=0.02, what="backend to receive %s" % path_prefix)


# -- HTTP/2 at the frame level (python3-hyperframe/hpack, as packaged with python3-h2) --------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Conn:
    """A minimal h2c prior-knowledge client that shows every frame, so a test can check the
    GOAWAY/PING sequence itself (h2's state machine would hide it).  .frames: every frame
    received, with .t_recv (monotonic) set on each."""

    def __init__(self, port, timeout=10, auto_ack_ping=True):
        import hpack
        from hyperframe import frame as hf
        self.hf = hf
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.frames = []
        self.eof = False
        self.auto_ack_ping = auto_ack_ping
        self.sock.sendall(H2_PREFACE + hf.SettingsFrame(0).serialize())

    def close(self):
        self.sock.close()

    def request(self, stream_id, path, authority="app.local", method="GET"):
        hdrs = [(":method", method), (":scheme", "http"), (":authority", authority),
                (":path", path)]
        f = self.hf.HeadersFrame(stream_id)
        f.data = self.enc.encode(hdrs)
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        self.sock.sendall(f.serialize())

    def ack_ping(self, f):
        a = self.hf.PingFrame(0)
        a.opaque_data = f.opaque_data
        a.flags.add("ACK")
        self.sock.sendall(a.serialize())

    def read_frame(self, timeout=10):
        """The next frame, or None on EOF/reset.  Acks SETTINGS (and PING when auto_ack_ping)."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                f, n = self.hf.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + n:
                    f.parse_body(memoryview(self.buf[9:9 + n]))
                    self.buf = self.buf[9 + n:]
                    f.t_recv = time.monotonic()
                    if isinstance(f, self.hf.HeadersFrame):
                        f.headers = self.dec.decode(bytes(f.data))
                    self.frames.append(f)
                    if isinstance(f, self.hf.SettingsFrame) and "ACK" not in f.flags:
                        a = self.hf.SettingsFrame(0)
                        a.flags.add("ACK")
                        self.sock.sendall(a.serialize())
                    if (isinstance(f, self.hf.PingFrame) and "ACK" not in f.flags
                            and self.auto_ack_ping):
                        self.ack_ping(f)
                    return f
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no h2 frame within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                self.eof = "rst"
                return None
            if not d:
                self.eof = "fin"
                return None
            self.buf += d

    def read_until(self, pred, timeout=10, what="frame"):
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                fail("connection ended (%s) while waiting for %s; frames: %s"
                     % (self.eof, what, self.describe()))
            if pred(f):
                return f

    def describe(self):
        out = []
        for f in self.frames:
            n = type(f).__name__.replace("Frame", "")
            if n == "GoAway":
                n += "(last=%d,err=%d)" % (f.last_stream_id, f.error_code)
            elif n in ("Headers", "Data"):
                n += "(s%d%s)" % (f.stream_id, ",END" if "END_STREAM" in f.flags else "")
            elif n == "Ping":
                n += "(ack)" if "ACK" in f.flags else ""
            out.append(n)
        return " ".join(out)


# -- network namespace: 403 for non-loopback peers -------------------------------------------

NETNS_ADDR = "10.200.0.1"


def netns_forbidden_probe(ebb_path, tmpdir, timeout=20):
    """Runs _netns_main in a new network namespace (unshare -n; needs CAP_SYS_ADMIN).
    Returns its JSON result, or raises lib.Skip when namespaces cannot be created."""
    probe = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
    if probe.returncode != 0:
        raise lib.Skip("cannot create a network namespace (unshare -n): %s"
                       % probe.stderr.decode("utf-8", "replace").strip())
    p = subprocess.run(["unshare", "-n", lib.PY, os.path.abspath(__file__), "--netns-probe",
                        ebb_path, tmpdir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        fail("netns probe failed (rc=%d):\n%s\n%s" % (p.returncode, out,
                                                      p.stderr.decode("utf-8", "replace")))
    return json.loads(out.strip().splitlines()[-1])


def _netns_main(ebb_path, tmpdir):
    """Inside a fresh network namespace: lo up with 10.200.0.1/32, ebb with admin/status/
    readiness on 0.0.0.0; POSTs each mutating endpoint from 10.200.0.1 and from 127.0.0.1."""
    import http.client as hc
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", NETNS_ADDR + "/32", "dev", "lo"], check=True)
    ports = {k: lib.free_port() for k in ("admin", "status", "readiness", "inbound")}
    cfg = {
        "concurrency": 1,
        "admin": {"address": "0.0.0.0", "port": ports["admin"]},
        "status": {"address": "0.0.0.0", "port": ports["status"]},
        "readiness": {"address": "0.0.0.0", "port": ports["readiness"]},
        "access_log": "off",
        "listeners": [{"name": "inbound", "address": "0.0.0.0", "port": ports["inbound"],
                       "direction": "inbound", "protocol": "http", "cluster": "app"}],
        "clusters": [{"name": "app", "endpoints": ["127.0.0.1:9"]}],
    }
    path = os.path.join(tmpdir, "netns-ebb.yaml")
    with open(path, "w") as f:
        f.write(lib.to_yaml(cfg))
    errf = open(os.path.join(tmpdir, "ebb-netns.stderr"), "wb")
    proc = subprocess.Popen([ebb_path, "run", "-c", path, "--log-level", "debug"],
                            stdout=subprocess.DEVNULL, stderr=errf, cwd=tmpdir)

    def req(method, port, p, src):
        c = hc.HTTPConnection(NETNS_ADDR if src != "127.0.0.1" else "127.0.0.1", port,
                              timeout=5, source_address=(src, 0))
        try:
            c.request(method, p)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    res = {"results": []}
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if req("GET", ports["admin"], "/ready", "127.0.0.1")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ebb did not become ready in the namespace")
            time.sleep(0.02)
        cases = [("admin", "/drain_listeners?inboundonly&graceful"), ("admin", "/healthcheck/fail"),
                 ("admin", "/healthcheck/ok"), ("admin", "/quitquitquit"),
                 ("status", "/drain"), ("status", "/quitquitquit")]
        for kind, p in cases:
            st, body = req("POST", ports[kind], p, NETNS_ADDR)
            res["results"].append({"port": kind, "path": p, "peer": NETNS_ADDR, "status": st,
                                   "body": body})
        # reads stay open to any peer
        for kind, p in (("status", "/healthz/ready"), ("readiness", "/healthz/ready")):
            st, body = req("GET", ports[kind], p, NETNS_ADDR)
            res["results"].append({"port": kind, "path": p, "peer": NETNS_ADDR, "status": st,
                                   "method": "GET"})
        res["alive_after_forbidden"] = proc.poll() is None
        res["ready_after_forbidden"] = req("GET", ports["admin"], "/ready", "127.0.0.1")[0]
        # the same endpoint from loopback works
        st, _ = req("POST", ports["status"], "/quitquitquit", "127.0.0.1")
        res["loopback_quit_status"] = st
        try:
            res["loopback_quit_rc"] = proc.wait(10)
        except subprocess.TimeoutExpired:
            res["loopback_quit_rc"] = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errf.close()
    print(json.dumps(res))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--netns-probe":
        _netns_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: drainlib.py --netns-probe EBB TMPDIR")
