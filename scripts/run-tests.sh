#!/usr/bin/env bash
# scripts/run-tests.sh OUT [unit|e2e] - run ebb's tests, end with one "N passed, N failed" line.
#
# `make test` calls it with OUT=build (OUT=build/san for `make SAN=1 test`).
#   unit  the layer check (scripts/check-layers.py: no include points up the layers) and its own
#         test (tests/unit/test_layers.py), then every OUT/tests/test_* binary (tests/unit/t.h
#         prints "N passed, N failed" last), each under a timeout (UNIT_TIMEOUT, default 120 s)
#   e2e   /usr/bin/python3 tests/e2e/run.py --ebb OUT/ebb (E2E_TIMEOUT, default 3600 s: the suite
#         takes about 5 min on an idle machine, 25 min with every core busy); skipped
#         with a note while tests/e2e/run.py does not exist; E2E_PATTERN, when set, is passed
#         as -k (`make TSAN=1 test` sets it to the tests whose ebb runs several threads);
#         for OUT=build/san, EBB_TEST_CONCURRENCY=1 unless set: the harness's default
#         configuration then has one worker, which runs on the control thread, where the
#         plain suite's has two worker threads (tests/e2e/lib.py), so CI runs both
# Default: both. The counts of every binary are summed; a crash, timeout, non-zero exit with no
# failure counted, or a missing summary line counts as one failure of that binary. Each binary
# gets one line here; the output of a failing one is shown indented (and kept in OUT/test-logs/).
# The last line is the grand total; the exit status is non-zero if anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

OUT=${1:-}
MODE=${2:-all}
[ -n "$OUT" ] || { echo "usage: $0 OUT [unit|e2e]" >&2; exit 2; }
case "$MODE" in all|unit|e2e) ;; *) echo "usage: $0 OUT [unit|e2e]" >&2; exit 2 ;; esac

UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
E2E_TIMEOUT=${E2E_TIMEOUT:-3600}
LOGS=$OUT/test-logs
mkdir -p "$LOGS"

# Sanitizer builds: fail hard and loud; harmless for normal builds.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# ThreadSanitizer: every report goes to stderr, where the e2e harness fails the test on it
# (lib.SANITIZER_MARKS); the process goes on so one run shows every race.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}
export PYTHONUNBUFFERED=1

total_pass=0 total_fail=0 ran=0 bad=()

# summary_of LOG - print "P F" from the last "N passed, N failed" line of LOG, or nothing.
summary_of() {
    grep -aE '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?[[:space:]]*$' "$1" |
        tail -n 1 | sed -E 's/^([A-Za-z0-9_-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2 \3/'
}

# account NAME STATUS LOG SECONDS LIMIT [quiet] - fold one binary's result into the totals, print its line.
account() {
    local name=$1 st=$2 log=$3 secs=$4 limit=$5 quiet=${6:-} p=0 f=0 sum note=
    sum=$(summary_of "$log")
    if [ -n "$sum" ]; then read -r p f <<<"$sum"; fi
    if [ "$st" -eq 124 ] || [ "$st" -eq 137 ]; then
        note="TIMEOUT after ${limit}s"; f=$((f + 1))
    elif [ "$st" -gt 128 ]; then
        note="CRASH (signal $((st - 128)))"; f=$((f + 1))
    elif [ -z "$sum" ]; then
        note="no summary line (exit $st)"; f=$((f + 1))
    elif [ "$st" -ne 0 ] && [ "$f" -eq 0 ]; then
        note="exit $st with no failure counted"; f=$((f + 1))
    fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); ran=$((ran + 1))
    local verdict=PASS
    if [ "$f" -gt 0 ]; then verdict=FAIL; bad+=("$name"); fi
    # "(P ok, F bad)" rather than the summary wording, so only our own last line matches it
    printf '%-4s %-28s %5d ok %4d bad  %6ss%s\n' "$verdict" "$name" "$p" "$f" "$secs" "${note:+  $note}"
    if [ "$verdict" = FAIL ] && [ -z "$quiet" ]; then
        echo "     --- $log (last 60 lines) ---"
        tail -n 60 "$log" | sed -E 's/^/     | /'
    fi
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# run_entry NAME LOG CMD... - run one summary-printing command under UNIT_TIMEOUT and account it.
run_entry() {
    local name=$1 log=$2 t0 st
    shift 2
    t0=$(now)
    timeout -k 5 "$UNIT_TIMEOUT" "$@" </dev/null >"$log" 2>&1
    st=$?
    account "$name" "$st" "$log" "$(elapsed "$t0")" "$UNIT_TIMEOUT"
}

if [ "$MODE" != e2e ]; then
    run_entry layers "$LOGS/layers.log" /usr/bin/python3 scripts/check-layers.py
    run_entry test_layers "$LOGS/test_layers.log" /usr/bin/python3 tests/unit/test_layers.py
    shopt -s nullglob
    bins=()
    for b in "$OUT"/tests/test_*; do
        [ -f "$b" ] && [ -x "$b" ] && bins+=("$b")
    done
    shopt -u nullglob
    if [ ${#bins[@]} -eq 0 ]; then
        echo "note: no unit test binaries in $OUT/tests/ (tests/unit/test_*.c)"
    fi
    for b in "${bins[@]}"; do
        name=$(basename "$b")
        run_entry "$name" "$LOGS/$name.log" "$b"
    done
fi

if [ "$MODE" != unit ]; then
    if [ ! -f tests/e2e/run.py ]; then
        echo "note: tests/e2e/run.py does not exist yet; end-to-end suite skipped"
    else
        log=$LOGS/e2e.log
        if [ "$OUT" = build/san ]; then export EBB_TEST_CONCURRENCY=${EBB_TEST_CONCURRENCY:-1}; fi
        sel=()
        if [ -n "${E2E_PATTERN:-}" ]; then sel=(-k "$E2E_PATTERN"); fi
        echo "e2e: /usr/bin/python3 tests/e2e/run.py --ebb $OUT/ebb ${sel[*]} (timeout ${E2E_TIMEOUT}s)"
        t0=$(now)
        # Stream its progress indented (so its own closing line is not mistaken for ours).
        timeout -k 10 "$E2E_TIMEOUT" /usr/bin/python3 tests/e2e/run.py --ebb "$OUT/ebb" "${sel[@]}" \
            </dev/null 2>&1 | tee "$log" | sed -u 's/^/  | /'
        st=${PIPESTATUS[0]}
        account e2e "$st" "$log" "$(elapsed "$t0")" "$E2E_TIMEOUT" quiet   # already streamed
    fi
fi

if [ "$ran" -eq 0 ]; then
    echo "WARNING: no test was run (no unit test binaries, no e2e suite)"
elif [ ${#bad[@]} -gt 0 ]; then
    echo "failed: ${bad[*]} (logs in $LOGS/)"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
