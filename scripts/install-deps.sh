#!/usr/bin/env bash
# Install the Debian 12 packages dskvs needs to build, test, stress and
# benchmark itself. Installs only what is missing; safe to run again.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the peer stores for bench/
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  libck-dev liburcu-dev libcriterion-dev
  clang libclang-rt-14-dev   # libFuzzer target and sanitizer runtimes
  valgrind
  # tests/server: the clients that drive dskvs-server, and Debian's
  # redis-server as the oracle and the target of export --resp
  redis-server redis-tools libhiredis-dev python3-redis
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(gnuplot-nox)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ "${1:-}" == "--bench" && -x bench/setup-peers.sh ]]; then
  bench/setup-peers.sh
fi
