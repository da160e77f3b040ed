#!/usr/bin/python3
"""bench/latency_pct.py LOG... - percentiles of h2load --log-files (start µs, status, latency µs
per request), every request of every file pooled: prints "requests p50_ms p99_ms p999_ms non_2xx"
(nearest-rank percentiles)."""
import sys


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    lat, bad = [], 0
    for name in sys.argv[1:]:
        with open(name) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) != 3:
                    continue
                if not parts[1].startswith("2"):
                    bad += 1
                lat.append(int(parts[2]) / 1000.0)
    lat.sort()
    print("%d %.3f %.3f %.3f %d" % (len(lat), pct(lat, 50), pct(lat, 99), pct(lat, 99.9), bad))


if __name__ == "__main__":
    main()
