#!/usr/bin/env bash
# Benchmark wirecall against jsonrpsee and minimal responders (tokio-tungstenite for
# WebSocket, hyper for JSON-RPC over HTTP POST).
#
#   bench/run.sh [SECONDS] [REPEAT]
#
# With REPEAT > 1 every scenario runs REPEAT times (servers restarted in between) and the
# table shows the median of each figure, which steadies the ratios on a noisy machine.
#
# Builds in release, pins each server to core 0 and the load generator to core 1
# (taskset), runs every scenario against every server, and prints one markdown table with
# ratios against the minimal responder (the practical limit). WAMP (`wampgen`) runs against
# wirecall only, for each serializer the server speaks, in a table of its own. Raw JSON
# lines go to target/bench/results.jsonl. Needs 2 cores and `taskset` (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${1:-5}"
REPEAT="${2:-1}"
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

cargo build --release -q -p wirecall-bench
BIN=target/release
ulimit -n 65536 2>/dev/null || true

SERVER_CORE=0
GEN_CORE=1
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: fewer than 2 cores; server and generator share a core" >&2
  GEN_CORE=0
fi

start_server() { # IMPL -> sets SERVER_PID, URL
  local log="$OUT/server-$1.log"
  taskset -c "$SERVER_CORE" "$BIN/bench-server" "$1" 127.0.0.1:0 > "$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if grep -q "listening on" "$log"; then break; fi
    sleep 0.05
  done
  URL=$(sed -n 's/^listening on //p' "$log")
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

gen() { # LABEL ARGS...
  local label=$1; shift
  taskset -c "$GEN_CORE" "$BIN/loadgen" --url "$URL" --seconds "$SECONDS_PER_RUN" --label "$label" "$@" | tee -a "$RESULTS"
}

# WAMP on wirecall's port (wampgen, a raw WAMP caller): pipelined and fan-in for each
# serializer the server speaks. JSON must be served; msgpack is skipped, with a note,
# while the server refuses wamp.2.msgpack.
wamp() {
  local ser err="$OUT/wamp-probe.err"
  for ser in json msgpack; do
    if ! taskset -c "$GEN_CORE" "$BIN/wampgen" --url "$URL" --serializer "$ser" --probe 2> "$err"; then
      if [ "$ser" = json ]; then
        echo "error: WAMP json does not work on bench-server wirecall: $(cat "$err")" >&2
        stop_server
        exit 1
      fi
      [ "$round" = 1 ] && echo "note: WAMP $ser skipped: $(cat "$err")" >&2
      continue
    fi
    for scen in "pipelined --conns 1 --inflight 64" "fan-in --conns 32 --inflight 16"; do
      set -- $scen
      local label=$1; shift
      taskset -c "$GEN_CORE" "$BIN/wampgen" --url "$URL" --serializer "$ser" --seconds "$SECONDS_PER_RUN" \
        --label "wirecall/wamp-$ser/$label" "$@" | tee -a "$RESULTS"
    done
  done
}

for round in $(seq 1 "$REPEAT"); do
for impl in minimal wirecall jsonrpsee; do
  start_server "$impl"
  echo "== $impl at $URL (pid $SERVER_PID)" >&2
  gen "$impl/seq"       --conns 1  --inflight 1
  gen "$impl/pipelined" --conns 1  --inflight 64
  gen "$impl/fan-in"    --conns 32 --inflight 16
  gen "$impl/payload"   --conns 8  --inflight 8 --method echo --payload 16384
  taskset -c "$GEN_CORE" "$BIN/loadgen" --url "$URL" --idle 2000 --server-pid "$SERVER_PID" --label "$impl/idle" | tee -a "$RESULTS"
  if [ "$impl" != minimal ]; then
    # JSON-RPC over HTTP POST on the same port: 32 keep-alive connections.
    URL="${URL/ws:/http:}" gen "$impl/http" --conns 32 --inflight 1
  fi
  if [ "$impl" = wirecall ]; then
    wamp
  fi
  stop_server
done
start_server minimal-http
URL="${URL/ws:/http:}" gen "minimal/http" --conns 32 --inflight 1
stop_server

start_server minimal
for client in wirecall jsonrpsee; do
  taskset -c "$GEN_CORE" "$BIN/clientbench" --client "$client" --url "$URL" --inflight 64 --seconds "$SECONDS_PER_RUN" | tee -a "$RESULTS"
done
stop_server
done

python3 - "$RESULTS" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def merge(groups):
    # The median of every numeric figure over the rounds.
    out = {}
    for key, runs in groups.items():
        merged = dict(runs[0])
        for field, value in runs[0].items():
            if isinstance(value, (int, float)):
                merged[field] = median(r[field] for r in runs)
        out[key] = merged
    return out
groups, cgroups = {}, {}
for r in rows:
    if "label" in r:
        groups.setdefault(r["label"], []).append(r)
    elif "client" in r:
        cgroups.setdefault(r["client"], []).append(r)
by, clients = merge(groups), merge(cgroups)
rounds = max((len(v) for v in groups.values()), default=1)
if rounds > 1:
    print(f"Median of {rounds} rounds.\n")
impls = ["minimal", "wirecall", "jsonrpsee"]
def fmt(v):
    return f"{v:,.0f}"
print("| scenario | metric | " + " | ".join(impls) + " | wirecall / minimal | wirecall / jsonrpsee |")
print("|---|---|" + "---|" * len(impls) + "---|---|")
for scen, metric, key in [
    ("seq (1×1)", "p50 µs", "p50_us"),
    ("seq (1×1)", "req/s", "rps"),
    ("pipelined (1×64)", "req/s", "rps"),
    ("fan-in (32×16)", "req/s", "rps"),
    ("fan-in (32×16)", "p99 µs", "p99_us"),
    ("payload (8×8, echo 16 KiB)", "req/s", "rps"),
    ("idle (2 000 conns)", "bytes/conn", "bytes_per_connection"),
    ("HTTP POST (32 keep-alive conns)", "req/s", "rps"),
    ("HTTP POST (32 keep-alive conns)", "p99 µs", "p99_us"),
]:
    name = {"seq (1×1)": "seq", "pipelined (1×64)": "pipelined", "fan-in (32×16)": "fan-in",
            "payload (8×8, echo 16 KiB)": "payload", "idle (2 000 conns)": "idle",
            "HTTP POST (32 keep-alive conns)": "http"}[scen]
    vals = [by.get(f"{i}/{name}", {}).get(key) for i in impls]
    cells = [fmt(v) if v is not None else "–" for v in vals]
    m, w, j = vals
    r1 = f"{w / m:.2f}" if m and w is not None else "–"
    r2 = f"{w / j:.2f}" if j and w is not None else "–"
    print(f"| {scen} | {metric} | " + " | ".join(cells) + f" | {r1} | {r2} |")
# WAMP: wirecall only, next to the same load over JSON-RPC (WebSocket).
wamp_rows = []
for scen, name in [("pipelined (1×64)", "pipelined"), ("fan-in (32×16)", "fan-in")]:
    j = by.get(f"wirecall/{name}", {})
    for ser in ["json", "msgpack"]:
        r = by.get(f"wirecall/wamp-{ser}/{name}")
        if r is None:
            wamp_rows.append(f"| {scen} | {ser} | not served | – | – | – |")
            continue
        ratio = f"{r['rps'] / j['rps']:.2f}" if j.get("rps") else "–"
        wamp_rows.append(f"| {scen} | {ser} | {fmt(r['rps'])} | {fmt(r['p99_us'])} | {r['errors']:,.0f} | {ratio} |")
if any("wirecall/wamp-" in k for k in by):
    print("\nWAMP (wirecall's port, `Calculator.add` by CALL/RESULT; ratio to the same load over JSON-RPC):\n")
    print("| scenario | serializer | calls/s | p99 µs | errors | WAMP / JSON-RPC |")
    print("|---|---|---|---|---|---|")
    print("\n".join(wamp_rows))
gens = [r.get("generator_cpu") for r in rows if "generator_cpu" in r]
if gens:
    print(f"\nLoad generator CPU use: max {max(gens):.2f} of its core (1.00 = saturated; then it, not the server, limits the run).")
if clients:
    w, j = clients.get("wirecall", {}), clients.get("jsonrpsee", {})
    if w and j:
        print(f"\nClient side, pipelined (64 in flight) against the minimal server: wirecall {fmt(w['rps'])} req/s, "
              f"jsonrpsee {fmt(j['rps'])} req/s: ratio {w['rps'] / j['rps']:.2f} (client CPU {w['client_cpu']:.2f} vs {j['client_cpu']:.2f}).")
PY
