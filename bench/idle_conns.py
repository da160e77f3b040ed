#!/usr/bin/python3
"""bench/idle_conns.py PORT PID N - memory per idle keep-alive client connection of a proxy.

Opens N connections to 127.0.0.1:PORT, sends one GET on each (keep-alive, the answer read
whole), leaves them open and idle, and reports how much the proxy's resident memory grew,
divided by N: the cost of a pooled client connection (SPEC §2; issue 12). PID is the proxy's
process (its children, nginx's worker, are summed). RSS is read after the growth settles
(two equal readings 100 ms apart, at most 5 s). Prints "bytes_per_conn N_OPEN RSS_BEFORE
RSS_AFTER" on one line. Bounded: N connections, each request under a 10 s timeout.
"""
import os
import socket
import sys
import time


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except OSError:
            pass
    return total


def settled(pid):
    last, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        v = rss_kib(pid)
        if v == last:
            return v
        last = v
        time.sleep(0.1)   # sampling interval of the settle check, not a wait for an event
    return last


def send_get(s, path):
    """Sends GET path; returns (response head, body bytes read with it)."""
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise OSError("closed before the head")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("answer %r" % head[:40])
    return head, body


def get(s):
    head, body = send_get(s, b"/")
    n = 0
    for ln in head.split(b"\r\n"):
        if ln.lower().startswith(b"content-length:"):
            n = int(ln.split(b":")[1])
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise OSError("closed mid-body")
        body += d


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    warm = []
    for _ in range(8):   # the proxy's pools and first buffers, not counted
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        get(s)
        warm.append(s)
    before = settled(pid)
    conns = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            get(s)
            conns.append(s)
        after = settled(pid)
        print("%d %d %d %d" % ((after - before) * 1024 // n, len(conns), before, after))
    finally:
        for s in conns + warm:
            s.close()


if __name__ == "__main__":
    main()
