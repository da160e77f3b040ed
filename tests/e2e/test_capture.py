"""Transparent capture (SPEC §9.2-9.4) in a pod made of network namespaces: `ebb init`'s rules
send every connection through ebb, which finds where each was going (SO_ORIGINAL_DST).

The pod namespace runs `ebb init` (nft or legacy backend), an app that does not know ebb
exists (tests/e2e/capture_app.py, and h2backend.py for h2c), and ebb as uid 1337 with Istio's
ports; a client namespace on a veth pair plays the rest of the cluster.  Every check is made
for IPv4 and IPv6.  Namespaces and processes are removed on every way out."""

import json
import os
import signal
import socket
import subprocess
import time

import netnslib
from lib import PY, REPO, Ebb, check, check_eq, fail, timeout, wait_for
from netnslib import CLI4, CLI6, POD4, POD6, Capture, NetNS

E2E = os.path.join(REPO, "tests", "e2e")
HTTP_PORTS, ECHO, BANNER_LISTED, BANNER_SILENT, H2C, EXCLUDED = (8080, 9090), 7070, 2525, 2526, \
    8081, 9091
FAMILIES = ((POD4, CLI4, "127.0.0.6", "InboundPassthroughClusterIpv4"),
            (POD6, CLI6, "::6", "InboundPassthroughClusterIpv6"))


def pod_config(policy="ALLOW_ANY"):
    """Istio's ports; inbound and outbound listeners for both families (REDIRECT sends an
    app's own IPv6 calls to ::1); one outbound route, to the client namespace's server."""
    lst = [
        {"name": "inbound", "address": "0.0.0.0", "port": 15006, "direction": "inbound",
         "cluster": "inbound"},
        {"name": "inbound6", "address": "::", "port": 15006, "direction": "inbound",
         "cluster": "inbound"},
        {"name": "outbound", "address": "127.0.0.1", "port": 15001, "direction": "outbound",
         "routes": [{"host": "known.svc", "cluster": "known"}]},
        {"name": "outbound6", "address": "::1", "port": 15001, "direction": "outbound",
         "routes": [{"host": "known.svc", "cluster": "known"}]},
    ]
    return {
        "concurrency": 1,
        "admin": {"address": "127.0.0.1", "port": 15000},
        "listeners": lst,
        "clusters": [{"name": "inbound", "endpoints": ["127.0.0.1:8080"]},
                     {"name": "known", "endpoints": ["%s:%d" % (CLI4, HTTP_PORTS[1])]}],
        "capture": {"tcp_ports": [BANNER_LISTED], "protocol_detection_timeout": "300ms",
                    "outbound_traffic_policy": policy},
    }


def spawn(ns, argv, log):
    with open(log, "wb") as f:
        return subprocess.Popen(["ip", "netns", "exec", ns.name] + argv, stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def connect(ns, addr, port, timeout_s=10):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with ns.entered():
        s = socket.socket(fam)
    s.settimeout(timeout_s)
    s.connect((addr, port))
    return s


def read_all(s):
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return out, True
        if not b:
            return out, False
        out += b


def http_get(ns, addr, port, host=None, path="/"):
    """One HTTP/1.1 request from a socket made in ns (as root: an app, never ebb's uid).
    Returns (status, body bytes); status 0 when the connection closed without an answer."""
    s = connect(ns, addr, port)
    try:
        h = host or ("[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port))
        s.sendall(("GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % (path, h))
                  .encode())
        data, _ = read_all(s)
    finally:
        s.close()
    if not data:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


class Pod:
    """The pod, its client namespace, the app and ebb; use as a context manager."""

    def __init__(self, env, backend):
        netnslib.require("iptables-%s-restore" % backend, "ip6tables-%s-restore" % backend,
                         "setpriv")
        self.env, self.backend = env, backend
        self.procs, self.ebb = [], None
        os.chmod(env.tmpdir, 0o755)   # ebb runs as uid 1337 and reads its config here

    def __enter__(self):
        self.pod_ns = NetNS("pod", prefix="cap").__enter__()
        try:
            self.cli_ns = NetNS("cli", prefix="cap").__enter__()
            self.link = Capture(self.pod_ns, self.cli_ns)
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.ebb:
            self.ebb.stop()
        for p in self.procs:
            stop(p)
        if getattr(self, "cli_ns", None):
            self.cli_ns.remove()
        self.pod_ns.remove()

    def _start(self):
        pod, cli, t = self.pod_ns, self.cli_ns, self.env.tmpdir
        p = pod.run([self.env.ebb_path, "init", "--force-iptables-binary", self.backend,
                     "-d", "15090,15021,15020,%d" % EXCLUDED])
        check_eq(p.returncode, 0, "ebb init: %r" % p.stderr)
        ready = os.path.join(t, "app.ready")
        self.procs.append(spawn(pod, [PY, os.path.join(E2E, "capture_app.py"), "--http",
                                      "%d,%d,%d" % (HTTP_PORTS + (EXCLUDED,)), "--echo",
                                      str(ECHO), "--banner", "%d,%d" % (BANNER_LISTED,
                                                                       BANNER_SILENT),
                                      "--ready-file", ready], os.path.join(t, "app.log")))
        h2ready = os.path.join(t, "h2.ports")
        self.procs.append(spawn(pod, [PY, os.path.join(E2E, "h2backend.py"), "--host", "0.0.0.0",
                                      "--port", str(H2C), "--ports-file", h2ready],
                                os.path.join(t, "h2app.log")))
        # the rest of the cluster: a server in the client namespace the app calls out to
        fready = os.path.join(t, "far.ready")
        self.procs.append(spawn(cli, [PY, os.path.join(E2E, "capture_app.py"), "--http",
                                      str(HTTP_PORTS[1]), "--echo", str(ECHO), "--ready-file",
                                      fready], os.path.join(t, "far.log")))
        for f in (ready, h2ready, fready):
            wait_for(lambda f=f: os.path.exists(f), 15, what="%s written" % os.path.basename(f))
        self.start_ebb()

    def start_ebb(self, policy="ALLOW_ANY"):
        if self.ebb:
            self.ebb.stop()
        self.ebb = Ebb(self.env, pod_config(policy), name="ebb-%s-%s" % (self.backend, policy),
                       netns=self.pod_ns, uid=1337)

    def stat(self, name):
        return self.ebb.stats().get(name, 0)

    def stats(self):
        return self.ebb.stats()


def delta(before, after, name):
    return after.get(name, 0) - before.get(name, 0)


def check_inbound(pod):
    """A client outside the pod reaches the app on its two ports through ebb; the app sees
    the passthrough source; ebb counts the built-in cluster."""
    for addr, cli_addr, src, cluster in FAMILIES:
        for port in HTTP_PORTS:
            before = pod.stats()
            st, body = http_get(pod.cli_ns, addr, port)
            check_eq(st, 200, "GET %s:%d from the client namespace" % (addr, port))
            got = json.loads(body)
            check_eq(got["port"], port, "the app port the client asked for")
            check_eq(got["peer"], src, "the app sees ebb's passthrough source for %s" % addr)
            after = pod.stats()
            check_eq(delta(before, after, "cluster.%s.upstream_rq_total" % cluster), 1,
                     "%s counts the request to %s:%d" % (cluster, addr, port))
            # a request crosses ebb once: one inbound request, nothing outbound
            check_eq(delta(before, after, "cluster.PassthroughCluster.upstream_rq_total"), 0,
                     "no outbound passthrough for an inbound request")
        want = "[%s]:%d" % (addr, HTTP_PORTS[1]) if ":" in addr else "%s:%d" % (addr, HTTP_PORTS[1])
        pod.ebb.wait_access(lambda recs: any(r.get("upstream_cluster") == cluster and
                                             r.get("upstream_host") == want for r in recs),
                            what="an access-log line naming %s and the original destination %s"
                            % (cluster, want))
    # an excluded inbound port bypasses ebb: the app sees the client itself
    before = pod.stats()
    st, body = http_get(pod.cli_ns, POD4, EXCLUDED)
    check_eq(st, 200, "GET the excluded port")
    check_eq(json.loads(body)["peer"], CLI4, "the excluded port is not captured")
    check_eq(delta(before, pod.stats(), "cluster.InboundPassthroughClusterIpv4.upstream_rq_total"),
             0, "ebb never saw the excluded port's request")


def check_outbound(pod):
    """The app's own calls: to another pod's address (PassthroughCluster), and by a host a
    route names (that route's cluster).  ebb's own upstream connections are not captured."""
    for addr, cli_addr, _, _ in FAMILIES:
        before = pod.stats()
        st, body = http_get(pod.pod_ns, cli_addr, HTTP_PORTS[1])
        check_eq(st, 200, "the app calls %s:%d" % (cli_addr, HTTP_PORTS[1]))
        got = json.loads(body)
        check_eq(got["peer"], addr, "the far server sees the pod's address")
        after = pod.stats()
        check_eq(delta(before, after, "cluster.PassthroughCluster.upstream_rq_total"), 1,
                 "PassthroughCluster counts the call to %s" % cli_addr)
        for c in ("InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv6"):
            check_eq(delta(before, after, "cluster.%s.upstream_rq_total" % c), 0,
                     "the outbound call did not loop back into inbound (%s)" % c)
    # a route names the host: its cluster wins over the original destination (a port where
    # nothing listens)
    before = pod.stats()
    st, body = http_get(pod.pod_ns, CLI4, 4444, host="known.svc")
    check_eq(st, 200, "a routed host goes to its cluster, not to the original destination")
    check_eq(json.loads(body)["port"], HTTP_PORTS[1], "served by the route's cluster")
    check_eq(delta(before, pod.stats(), "cluster.known.upstream_rq_total"), 1, "cluster known")


def check_banner(s, port, what):
    """A server-first exchange on the connected socket s (closed after): the app's banner line
    first, then the client's bytes relayed and echoed."""
    try:
        got = b""
        while not got.endswith(b"\r\n"):
            b = s.recv(100)
            if not b:
                break
            got += b
        check_eq(got, b"220 banner %d\r\n" % port, what)
        s.sendall(b"QUIT\r\n")
        check_eq(s.recv(100), b"QUIT\r\n", "then the client's bytes are relayed")
    finally:
        s.close()


def check_tcp(pod):
    """Raw TCP, a server-first protocol on a capture.tcp_ports port and on another port
    (after protocol_detection_timeout), h2c by prior knowledge, all captured."""
    for addr, cli_addr, _, cluster in FAMILIES:
        s = connect(pod.cli_ns, addr, ECHO)
        s.sendall(b"\x16\x03\x01 not http at all\n")
        s.shutdown(socket.SHUT_WR)
        data, reset = read_all(s)
        s.close()
        check_eq((data, reset), (b"\x16\x03\x01 not http at all\n", False),
                 "raw TCP to %s:%d echoed through ebb" % (addr, ECHO))
        for port in (BANNER_LISTED, BANNER_SILENT):
            check_banner(connect(pod.cli_ns, addr, port), port,
                         "the server speaks first on %s:%d" % (addr, port))
        # the app side of each of those was a connection from the passthrough source
        check(pod.stat("cluster.%s.upstream_cx_total" % cluster) >= 3,
              "%s made the TCP connections" % cluster)
    # the same raw bytes outbound: to the client namespace's echo server
    for addr, cli_addr, _, _ in FAMILIES:
        s = connect(pod.pod_ns, cli_addr, ECHO)
        s.sendall(b"SSH-2.0-outbound\r\n")
        s.shutdown(socket.SHUT_WR)
        data, _ = read_all(s)
        s.close()
        check_eq(data, b"SSH-2.0-outbound\r\n", "outbound raw TCP to %s" % cli_addr)
    # h2c prior knowledge, detected on a captured connection; ebb speaks h2c to the app too
    before = pod.stats()
    p = pod.cli_ns.run(["nghttp", "-n", "--stat", "http://%s:%d/hello" % (POD4, H2C)], timeout=20)
    check_eq(p.returncode, 0, "nghttp through the captured port: %r" % p.stderr[-300:])
    after = pod.stats()
    check_eq(delta(before, after, "cluster.InboundPassthroughClusterIpv4.upstream_rq_total"), 1,
             "the h2c request went through ebb")
    pod.ebb.wait_access(lambda recs: any(r.get("path") == "/hello" and
                                         r.get("protocol") == "HTTP/2" and r.get("status") == 200
                                         for r in recs),
                        what="/hello logged as an HTTP/2 exchange answered 200")


def check_loop_guard(pod):
    """A connection captured on its way to ebb's own port is closed, never forwarded."""
    before = pod.stat("cluster.BlackHoleCluster.upstream_cx_none_healthy")
    s = connect(pod.cli_ns, POD4, 15001)
    s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    data, _ = read_all(s)
    s.close()
    check_eq(data, b"", "nothing answers a capture loop")
    check_eq(pod.stat("cluster.BlackHoleCluster.upstream_cx_none_healthy"), before + 1,
             "the loop is counted as BlackHoleCluster's")


def check_registry_only(pod):
    pod.start_ebb("REGISTRY_ONLY")
    for _, cli_addr, _, _ in FAMILIES:
        st, body = http_get(pod.pod_ns, cli_addr, HTTP_PORTS[1])
        check_eq(st, 502, "REGISTRY_ONLY refuses the call to %s: %r" % (cli_addr, body))
        check(b"REGISTRY_ONLY" in body, "the 502 says why: %r" % body)
        s = connect(pod.pod_ns, cli_addr, ECHO)
        s.sendall(b"raw\n")
        data, _ = read_all(s)
        s.close()
        check_eq(data, b"", "REGISTRY_ONLY closes outbound raw TCP to %s" % cli_addr)
    check_eq(pod.stat("cluster.BlackHoleCluster.upstream_cx_none_healthy"), 4,
             "BlackHoleCluster counts the two requests and the two connections")
    st, _ = http_get(pod.pod_ns, CLI4, 4444, host="known.svc")
    check_eq(st, 200, "a configured route still works under REGISTRY_ONLY")
    st, _ = http_get(pod.cli_ns, POD4, HTTP_PORTS[0])
    check_eq(st, 200, "inbound is not affected by the outbound policy")


def check_drain_closes_a_silent_connection(pod):
    """SPEC §9.2: the drain applies to captured inbound traffic.  A captured connection that
    has sent nothing (protocol detection waits for its first bytes: protocol_detection_timeout
    0, Istio's default) is closed at the drain's idle close, with a FIN, as an idle keep-alive
    connection is, and counted with them; ebb keeps running until the drain's end and still
    answers a request on a new captured connection."""
    cfg = pod_config("ALLOW_ANY")
    cfg["capture"]["protocol_detection_timeout"] = "0s"
    cfg["drain"] = {"idle_close_after": "1s", "idle_close_spread": "0s"}
    cfg["proxy_config"] = {"terminationDrainDuration": "30s"}
    pod.ebb.stop()
    pod.ebb = Ebb(pod.env, cfg, name="ebb-%s-drain" % pod.backend, netns=pod.pod_ns, uid=1337)
    s = connect(pod.cli_ns, POD4, HTTP_PORTS[0], timeout_s=25)
    try:
        active = pod.ebb.lstat("inbound", "downstream_cx_active")
        wait_for(lambda: pod.stat(active) == 1, 20,
                 what="ebb holding the silent captured connection")
        pod.ebb.signal(signal.SIGTERM)
        data, reset = read_all(s)   # the socket's timeout (25 s) is far below the drain's 30 s
        check_eq((data, reset), (b"", False), "the silent connection ends with a FIN")
    finally:
        s.close()
    check(pod.ebb.alive(), "ebb exited before the drain's end: the close was not the drain's "
          "idle close")
    check_eq(pod.stat("http.inbound.downstream_cx_drain_close"), 1,
             "the close counted in downstream_cx_drain_close")
    st, _ = http_get(pod.cli_ns, POD4, HTTP_PORTS[1])
    check_eq(st, 200, "a captured request during the drain")


def check_drain_relays_a_server_first_connection(pod):
    """A captured connection that stays silent until protocol_detection_timeout (300 ms, here
    shorter than the drain's idle close) is a server-first protocol, relayed as TCP, during a
    drain too: the drain leaves TCP connections to finish (SPEC §3.3.7).  The detection timer
    running into the drain used to close it as if it were the idle close."""
    cfg = pod_config("ALLOW_ANY")
    cfg["drain"] = {"idle_close_after": "5s", "idle_close_spread": "0s"}
    cfg["proxy_config"] = {"terminationDrainDuration": "30s"}
    pod.ebb.stop()
    pod.ebb = Ebb(pod.env, cfg, name="ebb-%s-drain-tcp" % pod.backend, netns=pod.pod_ns,
                  uid=1337)
    pod.ebb.signal(signal.SIGTERM)
    wait_for(lambda: pod.stat("server.state") == 1, 20, what="ebb draining")
    check_banner(connect(pod.cli_ns, POD4, BANNER_SILENT, timeout_s=25), BANNER_SILENT,
                 "the server speaks first on a connection accepted during the drain")
    check(pod.ebb.alive(), "ebb exited during the drain")


def capture(env, backend):
    with Pod(env, backend) as pod:
        check_inbound(pod)
        check_outbound(pod)
        check_tcp(pod)
        check_loop_guard(pod)
        st, body = pod.ebb.admin("GET", "/clusters")
        for name in ("InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv6",
                     "PassthroughCluster", "BlackHoleCluster"):
            check(name in body, "/clusters lists %s" % name)
        st, body = pod.ebb.admin("GET", "/config_dump")
        check('"type":"ORIGINAL_DST"' in body.replace(" ", ""), "/config_dump shows the "
              "original-destination clusters")
        check_registry_only(pod)
        check_drain_closes_a_silent_connection(pod)
        check_drain_relays_a_server_first_connection(pod)


@timeout(120)
def test_capture_nft(env):
    capture(env, "nft")


@timeout(120)
def test_capture_legacy(env):
    capture(env, "legacy")
