#!/usr/bin/env bash
# The mutation check: apply each mutant of scripts/mutants/list/ in turn,
# rebuild a dedicated normal build incrementally, run the tests the mutant
# names, restore the source. A mutant is killed when a test fails, times
# out or crashes; it survives when they pass. See scripts/mutants/README.md.
#
#   scripts/mutants/run.sh [-B builddir] [-j jobs] [-t secs] [mutant.mut ...]
#
# -j: build jobs (and for the baseline test run); -t: limit in seconds for
# one test of one mutant (a hang counts as killed).
#
# Exit status: 0 when every mutant not marked equivalent was killed and
# every one marked equivalent survived; 1 otherwise; 2 for a bad mutant
# (its original text not found exactly once, or it does not build).
# The tree is never left mutated: the file is restored after each mutant,
# on any exit (trap), and at the start of a run after a kill -9.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

bd=build/mut
jobs=2
limit=180 # seconds for one test under one mutant: a hang is a kill
while getopts "B:j:t:" o; do
	case $o in
	B) bd=$OPTARG ;;
	j) jobs=$OPTARG ;;
	t) limit=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if (($# == 0)); then
	set -- scripts/mutants/list/*.mut
fi

backup=$bd/mutant-backup
log=$bd/mutants.log

restore() {
	if [[ -f $backup/path ]]; then
		local f
		f=$(<"$backup/path")
		# A plain copy gives the file a new mtime, so the next build
		# recompiles it (a preserved mtime would keep the mutant's
		# object file).
		cp "$backup/orig" "$f"
		rm -f "$backup/path" "$backup/orig"
	fi
}
trap restore EXIT
trap 'restore; echo "interrupted: source restored" >&2; exit 130' INT TERM
mkdir -p "$backup"
if [[ -f $backup/path ]]; then
	echo "restoring $(<"$backup/path") left mutated by an earlier run" >&2
	restore
fi

# ---- parsing -----------------------------------------------------------------
# A mutant file: "file:", "tests:", "breaks:", optional "equivalent:" lines,
# then the exact original text after "@@ original", the text that replaces
# it after "@@ replacement", and "@@ end".
declare -A M_FILE M_TESTS M_EQUIV M_ORIG M_REPL
parse() {
	local mf=$1 sect="" line orig="" repl=""
	M_FILE[$mf]="" M_TESTS[$mf]="" M_EQUIV[$mf]=""
	while IFS= read -r line || [[ -n $line ]]; do
		case $sect in
		"")
			case $line in
			"file: "*) M_FILE[$mf]=${line#file: } ;;
			"tests: "*) M_TESTS[$mf]=${line#tests: } ;;
			"equivalent: "*) M_EQUIV[$mf]=${line#equivalent: } ;;
			"@@ original") sect=orig ;;
			esac
			;;
		orig)
			if [[ $line == "@@ replacement" ]]; then
				sect=repl
			else
				orig+=$line$'\n'
			fi
			;;
		repl)
			if [[ $line == "@@ end" ]]; then
				sect=end
			else
				repl+=$line$'\n'
			fi
			;;
		esac
	done <"$mf"
	M_ORIG[$mf]=$orig
	M_REPL[$mf]=$repl
	if [[ $sect != end || -z ${M_FILE[$mf]} || -z ${M_TESTS[$mf]} ||
		-z $orig ]]; then
		echo "$mf: malformed (needs file:, tests:, @@ original," \
			"@@ replacement, @@ end)" >&2
		return 1
	fi
}

# Occurrences of $2 in the contents $1.
count() {
	local s=$1 t=$2 rest
	rest=${s//"$t"/}
	echo $(((${#s} - ${#rest}) / ${#t}))
}

bad=0
for mf in "$@"; do
	parse "$mf" || {
		bad=1
		continue
	}
	f=${M_FILE[$mf]}
	if [[ ! -f $f ]]; then
		echo "$mf: no file $f" >&2
		bad=1
		continue
	fi
	n=$(count "$(cat "$f"; echo x)" "${M_ORIG[$mf]}")
	if ((n != 1)); then
		echo "$mf: original text found $n times in $f (want exactly" \
			"once): update the mutant to the code" >&2
		bad=1
	fi
done
((bad)) && exit 2

# ---- build and test ------------------------------------------------------------
targets_for() { # test names -> build targets
	local t out=()
	for t in $1; do
		case $t in
		mutants_*) out+=(test_mutants) ;;
		durability_*) out+=("test_${t#durability_}") ;;
		fuzz_scan_corpus_replay) out+=(fuzz_scan_replay) ;;
		fuzz_corpus_replay) out+=(fuzz_recover_replay) ;;
		*) out+=("test_$t") ;;
		esac
	done
	printf '%s\n' "${out[@]}" | sort -u | tr '\n' ' '
}
regex_for() { # test names -> ctest -R
	local r
	r=$(echo "$1" | tr ' ' '|')
	echo "^($r)\$"
}

if [[ ! -f $bd/CMakeCache.txt ]]; then
	cmake -S . -B "$bd" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DDSKVS_WERROR=ON -DDSKVS_BUILD_BENCH=OFF \
		-DDSKVS_BUILD_STRESS=OFF -DDSKVS_BUILD_TOOLS=OFF >/dev/null || exit 2
fi
: >"$log"
all_tests=$(for mf in "$@"; do echo "${M_TESTS[$mf]}"; done | tr ' ' '\n' |
	sort -u | tr '\n' ' ')
all_tests=${all_tests% }
t0=$SECONDS
echo "baseline: building and running the tests the mutants name (unmutated)"
# shellcheck disable=SC2046
if ! cmake --build "$bd" -j"$jobs" --target $(targets_for "$all_tests") \
	>>"$log" 2>&1; then
	echo "the unmutated tree does not build (see $log)" >&2
	exit 2
fi
if ! timeout $((limit * 3)) ctest --test-dir "$bd" -j"$jobs" \
	-R "$(regex_for "$all_tests")" >>"$log" 2>&1; then
	echo "the unmutated tree fails its tests (see $log): no mutant can" \
		"be judged" >&2
	exit 1
fi

killed=0 survived=0 equiv=0 equiv_killed=0
survivors=() wrong_equiv=()
for mf in "$@"; do
	f=${M_FILE[$mf]}
	name=$(basename "$mf" .mut)
	ts=$SECONDS
	cp "$f" "$backup/orig"
	echo "$f" >"$backup/path"
	content=$(cat "$f"; echo x)
	content=${content%x}
	printf '%s' "${content/"${M_ORIG[$mf]}"/"${M_REPL[$mf]}"}" >"$f"
	echo "==== $name" >>"$log"
	# shellcheck disable=SC2046
	if ! cmake --build "$bd" -j"$jobs" \
		--target $(targets_for "${M_TESTS[$mf]}") >>"$log" 2>&1; then
		restore
		echo "$name: does not build (see $log): fix the mutant" >&2
		exit 2
	fi
	# One test at a time, in the order listed (the quickest killer
	# first), stopping at the first failure.
	result=survived
	for t in ${M_TESTS[$mf]}; do
		if ! timeout "$limit" ctest --test-dir "$bd" \
			--output-on-failure -R "^$t\$" >>"$log" 2>&1; then
			result=killed
			echo "killed by $t" >>"$log"
			break
		fi
	done
	restore
	if [[ -n ${M_EQUIV[$mf]} ]]; then
		if [[ $result == survived ]]; then
			result="equivalent (survived, as argued)"
			equiv=$((equiv + 1))
		else
			result="KILLED, but marked equivalent: revise the mark"
			equiv_killed=$((equiv_killed + 1))
			wrong_equiv+=("$name")
		fi
	elif [[ $result == killed ]]; then
		killed=$((killed + 1))
	else
		result="SURVIVED"
		survived=$((survived + 1))
		survivors+=("$name")
	fi
	printf '%-40s %-10s %3ds  [%s]\n' "$name" "${result%% *}" \
		$((SECONDS - ts)) "${M_TESTS[$mf]}"
	[[ $result == KILLED* || $result == SURVIVED ]] && echo "    $result"
done
# Rebuild the restored tree, so build/mut holds no mutant.
cmake --build "$bd" -j"$jobs" --target $(targets_for "$all_tests") \
	>>"$log" 2>&1

total=$#
echo
echo "mutants: $total  killed: $killed  survived: $survived" \
	"equivalent: $equiv  time: $((SECONDS - t0)) s"
((survived)) && echo "survivors: ${survivors[*]}"
((equiv_killed)) && echo "marked equivalent but killed: ${wrong_equiv[*]}"
((survived == 0 && equiv_killed == 0))
