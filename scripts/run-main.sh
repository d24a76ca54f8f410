#!/usr/bin/env bash
# The main job: install what is missing, build optimised, run a short stress
# run and print a benchmark summary of dskvs against the design's ceiling and
# the classic rwlock design (peers installed by bench/setup-peers.sh are
# included when present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"

printf '\n==== stress (10 s)\n'
build/release/stress/dskvs-stress --seconds 10

printf '\n==== benchmark summary (quick)\n'
build/release/bench/dskvs-bench --quick \
  --engines dskvs,ceiling,rwlock,lmdb,leveldb,rocksdb \
  --workloads readrandom,fillrandom,overwrite
