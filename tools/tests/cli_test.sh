#!/usr/bin/env bash
# Tests of the installed dskvs program, run by CTest: what it prints and the
# exit status of every command, success and failure.
#
#   cli_test.sh DSKVS GROUP WORKDIR
#
# DSKVS is the installed program, GROUP one of the test groups below (one
# CTest test each), WORKDIR a scratch directory (emptied first). Every group
# is deterministic and takes well under a second or two.
set -eu

DSKVS=$1
GROUP=$2
WORK=$3

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
unset DSKVS_STORE
export LC_ALL=C

fail() {
	echo "FAIL [$GROUP]: $*" >&2
	exit 1
}

# run ARGS...: run dskvs, stdout to ./out, stderr to ./err, status in $rc.
run() {
	set +e
	"$DSKVS" "$@" >out 2>err
	rc=$?
	set -e
}

# expect STATUS ARGS...: run dskvs and check its exit status. A failure must
# explain itself in one line on stderr (usage errors add a "Try" hint), and
# a success must be silent on stderr.
expect() {
	local want=$1 lines
	shift
	run "$@"
	if [ "$rc" != "$want" ]; then
		fail "dskvs $*: exit status $rc, expected $want;" \
			"stderr: $(cat err)"
	fi
	lines=$(wc -l <err)
	case $want in
	0) [ "$lines" = 0 ] || fail "dskvs $*: succeeded but said: $(cat err)" ;;
	*) [ "$lines" = 1 ] || { [ "$lines" = 2 ] && [ "$want" = 2 ] &&
		tail -1 err | grep -q "^Try 'dskvs"; } ||
		fail "dskvs $*: not a one-line error: $(cat err)" ;;
	esac
}

# out_is TEXT: stdout was exactly TEXT (printf format, no newline added).
out_is() {
	# shellcheck disable=SC2059
	printf -- "$1" >want
	cmp -s want out || fail "stdout: got [$(cat -A out)], want [$(cat -A want)]"
}

out_has() {
	grep -qE -- "$1" out || fail "stdout lacks /$1/: $(cat out)"
}

err_has() {
	grep -qE -- "$1" err || fail "stderr lacks /$1/: $(cat err)"
}

# A file holding every byte value once, in order.
all_bytes() {
	local i
	for i in $(seq 0 255); do
		# shellcheck disable=SC2059
		printf "\\$(printf %03o "$i")"
	done
}

# stat_of NAME: a value from 'dskvs stats' output in ./out.
stat_of() {
	awk -v k="$1" '$1 == k { print $2 }' out
}

group_help() {
	local c
	expect 0 --help
	out_has '^Usage: dskvs \[--store DIR\] COMMAND'
	mv out main_help
	for c in get put del getall delall ls dump load stats verify compact; do
		grep -q "^  $c " main_help || fail "--help does not list $c"
		expect 0 "$c" --help
		out_has "^Usage: dskvs \[--store DIR\] $c"
		cp out a
		expect 0 help "$c"
		cmp -s a out || fail "help $c differs from $c --help"
	done
	expect 0 -h
	expect 0 help
	out_has '^Exit status: 0 success, 1 not found, 2 usage'
	expect 0 --version
	out_has '^dskvs [0-9]+\.[0-9]+\.[0-9]+ \(library [0-9]+\.[0-9]+\.[0-9]+\)$'

	# Usage errors: status 2, nothing on stdout, nothing created.
	run
	[ "$rc" = 2 ] || fail "no command: exit $rc"
	[ -s out ] && fail "no command printed to stdout"
	err_has '^Usage: dskvs'
	expect 2 frobnicate
	err_has "unknown command 'frobnicate'"
	expect 2 get
	err_has 'missing argument'
	expect 2 get a/b c/d
	err_has 'too many arguments'
	expect 2 ls extra
	expect 2 --bogus ls
	err_has "unknown option '--bogus'"
	expect 2 ls -x
	err_has "unknown option '-x'"
	expect 2 get --store
	err_has 'needs a value'
	expect 2 --help=yes
	err_has 'takes no value'
	expect 2 help nosuch
	expect 2 put --file x a/b value
	err_has 'not both'
	expect 2 --store '' ls
	[ -z "$(ls -A | grep -v -e '^out$' -e '^err$' -e '^a$' -e '^want$' -e '^main_help$')" ] ||
		fail "usage errors created files: $(ls -A)"

	# Nothing for terminals goes into pipes: no colour escapes, even
	# without NO_COLOR.
	run --store nowhere get a/b
	[ "$rc" = 3 ] || fail "missing store: exit $rc"
	if grep -q $'\033' err; then
		fail "colour escape written to a pipe"
	fi
}

group_kv() {
	S=--store=st
	expect 0 $S put artist/daft_punk Discovery
	[ -s out ] && fail "put printed something"
	expect 0 $S get artist/daft_punk
	out_is 'Discovery'

	# Binary values, from standard input, a file and --file=.
	all_bytes >bytes
	printf 'x\0y\377\n' >small
	"$DSKVS" $S put bin/stdin <small || fail "put from stdin"
	expect 0 $S get bin/stdin
	cmp -s small out || fail "stdin value changed"
	expect 0 $S put --file bytes bin/all
	expect 0 $S get bin/all
	cmp -s bytes out || fail "--file value changed"
	for _ in $(seq 12); do cat bytes bytes bytes bytes; done >big # 12 KiB
	for _ in $(seq 6); do cat big big big big; done >big2      # 288 KiB
	expect 0 $S put --file=big2 bin/big
	"$DSKVS" $S get bin/big >got || fail "get big"
	cmp -s big2 got || fail "big value changed"
	expect 0 $S put -f - bin/dash <small
	expect 0 $S get bin/dash
	cmp -s small out || fail "-f - value changed"

	# Empty value, overwrite, member with '/', keys with odd bytes.
	expect 0 $S put e/empty ''
	expect 0 $S get e/empty
	[ -s out ] && fail "empty value not empty"
	expect 0 $S put artist/daft_punk Homework
	expect 0 $S get artist/daft_punk
	out_is 'Homework'
	expect 0 $S put artist/daft_punk/discovery 2001
	expect 0 $S get artist/daft_punk/discovery
	out_is '2001'
	expect 0 $S put "music/Björk" Debut
	expect 0 $S get "music/Björk"
	out_is 'Debut'
	expect 0 $S put $'odd/\xff\x01\t"\\' v
	expect 0 $S get $'odd/\xff\x01\t"\\'
	out_is 'v'

	# Keys and values that start with '-' need '--'.
	expect 2 $S put neg/x -5
	err_has "unknown option '-5'"
	err_has "put '--' before"
	expect 0 $S put -- neg/x -5
	expect 0 $S get -- neg/x
	out_is '-5'
	expect 0 $S put -- -dash/m v
	expect 0 $S get -- -dash/m
	out_is 'v'

	# Not found: status 1.
	expect 1 $S get artist/nobody
	err_has "^dskvs get: no such key 'artist/nobody'$"
	expect 0 $S del artist/daft_punk
	expect 1 $S get artist/daft_punk
	expect 1 $S del artist/daft_punk
	err_has "no such key"

	# Malformed keys: status 2.
	expect 2 $S get artist
	err_has "'artist' names a collection"
	expect 2 $S get artist/
	expect 2 $S del artist
	expect 2 $S put artist value
	expect 2 $S get /x
	err_has 'malformed key'
	expect 2 $S get ''
	printf '%65536s' '' | tr ' ' m >longname
	expect 2 $S put "c/$(cat longname)" v
	err_has 'larger than the documented limit'

	# Values over 64 MiB are refused before the store is touched.
	set +e
	head -c $((64 * 1024 * 1024 + 1)) /dev/zero | "$DSKVS" $S put h/h 2>err
	rc=$?
	set -e
	[ "$rc" = 2 ] || fail "put of 64 MiB + 1: exit $rc"
	err_has 'larger than 64 MiB'
	expect 2 $S put --file does-not-exist h/h
	err_has "cannot open 'does-not-exist'"

	# Everything written survived the closes above: check once more.
	expect 0 $S get bin/all
	cmp -s bytes out || fail "value changed after reopening"
}

group_collections() {
	S=--store=st
	expect 0 $S put artist/b two
	expect 0 $S put artist/a $'one\ttab\nline'
	printf '\211PNG\0' | "$DSKVS" $S put img/logo
	expect 0 $S put 'sp ace/m' x

	expect 0 $S ls
	out_is 'artist\t2\t15\nimg\t1\t5\nsp ace\t1\t1\n'
	expect 0 $S getall artist
	out_is 'a\tone\\ttab\\nline\nb\ttwo\n'
	expect 0 $S getall artist/
	out_is 'a\tone\\ttab\\nline\nb\ttwo\n'
	expect 0 $S getall img
	out_is 'logo\t\\x89PNG\\x00\n'
	expect 0 $S getall --json img
	out_is '{"key":"img/logo","value_b64":"iVBORwA="}\n'
	expect 0 $S getall --json artist
	out_is '{"key":"artist/a","value":"one\\ttab\\nline"}\n{"key":"artist/b","value":"two"}\n'

	expect 1 $S getall nosuch
	err_has "no such collection 'nosuch'"
	expect 2 $S getall artist/a
	err_has "'artist/a' is a member key"
	expect 2 $S delall artist/a

	expect 0 $S delall artist
	expect 1 $S getall artist
	expect 1 $S delall artist
	expect 0 $S ls
	out_is 'img\t1\t5\nsp ace\t1\t1\n'
	expect 0 $S delall img
	expect 0 $S delall 'sp ace/'
	expect 0 $S ls
	out_is ''
}

# A store with every awkward kind of key and value.
make_tricky_store() {
	local s=$1
	all_bytes >bytes
	for _ in $(seq 64); do cat bytes bytes bytes bytes; done >big # 64 KiB
	"$DSKVS" -s "$s" put --file bytes bin/all
	"$DSKVS" -s "$s" put --file big bin/big
	"$DSKVS" -s "$s" put bin/empty ''
	printf 'nul\0inside' | "$DSKVS" -s "$s" put bin/nul
	printf '\355\240\200' | "$DSKVS" -s "$s" put bin/surrogate
	printf '\300\200' | "$DSKVS" -s "$s" put bin/overlong
	"$DSKVS" -s "$s" put text/quote 'say "hi" \ back\slash'
	"$DSKVS" -s "$s" put text/ctl $'tab\tnl\ncr\rbell\a del\x7f'
	"$DSKVS" -s "$s" put text/unicode 'héllo wörld € 😀'
	"$DSKVS" -s "$s" put $'key/\xff\xfe' 'binary member'
	"$DSKVS" -s "$s" put $'key/tab\there' 'tab member'
	"$DSKVS" -s "$s" put $'key/"q"\\' 'quote member'
	"$DSKVS" -s "$s" put key/a/b/c 'slashes'
	"$DSKVS" -s "$s" put $'c\xc3\xa9/m' 'utf-8 collection'
	"$DSKVS" -s "$s" put $'\xff/m' 'binary collection'
}

group_dump_load() {
	make_tricky_store s1
	expect 0 -s s1 dump
	mv out d1
	head -1 d1 | grep -qE '^\{"dskvs_dump":1,"library":"[0-9.]+"\}$' ||
		fail "bad dump header: $(head -1 d1)"
	[ "$(tail -1 d1)" = '{"dskvs_dump_end":15}' ] ||
		fail "bad dump end line: $(tail -1 d1)"
	[ "$(wc -l <d1)" = 17 ] || fail "dump has $(wc -l <d1) lines"
	grep -qF '{"key":"bin/nul","value":"nul\u0000inside"}' d1 ||
		fail "NUL not escaped as \\u0000"
	grep -qF '{"key":"bin/surrogate","value_b64":"7aCA"}' d1 ||
		fail "surrogate bytes not base64"
	grep -qF '{"key_b64":"a2V5L//+","value":"binary member"}' d1 ||
		fail "binary key not base64"
	grep -qF '{"key":"text/unicode","value":"héllo wörld € 😀"}' d1 ||
		fail "UTF-8 not written as text"
	grep -qF '"value":"tab\tnl\ncr\rbell\u0007 del\u007f"' d1 ||
		fail "control characters not escaped"
	if command -v jq >/dev/null; then
		jq -c . d1 >/dev/null || fail "dump is not JSON Lines (jq)"
	fi

	# Restore into an empty store: from a file, standard input, a pipe.
	expect 0 -s s2 load d1
	expect 0 -s s2 dump
	cmp -s d1 out || fail "dump | load (file) did not round-trip"
	expect 0 -s s3 load <d1
	"$DSKVS" -s s1 dump | "$DSKVS" -s s4 load || fail "dump | load"
	for s in s3 s4; do
		expect 0 -s $s dump
		cmp -s d1 out || fail "dump | load into $s did not round-trip"
	done
	expect 0 -s s4 get --store s4 bin/all
	cmp -s bytes out || fail "bin/all changed by dump/load"
	expect 0 -s s4 get bin/big
	cmp -s big out || fail "bin/big changed by dump/load"
	expect 0 -s s4 get $'key/\xff\xfe'
	out_is 'binary member'
	expect 0 -s s4 get $'\xff/m'
	out_is 'binary collection'
	expect 0 -s s4 get bin/nul
	out_is 'nul\0inside'

	# Loading into a store with data needs --merge.
	expect 2 -s s4 load d1
	err_has "is not empty \(15 entries\).*--merge"
	printf '{"key":"text/quote","value":"replaced"}\n{"key":"new/k","value":"n"}\n' >m
	expect 0 -s s4 load --merge m
	expect 0 -s s4 get text/quote
	out_is 'replaced'
	expect 0 -s s4 get new/k
	out_is 'n'
	# getall --json feeds load --merge.
	"$DSKVS" -s s1 getall --json key | "$DSKVS" -s s5 load ||
		fail "getall --json | load"
	expect 0 -s s5 ls
	out_is 'key\t4\t42\n'

	# Dumps written by other tools: any field order, whitespace, \u
	# escapes, surrogate pairs, unpadded base64, CRLF, blank lines.
	printf '%s\r\n' \
		' { "value" : "\ud83d\ude00" , "key" : "x/\u00e9" } ' \
		'' \
		'{"key":"x\/slash","value_b64":"aGk"}' >other
	expect 0 -s s6 load other
	expect 0 -s s6 get 'x/é'
	out_is '\360\237\230\200'
	expect 0 -s s6 get x/slash
	out_is 'hi'

	# Progress on request (on a terminal it is automatic); none otherwise.
	expect 0 -s s1 dump
	[ -s err ] && fail "dump wrote to stderr without a terminal"
	run --progress -s s1 dump
	[ "$rc" = 0 ] || fail "dump --progress: exit $rc"
	err_has '^dump: 15 entries$'
	run --progress -s s7 load d1
	[ "$rc" = 0 ] || fail "load --progress: exit $rc"
	err_has '^load: 15 entries$'

	# A reader that stops early: dskvs dies of SIGPIPE, says nothing, and
	# leaves the store closed and usable.
	for _ in $(seq 4); do cat big big big big; done >huge # 1 MiB
	expect 0 -s s1 put --file huge bin/huge
	set +e
	"$DSKVS" -s s1 dump 2>err | head -c 10 >/dev/null
	status=("${PIPESTATUS[@]}")
	set -e
	[ "${status[0]}" = 141 ] || fail "dump | head: exit ${status[0]}"
	[ -s err ] && fail "dump | head: said $(cat err)"
	expect 0 -s s1 get bin/huge
	cmp -s huge out || fail "store changed by dump | head"
}

group_load_errors() {
	local n=0

	# load_fails STATUS PATTERN LINES...: loading LINES into an empty
	# store fails with STATUS and PATTERN, and leaves the store empty.
	load_fails() {
		local want=$1 pat=$2
		shift 2
		n=$((n + 1))
		printf '%s\n' "$@" >in$n
		expect "$want" -s e$n load in$n
		err_has "$pat"
		err_has "; nothing was loaded$"
		expect 0 -s e$n stats
		[ "$(stat_of entries)" = 0 ] || fail "load left data behind"
	}
	good='{"key":"a/1","value":"one"}'
	load_fails 2 "'in1', line 2, column 8: expected ':'" "$good" '{"key" "a/2"}'
	load_fails 2 "line 2: unknown field 'vaule'" "$good" '{"key":"a/2","vaule":"x"}'
	load_fails 2 'no "value" \(or "value_b64"\) field' "$good" '{"key":"a/2"}'
	load_fails 2 'both "key" and "key_b64"' '{"key":"a/2","key_b64":"YS8y","value":""}'
	load_fails 2 '"value_b64" is not valid base64' "$good" '{"key":"a/2","value_b64":"!!"}'
	load_fails 2 '"value" must be a string' '{"key":"a/2","value":2}'
	load_fails 2 "line 2: 'a' names a collection" "$good" '{"key":"a","value":"x"}'
	load_fails 2 'collection name of key .* holds a NUL byte' "$good" \
		'{"key":"a\u0000/x","value":"x"}'
	load_fails 2 'invalid UTF-8' "$good" $'{"key":"a/2","value":"\xff"}'
	load_fails 2 'line 1, column 1: expected' 'not json'
	load_fails 2 'nested objects' '{"key":"a/2","value":{"x":1}}'
	load_fails 2 "has no end line: it was cut short" '{"dskvs_dump":1}' "$good"
	load_fails 2 'promises 2 entries but the dump holds 1' \
		'{"dskvs_dump":1}' "$good" '{"dskvs_dump_end":2}'
	load_fails 2 'end line without a dump header' "$good" '{"dskvs_dump_end":1}'
	load_fails 2 'dump format 2 is newer' '{"dskvs_dump":2}'
	load_fails 2 'new dump starts before the one from line 1 ended' \
		'{"dskvs_dump":1}' "$good" '{"dskvs_dump":1}'
	longname=$(printf '%65536s' '' | tr ' ' m)
	load_fails 2 'line 2.*larger than the documented limit' "$good" \
		"{\"key\":\"a/$longname\",\"value\":\"\"}"
	expect 2 -s e0 load does-not-exist
	err_has "cannot open 'does-not-exist'"

	# With --merge, what came before the bad line stays.
	expect 0 -s m put keep/k v
	printf '%s\n' "$good" 'oops' >bad
	expect 2 -s m load --merge bad
	err_has "line 2, column 1: expected '\{'; the 1 entry before it stays loaded$"
	expect 0 -s m get a/1
	out_is 'one'
	expect 0 -s m get keep/k
	out_is 'v'
}

group_stats() {
	S=-sst
	expect 0 $S put a/x 12345
	expect 0 $S put a/y ''
	expect 0 $S put b/z z
	expect 0 $S stats
	for k in entries collections live_bytes log_bytes log_live_bytes \
		garbage_ratio format_version last_compaction; do
		[ -n "$(stat_of $k)" ] || fail "stats lacks $k: $(cat out)"
	done
	[ "$(stat_of entries)" = 3 ] || fail "entries: $(stat_of entries)"
	[ "$(stat_of collections)" = 2 ] || fail "collections"
	[ "$(stat_of live_bytes)" -gt 6 ] || fail "live_bytes"
	[ "$(stat_of log_bytes)" -gt 0 ] || fail "log_bytes"
	# Each command was one batch, followed by its 32-byte mark (the proof
	# that the batch was synced): garbage, but never most of the log.
	awk '$1 == "garbage_ratio" { exit !($2 >= 0 && $2 < 0.5) }' out ||
		fail "garbage_ratio: $(stat_of garbage_ratio)"
	out_has '^format_version +[0-9]+\.[0-9]+$'
	out_has '^last_compaction +([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z|unknown)$'
	[ "$(stat_of log_bytes)" = "$(wc -c <st/dskvs.log)" ] ||
		fail "log_bytes is not the size of dskvs.log"
	expect 0 $S put a/x 54321
	expect 0 $S del b/z
	expect 0 $S stats
	[ "$(stat_of entries)" = 2 ] || fail "entries after del"
	[ "$(stat_of collections)" = 1 ] || fail "collections after del"
	awk '$1 == "garbage_ratio" { exit !($2 > 0 && $2 < 1) }' out ||
		fail "garbage_ratio after overwrite: $(stat_of garbage_ratio)"
}

group_compact() {
	S=-sst
	for i in $(seq 15); do
		"$DSKVS" $S put c/k "value number $i"
	done
	expect 0 $S put c/other x
	expect 0 $S stats
	before=$(stat_of log_bytes)
	expect 0 $S compact
	out_has "^compacted: log $before -> [0-9]+ bytes$"
	after=$(awk '{ print $(NF - 1) }' out)
	[ "$after" -lt "$before" ] || fail "compact did not shrink the log"
	expect 0 $S stats
	# The compact command's close appended its closing mark (32 bytes);
	# it and the sealed part's mark are the only bytes not of live
	# records.
	[ "$(stat_of log_bytes)" = $((after + 32)) ] ||
		fail "log_bytes after compact"
	awk -v g="$(stat_of garbage_ratio)" -v b="$after" \
		'BEGIN { exit !(g * (b + 32) <= 64.5) }' ||
		fail "garbage after compact"
	expect 0 $S get c/k
	out_is 'value number 15'
	expect 0 $S get c/other
	out_is 'x'
	expect 0 $S verify
	expect 3 -s nowhere compact
}

group_verify() {
	for i in $(seq 5); do
		"$DSKVS" -s st put "v/k$i" "value $i"
	done
	"$DSKVS" -s st put v/marker MARKER-TO-DAMAGE
	for i in $(seq 6 10); do
		"$DSKVS" -s st put "v/k$i" "value $i"
	done
	expect 0 -s st verify
	out_has '^healthy: 11 records \(11 puts, 0 deletes, 0 delete-alls\), '
	out_has '^healthy: 11 records .*, ([0-9]+) of \1 bytes valid, format [0-9]+\.[0-9]+$'

	# A damaged copy: one byte flipped in the middle of the log.
	cp -r st bad
	off=$(grep -boa MARKER-TO-DAMAGE bad/dskvs.log | cut -d: -f1)
	printf 'X' | dd of=bad/dskvs.log bs=1 seek="$off" conv=notrunc 2>/dev/null
	expect 3 -s bad verify
	err_has "^dskvs verify: store 'bad' is damaged$"
	out_has '^bad/dskvs\.log: offset [0-9]+: .*checksum'
	out_has '^damaged: 10 records .*; 1 damaged region$'
	expect 0 -s st verify # the original is untouched
	cmp -s st/dskvs.log bad/dskvs.log && fail "copy not damaged"
	cp bad/dskvs.log before
	expect 3 -s bad get v/k1
	err_has "store 'bad' is damaged: .*offset.*dskvs verify"
	cmp -s before bad/dskvs.log || fail "a failed open changed the log"

	# A torn tail (a crash in the middle of an append) is healthy: the
	# next open moves it aside, cuts it off, and says so. The log ends
	# with the 32-byte mark of the last batch; cut 5 bytes more, into the
	# last record, with nothing after it to prove it synced.
	cp -r st torn
	truncate -s -37 torn/dskvs.log
	expect 0 -s torn verify
	out_has '^torn/dskvs\.log: offset [0-9]+: .*torn tail'
	out_has 'healthy: 10 records.*ends in a partial record.*torn/dskvs\.torn\.[0-9]+'
	run -s torn get v/k1
	[ "$rc" = 0 ] || fail "open of a torn store: exit $rc"
	err_has '^dskvs get: note: .*torn tail.*moved aside to .*dskvs\.torn\.[0-9]+'
	ls torn/dskvs.torn.* >/dev/null 2>&1 || fail "the torn bytes were not kept"
	expect 0 -s torn verify
	out_has 'kept: torn/dskvs\.torn\.[0-9]+'
	expect 0 -s torn verify
	out_has '^healthy: 10 records \(10 puts, 0 deletes, 0 delete-alls\), [0-9]+ of [0-9]+ bytes valid, format [0-9.]+$'
	expect 1 -s torn get v/k10

	# A log from a newer major format version (bytes 8-9 of the file
	# header, little-endian) is refused, not misread.
	cp -r st newer
	printf '\377' | dd of=newer/dskvs.log bs=1 seek=8 conv=notrunc 2>/dev/null
	expect 3 -s newer verify
	err_has "cannot verify 'newer': .*newer.*format version 255\.0"
	expect 3 -s newer get v/k1
	err_has "store 'newer' was written by a newer, incompatible dskvs format"

	# Something that is not a dskvs log at all.
	mkdir junk
	echo 'not a log' >junk/dskvs.log
	expect 3 -s junk verify
	out_has '^junk/dskvs\.log: offset 0: .*not a dskvs log'
	expect 3 -s junk ls
	err_has "store 'junk' is damaged: .*not a dskvs log"

	# Nothing to verify.
	expect 3 -s nowhere verify
	err_has "no store at 'nowhere'"
	mkdir empty
	expect 3 -s empty verify
	err_has "no store in 'empty'"
}

# wait_for_holder ERRFILE: wait (up to 10 s) until the background load
# $holder, whose stderr is ERRFILE, holds its store.
wait_for_holder() {
	for _ in $(seq 200); do
		grep -qs '^load: ' "$1" && return 0
		kill -0 $holder 2>/dev/null || fail "holder died: $(cat "$1")"
		sleep 0.05
	done
	fail "holder never opened the store: $(cat "$1")"
}

group_busy() {
	expect 0 -s st put busy/a 1
	mkfifo fifo
	# Hold the store with a load that waits for its input; fd 8 keeps the
	# pipe open (and is closed in the loader so it sees the end). Probing
	# the store would race with the holder's open, so wait for its first
	# progress line instead: load prints it once it holds the store.
	exec 8<>fifo
	"$DSKVS" --progress -s st load --merge <fifo 8>&- 2>holder1.err &
	holder=$!
	wait_for_holder holder1.err
	expect 3 -s st get busy/a
	err_has "^dskvs get: store 'st' is in use by another process"
	expect 3 -s st put busy/b 2
	err_has 'in use by another process'
	expect 3 -s st dump
	# verify takes no lock: it works while the store is in use.
	expect 0 -s st verify
	echo '{"key":"busy/c","value":"3"}' >&8
	exec 8>&-
	wait $holder || fail "holder load failed: $(cat holder1.err)"
	expect 0 -s st get busy/c
	out_is '3'

	# An interrupted load into an empty store leaves it empty.
	exec 8<>fifo
	"$DSKVS" --progress -s st2 load <fifo 8>&- 2>holder2.err &
	holder=$!
	echo '{"key":"busy/x","value":"1"}' >&8
	wait_for_holder holder2.err
	kill -TERM $holder
	set +e
	wait $holder
	status=$?
	set -e
	exec 8>&-
	[ "$status" = 143 ] || fail "interrupted load: exit $status"
	grep -q 'interrupted after .*; nothing was loaded$' holder2.err ||
		fail "interrupted load said: $(cat holder2.err)"
	expect 0 -s st2 stats
	[ "$(stat_of entries)" = 0 ] || fail "interrupted load left data"
}

group_backup() {
	for i in $(seq 20); do
		"$DSKVS" -s st put "b/k$i" "v$i"
	done
	expect 0 -s st put other/x y
	# Not open elsewhere: a hot backup through the tool's own handle.
	expect 0 -s st backup copy1
	out_has "^backed up st to copy1: complete, every write up to sequence number 21$"
	expect 0 -s copy1 get b/k20
	out_is 'v20'
	expect 0 -s copy1 verify
	expect 0 -s copy1 ls
	out_has '^b	20	'
	# An empty directory is a fine destination.
	mkdir empty
	expect 0 -s st backup empty
	expect 0 -s empty get other/x
	out_is 'y'

	# Refused destinations: exit 2, nothing left behind.
	expect 2 -s st backup copy1
	err_has 'not empty'
	echo x >file
	expect 2 -s st backup file
	err_has 'not a directory'
	expect 2 -s st backup st/inner
	err_has 'inside the store'
	[ ! -e st/inner ] || fail "backup left st/inner"
	expect 2 -s st backup no/such/dir
	expect 2 -s st backup
	expect 3 -s nowhere backup copy9

	# Open elsewhere: the synced part of the log, checked.
	mkfifo fifo
	exec 8<>fifo
	"$DSKVS" --progress -s st load --merge <fifo 8>&- 2>holder.err &
	holder=$!
	wait_for_holder holder.err
	expect 0 -s st backup copy2
	out_has "^backed up st to copy2: the store is open elsewhere; copied the part of its log proven synced, [0-9]+ of [0-9]+ bytes, 21 records, complete up to sequence number 21; checked$"
	echo '{"key":"b/late","value":"1"}' >&8
	exec 8>&-
	wait $holder || fail "holder load failed: $(cat holder.err)"
	expect 0 -s copy2 get b/k1
	out_is 'v1'
	expect 1 -s copy2 get b/late
	expect 0 -s copy2 verify
}

group_store_errors() {
	# The default store is the current directory, and it is never
	# created there by accident.
	mkdir cwd
	(
		cd cwd
		expect 3 ls
		err_has "no store in '.': it has no dskvs.log \(name the store"
		expect 3 put a/b c
		[ -z "$(ls -A | grep -v -e '^out$' -e '^err$')" ] ||
			fail "created files in the current directory"
	)
	# DSKVS_STORE names a store, and may create it.
	DSKVS_STORE=envstore expect 0 put a/b c
	[ -f envstore/dskvs.log ] || fail "DSKVS_STORE store not created"
	DSKVS_STORE=envstore expect 0 get a/b
	out_is 'c'
	(cd envstore && expect 0 get a/b) # '.' holding a store works
	# --store wins over DSKVS_STORE.
	DSKVS_STORE=nowhere expect 0 --store envstore get a/b
	# put creates missing parents.
	expect 0 -s deep/er/store put a/b c
	[ -f deep/er/store/dskvs.log ] || fail "nested store not created"

	# Commands that read never create a store.
	for c in 'get a/b' 'del a/b' 'getall a' 'delall a' ls dump stats \
		verify compact; do
		# shellcheck disable=SC2086
		expect 3 -s missing $c
		err_has "no store at 'missing': no such directory$"
	done
	[ -e missing ] && fail "a read created the store"
	mkdir emptydir
	expect 3 -s emptydir get a/b
	err_has "no store in 'emptydir'"
	expect 0 -s emptydir put a/b c # naming it explicitly creates it

	# A regular file where the store should be.
	echo hello >file
	expect 3 -s file get a/b
	err_has "'file' is not a directory"
	expect 3 -s file put a/b c
	err_has "cannot open store 'file'"
	expect 3 -s file/sub put a/b c
	cmp -s file <(echo hello) || fail "the file was changed"
}

# Member names with NUL bytes, empty ones and 65535-byte ones (which only
# a dump or a program using the _bin calls can create) through load, dump,
# getall, compact, verify and reopen, exactly.
group_binary_names() {
	local long
	long=$(printf '%65535s' '' | tr ' ' m)
	printf '%s\n' '{"dskvs_dump":1}' \
		'{"key":"b/","value":"empty member"}' \
		'{"key":"b/\u0000","value":"just NUL"}' \
		'{"key":"b/a\u0000b","value":"NUL inside"}' \
		'{"key":"b/a","value":"plain a"}' \
		'{"key_b64":"Yi8A/wA=","value":"binary with NUL"}' \
		"{\"key\":\"b/$long\",\"value\":\"longest\"}" \
		'{"dskvs_dump_end":6}' >in
	expect 0 -s s load in
	expect 0 -s s dump
	mv out d1
	# Byte order of member: "", "\0", "\0\xff\0", "a", "a\0b", "mmm..."
	sed -n 2,7p d1 | cut -c1-24 >got
	printf '%s\n' '{"key":"b/","value":"emp' '{"key":"b/\u0000","value' \
		'{"key_b64":"Yi8A/wA=","v' '{"key":"b/a","value":"pl' \
		'{"key":"b/a\u0000b","val' '{"key":"b/mmmmmmmmmmmmmm' >want
	cmp -s want got || fail "dump order or names: $(cat got)"
	expect 0 -s s getall b
	printf '\tempty member\n\\x00\tjust NUL\n' >want
	head -2 out | cmp -s want - || fail "getall escaping: $(cat -A out)"
	grep -qF 'a\x00b	NUL inside' out || fail "getall: $(cat -A out)"
	expect 0 -s s get b/a
	out_is 'plain a'
	expect 0 -s s compact
	expect 0 -s s verify
	expect 0 -s s dump
	cmp -s d1 out || fail "names changed by compaction and reopen"
	expect 0 -s s2 load d1
	expect 0 -s s2 dump
	cmp -s d1 out || fail "dump | load did not round-trip binary names"
	# One byte over the member limit is refused.
	printf '%s\n' "{\"key\":\"b/m$long\",\"value\":\"x\"}" >over
	expect 2 -s s3 load over
	err_has 'larger than the documented limit'
}

# incr and put --if-absent: results and exit statuses.
group_atomic() {
	expect 0 -s s incr c/n
	out_is '1\n'
	expect 0 -s s incr c/n 41
	out_is '42\n'
	expect 0 -s s incr -- c/n -50
	out_is '-8\n'
	expect 0 -s s get c/n
	out_is '-8'
	expect 0 -s s put c/text 'not a number'
	expect 5 -s s incr c/text
	err_has 'not a decimal integer; nothing was changed'
	expect 0 -s s get c/text
	out_is 'not a number'
	expect 0 -s s put c/sp ' 7'
	expect 5 -s s incr c/sp
	expect 0 -s s put c/max 9223372036854775807
	expect 5 -s s incr c/max
	err_has 'leaves the 64-bit signed range'
	expect 0 -s s incr -- c/max -9223372036854775807
	out_is '0\n'
	expect 2 -s s incr c/n abc
	expect 2 -s s incr c/n 9223372036854775808
	expect 2 -s s incr c
	err_has 'names a collection'
	expect 2 -s s incr

	expect 0 -s s put --if-absent c/new first
	expect 4 -s s put --if-absent c/new second
	err_has "'c/new' already has a value; nothing was changed"
	expect 0 -s s get c/new
	out_is 'first'
	printf 'from stdin' >v
	expect 4 -s s put --if-absent c/new <v
	expect 0 -s s put --if-absent --file v c/other
	expect 0 -s s get c/other
	out_is 'from stdin'
	expect 2 -s s put --if-absent c
	expect 0 -s s put c/new second
	expect 0 -s s get c/new
	out_is 'second'
}

group_export() {
	expect 2 -s st export
	err_has 'say which format: --resp'
	expect 3 -s nostore export --resp
	err_has 'no store at'
	expect 0 -s st put a/x hello
	printf 'v\0z' >v
	expect 0 -s st put --file v "$(printf 'a/b\001in')"
	expect 0 -s st put c/e ''
	expect 0 -s st put 'c/sl/ash' 'with slash'
	# Collections, then members, in byte order; binary-safe bulk strings.
	expect 0 -s st export --resp
	out_is '*6\r\n$4\r\nHSET\r\n$1\r\na\r\n$4\r\nb\001in\r\n$3\r\nv\0z\r\n$1\r\nx\r\n$5\r\nhello\r\n*6\r\n$4\r\nHSET\r\n$1\r\nc\r\n$1\r\ne\r\n$0\r\n\r\n$6\r\nsl/ash\r\n$10\r\nwith slash\r\n'
	cp out small.resp
	# --strings: that collection's members go as string keys.
	expect 0 -s st export --resp --strings c
	out_is '*6\r\n$4\r\nHSET\r\n$1\r\na\r\n$4\r\nb\001in\r\n$3\r\nv\0z\r\n$1\r\nx\r\n$5\r\nhello\r\n*3\r\n$3\r\nSET\r\n$1\r\ne\r\n$0\r\n\r\n*3\r\n$3\r\nSET\r\n$6\r\nsl/ash\r\n$10\r\nwith slash\r\n'
	expect 2 -s st export --resp --strings a/b
	expect 2 -s st export --resp --strings ''

	# A big collection is split: 2500 members go as 1000 + 1000 + 500.
	for i in $(seq 2500); do
		printf '{"key":"big/m%05d","value":"%d"}\n' "$i" "$i"
	done >big.jsonl
	expect 0 -s st load --merge big.jsonl
	expect 0 -s st export --resp
	[ "$(grep -ac '^\*2002' out)" = 2 ] || fail "not two chunks of 1000"
	[ "$(grep -ac '^\*1002' out)" = 1 ] || fail "no chunk of 500"
	[ "$(grep -ac '^HSET' out)" = 5 ] || fail "expected 5 HSETs"
	# ... and by bytes: three 600 KiB values make three HSETs (the
	# second one passes 1 MiB and closes its chunk).
	head -c 614400 /dev/zero >fat
	for i in 1 2 3; do
		expect 0 -s st2 put --file fat "fat/v$i"
	done
	expect 0 -s st2 export --resp
	[ "$(grep -ac '^HSET' out)" = 2 ] || fail "fat: expected 2 HSETs"
	[ "$(grep -ac '^\*6' out)" = 1 ] || fail "fat: expected one HSET of 2"

	# Open elsewhere: exports the synced part of a copy, says so, and
	# leaves no copy behind.
	mkdir tmp
	expect 0 -s st3 put a/x hello
	expect 0 -s st3 put --file v "$(printf 'a/b\001in')"
	expect 0 -s st3 put c/e ''
	expect 0 -s st3 put 'c/sl/ash' 'with slash'
	mkfifo fifo
	exec 8<>fifo
	"$DSKVS" --progress -s st3 load --merge <fifo 8>&- 2>holder.err &
	holder=$!
	wait_for_holder holder.err
	expect 3 -s st3 dump
	TMPDIR=$PWD/tmp run -s st3 export --resp
	[ "$rc" = 0 ] || fail "export of a busy store: exit $rc: $(cat err)"
	err_has 'open elsewhere: exporting the part of its log proven synced'
	cmp -s out small.resp || fail "busy export differs: $(cat -A out)"
	[ -z "$(ls tmp)" ] || fail "copy left behind: $(ls tmp)"
	exec 8>&-
	wait $holder || fail "holder load failed: $(cat holder.err)"
}

case $GROUP in
help | kv | collections | dump_load | load_errors | stats | compact | verify | \
	busy | store_errors | binary_names | atomic | backup | export)
	"group_$GROUP"
	;;
*)
	fail "no test group '$GROUP'"
	;;
esac
echo "ok [$GROUP]"
