#!/usr/bin/env bash
# Smoke test of dskvs-server through redis-cli: start it on a free loopback
# port, run a few commands, SHUTDOWN, and check that a write survived the
# restart. The thorough client tests are in tests/server/.
#   smoke_test.sh SERVER WORKDIR
set -euo pipefail
server=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  port=$(free_port)
  "$server" --store "$work/store" --port "$port" --threads 2 2>"$work/stderr" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "ready on 127.0.0.1:$port" "$work/stderr" && return 0
    sleep 0.05
  done
  cat "$work/stderr" >&2
  echo "smoke: the server did not become ready" >&2
  exit 1
}

expect() { # expect WANT CMD...
  local want=$1
  shift
  local got
  got=$(redis-cli -p "$port" "$@")
  if [[ $got != "$want" ]]; then
    echo "smoke: $* -> '$got', expected '$want'" >&2
    exit 1
  fi
}

stop() {
  redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
  wait "$pid"
  local rc=$?
  pid=
  [[ $rc -eq 0 ]] || { echo "smoke: exit status $rc" >&2; exit 1; }
}

start
expect PONG ping
expect OK set greeting hello
expect hello get greeting
expect 2 hset artist name daft_punk genre house
expect house hget artist genre
expect house get artist/genre
expect hash type artist
expect "WRONGTYPE Operation against a key holding the wrong kind of value" \
  get artist
expect 11 incrby counter 11
expect "ERR DB index is out of range" select 1
stop
start
expect hello get greeting
expect 11 get counter
expect daft_punk hget artist name
stop
echo "smoke: ok"
