"""lib.py - helpers for ebb's end-to-end tests.

A test is a plain function `def test_x(env)`; run.py gives it an Env whose tmpdir holds
every file the test writes (config, ebb's stdout/stderr, the backend's log).  Typical use:

    def test_get(env):
        e = env.start()                       # backend + ebb with the standard config
        r = http(e.port("inbound"), "GET", "/hello")
        check_eq(r.status, 200)

Everything is on loopback and every wait is bounded.
"""

import base64
import hashlib
import http.client as httpclient
import json
import os
import re
import signal
import random
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PATTERN = bytes(range(256)) * 4096          # the backend's body pattern: byte i = i % 256
# workers in Env.config()'s default configuration: 2 (threads), or what EBB_TEST_CONCURRENCY
# says; scripts/run-tests.sh sets 1 for the ASan suite, so CI runs the tests both ways (one
# worker runs on the control thread: docs/design.md, "Threads")
TEST_CONCURRENCY = int(os.environ.get("EBB_TEST_CONCURRENCY", "2"))
MiB = 1024 * 1024
GiB = 1024 * MiB


def timeout(seconds):
    """Decorator: this test's time bound in run.py (default 60 s)."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


class Skip(Exception):
    """Raise to skip a test (a missing client tool, say)."""


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what=""):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what or "value", _short(got), _short(want)))


def _short(v, n=300):
    if isinstance(v, (bytes, str)) and len(v) > n:
        return v[:n] + (b"..." if isinstance(v, bytes) else "...")
    return v


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout (TestFailure)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:                   # a poll may fail while things start
            last_exc = e
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s%s" %
                 (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)


# -- ports and processes -------------------------------------------------------------------

_given_ports = set()


_port_rng = random.SystemRandom()   # fresh in every forked test process

# Ports are claimed across processes: the bind check below proves a port free only until
# ebb binds it, and another test process (run.py -j, a CI clone, a stressed run beside it)
# may pick the same port in between.  A claim is a file named after the port holding the
# claiming process's pid; it lasts until release_ports() or the process's death.
PORT_CLAIMS = "/tmp/ebb-test-ports"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_port(p):
    path = os.path.join(PORT_CLAIMS, str(p))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read() or "0")
            except (OSError, ValueError):
                return False
            if owner and _pid_alive(owner):
                return False
            try:
                os.unlink(path)   # its owner is gone: the claim is stale
            except FileNotFoundError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def release_ports():
    """Gives back this process's port claims (run.py calls it as a test process ends)."""
    for p in _given_ports:
        try:
            with open(os.path.join(PORT_CLAIMS, str(p))) as f:
                mine = f.read() == str(os.getpid())
            if mine:
                os.unlink(os.path.join(PORT_CLAIMS, str(p)))
        except (OSError, ValueError):
            pass


def nginx_origin(env, h2=False, big=0):
    """Debian's nginx as a fast origin (1 worker, keep-alive): "hello world" at every path,
    and with big > 0 a file of that many zero bytes at /big, sent with sendfile (an upstream
    that writes as fast as the kernel takes it).  Returns "127.0.0.1:PORT"; env stops it."""
    import shutil
    if not shutil.which("nginx"):
        raise Skip("nginx not installed")
    d = os.path.join(env.tmpdir, "nginx-%s%s" % ("h2" if h2 else "h1", "-big" if big else ""))
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    big_loc = ""
    if big:
        path = os.path.join(d, "big.bin")
        with open(path, "wb") as f:
            f.truncate(big)   # sparse: no disk space
        big_loc = "location = /big { alias %s; }" % path
    port = free_port()
    # as root, the worker stays root: the test's files are not the world's to read
    conf = """worker_processes 1; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
%(user)s events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 10000000; http2_max_requests 10000000;
  http2_max_concurrent_streams 256;
  client_body_temp_path %(d)s/tmp; proxy_temp_path %(d)s/tmp; fastcgi_temp_path %(d)s/tmp;
  uwsgi_temp_path %(d)s/tmp; scgi_temp_path %(d)s/tmp;
  server { listen 127.0.0.1:%(port)d backlog=4096%(h2)s; default_type text/plain;
    %(big)s location / { return 200 "hello world\\n"; } } }
""" % {"d": d, "port": port, "h2": " http2" if h2 else "", "big": big_loc,
       "user": "user root;" if os.getuid() == 0 else ""}
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    p = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                          os.path.join(d, "error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    class Proc:
        def stop(self):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
    env.backends.append(Proc())

    def up():
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    wait_for(up, 5, what="nginx origin")
    return "127.0.0.1:%d" % port


def free_port():
    """A loopback TCP port that nothing listens on right now and no other test process has
    claimed (never the same one twice)."""
    # Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default), so an
    # outgoing connection of this or another test can never take the port between this
    # check and ebb's bind (binding to port 0 handed out ports from that very range).
    lo, hi = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    os.makedirs(PORT_CLAIMS, mode=0o777, exist_ok=True)
    for _ in range(1000):
        p = _port_rng.randint(lo, hi)
        if p in _given_ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        if not _claim_port(p):
            continue
        _given_ports.add(p)
        return p
    fail("no free port")


def rss_kib(pid):
    """VmRSS of pid in KiB, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except (OSError, ValueError):
        return None
    return None


class RssMonitor:
    """Samples a pid's VmRSS every interval seconds in a thread: with RssMonitor(pid) as m: ..."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(5)

    @property
    def max_kib(self):
        return max(self.samples) if self.samples else 0


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return ""


# -- YAML writer ---------------------------------------------------------------------------

def to_yaml(v, indent=0):
    """Block-style YAML for dicts/lists/scalars (strings double-quoted, JSON-style)."""
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return pad + "{}\n"
        out = ""
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                out += "%s%s:\n%s" % (pad, k, to_yaml(x, indent + 1))
            else:
                out += "%s%s: %s\n" % (pad, k, _scalar(x))
        return out
    if isinstance(v, list):
        if not v:
            return pad + "[]\n"
        out = ""
        for x in v:
            if isinstance(x, (dict, list)) and x:
                body = to_yaml(x, indent + 1)
                out += pad + "- " + body[len(pad) + 2:]
            else:
                out += "%s- %s\n" % (pad, _scalar(x))
        return out
    return pad + _scalar(v) + "\n"


def _scalar(x):
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return "null"
    if isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, dict):
        return "{}"
    if isinstance(x, list):
        return "[]"
    return json.dumps(str(x))


# -- the backend ---------------------------------------------------------------------------

class Backend:
    """tests/e2e/backend.py in a subprocess: .port (HTTP), .tcp_echo_port, .tcp_digest_port."""

    def __init__(self, env, name="backend"):
        self.env = env
        self.name = name
        pf = os.path.join(env.tmpdir, name + ".ports.json")
        self.log_path = os.path.join(env.tmpdir, name + ".log")
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PY, os.path.join(HERE, "backend.py"), "--port", "0", "--tcp-echo-port", "0",
             "--tcp-digest-port", "0", "--ports-file", pf],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()

        def ready():
            if self.proc.poll() is not None:
                fail("backend exited (rc=%s): %s" % (self.proc.returncode, tail(self.log_path)))
            return os.path.exists(pf)
        wait_for(ready, 10, what="backend ports file")
        with open(pf) as f:
            ports = json.load(f)
        self.port = ports["http"]
        self.tcp_echo_port = ports["tcp_echo"]
        self.tcp_digest_port = ports["tcp_digest"]
        self.addr = "127.0.0.1:%d" % self.port

    def log(self, clear=False):
        """The request heads the backend has seen (list of dicts)."""
        r = http(self.port, "GET", "/_log" + ("?clear=1" if clear else ""))
        return json.loads(r.body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


# -- ebb -----------------------------------------------------------------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "MemorySanitizer")
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


class Ebb:
    """One `ebb run` process.  cfg is the ebb.yaml as a dict (see Env.config).  With netns
    (a netnslib.NetNS) it runs in that namespace, and admin() talks to it there; with uid it
    runs as that user (and group), as a sidecar runs as 1337."""

    def __init__(self, env, cfg, name="ebb", wait=True, extra_args=(), env_vars=None,
                 log_level="debug", netns=None, uid=None):
        self.env = env
        self.netns = netns
        self.cfg = cfg
        self.name = name
        self.path = os.path.join(env.tmpdir, name + ".yaml")
        with open(self.path, "w") as f:
            f.write(to_yaml(cfg))
        self.stdout_path = os.path.join(env.tmpdir, name + ".stdout")
        self.stderr_path = os.path.join(env.tmpdir, name + ".stderr")
        self.admin_port = cfg.get("admin", {}).get("port")
        self.stopped = False
        self.returncode = None
        if not os.access(env.ebb_path, os.X_OK):
            fail("ebb binary not found or not executable: %s" % env.ebb_path)
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        penv = dict(os.environ)
        penv.update(env_vars or {})
        argv = [env.ebb_path, "run", "-c", self.path]
        if log_level:
            argv += ["--log-level", log_level]
        argv += list(extra_args)
        if uid is not None:
            argv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"] + argv
        if netns is not None:
            argv = ["ip", "netns", "exec", netns.name] + argv
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     env=penv, cwd=env.tmpdir)
        out.close()
        err.close()
        self.pid = self.proc.pid
        env.ebbs.append(self)
        if wait:
            self.wait_ready()

    # ports
    def port(self, listener):
        for l in self.cfg.get("listeners", []):
            if l.get("name") == listener:
                return l["port"]
        raise KeyError(listener)

    @property
    def status_port(self):
        return self.cfg.get("status", {}).get("port")

    @property
    def readiness_port(self):
        return self.cfg.get("readiness", {}).get("port")

    # lifecycle
    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=10):
        def ready():
            if not self.alive():
                fail("ebb exited during startup (rc=%s)\n%s" % (self.proc.returncode,
                                                                tail(self.stderr_path, 20)))
            try:
                st, body = self.admin("GET", "/ready", timeout=1)
            except (OSError, httpclient.HTTPException):
                return False
            return st == 200
        wait_for(ready, timeout, interval=0.02, what="ebb GET /ready == 200 on admin port %s"
                 % self.admin_port)

    def stop(self, timeout=5):
        """quitquitquit, then SIGINT twice, then SIGKILL; returns the exit status."""
        if self.stopped:
            return self.returncode
        self.stopped = True
        if self.alive():
            st = None
            try:
                st, _ = self.admin("POST", "/quitquitquit", timeout=1)
            except (OSError, httpclient.HTTPException):
                pass
            if st != 200 or not self._wait(timeout):
                self.proc.send_signal(signal.SIGINT)
                time.sleep(0.05)
                if self.alive():
                    self.proc.send_signal(signal.SIGINT)
                if not self._wait(timeout):
                    self.proc.kill()
                    self.proc.wait(5)
        self.returncode = self.proc.returncode
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def _wait(self, t):
        try:
            self.proc.wait(t)
            return True
        except subprocess.TimeoutExpired:
            return False

    def problems(self):
        """Crash or sanitizer reports seen so far (list of strings)."""
        out = []
        rc = self.proc.poll()
        if rc is not None and rc < 0 and -rc in [int(s) for s in CRASH_SIGNALS]:
            out.append("ebb died of signal %d" % -rc)
        text = self.stderr()
        for m in SANITIZER_MARKS:
            if m in text:
                i = text.index(m)
                out.append("sanitizer report in ebb stderr:\n" + text[max(0, i - 200):i + 2000])
                break
        return out

    # logs
    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def access_log(self):
        """Parsed JSON lines of the access log (file configured by Env.config)."""
        path = self.cfg.get("access_log")
        if path in (None, "-"):
            path = self.stdout_path
        if path == "off":
            return []
        out = []
        try:
            with open(path, "rb") as f:
                for ln in f:
                    ln = ln.strip()
                    if ln:
                        try:
                            out.append(json.loads(ln))
                        except ValueError:
                            out.append({"_raw": ln.decode("utf-8", "replace")})
        except OSError:
            pass
        return out

    def wait_access(self, pred, timeout=5, what="access-log lines"):
        """Polls the access log (written in batches, at least once a second) until
        pred(records) is true; returns the records."""
        box = []

        def ok():
            box[:] = [self.access_log()]
            return pred(box[0])
        wait_for(ok, timeout, interval=0.05, what=what)
        return box[0]

    # admin
    def admin(self, method, path, body=None, timeout=5, port=None):
        """(status, body-as-str) from the admin port (or another port given)."""
        c = httpclient.HTTPConnection("127.0.0.1", port or self.admin_port, timeout=timeout)
        try:
            if self.netns is not None:
                with self.netns.entered():
                    c.connect()   # the socket is made in the namespace
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def stats(self, query=""):
        """GET /stats as {name: int or str}."""
        st, body = self.admin("GET", "/stats" + query)
        check_eq(st, 200, "GET /stats%s status" % query)
        return parse_stats(body)

    def lstat(self, listener, stat):
        """The name of a listener stat: listener.<ip>_<port>.<stat> as SPEC §5 (Envoy) has it,
        or listener.<name>.<stat> if ebb uses the listener name instead."""
        l = [x for x in self.cfg.get("listeners", []) if x.get("name") == listener][0]
        addr = l.get("address", "0.0.0.0")
        if ":" in addr:   # Envoy's IPv6 form: listener.[__1]_15006
            addr = "[%s]" % addr.strip("[]").replace(":", "_")
        spec = "listener.%s_%d.%s" % (addr, l["port"], stat)
        st = self.stats()
        if spec not in st and "listener.%s.%s" % (listener, stat) in st:
            return "listener.%s.%s" % (listener, stat)
        return spec

    def stat(self, name, default=0):
        return self.stats().get(name, default)

    def wait_stat(self, name, pred, timeout=5, what=None):
        """Polls /stats until pred(value) holds; returns the value."""
        box = []

        def ok():
            v = self.stats().get(name)
            if v is None:
                raise TestFailure("stat %s missing from /stats" % name)
            box[:] = [v]
            return pred(v)
        ok()                              # a missing stat fails at once
        try:
            wait_for(ok, timeout, interval=0.05, what=what or "stat %s" % name)
        except TestFailure:
            fail("stat %s never satisfied the condition; last value %r" % (name, box[0] if box else None))
        return box[0]

    def rss_kib(self):
        return rss_kib(self.pid)


def parse_stats(text):
    out = {}
    for ln in text.splitlines():
        if ": " not in ln:
            continue
        k, v = ln.split(": ", 1)
        v = v.strip()
        try:
            out[k.strip()] = int(v)
        except ValueError:
            out[k.strip()] = v
    return out


# -- Env: what a test gets -----------------------------------------------------------------

class Env:
    def __init__(self, tmpdir, ebb_path):
        self.tmpdir = tmpdir
        self.ebb_path = ebb_path
        self.ebbs = []
        self.backends = []
        self.be = None
        self.ebbp = None

    def backend(self, name="backend"):
        b = Backend(self, name)
        self.backends.append(b)
        return b

    def config(self, be=None, clusters=None, limits=None, drain=None, extra=None,
               listeners=None, app_endpoint=None):
        """The standard ebb.yaml (a dict) on fresh loopback ports:

        listeners: inbound (http -> app), outbound (http, routes below), tcp (inbound tcp ->
        echo), tcp_digest (inbound tcp -> digest); clusters: app (the backend), echo, digest,
        dead (a port nothing listens on), slow (the backend, request_timeout 500ms).
        outbound routes: app.local/api.local -> app, dead.local -> dead, slow.local -> slow.
        clusters={"app": {...}} merges keys into a cluster (or adds one); limits/drain/extra
        merge into the top level.
        """
        be = be or self.be
        dead = free_port()
        app_ep = app_endpoint or (be.addr if be else "127.0.0.1:%d" % dead)
        cl = {
            "app": {"name": "app", "endpoints": [app_ep], "protocol": "http1",
                    "connect_timeout": "1s"},
            "echo": {"name": "echo", "endpoints": ["127.0.0.1:%d" % (be.tcp_echo_port if be else dead)]},
            "digest": {"name": "digest",
                       "endpoints": ["127.0.0.1:%d" % (be.tcp_digest_port if be else dead)]},
            "dead": {"name": "dead", "endpoints": ["127.0.0.1:%d" % dead], "connect_timeout": "1s"},
            "slow": {"name": "slow", "endpoints": [app_ep], "request_timeout": "500ms"},
        }
        for name, kv in (clusters or {}).items():
            cl.setdefault(name, {"name": name}).update(kv)
        cfg = {
            "concurrency": TEST_CONCURRENCY,
            "admin": {"address": "127.0.0.1", "port": free_port()},
            "status": {"address": "127.0.0.1", "port": free_port()},
            "readiness": {"address": "127.0.0.1", "port": free_port()},
            "access_log": os.path.join(self.tmpdir, "access.log"),
            "listeners": listeners or [
                {"name": "inbound", "address": "127.0.0.1", "port": free_port(),
                 "direction": "inbound", "protocol": "http", "cluster": "app"},
                {"name": "outbound", "address": "127.0.0.1", "port": free_port(),
                 "direction": "outbound", "protocol": "http",
                 "routes": [{"host": "app.local", "cluster": "app"},
                            {"host": "api.local", "cluster": "app"},
                            {"host": "dead.local", "cluster": "dead"},
                            {"host": "slow.local", "cluster": "slow"}]},
                {"name": "tcp", "address": "127.0.0.1", "port": free_port(),
                 "direction": "inbound", "protocol": "tcp", "cluster": "echo"},
                {"name": "tcp_digest", "address": "127.0.0.1", "port": free_port(),
                 "direction": "inbound", "protocol": "tcp", "cluster": "digest"},
            ],
            "clusters": list(cl.values()),
        }
        if limits:
            cfg["limits"] = dict(limits)
        if drain:
            cfg["drain"] = dict(drain)
        cfg.update(extra or {})
        return cfg

    def ebb(self, cfg, **kw):
        e = Ebb(self, cfg, name="ebb%d" % len(self.ebbs) if self.ebbs else "ebb", **kw)
        return e

    def start(self, **cfg_kw):
        """Backend + ebb with the standard config (kwargs go to config()); returns the Ebb."""
        if self.be is None:
            self.be = self.backend()
        self.ebbp = self.ebb(self.config(self.be, **cfg_kw))
        return self.ebbp

    def finish(self):
        """After the test: ebb must still be running (unless the test stopped it) and must not
        have crashed or reported a sanitizer error.  Stops every process.  Returns problems."""
        problems = []
        for e in self.ebbs:
            if not e.stopped and not e.alive():
                problems.append("%s exited during the test (rc=%s)" % (e.name, e.proc.returncode))
            e.stop()
            problems += ["%s: %s" % (e.name, p) for p in e.problems()]
        for b in self.backends:
            b.stop()
        return problems

    def log_files(self):
        """(label, path) of the logs worth printing when a test fails."""
        out = []
        for e in self.ebbs:
            out += [(e.name + " stderr", e.stderr_path), (e.name + " stdout", e.stdout_path)]
        for b in self.backends:
            out.append((b.name, b.log_path))
        return out


# -- HTTP over raw sockets -----------------------------------------------------------------

class Incomplete(Exception):
    """The connection ended (EOF or reset) before a whole response was read."""

    def __init__(self, msg, partial=b"", reset=False):
        Exception.__init__(self, msg)
        self.partial = partial
        self.reset = reset


class Response:
    def __init__(self, status, reason, version, headers, body, raw_head, interim=()):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers           # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head
        self.interim = list(interim)     # 1xx responses seen before this one

    def header(self, name, default=None):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else default

    def has_header(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %d bytes>" % (self.status, self.headers, len(self.body))


class Client:
    """One HTTP/1.1 connection with a buffered response reader."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=b"", host="app.local", version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, host, version))

    def _fill(self):
        try:
            d = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            raise Incomplete("connection reset", bytes(self.buf), reset=True)
        if not d:
            self.eof = True
            raise Incomplete("EOF", bytes(self.buf))
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self):
        """(status, reason, version, headers, raw) of the next response head (1xx included)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            self._fill()
        raw = bytes(self.buf[:i + 4])
        del self.buf[:i + 4]
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise Incomplete("bad status line %r" % lines[0][:100], raw)
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return int(parts[1]), parts[2] if len(parts) > 2 else "", parts[0], headers, raw

    def response(self, method="GET", sink=None):
        """Reads one whole final response (skipping 1xx).  sink(bytes) receives the body
        instead of Response.body when given (for huge bodies)."""
        interim = []
        while True:
            status, reason, version, headers, raw = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            break
        r = Response(status, reason, version, headers, b"", raw, interim)
        body = bytearray()

        def put(d):
            if sink:
                sink(d)
            else:
                body.extend(d)
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if method == "HEAD" or status in (101, 204, 304):
            pass
        elif "chunked" in te:
            while True:
                ln = self._line()
                size = int(ln.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                left = size
                while left:
                    if not self.buf:
                        self._fill()
                    k = min(left, len(self.buf))
                    put(bytes(self.buf[:k]))
                    del self.buf[:k]
                    left -= k
                if self._exact(2) != b"\r\n":
                    raise Incomplete("chunk not followed by CRLF", bytes(body))
        elif cl is not None:
            left = int(cl.split(",")[0])
            got = 0
            try:
                while left:
                    if not self.buf:
                        self._fill()
                    k = min(left, len(self.buf))
                    put(bytes(self.buf[:k]))
                    del self.buf[:k]
                    left -= k
                    got += k
            except Incomplete as e:
                e.partial = raw + bytes(body)
                e.args = ("%s after %d of %s body bytes" % (e.args[0], got, cl),)
                raise
        else:
            try:
                while True:
                    if self.buf:
                        put(bytes(self.buf))
                        self.buf.clear()
                    self._fill()
            except Incomplete as e:
                if e.reset:
                    raise
        r.body = bytes(body)
        return r

    def closed_by_peer(self, timeout=3.0):
        """True if the peer closes (EOF or RST) within timeout with no further bytes;
        'data' if bytes arrive instead; False on timeout."""
        if self.eof:
            return True
        if self.buf:
            return "data"
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        if not d:
            self.eof = True
            return True
        self.buf += d
        return "data"


def build_request(method, path, headers=None, body=b"", host="app.local", version="HTTP/1.1"):
    """Request bytes; adds Host (unless host is None or given in headers) and
    Content-Length for a non-empty body (unless a framing header is given)."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host is not None and "host" not in names:
        hdrs.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    if isinstance(body, str):
        body = body.encode()
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def http(port, method, path, headers=None, body=b"", host="app.local", timeout=10,
         version="HTTP/1.1"):
    """One request on a new connection; returns the Response."""
    with Client(port, timeout=timeout) as c:
        c.request(method, path, headers, body, host, version)
        return c.response(method)


def raw_exchange(port, data, timeout=5.0, half_close=False):
    """Sends raw bytes, reads until the peer closes or timeout.
    Returns (bytes, how) with how in 'eof', 'reset', 'timeout'."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionResetError:
        return b"", "reset"
    try:
        out = bytearray()
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            pass                      # the peer closed early: read what it sent, if anything
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(out), "timeout"
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                return bytes(out), "reset"
            except socket.timeout:
                return bytes(out), "timeout"
            if not d:
                return bytes(out), "eof"
            out += d
    finally:
        s.close()


def status_of(raw):
    """Status code of the first final response in raw bytes, or None."""
    for m in re.finditer(rb"HTTP/1\.[01] (\d{3})", raw):
        code = int(m.group(1))
        if code >= 200 or code == 101:
            return code
    return None


# -- external clients ----------------------------------------------------------------------

def have(tool):
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        if os.access(os.path.join(d, tool), os.X_OK):
            return True
    return False


def run(argv, timeout=30, input=None, check_rc=None):
    """subprocess.run bounded in time; returns CompletedProcess (stdout/stderr bytes)."""
    try:
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %ss" % (" ".join(argv[:6]), timeout))
    if check_rc is not None and p.returncode != check_rc:
        fail("%s exited %d (want %d): %s" % (" ".join(argv), p.returncode, check_rc,
                                             p.stderr.decode("utf-8", "replace")[-1000:]))
    return p


def curl(*args, timeout=20):
    """curl -sS with a bounded --max-time; returns (status, body bytes, CompletedProcess).
    status is the HTTP code curl reports (0 when it got none)."""
    if not have("curl"):
        raise Skip("curl not installed")
    argv = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n@@%{http_code}"] + list(args)
    p = run(argv, timeout=timeout + 5)
    out = p.stdout
    i = out.rfind(b"\n@@")
    code = int(out[i + 3:] or b"0") if i >= 0 else 0
    return code, out[:i] if i >= 0 else out, p


def pattern_sha256(n):
    """sha256 of the backend's n-byte pattern body."""
    h = hashlib.sha256()
    while n:
        k = min(n, len(PATTERN))
        h.update(PATTERN[:k] if k < len(PATTERN) else PATTERN)
        n -= k
    return h.hexdigest()


# -- WebSocket client ----------------------------------------------------------------------

def ws_handshake(c, path="/ws", host="app.local"):
    """Sends an RFC 6455 handshake on Client c; checks the 101 and the accept key."""
    key = base64.b64encode(os.urandom(16)).decode()
    c.request("GET", path, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")],
              host=host)
    status, reason, version, headers, raw = c.read_head()
    check_eq(status, 101, "WebSocket handshake status (head %r)" % raw[:300])
    want = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                            .digest()).decode()
    got = dict((k.lower(), v) for k, v in headers).get("sec-websocket-accept")
    check_eq(got, want, "Sec-WebSocket-Accept")


def ws_send(c, opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    b0 = 0x80 | opcode
    if n < 126:
        h = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        h = struct.pack("!BBQ", b0, 0x80 | 127, n)
    m = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
    c.send(h + mask + masked)


def ws_recv(c):
    """(opcode, payload) of the next frame on Client c."""
    b0, b1 = c._exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c._exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c._exact(8))[0]
    check(not (b1 & 0x80), "server frame must not be masked")
    return b0 & 0x0F, c._exact(n)
