#!/usr/bin/env bash
# scripts/stress-check.sh [RUNS] - the whole suite on a machine whose cores are all busy.
#
# Starts `stress-ng --cpu N` (N = STRESS_CPU, default: the number of cores), then runs `make check`
# RUNS times (default 5) in a row while it spins, and prints one line per run:
#
#   run 1/5: 412 passed, 0 failed (1234s)
#
# stress-ng is installed with apt-get only when it is missing (root or sudo needed then). It is
# stopped by its PID on every exit path (normal end, a failed run, ^C, SIGTERM), and in any case
# after STRESS_LIMIT seconds (default 4 h) by its own --timeout. Every run's full output is kept
# in a log directory named at the start and at the end. The tests must pass here: they wait on
# events and use generous bounds, never on the machine being idle.
# Exit status: 0 if every run passed, 1 otherwise (all RUNS are run either way).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

RUNS=${1:-5}
case "$RUNS" in ''|*[!0-9]*|0) echo "usage: $0 [RUNS]  (RUNS a positive integer)" >&2; exit 2 ;; esac
CORES=$(nproc 2>/dev/null || echo 2)
STRESS_CPU=${STRESS_CPU:-$CORES}
STRESS_LIMIT=${STRESS_LIMIT:-14400}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v stress-ng >/dev/null; then
    echo "stress-check: installing stress-ng (apt-get)"
    as_root apt-get install -y -q stress-ng >/dev/null 2>&1 ||
        { as_root apt-get update -q >/dev/null 2>&1 && as_root apt-get install -y -q stress-ng >/dev/null; } ||
        { echo "stress-check: cannot install stress-ng" >&2; exit 1; }
fi

LOGDIR=$(mktemp -d /tmp/ebb-stress.XXXXXX)
stress_pid= make_pid=

stop_stress() {
    if [ -n "$stress_pid" ]; then
        kill -TERM "$stress_pid" 2>/dev/null
        wait "$stress_pid" 2>/dev/null
        stress_pid=
    fi
}
# stop_make - ends a `make check` still running (its own process group: make, the test runner,
# the test in progress is its own session and is ended by the runner's cleanup or its timeout).
stop_make() {
    if [ -n "$make_pid" ]; then
        kill -TERM -- "-$make_pid" 2>/dev/null
        wait "$make_pid" 2>/dev/null
        make_pid=
    fi
}
trap 'stop_make; stop_stress' EXIT
trap 'stop_make; stop_stress; exit 130' INT
trap 'stop_make; stop_stress; exit 143' TERM

stress-ng --cpu "$STRESS_CPU" --timeout "${STRESS_LIMIT}s" --quiet </dev/null \
    >"$LOGDIR/stress-ng.log" 2>&1 &
stress_pid=$!
sleep 1   # stress-ng's own start; not a test wait
if ! kill -0 "$stress_pid" 2>/dev/null; then
    echo "stress-check: stress-ng did not start:" >&2
    cat "$LOGDIR/stress-ng.log" >&2
    exit 1
fi
echo "stress-check: stress-ng --cpu $STRESS_CPU running (pid $stress_pid) on $CORES cores;" \
     "$RUNS runs of make check; logs in $LOGDIR"

rc=0 lines=()
for i in $(seq 1 "$RUNS"); do
    log=$LOGDIR/run-$i.log
    t0=$SECONDS
    start=$(date -u +%H:%M:%S)
    # in the background and its own process group, so a signal to this script is acted on at
    # once (bash runs a trap only after a foreground command ends) and can stop the whole run
    setsid make --no-print-directory check </dev/null >"$log" 2>&1 &
    make_pid=$!
    wait "$make_pid"
    st=$?
    make_pid=
    secs=$((SECONDS - t0))
    line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    [ -n "$line" ] || line="no result line (make exit $st)"
    [ "$st" = 0 ] || rc=1
    lines+=("run $i/$RUNS: $line (${secs}s, started $start UTC, load $(cut -d' ' -f1-3 /proc/loadavg))")
    echo "${lines[-1]}"
    if [ "$st" != 0 ]; then
        grep -aE '^(FAIL|  \| FAIL) ' "$log" | sed 's/^/    /'
    fi
done

stop_stress
echo "stress-check: done; logs in $LOGDIR"
printf '%s\n' "${lines[@]}"
exit $rc
