#!/usr/bin/env bash
# Fuzz the log scanner (tests/fuzz/fuzz_scan.c), the recovery path
# (tests/fuzz/fuzz_recover.c) and dskvs-server's RESP parser
# (server/fuzz/fuzz_resp.c) with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [libFuzzer options...]     (default 60 s)
#
# Configures a separate build (build/fuzz) with clang, -DDSKVS_FUZZ=ON and
# ASan+UBSan, builds the targets, and runs each on a copy of its checked-in
# corpus (tests/fuzz/corpus_scan/, tests/fuzz/corpus/; never modified: new
# inputs the fuzzers find stay in the temporary copies). SECONDS is split
# between the two: half to fuzz_scan, the rest to fuzz_recover (30 + 30 by
# default); the options go to both. DSKVS_FUZZ_TARGETS="scan recover" (the
# default) picks the targets, in that order; one named alone gets all of
# SECONDS. "resp" (the RESP parser, corpus server/fuzz/corpus/) is run only
# when named: DSKVS_FUZZ_TARGETS=resp scripts/fuzz.sh 60. Both run even when the first fails. Exits non-zero on a crash, a
# leak, a timeout or an out-of-memory in either; the failing input is saved
# under build/fuzz/artifacts/ (reproduce: build/fuzz/tests/fuzz/fuzz_scan
# FILE, or fuzz_recover FILE).
set -euo pipefail
secs=${1:-60}
[[ $# -gt 0 ]] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/fuzz
read -r -a targets <<<"${DSKVS_FUZZ_TARGETS:-scan recover}"
for t in "${targets[@]}"; do
  case $t in
    scan | recover | resp) ;;
    *)
      echo "fuzz.sh: unknown target '$t' in DSKVS_FUZZ_TARGETS" >&2
      exit 2
      ;;
  esac
done

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSKVS_FUZZ=ON -DDSKVS_SANITIZE=ON \
  -DDSKVS_BUILD_BENCH=OFF -DDSKVS_BUILD_STRESS=OFF -DDSKVS_BUILD_TOOLS=OFF \
  >/dev/null
bins=()
for t in "${targets[@]}"; do bins+=("fuzz_$t"); done
cmake --build "$build" --target "${bins[@]}" -j"$(nproc)"

work=$(mktemp -d "${TMPDIR:-/tmp}/dskvs-fuzz-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
# Leaks are errors; abort so libFuzzer saves the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -fork: one fuzzing process per core. Besides using the cores, it keeps
#   fuzz_recover's rate up: in a single libFuzzer process each failed
#   dskvs_open waits ~10 ms in rcu_barrier (liburcu's call_rcu worker
#   batches with a 10 ms sleep), which caps it near 100 inputs/s.
# -rss_limit_mb / -malloc_limit_mb: recovery and the scanner must never
#   allocate more than the input justifies.
jobs=${DSKVS_FUZZ_JOBS:-$(nproc)}
n=${#targets[@]}
left=$secs
status=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  # An even share of what is left; the last target gets the rest.
  if ((i == n - 1)); then
    t_secs=$left
  else
    t_secs=$((left / (n - i)))
  fi
  ((t_secs < 1)) && t_secs=1
  left=$((left - t_secs))
  bin=$build/tests/fuzz/fuzz_$t
  case $t in
    resp)
      corpus=$root/server/fuzz/corpus
      bin=$build/server/fuzz_resp
      # -max_len: long enough for the 64 KiB inline and count-line limits
      #   (the harness caps bulks at 4 KiB).
      extra=(-max_len=140000)
      ;;
    scan)
      corpus=$root/tests/fuzz/corpus_scan
      # -max_len: descriptions are short (a few bytes a record; the logs
      #   they stand for are capped at 4 KiB by the harness); raw logs are
      #   a few records.
      extra=(-max_len=8192)
      ;;
    recover)
      corpus=$root/tests/fuzz/corpus
      # -max_len: a few records with values over the 4 KiB inline-copy
      #   limit.
      extra=(-max_len=16384)
      ;;
  esac
  mkdir -p "$work/$t"
  cp "$corpus"/* "$work/$t"/
  echo "fuzz.sh: fuzz_$t for ${t_secs} s"
  if ! "$bin" -max_total_time="$t_secs" -fork="$jobs" \
    -timeout=10 "${extra[@]}" -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" \
    "$work/$t"; then
    echo "fuzz.sh: fuzz_$t failed" >&2
    status=1
  fi
done
exit $status
