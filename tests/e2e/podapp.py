#!/usr/bin/python3
"""podapp.py - the application container of a simulated pod (tests/e2e/podsim.py).

    podapp.py POD_NAME [PORT ...]        (default ports 8080 9090)

An HTTP/1.1 keep-alive server on every port, IPv4 (0.0.0.0) and IPv6 (::):
  GET /work?ms=L&size=B&id=X  waits L ms, then answers 200 with B bytes ("x" * B)
  GET /whoami                 {"pod", "port", "peer"} as JSON: who answered, and whom it saw
  GET /call?url=URL           calls URL (another pod) with urllib and answers with its status and
                              body: the app's outbound traffic, captured by the pod's rules
  GET /healthz                200 ok
Every response carries `x-pod: POD_NAME`.  Each /work request is logged on stdout as
`start ID` and `done ID` (flushed at once), so a harness can tell which pod a request reached
even when its client never saw an answer.

On SIGTERM it behaves like `ebb drill`'s app (docs/drill.md): it keeps serving what it is sent,
answers with `Connection: close` from then on, and exits (closing its listeners and connections)
once nothing is in flight and the SIGTERM is one second old; `exit` is logged on stdout first.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

POD = sys.argv[1] if len(sys.argv) > 1 else "pod"
PORTS = [int(p) for p in sys.argv[2:]] or [8080, 9090]
LINGER = 1.0                       # seconds after SIGTERM before an idle app exits

lock = threading.Lock()
state = {"inflight": 0, "term_at": None}
out_lock = threading.Lock()


def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):       # no per-request stderr noise
        pass

    def do_GET(self):
        with lock:
            state["inflight"] += 1
        try:
            self.route()
        finally:
            with lock:
                state["inflight"] -= 1

    def route(self):
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path == "/work":
            rid = q.get("id", "-")
            say("start %s" % rid)
            time.sleep(int(q.get("ms", "0")) / 1000.0)
            self.answer(200, b"x" * int(q.get("size", "16")))
            say("done %s" % rid)
        elif u.path == "/whoami":
            body = {"pod": POD, "port": self.server.server_address[1],
                    "peer": self.client_address[0]}
            self.answer(200, json.dumps(body).encode(), "application/json")
        elif u.path == "/call":
            try:
                with urllib.request.urlopen(q["url"], timeout=5) as r:
                    st, body = r.status, r.read()
            except Exception as e:                # noqa: BLE001 - any failure is the answer
                st, body = 502, ("call failed: %s" % e).encode()
            self.answer(st, body)
        elif u.path == "/healthz":
            self.answer(200, b"ok")
        else:
            self.answer(404, b"no such path")

    def answer(self, status, body, ctype="text/plain"):
        # head and body in one write: two small writes would meet Nagle and the peer's
        # delayed ACK (40 ms a response)
        head = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("",))[0]),
                "content-type: " + ctype, "content-length: %d" % len(body), "x-pod: " + POD]
        if state["term_at"] is not None:
            head.append("connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def on_term(signum, frame):
    if state["term_at"] is None:
        state["term_at"] = time.monotonic()
        say("sigterm")


def main():
    servers = []
    for port in PORTS:
        servers.append(ThreadingHTTPServer(("0.0.0.0", port), Handler))
        servers.append(V6Server(("::", port), Handler))
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    say("listening %s" % " ".join(str(p) for p in PORTS))
    while True:
        time.sleep(0.02)
        t = state["term_at"]
        if t is None or time.monotonic() - t < LINGER:
            continue
        with lock:
            if state["inflight"] == 0:
                say("exit")
                os._exit(0)         # closes the listeners and every connection


if __name__ == "__main__":
    main()
