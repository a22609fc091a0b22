# Sourced by bench/fanout.sh and bench/keys.sh: servers started pinned to core 0, each
# waited for until it says where it listens, and all stopped when the script exits.
PIDS=()
start() { # LOG CMD... -> sets URL and PID (waits up to 30 s for "listening on")
  local log=$1; shift
  taskset -c 0 "$@" > "$log" 2>&1 &
  PID=$!
  PIDS+=($PID)
  for _ in $(seq 1 600); do
    if grep -q "listening on" "$log"; then break; fi
    sleep 0.05
  done
  URL=$(sed -n 's/^listening on //p' "$log" | head -1)
  [ -n "$URL" ] || { echo "did not start: $*" >&2; cat "$log" >&2; exit 1; }
}
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
