#!/usr/bin/python3
"""rollout.py - a rolling update through a kube-proxy Service, in simulated pods (issue 9 item 6).

    scripts/rollout.py                              # the three modes, the default durations
    scripts/rollout.py --mode exit-on-zero          # or default, none; --json for the report
    scripts/rollout.py --long 7 --propagation 1     # shorter (what make test runs)

Needs root (network namespaces) and build/ebb.  The pods, node, client and Service are those of
tests/e2e/podsim.py (docs/capture.md, "The pod simulation").  What happens, per mode:

  1. 2 old pods start (`ebb init`, ebb as uid 1337, the app as uid 1001; no ebb and no rules in
     mode `none`) and become ready; the Service's endpoints are the two.  Steady load starts
     from the client namespace through the Service VIP: --clients keep-alive clients, back to
     back requests of --latency ms.
  2. 2 new pods start; each becomes an endpoint once ready (ebb's 15021 /healthz/ready and the
     app's /healthz, probed from the node as the kubelet does).
  3. For each old pod in turn: a wave of --wave long requests (--long s, each on a new
     connection through the VIP, so some land on the old pod); once they are all sent, the
     pod's endpoint is removed (kube-proxy rewrites its rules; conntrack keeps the connections
     already made); --propagation s later SIGTERM goes to ebb and the app at the same moment
     (a classic sidecar); SIGKILL after --grace s; the pod is deleted once both have exited.
  4. The load stops once the last old pod is gone; every long request is waited for.

Modes: `exit-on-zero` (EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true), `default` (Istio's defaults:
terminationDrainDuration 5 s), `none` (no sidecar: the app serves directly).  The app keeps
serving what it is sent after SIGTERM (with `Connection: close`) and exits once nothing is in
flight and the SIGTERM is a second old, like `ebb drill`'s app.

Report (like `ebb drill`): requests sent / ok / failed by kind (refused, reset, truncated, 5xx,
timeout, other) for the steady and the long requests, the long requests that were on an old pod
when it got SIGTERM (completed vs cut, with the time they still needed), requests served per
pod, and a timeline (ebb's drain phases from its log included); an ebb crash or sanitizer
report in a pod is printed as a PROBLEM.  Exit status 0 when no request failed and no problem
was seen in any mode run, 1 otherwise, 2 on a usage or setup error (e.g. not root).
"""

import argparse
import collections
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import podsim                   # noqa: E402
from lib import Skip, TestFailure  # noqa: E402
from podsim import Conn, HttpError  # noqa: E402

MODES = {
    "exit-on-zero": (True, {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"},
                     "ebb, EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true"),
    "default": (True, {}, "ebb, default (terminationDrainDuration 5s)"),
    "none": (False, {}, "no sidecar"),
}
KINDS = ("refused", "reset", "truncated", "5xx", "timeout", "other")
TERMINATION_DRAIN = 5.0      # Istio's default terminationDrainDuration, the default mode's cut
EBB_PHASES = (("exit: reason=", "exit"), ("drain started", "drain start"),
              ("inbound listeners closed", "inbound listeners closed"),
              ("MINIMUM_DRAIN_DURATION", "minimum drain elapsed"),
              ("terminationDrainDuration", "terminationDrainDuration elapsed"),
              ("drain_deadline", "drain_deadline reached"))


class Interrupted(Exception):
    pass


class Rollout:
    def __init__(self, args, mode, workdir, progress):
        self.a, self.mode = args, mode
        self.sidecar, self.ebb_env, self.label = MODES[mode]
        self.workdir = workdir
        self.progress = progress
        self.lock = threading.Lock()
        self.events = []                 # (monotonic, text)
        self.reqs = []                   # dicts: kind, id, sent, end, outcome, pod, detail
        self.stop = threading.Event()
        self.threads = []
        self.term = {}                   # pod name -> SIGTERM monotonic
        self.t0 = time.monotonic()
        # every loop ends by this time, whatever happens
        self.deadline = self.t0 + 60 + 2 * (args.long + args.propagation + args.grace)

    def event(self, text, t=None):
        t = t or time.monotonic()
        with self.lock:
            self.events.append((t, text))
        self.progress("%6.2fs  %s" % (t - self.t0, text))

    def record(self, **r):
        with self.lock:
            self.reqs.append(r)

    # -- load ------------------------------------------------------------------------------

    def steady(self, sim, svc, i):
        conn, n, size = None, 0, self.a.size
        while (not self.stop.is_set() and n < self.a.max_requests and
               time.monotonic() < self.deadline):
            rid = "s%d-%d" % (i, n)
            n += 1
            sent = time.monotonic()
            out, pod, detail = "ok", None, ""
            try:
                if conn is None or not conn.usable():
                    if conn is not None:
                        conn.close()
                    conn = Conn(sim.client, svc.vip, svc.port, timeout=self.a.timeout)
                r = conn.get("/work?ms=%d&size=%d&id=%s" % (self.a.latency, size, rid))
                pod = r.header("x-pod")
                if r.status >= 500:
                    out, detail = "5xx", "status %d" % r.status
                elif r.status != 200 or len(r.body) != size:
                    out, detail = "other", "status %d, %d bytes" % (r.status, len(r.body))
            except HttpError as e:
                out, detail, conn = e.kind, str(e), None
            except Exception as e:      # noqa: BLE001 - e.g. the namespace is gone at an abort
                out, detail, conn = "other", repr(e), None
            self.record(kind="steady", id=rid, sent=sent, end=time.monotonic(), outcome=out,
                        pod=pod, detail=detail)
            if out != "ok":
                self.stop.wait(0.05)        # as ebb drill's clients: 50 ms after a failure
        if conn is not None:
            conn.close()

    def long_request(self, sim, svc, rid, sent_evt):
        sent = time.monotonic()
        out, pod, detail = "ok", None, ""
        conn = None
        try:
            conn = Conn(sim.client, svc.vip, svc.port, timeout=self.a.long + self.a.timeout)
            conn.send("/work?ms=%d&size=%d&id=%s" % (self.a.long * 1000, self.a.size, rid))
            sent = time.monotonic()
            sent_evt.set()
            r = conn.response()
            pod = r.header("x-pod")
            if r.status >= 500:
                out, detail = "5xx", "status %d" % r.status
            elif r.status != 200 or len(r.body) != self.a.size:
                out, detail = "other", "status %d, %d bytes" % (r.status, len(r.body))
        except HttpError as e:
            out, detail = e.kind, str(e)
        except Exception as e:          # noqa: BLE001 - e.g. the namespace is gone at an abort
            out, detail = "other", repr(e)
        finally:
            sent_evt.set()
            if conn is not None:
                conn.close()
        self.record(kind="long", id=rid, sent=sent, end=time.monotonic(), outcome=out, pod=pod,
                    detail=detail)

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self.threads.append(t)
        t.start()
        return t

    def wave(self, sim, svc, k):
        evts = []
        for j in range(self.a.wave):
            e = threading.Event()
            evts.append(e)
            self.spawn(self.long_request, sim, svc, "l%d-%d" % (k, j), e)
        for e in evts:                   # every long request is on its connection
            e.wait(max(0.1, self.deadline - time.monotonic()))
        self.event("wave %d: %d long requests (%g s) sent through the VIP"
                   % (k, self.a.wave, self.a.long))

    # -- the rollout -----------------------------------------------------------------------

    def run(self):
        with podsim.Sim(self.workdir, self.a.ebb, prefix="ro") as sim:
            done = False
            try:
                self.rollout(sim)
                done = True
            finally:
                self.stop.set()          # the load ends before its namespace goes
                # after an error or a signal, a second for the load to notice, not the deadline
                end = self.deadline if done else time.monotonic() + 1
                for t in self.threads:
                    t.join(max(0.01, end - time.monotonic()))
                alive = sum(t.is_alive() for t in self.threads)
                if alive:
                    self.event("%d load threads still running when the namespaces go" % alive)
            self.pods = list(sim.pods)
        self.problems = sim.problems()
        self.ebb_events()
        return self.report()

    def rollout(self, sim):
        a = self.a
        old = [sim.add_pod("old-%d" % i, self.sidecar, self.ebb_env) for i in (1, 2)]
        for p in old:
            p.wait_ready()
        svc = sim.service("web")
        svc.set_endpoints(old)
        self.t0 = time.monotonic()
        self.event("old pods ready; endpoints: old-1 old-2")
        for i in range(a.clients):
            self.spawn(self.steady, sim, svc, i)
        self.event("steady load: %d keep-alive clients, %d ms requests" % (a.clients, a.latency))
        new = []
        for i in (1, 2):
            p = sim.add_pod("new-%d" % i, self.sidecar, self.ebb_env)
            new.append(p)
        for p in new:
            p.wait_ready()
            self.event("%s ready (%s)" % (p.name, "15021 /healthz/ready + app /healthz"
                                          if self.sidecar else "app /healthz"))
        listed = old + new
        svc.set_endpoints(listed)
        self.event("endpoints: " + " ".join(p.name for p in listed))
        for k, p in enumerate(old, 1):
            self.wave(sim, svc, k)
            listed = [x for x in listed if x is not p]
            svc.set_endpoints(listed)
            self.event("%s: endpoint removed (kube-proxy rules rewritten); endpoints: %s"
                       % (p.name, " ".join(x.name for x in listed)))
            time.sleep(a.propagation)        # the scenario's propagation delay, not a wait
            self.term[p.name] = p.terminate()
            self.event("%s: SIGTERM to %s" % (p.name, "ebb and app" if self.sidecar else "app"),
                       self.term[p.name])
            for what, (t, rc, killed) in sorted(p.wait_exit(a.grace).items(),
                                                key=lambda kv: kv[1][0]):
                self.event("%s: %s %s (rc %s)" % (p.name, what, "SIGKILLed after the grace "
                                                   "period" if killed else "exited", rc), t)
            p.remove()
            self.event("%s: deleted" % p.name)
        self.stop.set()
        self.event("load stopped")

    def ebb_events(self):
        """ebb's drain phases from each pod's ebb log (CLOCK_MONOTONIC stamps, as ours)."""
        if not self.sidecar:
            return
        rx = re.compile(r"^(\d+)\.(\d+) +\S+ +drain: (.*)$")
        for p in self.pods:
            for ln in p.log_tail("ebb.stderr", 10000).splitlines():
                m = rx.match(ln)
                if not m:
                    continue
                for needle, label in EBB_PHASES:
                    if needle in m.group(3):
                        if label == "exit":
                            r = re.search(r'reason="([^"]*)"', m.group(3))
                            label = "exit (%s)" % r.group(1) if r else label
                        t = int(m.group(1)) + int(m.group(2)) / 1e6
                        self.events.append((t, "%s: ebb: %s" % (p.name, label)))
                        break

    # -- the report ------------------------------------------------------------------------

    def report(self):
        where = {}                        # request id -> pod whose app received it
        for p in self.pods:
            for ln in p.app_log():
                if ln.startswith("start "):
                    where[ln[6:]] = p.name
        by = {}
        for kind in ("steady", "long"):
            rs = [r for r in self.reqs if r["kind"] == kind]
            c = collections.Counter(r["outcome"] for r in rs)
            by[kind] = {"sent": len(rs), "ok": c["ok"], "failed": len(rs) - c["ok"],
                        "by_kind": {k: c[k] for k in KINDS if c[k]}}
        at_term = []                      # long requests on an old pod when it got SIGTERM
        for r in self.reqs:
            pod = where.get(r["id"]) or r["pod"]
            r["pod"] = pod
            if r["kind"] == "long" and pod in self.term:
                need = r["sent"] + self.a.long - self.term[pod]
                if need > 0:
                    at_term.append({"id": r["id"], "pod": pod, "needed_after_sigterm": need,
                                    "outcome": r["outcome"]})
        served = collections.Counter(r["pod"] or "?" for r in self.reqs if r["outcome"] == "ok")
        failed = by["steady"]["failed"] + by["long"]["failed"]
        total = by["steady"]["sent"] + by["long"]["sent"]
        causes = collections.Counter()
        for k in ("steady", "long"):
            causes.update(by[k]["by_kind"])
        verdict = ("PASS: 0 of %d requests failed" % total if not failed else
                   "FAIL: %d of %d requests failed (%s)" % (
                       failed, total, ", ".join("%d %s" % (n, k) for k, n in causes.items())))
        return {
            "mode": self.mode, "label": self.label, "verdict": verdict, "failed": failed,
            "problems": self.problems,
            "sent": total, "ok": total - failed,
            "steady": by["steady"], "long": by["long"],
            "long_at_sigterm": sorted(at_term, key=lambda x: x["needed_after_sigterm"]),
            "served_by_pod": dict(sorted(served.items())),
            "failures": [{"t": round(r["end"] - self.t0, 3), "kind": r["kind"], "id": r["id"],
                          "pod": r["pod"], "outcome": r["outcome"], "detail": r["detail"]}
                         for r in sorted(self.reqs, key=lambda r: r["end"])
                         if r["outcome"] != "ok"][:200],
            "timeline": [(round(t - self.t0, 3), text) for t, text in sorted(self.events)],
            "params": {k: getattr(self.a, k) for k in ("clients", "latency", "size", "long", "wave",
                                                        "propagation", "grace")},
        }


def text_report(rep):
    out = ["== rollout, %s ==" % rep["label"]]
    out.append("%-8s %7s %7s %7s  %s" % ("", "sent", "ok", "failed", "by kind"))
    for k in ("steady", "long"):
        b = rep[k]
        out.append("%-8s %7d %7d %7d  %s" % (k, b["sent"], b["ok"], b["failed"],
                                              ", ".join("%d %s" % (n, c) for c, n in
                                                        b["by_kind"].items()) or "-"))
    at = rep["long_at_sigterm"]
    done = [x for x in at if x["outcome"] == "ok"]
    if at:
        out.append("long requests on an old pod at its SIGTERM: %d (still needing %.1f-%.1f s): "
                   "%d completed, %d cut" % (len(at), at[0]["needed_after_sigterm"],
                                             at[-1]["needed_after_sigterm"], len(done),
                                             len(at) - len(done)))
    else:
        out.append("long requests on an old pod at its SIGTERM: none")
    out.append("served by pod: " + ", ".join("%s %d" % kv for kv in rep["served_by_pod"].items()))
    out.append("timeline:")
    for t, text in rep["timeline"]:
        out.append("  %7.2fs  %s" % (t, text))
    for f in rep["failures"][:10]:
        out.append("  failed at %.2fs: %s %s on %s: %s" % (f["t"], f["kind"], f["id"], f["pod"],
                                                         f["detail"]))
    out += ["PROBLEM: " + x for x in rep["problems"]]
    out.append(rep["verdict"])
    return "\n".join(out)


def table(reps):
    out = ["| mode | steady sent/ok/failed | long sent/ok/failed | long at SIGTERM: completed / "
           "cut | failed by kind | verdict |", "|---|---|---|---|---|---|"]
    for r in reps:
        at = r["long_at_sigterm"]
        done = len([x for x in at if x["outcome"] == "ok"])
        kinds = collections.Counter()
        for k in ("steady", "long"):
            kinds.update(r[k]["by_kind"])
        out.append("| %s | %d / %d / %d | %d / %d / %d | %d / %d | %s | %s |" % (
            r["label"], r["steady"]["sent"], r["steady"]["ok"], r["steady"]["failed"],
            r["long"]["sent"], r["long"]["ok"], r["long"]["failed"], done, len(at) - done,
            ", ".join("%d %s" % (n, k) for k, n in kinds.items()) or "-",
            "PASS" if not r["failed"] else "FAIL"))
    return "\n".join(out)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="a rolling update through a kube-proxy Service in "
                                 "simulated pods (see the module docstring)")
    ap.add_argument("--ebb", default=os.path.join(REPO, "build", "ebb"))
    ap.add_argument("--mode", default="all", choices=["all"] + list(MODES))
    ap.add_argument("--clients", type=int, default=4, help="steady keep-alive clients (4)")
    ap.add_argument("--latency", type=int, default=20, help="steady request latency, ms (20)")
    ap.add_argument("--size", type=int, default=4096, help="response body bytes (4096)")
    ap.add_argument("--long", type=float, default=8.0, help="long request duration, s (8)")
    ap.add_argument("--wave", type=int, default=16, help="long requests before each endpoint "
                    "removal (16)")
    ap.add_argument("--propagation", type=float, default=2.0, help="endpoint removal to SIGTERM, "
                    "s (2)")
    ap.add_argument("--grace", type=float, default=30.0, help="terminationGracePeriodSeconds (30)")
    ap.add_argument("--timeout", type=float, default=15.0, help="client timeout beyond the "
                    "request's own duration, s (15)")
    ap.add_argument("--max-requests", type=int, default=20000, help="per steady client (20000)")
    ap.add_argument("--workdir", help="logs of every pod (default: a new /tmp/ebb-rollout-*)")
    ap.add_argument("--json", action="store_true", help="the reports as JSON on stdout")
    a = ap.parse_args(argv)
    for name, lo, hi in (("clients", 1, 64), ("latency", 0, 10000), ("size", 0, 1 << 20),
                         ("long", 0.1, 120), ("wave", 0, 256), ("propagation", 0, 60),
                         ("grace", 0, 300), ("timeout", 1, 300), ("max_requests", 1, 10 ** 6)):
        v = getattr(a, name)
        if not lo <= v <= hi:
            ap.error("--%s: %s is not within %s..%s" % (name.replace("_", "-"), v, lo, hi))
    a.ebb = os.path.abspath(a.ebb)
    return a


def run_mode(args, mode, workdir, progress=lambda m: None):
    return Rollout(args, mode, os.path.join(workdir, mode), progress).run()


def main():
    args = parse_args()
    if MODES.get(args.mode, (False,))[0] or args.mode == "all":
        if not os.access(args.ebb, os.X_OK):
            print("rollout: %s is not an executable (run make)" % args.ebb, file=sys.stderr)
            return 2
    workdir = args.workdir or tempfile.mkdtemp(prefix="ebb-rollout-")

    def interrupted(signum, frame):
        raise Interrupted("signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)   # the `with` in Rollout.run cleans up
    reps = []
    try:
        for mode in (list(MODES) if args.mode == "all" else [args.mode]):
            print("rollout: mode %s" % mode, file=sys.stderr)
            rep = run_mode(args, mode, workdir,
                           lambda m: print("  " + m, file=sys.stderr, flush=True))
            reps.append(rep)
            if not args.json:
                print(text_report(rep) + "\n", flush=True)
    except Skip as e:
        print("rollout: cannot run here: %s" % e, file=sys.stderr)
        return 2
    except TestFailure as e:
        print("rollout: setup failed: %s (logs in %s)" % (e, workdir), file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as e:
        print("rollout: interrupted (%s); namespaces removed" % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(reps, indent=1))
    elif len(reps) > 1:
        print(table(reps))
    print("rollout: logs of every pod in %s" % workdir, file=sys.stderr)
    return 1 if any(r["failed"] or r["problems"] for r in reps) else 0


if __name__ == "__main__":
    sys.exit(main())
