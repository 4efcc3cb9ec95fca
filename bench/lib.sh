# Shared by the bench scripts: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" NAME` sets ROOT (the
# repository), WORK (a temporary directory, removed at exit) and PIDS (processes the script
# starts: append each one's pid; at exit each gets SIGTERM, then SIGKILL after 10 s).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dkv-$1.XXXXXX")
PIDS=()

# SIGTERM to each process, then SIGKILL to whatever has not exited within 10 s.
stop_processes() { # pid...
  local pid
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cleanup() {
  stop_processes "${PIDS[@]}"
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

# Starts a local 3-node dkv cluster: node ids, data directories and logs named $1 1..3 under WORK
# (stderr in WORK/$1N.log), each node with its share of V8's helper threads, running the build in
# $2 (a checkout with dist/ built; default ROOT). Sets DKV_PORT (the first node's TCP port),
# DKV_PORTS and DKV_PIDS, and returns once the first node sees three alive members. Every wait
# is bounded by START_TIMEOUT_S.
start_dkv_cluster() {
  local name=$1 tree=${2:-$ROOT} i port pid deadline
  DKV_PORT=""
  DKV_PORTS=()
  DKV_PIDS=()
  for i in 1 2 3; do
    local cmd=("$tree/bin/dkvd" --tcp 0 --udp 0 --data "$WORK/$name$i" --node-id "$name$i")
    [ "$i" -gt 1 ] && cmd+=(--join "127.0.0.1:$DKV_PORT")
    echo "+ NODE_OPTIONS=$(node_share_options 3) $(printf '%q ' "${cmd[@]}")"
    NODE_OPTIONS="$(node_share_options 3)" "${cmd[@]}" >"$WORK/$name$i.out" 2>"$WORK/$name$i.log" &
    pid=$!
    PIDS+=("$pid")
    DKV_PIDS+=("$pid")
    deadline=$((SECONDS + START_TIMEOUT_S))
    port=""
    until [ -n "$port" ]; do
      # The start line carries the port in "tcp" (a joining node may log before it). The log
      # may not exist yet: the background shell creates it.
      port=$(grep -so '"tcp":"127\.0\.0\.1:[0-9]*"' "$WORK/$name$i.log" | head -n 1 | grep -o '[0-9]*"$' | tr -d '"' || true)
      [ -n "$port" ] && break
      kill -0 "$pid" 2>/dev/null || { echo "dkvd $name$i exited at start; its log:" >&2; cat "$WORK/$name$i.log" >&2; exit 1; }
      [ $SECONDS -lt $deadline ] || { echo "dkvd $name$i gave no port after ${START_TIMEOUT_S}s" >&2; exit 1; }
      sleep 0.1
    done
    DKV_PORTS+=("$port")
    [ "$i" = 1 ] && DKV_PORT=$port
  done
  deadline=$((SECONDS + START_TIMEOUT_S))
  until "$tree/bin/dkv-cli" --server "127.0.0.1:$DKV_PORT" ring --json 2>/dev/null |
    node -e "const r = JSON.parse(require('fs').readFileSync(0, 'utf8')); process.exit(r.members.filter((m) => m.state === 'alive').length === 3 ? 0 : 1)"; do
    [ $SECONDS -lt $deadline ] || { echo "the dkv cluster did not form within ${START_TIMEOUT_S}s" >&2; exit 1; }
    sleep 0.2
  done
  echo "dkv cluster up on 127.0.0.1:${DKV_PORTS[*]}"
}

# Stops the cluster start_dkv_cluster started last, and forgets its pids (a pid may be reused).
stop_dkv_cluster() {
  stop_processes "${DKV_PIDS[@]}"
  local pid kept=() stopped=" ${DKV_PIDS[*]} "
  for pid in "${PIDS[@]}"; do
    [[ "$stopped" == *" $pid "* ]] || kept+=("$pid")
  done
  PIDS=("${kept[@]}")
  DKV_PIDS=()
}
