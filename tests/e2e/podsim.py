"""podsim.py - pods, a node and a kube-proxy Service, simulated with network namespaces.

    with podsim.Sim(workdir, ebb_path) as sim:      # node ns (bridge) + client ns
        a = sim.add_pod("a")                         # pod ns on the bridge: ebb init, ebb, app
        b = sim.add_pod("b", sidecar=False)          # the app alone
        svc = sim.service("web")                     # VIP 10.96.0.10:80 -> pods' 8080
        svc.set_endpoints([a, b])                    # kube-proxy iptables-mode rules, atomically
        r = sim.client_get(svc.vip, 80, "/whoami")   # from the client ns
        a.terminate(); a.wait_exit(30)               # SIGTERM to ebb and app at the same moment

Topology (docs/capture.md, "The pod simulation"): a node namespace holds a bridge `cbr0`
(10.244.0.1/24, fd00:244::1/64) and forwards; each pod namespace has `eth0`, a veth whose other
end is on the bridge (10.244.0.N, fd00:244::N, default route via the node); the client
namespace is joined to the node by a point-to-point veth (10.250.0.2/30, fd00:250::2/64, default
route via the node).  A Service's virtual IP exists only as the node's nat rules, written the
way kube-proxy's iptables mode writes them; the client's packets to the VIP are routed through
the node, where `PREROUTING -> KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-*` DNATs them to a pod.

A pod with a sidecar runs, as in an Istio pod: `ebb init` as root (the init container), then
`ebb run` with the built-in default config as uid 1337 and the app (podapp.py) as uid 1001.

Every namespace is named ebb-<prefix>-<pid>-<name>; leaving the `with` (normally, on an
exception, or on SIGTERM/SIGINT turned into an exception by the caller) kills the pods'
processes and deletes every namespace, then removes whatever else carries the prefix.  Needing
root, `ip`, `iptables-restore`, `setpriv`: otherwise lib.Skip with the reason.
"""

import base64
import hashlib
import ipaddress
import json
import os
import select
import signal
import socket
import subprocess
import time

import netnslib
from lib import CRASH_SIGNALS, PY, SANITIZER_MARKS, Skip, fail
from netnslib import NetNS

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "podapp.py")
PROXY_UID = 1337
APP_UID = 1001
NODE4, NODE6 = "10.244.0.1", "fd00:244::1"
CLIENT4, CLIENT6 = "10.250.0.2", "fd00:250::2"
CLIENT_GW4, CLIENT_GW6 = "10.250.0.1", "fd00:250::1"
VIP = "10.96.0.10"
DRAIN_ENV = ("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "MINIMUM_DRAIN_DURATION", "PROXY_CONFIG")


def cleanup_prefix(prefix):
    """Deletes every namespace whose name starts with prefix (the last line of defence)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for n in names:
        if n.startswith(prefix):
            subprocess.run(["ip", "netns", "del", n], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)


def namespaces(prefix):
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))
    except OSError:
        return []


def _as_uid(uid):
    return ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]


class Sim:
    """The node, its bridge and the client namespace; pods and Services are added to it."""

    def __init__(self, workdir, ebb_path, prefix="pod"):
        self.workdir = workdir
        self.ebb_path = os.path.abspath(ebb_path)
        self.tag = prefix
        self.prefix = "ebb-%s-%d-" % (prefix, os.getpid())
        self.pods = []
        self.services = []
        self.node = self.client = None
        self._rules_written = False
        self._next_ip = 10

    # -- setup and teardown ----------------------------------------------------------------

    def __enter__(self):
        netnslib.require("iptables-restore", "iptables-save", "setpriv", "sysctl")
        os.makedirs(self.workdir, exist_ok=True)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def _setup(self):
        self.node = NetNS("node", self.tag).__enter__()
        self.client = NetNS("client", self.tag).__enter__()
        n, c = self.node, self.client
        for ns in (n, c):
            ns.ip("link", "set", "lo", "up")
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            p = n.run(["sysctl", "-qw", key])
            if p.returncode != 0:
                raise Skip("sysctl %s in a namespace: %s" % (key, p.stderr.decode().strip()))
        n.ip("link", "add", "cbr0", "type", "bridge")
        n.ip("addr", "add", NODE4 + "/24", "dev", "cbr0")
        n.ip("-6", "addr", "add", NODE6 + "/64", "dev", "cbr0", "nodad")
        n.ip("link", "set", "cbr0", "up")
        n.ip("link", "add", "vclient", "type", "veth", "peer", "name", "eth0", "netns", c.name)
        n.ip("addr", "add", CLIENT_GW4 + "/30", "dev", "vclient")
        n.ip("-6", "addr", "add", CLIENT_GW6 + "/64", "dev", "vclient", "nodad")
        n.ip("link", "set", "vclient", "up")
        c.ip("addr", "add", CLIENT4 + "/30", "dev", "eth0")
        c.ip("-6", "addr", "add", CLIENT6 + "/64", "dev", "eth0", "nodad")
        c.ip("link", "set", "eth0", "up")
        c.ip("route", "add", "default", "via", CLIENT_GW4)
        c.ip("-6", "route", "add", "default", "via", CLIENT_GW6)

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Kills every process of every pod, deletes every namespace; safe to call twice."""
        for pod in self.pods:
            pod.kill()
        for pod in self.pods:
            pod.remove()
        for ns in (self.client, self.node):
            if ns is not None:
                ns.remove()
        cleanup_prefix(self.prefix)

    def problems(self):
        """Crashes and sanitizer reports of every pod's ebb (call after the `with`, too)."""
        return [x for pod in self.pods for x in pod.problems()]

    # -- pods and services -----------------------------------------------------------------

    def add_pod(self, name, sidecar=True, ebb_env=None, app_ports=(8080, 9090)):
        """Makes the pod's namespace and starts its processes (ready: Pod.wait_ready)."""
        ix = self._next_ip
        self._next_ip += 1
        pod = Pod(self, name, ix, sidecar, ebb_env or {}, app_ports)
        self.pods.append(pod)
        pod.start()
        return pod

    def service(self, name, port=80, target_port=8080, vip=VIP):
        svc = Service(self, name, vip, port, target_port)
        self.services.append(svc)
        return svc

    def sync_rules(self, stale=()):
        """kube-proxy's syncProxyRules: one iptables-restore --noflush with every Service."""
        text = kube_proxy_rules(self.services, stale, first=not self._rules_written)
        p = self.node.run(["iptables-restore", "--noflush"], input=text.encode())
        if p.returncode != 0:
            fail("iptables-restore in %s: %s\n%s" % (self.node.name,
                                                    p.stderr.decode().strip(), text))
        self._rules_written = True
        return text

    def node_rules(self):
        return self.node.run(["iptables-save", "-t", "nat"]).stdout.decode()

    # -- clients ---------------------------------------------------------------------------

    def client_get(self, addr, port, path, timeout=10, ns=None):
        """One GET on a new connection from the client namespace (or ns): an HttpResult."""
        c = Conn(ns or self.client, addr, port, timeout)
        try:
            return c.get(path)
        finally:
            c.close()


class Pod:
    def __init__(self, sim, name, ix, sidecar, ebb_env, app_ports):
        self.sim, self.name, self.sidecar = sim, name, sidecar
        self.ip4, self.ip6 = "10.244.0.%d" % ix, "fd00:244::%x" % ix
        self.ebb_env, self.app_ports = ebb_env, app_ports
        self.ns = NetNS(name, sim.tag)
        self.dir = os.path.join(sim.workdir, "pod-" + name)
        self.veth = "vp%d" % ix
        self.ebb = self.app = None
        self.term_at = None

    def start(self):
        s, ns = self.sim, self.ns
        ns.__enter__()
        os.makedirs(self.dir, exist_ok=True)
        ns.ip("link", "set", "lo", "up")
        s.node.ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
                  "netns", ns.name)
        s.node.ip("link", "set", self.veth, "master", "cbr0")
        s.node.ip("link", "set", self.veth, "up")
        ns.ip("addr", "add", self.ip4 + "/24", "dev", "eth0")
        ns.ip("-6", "addr", "add", self.ip6 + "/64", "dev", "eth0", "nodad")
        ns.ip("link", "set", "eth0", "up")
        ns.ip("route", "add", "default", "via", NODE4)
        ns.ip("-6", "route", "add", "default", "via", NODE6)
        if self.sidecar:
            p = ns.run([s.ebb_path, "init"])
            with open(os.path.join(self.dir, "init.stderr"), "wb") as f:
                f.write(p.stderr)
            if p.returncode != 0:
                fail("ebb init in pod %s: rc %d: %s" % (self.name, p.returncode,
                                                       p.stderr.decode().strip()))
            # the drain knobs come from ebb_env only, never from the caller's environment
            env = {k: v for k, v in os.environ.items() if k not in DRAIN_ENV}
            env.update(self.ebb_env)
            self.ebb = self._spawn("ebb", _as_uid(PROXY_UID) +
                                   [s.ebb_path, "run", "--log-level", "info"], env)
        self.app = self._spawn("app", _as_uid(APP_UID) + [PY, APP, self.name] +
                               [str(p) for p in self.app_ports], dict(os.environ))

    def _spawn(self, what, argv, env):
        out = open(os.path.join(self.dir, what + ".stdout"), "wb")
        err = open(os.path.join(self.dir, what + ".stderr"), "wb")
        try:
            # `ip netns exec` and setpriv exec: the pid is the process itself
            return subprocess.Popen(["ip", "netns", "exec", self.ns.name] + argv, stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL, cwd="/", env=env)
        finally:
            out.close()
            err.close()

    # -- state -----------------------------------------------------------------------------

    def ready(self):
        """What the kubelet's probes see from the node: ebb's 15021 /healthz/ready (with a
        sidecar) and the app's /healthz on 8080 (through ebb when captured)."""
        for proc in (self.ebb, self.app):
            if proc is not None and proc.poll() is not None:
                fail("pod %s: %s exited during startup (rc %s)\n%s" % (
                    self.name, "ebb" if proc is self.ebb else "app", proc.returncode,
                    self.log_tail("ebb.stderr" if proc is self.ebb else "app.stderr")))
        probes = [(15021, "/healthz/ready")] if self.sidecar else []
        for port, path in probes + [(8080, "/healthz")]:
            try:
                r = self.sim.client_get(self.ip4, port, path, timeout=1, ns=self.sim.node)
            except (OSError, HttpError):
                return False
            if r.status != 200:
                return False
        return True

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                fail("pod %s not ready within %ss\n%s" % (self.name, timeout,
                                                          self.log_tail("ebb.stderr")))
            time.sleep(0.05)

    def terminate(self):
        """The kubelet's classic-sidecar shutdown: SIGTERM to every container at once."""
        self.term_at = time.monotonic()
        for proc in (self.ebb, self.app):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return self.term_at

    def procs(self):
        return [(w, p) for w, p in (("ebb", self.ebb), ("app", self.app)) if p is not None]

    def wait_exit(self, grace):
        """Waits until ebb and the app exit, SIGKILLs what is left after grace seconds (the
        terminationGracePeriodSeconds).  Returns {what: (exit monotonic time, rc, killed)}."""
        out = {}
        deadline = (self.term_at or time.monotonic()) + grace
        while len(out) < len(self.procs()):
            for what, p in self.procs():
                if what not in out and p.poll() is not None:
                    out[what] = (time.monotonic(), p.returncode, False)
            if time.monotonic() > deadline:
                for what, p in self.procs():
                    if what not in out:
                        p.kill()
                        p.wait(5)
                        out[what] = (time.monotonic(), p.returncode, True)
            time.sleep(0.01)
        return out

    def kill(self):
        for _, p in self.procs():
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    def remove(self):
        self.kill()
        self.ns.remove()

    def problems(self):
        """ebb's crash (a crash signal) or sanitizer report, if any (list of strings)."""
        if self.ebb is None:
            return []
        out = []
        rc = self.ebb.poll()
        if rc is not None and rc < 0 and -rc in [int(x) for x in CRASH_SIGNALS]:
            out.append("pod %s: ebb died of signal %d" % (self.name, -rc))
        text = self.log_tail("ebb.stderr", 1000000)
        for m in SANITIZER_MARKS:
            if m in text:
                i = text.index(m)
                out.append("pod %s: sanitizer report in ebb's stderr:\n%s"
                           % (self.name, text[max(0, i - 200):i + 2000]))
                break
        return out

    def admin(self, path):
        """GET path from ebb's admin port (127.0.0.1:15000 inside the pod)."""
        return self.sim.client_get("127.0.0.1", 15000, path, timeout=5, ns=self.ns)

    def stats(self):
        r = self.admin("/stats")
        if r.status != 200:
            fail("pod %s: GET :15000/stats answered %d" % (self.name, r.status))
        out = {}
        for ln in r.body.decode().splitlines():
            k, sep, v = ln.partition(": ")
            if sep:
                out[k] = int(v) if v.strip().isdigit() else v.strip()
        return out

    def app_log(self):
        with open(os.path.join(self.dir, "app.stdout"), "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def log_tail(self, what, n=20):
        try:
            with open(os.path.join(self.dir, what), "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


# -- kube-proxy's rules ------------------------------------------------------------------------

def _hash(s):
    """kube-proxy's chain-name hash: base32(sha256(s)), first 16 characters."""
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


class Service:
    """A ClusterIP Service: a VIP:port whose endpoints are pods' IP:target_port."""

    def __init__(self, sim, name, vip, port, target_port, namespace="default", port_name="http"):
        self.sim, self.name, self.vip, self.port = sim, name, vip, port
        self.target_port = target_port
        self.port_name = "%s/%s:%s" % (namespace, name, port_name)  # kube-proxy's ServicePortName
        self.svc_chain = "KUBE-SVC-" + _hash(self.port_name + "tcp")
        self.endpoints = []

    def sep_chain(self, ep):
        return "KUBE-SEP-" + _hash(self.port_name + "tcp" + ep)

    def set_endpoints(self, pods):
        """Rewrites the rules for the ready endpoints `pods`, as kube-proxy does when an
        EndpointSlice changes: one atomic iptables-restore; chains of endpoints that left are
        flushed and deleted in the same transaction.  Established connections to a removed
        endpoint stay (conntrack), as in Kubernetes."""
        old = set(self.endpoints)
        self.endpoints = ["%s:%d" % (p.ip4, self.target_port) for p in pods]
        stale = [self.sep_chain(ep) for ep in sorted(old - set(self.endpoints))]
        return self.sim.sync_rules(stale)


def kube_proxy_rules(services, stale=(), first=False):
    """The iptables-restore input of kube-proxy's iptables mode for these Services (the nat
    table only; filter-table rules and NodePorts are not simulated)."""
    chains = ["KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"]
    rules = []
    if first:   # kube-proxy makes these jumps once, outside its restore; here in the first one
        rules += ['-A PREROUTING -m comment --comment "kubernetes service portals" '
                  '-j KUBE-SERVICES',
                  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
                  '-j KUBE-POSTROUTING']
    rules += ["-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
              "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
              "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
              '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring '
              'SNAT" -j MASQUERADE --random-fully']
    for svc in services:
        if not svc.endpoints:
            continue
        chains.append(svc.svc_chain)
        rules.append('-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment "%s cluster IP" '
                     '-m tcp --dport %d -j %s' % (svc.vip, svc.port_name, svc.port,
                                                  svc.svc_chain))
        n = len(svc.endpoints)
        for i, ep in enumerate(svc.endpoints):
            sep = svc.sep_chain(ep)
            chains.append(sep)
            stat = ""
            if i < n - 1:     # endpoint i of n is taken with probability 1/(n-i)
                stat = " -m statistic --mode random --probability %0.10f" % (1.0 / (n - i))
            rules.append('-A %s -m comment --comment "%s -> %s"%s -j %s'
                         % (svc.svc_chain, svc.port_name, ep, stat, sep))
            ip = ep.rsplit(":", 1)[0]
            rules.append('-A %s -s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ'
                         % (sep, ip, svc.port_name))
            rules.append('-A %s -p tcp -m comment --comment "%s" -m tcp -j DNAT '
                         '--to-destination %s' % (sep, svc.port_name, ep))
    head = ["*nat"] + [":%s - [0:0]" % c for c in chains + list(stale)]
    return "\n".join(head + rules + ["-X %s" % c for c in stale] + ["COMMIT", ""])


# -- a small HTTP/1.1 client that can live in any namespace -----------------------------------

class HttpResult:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class HttpError(Exception):
    """A request that got no complete answer; kind is refused, reset, truncated or timeout."""

    def __init__(self, kind, msg):
        Exception.__init__(self, "%s: %s" % (kind, msg))
        self.kind = kind


class Conn:
    """One keep-alive HTTP/1.1 connection from namespace ns to addr:port."""

    def __init__(self, ns, addr, port, timeout=10):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with ns.entered():
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.addr, self.port = addr, port
        self.buf = b""
        self.path, self.in_body = None, False
        self.closed = False
        try:
            self.sock.connect((addr, port))
        except socket.timeout:
            self.sock.close()
            raise HttpError("timeout", "connect to %s:%d timed out" % (addr, port))
        except OSError as e:
            self.sock.close()
            raise HttpError("refused", "connect to %s:%d: %s" % (addr, port, e))
        self.local = self.sock.getsockname()

    def usable(self):
        """False once the server has closed or reset the (idle) connection: a good client
        checks before reusing a pooled connection."""
        if self.closed:
            return False
        r, _, _ = select.select([self.sock], [], [], 0)
        return not r

    def get(self, path, host="svc"):
        self.send(path, host)
        return self.response()

    def send(self, path, host="svc"):
        """Sends a GET (the answer: response())."""
        self.path, self.in_body = path, False
        try:
            self.sock.sendall(("GET %s HTTP/1.1\r\nhost: %s\r\n\r\n" % (path, host)).encode())
        except OSError as e:
            self.close()
            raise HttpError("reset", "%s: %s" % (path, e))

    def response(self):
        try:
            return self._response()
        except socket.timeout:
            self.close()
            raise HttpError("timeout", "%s: no complete answer" % self.path)
        except OSError as e:      # reset: before the head is a reset, in the body truncated
            self.close()
            raise HttpError("truncated" if self.in_body else "reset", "%s: %s" % (self.path, e))

    def _recv(self):
        d = self.sock.recv(65536)
        if not d:
            return False
        self.buf += d
        return True

    def _response(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._recv():
                self.close()
                raise HttpError("reset", "connection closed before a response head")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        self.in_body = True
        while len(self.buf) < n:
            if not self._recv():
                self.close()
                raise HttpError("truncated", "%d of %d body bytes" % (len(self.buf), n))
        body, self.buf = self.buf[:n], self.buf[n:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return HttpResult(status, headers, body)

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()


def is_loopback(addr):
    a = ipaddress.ip_address(addr.split("%")[0])
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a.is_loopback
