"""Failure injection (issue 13 item 2): build/fault/ebb (make FAULT=1, or make SAN=1 test) fails
every Nth malloc/calloc/realloc/epoll_ctl/accept4/connect/read/send by a seed while mixed
traffic runs through it (HTTP/1.1 with uploads and downloads, HTTP/1.1 uploads to an h2c
upstream, h2c to an HTTP/1.1 and to an h2c upstream, TCP relay, WebSocket).  During injection
any outcome but a hang or an upload answered 200 for other bytes than were sent (a body that
lost bytes silently) is accepted.  Then injection stops and ebb must be exactly as good as new:
still running, every canary request on a fresh connection answered, every connection and request
gauge back to 0, exit status 0 and no leak (LeakSanitizer) at exit.

EBB_FAULT_SEED and EBB_FAULT_EVERY override the seed (default 1) and N (default 100);
EBB_FAULT_SECONDS the length of the injected run (default 12)."""

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import lib
from lib import (Client, Incomplete, Skip, check, check_eq, fail, timeout, wait_for, ws_handshake,
                 ws_recv, ws_send)
from test_h2 import h2_config

FAULT_BIN = os.path.join(lib.REPO, "build", "fault", "ebb")
SEED = int(os.environ.get("EBB_FAULT_SEED", "1"))
EVERY = int(os.environ.get("EBB_FAULT_EVERY", "100"))
SECONDS = float(os.environ.get("EBB_FAULT_SECONDS", "12"))
CLIENT_TIMEOUT_S = 30



def _echoed(c):
    """Half-closes the client's side and reads what the TCP echo sends back until its EOF."""
    c.sock.shutdown(lib.socket.SHUT_WR)
    got = b""
    while True:
        d = c.sock.recv(65536)
        if not d:
            return got
        got += d

def _fault_binary():
    """build/fault/ebb, or Skip with the reason when it is missing or older than the sources."""
    if not os.access(FAULT_BIN, os.X_OK):
        raise Skip("no fault-injection build (build/fault/ebb): make FAULT=1, or make SAN=1 test "
                   "which links it")
    built = os.path.getmtime(FAULT_BIN)
    for top in ("src", "include"):
        for d, _, files in os.walk(os.path.join(lib.REPO, top)):
            for f in files:
                p = os.path.join(d, f)
                if os.path.getmtime(p) > built:
                    raise Skip("build/fault/ebb is older than %s: rebuild with make FAULT=1"
                               % os.path.relpath(p, lib.REPO))
    for tool in ("h2load", "curl"):
        if not shutil.which(tool):
            raise Skip("%s not installed" % tool)
    return FAULT_BIN


class Traffic:
    """Client threads that run mixed requests until stopped.  During injection any outcome is
    acceptable (an answer, a 5xx, a reset, an EOF) but a hang: every socket has a timeout
    (CLIENT_TIMEOUT_S, far above any answer's time on a busy machine) and none may expire."""

    def __init__(self, e, seed):
        self.e = e
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = {}
        self.h2load_runs = 0

    def note(self, what, outcome):
        with self.lock:
            k = "%s:%s" % (what, outcome)
            self.outcomes[k] = self.outcomes.get(k, 0) + 1

    def _one(self, rng):
        port = rng.choice([self.e.port("inbound"), self.e.port("outbound")])
        k = rng.randrange(7)
        name = ["get", "chunked", "upload", "chunked_upload", "tcp", "ws", "h2c_upload"][k]
        if name == "h2c_upload":
            port = self.e.port("outbound")   # h2.local: the h2c cluster
        try:
            with Client(port if name != "tcp" else self.e.port("tcp"), timeout=CLIENT_TIMEOUT_S) as c:
                if name == "get":
                    n = rng.choice([0, 100, 70000, 400000])
                    c.request("GET", "/size?n=%d" % n)
                    r = c.response()
                    ok = r.status == 200 and len(r.body) == n
                elif name == "chunked":
                    c.request("GET", "/chunked?n=%d&chunk=%d" % (rng.choice([10, 90000]), 3000))
                    r = c.response()
                    ok = r.status == 200
                elif name in ("upload", "chunked_upload", "h2c_upload"):
                    body = os.urandom(rng.choice([10, 5000, 200000]))
                    if name == "upload":
                        c.request("POST", "/sha256", None, body)
                    else:
                        data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 9000]), body[i:i + 9000])
                                        for i in range(0, len(body), 9000)) + b"0\r\n\r\n"
                        if name == "h2c_upload":   # the h2c backend echoes it
                            c.request("POST", "/echo", [("Transfer-Encoding", "chunked")], data,
                                      host="h2.local")
                        else:
                            c.request("POST", "/sha256", [("Transfer-Encoding", "chunked")], data)
                    r = c.response()
                    if name == "h2c_upload":
                        got = r.body
                    else:
                        got = b"" if r.status != 200 else r.json().get("sha256", "").encode()
                        body = hashlib.sha256(body).hexdigest().encode()
                    if r.status == 200 and got != body:
                        self.note(name, "corrupt")   # a complete-looking answer to other bytes
                        return
                    ok = r.status == 200
                elif name == "tcp":
                    data = os.urandom(rng.choice([10, 100000]))
                    c.send(data)
                    got = _echoed(c)
                    ok = got == data
                else:
                    ws_handshake(c)
                    ws_send(c, 2, b"x" * rng.choice([5, 3000]))
                    ws_recv(c)
                    ok = True
            self.note(name, "ok" if ok else "answered")
        except (OSError, Incomplete, ValueError, lib.TestFailure) as ex:
            self.note(name, type(ex).__name__)

    def worker(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            self._one(rng)

    def admin(self):
        """The admin API's readers (pilot-agent polls /stats), one request after the other."""
        paths = ["/stats", "/stats/prometheus", "/config_dump", "/clusters", "/server_info",
                 "/listeners", "/ready"]
        i = 0
        while not self.stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                st, _ = self.e.admin("GET", path, timeout=CLIENT_TIMEOUT_S)
                self.note("admin", "ok" if st == 200 else str(st))
            except (OSError, lib.httpclient.HTTPException) as ex:
                self.note("admin", type(ex).__name__)

    def h2load(self, port, authority, upload):
        """Short h2load runs (h2c prior knowledge), one after the other, until stopped."""
        while not self.stop.is_set():
            argv = ["h2load", "-n", "400", "-c", "4", "-m", "8", "-t", "1", "-T", "10", "-N", "10",
                    "-H", ":authority: %s" % authority, "http://127.0.0.1:%d/size?n=5000" % port]
            if upload:
                argv[argv.index("-H"):argv.index("-H")] = ["-d", upload]
            try:
                p = subprocess.run(argv, capture_output=True, timeout=CLIENT_TIMEOUT_S * 3)
                text = p.stdout.decode("utf-8", "replace")
                m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", text)
                self.note("h2load", "%s done" % (m.group(1) if m else "?"))
            except subprocess.TimeoutExpired:
                self.note("h2load", "timeout")
            with self.lock:
                self.h2load_runs += 1


def _canaries(e, upload_file):
    """Requests on fresh connections that must all succeed now that injection is off."""
    errors = []
    for i in range(8):
        for port in (e.port("inbound"), e.port("outbound")):
            try:
                r = lib.http(port, "GET", "/size?n=100000")
                if r.status != 200 or len(r.body) != 100000:
                    errors.append("GET :%d -> %d, %d bytes" % (port, r.status, len(r.body)))
                body = os.urandom(70000)
                r = lib.http(port, "POST", "/sha256", body=body)
                if r.status != 200 or r.json().get("sha256") != hashlib.sha256(body).hexdigest():
                    errors.append("POST :%d -> %d %r" % (port, r.status, r.body[:80]))
            except (OSError, Incomplete) as ex:
                errors.append("HTTP/1.1 :%d: %r" % (port, ex))
        for host, port in (("app.local", e.port("inbound")), ("h2.local", e.port("outbound"))):
            code, body, p = lib.curl("--http2-prior-knowledge", "-H", "host: " + host,
                                     "http://127.0.0.1:%d/size?n=50000" % port, timeout=15)
            if code != 200 or len(body) != 50000:
                errors.append("h2c %s -> %d, %d bytes %r" % (host, code, len(body), p.stderr[-200:]))
        try:
            with Client(e.port("tcp"), timeout=10) as c:
                c.send(b"canary %d" % i)
                got = _echoed(c)
            if got != b"canary %d" % i:
                errors.append("tcp echo: %r" % got[:80])
        except OSError as ex:
            errors.append("tcp echo: %r" % ex)
    return errors


GAUGES = (".downstream_cx_active", ".downstream_rq_active", ".upstream_rq_active")


def _busy_gauges(e):
    st = e.stats()
    busy = {k: v for k, v in st.items() if isinstance(v, int) and v != 0 and
            (k.endswith(GAUGES) or k in ("server.total_connections", "http2.streams_active"))}
    for k, v in st.items():   # pooled upstream connections may stay, as idle ones only
        if k.endswith(".upstream_cx_active") and v != st.get(k[:-len("active")] + "idle", 0):
            busy[k] = "%d active, %d idle" % (v, st.get(k[:-len("active")] + "idle", 0))
    return busy


@timeout(240)
def test_fault_injection_mixed_traffic(env):
    env.ebb_path = _fault_binary()
    # h2c upstream connections are never "idle" in the pool: a short idle_timeout closes them
    cfg = h2_config(env, h2c_app=False, h2app={"pool": {"idle_timeout": "2s"}},
                    limits={"request_headers_timeout": "3s", "idle_timeout": "5s"})
    cfg["access_log"] = "off"
    asan = "detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
    e = env.ebb(cfg, log_level="info", env_vars={
        "EBB_FAULT": "seed=%d,every=%d" % (SEED, EVERY), "ASAN_OPTIONS": asan})
    upload = os.path.join(env.tmpdir, "upload.bin")
    with open(upload, "wb") as f:
        f.write(os.urandom(30000))
    print("fault injection: seed=%d every=%d for %.0f s (EBB_FAULT_SEED, EBB_FAULT_EVERY, "
          "EBB_FAULT_SECONDS)" % (SEED, EVERY, SECONDS))

    tr = Traffic(e, SEED)
    threads = [threading.Thread(target=tr.worker, args=(SEED * 100 + i,), daemon=True)
               for i in range(6)]
    threads += [threading.Thread(target=tr.h2load, args=(e.port("inbound"), "app.local", None),
                                 daemon=True),
                threading.Thread(target=tr.h2load, args=(e.port("outbound"), "h2.local", upload),
                                 daemon=True),
                threading.Thread(target=tr.admin, daemon=True)]
    e.signal(signal.SIGUSR1)   # injection on: ebb is ready (env.ebb waited for /ready)
    for t in threads:
        t.start()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        check(e.alive(), "ebb exited during injection (rc=%s)" % e.proc.returncode)
        time.sleep(0.2)
    e.signal(signal.SIGUSR2)   # injection off
    tr.stop.set()
    for t in threads:
        t.join(90)
    check(not any(t.is_alive() for t in threads), "a client thread is stuck (ebb hangs an exchange)")
    check(e.alive(), "ebb exited during injection (rc=%s)" % e.proc.returncode)
    print("traffic outcomes: %r" % sorted(tr.outcomes.items()))
    hung = {k: v for k, v in tr.outcomes.items() if k.endswith(":TimeoutError") or k.endswith(":timeout")}
    check(not hung, "clients left waiting %d s during injection (a hung exchange): %r"
          % (CLIENT_TIMEOUT_S, hung))
    corrupt = {k: v for k, v in tr.outcomes.items() if k.endswith(":corrupt")}
    check(not corrupt, "uploads answered 200 for bytes other than those sent (a body lost "
          "bytes silently): %r" % corrupt)
    check(tr.h2load_runs >= 2, "h2load ran only %d times" % tr.h2load_runs)

    errors = _canaries(e, upload)
    check(not errors, "canary failures after injection stopped (%d): %s"
          % (len(errors), "; ".join(errors[:6])))

    box = {}

    def settled():
        box["busy"] = _busy_gauges(e)
        return not box["busy"]
    try:
        wait_for(settled, 30, interval=0.2, what="gauges back to 0")
    except lib.TestFailure:
        fail("gauges did not return to 0 after injection: %r" % box.get("busy"))
    st = e.stats()
    failed = st.get("server.exchanges_failed_resource")
    check(failed is not None, "server.exchanges_failed_resource missing from /stats")
    rc = e.stop(timeout=30)
    check_eq(rc, 0, "ebb exit status")
    err = e.stderr()
    m = re.search(r"^ebb-fault: .*injected=(\d+) calls=(\d+).*$", err, re.M)
    check(m, "no ebb-fault report at exit in ebb's stderr")
    print(m.group(0))
    print("server.exchanges_failed_resource %d, process exits 0 (exit status %d)" % (failed, rc))
    check("LeakSanitizer" not in err, "LeakSanitizer report at exit")
    check(int(m.group(1)) >= 50, "only %s failures injected: the run exercised nothing"
          % m.group(1))
