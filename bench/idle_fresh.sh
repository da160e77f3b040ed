#!/usr/bin/env bash
# bench/idle_fresh.sh EBB [N] - bytes per idle keep-alive client connection of a fresh ebb.
#
# make bench measures idle connections on proxies that already carried its load runs, so
# memory their allocator kept from those runs is reused and hides the cost (the run in
# docs/performance.md shows 0 bytes for ebb).  This starts EBB anew (bench/ebb.yaml, one
# worker, access log off) in front of the test origin (tests/e2e/backend.py), sends one request,
# then runs bench/idle_conns.py with N connections (default 10000) and prints its line
# ("bytes_per_conn N_OPEN RSS_BEFORE_KIB RSS_AFTER_KIB").  Use it to compare two builds.
# Loopback only; bounded waits; everything started is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EBB=${1:?usage: bench/idle_fresh.sh EBB [N]}
N=${2:-10000}
PY=/usr/bin/python3
DIR=$(mktemp -d /tmp/ebb-idle.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${IDLE_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT

read -r OP AP SP RP PP <<<"$("$PY" - <<'PYEOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
)"
"$PY" "$ROOT/tests/e2e/backend.py" --port "$OP" >"$DIR/origin.log" 2>&1 &
PIDS+=($!)
sed -e "s/@CONCURRENCY@/1/; s/@ACCESS_LOG@/off/; s/@ADMIN_PORT@/$AP/; s/@STATUS_PORT@/$SP/" \
    -e "s/@READY_PORT@/$RP/; s/@PROXY_PORT@/$PP/; s/@ORIGIN_PORT@/$OP/" \
    "$ROOT/bench/ebb.yaml" >"$DIR/ebb.yaml"
"$EBB" run -c "$DIR/ebb.yaml" >"$DIR/ebb.log" 2>&1 &
EP=$!
PIDS+=($EP)
for _ in $(seq 100); do
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PP/hello" && break   # origin and ebb up
    sleep 0.1
done
curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$PP/hello" || { echo "idle_fresh: ebb did not answer" >&2; exit 1; }
cd "$ROOT/bench" && timeout 300 "$PY" idle_conns.py "$PP" "$EP" "$N"
