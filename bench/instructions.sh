#!/usr/bin/env bash
# bench/instructions.sh [OUT] - user-space instructions per proxied request, ebb vs HAProxy.
#
# CPU time on this shared machine moves with the other work on it; the count of instructions a
# proxy executes per request does not.  Each proxy (ebb: OUT/ebb, bench/ebb.yaml, one worker,
# access log off; HAProxy: bench/haproxy.cfg, one thread) runs under valgrind --tool=callgrind
# in front of one nginx origin (bench/nginx-origin.conf); after a warm-up the counters are
# zeroed, h2load sends INSTR_N requests (HTTP/1.1: --h1 -c 16; h2c: -c 16 -m 64 through ebb),
# the counters are dumped, and the total Ir is divided by INSTR_N.  User space only: the
# kernel's share (the system calls) is counted with strace -c, not here.
# Knobs: INSTR_N=20000 INSTR_TARGETS="ebb ebb-h2 haproxy" INSTR_KEEP=1 (keep the callgrind files
# in the printed directory, for callgrind_annotate --inclusive=yes).
# Loopback only; every wait is bounded; everything started is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-build}
case "$OUT" in /*) ;; *) OUT=$ROOT/$OUT ;; esac
N=${INSTR_N:-20000}
TARGETS=${INSTR_TARGETS:-"ebb ebb-h2 haproxy"}
export PATH=$PATH:/usr/sbin
for tool in valgrind callgrind_control callgrind_annotate nginx haproxy h2load curl python3; do
    command -v "$tool" >/dev/null || { echo "instructions: $tool not found (scripts/deps.sh bench)" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/ebb-instr.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${INSTR_KEEP:-}" ]; then echo "instructions: kept $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

read -r OP PP AP SP RP <<<"$(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)"
mkdir -p "$DIR/origin-tmp"
USER_LINE=; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
sed -e "s|@DIR@|$DIR|g" -e "s|@USER@|$USER_LINE|" -e "s|@ORIGIN_PORT@|$OP|" \
    -e "s|@ORIGIN_ADDR@|127.0.0.1|" "$ROOT/bench/nginx-origin.conf" > "$DIR/origin.conf"
nginx -p "$DIR" -c "$DIR/origin.conf" -e "$DIR/origin.err" </dev/null >"$DIR/origin.out" 2>&1 &
PIDS+=($!)

wait_port() {   # wait_port PORT PID: until PORT answers (valgrind starts slowly), 60 s at most
    local i
    for i in $(seq 600); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

load() {   # load h1|h2 N PORT (bounded by timeout)
    if [ "$1" = h1 ]; then timeout 600 h2load --h1 -n "$2" -c 16 "http://127.0.0.1:$3/"
    else timeout 600 h2load -n "$2" -c 16 -m 64 "http://127.0.0.1:$3/"; fi
}

measure() {   # measure NAME PROTO CMD...: prints "NAME PROTO Ir/request"
    local name=$1 proto=$2 vp out f tot ok
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$DIR/$name.cg" "$@" >"$DIR/$name.out" 2>&1 &
    vp=$!; PIDS+=($vp)
    if ! wait_port "$PP" "$vp"; then
        { echo "instructions: $name did not answer"; tail -5 "$DIR/$name.out"; } >&2
        kill "$vp" 2>/dev/null || true
        return 1
    fi
    load "$proto" 2000 "$PP" >/dev/null 2>&1 || true   # warm-up: pools, buffers
    callgrind_control -z "$vp" >/dev/null 2>&1
    out=$(load "$proto" "$N" "$PP" 2>&1 || true)
    ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
    callgrind_control -d "$vp" >/dev/null 2>&1
    kill "$vp"; wait "$vp" 2>/dev/null || true
    f=$(ls "$DIR/$name.cg".* 2>/dev/null | head -1 || true)
    [ -n "$f" ] && [ "${ok:-0}" = "$N" ] ||
        { echo "instructions: $name: $ok of $N requests succeeded" >&2; return 1; }
    tot=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    printf '%-8s %s  %6d instructions per request (%s requests)\n' "$name" "$proto" $((tot / N)) "$N"
}

ebb_cfg() {
    sed -e "s|@ORIGIN_PORT@|$OP|" -e "s|@PROXY_PORT@|$PP|" -e "s|@ADMIN_PORT@|$AP|" \
        -e "s|@STATUS_PORT@|$SP|" -e "s|@READY_PORT@|$RP|" -e "s|@ACCESS_LOG@|off|" \
        -e "s|@CONCURRENCY@|1|" "$ROOT/bench/ebb.yaml" > "$DIR/ebb.yaml"
}
sed -e "s|@DIR@|$DIR|g" -e "s|@ORIGIN_PORT@|$OP|" -e "s|@PROXY_PORT@|$PP|" \
    "$ROOT/bench/haproxy.cfg" > "$DIR/haproxy.cfg"
ebb_cfg
cd "$DIR"   # ebb's default mesh-config/annotation paths (./etc/istio/...) find nothing here
for t in $TARGETS; do
    case $t in
        ebb)     measure ebb h1 "$OUT/ebb" run -c "$DIR/ebb.yaml" ;;
        ebb-h2)  measure ebb-h2 h2 "$OUT/ebb" run -c "$DIR/ebb.yaml" ;;
        haproxy) measure haproxy h1 haproxy -db -f "$DIR/haproxy.cfg" ;;
        *) echo "instructions: unknown target $t" >&2; exit 2 ;;
    esac
done
