#!/usr/bin/python3
"""drain_timing.py - measures ebb's two drain latencies that SPEC §3.3/§3.4 put numbers on.

    /usr/bin/python3 bench/drain_timing.py [--ebb build/ebb] [--runs 30] [--json]

(a) exit-on-zero: last connection closed -> process exit (SPEC target: under 10 ms).
    Each run starts ebb with EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true and
    MINIMUM_DRAIN_DURATION=200ms, sends one 600 ms request to the inbound listener, sends
    SIGTERM 100 ms later, and reads the response (it carries Connection: close; ebb then shuts
    down its write side).  The client closes its socket as soon as it sees ebb's FIN: that
    close() is "the last connection closing".  The exit is seen by a thread blocked in poll()
    on a pidfd of ebb (readable the moment the process becomes a zombie), time.monotonic().
    Reported twice:
      client  = exit - the client's close() call (client-side view, includes ebb reading the
                EOF on the socket);
      ebb-log = exit - ebb's own debug log line "conn: #N closed" for that connection (ebb's
                log timestamps are CLOCK_MONOTONIC, the clock of time.monotonic(), so the
                two can be subtracted).
(b) SIGTERM -> readiness 503: the time from just before the kill() call to the first
    `GET :15021/healthz/ready` answer that is 503, polling in a tight loop (one new
    connection per probe, as kubelet does).  Also reported: the probe round trip while LIVE,
    which bounds the resolution of (b).

Runs on loopback only; every run is bounded in time.  Prints min/median/p95/max in ms.
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import lib  # noqa: E402


class Exit:
    """pidfd watcher: .time = monotonic time at which the process exited."""

    def __init__(self, pid):
        self.time = None
        self.fd = os.pidfd_open(pid)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        p.poll(30000)
        self.time = time.monotonic()
        os.close(self.fd)


def start_ebb(env, be, env_vars, name, log_level):
    cfg = env.config(be)
    cfg["access_log"] = "off"
    cfg["concurrency"] = 2
    e = lib.Ebb(env, cfg, name=name, env_vars=env_vars, log_level=log_level)
    return e


def ready_probe(port):
    """(status, send time, receive time) of one GET /healthz/ready on a new connection."""
    t_send = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    finally:
        s.close()
    t_recv = time.monotonic()
    m = re.match(rb"HTTP/1\.1 (\d{3})", buf)
    return (int(m.group(1)) if m else 0), t_send, t_recv


def run_exit_on_zero(env, be, i):
    e = start_ebb(env, be, {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true",
                            "MINIMUM_DRAIN_DURATION": "200ms"}, "eoz%d" % i, "debug")
    ex = Exit(e.pid)
    c = socket.create_connection(("127.0.0.1", e.port("inbound")), timeout=10)
    c.sendall(b"GET /delay?ms=600 HTTP/1.1\r\nHost: app.local\r\n\r\n")
    time.sleep(0.1)
    os.kill(e.pid, signal.SIGTERM)
    buf = b""
    while True:                        # read until ebb's FIN
        d = c.recv(65536)
        if not d:
            break
        buf += d
    t_close = time.monotonic()
    c.close()
    e.proc.wait(10)
    e.stopped = True
    if ex.time is None:
        ex.t.join(5)
    ok = buf.startswith(b"HTTP/1.1 200") and b"delayed 600" in buf and b"connection: close" in buf.lower()
    # the last "conn: #N closed" line before the exit summary
    t_log = None
    for ln in e.stderr().splitlines():
        m = re.match(r"\s*(\d+\.\d+)\s+debug\s+conn: #\d+ closed", ln)
        if m:
            t_log = float(m.group(1))
    reason = re.search(r'exit: reason="([^"]+)"', e.stderr())
    return {"ok": ok and e.proc.returncode == 0 and reason and reason.group(1) == "zero active connections",
            "client_ms": (ex.time - t_close) * 1000.0,
            "ebb_log_ms": (ex.time - t_log) * 1000.0 if t_log else None}


def run_ready(env, be, i):
    e = start_ebb(env, be, {"PROXY_CONFIG": '{"terminationDrainDuration": "3s"}'},
                  "rdy%d" % i, "info")
    port = e.readiness_port
    rtts = []
    for _ in range(20):
        st, ts, tr = ready_probe(port)
        if st != 200:
            raise RuntimeError("readiness %d while LIVE" % st)
        rtts.append((tr - ts) * 1000.0)
    t_kill = time.monotonic()
    os.kill(e.pid, signal.SIGTERM)
    n = 0
    while True:
        st, ts, tr = ready_probe(port)
        n += 1
        if st == 503:
            break
        if tr - t_kill > 5:
            raise RuntimeError("no 503 within 5s")
    res = {"ok": True, "ms": (tr - t_kill) * 1000.0, "probes": n,
           "rtt_ms": statistics.median(rtts)}
    e.stop()
    return res


def summary(vals):
    v = sorted(vals)
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    return {"n": len(v), "min": v[0], "median": statistics.median(v), "p95": p95, "max": v[-1]}


def fmt(s):
    return "%d | %.3f | %.3f | %.3f | %.3f" % (s["n"], s["min"], s["median"], s["p95"], s["max"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ebb", default=os.path.join(REPO, "build", "ebb"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for k in ("PROXY_CONFIG", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "MINIMUM_DRAIN_DURATION"):
        os.environ.pop(k, None)
    tmp = tempfile.mkdtemp(prefix="ebb-drain-timing-")
    env = lib.Env(tmp, os.path.abspath(args.ebb))
    be = env.backend()
    a, b, bad = [], [], 0
    try:
        for i in range(args.runs):
            r = run_exit_on_zero(env, be, i)
            if not r["ok"]:
                bad += 1
                print("run %d (a): unexpected outcome, see %s" % (i, tmp), file=sys.stderr)
                continue
            a.append(r)
        for i in range(args.runs):
            b.append(run_ready(env, be, i))
    finally:
        for e in env.ebbs:
            e.stop()
        be.stop()
    res = {
        "runs": args.runs, "failed_runs": bad,
        "exit_after_last_close_client_ms": summary([r["client_ms"] for r in a]),
        "exit_after_last_close_ebb_log_ms": summary([r["ebb_log_ms"] for r in a if r["ebb_log_ms"] is not None]),
        "sigterm_to_ready_503_ms": summary([r["ms"] for r in b]),
        "ready_probe_rtt_ms": summary([r["rtt_ms"] for r in b]),
        "ready_probes_until_503": summary([float(r["probes"]) for r in b]),
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print("| measurement | runs | min ms | median ms | p95 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        print("| (a) exit-on-zero: client close() of the last connection -> exit | %s |"
              % fmt(res["exit_after_last_close_client_ms"]))
        print("| (a) exit-on-zero: ebb's log \"conn closed\" -> exit | %s |"
              % fmt(res["exit_after_last_close_ebb_log_ms"]))
        print("| (b) SIGTERM kill() -> first readiness 503 | %s |" % fmt(res["sigterm_to_ready_503_ms"]))
        print("| readiness probe round trip while LIVE (resolution of b) | %s |"
              % fmt(res["ready_probe_rtt_ms"]))
        print("\nfailed runs: %d; probes until 503: median %.0f, max %.0f"
              % (bad, res["ready_probes_until_503"]["median"], res["ready_probes_until_503"]["max"]))
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
