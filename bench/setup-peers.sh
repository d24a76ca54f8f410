#!/bin/sh
# Install the peer stores and tools dskvs-bench compares against, from Debian 12
# packages. Every peer is optional at build time: whatever is missing is skipped
# (and named) by the bench, so this script is a convenience, not a requirement.
#
#   liblmdb-dev          LMDB (C API)
#   libleveldb-dev       LevelDB (C API, leveldb/c.h)
#   librocksdb-dev       RocksDB (C API, rocksdb/c.h)
#   libtkrzw-dev         tkrzw (C API, tkrzw_langc.h): TinyDBM and HashDBM
#   libkyotocabinet-dev  Kyoto Cabinet (C API, kclangc.h): CacheDB and HashDB
#   libsqlite3-dev       SQLite (WAL, synchronous=NORMAL)
#   gnuplot-nox          the PNG charts
#   linux-perf valgrind  profiling the misses (perf, callgrind)
set -eu
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
	pkg-config liblmdb-dev libleveldb-dev librocksdb-dev libtkrzw-dev \
	libkyotocabinet-dev libsqlite3-dev gnuplot-nox linux-perf valgrind \
	libck-dev liburcu-dev
