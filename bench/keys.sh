#!/usr/bin/env bash
# Many keys over several nodes on one Redis (issue #29 §2): 3 `chat` nodes with `--redis`,
# subscribers spread over KEYS rooms (default 1 000), each room's subscribers on one node
# (so each node holds a third of the rooms), publications going round all rooms. What
# per-key channels change: a node receives only its rooms' publications, not all of them.
#
#   bench/keys.sh [SECONDS] [REPEAT] [SUBSCRIBERS] [KEYS]
#   BASE=bd6ae0e bench/keys.sh 10 3   # A/B: today's chat (one channel per key) against
#                                     # BASE's (one channel for every key), alternated
#
# Servers and redis-server are pinned to core 0, the load generator to core 1. Prints a
# markdown table: deliveries/s, latency, and the CPU time the servers (the 3 nodes, and
# Redis) spent per delivery (utime+stime from /proc over the whole run, set-up included).
# Raw JSON lines go to target/bench/keys.jsonl. Needs 2 cores, taskset, redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${1:-5}"
REPEAT="${2:-1}"
SUBS="${3:-3000}"
KEYS="${4:-1000}"
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/keys.jsonl"
: > "$RESULTS"

cargo build --release -q -p wirecall-bench --bin fanout
cargo build --release -q -p wirecall-examples --bin chat
if [ -n "${BASE:-}" ]; then
  . bench/base.sh
  build_base "$BASE" -p wirecall-examples --bin chat
fi
BIN=target/release
ulimit -n 65536 2>/dev/null || true

. bench/servers.sh
ticks() { # PID... -> utime+stime of them all, in clock ticks
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

deployment() { # LABEL CHAT-BINARY
  local label=$1 chat=$2 rport urls=() nodes=() redis
  rport=$(free_port)
  taskset -c 0 redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no > "$OUT/keys-redis.log" 2>&1 &
  redis=$!
  PIDS+=($redis)
  sleep 0.3
  for n in 1 2 3; do
    start "$OUT/keys-node$n.log" "$chat" serve "127.0.0.1:$(free_port)" --redis "redis://127.0.0.1:$rport/"
    urls+=(--url "$URL"); nodes+=("$PID")
  done
  local n0 r0 n1 r1
  n0=$(ticks "${nodes[@]}"); r0=$(ticks "$redis")
  taskset -c 1 "$BIN/fanout" run --kind wirecall "${urls[@]}" --subs "$SUBS" --keys "$KEYS" \
    --seconds "$SECONDS_PER_RUN" --window "${WINDOW:-256}" --label "$label" > "$OUT/keys-run.json"
  n1=$(ticks "${nodes[@]}"); r1=$(ticks "$redis")
  python3 - "$OUT/keys-run.json" "$((n1 - n0))" "$((r1 - r0))" "$(getconf CLK_TCK)" <<'PY' | tee -a "$RESULTS"
import json, sys
r = json.load(open(sys.argv[1]))
hz = int(sys.argv[4])
r["nodes_cpu_s"] = int(sys.argv[2]) / hz
r["redis_cpu_s"] = int(sys.argv[3]) / hz
print(json.dumps(r))
PY
  stop_all
}

for round in $(seq 1 "$REPEAT"); do
  if [ -z "${BASE:-}" ]; then deployment keys "$BIN/chat"
  elif [ $((round % 2)) -eq 1 ]; then
    deployment keys-base target/ab/base-target/release/chat; deployment keys "$BIN/chat"
  else
    deployment keys "$BIN/chat"; deployment keys-base target/ab/base-target/release/chat
  fi
done

python3 - "$RESULTS" "$SUBS" "$KEYS" <<'PY'
import json, os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["label"], []).append(r)
def med(label, f):
    return statistics.median(f(r) for r in rows[label])
print(f"\n3 nodes on one Redis, {sys.argv[2]} subscribers over {sys.argv[3]} rooms, window "
      f"{os.environ.get('WINDOW', '256')} (median of {len(rows['keys'])} run(s))\n")
print("| chat | deliveries/s | p50 | p99 | nodes CPU µs/delivery | Redis CPU µs/delivery |")
print("|---|---:|---:|---:|---:|---:|")
per = lambda key: (lambda r: r[key] * 1e6 / max(1, r["deliveries_per_s"] * r["seconds"]))
for label in ["keys", "keys-base"]:
    if label not in rows: continue
    print(f"| {label} | {med(label, lambda r: r['deliveries_per_s']):,.0f} "
          f"| {med(label, lambda r: r['p50_us'])/1000:.1f} ms | {med(label, lambda r: r['p99_us'])/1000:.1f} ms "
          f"| {med(label, per('nodes_cpu_s')):.1f} | {med(label, per('redis_cpu_s')):.1f} |")
if "keys-base" in rows:
    d = med("keys", lambda r: r["deliveries_per_s"]) / med("keys-base", lambda r: r["deliveries_per_s"])
    c = med("keys", per("nodes_cpu_s")) / med("keys-base", per("nodes_cpu_s"))
    print(f"\nA/B keys / keys-base ({os.environ.get('BASE')}): deliveries/s {d:.2f}, "
          f"nodes CPU per delivery {c:.2f} (lower is better)")
PY
