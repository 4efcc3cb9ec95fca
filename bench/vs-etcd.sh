#!/usr/bin/env bash
# Put throughput of a 3-member etcd cluster and of dkv, in one run.
#
# Starts three etcd members (Debian's etcd-server, 3.4) on 127.0.0.1, each with its own client
# and peer port and data directory under a temporary work directory, and waits (bounded) until
# `etcdctl endpoint health` passes on all three. Installs the etcd3 npm client into the work
# directory (it is no dependency of dkv) and runs bench/etcd-put.mjs with it: CLIENTS closed-loop
# clients, each with one put in flight, spread over CONNS gRPC connections, which are spread over
# the three members (a follower forwards a put to the leader, as etcd's own clients do when given
# every endpoint); 100-byte values, keys drawn uniformly from a key space of KEYS; a 1 s warm-up,
# then DURATION seconds measured. It reports puts/s and p50/p99 latency.
#
# dkv is measured in the same run by measure_dkv below: a 3-node dkv cluster on 127.0.0.1 (N=3,
# W=2: a put is acknowledged once two nodes have fsync'd it to their write-ahead logs), loaded with
#   dkv-cli bench --cluster --connections 1 --pipeline ceil(CLIENTS/3) --read-ratio 0 --warmup 1 ...
# which routes each key to a replica and keeps CLIENTS puts in flight in all, as etcd's clients do,
# after the same 1 s warm-up etcd's client runs.
#
# Runs alternate etcd and dkv (the order flips every run) and the table shows medians of RUNS,
# with each side's server CPU time per put (from /proc, so a busy machine shows less in it) and the
# load generator's own (when it nears 1e6 / puts/s µs, the client is what limits the figure).
#
# Environment: CLIENTS (etcd client counts, space-separated; default 50), CONNS (gRPC connections,
# default 6), DURATION (s, default 10), RUNS (default 3), KEYS (default 100000), VALUE_SIZE
# (default 100), DKV (1: measure dkv too; default 1), TEST_TIMEOUT_S (bound on one measurement,
# default DURATION + 60). Every wait is bounded, every process started here is killed at exit.
#
#   bench/vs-etcd.sh
#   CLIENTS="50 1000" bench/vs-etcd.sh
#   RUNS=1 DURATION=3 bench/vs-etcd.sh

set -euo pipefail

CLIENTS=${CLIENTS:-50}
CONNS=${CONNS:-6}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
KEYS=${KEYS:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}
DKV=${DKV:-1}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-$((${DURATION%.*} + 60))}
START_TIMEOUT_S=30
MEMBERS=3

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" vs-etcd

if ! need etcd || ! need etcdctl; then
  echo "installing etcd-server and etcd-client"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
fi
if [ "$DKV" = 1 ]; then
  echo "building dkv"
  (cd "$ROOT" && npm run build --silent)
fi
echo "installing the etcd3 npm client into $WORK"
timeout 300 npm install --prefix "$WORK" --no-audit --no-fund --loglevel=error etcd3 >/dev/null
ETCD3_VERSION=$(node -p "require('$WORK/node_modules/etcd3/package.json').version")

# N distinct free loopback ports, held together while chosen so that none repeats.
free_ports() { # n
  node -e "
    const net = require('net');
    const servers = [];
    const next = () => {
      if (servers.length === $1) {
        console.log(servers.map((s) => s.address().port).join(' '));
        servers.forEach((s) => s.close());
        return;
      }
      const s = net.createServer().listen(0, '127.0.0.1', next);
      servers.push(s);
    };
    next();"
}

# User + system CPU time of processes in clock ticks (their threads included).
cpu_ticks() { # pid...
  local pid sum=0
  for pid in "$@"; do
    sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$sum"
}
TICKS_PER_S=$(getconf CLK_TCK)

json_field() { # file path.to.field
  node -e "
    const v = '$2'.split('.').reduce((o, k) => (o == null ? o : o[k]), JSON.parse(require('fs').readFileSync('$1', 'utf8')));
    console.log(v == null ? 'nan' : v);"
}

# ---- etcd: 3 members ----------------------------------------------------------------------

read -r -a PORTS <<<"$(free_ports $((2 * MEMBERS)))"
ETCD_PIDS=()
ENDPOINTS=()
CLUSTER=""
for i in $(seq 1 "$MEMBERS"); do
  CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:${PORTS[$((2 * i - 1))]}"
done
for i in $(seq 1 "$MEMBERS"); do
  client=${PORTS[$((2 * i - 2))]}
  peer=${PORTS[$((2 * i - 1))]}
  ENDPOINTS+=("127.0.0.1:$client")
  cmd=(etcd --name "m$i" --data-dir "$WORK/etcd-m$i"
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client"
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer"
    --initial-cluster "$CLUSTER" --initial-cluster-token dkv-vs-etcd --initial-cluster-state new
    --logger zap --log-outputs stderr --log-level warn)
  echo "+ $(printf '%q ' "${cmd[@]}")"
  "${cmd[@]}" >"$WORK/etcd-m$i.log" 2>&1 &
  ETCD_PIDS+=($!)
  PIDS+=($!)
done
ENDPOINT_LIST=$(IFS=,; echo "${ENDPOINTS[*]}")

deadline=$((SECONDS + START_TIMEOUT_S))
until ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ENDPOINT_LIST" --dial-timeout=2s --command-timeout=3s \
  endpoint health >"$WORK/health.out" 2>&1; do
  for i in $(seq 1 "$MEMBERS"); do
    kill -0 "${ETCD_PIDS[$((i - 1))]}" 2>/dev/null || {
      echo "etcd m$i exited at start; its log:" >&2
      cat "$WORK/etcd-m$i.log" >&2
      exit 1
    }
  done
  [ $SECONDS -lt $deadline ] || {
    echo "etcd cluster not healthy after ${START_TIMEOUT_S}s:" >&2
    cat "$WORK/health.out" >&2
    exit 1
  }
  sleep 0.2
done
echo "etcd $(etcd --version | awk '/etcd Version/ { print $3 }'): 3 members healthy at $ENDPOINT_LIST"

measure_etcd() { # clients run
  local out="$WORK/etcd-c$1-r$2.json" before after
  local cmd=(node "$ROOT/bench/etcd-put.mjs" --etcd3-prefix "$WORK" --endpoints "$ENDPOINT_LIST"
    --clients "$1" --conns "$CONNS" --duration "$DURATION" --value-size "$VALUE_SIZE" --keys "$KEYS" --json)
  echo "+ [etcd run $2] ${cmd[*]}"
  before=$(cpu_ticks "${ETCD_PIDS[@]}")
  timeout "$TEST_TIMEOUT_S" "${cmd[@]}" >"$out" || { echo "etcd-put failed or timed out" >&2; cat "$out" >&2; exit 1; }
  after=$(cpu_ticks "${ETCD_PIDS[@]}")
  local ops cpu_us
  ops=$(json_field "$out" ops)
  cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS_PER_S" -v n="$ops" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  printf '%s,%s,%s,%s,%s,%s,%s,%.1f\n' "etcd-c$1" "$2" "$(json_field "$out" opsPerSec)" \
    "$(json_field "$out" latencyUs.p50)" "$(json_field "$out" latencyUs.p99)" "$cpu_us" \
    "$(json_field "$out" errors)" "$(json_field "$out" clientCpuMicrosPerOp)" >>"$RESULTS"
  tail -n 1 "$RESULTS" | awk -F, '{ printf "    %10.0f puts/s  p50 %.2f ms  p99 %.2f ms  server CPU %s µs/put  client CPU %s µs/put  %s errors\n", $3, $4 / 1000, $5 / 1000, $6, $8, $7 }'
}

# ---- dkv ----------------------------------------------------------------------------------

# Three dkvd nodes (start_dkv_cluster in lib.sh): dkv1 first, then dkv2 and dkv3 joining it.

# One dkv measurement at the same number of puts in flight as etcd's clients.
measure_dkv() { # clients run
  local out="$WORK/dkv-c$1-r$2.json"
  local pipeline=$((($1 + 2) / 3))
  local cmd=("$ROOT/bin/dkv-cli" bench --cluster --server "127.0.0.1:$DKV_PORT" --connections 1 --pipeline "$pipeline"
    --duration "$DURATION" --warmup 1 --value-size "$VALUE_SIZE" --read-ratio 0 --keys "$KEYS" --json)
  echo "+ [dkv, $1 in flight, run $2] ${cmd[*]}"
  timeout "$TEST_TIMEOUT_S" "${cmd[@]}" >"$out" 2>"$WORK/dkv-bench.err" ||
    { echo "dkv-cli bench failed or timed out" >&2; cat "$out" "$WORK/dkv-bench.err" >&2; exit 1; }
  local errors
  errors=$(node -e "const e = JSON.parse(require('fs').readFileSync('$out', 'utf8')).run.errors; console.log(Object.values(e).reduce((a, b) => a + b, 0))")
  printf '%s,%s,%s,%s,%s,%.1f,%s,%.1f\n' "dkv-c$1" "$2" "$(json_field "$out" run.opsPerSec)" \
    "$(json_field "$out" run.latencyUs.p50)" "$(json_field "$out" run.latencyUs.p99)" \
    "$(json_field "$out" serverCpuMicrosPerOp)" "$errors" "$(json_field "$out" clientCpuMicrosPerOp)" >>"$RESULTS"
  tail -n 1 "$RESULTS" | awk -F, '{ printf "    %10.0f puts/s  p50 %.2f ms  p99 %.2f ms  server CPU %s µs/put  client CPU %s µs/put  %s errors\n", $3, $4 / 1000, $5 / 1000, $6, $8, $7 }'
}

[ "$DKV" = 1 ] && start_dkv_cluster dkv

# ---- measuring ----------------------------------------------------------------------------

RESULTS="$WORK/results.csv" # system,run,ops_per_s,p50_us,p99_us,server_cpu_us_per_put,errors,client_cpu_us_per_put
: >"$RESULTS"

echo
echo "measuring: $RUNS runs of ${DURATION}s, ${VALUE_SIZE}-byte values, $KEYS keys; etcd with CLIENTS=$CLIENTS over $CONNS connections (etcd3 $ETCD3_VERSION)"
for run in $(seq 1 "$RUNS"); do
  # Alternate the order, so that neither side always runs right after the other's load.
  for clients in $CLIENTS; do
    if [ "$DKV" = 1 ] && [ $((run % 2)) = 0 ]; then measure_dkv "$clients" "$run"; fi
    measure_etcd "$clients" "$run"
    if [ "$DKV" = 1 ] && [ $((run % 2)) = 1 ]; then measure_dkv "$clients" "$run"; fi
  done
done

median() { # values on stdin, one per line
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

col_median() { # system column
  awk -F, -v s="$1" -v c="$2" '$1 == s { print $c }' "$RESULTS" | median
}

echo
echo "Medians of $RUNS runs; measured on a shared 2-core machine where the load generator takes"
echo "a core of its own: compare ratios more than absolute figures."
echo "etcd: 3 members on one machine; a put is acknowledged once a majority has fsync'd it to its WAL."
echo "dkv: 3 nodes on one machine, N=3 W=2; a put is acknowledged once 2 nodes have fsync'd it to their WALs."
echo
printf '%-22s  %10s  %9s  %9s  %14s  %14s  %6s\n' system "puts/s" "p50 ms" "p99 ms" "server µs/put" "client µs/put" errors
rows=()
for clients in $CLIENTS; do
  rows+=("etcd-c$clients")
  [ "$DKV" = 1 ] && rows+=("dkv-c$clients")
done
for row in "${rows[@]}"; do
  case "$row" in
    etcd-c*) label="etcd, ${row#etcd-c} clients" ;;
    dkv-c*) label="dkv, ${row#dkv-c} in flight" ;;
  esac
  printf '%-22s  %10.0f  %9.2f  %9.2f  %14s  %14s  %6s\n' "$label" "$(col_median "$row" 3)" \
    "$(awk -v v="$(col_median "$row" 4)" 'BEGIN { print v / 1000 }')" \
    "$(awk -v v="$(col_median "$row" 5)" 'BEGIN { print v / 1000 }')" \
    "$(col_median "$row" 6)" "$(col_median "$row" 8)" \
    "$(awk -F, -v s="$row" '$1 == s { n += $7 } END { print n + 0 }' "$RESULTS")"
done
if [ "$DKV" = 1 ]; then
  echo
  for clients in $CLIENTS; do
    awk -v a="$(col_median "dkv-c$clients" 3)" -v b="$(col_median "etcd-c$clients" 3)" -v c="$clients" \
      'BEGIN { printf "dkv/etcd puts/s at %s in flight: %.2f\n", c, a / b }'
  done
fi
