#!/usr/bin/python3
"""fault_proxy.py - a tiny HTTP/1.1 reverse proxy that injects known failures, for
test_drill.py (run by `ebb drill --proxy-cmd`).

    fault_proxy.py --listen PORT --app PORT --every K --mode rst|cut|503|die --stats FILE
                   [--linger S]

It counts the requests it receives (1, 2, 3, ...) and forwards each to the app, except every
K-th, which it spoils:
  rst   resets the client connection before any response byte       (drill: "reset")
  cut   relays the response head and half the body, then resets     (drill: "truncated")
  503   answers 503 itself                                          (drill: "5xx")
  die   relays the head and half the body, then the whole process exits (a proxy killed
        mid-response; later connections are refused)                (drill: "truncated",
        then "refused")
On SIGTERM it keeps serving for --linger seconds, then writes {"requests": N, "faults": F}
to --stats and exits.
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
stats = {"requests": 0, "faults": 0}
args = None


def write_stats():
    with open(args.stats + ".tmp", "w") as f:
        json.dump(stats, f)
    os.replace(args.stats + ".tmp", args.stats)


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fetch(head):
    """The app's whole response (head, body) to this request head, over a fresh connection."""
    up = socket.create_connection(("127.0.0.1", args.app), timeout=30)
    try:
        up.sendall(head)
        rhead, rest = read_head(up, b"")
        if rhead is None:
            raise OSError("app closed")
        length = 0
        for ln in rhead.split(b"\r\n")[1:]:
            if ln.lower().startswith(b"content-length:"):
                length = int(ln.split(b":", 1)[1])
        while len(rest) < length:
            chunk = up.recv(65536)
            if not chunk:
                raise OSError("app closed mid-body")
            rest += chunk
        return rhead, rest[:length]
    finally:
        up.close()


def serve(conn):
    buf = b""
    try:
        while True:
            head, buf = read_head(conn, buf)
            if head is None:
                conn.close()
                return
            with lock:
                stats["requests"] += 1
                n = stats["requests"]
                fault = n % args.every == 0
                if fault:
                    stats["faults"] += 1
                write_stats()
            if fault and args.mode == "rst":
                rst(conn)
                return
            if fault and args.mode == "503":
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nfault")
                continue
            rhead, body = fetch(head)
            if fault:                        # cut / die: head and half the body, then gone
                conn.sendall(rhead + body[:len(body) // 2])
                time.sleep(0.05)
                if args.mode == "die":
                    os._exit(3)
                rst(conn)
                return
            conn.sendall(rhead + body)
    except OSError:
        try:
            conn.close()
        except OSError:
            pass


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--app", type=int, required=True)
    ap.add_argument("--every", type=int, required=True)
    ap.add_argument("--mode", choices=("rst", "cut", "503", "die"), required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--linger", type=float, default=1.5)
    args = ap.parse_args()
    write_stats()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.listen))
    ls.listen(128)
    ls.settimeout(0.05)
    deadline = time.monotonic() + 60         # bounded, whatever happens
    while time.monotonic() < deadline:
        if stop.is_set():                    # keep serving (and accepting) for --linger
            deadline = min(deadline, time.monotonic() + args.linger)
            stop.clear()
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(30)
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    with lock:
        write_stats()
    os._exit(0)


if __name__ == "__main__":
    main()
