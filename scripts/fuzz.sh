#!/usr/bin/env bash
# Fuzz the recovery path (tests/fuzz/fuzz_recover.c) with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [libFuzzer options...]     (default 60 s)
#
# Configures a separate build (build/fuzz) with clang, -DDSKVS_FUZZ=ON and
# ASan+UBSan, builds the target, and runs it for SECONDS on a copy of the
# checked-in corpus (tests/fuzz/corpus/ is never modified; new inputs the
# fuzzer finds stay in the temporary copy). Exits non-zero on a crash, a
# leak, a timeout or an out-of-memory; the failing input is saved under
# build/fuzz/artifacts/ (reproduce: build/fuzz/tests/fuzz/fuzz_recover FILE).
set -euo pipefail
secs=${1:-60}
[[ $# -gt 0 ]] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/fuzz

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSKVS_FUZZ=ON -DDSKVS_SANITIZE=ON \
  -DDSKVS_BUILD_BENCH=OFF -DDSKVS_BUILD_STRESS=OFF -DDSKVS_BUILD_TOOLS=OFF \
  >/dev/null
cmake --build "$build" --target fuzz_recover -j"$(nproc)"

work=$(mktemp -d "${TMPDIR:-/tmp}/dskvs-fuzz-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$root"/tests/fuzz/corpus/* "$work"/
mkdir -p "$build/artifacts"
# Leaks are errors; abort so libFuzzer saves the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -fork: one fuzzing process per core. Besides using the cores, it keeps
#   the rate up: in a single libFuzzer process each failed dskvs_open waits
#   ~10 ms in rcu_barrier (liburcu's call_rcu worker batches with a 10 ms
#   sleep), which caps it near 100 inputs/s.
# -max_len: a few records with values over the 4 KiB inline-copy limit.
# -rss_limit_mb / -malloc_limit_mb: recovery must never allocate more than
#   the input justifies.
jobs=${DSKVS_FUZZ_JOBS:-$(nproc)}
"$build/tests/fuzz/fuzz_recover" -max_total_time="$secs" -fork="$jobs" \
  -timeout=10 -max_len=16384 -rss_limit_mb=1024 -malloc_limit_mb=256 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" "$work"
