#!/usr/bin/env python3
"""bench/paired.py RESULTS.tsv [RESULTS.tsv ...] - paired ratios from bench/run.sh's raw rows.

bench/run.sh runs its targets round-robin: in one round (one `rep`) every target gets one wrk
run at one connection count, minutes apart at most, so a burst of other work on a shared machine
tends to hit a round's runs alike.  A ratio taken within each round, and then the median of
those ratios, is steadier than the ratio of two medians.  For every connection count this prints
the median (and range, and count) over every round of every file given:

  cpu      ebb's CPU per request / the reference's (`--ref`, default haproxy)
  user     the same for user time
  log/off  ebb-log's CPU per request / ebb's (the access log's cost), when ebb-log ran

Pooling several files is how docs/performance.md's "28 rounds" figures were made: four runs of
`BENCH_KEEP=1 BENCH_TARGETS="ebb ebb-log haproxy" BENCH_REPEATS=7 ... bench/run.sh build`,
each keeping its directory (results.tsv in it).  HTTP/1.1 rows only.  Standard library only.
"""
import argparse
import csv
import statistics


def load(path):
    """{(target, conns, rep): (cpu_ticks/request, user_ticks/request)} of one results.tsv."""
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            n = int(r["requests"])
            if r["proto"] != "h1" or n == 0:
                continue
            rows[(r["target"], int(r["conns"]), int(r["rep"]))] = (
                int(r["cpu_ticks"]) / n, int(r["user_ticks"]) / n)
    return rows


def summary(xs):
    if not xs:
        return "-"
    return "%.2f [%.2f-%.2f] n=%d" % (statistics.median(xs), min(xs), max(xs), len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", help="results.tsv files of bench/run.sh (BENCH_KEEP=1)")
    ap.add_argument("--ref", default="haproxy", help="the target ebb is compared with")
    args = ap.parse_args()

    cpu, user, log = {}, {}, {}
    for path in args.results:
        rows = load(path)
        for (target, conns, rep), (c, u) in rows.items():
            if target != "ebb":
                continue
            ref = rows.get((args.ref, conns, rep))
            if ref and ref[0] > 0 and ref[1] > 0:
                cpu.setdefault(conns, []).append(c / ref[0])
                user.setdefault(conns, []).append(u / ref[1])
            on = rows.get(("ebb-log", conns, rep))
            if on and c > 0:
                log.setdefault(conns, []).append(on[0] / c)
    if not cpu and not log:
        raise SystemExit("paired: no round has both ebb and %s (or ebb-log) rows" % args.ref)
    print("conns  cpu ebb/%s  |  user ebb/%s  |  log/off (ebb-log/ebb)" % (args.ref, args.ref))
    for conns in sorted(set(cpu) | set(log)):
        print("%5d  %s  |  %s  |  %s" % (conns, summary(cpu.get(conns, [])),
                                          summary(user.get(conns, [])),
                                          summary(log.get(conns, []))))


if __name__ == "__main__":
    main()
