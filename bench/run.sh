#!/usr/bin/env bash
# bench/run.sh OUT - compare ebb with nginx, HAProxy and a direct connection (`make bench`).
#
# One origin (a separate nginx, 1 worker, `return 200 "hello world\n"`) is reached four ways:
#   direct   wrk -> origin
#   ebb      wrk -> OUT/ebb run -c <bench/ebb.yaml rendered>   (concurrency 1, access log off)
#   ebb-log  the same with its access log on (JSON lines to a file): what the log costs
#   ebb-2w   the same with 2 workers (concurrency 2): how it scales (the only 2-worker row)
#   nginx    wrk -> nginx reverse proxy, 1 worker, upstream keepalive
#   haproxy  wrk -> haproxy, nbthread 1, http-reuse always
# Every proxy runs ONE worker so the comparison is per core. wrk (HTTP/1.1 keep-alive) runs at
# each concurrency in BENCH_CONNS for BENCH_DURATION seconds, BENCH_REPEATS times, targets
# interleaved round-robin so drift on a shared machine hits them all alike; medians are reported.
# Per run the proxy's CPU time (utime+stime of its processes, /proc/PID/stat) is sampled around
# wrk; peak RSS is VmHWM at the end. Writes docs/performance.md (BENCH_REPORT to change/disable).
#
# Knobs (environment): BENCH_CONNS="1 16 64" BENCH_DURATION=5 BENCH_REPEATS=3 BENCH_THREADS=1
#   BENCH_TARGETS="direct ebb ebb-log ebb-2w nginx haproxy" BENCH_REPORT=docs/performance.md ("-" = none)
#   BENCH_H2=1 (HTTP/2 section: h2load through ebb, nginx and HAProxy; BENCH_H2=0 skips it)
#   BENCH_LAT_RATES="1000 10000" BENCH_LAT_DURATION=10 BENCH_LAT_ROUNDS=5 (added latency at a
#   fixed request rate: h2load --rps, open loop, HTTP/1.1 and h2c, each row's time in ROUNDS
#   slices with the targets taking turns, every request pooled; part of the HTTP/2 section;
#   BENCH_LAT_RATES="" skips it)
#   BENCH_STREAM_CONNS=200 (memory per active streaming connection, bench/stream_conns.py: a
#   64 MiB download each, the client not reading; 0 skips it)
#   BENCH_IDLE_CONNS=10000 (memory per idle keep-alive client connection, bench/idle_conns.py;
#   0 skips it)
#   BENCH_CAPTURE=1 (captured vs direct inbound traffic in a pod of network namespaces:
#   bench/capture.sh, its own BENCH_CAPTURE_* knobs; BENCH_CAPTURE=0 skips it and the report
#   keeps the section an earlier run wrote)
#   BENCH_KEEP=1 keeps the run's directory; `bench/paired.py DIR/results.tsv [...]` then prints
#   the medians of per-round ratios (ebb/HAProxy, access log on/off), pooled over runs
# Bounded: a fixed number of wrk runs, each under `timeout`; every wait polls with a deadline.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-build}
case "$OUT" in /*) ;; *) OUT=$ROOT/$OUT ;; esac
EBB=$OUT/ebb

CONNS=${BENCH_CONNS:-"1 16 64"}
DURATION=${BENCH_DURATION:-5}
REPEATS=${BENCH_REPEATS:-3}
THREADS=${BENCH_THREADS:-1}
TARGETS=${BENCH_TARGETS:-"direct ebb ebb-log ebb-2w nginx haproxy"}
REPORT=${BENCH_REPORT:-$ROOT/docs/performance.md}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in wrk nginx haproxy curl python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        [ -x "/usr/sbin/$tool" ] || die "$tool not found; run: scripts/deps.sh bench"
done
export PATH=$PATH:/usr/sbin
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
# the idle-connection section holds 10,000 sockets in the client and in each proxy
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

DIR=$(mktemp -d /tmp/ebb-bench.XXXXXX)
PIDS=()          # every process this script started, killed by pid on exit

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # give them up to 3 s, then SIGKILL what is left
    local i
    for i in $(seq 30); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N - print N distinct TCP ports free on 127.0.0.1, below the ephemeral range so
# wrk's and the proxies' client sockets can never take them.
free_ports() {
    "$PY" - "$1" <<'PY'
import random, socket, sys
n, got = int(sys.argv[1]), []
for port in random.sample(range(20000, 32000), 400):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        got.append(port)
    except OSError:
        pass
    finally:
        s.close()
    if len(got) == n:
        break
print(" ".join(map(str, got)))
PY
}

# render TEMPLATE DEST VAR=VALUE... - substitute @VAR@ placeholders.
render() {
    local src=$1 dst=$2; shift 2
    local args=() kv
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$src" >"$dst"
    if grep -q '@[A-Z_]*@' "$dst"; then die "unrendered placeholder in $dst"; fi
}

# wait_http URL PID SECONDS - poll until URL answers 200 (no fixed sleep). Fails, with the
# reason in WAIT_WHY, if PID exits first or the deadline passes.
WAIT_WHY=
wait_http() {
    local url=$1 pid=$2 deadline=$((SECONDS + $3)) st
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            st=0; wait "$pid" 2>/dev/null || st=$?
            WAIT_WHY="exited with status $st before $url answered 200"
            return 1
        fi
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ] && return 0
        sleep 0.05
    done
    WAIT_WHY="$url did not answer 200 within $3 s"
    return 1
}

# tree_pids PID - PID and its descendants (nginx: master + worker).
tree_pids() {
    local pid=$1 c
    echo "$pid"
    for c in $(pgrep -P "$pid" 2>/dev/null || true); do tree_pids "$c"; done
}

# cpu_ticks PID - utime+stime (clock ticks) summed over PID's process tree.
cpu_ticks() {
    local total=0 p f
    for p in $(tree_pids "$1"); do
        # fields after "(comm)": state=1 ... utime=12 stime=13
        f=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null) || continue
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo $total
}

# user_ticks PID - utime alone (the proxy's own code; the rest of cpu_ticks is the kernel's).
user_ticks() {
    local total=0 p f
    for p in $(tree_pids "$1"); do
        f=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null) || continue
        set -- $f
        total=$((total + ${12}))
    done
    echo $total
}

# hwm_kib PID - VmHWM summed over PID's process tree, KiB.
hwm_kib() {
    local total=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^VmHWM:/ { print $2 }' /proc/"$p"/status 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo $total
}

read -r ORIGIN_PORT NGINX_PORT HAPROXY_PORT EBB_PORT ADMIN_PORT STATUS_PORT READY_PORT \
    LOG_PORT LOG_ADMIN_PORT LOG_STATUS_PORT LOG_READY_PORT \
    W2_PORT W2_ADMIN_PORT W2_STATUS_PORT W2_READY_PORT <<<"$(free_ports 15)"
[ -n "$W2_READY_PORT" ] || die "could not find 15 free ports"
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root;"

declare -A PORT=([direct]=$ORIGIN_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT [ebb]=$EBB_PORT
                 [ebb-log]=$LOG_PORT [ebb-2w]=$W2_PORT)
declare -A PID=()
declare -A SKIP=()

start_origin() {
    mkdir -p "$DIR/origin-tmp"
    truncate -s 64M "$DIR/big.bin"   # /big, for the streaming-memory section
    render "$ROOT/bench/nginx-origin.conf" "$DIR/origin.conf" DIR="$DIR" USER="$USER_LINE" \
        ORIGIN_ADDR=127.0.0.1 ORIGIN_PORT="$ORIGIN_PORT"
    nginx -p "$DIR" -c "$DIR/origin.conf" -e "$DIR/origin.error.log" </dev/null >"$DIR/origin.out" 2>&1 &
    PIDS+=($!); PID[direct]=$!
    wait_http "http://127.0.0.1:$ORIGIN_PORT/" "${PID[direct]}" 10 ||
        { cat "$DIR/origin.out" "$DIR/origin.error.log" >&2 2>/dev/null; die "origin nginx did not start"; }
}

start_nginx() {
    mkdir -p "$DIR/nginx-tmp"
    render "$ROOT/bench/nginx-proxy.conf" "$DIR/nginx.conf" DIR="$DIR" USER="$USER_LINE" \
        ORIGIN_PORT="$ORIGIN_PORT" PROXY_PORT="$NGINX_PORT"
    nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/nginx.error.log" </dev/null >"$DIR/nginx.out" 2>&1 &
    PIDS+=($!); PID[nginx]=$!
    wait_http "http://127.0.0.1:$NGINX_PORT/" "${PID[nginx]}" 10
}

start_haproxy() {
    render "$ROOT/bench/haproxy.cfg" "$DIR/haproxy.cfg" DIR="$DIR" \
        ORIGIN_PORT="$ORIGIN_PORT" PROXY_PORT="$HAPROXY_PORT"
    haproxy -db -f "$DIR/haproxy.cfg" </dev/null >"$DIR/haproxy.out" 2>&1 &
    PIDS+=($!); PID[haproxy]=$!
    wait_http "http://127.0.0.1:$HAPROXY_PORT/" "${PID[haproxy]}" 10
}

start_ebb() {   # start_ebb TARGET PROXY_PORT ADMIN STATUS READY ACCESS_LOG [CONCURRENCY]
    local t=$1 port=$2 admin=$3
    [ -x "$EBB" ] || { SKIP[$t]="$EBB not built"; return 1; }
    render "$ROOT/bench/ebb.yaml" "$DIR/$t.yaml" ORIGIN_PORT="$ORIGIN_PORT" \
        PROXY_PORT="$port" ADMIN_PORT="$admin" STATUS_PORT="$4" READY_PORT="$5" \
        ACCESS_LOG="$6" CONCURRENCY="${7:-1}"
    # cwd = DIR so ebb's default mesh-config/annotation paths (./etc/istio/...) find nothing
    (cd "$DIR" && exec "$EBB" run -c "$DIR/$t.yaml") </dev/null >"$DIR/$t.out" 2>&1 &
    PIDS+=($!); PID[$t]=$!
    if ! wait_http "http://127.0.0.1:$admin/ready" "${PID[$t]}" 10 ||
       ! wait_http "http://127.0.0.1:$port/" "${PID[$t]}" 5; then
        SKIP[$t]="$WAIT_WHY"
        log "$t failed to start: $WAIT_WHY; last lines of its output:"
        if [ -s "$DIR/$t.out" ]; then tail -n 15 "$DIR/$t.out" | sed 's/^/    | /' >&2
        else log "    (no output)"; fi
        kill -TERM "${PID[$t]}" 2>/dev/null || true
        return 1
    fi
}

# bench_h2 - HTTP/2 section (on by default; BENCH_H2=0 skips it):
# run `h2load -c C -m M -D DURATION http://127.0.0.1:PORT/` against each target that speaks
# h2c (ebb; nginx with `listen ... http2` needs TLS in 1.22 for browsers but accepts prior
# knowledge h2c; haproxy with `proto h2` on the bind line), sample CPU like run_one does, and
# append rows with proto=h2 to results.tsv; report.py already groups rows by proto.
# bench_latency - latency added at a fixed request rate (called from bench_h2, whose h2c
# proxies it reuses): h2load --rps, 10 clients starting requests on a fixed schedule with one
# in flight each (an answer later than the gap delays the next, so queueing shows in the tail,
# unlike a closed loop at full speed); percentiles from h2load's per-request log.
bench_latency() {
    local rates=${BENCH_LAT_RATES-"1000 10000"} dur=${BENCH_LAT_DURATION:-10} r t proto port url
    local rounds=${BENCH_LAT_ROUNDS:-5} k slice out lf res watch c0 u0
    local -A cpu=() usr=()
    [ -n "$rates" ] || return 0
    # each row's time in ROUNDS slices, the targets taking turns slice by slice: a burst of
    # other work on the shared machine lands on all of them alike instead of on one row
    slice=$(( dur / rounds )); [ "$slice" -ge 1 ] || slice=1
    LAT=$DIR/latency.tsv
    printf 'proto\ttarget\trate\trequests\tp50_ms\tp99_ms\tp999_ms\tnon2xx\tcpu_ticks\tuser_ticks\n' >"$LAT"
    for r in $rates; do
        for proto in h1 h2; do
            local -a lts=()
            cpu=() usr=()
            for t in direct ebb nginx haproxy; do
                if [ "$proto" = h1 ]; then
                    [[ " ${ACTIVE[*]} " == *" $t "* ]] || continue
                else
                    [ "$t" = direct ] && continue   # the origin speaks HTTP/1.1 only
                    [ -n "${H2PORT[$t]:-}" ] || continue
                    kill -0 "${H2PID[$t]:-0}" 2>/dev/null || continue
                fi
                lts+=("$t")
            done
            for k in $(seq "$rounds"); do
                for t in "${lts[@]}"; do
                    if [ "$proto" = h1 ]; then port=${PORT[$t]} watch=${PID[$t]}
                    else port=${H2PORT[$t]} watch=${H2PID[$t]:-}; fi
                    lf=$DIR/lat-$proto-$t-$r-$k.log
                    url="http://127.0.0.1:$port/"
                    # the proxy's CPU during the slice: at a fixed rate every proxy does the same
                    # work, so its CPU per request is not flattered or hurt by its own speed
                    c0=$(cpu_ticks "$watch"); u0=$(user_ticks "$watch")
                    out=$(timeout $((slice + 30)) h2load $([ "$proto" = h1 ] && echo --h1) -c 10 -m 1 \
                          --rps $((r / 10)) -D "$slice" --log-file "$lf" "$url" 2>&1) ||
                        log "latency $proto $t $r/s round $k: h2load failed: $(tail -n 2 <<<"$out")"
                    cpu[$t]=$(( ${cpu[$t]:-0} + $(cpu_ticks "$watch") - c0 ))
                    usr[$t]=$(( ${usr[$t]:-0} + $(user_ticks "$watch") - u0 ))
                done
            done
            for t in "${lts[@]}"; do
                local -a files=()
                for k in $(seq "$rounds"); do
                    [ -s "$DIR/lat-$proto-$t-$r-$k.log" ] && files+=("$DIR/lat-$proto-$t-$r-$k.log")
                done
                [ ${#files[@]} -gt 0 ] || continue
                res=$("$PY" "$ROOT/bench/latency_pct.py" "${files[@]}")
                set -- $res
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$proto" "$t" "$r" "$1" "$2" "$3" \
                    "$4" "$5" "${cpu[$t]:-0}" "${usr[$t]:-0}" >>"$LAT"
                log "$(printf 'latency %s %-8s %6s req/s: p50 %s p99 %s p99.9 %s ms (%s requests, %s rounds)' \
                      "$proto" "$t" "$r" "$2" "$3" "$4" "$1" "${#files[@]}")"
            done
        done
    done
}

bench_h2() {
    command -v h2load >/dev/null 2>&1 || { log "HTTP/2 section skipped: h2load not found"; return 0; }
    local n=${BENCH_H2_N:-200000} t port out rps reqs before after watch errs p
    local -A H2PORT=() H2PID=()
    read -r H2PORT[nginx] H2PORT[haproxy] <<<"$(free_ports 2)"
    # ebb: its http listener takes h2c by prior knowledge, nothing to change
    H2PORT[ebb]=$EBB_PORT; H2PID[ebb]=${PID[ebb]:-}
    # nginx: same proxy config, `listen ... http2` (cleartext prior knowledge in 1.22)
    mkdir -p "$DIR/nginx-tmp"
    render "$ROOT/bench/nginx-proxy.conf" "$DIR/nginx-h2.conf" DIR="$DIR" USER="$USER_LINE" \
        ORIGIN_PORT="$ORIGIN_PORT" PROXY_PORT="${H2PORT[nginx]}"
    sed -i -e "s|backlog=4096;|backlog=4096 http2;|" -e "s|pid $DIR/nginx.pid|pid $DIR/nginx-h2.pid|" \
        -e "s|http {|http {\n    http2_max_requests 10000000; http2_max_concurrent_streams 128;|" \
        "$DIR/nginx-h2.conf"
    nginx -p "$DIR" -c "$DIR/nginx-h2.conf" -e "$DIR/nginx-h2.error.log" </dev/null >"$DIR/nginx-h2.out" 2>&1 &
    PIDS+=($!); H2PID[nginx]=$!
    # haproxy: same config, `proto h2` on the bind line
    render "$ROOT/bench/haproxy.cfg" "$DIR/haproxy-h2.cfg" DIR="$DIR" \
        ORIGIN_PORT="$ORIGIN_PORT" PROXY_PORT="${H2PORT[haproxy]}"
    sed -i -e "s|^\(    bind .*\)$|\1 proto h2|" -e "s|haproxy.pid|haproxy-h2.pid|" "$DIR/haproxy-h2.cfg"
    haproxy -db -f "$DIR/haproxy-h2.cfg" </dev/null >"$DIR/haproxy-h2.out" 2>&1 &
    PIDS+=($!); H2PID[haproxy]=$!
    sleep 0.5
    log "HTTP/2: h2load -n $n -c 16 -m 64 -t 1 per target (one worker each, same origin)"
    declare -A H2RPS=()
    for t in ebb nginx haproxy; do
        port=${H2PORT[$t]}; watch=${H2PID[$t]}
        [ -n "$watch" ] && kill -0 "$watch" 2>/dev/null || { log "h2 $t: not running, skipped"; continue; }
        # warm-up, then the measured run
        timeout 30 h2load -n 2000 -c 16 -m 64 -t 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
        before=$(cpu_ticks "$watch"); ubefore=$(user_ticks "$watch")
        out=$(timeout 300 h2load -n "$n" -c 16 -m 64 -t 1 "http://127.0.0.1:$port/" 2>&1) ||
            { log "h2load failed on $t: $(tail -n 3 <<<"$out")"; continue; }
        after=$(cpu_ticks "$watch"); uafter=$(user_ticks "$watch")
        rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) == "req/s,") print $i }' <<<"$out")
        reqs=$(awk '/^requests:/ { print $8 }' <<<"$out")
        errs=$(awk '/^status codes:/ { print $5 + $7 + $9 }' <<<"$out")
        p=$(awk '/^requests:/ { print $10 + $12 + $14 }' <<<"$out")
        errs=$(( ${errs:-0} + ${p:-0} ))
        printf 'h2\t%s\t16x64\t1\t%s\t%s\t%s\t%s\t0\t0\t%s\n' "$t" "${rps:-0}" "${reqs:-0}" \
            $((after - before)) "$errs" $((uafter - ubefore)) >>"$RESULTS"
        H2RPS[$t]=${rps:-0}
        log "$(printf 'h2 %-8s %10s req/s  cpu %s ticks  non-2xx+failed %s' "$t" "${rps:-?}" $((after - before)) "$errs")"
    done
    for t in nginx haproxy; do
        [ -n "${H2RPS[ebb]:-}" ] && [ -n "${H2RPS[$t]:-}" ] &&
            log "h2 ratio ebb/$t: $(awk -v a="${H2RPS[ebb]}" -v b="${H2RPS[$t]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
    done
    bench_latency
    return 0
}

ACTIVE=()
log "ports: origin $ORIGIN_PORT, ebb $EBB_PORT, nginx $NGINX_PORT, haproxy $HAPROXY_PORT; dir $DIR"
start_origin
start_targets() {
    ACTIVE=()
    for t in $TARGETS; do
        case $t in
            direct) ACTIVE+=(direct) ;;
            ebb)     if start_ebb ebb "$EBB_PORT" "$ADMIN_PORT" "$STATUS_PORT" "$READY_PORT" off
                     then ACTIVE+=(ebb); else log "ebb row skipped: ${SKIP[ebb]}"; fi ;;
            ebb-log) if start_ebb ebb-log "$LOG_PORT" "$LOG_ADMIN_PORT" "$LOG_STATUS_PORT" \
                            "$LOG_READY_PORT" "$DIR/access.log"
                     then ACTIVE+=(ebb-log); else log "ebb-log row skipped: ${SKIP[ebb-log]}"; fi ;;
            ebb-2w)  if start_ebb ebb-2w "$W2_PORT" "$W2_ADMIN_PORT" "$W2_STATUS_PORT" \
                            "$W2_READY_PORT" off 2
                     then ACTIVE+=(ebb-2w); else log "ebb-2w row skipped: ${SKIP[ebb-2w]}"; fi ;;
            nginx)   if start_nginx; then ACTIVE+=(nginx); else
                         SKIP[nginx]="$WAIT_WHY"; log "nginx row skipped: ${SKIP[nginx]}"
                         tail -n 15 "$DIR/nginx.out" "$DIR/nginx.error.log" 2>/dev/null | sed 's/^/    | /' >&2; fi ;;
            haproxy) if start_haproxy; then ACTIVE+=(haproxy); else
                         SKIP[haproxy]="$WAIT_WHY"; log "haproxy row skipped: ${SKIP[haproxy]}"
                         tail -n 15 "$DIR/haproxy.out" | sed 's/^/    | /' >&2; fi ;;
            *) die "unknown target $t" ;;
        esac
    done
}
# stop_targets - stops every proxy target (not the origin) and waits until each has exited
stop_targets() {
    local t i keep=() pid
    for t in "${ACTIVE[@]}"; do [ "$t" = direct ] || kill -TERM "${PID[$t]}" 2>/dev/null || true; done
    for t in "${ACTIVE[@]}"; do
        [ "$t" = direct ] && continue
        for i in $(seq 100); do kill -0 "${PID[$t]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "${PID[$t]}" 2>/dev/null || true
        wait "${PID[$t]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do [ "$pid" = "${PID[direct]}" ] && keep+=("$pid"); done
    PIDS=("${keep[@]}")
}
start_targets
[ ${#ACTIVE[@]} -gt 0 ] || die "no target started"

# Sanity: every target returns the origin's body.
for t in "${ACTIVE[@]}"; do
    body=$(curl -s --max-time 2 "http://127.0.0.1:${PORT[$t]}/" || true)
    [ "$body" = "hello world" ] || die "$t answered '$body' instead of 'hello world'"
done

# mem_section SCRIPT N OUT LABEL - runs bench/SCRIPT against every proxy target with N
# connections (0 skips it); one TSV row per target into OUT.
mem_section() {
    local script=$1 n=$2 out=$3 label=$4 t res
    printf 'target\tbytes_per_conn\tconns\trss_before_kib\trss_after_kib\n' >"$out"
    [ "$n" -gt 0 ] || return 0
    for t in "${ACTIVE[@]}"; do
        [ "$t" = direct ] && continue
        if res=$(cd "$ROOT/bench" && timeout 300 "$PY" "$script" "${PORT[$t]}" "${PID[$t]}" "$n" 2>&1)
        then
            set -- $res
            printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$1" "$2" "$3" "$4" >>"$out"
            log "$label: $t $1 bytes each ($2 connections)"
        else
            log "$label: $t failed: $res"
        fi
    done
}
# memory per idle keep-alive client connection, on fresh processes (each has answered the one
# request above): memory an allocator kept from load runs would be reused and hide the cost.
# Then every proxy starts anew, so the load runs' peak RSS does not include these connections.
IDLE=$DIR/idle.tsv
mem_section idle_conns.py "$IDLE_CONNS" "$IDLE" "idle connections"
if [ "$IDLE_CONNS" -gt 0 ]; then
    stop_targets
    start_targets
    [ ${#ACTIVE[@]} -gt 0 ] || die "no target restarted after the idle-connection section"
fi

# warm-up: 1 s per target, results discarded (fills pools, faults in pages)
for t in "${ACTIVE[@]}"; do
    timeout 20 wrk -t1 -c16 -d1s "http://127.0.0.1:${PORT[$t]}/" >/dev/null 2>&1 || true
done

RESULTS=$DIR/results.tsv
printf 'proto\ttarget\tconns\trep\trps\trequests\tcpu_ticks\terrors\tp50_ms\tp99_ms\tuser_ticks\n' >"$RESULTS"
total=$(( ${#ACTIVE[@]} * $(wc -w <<<"$CONNS") * REPEATS ))
log "$total wrk runs of ${DURATION}s (≈ $(( total * (DURATION + 1) / 60 + 1 )) min)"

# to_ms "1.23ms" / "456.00us" / "1.02s" -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

run_one() {   # run_one TARGET CONNS REP
    local t=$1 c=$2 rep=$3 th=$THREADS out before after rps reqs errs p50 p99 watch
    [ "$th" -gt "$c" ] && th=$c
    watch=${PID[$t]}
    before=$(cpu_ticks "$watch"); ubefore=$(user_ticks "$watch")
    out=$(timeout $((DURATION + 30)) wrk --latency -t"$th" -c"$c" -d"${DURATION}s" --timeout 5s \
          "http://127.0.0.1:${PORT[$t]}/" 2>&1) || { log "wrk failed on $t c=$c: $out"; return 0; }
    after=$(cpu_ticks "$watch"); uafter=$(user_ticks "$watch")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    printf 'h1\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$c" "$rep" "${rps:-0}" "${reqs:-0}" \
        $((after - before)) "$errs" "$p50" "$p99" $((uafter - ubefore)) >>"$RESULTS"
    log "$(printf 'rep %s c=%-3s %-8s %10s req/s  p99 %s ms  errors %s' "$rep" "$c" "$t" "${rps:-?}" "$p99" "$errs")"
}

for rep in $(seq "$REPEATS"); do
    for c in $CONNS; do
        for t in "${ACTIVE[@]}"; do run_one "$t" "$c" "$rep"; done
    done
done

[ "${BENCH_H2:-1}" = 1 ] && bench_h2

RSS=$DIR/rss.tsv
printf 'target\thwm_kib\n' >"$RSS"
for t in "${ACTIVE[@]}"; do printf '%s\t%s\n' "$t" "$(hwm_kib "${PID[$t]}")" >>"$RSS"; done
# after the peak RSS above was taken: memory per active streaming connection (a 64 MiB
# download each, the client not reading)
STREAM=$DIR/stream.tsv
mem_section stream_conns.py "${BENCH_STREAM_CONNS:-200}" "$STREAM" "streaming connections"
skips=()
for t in "${!SKIP[@]}"; do skips+=("$t=${SKIP[$t]}"); done

"$PY" "$ROOT/bench/report.py" --results "$RESULTS" --rss "$RSS" --idle "$IDLE" --stream "$STREAM" \
    --latency "${LAT:-}" \
    --duration "$DURATION" --repeats "$REPEATS" --threads "$THREADS" \
    --clk-tck "$(getconf CLK_TCK)" --report "$REPORT" \
    --versions "nginx $(nginx -v 2>&1 | sed 's|.*/||'), HAProxy $(haproxy -v | awk 'NR==1 { print $3 }'), wrk $(wrk -v 2>&1 | awk 'NR==1 { print $2 }')" \
    "${skips[@]/#/--skip=}"

# the captured-inbound section: its own pod, origin and ebb (the ones above are stopped first,
# so they do not compete for the cores), written into the same report
if [ "${BENCH_CAPTURE:-1}" = 1 ]; then
    cleanup; trap - EXIT
    BENCH_REPORT=$REPORT "$ROOT/bench/capture.sh" "$OUT"
fi
