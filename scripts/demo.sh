#!/usr/bin/env bash
# scripts/demo.sh - ebb's main job, end to end, on loopback:
#   1. install what is missing and build ebb;
#   2. start a demo app and ebb in front of it, and send traffic through both listeners;
#   3. the seed's scenario: a request that takes longer than 5 s is in flight when the pod gets
#      SIGTERM.  Default mode (Istio's terminationDrainDuration 5s) cuts it at 5 s; with
#      EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true it completes and ebb exits right after.
#      Both outcomes are printed side by side.
# Bounded: every wait has a deadline; everything started here is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
LONG_MS=${DEMO_LONG_MS:-8000}     # the long request (> 5 s)
SIGTERM_AFTER=${DEMO_SIGTERM_AFTER:-1}

scripts/deps.sh demo >&2
make -s >&2
EBB=$ROOT/build/ebb
WORK=$(mktemp -d /tmp/ebb-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do
        [ -n "$p" ] || continue
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_ports() {   # free_ports N: N free loopback ports, one per line
    "$PY" - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
PYEOF
}

wait_http() {    # wait_http URL: poll until 200, at most 10 s
    local deadline=$((SECONDS + 10))
    until curl -fsS -m 1 -o /dev/null "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "demo: $1 not ready" >&2; exit 1; }
        sleep 0.05
    done
}

read -r APP REMOTE IN OUT ADMIN STATUS READY <<<"$(free_ports 7 | tr '\n' ' ')"

# the demo app (the pod's application) and a "remote service" it calls through the sidecar
"$PY" tests/e2e/backend.py --port "$APP" >"$WORK/app.log" 2>&1 & pids+=($!)
"$PY" tests/e2e/backend.py --port "$REMOTE" >"$WORK/remote.log" 2>&1 & pids+=($!)

cat >"$WORK/ebb.yaml" <<YAML
concurrency: 2
access_log: $WORK/access.log
admin:     { address: 127.0.0.1, port: $ADMIN }
status:    { address: 127.0.0.1, port: $STATUS }
readiness: { address: 127.0.0.1, port: $READY }
listeners:
  - { name: inbound,  address: 127.0.0.1, port: $IN,  direction: inbound,  protocol: http, cluster: app }
  - name: outbound
    address: 127.0.0.1
    port: $OUT
    direction: outbound
    protocol: http
    routes: [ { host: "reviews.default.svc", cluster: reviews } ]
clusters:
  - { name: app,     endpoints: ["127.0.0.1:$APP"] }
  - { name: reviews, endpoints: ["127.0.0.1:$REMOTE"] }
YAML

start_ebb() {    # start_ebb LOG [ENV...]: start ebb, wait for readiness, set EBB_PID
    local log=$1; shift
    env "$@" "$EBB" run -c "$WORK/ebb.yaml" 2>"$log" & EBB_PID=$!; pids+=($EBB_PID)
    wait_http "http://127.0.0.1:$READY/healthz/ready"
}

wait_http "http://127.0.0.1:$APP/hello"
wait_http "http://127.0.0.1:$REMOTE/hello"

echo "== 1. traffic through ebb =="
start_ebb "$WORK/ebb0.log"
echo "inbound  GET  /hello          -> $(curl -sS -m 5 -w '%{http_code}' -o /dev/null http://127.0.0.1:$IN/hello)"
echo "inbound  POST /echo (1 MiB)   -> $(head -c 1048576 /dev/urandom | curl -sS -m 10 --data-binary @- -w '%{http_code} %{size_download} bytes echoed' -o /dev/null http://127.0.0.1:$IN/echo)"
echo "outbound GET  reviews.default.svc/hello via http_proxy -> $(curl -sS -m 5 -x http://127.0.0.1:$OUT -w '%{http_code}' -o /dev/null http://reviews.default.svc/hello)"
echo "outbound GET  unknown.svc     -> $(curl -sS -m 5 -x http://127.0.0.1:$OUT -w '%{http_code}' -o "$WORK/404" http://unknown.svc/) ($(cat "$WORK/404"))"
echo "admin: $("$EBB" request --port "$ADMIN" GET '/stats?filter=downstream_rq_2xx' | tr '\n' ' ')"
"$EBB" request --port "$ADMIN" POST /quitquitquit >/dev/null
wait "$EBB_PID" || true

# scenario: one request of LONG_MS in flight; SIGTERM after SIGTERM_AFTER seconds
scenario() {     # scenario NAME ENV... : prints "status|seconds|exit-after-sigterm"
    local name=$1; shift
    start_ebb "$WORK/$name.log" "$@"
    curl -sS -m 30 -o "$WORK/$name.body" -w '%{http_code} %{time_total}\n' \
        "http://127.0.0.1:$IN/delay?ms=$LONG_MS" >"$WORK/$name.curl" 2>"$WORK/$name.curlerr" &
    local cpid=$!
    sleep "$SIGTERM_AFTER"   # the scenario itself: SIGTERM arrives while the request runs
    local t0; t0=$(date +%s.%N)
    kill -TERM "$EBB_PID"
    local ready; ready=$(curl -sS -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$READY/healthz/ready" || true)
    wait "$EBB_PID" || true
    local t1; t1=$(date +%s.%N)
    wait "$cpid" || true
    local res; res=$(cat "$WORK/$name.curl" 2>/dev/null || true)
    [ -n "$res" ] || res="000 -"
    local err; err=$(head -c 60 "$WORK/$name.curlerr" | tr '\n' ' ')
    printf '%s|%s|%s|%s|%s\n' "$name" "$res" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$ready" "$err"
}

echo
echo "== 2. the seed's scenario: a ${LONG_MS} ms request, SIGTERM ${SIGTERM_AFTER} s into it =="
d=$(scenario default)
z=$(scenario exit-on-zero EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true)
row() { IFS='|' read -r n res ex rd err <<<"$1"; set -- $res; printf '%-14s | %-6s | %-8s | %-10s | %-14s | %s\n' "$n" "$1" "$2" "$rd" "$ex" "$err"; }
printf '%-14s | %-6s | %-8s | %-10s | %-14s | %s\n' mode status "req (s)" "ready@TERM" "TERM->exit (s)" "client error"
printf -- '---------------+--------+----------+------------+----------------+-------------\n'
row "$d"
row "$z"
echo
grep -h 'drain: exit' "$WORK/default.log" "$WORK/exit-on-zero.log" | sed 's/^/  ebb: /'
IFS='|' read -r _ dres _ _ _ <<<"$d"; IFS='|' read -r _ zres _ _ _ <<<"$z"
if [ "${zres%% *}" = 200 ] && [ "${dres%% *}" != 200 ]; then
    echo "demo: OK - default mode cut the long request at terminationDrainDuration (5 s); EXIT_ON_ZERO_ACTIVE_CONNECTIONS let it finish and exited right after"
else
    echo "demo: UNEXPECTED outcome (see above)"; exit 1
fi
