#!/usr/bin/env bash
# dskvs-server against Debian's redis-server 7.0, side by side, in one run,
# driven by redis-benchmark (redis-tools):
#
#   everysec:  redis-server appendonly yes, appendfsync everysec
#              dskvs-server --sync async (the janitor syncs in the background)
#   always:    redis-server appendonly yes, appendfsync always
#              dskvs-server --sync always
#
# For each server and mode: 50 connections, pipeline 1 and 16, random keys
# over 1M (-r 1000000), tests SET, GET, INCR (redis-benchmark's own) and
# HSET, HGET (custom command lines, the shape of redis-benchmark's own
# "hset" test: one hash, random fields, 3-byte values):
#
#   HSET bench element:__rand_int__ xxx
#   HGET bench element:__rand_int__
#
# Recorded per run: ops/s, p50 and p99 latency (redis-benchmark --csv),
# and the server's CPU seconds (utime+stime of the process and its reaped
# children, from /proc/PID/stat, read before and after), hence ops per
# server CPU-second: the client shares the machine's cores, so ops/s alone
# favours whichever server leaves the client more CPU.
#
#   bench/server.sh                   build dskvs-server if needed, run all
#   bench/server.sh --skip-dskvs      redis-server only (no dskvs-server yet)
#   bench/server.sh --server PATH     use this dskvs-server
#   bench/server.sh --requests N      requests per write run (default
#                                     200000; x4 at pipeline 16; /5 for
#                                     writes in the "always" mode)
#   bench/server.sh --threads N       dskvs-server --threads N
#   bench/server.sh --scaling "1 2 4 8 16" [--client-threads 4]
#                                     instead: dskvs-server (async) at each
#                                     --threads value, SET/GET/HSET/HGET at
#                                     pipeline 1 and 16, driven by
#                                     redis-benchmark --threads N (default:
#                                     its own, one); server-scaling.csv/.md
#   NO_README=1 bench/server.sh ...   leave bench/README.md alone
#
# Writes bench/results/server.csv, server.md, server.png (gnuplot, if
# installed) and rewrites the server section of bench/README.md. It is
# never part of ctest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/results}
DIR=${DIR:-/tmp/dskvs-bench-server}
REQUESTS=200000
SKIP_DSKVS=0
SERVER=""
THREADS=""
CONNS=50
SCALING=""
CLIENT_THREADS=0 # 0: redis-benchmark's default, one thread, no --threads
KEYSPACE=1000000
ARGS="$*"

usage() { sed -n '2,36p' "$0"; }
while [ $# -gt 0 ]; do
	case $1 in
	--skip-dskvs) SKIP_DSKVS=1 ;;
	--server) SERVER=$2; shift ;;
	--requests) REQUESTS=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--scaling) SCALING=$2; shift ;;
	--client-threads) CLIENT_THREADS=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "server.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
for p in redis-server redis-benchmark redis-cli; do
	command -v $p >/dev/null || {
		echo "server.sh: $p missing (apt-get install redis-server" \
			"redis-tools)" >&2
		exit 1
	}
done

if [ "$SKIP_DSKVS" = 0 ] && [ -z "$SERVER" ]; then
	if [ ! -f "$BUILD/CMakeCache.txt" ]; then
		cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
			-DDSKVS_BUILD_TESTS=OFF -DDSKVS_BUILD_STRESS=OFF >/dev/null
	fi
	# grep without -q: it must read all of make's output, or make dies
	# of SIGPIPE and pipefail fails the test.
	if cmake --build "$BUILD" --target help | grep 'dskvs-server$' >/dev/null; then
		cmake --build "$BUILD" -j2 --target dskvs-server >/dev/null
		SERVER=$(find "$BUILD" -type f -name dskvs-server -perm -u+x |
			head -1)
	fi
	if [ -z "$SERVER" ]; then
		echo "server.sh: no dskvs-server target in this tree; use" \
			"--skip-dskvs to measure redis-server alone" >&2
		exit 1
	fi
fi

mkdir -p "$OUT"
rm -rf "$DIR"
mkdir -p "$DIR"
CLK_TCK=$(getconf CLK_TCK)
CSV=$OUT/server.csv
echo "server,mode,pipeline,test,requests,ops_per_s,p50_ms,p99_ms,server_cpu_s,ops_per_cpu_s" >"$CSV"

PID=""
stop_server() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || true
	fi
	PID=""
}
trap 'stop_server; rm -rf "$DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# cpu_ticks PID: utime+stime+cutime+cstime of PID, in clock ticks. The
# fields after the command name (which may hold spaces) are counted from
# the closing parenthesis.
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

# start NAME MODE: start the server, wait until it answers PING.
start() {
	local name=$1 mode=$2 dir=$DIR/$1-$2
	PORT=$(free_port)
	mkdir -p "$dir"
	if [ "$name" = redis ]; then
		redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" \
			--save '' --appendonly yes \
			--appendfsync "$([ "$mode" = always ] && echo always ||
				echo everysec)" \
			--daemonize no --logfile "$dir/log" &
	else
		"$SERVER" --store "$dir/store" --port "$PORT" \
			--sync "$([ "$mode" = always ] && echo always ||
				echo async)" \
			${THREADS:+--threads "$THREADS"} >"$dir/log" 2>&1 &
	fi
	PID=$!
	for _ in $(seq 600); do
		redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "server.sh: $name did not start: $(cat "$dir/log")" >&2
	exit 1
}

# bench NAME MODE PIPELINE TEST N ARGS...: one redis-benchmark run.
bench() {
	local name=$1 mode=$2 pipe=$3 test=$4 n=$5 before after line ct=()
	shift 5
	[ "$CLIENT_THREADS" = 0 ] || ct=(--threads "$CLIENT_THREADS")
	before=$(cpu_ticks "$PID")
	line=$(redis-benchmark -p "$PORT" -c "$CONNS" -P "$pipe" \
		"${ct[@]}" \
		-r "$KEYSPACE" -n "$n" --csv "$@" | tail -1)
	after=$(cpu_ticks "$PID")
	# "test","rps","avg","min","p50","p95","p99","max"
	echo "$line" | tr -d '"' | awk -F, -v s="$name" -v m="$mode" \
		-v p="$pipe" -v t="$test" -v n="$n" -v b="$before" \
		-v a="$after" -v hz="$CLK_TCK" '{
		cpu = (a - b) / hz
		per = "inf"
		if (cpu > 0)
			per = sprintf("%.0f", n / cpu)
		printf "%s,%s,%d,%s,%d,%.0f,%.3f,%.3f,%.2f,%s\n", s, m, p, t,
		    n, $2, $5, $7, cpu, per
	}' | tee -a "$CSV"
}

# ---- scaling: dskvs-server alone at each thread count ------------------
if [ -n "$SCALING" ]; then
	[ "$SKIP_DSKVS" = 0 ] || { echo "server.sh: --scaling needs" \
		"dskvs-server" >&2; exit 2; }
	# bench() appends its rows to $CSV and prints them: keep the printed
	# ones, with the thread count added, in the real file.
	SCSV=$OUT/server-scaling.csv
	CSV=$DIR/scratch.csv
	echo "server,mode,pipeline,test,requests,ops_per_s,p50_ms,p99_ms,server_cpu_s,ops_per_cpu_s,threads" >"$SCSV"
	for t in $SCALING; do
		THREADS=$t
		start dskvs everysec
		for pipe in 1 16; do
			n=$REQUESTS
			[ "$pipe" = 16 ] && n=$((n * 4))
			{
				bench dskvs async "$pipe" SET "$n" -t set
				bench dskvs async "$pipe" GET "$n" -t get
				bench dskvs async "$pipe" HSET "$n" \
					HSET bench element:__rand_int__ xxx
				bench dskvs async "$pipe" HGET "$n" \
					HGET bench element:__rand_int__
			} | sed "s/\$/,$t/" >>"$SCSV"
		done
		stop_server
	done
	/usr/bin/python3 - "$SCSV" "$OUT/server-scaling.md" "$CLIENT_THREADS" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
threads = []
for r in rows:
    if r["threads"] not in threads:
        threads.append(r["threads"])
cols = []
for r in rows:
    c = (r["pipeline"], r["test"])
    if c not in cols:
        cols.append(c)
v = {(r["threads"], r["pipeline"], r["test"]): r for r in rows}
ct = sys.argv[3] if sys.argv[3] != "0" else "1 (default)"
out = ["dskvs-server --sync async, redis-benchmark -c 50, client threads "
       "%s; ops/s (ops per server CPU-second)" % ct, "",
       "| threads | " + " | ".join("%s P%s" % (t, p) for p, t in cols) + " |",
       "|---:|" + "---:|" * len(cols)]
for th in threads:
    cells = []
    for p, t in cols:
        r = v.get((th, p, t))
        cells.append("%s (%s)" % ("{:,}".format(int(float(r["ops_per_s"]))),
                                  r["ops_per_cpu_s"]) if r else "-")
    out.append("| %s | %s |" % (th, " | ".join(cells)))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
	cat "$OUT/server-scaling.md"
	exit 0
fi

servers=(redis)
[ "$SKIP_DSKVS" = 1 ] || servers+=(dskvs)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for mode in everysec always; do
	for name in "${servers[@]}"; do
		start "$name" "$mode"
		for pipe in 1 16; do
			n=$REQUESTS
			[ "$pipe" = 16 ] && n=$((n * 4))
			w=$n
			[ "$mode" = always ] && w=$((n / 5))
			# Writes first, so that the reads find their keys.
			bench "$name" "$mode" "$pipe" SET "$w" -t set
			bench "$name" "$mode" "$pipe" GET "$n" -t get
			bench "$name" "$mode" "$pipe" INCR "$w" -t incr
			bench "$name" "$mode" "$pipe" HSET "$w" \
				HSET bench element:__rand_int__ xxx
			bench "$name" "$mode" "$pipe" HGET "$n" \
				HGET bench element:__rand_int__
		done
		stop_server
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table: one row per mode, pipeline and test ---------------------
MD=$OUT/server.md
/usr/bin/python3 - "$CSV" "$MD" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {(r["server"], r["mode"], r["pipeline"], r["test"]): r for r in rows}
keys = []
for r in rows:
    k = (r["mode"], r["pipeline"], r["test"])
    if k not in keys:
        keys.append(k)
have_dskvs = any(r["server"] == "dskvs" for r in rows)
out = []
head = ("| mode | P | test | redis ops/s | redis p50/p99 ms | redis ops/CPU-s ")
sep = "|---|---:|---|---:|---:|---:"
if have_dskvs:
    head += ("| dskvs ops/s | dskvs p50/p99 ms | dskvs ops/CPU-s "
             "| ops/s ratio | ops/CPU-s ratio ")
    sep += "|---:|---:|---:|---:|---:"
out += [head + "|", sep + "|"]
mode_name = {"everysec": "everysec / async", "always": "always / always"}


def num(x):
    return "inf" if x == "inf" else "{:,}".format(int(float(x)))


for mode, p, test in keys:
    r = by[("redis", mode, p, test)]
    line = "| %s | %s | %s | %s | %s / %s | %s " % (
        mode_name[mode], p, test, num(r["ops_per_s"]), r["p50_ms"],
        r["p99_ms"], num(r["ops_per_cpu_s"]))
    if have_dskvs:
        d = by.get(("dskvs", mode, p, test))
        if d:
            ratio = float(d["ops_per_s"]) / float(r["ops_per_s"])
            try:
                cratio = "%.2f" % (float(d["ops_per_cpu_s"]) /
                                   float(r["ops_per_cpu_s"]))
            except (ValueError, ZeroDivisionError):
                cratio = "-"
            line += "| %s | %s / %s | %s | %.2f | %s " % (
                num(d["ops_per_s"]), d["p50_ms"], d["p99_ms"],
                num(d["ops_per_cpu_s"]), ratio, cratio)
        else:
            line += "| - | - | - | - | - "
    out.append(line + "|")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
cat "$MD"

# ---- the chart: ops/s per test, one bar per server and mode -------------
if command -v gnuplot >/dev/null; then
	for pipe in 1 16; do
		dat=$DIR/p$pipe.dat
		/usr/bin/python3 - "$CSV" "$pipe" >"$dat" <<'EOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]))
        if r["pipeline"] == sys.argv[2]]
cols = []
for r in rows:
    c = (r["server"], r["mode"])
    if c not in cols:
        cols.append(c)
tests = []
for r in rows:
    if r["test"] not in tests:
        tests.append(r["test"])
v = {(r["server"], r["mode"], r["test"]): r["ops_per_s"] for r in rows}
# What each server ran: redis's appendfsync, dskvs's --sync.
label = {("redis", "everysec"): "redis-everysec",
         ("redis", "always"): "redis-always",
         ("dskvs", "everysec"): "dskvs-async",
         ("dskvs", "always"): "dskvs-always"}
print("test " + " ".join(label[c] for c in cols))
for t in tests:
    print(t + " " + " ".join(v.get((s, m, t), "0") for s, m in cols))
EOF
	done
	ncol=$(head -1 "$DIR/p1.dat" | wc -w)
	gnuplot <<EOF
set terminal pngcairo size 1100,420 noenhanced
set output "$OUT/server.png"
set multiplot layout 1,2 title "dskvs-server vs redis-server: ops/s, 50 connections, random keys over 1M"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left font ",8"
set ylabel "ops/s"
set yrange [0:*]
set grid ytics
set title "pipeline 1"
plot for [i=2:$ncol] "$DIR/p1.dat" using i:xtic(1) title columnheader(i)
set title "pipeline 16"
plot for [i=2:$ncol] "$DIR/p16.dat" using i:xtic(1) title columnheader(i)
unset multiplot
EOF
	echo "chart: $OUT/server.png" >&2
fi

[ "${NO_README:-0}" = 1 ] && exit 0
README=$ROOT/bench/README.md
{
	echo "<!-- server:begin (generated by bench/server.sh; edits here are overwritten) -->"
	echo
	echo "Run: \`bench/server.sh $ARGS\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
	echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
	echo "$(redis-server --version | cut -d' ' -f1-3),"
	echo "load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
	echo "Ratios are dskvs / redis: above 1 is dskvs ahead (for p50/p99, lower is better)."
	echo
	cat "$MD"
	echo
	[ -f "$OUT/server.png" ] && echo "![ops/s](results/server.png)" && echo
	echo "CSV: [results/server.csv](results/server.csv)"
	echo
	echo "<!-- server:end -->"
} >"$DIR/section.md"
if grep -q '<!-- server:begin' "$README"; then
	awk -v f="$DIR/section.md" '
		/<!-- server:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/<!-- server:end -->/ { skip = 0; next }
		!skip { print }' "$README" >"$README.tmp" && mv "$README.tmp" "$README"
else
	cat "$DIR/section.md" >>"$README"
fi
echo "bench/README.md updated" >&2
