"""The pod simulation (tests/e2e/podsim.py, issue 9 item 5): a kube-proxy iptables-mode Service
spreads new connections over its pods; removing an endpoint stops new connections to it while an
established one keeps working (conntrack); a client calling POD_IP:8080 is captured by the pod's
`ebb init` rules and goes through ebb; every namespace is gone afterwards, also when the test
body fails."""

import collections
import os

import podsim
from lib import check, check_eq, fail, timeout


def sim(env):
    return podsim.Sim(os.path.join(env.tmpdir, "sim"), env.ebb_path)


def no_namespaces_left(s):
    check_eq(podsim.namespaces(s.prefix), [], "namespaces left after the simulation")


def spread(s, svc, n):
    """Counter of which pod answered n requests, each on a new connection to the VIP."""
    c = collections.Counter()
    for _ in range(n):
        r = s.client_get(svc.vip, svc.port, "/whoami", timeout=5)
        check_eq(r.status, 200, "GET /whoami through the VIP")
        c[r.json()["pod"]] += 1
    return c


@timeout(60)
def test_service_vip_spreads_over_pods(env):
    with sim(env) as s:
        a, b = s.add_pod("a"), s.add_pod("b")
        a.wait_ready()
        b.wait_ready()
        svc = s.service("web")
        svc.set_endpoints([a, b])
        rules = s.node_rules()
        check("-m statistic --mode random --probability 0.5" in rules and
              svc.sep_chain("%s:8080" % a.ip4) in rules, "kube-proxy rules in the node:\n" + rules)
        # 40 connections: both pods answer unless the 50/50 draw failed 40 times in a row
        c = spread(s, svc, 40)
        check_eq(sorted(c), ["a", "b"], "pods that answered through the VIP (%s)" % dict(c))
    no_namespaces_left(s)


@timeout(60)
def test_endpoint_removal_keeps_established_connections(env):
    with sim(env) as s:
        a, b = s.add_pod("a"), s.add_pod("b")
        a.wait_ready()
        b.wait_ready()
        svc = s.service("web")
        svc.set_endpoints([a, b])
        # a keep-alive connection through the VIP that landed on a
        held = None
        for _ in range(60):
            conn = podsim.Conn(s.client, svc.vip, svc.port, timeout=5)
            if conn.get("/whoami").json()["pod"] == "a":
                held = conn
                break
            conn.close()
        if held is None:
            fail("60 connections through the VIP, none reached pod a")
        svc.set_endpoints([b])
        rules = s.node_rules()
        check(svc.sep_chain("%s:8080" % a.ip4) not in rules and a.ip4 not in rules,
              "pod a's KUBE-SEP chain is gone:\n" + rules)
        c = spread(s, svc, 20)
        check_eq(dict(c), {"b": 20}, "new connections after a's endpoint was removed")
        for _ in range(3):      # conntrack keeps the established connection on a
            r = held.get("/whoami")
            check_eq((r.status, r.json()["pod"]), (200, "a"), "the established connection")
        held.close()
    no_namespaces_left(s)


@timeout(60)
def test_pod_ip_goes_through_ebb(env):
    with sim(env) as s:
        a = s.add_pod("a")
        plain = s.add_pod("plain", sidecar=False)
        a.wait_ready()
        plain.wait_ready()
        before = a.stats()
        lis, rq = "listener.0.0.0.0_15006.downstream_cx_total", "http.inbound.downstream_rq_2xx"
        check(lis in before and rq in before, "ebb's inbound stats: %s" % sorted(before)[:20])
        for _ in range(5):
            r = s.client_get(a.ip4, 8080, "/whoami")
            check_eq(r.status, 200, "GET POD_IP:8080/whoami")
            who = r.json()
            check_eq(who["pod"], "a", "who answered")
            check(podsim.is_loopback(who["peer"]),
                  "the app sees the peer %s, a loopback address (ebb)" % who["peer"])
        after = a.stats()
        check(after[lis] >= before[lis] + 5, "%s moved: %s -> %s" % (lis, before[lis], after[lis]))
        check(after[rq] >= before[rq] + 5, "%s moved: %s -> %s" % (rq, before[rq], after[rq]))
        # without a sidecar the app sees the client itself, over IPv4 and IPv6
        for addr, peer in ((plain.ip4, podsim.CLIENT4), (plain.ip6, podsim.CLIENT6)):
            who = s.client_get(addr, 8080, "/whoami").json()
            check_eq((who["pod"], who["peer"]), ("plain", peer), "no sidecar, via %s" % addr)
        # one pod's app calls another pod's IP: captured inbound at pod a, answered by its app
        r = s.client_get(plain.ip4, 8080, "/call?url=http://%s:8080/whoami" % a.ip4)
        check_eq(r.status, 200, "pod plain calling pod a: %r" % r.body[:200])
        check_eq(r.json()["pod"], "a", "the called pod")
    no_namespaces_left(s)


@timeout(60)
def test_everything_removed_on_failure(env):
    s = sim(env)
    try:
        with s:
            a = s.add_pod("a")
            s.service("web").set_endpoints([a])
            check(len(podsim.namespaces(s.prefix)) == 3, "node, client and pod namespaces")
            raise RuntimeError("the test body failed")
    except RuntimeError:
        pass
    no_namespaces_left(s)
    for _, p in a.procs():
        check(p.poll() is not None, "pod a's processes are gone")
