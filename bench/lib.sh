# Shared by the bench scripts: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" NAME` sets ROOT (the
# repository), WORK (a temporary directory, removed at exit) and PIDS (processes the script
# starts: append each one's pid; at exit each gets SIGTERM, then SIGKILL after 10 s).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dkv-$1.XXXXXX")
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Bounded: SIGKILL whatever has not exited within 10 s.
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() {
  command -v "$1" >/dev/null 2>&1
}

# NODE_OPTIONS for each of $1 dkvd processes that share this machine: a V8 helper-thread pool of
# their share of the cores, as `dkv-cli cluster` gives its nodes (src/cli/cluster.ts says why).
node_share_options() {
  local share=$(($(nproc) / $1))
  [ "$share" -ge 1 ] || share=1
  echo "--v8-pool-size=$share"
}
