#!/usr/bin/env bash
# scripts/run-fuzz.sh BIN... - run each libFuzzer driver briefly; fail on a crash (`make fuzz`).
#
# BIN is build/fuzz/fuzz_NAME; its seed corpus is fuzz/corpus/NAME/ (copied into a temp dir so
# the checked-in corpus never grows; an absent corpus starts empty). Each driver runs for
# FUZZ_SECONDS (default 30) under -max_total_time plus a hard `timeout`, with a per-input timeout
# and an RSS limit. A crash, leak, timeout or sanitizer report fails the run; the reproducer is
# kept in build/fuzz/artifacts/NAME/ (re-run it with: BIN ARTIFACT).
# Ends with one "N passed, N failed" line (one per driver); exit status non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${FUZZ_SECONDS:-30}
ART_ROOT=${FUZZ_ARTIFACTS:-$ROOT/build/fuzz/artifacts}

if [ $# -eq 0 ]; then
    echo "note: no fuzz drivers (fuzz/fuzz_*.c) to run"
    echo "0 passed, 0 failed"
    exit 0
fi

TMP=$(mktemp -d /tmp/ebb-fuzz.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pass=0 fail=0
for bin in "$@"; do
    name=$(basename "$bin"); name=${name#fuzz_}
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz_$name: $bin is not an executable"; fail=$((fail + 1)); continue
    fi
    corpus=$TMP/$name/corpus art=$TMP/$name/artifacts
    mkdir -p "$corpus" "$art"
    if [ -d "$ROOT/fuzz/corpus/$name" ]; then
        cp -r "$ROOT/fuzz/corpus/$name/." "$corpus/"
    else
        echo "note: fuzz/corpus/$name/ missing; fuzz_$name starts from an empty corpus"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    log=$TMP/$name/log
    timeout -k 10 $((SECS + 120)) "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/" "$corpus" </dev/null >"$log" 2>&1
    st=$?
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -n 1)
    found=$(find "$art" -type f | wc -l)
    if [ "$st" -eq 0 ] && [ "$found" -eq 0 ]; then
        pass=$((pass + 1))
        echo "PASS fuzz_$name: ${SECS}s, ${execs:-?} execs, $seeds seeds"
    else
        fail=$((fail + 1))
        why="exit $st"; [ "$st" -eq 124 ] && why="hung past ${SECS}s + 120s"
        echo "FAIL fuzz_$name: $why, $found artifact(s)"
        grep -aE 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x' "$log" | head -n 40 | sed 's/^/     | /'
        if [ "$found" -gt 0 ]; then
            mkdir -p "$ART_ROOT/$name"
            cp "$art"/* "$ART_ROOT/$name/"
            echo "     reproduce: $bin $ART_ROOT/$name/$(ls "$art" | head -n 1)"
        fi
        tail -n 5 "$log" | sed 's/^/     | /'
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
