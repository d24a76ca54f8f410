#!/usr/bin/env bash
# The main job: install what is missing, build optimised, run a short stress
# run and print a benchmark summary of dskvs against the design's ceiling and
# the classic rwlock design (peers installed by bench/setup-peers.sh are
# included when present); then start dskvs-server on a fresh store and run
# a short redis-benchmark against it.
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

printf '\n==== dskvs-server: a short redis-benchmark\n'
store=$(mktemp -d /tmp/dskvs-main-server.XXXXXX)
cleanup() { [[ -n ${srv:-} ]] && kill "$srv" 2>/dev/null; rm -rf "$store"; }
trap cleanup EXIT
# A free loopback port: the first of a few random ones the server binds.
for try in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  build/release/server/dskvs-server --store "$store/db" --port "$port" \
    --threads 2 2>"$store/server.log" &
  srv=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.05
  done
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  srv=
done
[[ -n $srv ]] || { cat "$store/server.log"; echo "dskvs-server did not start"; exit 1; }
# -q still prints its progress lines, ending in '\r': keep the results.
quiet() { tr '\r' '\n' | grep -v -e 'rps=' -e '^ *$'; }
redis-benchmark -p "$port" -c 50 -n 100000 -r 100000 -q -t set,get,incr | quiet
redis-benchmark -p "$port" -c 50 -n 100000 -r 100000 -q \
  hset "h:__rand_int__" f v | quiet
redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
wait "$srv"
srv=
echo "dskvs-server: stopped cleanly"
