"""`ebb drill --target URL --during CMD` (issue 10 item 4) against a small live "deployment".

Network namespaces stand in for a node and two pods, and an iptables DNAT rule for a Service's
virtual IP, the way kube-proxy's iptables mode does it:

    node (the drill, the Service VIP 10.96.0.10:80 --DNAT--> a pod)
      +-- veth -- pod A 10.252.1.2: ebb (:15006 -> 127.0.0.1:8080) + backend.py
      +-- veth -- pod B 10.252.2.2: the same, already running (the replacement)

CMD is the rollout: it points the Service at pod B (new connections go there; open ones stay
on A, as conntrack keeps them), sends pod A's ebb SIGTERM and waits for it to exit. The drill's
load is long requests (3 s) through the VIP. With EXIT_ON_ZERO_ACTIVE_CONNECTIONS on pod A the
drill reports no failure; in Istio's default mode (terminationDrainDuration 2 s here) it reports
the requests pod A had in flight as reset, with CMD's start and exit on the timeline.
"""

import json
import os
import subprocess
import threading

import netnslib
from lib import PY, HERE, check, check_eq, fail, free_port, timeout, wait_for

VIP = "10.96.0.10"
LATENCY_MS = 3000
CLIENTS = 3


class Pod:
    """A network namespace with ebb (built-in config: inbound 15006 -> 127.0.0.1:8080) and
    backend.py on 8080, joined to the node namespace by a veth pair."""

    def __init__(self, env, node, name, no, env_vars):
        self.env, self.name = env, name
        self.ns = netnslib.NetNS(name, prefix="dt")
        self.ip = "10.252.%d.2" % no
        self.node_ip = "10.252.%d.1" % no
        self.no = no
        self.node = node
        self.env_vars = env_vars
        self.procs = []

    def start(self):
        self.ns.__enter__()
        ns, node = self.ns, self.node
        a, b = "dtn%d%d" % (os.getpid() % 100000, self.no), "dtp%d%d" % (os.getpid() % 100000, self.no)
        r = netnslib._ip("link", "add", a, "netns", node.name, "type", "veth", "peer", "name", b,
                         "netns", ns.name)
        check(r.returncode == 0, "ip link add veth: %s" % r.stderr.decode().strip())
        node.ip("addr", "add", self.node_ip + "/24", "dev", a)
        node.ip("link", "set", a, "up")
        ns.ip("addr", "add", self.ip + "/24", "dev", b)
        ns.ip("link", "set", b, "up")
        ns.ip("link", "set", "lo", "up")
        # a pod answers whichever node address a client used (the VIP's route picks A's side)
        ns.ip("route", "add", "default", "via", self.node_ip)
        tmp = os.path.join(self.env.tmpdir, self.name)
        os.makedirs(tmp)
        penv = dict(os.environ)
        penv.update(self.env_vars)
        for argv, log in (([PY, os.path.join(HERE, "backend.py"), "--port", "8080"], "backend.log"),
                          ([self.env.ebb_path, "run", "--log-level", "info"], "ebb.stderr")):
            with open(os.path.join(tmp, log), "wb") as f:
                self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns.name] + argv,
                                                   stdout=subprocess.DEVNULL, stderr=f, cwd=tmp,
                                                   env=penv, stdin=subprocess.DEVNULL))
        self.ebb = self.procs[1]
        self.ebb_log = os.path.join(tmp, "ebb.stderr")
        # through ebb to the app, from the node: both up
        wait_for(lambda: node.run(["curl", "-sS", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                                   "http://%s:15006/hello" % self.ip]).stdout == b"200",
                 timeout=20, what="pod %s answering through ebb" % self.name)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.ns.remove()

    def ebb_stderr(self):
        with open(self.ebb_log, "rb") as f:
            return f.read().decode("utf-8", "replace")


def _drill(env, node, a, b, pod_a_vars):
    """Runs the drill through the VIP with CMD = the rollout from pod A to pod B."""
    rollout = ("iptables -t nat -R EBB_SVC 1 -p tcp -j DNAT --to-destination %s:15006 && "
               "kill -TERM %d && tail --pid=%d -f /dev/null" % (b.ip, a.ebb.pid, a.ebb.pid))
    argv = [env.ebb_path, "drill", "--json", "--workdir", os.path.join(env.tmpdir, "drill"),
            "--target", "http://%s/delay?ms=%d" % (VIP, LATENCY_MS), "--during", rollout,
            "--scenario", "long-request", "--clients", str(CLIENTS), "--sigterm-at", "0.5",
            "--endpoint-removal-delay", "0.5", "--grace", "20", "--timeout", "10"]
    p = node.run(argv, timeout=90)
    err = p.stderr.decode("utf-8", "replace")
    with open(os.path.join(env.tmpdir, "drill.stderr"), "w") as f:
        f.write(err)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        fail("ebb drill --json printed no JSON (rc %d)\n%s" % (p.returncode, err[-2000:]))
    check_eq(len(out["scenarios"]), 1, "scenarios in the report")
    _no_sanitizer_report("the drill", err)
    return p.returncode, out["scenarios"][0], err


def _no_sanitizer_report(who, text):
    for pat in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        check(pat not in text, "%s in %s's stderr:\n%s" % (pat, who, text[-3000:]))


def _deployment(env, pod_a_vars, check_result):
    netnslib.require("iptables", "curl", "tail")
    with netnslib.NetNS("node", prefix="dt") as node:
        node.ip("link", "set", "lo", "up")
        a = Pod(env, node, "a", 1, pod_a_vars)
        b = Pod(env, node, "b", 2, {})
        try:
            a.start()
            b.start()
            node.ip("route", "add", "10.96.0.0/16", "dev", "dtn%d1" % (os.getpid() % 100000))
            rules = ("*nat\n:EBB_SVC - [0:0]\n"
                     "-A OUTPUT -d %s/32 -p tcp --dport 80 -j EBB_SVC\n"
                     "-A EBB_SVC -p tcp -j DNAT --to-destination %s:15006\nCOMMIT\n" % (VIP, a.ip))
            r = node.run(["iptables-restore", "--noflush"], input=rules.encode())
            check_eq(r.returncode, 0, "the Service's DNAT rules: %s" % r.stderr.decode())
            r = node.run(["curl", "-sS", "-m", "5", "http://%s/hello" % VIP])
            check_eq(r.stdout, b"hello\n", "GET /hello through the Service VIP")
            # reap pod A's ebb the moment it exits: CMD waits for the pid to be gone, and a
            # zombie child of this process would still be there
            reaper = threading.Thread(target=a.ebb.wait, daemon=True)
            reaper.start()
            rc, s, err = _drill(env, node, a, b, pod_a_vars)
            t = s["total"]
            check_eq(t["sent"], t["completed"] + t["failed"], "sent == completed + failed")
            kinds = [(e["kind"], e["label"]) for e in s["events"]]
            check(("proxy_exit", "CMD exited (status 0)") in kinds, "CMD's exit on the timeline: %r" % kinds)
            check(any(k == "sigterm" and l.startswith("CMD started: iptables") for k, l in kinds),
                  "CMD's start on the timeline: %r" % kinds)
            check(any(k == "endpoint_removal" and l.startswith("load ends") for k, l in kinds),
                  "the load's end on the timeline: %r" % kinds)
            check_eq(a.ebb.wait(timeout=30), 0, "pod A's ebb exit status")
            check_result(rc, s, a.ebb_stderr(), err)
            _no_sanitizer_report("pod A's ebb", a.ebb_stderr())
            _no_sanitizer_report("pod B's ebb", b.ebb_stderr())
            print("%s | sent %d ok %d failed %d | %s" % (
                s["verdict"], t["sent"], t["completed"], t["failed"],
                ", ".join("%.2fs %s" % (e["t_ms"] / 1000.0, e["label"][:40]) for e in s["events"])))
        finally:
            a.stop()
            b.stop()


@timeout(120)
def test_drill_target_rollout_exit_on_zero_loses_nothing(env):
    def result(rc, s, a_log, err):
        check_eq((rc, s["total"]["failed"]), (0, 0), "drill exit status and failures "
                 "(verdict %s)\n%s" % (s["verdict"], err[-1500:]))
        check('exit: reason="zero active connections"' in a_log, "pod A exited at zero connections")
        check(s["total"]["completed"] > CLIENTS, "requests completed on pod A and pod B: %r" % s["total"])
    _deployment(env, {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true", "MINIMUM_DRAIN_DURATION": "1s"},
                result)


@timeout(120)
def test_drill_target_rollout_default_mode_cuts_in_flight(env):
    def result(rc, s, a_log, err):
        check_eq(rc, 1, "drill exit status (a request failed)")
        check_eq(s["total"]["reset"], CLIENTS, "the requests pod A had in flight, reset "
                 "(verdict %s)" % s["verdict"])
        check_eq(s["total"]["failed"], CLIENTS, "no other failure (%r)" % s["total"])
        check('exit: reason="terminationDrainDuration elapsed"' in a_log,
              "pod A exited at terminationDrainDuration")
    _deployment(env, {"PROXY_CONFIG": '{"terminationDrainDuration": "2s"}'}, result)


def test_drill_target_flag_errors(env):
    """Mistakes in the live mode's flags: exit 2 and one line that names the flag."""
    cases = [
        (["--target", "https://example.invalid/"], "--target: \"https://example.invalid/\" is not an http:// URL"),
        (["--target", "http://127.0.0.1:99999/"], "\"99999\" is not a port"),
        (["--target", "http:///x"], "has no host"),
        (["--during", "true"], "--during needs --target"),
        (["--target", "http://127.0.0.1:1/", "--proxy", "nginx"], "--proxy, --proxy-cmd, --mode and --prestop-sleep are for the local drill"),
        (["--target", "http://127.0.0.1:1/", "--scenario", "outbound"], "the outbound scenario needs the drill's own app"),
    ]
    for args, want in cases:
        p = subprocess.run([env.ebb_path, "drill", "-q"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode("utf-8", "replace")
        check_eq(p.returncode, 2, "ebb drill %s exit status (stderr %r)" % (" ".join(args), err))
        check(want in err, "ebb drill %s says %r: %r" % (" ".join(args), want, err))
    # a target nothing listens on: a setup error naming it, not a run with every request refused
    port = free_port()
    p = subprocess.run([env.ebb_path, "drill", "-q", "--workdir", os.path.join(env.tmpdir, "d"),
                        "--target", "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    check_eq(p.returncode, 2, "drill against a closed port: exit status (%r)" % err)
    check("cannot connect: Connection refused" in err, "says why: %r" % err)
