"""netnslib.py - network namespaces for end-to-end tests (they need root).

    with NetNS("pod") as pod:               # `ip netns add ebb-<test>-<pid>-pod`
        pod.ip("link", "set", "lo", "up")   # ip -n NAME ...
        pod.run(["iptables-save"])          # ip netns exec NAME ...
        with pod.entered():                 # sockets made here live in the namespace
            s = socket.socket()

Every namespace is named after the test process's pid and removed on every way out of the
`with` (and a leftover with the same name, from an earlier process that had this pid, is removed
before it is made).  A machine that cannot make namespaces raises lib.Skip with the reason:
never a pass.
"""

import ctypes
import os
import shutil
import socket
import struct
import subprocess
import sys

from lib import PY, Skip, check_eq, fail

CLONE_NEWNET = 0x40000000
SO_ORIGINAL_DST = 80          # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args, timeout=10):
    return subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def require(*tools):
    """Skip unless running as root with `ip` and every tool in tools on PATH (or in sbin)."""
    if os.geteuid() != 0:
        raise Skip("needs root to create network namespaces (running as uid %d)" % os.geteuid())
    for t in ("ip",) + tools:
        if not which(t):
            raise Skip("%s not installed (scripts/deps.sh test installs it)" % t)


def which(tool):
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


class NetNS:
    """One network namespace, named ebb-<prefix>-<pid>[-<suffix>]."""

    def __init__(self, suffix="", prefix="init"):
        self.name = "ebb-%s-%d%s" % (prefix, os.getpid(), "-" + suffix if suffix else "")
        self.path = "/run/netns/" + self.name
        self.made = False

    def __enter__(self):
        if os.path.exists(self.path):        # left by an earlier process with our pid
            _ip("netns", "del", self.name)
        p = _ip("netns", "add", self.name)
        if p.returncode != 0:
            raise Skip("cannot create a network namespace (ip netns add %s: %s)"
                       % (self.name, p.stderr.decode("utf-8", "replace").strip()))
        self.made = True
        return self

    def __exit__(self, *exc):
        self.remove()

    def remove(self):
        if self.made:
            p = _ip("netns", "del", self.name)
            self.made = False
            if p.returncode != 0 and os.path.exists(self.path):
                fail("ip netns del %s: %s" % (self.name, p.stderr.decode().strip()))

    def ip(self, *args):
        """`ip -n NAME ARGS`; fails the test on error."""
        p = _ip("-n", self.name, *args)
        if p.returncode != 0:
            fail("ip -n %s %s: %s" % (self.name, " ".join(args), p.stderr.decode().strip()))
        return p.stdout.decode()

    def run(self, argv, timeout=30, input=None):
        """Runs argv inside the namespace; returns CompletedProcess (bytes)."""
        try:
            return subprocess.run(["ip", "netns", "exec", self.name] + list(argv), input=input,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            fail("%s (in %s) did not finish within %ss" % (" ".join(argv[:6]), self.name, timeout))

    def entered(self):
        return _Entered(self.path)


class _Entered:
    """Switches this thread into a namespace and back (setns(2))."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        try:
            _setns(self.home)
        finally:
            os.close(self.home)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        fail("setns: %s" % os.strerror(e))


def original_dst(conn):
    """(address, port) a REDIRECTed connection was sent to (SO_ORIGINAL_DST)."""
    if conn.family == socket.AF_INET6:
        raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack("!H", raw[2:4])[0]


# -- a pod namespace wired to a client namespace ------------------------------------------

POD4, CLI4 = "10.254.0.1", "10.254.0.2"
POD6, CLI6 = "fd00:ebb::1", "fd00:ebb::2"

CLIENT = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam)
s.settimeout(5)
if len(sys.argv) > 4:
    s.bind((sys.argv[4], 0))
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
"""


class Capture:
    """A pod namespace (ebb init'ed) wired to a client namespace by a veth pair."""

    def __init__(self, pod, cli):
        self.pod, self.cli = pod, cli
        self.socks = []
        veth = "ebi%d" % os.getpid()
        pod.ip("link", "set", "lo", "up")
        cli.ip("link", "set", "lo", "up")
        pod.ip("link", "add", veth + "p", "type", "veth", "peer", "name", veth + "c",
               "netns", cli.name)
        for ns, link, a4, a6 in ((pod, veth + "p", POD4, POD6), (cli, veth + "c", CLI4, CLI6)):
            ns.ip("addr", "add", a4 + "/24", "dev", link)
            ns.ip("-6", "addr", "add", a6 + "/64", "dev", link, "nodad")
            ns.ip("link", "set", link, "up")

    def listen(self, ns, addr, port):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with ns.entered():
            s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        s.listen(16)
        s.settimeout(5)
        self.socks.append(s)
        return s

    def connect(self, ns, addr, port, tag, uid=None, src=None):
        """A client in ns (as uid, from src) connects to addr:port and sends tag."""
        argv = [PY, "-c", CLIENT, addr, str(port), tag]
        if src:
            argv.append(src)
        if uid is not None:
            argv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"] + argv
        p = ns.run(argv, timeout=15)
        check_eq(p.returncode, 0, "client %s -> %s:%s (%s): %r" % (tag, addr, port, ns.name,
                                                                    p.stderr[-500:]))

    def arrives(self, lsock, tag):
        """Accepts on lsock and checks the first connection there carries tag."""
        try:
            c, peer = lsock.accept()
        except socket.timeout:
            fail("%s: no connection reached %s" % (tag, lsock.getsockname()[:2]))
        self.socks.append(c)
        c.settimeout(5)
        got = c.recv(100).decode()
        check_eq(got, tag, "connection on %s" % (lsock.getsockname()[:2],))
        return c, peer

    def close(self):
        for s in self.socks:
            s.close()
