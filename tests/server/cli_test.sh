#!/usr/bin/env bash
# redis-cli, scripted, against a server on HOST PORT (tests/server/run.sh
# starts one): commands as arguments, commands on standard input, and
# --pipe. The expected outputs are redis-cli's own against redis-server
# 7.0.15 (run.sh --redis shows it). Replies whose order a server may
# choose (HGETALL, KEYS) are sorted before comparing.
#   cli_test.sh HOST PORT
set -eu
HOST=$1
PORT=$2
export LC_ALL=C
fails=0

rc() { redis-cli -h "$HOST" -p "$PORT" "$@"; }

# check NAME WANT GOT
check() {
	if [ "$2" != "$3" ]; then
		echo "FAIL [$1]: got:" >&2
		printf '%s\n' "$3" | cat -A >&2
		echo "want:" >&2
		printf '%s\n' "$2" | cat -A >&2
		fails=$((fails + 1))
	fi
}

rc FLUSHALL >/dev/null

# Commands as arguments (raw output: redis-cli's stdout is not a tty).
check hset "3" "$(rc HSET h a 1 b 2 c 3)"
check hget "2" "$(rc HGET h b)"
check hget_nil "" "$(rc HGET h zz)"
check hmget "$(printf '1\n\n3')" "$(rc HMGET h a zz c)"
check hgetall "$(printf '1\n2\n3\na\nb\nc')" "$(rc HGETALL h | sort)"
check hlen "3" "$(rc HLEN h)"
check hexists "1" "$(rc HEXISTS h a)"
check hincrby "11" "$(rc HINCRBY h a 10)"
check hincrbyfloat "2.5" "$(rc HINCRBYFLOAT h b 0.5)"
check hstrlen "3" "$(rc HSTRLEN h b)"
check hsetnx "0" "$(rc HSETNX h a 9)"
check hdel "2" "$(rc HDEL h a b zz)"
check hkeys "c" "$(rc HKEYS h)"
check hvals "3" "$(rc HVALS h)"
check hrandfield "c" "$(rc HRANDFIELD h)"
check hrandfield_wv "$(printf 'c\n3')" "$(rc HRANDFIELD h 1 WITHVALUES)"
check hscan "$(printf '0\nc\n3')" "$(rc HSCAN h 0)"
check hmset "OK" "$(rc HMSET h2 x 1)"
check set "OK" "$(rc SET s hello)"
check get "hello" "$(rc GET s)"
check append "11" "$(rc APPEND s ' world')"
check strlen "11" "$(rc STRLEN s)"
check type_s "string" "$(rc TYPE s)"
check type_h "hash" "$(rc TYPE h)"
check type_none "none" "$(rc TYPE nope)"
check set_nx "" "$(rc SET s x NX)"
check set_get "hello world" "$(rc SET s v2 GET)"
check mset "OK" "$(rc MSET m1 a m2 b)"
check mget "$(printf 'a\nb\n')" "$(rc MGET m1 m2 zz)"
check setnx "0" "$(rc SETNX m1 z)"
check getdel "a" "$(rc GETDEL m1)"
check incr "1" "$(rc INCR n)"
check incrby "6" "$(rc INCRBY n 5)"
check decr "5" "$(rc DECR n)"
check decrby "0" "$(rc DECRBY n 5)"
check exists "3" "$(rc EXISTS h s n nope)"
check dbsize "5" "$(rc DBSIZE)"
check keys "$(printf 'h\nh2\nm2\nn\ns')" "$(rc KEYS '*' | sort)"
check scan_count "5" "$(rc --scan | wc -l | tr -d ' ')"
check del "2" "$(rc DEL n m2 nope)"
check unlink "1" "$(rc UNLINK h2)"
check ping "PONG" "$(rc PING)"
check echo "hi there" "$(rc ECHO 'hi there')"
check select "OK" "$(rc SELECT 0)"
check client_setname "OK" "$(rc CLIENT SETNAME x)"
check config_get maxclients "$(rc CONFIG GET maxclients | head -1)"
check function_flush "OK" "$(rc FUNCTION FLUSH)"
check script_flush "OK" "$(rc SCRIPT FLUSH)"
check info_keyspace "# Keyspace" "$(rc INFO keyspace | head -1 | tr -d '\r')"

# Errors: redis-cli prints the error text and exits 0 in raw mode.
check err_arity "ERR wrong number of arguments for 'hget' command" \
	"$(rc HGET h)"
check err_wrongtype \
	"WRONGTYPE Operation against a key holding the wrong kind of value" \
	"$(rc HGET s f)"
check err_unknown \
	"ERR unknown command 'FOO', with args beginning with: 'bar' " \
	"$(rc FOO bar)"
check err_syntax "ERR syntax error" "$(rc SET s v BOGUS)"
check err_notint "ERR value is not an integer or out of range" \
	"$(rc INCRBY s x)"
rc SET big 9223372036854775807 >/dev/null
check err_overflow "ERR increment or decrement would overflow" \
	"$(rc INCR big)"

# Binary-safe through -x (the last argument read from stdin).
printf 'a\0b\r\nc' | rc -x HSET bin field >/dev/null
check binary "$(printf 'a\0b\r\nc' | od -An -tx1)" \
	"$(rc HGET bin field | head -c 6 | od -An -tx1)"

# Commands on standard input, one per line (pipelined by redis-cli).
got=$(printf 'HSET script f1 v1\nHGET script f1\nHLEN script\nPING\n' | rc)
check stdin_script "$(printf '1\nv1\n1\nPONG')" "$got"

# --pipe: a RESP stream, the summary line counts the replies.
out=$(for i in $(seq 1000); do
	printf '*4\r\n$4\r\nHSET\r\n$5\r\npiped\r\n$%d\r\nf%d\r\n$1\r\nv\r\n' \
		$((${#i} + 1)) "$i"
done | rc --pipe)
case $out in
*"errors: 0, replies: 1000"*) ;;
*) echo "FAIL [pipe]: $out" >&2; fails=$((fails + 1)) ;;
esac
check pipe_hlen "1000" "$(rc HLEN piped)"

# redis-cli's own hints and --bigkeys walk the key space with SCAN, TYPE
# and the size commands.
out=$(rc --bigkeys 2>&1)
case $out in
*"Biggest   hash found '\"piped\"' has 1000 fields"*) ;;
*) echo "FAIL [bigkeys]: $out" >&2; fails=$((fails + 1)) ;;
esac

rc FLUSHALL >/dev/null
if [ "$fails" != 0 ]; then
	echo "cli_test: $fails failures" >&2
	exit 1
fi
echo "cli_test: ok"
