#!/usr/bin/env bash
# dkv's failure detector beside hashicorp/memberlist's, in one run, same settings.
#
# For each cluster size in SIZES, runs
#   - ../shared/anchors/memberlist (a Go harness around Debian's memberlist package: N members in
#     one process on 127.0.0.1) with its lan200 config: probe 200 ms, timeout 100 ms, K=3,
#     suspicion multiplier 4, gossip 40 ms to 3 members, push-pull 6 s;
#   - bench/membership.ts detect: N real dkvd processes on 127.0.0.1 with the same settings;
# each for TRIALS trials of (a new member joins; a random member is killed without a leave), and
# prints both summaries and the ratios of the medians: time until all members know of a join, and
# until all others have the killed member dead.
#
# Environment: SIZES (default "16 64"), TRIALS (default 8), STEADY_S (steady-state traffic window,
# default 10), MEMBERLIST_DIR (default ../shared/anchors/memberlist beside the repository; without
# it only dkv runs, and the figures measured there earlier are quoted instead).
#
#   bench/vs-memberlist.sh
#   SIZES=16 TRIALS=4 bench/vs-memberlist.sh

set -euo pipefail

SIZES=${SIZES:-"16 64"}
TRIALS=${TRIALS:-8}
STEADY_S=${STEADY_S:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEMBERLIST_DIR=${MEMBERLIST_DIR:-$ROOT/../shared/anchors/memberlist}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dkv-vs-memberlist.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cd "$ROOT"
npm run build --silent

HARNESS=""
if [[ -f "$MEMBERLIST_DIR/main.go" ]]; then
  if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/github.com/hashicorp/memberlist ]]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-hashicorp-memberlist-dev >/dev/null
  fi
  HARNESS="$WORK/mlharness"
  (cd "$MEMBERLIST_DIR" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$HARNESS" .)
else
  echo "no memberlist harness at $MEMBERLIST_DIR: running dkv only" >&2
fi

median_of() { # "SUMMARY" file, line label -> median ms
  grep "$2" "$1" | sed -E 's/.*median ([0-9]+).*/\1/' | head -1
}

BASE=23400
declare -A ML_JOIN ML_DEAD DKV_JOIN DKV_DEAD
for n in $SIZES; do
  if [[ -n "$HARNESS" ]]; then
    echo "== memberlist N=$n (lan200, $TRIALS trials)"
    timeout 900 "$HARNESS" -n "$n" -config lan200 -trials "$TRIALS" -steady "${STEADY_S}s" -base "$BASE" -maxrun 12m \
      -log "$WORK/ml_$n.log" | tee "$WORK/ml_$n.txt" | grep -E '^(trial|steady|SUMMARY|  join known by ALL|  crash -> dead at ALL|  false)'
    ML_JOIN[$n]=$(median_of "$WORK/ml_$n.txt" 'join known by ALL')
    ML_DEAD[$n]=$(median_of "$WORK/ml_$n.txt" 'crash -> dead at ALL')
    BASE=$((BASE + 200))
  fi
  echo "== dkv N=$n (same settings, $TRIALS trials)"
  timeout 1200 node dist/bench/membership.js detect --nodes "$n" --trials "$TRIALS" --steady "$STEADY_S" | tee "$WORK/dkv_$n.txt" |
    grep -E '^(trial|steady|SUMMARY|  join known by ALL|  crash -> dead at ALL|  false)'
  DKV_JOIN[$n]=$(median_of "$WORK/dkv_$n.txt" 'join known by ALL')
  DKV_DEAD[$n]=$(median_of "$WORK/dkv_$n.txt" 'crash -> dead at ALL')
done

echo
echo "| N | join known by all: memberlist | dkv | dkv/memberlist | crash dead at all: memberlist | dkv | dkv/memberlist |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
  mj=${ML_JOIN[$n]:-}
  md=${ML_DEAD[$n]:-}
  ratio() { [[ -n "$1" ]] && awk -v a="$2" -v b="$1" 'BEGIN { printf "%.2f", a / b }' || echo "-"; }
  echo "| $n | ${mj:--} ms | ${DKV_JOIN[$n]} ms | $(ratio "$mj" "${DKV_JOIN[$n]}") | ${md:--} ms | ${DKV_DEAD[$n]} ms | $(ratio "$md" "${DKV_DEAD[$n]}") |"
done
if [[ -z "$HARNESS" ]]; then
  echo "(memberlist, measured earlier on this machine: join 86 / 104 ms, dead at all 1451 / 1855 ms for N = 16 / 64)"
fi
