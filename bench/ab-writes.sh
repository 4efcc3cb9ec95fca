#!/usr/bin/env bash
# Two builds of dkv against each other under vs-etcd.sh's write load, in pairs of runs.
#
# REV_A and REV_B are git revisions (HEAD~1, a branch, a commit; "." is the work tree as it is).
# Each is checked out into a temporary git worktree and built there (with the repository's
# node_modules when its package-lock.json is the same, else its own `npm ci`). Then PAIRS pairs
# of runs alternate the two, the order flipping every pair. Each run starts a new 3-node cluster
# of its build (start_dkv_cluster in lib.sh), loads it for WARM seconds first if WARM is set, and
# then measures with the build's own client
#   dkv-cli bench --cluster --connections 1 --pipeline 17 --read-ratio 0 --warmup 1 ...
# (51 puts in flight, 100-byte values, KEYS keys: what vs-etcd.sh runs against dkv).
#
# It prints every run, and for each pair B's puts/s over A's and B's CPU per put (the three
# nodes') over A's; then the median of each ratio. Absolute figures on this project's shared
# 2-core machine move by 10% and more from one hour to the next, and two runs in a row share
# their hour: the ratios are what to quote. `bench/ab-writes.sh HEAD HEAD` shows the spread of
# a build against itself: medians of 1.018 (puts/s) and 0.978 (CPU per put) over four pairs on
# 2026-11-22, 0.98-1.13 per pair; more pairs for effects under about 5%.
#
# Environment: PAIRS (default 4), DURATION (s, default 10), WARM (s, default 0), KEYS (default
# 100000), TEST_TIMEOUT_S (bound on one measurement, default DURATION + 60). Every wait is
# bounded; every process and worktree made here is removed at exit.
#
#   bench/ab-writes.sh HEAD~1 HEAD
#   PAIRS=6 WARM=15 bench/ab-writes.sh main .

set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bench/ab-writes.sh REV_A REV_B" >&2
  exit 2
fi
PAIRS=${PAIRS:-4}
DURATION=${DURATION:-10}
WARM=${WARM:-0}
KEYS=${KEYS:-100000}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-$((${DURATION%.*} + 60))}
START_TIMEOUT_S=30

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" ab-writes

TREES=()
remove_trees() {
  local tree
  for tree in "${TREES[@]}"; do
    git -C "$ROOT" worktree remove --force "$tree" >/dev/null 2>&1 || true
  done
}
trap 'remove_trees; cleanup' EXIT

# Builds revision $1 in WORK/tree-$2 (the repository itself for "."), and sets TREE to it.
build_tree() { # rev label
  TREE="$WORK/tree-$2"
  if [ "$1" = . ]; then
    TREE=$ROOT
  else
    git -C "$ROOT" worktree add --detach "$TREE" "$1"
    TREES+=("$TREE")
    if cmp -s "$ROOT/package-lock.json" "$TREE/package-lock.json" && [ -d "$ROOT/node_modules" ]; then
      ln -s "$ROOT/node_modules" "$TREE/node_modules"
    else
      (cd "$TREE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
  (cd "$TREE" && npm run build --silent)
}

echo "building $1 (A) and $2 (B)"
build_tree "$1" a
TREE_A=$TREE
build_tree "$2" b
TREE_B=$TREE

# One run of the build in $1, named $2: sets OPS (puts/s) and CPU (the nodes' µs per put).
measure() { # tree name
  start_dkv_cluster "$2" "$1" >/dev/null
  local bench=("$1/bin/dkv-cli" bench --cluster --server "127.0.0.1:$DKV_PORT" --connections 1 --pipeline 17
    --warmup 1 --value-size 100 --read-ratio 0 --keys "$KEYS" --json)
  if [ "$WARM" != 0 ]; then
    timeout "$TEST_TIMEOUT_S" "${bench[@]}" --duration "$WARM" >/dev/null 2>&1 ||
      { echo "the warm-up load failed or timed out" >&2; exit 1; }
  fi
  local out="$WORK/$2.json"
  timeout "$TEST_TIMEOUT_S" "${bench[@]}" --duration "$DURATION" >"$out" 2>"$WORK/$2.err" ||
    { echo "dkv-cli bench failed or timed out" >&2; cat "$out" "$WORK/$2.err" >&2; exit 1; }
  stop_dkv_cluster
  rm -rf "$WORK/$2"1 "$WORK/$2"2 "$WORK/$2"3
  node -e "
    const r = JSON.parse(require('fs').readFileSync('$out', 'utf8'));
    const errors = Object.values(r.run.errors).reduce((a, b) => a + b, 0);
    if (errors > 0 || r.serverCpuMicrosPerOp === null) { console.error('run $2: ' + errors + ' errors, server CPU ' + r.serverCpuMicrosPerOp); process.exit(1); }
    console.log(r.run.opsPerSec.toFixed(0), r.serverCpuMicrosPerOp.toFixed(1));" >"$WORK/$2.result"
  read -r OPS CPU <"$WORK/$2.result"
}

RATIOS="$WORK/ratios"
: >"$RATIOS"
echo "$PAIRS pairs of ${DURATION}s runs (warm-up load ${WARM}s), 51 puts in flight, $KEYS keys"
for pair in $(seq 1 "$PAIRS"); do
  for side in $([ $((pair % 2)) = 1 ] && echo a b || echo b a); do
    if [ "$side" = a ]; then
      measure "$TREE_A" "a$pair-"
      ops_a=$OPS cpu_a=$CPU
    else
      measure "$TREE_B" "b$pair-"
      ops_b=$OPS cpu_b=$CPU
    fi
  done
  awk -v p="$pair" -v oa="$ops_a" -v ca="$cpu_a" -v ob="$ops_b" -v cb="$cpu_b" 'BEGIN {
    printf "pair %d: A %d puts/s at %.1f µs/put, B %d puts/s at %.1f µs/put: B/A puts/s %.3f, CPU per put %.3f\n", p, oa, ca, ob, cb, ob / oa, cb / ca
    printf "%.4f %.4f\n", ob / oa, cb / ca >> "'"$RATIOS"'"
  }'
done

median() { # column of RATIOS
  awk -v c="$1" '{ print $c }' "$RATIOS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf 'B (%s) over A (%s), medians of %d pairs: puts/s %.3f, CPU per put %.3f\n' "$2" "$1" "$PAIRS" "$(median 1)" "$(median 2)"
