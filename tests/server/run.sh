#!/usr/bin/env bash
# Run the dskvs-server client tests (CTest runs one group per test).
#
#   tests/server/run.sh [--redis] [--server PATH] [--hiredis PATH] [GROUP...]
#
#   --server PATH   the dskvs-server to test (default: dskvs-server in PATH)
#   --redis         run against Debian's redis-server instead: the oracle.
#                   Every test that is not marked dskvs-only must pass
#                   there, since the expectations are Redis 7.0's own.
#   --hiredis PATH  the built hiredis test (tests/server/hiredis_test.c);
#                   without it, it is compiled into a temporary directory
#   GROUP           hashes keys_strings connection resp3 pipeline limits
#                   mapping persist cli hiredis (default: all)
#
# Needs python3 with python3-redis (Debian's /usr/bin/python3), redis-cli
# (redis-tools), libhiredis-dev and Criterion: scripts/install-deps.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
mode=dskvs
hiredis=""
groups=()
while [ $# -gt 0 ]; do
	case $1 in
	--redis) mode=redis ;;
	--server) export DSKVS_SERVER=$2; shift ;;
	--hiredis) hiredis=$2; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) groups+=("$1") ;;
	esac
	shift
done
[ ${#groups[@]} -gt 0 ] || groups=(hashes keys_strings connection resp3 \
	pipeline limits mapping persist cli hiredis)
export SRV_MODE=$mode
export PYTHONDONTWRITEBYTECODE=1
"$PYTHON" -c 'import redis' 2>/dev/null || {
	echo "run.sh: $PYTHON lacks the redis module (apt-get install" \
		"python3-redis, or scripts/install-deps.sh)" >&2
	exit 1
}
if [ "$mode" = redis ]; then
	command -v "${REDIS_SERVER:-redis-server}" >/dev/null || {
		echo "run.sh: no redis-server (apt-get install redis-server)" >&2
		exit 1
	}
fi

tmp=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

failed=()
for g in "${groups[@]}"; do
	echo "=== $g ($mode)"
	case $g in
	cli)
		cmd=("$PYTHON" "$here/srv.py" exec bash -c \
			'exec bash "$0" "$SRV_HOST" "$SRV_PORT"' "$here/cli_test.sh")
		;;
	hiredis)
		if [ -z "$hiredis" ]; then
			tmp=${tmp:-$(mktemp -d)}
			hiredis=$tmp/hiredis_test
			# shellcheck disable=SC2046 # the flags are words
			cc -std=gnu11 -O1 "$here/hiredis_test.c" -o "$hiredis" \
				$(pkg-config --cflags --libs hiredis criterion)
		fi
		cmd=("$PYTHON" "$here/srv.py" exec "$hiredis" --jobs 2)
		;;
	hashes | keys_strings | connection | resp3 | pipeline | limits | \
		mapping | persist)
		cmd=("$PYTHON" "$here/test_$g.py")
		;;
	*)
		echo "run.sh: no group '$g'" >&2
		exit 2
		;;
	esac
	if ! "${cmd[@]}"; then
		failed+=("$g")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED ($mode): ${failed[*]}" >&2
	exit 1
fi
echo "all passed ($mode): ${groups[*]}"
