#!/usr/bin/env bash
# YCSB-style mixes on a local 3-node dkv cluster (N=3, R=2, W=2), with dkv-cli bench routing each
# key to a replica (--cluster): 100-byte values, 100,000 keys, zipfian, after a preload of every
# key. Mixes: A (50% updates), B (5% updates), C (reads only); RUNS runs of each, medians printed.
# Then B again at half of its measured maximum throughput (the number in flight whose throughput
# is nearest half), for its latency there.
#
# Environment: RUNS (default 3), DURATION (s, default 10), CONNECTIONS per node (default 2),
# PIPELINE per connection (default 64), KEYS (default 100000). Only 127.0.0.1; every wait is
# bounded; every process started here is killed at exit.
#
#   bench/ycsb.sh
#   RUNS=1 DURATION=5 bench/ycsb.sh

set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-2}
PIPELINE=${PIPELINE:-64}
KEYS=${KEYS:-100000}
START_TIMEOUT_S=30

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" ycsb

cd "$ROOT"
npm run build --silent

start_dkv_cluster n
PORT=$DKV_PORT
echo "3-node cluster on 127.0.0.1 (first node tcp $PORT); N=3 R=2 W=2; nodes run with NODE_OPTIONS=$(node_share_options 3)"

bench() { # name read-ratio connections pipeline preload(yes|no) -> json file
  local out="$WORK/$1.json"
  local preload=--no-preload
  [ "$5" = yes ] && preload=--preload
  timeout $((DURATION + 120)) ./bin/dkv-cli bench --cluster --server "127.0.0.1:$PORT" --connections "$3" --pipeline "$4" \
    --duration "$DURATION" --read-ratio "$2" --distribution zipfian --keys "$KEYS" --value-size 100 "$preload" --json \
    >"$out" 2>/dev/null || { echo "dkv-cli bench failed" >&2; exit 1; }
  node -e "
    const r = JSON.parse(require('fs').readFileSync('$out', 'utf8'));
    const e = Object.values(r.run.errors).reduce((a, b) => a + b, 0);
    console.log([r.run.opsPerSec.toFixed(0), r.run.latencyUs.p50, r.run.latencyUs.p99, r.serverCpuMicrosPerOp.toFixed(1), e].join(','))"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "preload: every key once"
bench preload 0 "$CONNECTIONS" "$PIPELINE" yes >/dev/null
declare -A OPS P50 P99 CPU
for mix in A B C; do
  case $mix in A) ratio=0.5 ;; B) ratio=0.95 ;; C) ratio=1 ;; esac
  : >"$WORK/$mix.csv"
  for run in $(seq 1 "$RUNS"); do
    line=$(bench "$mix-$run" "$ratio" "$CONNECTIONS" "$PIPELINE" no)
    echo "  $mix run $run: $line (ops/s, p50 µs, p99 µs, server µs/op, errors)"
    echo "$line" >>"$WORK/$mix.csv"
  done
  OPS[$mix]=$(cut -d, -f1 "$WORK/$mix.csv" | median)
  P50[$mix]=$(cut -d, -f2 "$WORK/$mix.csv" | median)
  P99[$mix]=$(cut -d, -f3 "$WORK/$mix.csv" | median)
  CPU[$mix]=$(cut -d, -f4 "$WORK/$mix.csv" | median)
done

# B at half its maximum: closed-loop load with fewer requests in flight (throughput grows with
# them until the cluster saturates). A short probe at each candidate depth picks the one whose
# throughput is nearest half of B's median maximum; RUNS runs at that depth are then measured.
HALF_TARGET=$(awk -v m="${OPS[B]}" 'BEGIN { printf "%.0f", m / 2 }')
HALF_PIPELINE=""
best=""
for depth in 4 8 10 12 14 16 20 24; do
  [ "$depth" -le "$PIPELINE" ] || continue
  probe=$(DURATION=4 bench "Bprobe-$depth" 0.95 "$CONNECTIONS" "$depth" no | cut -d, -f1)
  echo "  B probe at $depth in flight per connection: $probe ops/s (half of the maximum: $HALF_TARGET)"
  distance=$(awk -v a="$probe" -v b="$HALF_TARGET" 'BEGIN { d = a - b; printf "%.0f", d < 0 ? -d : d }')
  if [ -z "$best" ] || [ "$distance" -lt "$best" ]; then best=$distance; HALF_PIPELINE=$depth; fi
done
: >"$WORK/Bhalf.csv"
for run in $(seq 1 "$RUNS"); do
  line=$(bench "Bhalf-$run" 0.95 "$CONNECTIONS" "$HALF_PIPELINE" no)
  echo "  B at ${HALF_PIPELINE} in flight per connection, run $run: $line"
  echo "$line" >>"$WORK/Bhalf.csv"
done

echo
echo "| mix | ops/s | p50 ms | p99 ms | server CPU µs/op |"
echo "|---|---:|---:|---:|---:|"
for mix in A B C; do
  awk -v m="$mix" -v o="${OPS[$mix]}" -v a="${P50[$mix]}" -v b="${P99[$mix]}" -v c="${CPU[$mix]}" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %s |\n", m, o, a / 1000, b / 1000, c }'
done
HALF_OPS=$(cut -d, -f1 "$WORK/Bhalf.csv" | median)
HALF_P99=$(cut -d, -f3 "$WORK/Bhalf.csv" | median)
HALF_P50=$(cut -d, -f2 "$WORK/Bhalf.csv" | median)
awk -v o="$HALF_OPS" -v m="${OPS[B]}" -v a="$HALF_P50" -v p="$HALF_P99" -v d="$HALF_PIPELINE" \
  'BEGIN { printf "| B at %.0f%% of its maximum (%d in flight per connection) | %.0f | %.2f | %.2f | |\n", 100 * o / m, d, o, a / 1000, p / 1000 }'
echo "(medians of $RUNS runs of ${DURATION}s; $CONNECTIONS connections per node × $PIPELINE in flight; zipfian over $KEYS keys, 100-byte values)"
