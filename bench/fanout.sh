#!/usr/bin/env bash
# Fan-out: 1 publisher → N subscribers on N connections (default 2 000), against
#   minimal          the practical limit: tokio-tungstenite writing one pre-serialized frame
#                    to every socket (`fanout minimal-server`)
#   wirecall         the `chat` example: `Chat.say` publishes to the `Chat.room` topic,
#                    memory hub
#   socketio         Socket.IO 4 on Node.js, `socket.broadcast.emit` (bench/socketio)
#   wirecall-redis   two `chat` nodes with `--redis`, subscribers split between them,
#                    the publisher on the first (reported beside, not in the ratio)
#
#   bench/fanout.sh [SECONDS] [REPEAT] [SUBSCRIBERS]
#   WINDOW=1 bench/fanout.sh …   # latency: one message in flight at a time (default 16)
#   BASE=05ef5ef bench/fanout.sh 5 6   # A/B: adds `wirecall-base`, the chat server built
#                                      # from BASE, alternated with today's in every round
#
# Servers (and redis-server) are pinned to core 0, the load generator to core 1. Prints a
# markdown table with deliveries/s and latency, and ratios against `minimal`; raw JSON
# lines go to target/bench/fanout.jsonl. Needs 2 cores, taskset, Node.js (npm installs
# socket.io from bench/socketio/package-lock.json) and, for the Redis row, redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${1:-5}"
REPEAT="${2:-1}"
SUBS="${3:-2000}"
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/fanout.jsonl"
: > "$RESULTS"

cargo build --release -q -p wirecall-bench --bin fanout
cargo build --release -q -p wirecall-examples --bin chat
if [ -n "${BASE:-}" ]; then
  . bench/base.sh
  build_base "$BASE" -p wirecall-examples --bin chat
fi
[ -d bench/socketio/node_modules ] || npm ci --prefix bench/socketio --no-audit --no-fund --silent
BIN=target/release
ulimit -n 65536 2>/dev/null || true
export PATH="$PATH:/usr/sbin"

. bench/servers.sh

gen() { # LABEL KIND URL...
  local label=$1 kind=$2; shift 2
  local urls=()
  for u in "$@"; do urls+=(--url "$u"); done
  taskset -c 1 "$BIN/fanout" run --kind "$kind" "${urls[@]}" --subs "$SUBS" \
    --seconds "$SECONDS_PER_RUN" --window "${WINDOW:-16}" --label "$label" | tee -a "$RESULTS"
}

for round in $(seq 1 "$REPEAT"); do
  start "$OUT/fanout-minimal.log" "$BIN/fanout" minimal-server 127.0.0.1:0
  gen minimal minimal "$URL"; stop_all

  wirecall_now() {
    start "$OUT/fanout-wirecall.log" "$BIN/chat" serve "127.0.0.1:$(free_port)"
    gen wirecall wirecall "$URL"; stop_all
  }
  wirecall_base() {
    start "$OUT/fanout-wirecall-base.log" target/ab/base-target/release/chat serve "127.0.0.1:$(free_port)"
    gen wirecall-base wirecall "$URL"; stop_all
  }
  if [ -z "${BASE:-}" ]; then wirecall_now
  elif [ $((round % 2)) -eq 1 ]; then wirecall_base; wirecall_now
  else wirecall_now; wirecall_base; fi

  start "$OUT/fanout-socketio.log" node bench/socketio/server.mjs 0
  gen socketio socketio "$URL"; stop_all

  if command -v redis-server >/dev/null; then
    rport=$(free_port)
    taskset -c 0 redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no > "$OUT/fanout-redis.log" 2>&1 &
    PIDS+=($!)
    sleep 0.3
    start "$OUT/fanout-node1.log" "$BIN/chat" serve "127.0.0.1:$(free_port)" --redis "redis://127.0.0.1:$rport/"
    u1=$URL
    start "$OUT/fanout-node2.log" "$BIN/chat" serve "127.0.0.1:$(free_port)" --redis "redis://127.0.0.1:$rport/"
    gen wirecall-redis wirecall "$u1" "$URL"; stop_all
  else
    echo "redis-server not installed: no wirecall-redis row" >&2
  fi
done

python3 - "$RESULTS" "$SUBS" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["label"], []).append(r)
def med(label, key):
    return statistics.median(r[key] for r in rows[label])
base = med("minimal", "deliveries_per_s")
import os
print(f"\n1 publisher → {sys.argv[2]} subscribers, window {os.environ.get('WINDOW', '16')} (median of {len(rows['minimal'])} run(s))\n")
print("| server | deliveries/s | × minimal | p50 | p99 |")
print("|---|---:|---:|---:|---:|")
for label in ["minimal", "wirecall", "wirecall-base", "socketio", "wirecall-redis"]:
    if label not in rows: continue
    d = med(label, "deliveries_per_s")
    print(f"| {label} | {d:,.0f} | {d/base:.2f} | {med(label,'p50_us')/1000:.1f} ms | {med(label,'p99_us')/1000:.1f} ms |")
if "wirecall-base" in rows:
    print(f"\nA/B wirecall / wirecall-base ({os.environ.get('BASE')}): deliveries/s "
          f"{med('wirecall','deliveries_per_s') / med('wirecall-base','deliveries_per_s'):.2f}, "
          f"p50 {med('wirecall','p50_us') / med('wirecall-base','p50_us'):.2f}, "
          f"p99 {med('wirecall','p99_us') / med('wirecall-base','p99_us'):.2f} (p: lower is better)")
PY
