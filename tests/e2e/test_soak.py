"""The soak harness (tests/e2e/soak.py, `make soak`) in a short run, so that the harness
itself is tested by `make test`: every load kind runs against the real ebb, B is drained and
restarted three times (exit-on-zero, forced=0 each), A's fds must return to the pre-load
count and its RSS may grow at most 6 MiB after the first 6 s (the 10-minute run's bound is
1 MiB after the first minute; a short run is still warming its allocator).  Under ASan
(`make SAN=1 test`) freed memory waits in the sanitizer's quarantine (256 MiB by default), so
RSS says nothing about leaks there: the bound is 1 GiB and LeakSanitizer's report at ebb's
exit, which fails any test, is the leak check."""

import copy
import os
import subprocess

import soak
from lib import check, timeout


def _asan(path):
    ldd = subprocess.run(["ldd", path], stdout=subprocess.PIPE, timeout=30).stdout
    return b"libasan" in ldd


@timeout(150)
def test_soak_short(env):
    limit = 1024 * 1024 if _asan(env.ebb_path) else 6 * 1024
    passed, why, s = soak.run_soak(env, seconds=16, drain_every=5, sample_every=2,
                                   min_drain="1s", warmup=6, rss_limit_kib=limit,
                                   log=lambda m: None)
    out = os.path.join(env.tmpdir, "results")
    soak.write_results(s, passed, why, out, "tests/e2e/test_soak.py (16 s)")
    check(passed, "short soak failed: %s (report: %s/soak.md)" % ("; ".join(why), out))
    for k in s.kinds:
        c = s.tally.kinds.get(k, {})
        check(c.get("ok", 0) + sum(c.get("expected", {}).values()) > 0, "%s never ran" % k)
    check(len(s.drains) >= 3, "only %d drains" % len(s.drains))
    with open(os.path.join(out, "soak.svg")) as f:
        check("<polyline" in f.read(), "the SVG has no plot")

    # the verdict bites: each criterion alone turns the same run into a failure
    def fails_with(mutate, what):
        t = copy.copy(s)
        t.drains = copy.deepcopy(s.drains)
        t.samples = copy.deepcopy(s.samples)
        t.tally = copy.deepcopy(s.tally)
        mutate(t)
        ok, reasons = t.verdict()
        check(not ok, "the verdict passed a run with %s" % what)
    fails_with(lambda t: t.drains[0].update(forced=1), "a drain with forced=1")
    fails_with(lambda t: setattr(t, "fds_after", t.fds_before + 1), "one more fd after the load")
    top = max(x["rss_kib"] for x in s.samples)
    fails_with(lambda t: t.samples[-1].update(rss_kib=top + limit + 1024),
               "RSS 1 MiB over the bound at the end")
    fails_with(lambda t: t.tally.unexpected("tcp", "failure", "injected"),
               "an unexpected failure")
