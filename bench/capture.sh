#!/usr/bin/env bash
# bench/capture.sh OUT - ebb's CPU per request for captured inbound traffic vs direct 15006
# traffic (SPEC §9.2; `make bench` runs it after bench/run.sh, `make bench-capture` alone).
#
# A pod made of network namespaces, as tests/e2e/test_capture.py makes it: a pod namespace
# (10.254.0.1) with `ebb init`'s rules, an origin nginx (bench/nginx-origin.conf, 1 worker) on
# 0.0.0.0:8080, and ebb (bench/ebb-capture.yaml: concurrency 1, access log off) as uid 1337
# with its inbound listener 0.0.0.0:15006 -> cluster 127.0.0.1:8080; a client namespace
# (10.254.0.2) on a veth pair runs wrk:
#   captured  wrk http://10.254.0.1:8080/   REDIRECTed to 15006; ebb reads SO_ORIGINAL_DST,
#             sniffs the first bytes and forwards to 10.254.0.1:8080 from 127.0.0.6
#             (InboundPassthroughClusterIpv4)
#   direct    wrk http://10.254.0.1:15006/  the original destination is ebb's own address, so
#             no sniffing: the configured cluster "inbound"
# each with keep-alive connections and with `Connection: close` (a new connection per request,
# where the per-connection getsockopt and sniff costs show). Per run ebb's utime+stime
# (/proc/PID/stat) is sampled around wrk and divided by wrk's requests; the two targets are
# interleaved (alternating which goes first) and medians over the repeats are reported. After
# each run ebb's counters must show every request on the path claimed (the expected cluster
# counted at least wrk's requests, the other one none), or the bench fails.
#
# Knobs (environment): BENCH_CAPTURE_DURATION=3 BENCH_CAPTURE_REPEATS=7 BENCH_CAPTURE_CONNS=16
#   BENCH_CAPTURE_MODES="keepalive close" BENCH_REPORT=docs/performance.md ("-" = none)
# Needs root (namespaces, iptables); otherwise the report's section says why and nothing is
# measured. Namespaces (with their veth and rules) and processes are removed on every exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-build}
case "$OUT" in /*) ;; *) OUT=$ROOT/$OUT ;; esac
EBB=$OUT/ebb

DURATION=${BENCH_CAPTURE_DURATION:-3}
REPEATS=${BENCH_CAPTURE_REPEATS:-7}
CONNS=${BENCH_CAPTURE_CONNS:-16}
MODES=${BENCH_CAPTURE_MODES:-"keepalive close"}
REPORT=${BENCH_REPORT:-$ROOT/docs/performance.md}
POD4=10.254.0.1 CLI4=10.254.0.2 APP_PORT=8080 INBOUND_PORT=15006 PROXY_UID=1337

log() { printf 'bench capture: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

DIR=$(mktemp -d /tmp/ebb-bench-capture.XXXXXX)
chmod 755 "$DIR"            # ebb runs as uid 1337 and reads its config here
POD=ebb-capbench-$$-pod CLI=ebb-capbench-$$-cli VETH=ebcb$$
NETNS=()                    # namespaces this script made, deleted on exit (veth and rules go too)
PIDS=()                     # processes this script started, killed by pid on exit

cleanup() {
    local pid i alive ns
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 30); do   # up to 3 s, then SIGKILL what is left
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || log "could not delete netns $ns"; done
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# skip REASON - nothing can be measured here: say why, in the output and in the report.
skip() {
    log "skipped: $*"
    "$PY" "$ROOT/bench/capture_report.py" --skip "$*" --report "$REPORT"
    exit 0
}

in_pod() { ip netns exec "$POD" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces (running as uid $(id -u))"
for tool in ip iptables-restore setpriv wrk nginx curl; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (scripts/deps.sh bench installs it)"
done
[ -x "$EBB" ] || die "$EBB not built"

# -- the pod -------------------------------------------------------------------------------
for ns in "$POD" "$CLI"; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns"   # left by an earlier process with our pid
    err=$(ip netns add "$ns" 2>&1) || skip "cannot create a network namespace (ip netns add $ns: $err)"
    NETNS+=("$ns")
done
ip -n "$POD" link set lo up
ip -n "$CLI" link set lo up
ip -n "$POD" link add "${VETH}p" type veth peer name "${VETH}c" netns "$CLI"
ip -n "$POD" addr add "$POD4/24" dev "${VETH}p"
ip -n "$CLI" addr add "$CLI4/24" dev "${VETH}c"
ip -n "$POD" link set "${VETH}p" up
ip -n "$CLI" link set "${VETH}c" up
err=$(in_pod "$EBB" init 2>&1) || skip "ebb init failed in the pod namespace: $err"

# render TEMPLATE DEST VAR=VALUE... - substitute @VAR@ placeholders (as bench/run.sh does).
render() {
    local src=$1 dst=$2; shift 2
    local args=() kv
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$src" >"$dst"
    if grep -q '@[A-Z_]*@' "$dst"; then die "unrendered placeholder in $dst"; fi
}

# wait_http NS URL PID SECONDS - poll, from namespace NS, until URL answers 200 (no fixed sleep);
# fails if PID exits first or the deadline passes.
wait_http() {
    local ns=$1 url=$2 pid=$3 deadline=$((SECONDS + $4))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || { log "pid $pid exited before $url answered"; return 1; }
        [ "$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" ||
             true)" = 200 ] && return 0
        sleep 0.05
    done
    log "$url did not answer 200 within $4 s"
    return 1
}

mkdir -p "$DIR/origin-tmp"
render "$ROOT/bench/nginx-origin.conf" "$DIR/origin.conf" DIR="$DIR" USER="user root;" \
    ORIGIN_ADDR=0.0.0.0 ORIGIN_PORT=$APP_PORT
# not through in_pod: `ip netns exec` execs, so $! is nginx's master itself (a function run in
# the background would be a subshell, and killing it would leave nginx running)
ip netns exec "$POD" nginx -p "$DIR" -c "$DIR/origin.conf" -e "$DIR/origin.error.log" </dev/null \
    >"$DIR/origin.out" 2>&1 &
PIDS+=($!); ORIGIN=$!
wait_http "$POD" "http://127.0.0.1:$APP_PORT/" "$ORIGIN" 10 ||
    { cat "$DIR/origin.out" "$DIR/origin.error.log" >&2 2>/dev/null; die "origin nginx did not start"; }

render "$ROOT/bench/ebb-capture.yaml" "$DIR/ebb.yaml" APP_PORT=$APP_PORT
# `ip netns exec` and setpriv exec, so $! is ebb itself; cwd = DIR so ebb's default
# mesh-config/annotation paths (./etc/istio/...) find nothing
(cd "$DIR" && exec ip netns exec "$POD" setpriv --reuid $PROXY_UID --regid $PROXY_UID \
    --clear-groups "$EBB" run -c "$DIR/ebb.yaml") </dev/null >"$DIR/ebb.out" 2>&1 &
PIDS+=($!); EBB_PID=$!
if ! wait_http "$POD" "http://127.0.0.1:15000/ready" "$EBB_PID" 10; then
    tail -n 15 "$DIR/ebb.out" | sed 's/^/    | /' >&2
    die "ebb did not start"
fi
for p in "$EBB_PID:ebb" "$ORIGIN:nginx"; do   # the pids cleanup kills are the processes themselves
    [ "$(cat /proc/${p%%:*}/comm)" = "${p#*:}" ] || die "pid ${p%%:*} is $(cat /proc/${p%%:*}/comm), not ${p#*:}"
done

# cpu_ticks PID - utime+stime (clock ticks) of PID, all its threads.
cpu_ticks() {
    local f
    f=$(sed 's/^.*) //' /proc/"$1"/stat)   # fields after "(comm)": state=1 ... utime=12 stime=13
    set -- $f
    echo $(( ${12} + ${13} ))
}

# syn_retrans - SYNs the client namespace sent again (TcpExtTCPSynRetrans): a connection that
# waited a retransmission timeout, which lowers the rate and so changes ebb's CPU per request.
syn_retrans() {
    # /proc/net/netstat: a "TcpExt:" line of names, then one of values
    local prog='$1 == "TcpExt:" && !n { for (i = 2; i <= NF; i++) if ($i == "TCPSynRetrans") n = i; next }
                $1 == "TcpExt:" { print $n + 0; exit }'
    in_cli cat /proc/net/netstat | awk "$prog"
}

# rq CLUSTER - ebb's upstream_rq_total of CLUSTER (admin /stats, from inside the pod).
rq() {
    in_pod curl -s --max-time 5 http://127.0.0.1:15000/stats |
        awk -v k="cluster.$1.upstream_rq_total:" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }'
}

declare -A URL=([captured]="http://$POD4:$APP_PORT/" [direct]="http://$POD4:$INBOUND_PORT/")
declare -A CLUSTER=([captured]=InboundPassthroughClusterIpv4 [direct]=inbound)
declare -A OTHER=([captured]=direct [direct]=captured)
# Each target's connections come from its own half of the client's ephemeral ports. Both end
# on ebb's POD4:15006, so with Connection: close a port of one target's run lands on a
# TIME_WAIT socket, or a conntrack entry in the reply direction, that the other target's run
# left for the same 4-tuple; the SYN is refused there and the client retries after 1 s (seen as
# TcpExtTCPSynRetrans in the client and TcpExtPAWSTimewait in the pod: direct ran at a third
# of captured's rate). A target reusing its own tuples is fine.
declare -A PORTS=([captured]="20000 39999" [direct]="40000 59999")

# Sanity: both targets answer with the origin's body, each on the cluster it is meant to take.
for t in captured direct; do
    b=$(rq "${CLUSTER[$t]}") o=$(rq "${CLUSTER[${OTHER[$t]}]}")
    body=$(in_cli curl -s --max-time 2 "${URL[$t]}" || true)
    [ "$body" = "hello world" ] || die "$t (${URL[$t]}) answered '$body' instead of 'hello world'"
    [ $(( $(rq "${CLUSTER[$t]}") - b )) = 1 ] && [ "$(rq "${CLUSTER[${OTHER[$t]}]}")" = "$o" ] ||
        die "$t: the request was not counted by ${CLUSTER[$t]} alone"
done

# warm-up: 1 s per target, results discarded (fills the pools, faults in pages)
for t in captured direct; do
    in_cli timeout 20 wrk -t1 -c"$CONNS" -d1s "${URL[$t]}" >/dev/null 2>&1 || true
done

RESULTS=$DIR/capture.tsv
printf 'mode\ttarget\trep\trps\trequests\tcpu_ticks\terrors\tsyn_retrans\n' >"$RESULTS"
nmodes=$(wc -w <<<"$MODES")
log "pod $POD4 (ns $POD), client $CLI4 (ns $CLI); $((nmodes * 2 * REPEATS)) wrk runs of ${DURATION}s, -c$CONNS"

run_one() {   # run_one MODE TARGET REP
    local mode=$1 t=$2 rep=$3 hdr=() out before after rps reqs errs b o got synb syn
    [ "$mode" = close ] && hdr=(-H "Connection: close")
    in_cli sysctl -qw net.ipv4.ip_local_port_range="${PORTS[$t]}"
    b=$(rq "${CLUSTER[$t]}") o=$(rq "${CLUSTER[${OTHER[$t]}]}")
    synb=$(syn_retrans)
    before=$(cpu_ticks "$EBB_PID")
    out=$(in_cli timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s \
          "${hdr[@]}" "${URL[$t]}" 2>&1) || die "wrk failed on $t ($mode): $out"
    after=$(cpu_ticks "$EBB_PID")
    syn=$(( $(syn_retrans) - synb ))
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    errs=$(awk '/Non-2xx/ { n += $NF }
                /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
    # every request took the path claimed: the expected cluster counted them all (and the ones
    # in flight when wrk stopped), the other cluster none
    got=$(( $(rq "${CLUSTER[$t]}") - b ))
    [ "$got" -ge "${reqs:-0}" ] && [ "$(rq "${CLUSTER[${OTHER[$t]}]}")" = "$o" ] ||
        die "$t ($mode): wrk made ${reqs:-0} requests, ${CLUSTER[$t]} counted $got," \
            "${CLUSTER[${OTHER[$t]}]} $(( $(rq "${CLUSTER[${OTHER[$t]}]}") - o ))"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$t" "$rep" "${rps:-0}" "${reqs:-0}" \
        $((after - before)) "$errs" "$syn" >>"$RESULTS"
    log "$(printf 'rep %s %-9s %-8s %10s req/s  cpu %4s ticks  errors %s  SYN retransmits %s' \
        "$rep" "$mode" "$t" "${rps:-?}" $((after - before)) "$errs" "$syn")"
}

for rep in $(seq "$REPEATS"); do
    for mode in $MODES; do
        # alternate which target goes first, so a drift within a pair hits both alike
        if [ $((rep % 2)) = 1 ]; then order="captured direct"; else order="direct captured"; fi
        for t in $order; do run_one "$mode" "$t" "$rep"; done
    done
done

"$PY" "$ROOT/bench/capture_report.py" --results "$RESULTS" --duration "$DURATION" \
    --repeats "$REPEATS" --conns "$CONNS" --clk-tck "$(getconf CLK_TCK)" --report "$REPORT"
