"""The soak harness (tests/e2e/soak.py, `make soak`) in a short run, so that the harness
itself is tested by `make test`: every load kind runs against the real ebb, B is drained and
restarted three times (exit-on-zero, forced=0 each), A's fds must return to the pre-load
count and its RSS may grow at most 6 MiB after the first 6 s (the 10-minute run's bound is
1 MiB after the first minute; a short run is still warming its allocator)."""

import copy
import os

import soak
from lib import check, timeout


@timeout(150)
def test_soak_short(env):
    passed, why, s = soak.run_soak(env, seconds=16, drain_every=5, sample_every=2,
                                   min_drain="1s", warmup=6, rss_limit_kib=6 * 1024,
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
    fails_with(lambda t: t.samples[-1].update(rss_kib=t.samples[-1]["rss_kib"] + 7 * 1024),
               "RSS 7 MiB higher at the end")
    fails_with(lambda t: t.tally.unexpected("tcp", "failure", "injected"),
               "an unexpected failure")
