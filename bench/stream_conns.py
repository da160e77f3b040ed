#!/usr/bin/python3
"""bench/stream_conns.py PORT PID N - memory per active streaming connection of a proxy.

Opens N connections to 127.0.0.1:PORT, each GET /big (64 MiB from the origin), reads the
response head and then stops reading: every stream is in flight with its buffers as full as the
proxy lets them get (back-pressure, SPEC §2).  Reports the proxy's resident memory growth
(VmRSS over its processes, settled) divided by N.  Prints "bytes_per_stream N RSS_BEFORE
RSS_AFTER".  Bounded: N connections, 10 s socket timeouts, then everything is closed.
"""
import socket
import sys

from idle_conns import send_get, settled


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before = settled(pid)
    conns = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # the client is slow
            send_get(s, b"/big")
            conns.append(s)
        after = settled(pid)
        print("%d %d %d %d" % ((after - before) * 1024 // n, len(conns), before, after))
    finally:
        for s in conns:
            s.close()


if __name__ == "__main__":
    main()
