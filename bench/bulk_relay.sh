#!/usr/bin/env bash
# bench/bulk_relay.sh ROUNDS EBB... - CPU an ebb build spends relaying large bodies.
#
# make bench measures small answers; this measures the other end: a 1 GiB body from the bench's
# nginx origin (bench/nginx-origin.conf's /big) through each EBB given (bench/ebb.yaml, one
# worker, access log off) to curl writing to /dev/null, ROUNDS downloads per build, the builds
# taking turns download by download so a burst of other work on the machine hits them alike.
# Prints one line per build: its CPU ticks (utime+stime from /proc/PID/stat, 100 per second)
# per download, and their median.  Use it to compare two builds; on a shared machine quote
# medians of several rounds.  Loopback only; every download under a 60 s timeout; everything
# started is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:?usage: bench/bulk_relay.sh ROUNDS EBB...}
shift
[ $# -gt 0 ] || { echo "usage: bench/bulk_relay.sh ROUNDS EBB..." >&2; exit 2; }
PY=/usr/bin/python3
export PATH=$PATH:/usr/sbin
DIR=$(mktemp -d /tmp/ebb-bulk.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

free_ports() {
    "$PY" - "$1" <<'PYEOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
}

wait_http() {   # URL: polls until it answers, at most 10 s
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "bench/bulk_relay.sh: $1 did not answer" >&2
    exit 1
}

read -r OP <<<"$(free_ports 1)"
mkdir -p "$DIR/origin-tmp"
truncate -s 1G "$DIR/big.bin"   # sparse
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
sed -e "s|@DIR@|$DIR|g; s|@USER@|$USER_LINE|; s|@ORIGIN_ADDR@|127.0.0.1|; s|@ORIGIN_PORT@|$OP|" \
    "$ROOT/bench/nginx-origin.conf" >"$DIR/origin.conf"
nginx -p "$DIR" -c "$DIR/origin.conf" -e "$DIR/origin.err" </dev/null >"$DIR/origin.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$OP/"

declare -a PORT EPID
i=0
for ebb in "$@"; do
    read -r AP SP RP PP <<<"$(free_ports 4)"
    sed -e "s/@CONCURRENCY@/1/; s/@ACCESS_LOG@/off/; s/@ADMIN_PORT@/$AP/; s/@STATUS_PORT@/$SP/" \
        -e "s/@READY_PORT@/$RP/; s/@PROXY_PORT@/$PP/; s/@ORIGIN_PORT@/$OP/" \
        "$ROOT/bench/ebb.yaml" >"$DIR/ebb$i.yaml"
    "$ebb" run -c "$DIR/ebb$i.yaml" >"$DIR/ebb$i.log" 2>&1 &
    EPID[$i]=$!
    PIDS+=($!)
    PORT[$i]=$PP
    wait_http "http://127.0.0.1:$PP/"
    i=$((i + 1))
done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -a RES
for r in $(seq "$ROUNDS"); do
    for j in $(seq 0 $(($# - 1))); do
        t0=$(ticks "${EPID[$j]}")
        got=$(curl -s -o /dev/null -w '%{size_download}' --max-time 60 \
              "http://127.0.0.1:${PORT[$j]}/big") || true
        [ "$got" = 1073741824 ] || { echo "bench/bulk_relay.sh: build $j round $r: $got bytes" >&2; exit 1; }
        RES[$j]="${RES[$j]:-} $(( $(ticks "${EPID[$j]}") - t0 ))"
    done
done
j=0
for ebb in "$@"; do
    med=$(tr ' ' '\n' <<<"${RES[$j]}" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "$ebb ticks per GiB:${RES[$j]} median $med"
    j=$((j + 1))
done
