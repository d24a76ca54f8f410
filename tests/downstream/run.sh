#!/bin/sh
# Builds a program against the *installed* dskvs, once through
# find_package(dskvs) (shared and static targets) and once through
# pkg-config, and runs it.
#
# usage: run.sh <cmake> <dskvs build dir> <this dir> <cc> [extra C/link flags]
# Extra flags are the sanitizer flags when the library was built with them:
# a program linking an ASan-instrumented library must link ASan too.
set -eu
cmake=$1
build=$2
src=$3
cc=$4
flags=${5:-}

command -v pkg-config >/dev/null 2>&1 || {
	echo "pkg-config not installed: skipped"
	exit 77
}

tmp=$(mktemp -d /tmp/dskvs-downstream-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
	{ cat "$tmp/install.log"; exit 1; }

echo "== find_package(dskvs 1) with CMAKE_PREFIX_PATH=$prefix"
"$cmake" -S "$src" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" \
	-DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/configure.log" 2>&1 ||
	{ cat "$tmp/configure.log"; exit 1; }
"$cmake" --build "$tmp/build" >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log"; exit 1; }
"$tmp/build/use_shared"
"$tmp/build/use_static"
"$tmp/build/contract"

echo "== pkg-config dskvs"
pc=$(find "$prefix" -name dskvs.pc | head -n 1)
[ -n "$pc" ] || { echo "dskvs.pc not installed"; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags dskvs)
libs=$(PKG_CONFIG_PATH="$pcdir" pkg-config --libs dskvs)
echo "cflags: $cflags"
echo "libs:   $libs"
# Otherwise a copy installed elsewhere could be what gets tested.
case "$libs" in
*"-L$libdir"*) ;;
*)
	echo "pkg-config --libs does not point into the install prefix" \
		"$prefix: is dskvs.pc relocatable?"
	exit 1
	;;
esac
# shellcheck disable=SC2086 # flags are word lists
"$cc" $flags -o "$tmp/use_pc" "$src/main.c" $cflags $libs
LD_LIBRARY_PATH="$libdir" "$tmp/use_pc"
# shellcheck disable=SC2086
"$cc" $flags -pthread -o "$tmp/contract_pc" "$src/contract.c" $cflags $libs
LD_LIBRARY_PATH="$libdir" "$tmp/contract_pc"
echo "downstream: all ok"
