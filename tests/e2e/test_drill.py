"""test_drill.py - `ebb drill` counts what really happened.

Known failures are injected (the app resetting every Nth response; fault_proxy.py as the
proxy under test: RST, a cut body, 503, a proxy process killed mid-response) and the drill's
JSON must count them exactly.  A short real drill against ebb checks the zero-loss claim and
the report's shape (text, JSON, SVG).
"""

import json
import os
import re
import subprocess

from lib import PY, HERE, check, check_eq, fail, timeout

FAULT_PROXY = os.path.join(HERE, "fault_proxy.py")
QUICK = ["--sigterm-at", "1", "--endpoint-removal-delay", "1", "--grace", "8", "--timeout", "5"]


def drill(env, *args, want_rc=None, bound=60):
    argv = [env.ebb_path, "drill", "--json", "--workdir", os.path.join(env.tmpdir, "drill")]
    argv += list(args)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=bound,
                       stdin=subprocess.DEVNULL)
    with open(os.path.join(env.tmpdir, "drill.stderr"), "wb") as f:
        f.write(p.stderr)
    err = p.stderr.decode("utf-8", "replace")
    if want_rc is not None and p.returncode != want_rc:
        fail("ebb drill exited %d, want %d\nstderr tail:\n%s" % (p.returncode, want_rc, err[-3000:]))
    try:
        out = json.loads(p.stdout)
    except ValueError:
        fail("ebb drill --json printed no JSON (rc %d): %r\n%s" % (p.returncode, p.stdout[:500], err[-2000:]))
    return out, err


def one(out):
    check_eq(len(out["scenarios"]), 1, "number of scenarios in the JSON")
    return out["scenarios"][0]


def fault_cmd(env, mode, every):
    stats = os.path.join(env.tmpdir, "fault.json")
    cmd = "exec %s %s --listen {listen_port} --app {app_port} --every %d --mode %s --stats %s" % (
        PY, FAULT_PROXY, every, mode, stats)
    return cmd, stats


def read_stats(path):
    with open(path) as f:
        return json.load(f)


def check_sum(s):
    t = s["total"]
    failed = sum(t[k] for k in ("refused", "reset", "5xx", "timeout", "truncated", "other"))
    check_eq(t["failed"], failed, "failed == sum of causes")
    check_eq(t["sent"], t["completed"] + t["failed"], "sent == completed + failed")


@timeout(60)
def test_drill_app_reset_counted_as_truncated(env):
    """The app cuts every 5th response (head + half the body, then RST); no proxy."""
    out, _ = drill(env, "--scenario", "steady", "--proxy", "none", "--app-reset-every", "5",
                   "--clients", "2", *QUICK, want_rc=1)
    s = one(out)
    check_sum(s)
    t = s["inbound"]
    check(t["sent"] >= 20, "too few requests sent: %r" % t)
    check_eq(t["truncated"], t["sent"] // 5, "truncated == every 5th of %d" % t["sent"])
    check_eq(t["completed"], t["sent"] - t["sent"] // 5, "completed")
    check_eq(t["failed"], t["truncated"], "no other failure")
    check(s["verdict"].startswith("FAIL: %d of %d requests failed (%d truncated)"
                                  % (t["failed"], t["sent"], t["failed"])), s["verdict"])


def _fault_case(env, mode, cause):
    cmd, stats_path = fault_cmd(env, mode, 7)
    out, err = drill(env, "--scenario", "steady", "--proxy-cmd", cmd, "--clients", "3", *QUICK,
                     want_rc=1)
    s = one(out)
    st = read_stats(stats_path)
    check_sum(s)
    t = s["total"]
    check(st["faults"] >= 3, "the proxy injected too few faults: %r" % st)
    check_eq(t["sent"], st["requests"], "requests the drill sent vs the proxy received")
    check_eq(t[cause], st["faults"], "%s counted vs faults injected" % cause)
    check_eq(t["failed"], st["faults"], "failed vs faults injected")
    check_eq(t["completed"], st["requests"] - st["faults"], "completed")
    check_eq(s["proxy"], "cmd", "proxy")
    check(s["proxy_exit_ms"] is not None, "proxy exit not seen")


@timeout(60)
def test_drill_counts_proxy_rst_as_reset(env):
    _fault_case(env, "rst", "reset")


@timeout(60)
def test_drill_counts_cut_body_as_truncated(env):
    _fault_case(env, "cut", "truncated")


@timeout(60)
def test_drill_counts_503(env):
    _fault_case(env, "503", "5xx")


@timeout(60)
def test_drill_proxy_killed_mid_response(env):
    """One client; the proxy process dies while relaying request 10: requests 1-9 complete,
    10 is truncated, every later attempt is refused."""
    cmd, stats_path = fault_cmd(env, "die", 10)
    out, _ = drill(env, "--scenario", "steady", "--proxy-cmd", cmd, "--clients", "1", *QUICK,
                   want_rc=1)
    s = one(out)
    st = read_stats(stats_path)
    check_sum(s)
    t = s["total"]
    check_eq(st["requests"], 10, "requests the proxy received before dying")
    check_eq(t["completed"], 9, "completed")
    check_eq(t["truncated"], 1, "truncated")
    check_eq(t["refused"], t["sent"] - 10, "refused (every attempt after the death)")
    check_eq(t["reset"] + t["5xx"] + t["timeout"] + t["other"], 0, "other causes")
    check(s["proxy_exit_ms"] is not None and s["proxy_exit_ms"] < s["sigterm_ms"],
          "proxy exit (%r) before SIGTERM (%r)" % (s["proxy_exit_ms"], s["sigterm_ms"]))


@timeout(60)
def test_drill_refused_when_nothing_listens_after_exit(env):
    """A proxy that exits at once on SIGTERM (503 mode never fires: every=1000000) loses the
    requests clients still send until the endpoint removal: all counted as refused."""
    cmd, _ = fault_cmd(env, "503", 1000000)
    cmd += " --linger 0"
    out, _ = drill(env, "--scenario", "steady", "--proxy-cmd", cmd, "--clients", "2", *QUICK,
                   want_rc=1)
    s = one(out)
    check_sum(s)
    t = s["total"]
    check(t["refused"] > 0, "nothing refused: %r" % t)
    check(t["completed"] > 0, "nothing completed before the exit: %r" % t)


@timeout(60)
def test_drill_ebb_exit_on_zero_long_request_zero_loss(env):
    """The seed's case, shortened: 3 s requests in flight at SIGTERM, ebb in exit-on-zero mode."""
    svg = os.path.join(env.tmpdir, "t.svg")
    out, err = drill(env, "--scenario", "long-request", "--latency", "3", "--clients", "4",
                     "--sigterm-at", "0.5", "--svg", svg, want_rc=0)
    s = one(out)
    check_sum(s)
    check_eq(s["total"]["failed"], 0, "failed")
    check_eq(s["total"]["completed"], 4, "completed")
    check(s["pass"], "pass")
    check_eq(s["mode"], "exit-on-zero", "mode")
    # ebb's drain phases are on the timeline
    labels = [e["label"] for e in s["events"]]
    for want in ("ebb: drain start", "ebb: minimum drain elapsed", "ebb: exit (zero active connections)"):
        check(want in labels, "event %r missing from %r" % (want, labels))
    # exit-on-zero: ebb leaves as soon as the minimum drain is over (5 s after SIGTERM)
    check(4900 <= s["sigterm_to_exit_ms"] <= 6500, "sigterm_to_exit_ms %r" % s["sigterm_to_exit_ms"])
    with open(svg) as f:
        text = f.read()
    check(text.startswith("<svg") and "</svg>" in text, "not an SVG")
    check("polyline" in text and "SIGTERM" in text, "SVG has no series or no SIGTERM marker")
    check("PASS" in err, "no verdict on stderr")


@timeout(60)
def test_drill_ebb_default_mode_cuts_long_requests(env):
    """Default mode exits terminationDrainDuration (5 s) after SIGTERM: 7 s requests are cut."""
    out, _ = drill(env, "--scenario", "long-request", "--latency", "7", "--clients", "3",
                   "--sigterm-at", "0.5", "--mode", "default", want_rc=1)
    s = one(out)
    check_sum(s)
    check_eq(s["total"]["failed"], 3, "failed")
    check_eq(s["total"]["reset"], 3, "reset (cut before the response head)")
    check(4900 <= s["sigterm_to_exit_ms"] <= 5600, "sigterm_to_exit_ms %r" % s["sigterm_to_exit_ms"])


@timeout(60)
def test_drill_prestop_sleep_delays_the_stop_signal(env):
    """--prestop-sleep models a preStop `sleep` on the proxy: the same 7 s requests that default
    mode cuts survive when the proxy's SIGTERM comes 4 s after the pod's."""
    out, _ = drill(env, "--scenario", "long-request", "--latency", "7", "--clients", "3",
                   "--sigterm-at", "0.5", "--mode", "default", "--prestop-sleep", "4", want_rc=0)
    s = one(out)
    check_sum(s)
    check_eq(s["total"]["failed"], 0, "failed")
    check_eq(s["total"]["completed"], 3, "completed")
    labels = {e["label"]: e["t_ms"] for e in s["events"]}
    pre = [l for l in labels if l.startswith("preStop over")]
    check(pre and "preStop sleep 4.0s on the proxy, SIGTERM to app" in labels,
          "the preStop events: %r" % sorted(labels))
    check(labels[pre[0]] - s["sigterm_ms"] >= 4000, "the stop signal came %d ms after SIGTERM"
          % (labels[pre[0]] - s["sigterm_ms"]))
    # the proxy leaves terminationDrainDuration after its own signal
    check(8900 <= s["sigterm_to_exit_ms"] <= 10500, "sigterm_to_exit_ms %r" % s["sigterm_to_exit_ms"])


@timeout(30)
def test_drill_text_report_and_usage(env):
    p = subprocess.run([env.ebb_path, "drill", "--scenario", "nope"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    check_eq(p.returncode, 2, "bad --scenario exit status")
    check(b"not long-request" in p.stderr, p.stderr)
    p = subprocess.run([env.ebb_path, "drill", "--scenario", "steady", "--proxy", "none", "--quiet",
                        "--workdir", os.path.join(env.tmpdir, "d2")] + QUICK,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check_eq(p.returncode, 0, "exit status of a passing drill")
    text = p.stdout.decode()
    check("PASS: 0 of " in text and "steady" in text, text)


# (argv after `ebb drill`, what stderr must say); every one exits 2 before anything runs
BAD_FLAGS = [
    (["--scenario", "steady,nope"], '--scenario: "nope" is not long-request'),
    (["--proxy", "squid"], '--proxy: "squid" is not ebb, nginx, haproxy or none'),
    (["--proxy", "cmd"], "--proxy cmd needs --proxy-cmd"),
    (["--mode", "fast"], '--mode: "fast" is not default, exit-on-zero or both'),
    (["--stop-signal", "FOO"], '--stop-signal: "FOO" is not TERM, QUIT'),
    (["--clients", "0"], '--clients: "0" is not an integer in 1..1000'),
    (["--streams", "1001"], '--streams: "1001" is not an integer in 1..1000'),
    (["--body-size", "16777217"], '--body-size: "16777217" is not an integer in 0..16777216'),
    (["--app-reset-every", "x"], '--app-reset-every: "x" is not an integer in 0..1000000'),
    (["--sigterm-at", "soon"], '--sigterm-at: "soon" is not a number of seconds or a duration'),
    (["--grace", "-1"], '--grace: "-1" is not a number of seconds or a duration'),
    (["--bogus", "1"], 'unknown flag "--bogus"'),
    (["--json", "--bogus"], 'unknown flag or missing value: "--bogus"'),
    (["--timeout"], 'unknown flag or missing value: "--timeout"'),
]


@timeout(30)
def test_drill_flag_errors(env):
    for args, want in BAD_FLAGS:
        p = subprocess.run([env.ebb_path, "drill"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10, stdin=subprocess.DEVNULL)
        err = p.stderr.decode("utf-8", "replace")
        check_eq(p.returncode, 2, "exit status of ebb drill %s" % " ".join(args))
        check(("ebb drill: " + want) in err, "ebb drill %s: stderr lacks %r:\n%s"
              % (" ".join(args), want, err))
        check_eq(p.stdout, b"", "stdout of ebb drill %s" % " ".join(args))


@timeout(30)
def test_drill_help_lists_every_flag(env):
    """--help (and -h, even after other flags) prints the flag list on stdout and exits 0;
    every flag docs/drill.md mentions is in it, with the bounds the parser enforces."""
    for argv in (["--help"], ["-h"], ["--quiet", "--help", "--bogus"]):
        p = subprocess.run([env.ebb_path, "drill"] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10, stdin=subprocess.DEVNULL)
        check_eq(p.returncode, 0, "ebb drill %s exit status" % " ".join(argv))
    text = p.stdout.decode()
    with open(os.path.join(HERE, "..", "..", "docs", "drill.md")) as f:
        doc_flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", f.read()))
    listed = set(re.findall(r"^  (?:-\w, )?(--[a-z0-9-]+)", text, re.M))
    check(doc_flags <= listed, "flags in docs/drill.md but not in --help: %s"
          % sorted(doc_flags - listed))
    check(re.search(r"^  --clients N .*\[1\.\.1000\]$", text, re.M), "--clients bounds:\n" + text)
