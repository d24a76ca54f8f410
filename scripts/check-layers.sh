#!/usr/bin/env bash
# Check that src/ keeps its layers (src/base.h lists them): every file
# includes only headers of its own layer or below, and calls only functions
# defined in files of its own layer or below, with no cycle among files of
# one layer, for includes or for calls.
#
#   scripts/check-layers.sh [BUILD_DIR]
#
# Includes are read from the sources; calls from the object files of the
# static library in BUILD_DIR (default build/ci; built if missing), with nm:
# a file's undefined dskvs__ symbols against the file that defines each.
# Prints the include and call graphs by layer and exits 1 on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/ci}

declare -A layer=(
  [base]=0 [error]=0 [key]=0 [crc32c]=0 [io]=0 [trim]=0 [slab]=0 [rcu]=0
  [blk]=1
  [table]=2 [queue]=2 [format]=2
  [backup]=3 [batch]=3 [compact]=3 [janitor]=3 [recover]=3 [verify]=3
  [store]=4 [api]=4
)
bad=0
unit() { local f=${1##*/}; echo "${f%.*}"; }

# ---- includes
declare -A inc
for f in src/*.c src/*.h; do
  u=$(unit "$f")
  [[ $u == internal ]] && continue # the white-box tests' umbrella
  [[ -n ${layer[$u]+x} ]] || { echo "unknown file $f: give it a layer"; bad=1; continue; }
  while read -r h; do
    v=$(unit "$h")
    [[ $v == "$u" || $v == internal ]] && continue
    [[ $v == dskvs ]] && continue
    if [[ -z ${layer[$v]+x} ]]; then echo "$f includes unknown $h"; bad=1; continue; fi
    if (( layer[$v] > layer[$u] )); then
      echo "VIOLATION: $f (L${layer[$u]}) includes $h (L${layer[$v]})"; bad=1
    fi
    [[ " ${inc[$u]:-} " == *" $v "* ]] || inc[$u]+=" $v"
  done < <(grep -ho '^#include "[^"]*"' "$f" | sed 's/#include "\(.*\)"/\1/')
done
if grep -l '#include "internal.h"' src/*.c src/*.h 2>/dev/null | grep -v src/internal.h; then
  echo "VIOLATION: library files include internal.h (it is for white-box tests)"; bad=1
fi

# ---- calls, from the objects
if [[ ! -f $build/libdskvs.a ]]; then
  cmake -S . -B "$build" -DDSKVS_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build" --target dskvs_static -j"$(nproc)" >/dev/null
fi
objdir=$build/CMakeFiles/dskvs_static.dir/src
declare -A def calls
# Only the objects of today's sources (a build dir may keep stale ones).
objs=()
for f in src/*.c; do
  o=$objdir/${f##*/}.o
  [[ -f $o ]] || { echo "missing $o: build $build first"; exit 1; }
  objs+=("$o")
done
for o in "${objs[@]}"; do
  u=$(unit "${o%.o}")
  while read -r sym; do def[$sym]=$u; done < <(nm -g --defined-only "$o" | awk '{print $3}')
done
for o in "${objs[@]}"; do
  u=$(unit "${o%.o}")
  while read -r sym; do
    v=${def[$sym]:-}
    [[ -z $v || $v == "$u" ]] && continue
    if (( layer[$v] > layer[$u] )); then
      echo "VIOLATION: $u.c (L${layer[$u]}) calls $sym in $v.c (L${layer[$v]})"; bad=1
    fi
    [[ " ${calls[$u]:-} " == *" $v "* ]] || calls[$u]+=" $v"
  done < <(nm -u "$o" | awk '{print $2}')
done

# ---- cycles (depth-first search over one graph, passed by name)
cycle() {
  local -n g=$1
  declare -A state=()
  visit() {
    local n=$1 m
    state[$n]=1
    for m in ${g[$n]:-}; do
      if [[ ${state[$m]:-0} == 1 ]]; then echo "VIOLATION: $2 cycle through $n -> $m"; return 1; fi
      if [[ ${state[$m]:-0} == 0 ]]; then visit "$m" "$2" || return 1; fi
    done
    state[$n]=2
  }
  local n
  for n in "${!layer[@]}"; do
    if [[ ${state[$n]:-0} == 0 ]]; then visit "$n" "$2" || return 1; fi
  done
}
cycle inc include || bad=1
cycle calls call || bad=1

for l in 0 1 2 3 4; do
  for u in $(printf '%s\n' "${!layer[@]}" | sort); do
    (( layer[$u] == l )) || continue
    printf 'L%d %-8s includes:%s\n' "$l" "$u" "${inc[$u]:-}"
    printf '   %-8s calls:   %s\n' "" "${calls[$u]:-}"
  done
done
if ((bad)); then echo "layers: FAILED"; exit 1; fi
echo "layers: ok (no upward include or call, no cycle)"
