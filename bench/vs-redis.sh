#!/usr/bin/env bash
# dkv against Redis with the same redis-benchmark commands, in one run.
#
# Starts redis-server (RDB snapshots off, appendonly no: it acknowledges a SET from memory and
# never fsyncs for it), optionally a second redis-server with appendonly yes, appendfsync always
# (the durable peer: it fsyncs its AOF before answering, as dkv syncs its write-ahead log before answering a
# SET), and dkvd, each on a free loopback port. Then runs, RUNS times and alternating servers,
#
#   redis-benchmark -h 127.0.0.1 -p PORT -t get,set -n N -c 50 -d 100 -P {1,16} -r KEYSPACE --csv
#
# and prints the median requests/s per server, the ratio dkv/redis against the issue's targets,
# and each server's CPU time per request (from /proc, so a busy machine shows less in it).
#
# -r: without it every SET writes the one key "key:__rand_int__"; with it keys are
# "key:" + 12 digits drawn from KEYSPACE values. Before measuring, each server gets a SET pass of
# 3 × KEYSPACE random keys (about 95% of the key space), so that GETs mostly hit.
#
# Environment: N (requests per test, default 100000), RUNS (default 3), KEYSPACE (default
# 100000), DURABLE_PEER (1: also run redis with appendfsync always; default 1),
# TEST_TIMEOUT_S (bound on one redis-benchmark run, default 120). Every wait is bounded.
#
#   bench/vs-redis.sh
#   RUNS=5 N=200000 bench/vs-redis.sh

set -euo pipefail

N=${N:-100000}
RUNS=${RUNS:-3}
KEYSPACE=${KEYSPACE:-100000}
DURABLE_PEER=${DURABLE_PEER:-1}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-120}
CLIENTS=50
VALUE_BYTES=100
PIPELINES=(1 16)
START_TIMEOUT_S=15

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" vs-redis

if ! need redis-server || ! need redis-benchmark || ! need redis-cli; then
  echo "installing redis-server and redis-tools"
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
if [ ! -f "$ROOT/dist/src/cli/dkvd.js" ]; then
  echo "building dkv"
  (cd "$ROOT" && npx tsc -p .) || true
  [ -f "$ROOT/dist/src/cli/dkvd.js" ] || { echo "build failed: no dist/src/cli/dkvd.js" >&2; exit 1; }
fi

free_port() {
  node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"
}

wait_ready() { # name port pid
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until [ "$(redis-cli -h 127.0.0.1 -p "$2" ping 2>/dev/null)" = "PONG" ]; do
    kill -0 "$3" 2>/dev/null || { echo "$1 exited at start; its log:" >&2; cat "$WORK/$1.log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "$1 not ready after ${START_TIMEOUT_S}s" >&2; exit 1; }
    sleep 0.1
  done
}

declare -A PORT PID

start_redis() { # name extra-args...
  local name=$1
  shift
  local port
  port=$(free_port)
  mkdir -p "$WORK/$name"
  local cmd=(redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$WORK/$name" --daemonize no "$@")
  echo "+ $(printf '%q ' "${cmd[@]}")"
  "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
  PORT[$name]=$port
  wait_ready "$name" "$port" "${PID[$name]}"
}

start_dkv() {
  local port udp
  port=$(free_port)
  udp=$(free_port)
  local cmd=("$ROOT/bin/dkvd" --tcp "$port" --udp "$udp" --data "$WORK/dkv" --log-level warn)
  echo "+ $(printf '%q ' "${cmd[@]}")"
  "${cmd[@]}" >"$WORK/dkv.log" 2>&1 &
  PID[dkv]=$!
  PIDS+=($!)
  PORT[dkv]=$port
  wait_ready dkv "$port" "${PID[dkv]}"
}

SERVERS=(redis dkv)
start_redis redis --appendonly no
if [ "$DURABLE_PEER" = 1 ]; then
  start_redis redis-aof --appendonly yes --appendfsync always
  SERVERS=(redis redis-aof dkv)
fi
start_dkv

# User + system CPU time of a process in clock ticks (its threads included).
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
TICKS_PER_S=$(getconf CLK_TCK)

bench_cmd() { # port pipeline tests n
  echo redis-benchmark -h 127.0.0.1 -p "$1" -t "$3" -n "$4" -c "$CLIENTS" -d "$VALUE_BYTES" -P "$2" -r "$KEYSPACE" --csv
}

RESULTS="$WORK/results.csv" # server,pipeline,test,run,rps,cpu_us_per_request
: >"$RESULTS"

echo
echo "populating: a SET pass of $((3 * KEYSPACE)) random keys per server"
for server in "${SERVERS[@]}"; do
  cmd=$(bench_cmd "${PORT[$server]}" 16 set $((3 * KEYSPACE)))
  echo "+ [$server] $cmd"
  timeout "$TEST_TIMEOUT_S" $cmd >/dev/null
done

echo
echo "measuring: $RUNS runs, servers alternating, N=$N, $CLIENTS clients, ${VALUE_BYTES}-byte values, -r $KEYSPACE"
for run in $(seq 1 "$RUNS"); do
  for pipeline in "${PIPELINES[@]}"; do
    # Alternate the order too, so no server always runs right after another's load.
    order=("${SERVERS[@]}")
    if [ $((run % 2)) = 0 ]; then order=($(printf '%s\n' "${SERVERS[@]}" | tac)); fi
    for server in "${order[@]}"; do
      cmd=$(bench_cmd "${PORT[$server]}" "$pipeline" get,set "$N")
      echo "+ [$server run $run] $cmd"
      before=$(cpu_ticks "${PID[$server]}")
      out=$(timeout "$TEST_TIMEOUT_S" $cmd) || { echo "redis-benchmark failed or timed out against $server" >&2; exit 1; }
      after=$(cpu_ticks "${PID[$server]}")
      # CPU per request over both tests (SET and GET): the server's ticks / (2 N).
      cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS_PER_S" -v n="$N" 'BEGIN { printf "%.2f", t / hz * 1e6 / (2 * n) }')
      echo "$out" | awk -F, -v s="$server" -v p="$pipeline" -v r="$run" -v c="$cpu_us" \
        'NR > 1 { gsub(/"/, ""); printf "%s,%s,%s,%s,%s,%s\n", s, p, $1, r, $2, c }' >>"$RESULTS"
      echo "$out" | awk -F, 'NR > 1 { gsub(/"/, ""); printf "    %-4s %12.0f req/s  p50 %s ms  p99 %s ms\n", $1, $2, $5, $7 }'
    done
  done
done

median() { # values on stdin, one per line
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

rps_median() { # server pipeline test
  awk -F, -v s="$1" -v p="$2" -v t="$3" '$1 == s && $2 == p && $3 == t { print $5 }' "$RESULTS" | median
}

cpu_median() { # server pipeline
  awk -F, -v s="$1" -v p="$2" '$1 == s && $2 == p && $3 == "SET" { print $6 }' "$RESULTS" | median
}

target() { # pipeline test
  case "$1/$2" in
    1/GET | 1/SET) echo 0.9 ;;
    16/GET) echo 0.7 ;;
    16/SET) echo 0.4 ;;
  esac
}

echo
echo "Medians of $RUNS runs (requests/s); measured on a shared 2-core machine, where redis-benchmark"
echo "itself takes a core: compare ratios more than absolute figures."
echo "redis: appendonly no, no RDB snapshots: a SET is acknowledged from memory, without fsync."
[ "$DURABLE_PEER" = 1 ] && echo "redis-aof: appendonly yes, appendfsync always: the AOF is fsync'd before a SET is acknowledged."
echo "dkv: a SET is acknowledged after its write-ahead log record is fsync'd (fdatasync)."
echo
header="pipeline  test"
for server in "${SERVERS[@]}"; do header+=$(printf '  %12s' "$server"); done
header+="  dkv/redis  target  ok"
[ "$DURABLE_PEER" = 1 ] && header+="  dkv/redis-aof"
echo "$header"
for pipeline in "${PIPELINES[@]}"; do
  for test in GET SET; do
    line=$(printf '%8s  %-4s' "$pipeline" "$test")
    for server in "${SERVERS[@]}"; do line+=$(printf '  %12.0f' "$(rps_median "$server" "$pipeline" "$test")"); done
    ratio=$(awk -v a="$(rps_median dkv "$pipeline" "$test")" -v b="$(rps_median redis "$pipeline" "$test")" 'BEGIN { printf "%.2f", a / b }')
    goal=$(target "$pipeline" "$test")
    ok=$(awk -v r="$ratio" -v g="$goal" 'BEGIN { print (r >= g ? "yes" : "NO") }')
    line+=$(printf '  %9s  %6s  %3s' "$ratio" "≥$goal" "$ok")
    if [ "$DURABLE_PEER" = 1 ]; then
      line+=$(awk -v a="$(rps_median dkv "$pipeline" "$test")" -v b="$(rps_median redis-aof "$pipeline" "$test")" 'BEGIN { printf "  %13.2f", a / b }')
    fi
    echo "$line"
  done
done
echo
echo "Server CPU per request (µs, user + system, median; SET and GET tests together):"
for pipeline in "${PIPELINES[@]}"; do
  line=$(printf '  -P %-3s' "$pipeline")
  for server in "${SERVERS[@]}"; do line+=$(printf '  %s %s' "$server" "$(cpu_median "$server" "$pipeline")"); done
  echo "$line"
done
