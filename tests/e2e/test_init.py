"""`ebb init` (SPEC §9.1): the rule text for istio-iptables' flags and the pod annotations,
bad values, and the rules applied with each iptables backend in network namespaces the test
makes (and removes): applied twice they are one set, --clean leaves no ISTIO_ chain, and they
really capture (SO_ORIGINAL_DST gives the port the client asked for)."""

import os
import re
import socket

import netnslib
from lib import PY, REPO, check, check_eq, fail, run, timeout
from netnslib import CLI4, CLI6, POD4, POD6, Capture, NetNS, original_dst

GOLDEN = ("capture_default.rules", "capture_all_flags.rules", "capture_lists.rules")
FAMILIES = (("iptables", "IPv4"), ("ip6tables", "IPv6"))


def golden(name):
    """(args, expected output) of tests/unit/data/NAME."""
    with open(os.path.join(REPO, "tests", "unit", "data", name)) as f:
        first, rest = f.read().split("\n", 1)
    check(first.startswith("args:"), "%s starts with an args: line" % name)
    return first[5:].split(), rest


def same_text(got, want, what):
    if got == want:
        return
    g, w = got.splitlines(), want.splitlines()
    for i in range(max(len(g), len(w))):
        gl, wl = (g[i] if i < len(g) else "<end>"), (w[i] if i < len(w) else "<end>")
        if gl != wl:
            fail("%s: line %d is %r, want %r" % (what, i + 1, gl, wl))


def test_dry_run_matches_golden_files(env):
    for name in GOLDEN:
        args, want = golden(name)
        p = run([env.ebb_path, "init", "--dry-run", "--ipv6", "on"] + args, check_rc=0)
        same_text(p.stdout.decode(), want, "ebb init --dry-run %s" % " ".join(args))
    # the Istio injection template's arguments, verbatim, and istio-iptables' long forms
    _, want = golden("capture_default.rules")
    template = ["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
                "-x", "", "-b", "*", "-d", "15090,15021,15020"]
    longs = ["--envoy-port=15001", "--inbound-capture-port", "15006", "--proxy-uid=1337",
             "--istio-inbound-interception-mode", "REDIRECT", "--istio-service-cidr=*",
             "--istio-service-exclude-cidr=", "-b*", "-n"]
    for args in (template, longs):
        p = run([env.ebb_path, "init", "-n", "--ipv6=on"] + args, check_rc=0)
        same_text(p.stdout.decode(), want, "ebb init %s" % " ".join(args))
    p = run([env.ebb_path, "init", "-n", "--ipv6", "off"], check_rc=0)
    check(b"ip6tables" not in p.stdout and b"# IPv4" in p.stdout, "--ipv6 off: IPv4 only")


def test_annotations_and_flags(env):
    ann = os.path.join(env.tmpdir, "annotations")
    with open(ann, "w") as f:
        f.write('app="demo"\n'
                'traffic.sidecar.istio.io/includeInboundPorts="8080,9090"\n'
                'traffic.sidecar.istio.io/excludeOutboundPorts="5432"\n'
                'traffic.sidecar.istio.io/excludeOutboundIPRanges="10.96.0.0/12"\n'
                'traffic.sidecar.istio.io/includeOutboundPorts="3306"\n')
    p = run([env.ebb_path, "init", "-n", "--ipv6", "off", "--pod-annotations", ann], check_rc=0)
    out = p.stdout.decode()
    for rule in ("-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT",
                 "-A ISTIO_INBOUND -p tcp --dport 9090 -j ISTIO_IN_REDIRECT",
                 "-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN",
                 "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j RETURN",
                 "-A ISTIO_OUTPUT -p tcp --dport 3306 -j ISTIO_REDIRECT"):
        check(rule + "\n" in out, "annotations give %r:\n%s" % (rule, out))
    # a flag wins over the annotation
    p = run([env.ebb_path, "init", "-n", "--ipv6", "off", "--pod-annotations", ann, "-b", "7070"],
            check_rc=0)
    out = p.stdout.decode()
    check("--dport 7070 -j ISTIO_IN_REDIRECT" in out and "8080" not in out,
          "-b 7070 wins over includeInboundPorts:\n%s" % out)


BAD = [
    (["-p", "abc"], '-p/--envoy-port: "abc" is not a port'),
    (["--inbound-capture-port=70000"], '-z/--inbound-capture-port: "70000" is not a port'),
    (["-u", ""], '-u/--proxy-uid: "" names no uid'),
    (["-m", "TPROXY"], '"TPROXY" is not supported'),
    (["-b", "80,http"], '-b/--istio-inbound-ports: "http" is not a port'),
    (["-i", "10.0.0.0/40"], '-i/--istio-service-cidr: "10.0.0.0/40" is not an address range'),
    (["-x", "*"], '-x/--istio-service-exclude-cidr: "*" is not allowed'),
    (["-o", "25,x"], '-o/--istio-local-outbound-ports-exclude: "x" is not a port'),
    (["--redirect-dns"], "--redirect-dns: an istio-iptables flag ebb init does not support"),
    (["--no-such-flag"], 'unknown flag "--no-such-flag"'),
    (["-d"], "-d needs a value"),
    (["--ipv6", "maybe"], '--ipv6: "maybe" is not auto, on or off'),
    (["--force-iptables-binary", "xt"], '--force-iptables-binary: "xt" is not legacy or nft'),
    (["--pod-annotations", "/nonexistent/annotations"], "cannot read /nonexistent/annotations"),
]


def test_bad_flags_and_annotations_exit_2(env):
    ann = os.path.join(env.tmpdir, "annotations")
    with open(ann, "w") as f:
        f.write('traffic.sidecar.istio.io/excludeInboundPorts="8081,zz"\n')
    cases = BAD + [(["--pod-annotations", ann], "annotation traffic.sidecar.istio.io/"
                    'excludeInboundPorts in %s: "zz" is not a port' % ann)]
    for args, msg in cases:
        p = run([env.ebb_path, "init", "-n"] + args)
        err = p.stderr.decode()
        check_eq(p.returncode, 2, "ebb init %s (stderr %r)" % (" ".join(args), err))
        check(msg in err, "ebb init %s: stderr %r lacks %r" % (" ".join(args), err, msg))
        check_eq(len(err.splitlines()), 1, "one line of error for %s" % args)
        check_eq(p.stdout, b"", "nothing on stdout for %s" % args)


def saved(ns, backend, fam="iptables"):
    p = ns.run(["%s-%s-save" % (fam, backend), "-t", "nat"])
    check_eq(p.returncode, 0, "%s-%s-save: %r" % (fam, backend, p.stderr))
    return p.stdout.decode()


def rules_of(text):
    return sorted(ln for ln in text.splitlines() if ln.startswith("-A "))


def istio_chains(text):
    return sorted(re.findall(r"^:(ISTIO_\w+) ", text, re.M))


def init(env, ns, *args, rc=0):
    p = ns.run([env.ebb_path, "init"] + list(args))
    check_eq(p.returncode, rc, "ebb init %s (stderr %r)" % (" ".join(args), p.stderr))
    return p.stderr.decode()


def apply_twice_and_clean(env, backend):
    netnslib.require("%s-%s-restore" % (FAMILIES[0][0], backend), "ip6tables-%s-save" % backend)
    other = "legacy" if backend == "nft" else "nft"
    with NetNS() as ns:
        ns.ip("link", "set", "lo", "up")
        # a rule of someone else's that must survive init and --clean
        p = ns.run(["iptables-%s" % backend, "-t", "nat", "-A", "PREROUTING", "-p", "udp",
                    "--dport", "53", "-j", "RETURN"])
        check_eq(p.returncode, 0, "adding a foreign rule: %r" % p.stderr)
        err = init(env, ns, "--force-iptables-binary", backend)
        check("with iptables-%s-restore" % backend in err, "stderr names the backend: %r" % err)
        first = {fam: saved(ns, backend, fam) for fam, _ in FAMILIES}
        for fam, what in FAMILIES:
            check_eq(istio_chains(first[fam]), ["ISTIO_INBOUND", "ISTIO_IN_REDIRECT",
                                                "ISTIO_OUTPUT", "ISTIO_REDIRECT"], what + " chains")
            check_eq(len([r for r in rules_of(first[fam]) if "ISTIO" in r]), 18, what + " rules")
            lo6 = "::6/128" if fam == "ip6tables" else "127.0.0.6/32"
            check("-A ISTIO_OUTPUT -s %s -o lo -j RETURN" % lo6 in first[fam],
                  "%s passthrough rule:\n%s" % (what, first[fam]))
        # the second run: the backend holding ebb's rules is found without the flag
        err = init(env, ns)
        check("with iptables-%s-restore" % backend in err, "detected backend: %r" % err)
        for fam, what in FAMILIES:
            again = saved(ns, backend, fam)
            check_eq(rules_of(again), rules_of(first[fam]), what + " rules after a second run")
            check_eq(again.count("-j ISTIO_INBOUND"), 1, what + " jumps to ISTIO_INBOUND")
            check_eq(istio_chains(saved(ns, other, fam)), [], "no ISTIO chain in " + other)
        check("inet6 ::6/128" in ns.ip("-6", "addr", "show", "dev", "lo"), "::6 on lo")
        init(env, ns, "--clean")
        for fam, what in FAMILIES:
            left = saved(ns, backend, fam)
            check("ISTIO_" not in left, "%s after --clean:\n%s" % (what, left))
        check_eq(rules_of(saved(ns, backend)),
                 ["-A PREROUTING -p udp -m udp --dport 53 -j RETURN"], "the foreign rule stays")
        err = init(env, ns, "--clean")
        check("nothing to remove" in err, "a second --clean: %r" % err)


def test_apply_twice_and_clean_nft(env):
    apply_twice_and_clean(env, "nft")


def test_apply_twice_and_clean_legacy(env):
    apply_twice_and_clean(env, "legacy")


def test_without_cap_net_admin(env):
    netnslib.require("iptables-restore", "setpriv")
    with NetNS() as ns:
        p = ns.run(["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
                    env.ebb_path, "init"])
        err = p.stderr.decode()
        check_eq(p.returncode, 1, "ebb init without CAP_NET_ADMIN (stderr %r)" % err)
        check_eq(len(err.splitlines()), 1, "one line: %r" % err)
        check("needs CAP_NET_ADMIN" in err, "names the capability: %r" % err)
        check("ISTIO" not in ns.run(["iptables-save"]).stdout.decode(), "nothing applied")


# -- capture in a pod-like namespace ----------------------------------------------------------

def capture(env, backend):
    netnslib.require("iptables-%s-restore" % backend, "ip6tables-%s-restore" % backend, "setpriv")
    with NetNS("pod") as pod, NetNS("cli") as cli:
        cap = Capture(pod, cli)
        try:
            check_capture(env, cap, backend)
        finally:
            cap.close()


def check_capture(env, cap, backend):
    pod, cli = cap.pod, cap.cli
    init(env, pod, "--force-iptables-binary", backend)
    inb4, inb6 = cap.listen(pod, "0.0.0.0", 15006), cap.listen(pod, "::", 15006)
    out4, out6 = cap.listen(pod, "0.0.0.0", 15001), cap.listen(pod, "::", 15001)
    app4, app6 = cap.listen(pod, "0.0.0.0", 8080), cap.listen(pod, "::", 8080)
    ready4 = cap.listen(pod, "0.0.0.0", 15021)
    far4, far6 = cap.listen(cli, CLI4, 9090), cap.listen(cli, CLI6, 9090)

    # inbound: a client outside the pod calling POD_IP:8080 lands on 15006
    for lsock, addr, peer_addr in ((inb4, POD4, CLI4), (inb6, POD6, CLI6)):
        cap.connect(cli, addr, 8080, "in-" + addr)
        c, peer = cap.arrives(lsock, "in-" + addr)
        check_eq(original_dst(c), (addr, 8080), "SO_ORIGINAL_DST of a captured inbound connection")
        check_eq(peer[0], peer_addr, "the client's address is kept")
    # an excluded inbound port (-d 15021) is not captured
    cap.connect(cli, POD4, 15021, "ready")
    cap.arrives(ready4, "ready")
    # outbound: the app (uid 0) calling another host lands on 15001
    for lsock, addr in ((out4, CLI4), (out6, CLI6)):
        cap.connect(pod, addr, 9090, "out-" + addr)
        c, _ = cap.arrives(lsock, "out-" + addr)
        check_eq(original_dst(c), (addr, 9090), "SO_ORIGINAL_DST of a captured outbound connection")
    # the proxy (uid 1337) is never captured: it reaches the other host itself
    for lsock, addr in ((far4, CLI4), (far6, CLI6)):
        cap.connect(pod, addr, 9090, "proxy-" + addr, uid=1337)
        cap.arrives(lsock, "proxy-" + addr)
    # the app calling itself by pod address (uid 0, over lo) is left alone ...
    cap.connect(pod, POD4, 8080, "self")
    cap.arrives(app4, "self")
    # ... the proxy calling the pod address goes to inbound (rule 2) ...
    cap.connect(pod, POD4, 8080, "proxy-self", uid=1337)
    c, _ = cap.arrives(inb4, "proxy-self")
    check_eq(original_dst(c), (POD4, 8080), "SO_ORIGINAL_DST of the proxy calling its pod")
    # ... unless it comes from 127.0.0.6 / ::6: the inbound passthrough path (rule 1)
    for lsock, addr, src in ((app4, POD4, "127.0.0.6"), (app6, POD6, "::6")):
        cap.connect(pod, addr, 8080, "passthrough-" + src, uid=1337, src=src)
        cap.arrives(lsock, "passthrough-" + src)
    # after --clean nothing is captured any more
    init(env, pod, "--clean")
    cap.connect(cli, POD4, 8080, "after-clean")
    cap.arrives(app4, "after-clean")


@timeout(90)
def test_capture_nft(env):
    capture(env, "nft")


@timeout(90)
def test_capture_legacy(env):
    capture(env, "legacy")
