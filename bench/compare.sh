#!/usr/bin/env bash
# bench/compare.sh OLD_EBB NEW_EBB - two ebb binaries, paired, on the same origin.
#
# For a change to the data path: is NEW slower than OLD?  Both binaries run at once (one
# worker each, bench/ebb.yaml) in front of one nginx origin (bench/nginx-origin.conf); wrk
# (HTTP/1.1 keep-alive, COMPARE_CONNS connections) and h2load (h2c, 16 x 64 streams to the
# HTTP/1.1 origin) alternate OLD, NEW, OLD, NEW ... COMPARE_PAIRS times, so drift on a shared
# machine hits both alike.  Prints one line per run ("c16 old REQ/S CPU-TICKS USER-TICKS") and,
# per load, the median of the pairwise NEW/OLD req/s ratios, the median CPU and user-time us per
# request, and the median of the pairwise NEW/OLD ratios of each.
# Knobs: COMPARE_PAIRS=6 COMPARE_CONNS="16 64" COMPARE_SECONDS=5 COMPARE_H2_N=100000
# Loopback only; every run is bounded by timeout; everything started is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/compare.sh OLD_EBB NEW_EBB}
NEW=${2:?usage: bench/compare.sh OLD_EBB NEW_EBB}
PAIRS=${COMPARE_PAIRS:-6}
CONNS=${COMPARE_CONNS:-"16 64"}
SECS=${COMPARE_SECONDS:-5}
H2N=${COMPARE_H2_N:-100000}
export PATH=$PATH:/usr/sbin
for tool in nginx wrk h2load curl python3; do
    command -v "$tool" >/dev/null || { echo "compare: $tool not found (scripts/deps.sh bench)" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/ebb-compare.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

read -r OP P1 P2 A1 S1 R1 A2 S2 R2 <<<"$(python3 - <<'PY'
import socket
ports = []
socks = []
for _ in range(9):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s); ports.append(s.getsockname()[1])
print(*ports)
PY
)"
mkdir -p "$DIR/origin-tmp"
USER_LINE=; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
sed -e "s|@DIR@|$DIR|g" -e "s|@USER@|$USER_LINE|" -e "s|@ORIGIN_PORT@|$OP|" \
    -e "s|@ORIGIN_ADDR@|127.0.0.1|" "$ROOT/bench/nginx-origin.conf" > "$DIR/origin.conf"
nginx -p "$DIR" -c "$DIR/origin.conf" -e "$DIR/origin.err" </dev/null >"$DIR/origin.out" 2>&1 &
PIDS+=($!)
render() {   # render PORT ADMIN STATUS READY OUT
    sed -e "s|@ORIGIN_PORT@|$OP|" -e "s|@PROXY_PORT@|$1|" -e "s|@ADMIN_PORT@|$2|" \
        -e "s|@STATUS_PORT@|$3|" -e "s|@READY_PORT@|$4|" -e "s|@ACCESS_LOG@|off|" \
        -e "s|@CONCURRENCY@|1|" "$ROOT/bench/ebb.yaml" > "$5"
}
render "$P1" "$A1" "$S1" "$R1" "$DIR/old.yaml"
render "$P2" "$A2" "$S2" "$R2" "$DIR/new.yaml"
"$OLD" run -c "$DIR/old.yaml" >"$DIR/old.out" 2>&1 & PIDS+=($!); OLDPID=$!
"$NEW" run -c "$DIR/new.yaml" >"$DIR/new.out" 2>&1 & PIDS+=($!); NEWPID=$!
for p in "$OP" "$P1" "$P2"; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.1; done
    curl -s -o /dev/null "http://127.0.0.1:$p/" || { echo "compare: port $p never answered" >&2; exit 1; }
done
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
uticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 }'; }
run_one() {   # run_one LOAD WHO PORT PID
    local t0 t1 u0 u1 r
    t0=$(ticks "$4"); u0=$(uticks "$4")
    if [ "$1" = h2 ]; then
        r=$(timeout 60 h2load -n "$H2N" -c 16 -m 64 -t 1 "http://127.0.0.1:$3/" |
            awk '/finished in/ { print $4 }')
    else
        r=$(timeout $((SECS + 15)) wrk -t1 -c"${1#c}" -d"${SECS}s" "http://127.0.0.1:$3/" |
            awk '/Requests\/sec/ { print $2 }')
    fi
    t1=$(ticks "$4"); u1=$(uticks "$4")
    echo "$1 $2 ${r:-0} $((t1 - t0)) $((u1 - u0))"
}
{
    for c in $CONNS; do
        for _ in $(seq 1 "$PAIRS"); do run_one "c$c" old "$P1" "$OLDPID"; run_one "c$c" new "$P2" "$NEWPID"; done
    done
    for _ in $(seq 1 "$PAIRS"); do run_one h2 old "$P1" "$OLDPID"; run_one h2 new "$P2" "$NEWPID"; done
} | tee "$DIR/runs.txt"
python3 - "$DIR/runs.txt" "$SECS" "$H2N" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1]) if l.strip()]
secs, h2n = float(sys.argv[2]), float(sys.argv[3])
hz = 100.0   # clock ticks per second of /proc/PID/stat
loads = []
for load, who, rps, ticks, uticks in runs:
    if load not in loads:
        loads.append(load)
for load in loads:
    old = [r for r in runs if r[0] == load and r[1] == "old"]
    new = [r for r in runs if r[0] == load and r[1] == "new"]
    ratios = [float(n[2]) / float(o[2]) for o, n in zip(old, new) if float(o[2]) > 0]
    def us(rs, col=3):
        out = []
        for r in rs:
            reqs = h2n if load == "h2" else float(r[2]) * secs
            if reqs:
                out.append(float(r[col]) / hz / reqs * 1e6)
        return out
    def med(v):
        return statistics.median(v) if v else float("nan")
    # the ratio of each interleaved pair, then the median: drift hits both halves of a pair
    cpu_r = [n / o for o, n in zip(us(old), us(new)) if o > 0]
    usr_r = [n / o for o, n in zip(us(old, 4), us(new, 4)) if o > 0]
    name = "h2c 16x64 -> HTTP/1.1" if load == "h2" else "HTTP/1.1 %s conns" % load[1:]
    print("%-24s new/old req/s median %.2f (%d pairs)   CPU us/req old %.1f new %.1f (pair "
          "ratio %.2f)   user us/req old %.1f new %.1f (pair ratio %.2f)"
          % (name, med(ratios), len(ratios), med(us(old)), med(us(new)), med(cpu_r),
             med(us(old, 4)), med(us(new, 4)), med(usr_r)))
PY
