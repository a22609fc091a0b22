#!/usr/bin/env bash
# A/B: wirecall's benchmark server built from BASE (a git revision) against the one built
# from the working tree, alternated round by round on the same load generator, so that a
# step's cost is measured inside one run's noise instead of against an old table.
#
#   bench/ab.sh BASE [ROUNDS] [SECONDS]        e.g. bench/ab.sh 05ef5ef 6 5
#
# Builds both in release (BASE in a git worktree under target/ab/), pins the server to
# core 0 and the generator to core 1, runs every WebSocket scenario of run.sh plus HTTP
# POST against each build in turn, ROUNDS times, and prints the median of each figure and
# the ratio new / base. WAMP (pipelined and fan-in, `wampgen` of the working tree against
# both servers) runs for each serializer a build speaks: a build that refuses one (a base
# without WAMP, or without wamp.2.msgpack) skips it with a note, and the table shows "–".
# Rounds whose steal time (/proc/stat) exceeded 5 % of the round are dropped and counted.
# Raw JSON lines: target/ab/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:?usage: bench/ab.sh BASE [ROUNDS] [SECONDS]}"
ROUNDS="${2:-6}"
SECONDS_PER_RUN="${3:-5}"
OUT=target/ab
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

cargo build --release -q -p wirecall-bench
. bench/base.sh
build_base "$BASE" -p wirecall-bench
NEW_BIN=target/release
BASE_BIN="$OUT/base-target/release"
ulimit -n 65536 2>/dev/null || true
SERVER_CORE=0
GEN_CORE=1

steal() { awk '/^cpu / { print $9 }' /proc/stat; }
total() { awk '/^cpu / { s = 0; for (i = 2; i <= NF; i++) s += $i; print s }' /proc/stat; }

declare -A WAMP_NOTED
wamp_served() { # NAME URL SERIALIZER PID: may the build's server be measured over WAMP?
  local name=$1 url=$2 ser=$3 pid=$4 err="$OUT/wamp-probe.err"
  if taskset -c "$GEN_CORE" "$NEW_BIN/wampgen" --url "$url" --serializer "$ser" --probe 2> "$err"; then
    return 0
  fi
  if [ "$name" = new ] && [ "$ser" = json ]; then
    echo "error: WAMP json does not work on the new build: $(cat "$err")" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  if [ -z "${WAMP_NOTED[$name/$ser]:-}" ]; then
    WAMP_NOTED[$name/$ser]=1
    echo "note: $name: WAMP $ser skipped: $(cat "$err")" >&2
    python3 -c 'import json, sys; print(json.dumps({"skipped": sys.argv[1], "reason": sys.argv[2]}))' \
      "$name/wamp-$ser" "$(cat "$err")" >> "$RESULTS"
  fi
  return 1
}

run_build() { # NAME BIN ROUND
  local name=$1 bin=$2 round=$3 log="$OUT/server-$1.log"
  taskset -c "$SERVER_CORE" "$bin/bench-server" wirecall 127.0.0.1:0 > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" && break; sleep 0.05; done
  local url
  url=$(sed -n 's/^listening on //p' "$log")
  local s0 t0
  s0=$(steal); t0=$(total)
  local lines=""
  for scen in "seq --conns 1 --inflight 1" "pipelined --conns 1 --inflight 64" \
              "fan-in --conns 32 --inflight 16" "payload --conns 8 --inflight 8 --method echo --payload 16384"; do
    set -- $scen
    local label=$1; shift
    lines+=$(taskset -c "$GEN_CORE" "$NEW_BIN/loadgen" --url "$url" --seconds "$SECONDS_PER_RUN" --label "$name/$label" "$@")$'\n'
  done
  lines+=$(taskset -c "$GEN_CORE" "$NEW_BIN/loadgen" --url "${url/ws:/http:}" --seconds "$SECONDS_PER_RUN" --label "$name/http" --conns 32 --inflight 1)$'\n'
  for ser in json msgpack; do
    wamp_served "$name" "$url" "$ser" "$pid" || continue
    for scen in "pipelined --conns 1 --inflight 64" "fan-in --conns 32 --inflight 16"; do
      set -- $scen
      local label=$1; shift
      lines+=$(taskset -c "$GEN_CORE" "$NEW_BIN/wampgen" --url "$url" --serializer "$ser" --seconds "$SECONDS_PER_RUN" --label "$name/wamp-$ser/$label" "$@")$'\n'
    done
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local s1 t1
  s1=$(steal); t1=$(total)
  local pct=$(( (s1 - s0) * 100 / (t1 - t0 + 1) ))
  if [ "$pct" -gt 5 ]; then
    echo "round $round $name: steal ${pct}% — dropped" >&2
    echo "{\"dropped\": \"$name\", \"round\": $round, \"steal_pct\": $pct}" >> "$RESULTS"
    return
  fi
  printf '%s' "$lines" | sed "s/^{/{\"round\": $round, /" >> "$RESULTS"
}

for round in $(seq 1 "$ROUNDS"); do
  # Alternate which build goes first, so neither always runs on a warmer machine.
  if [ $((round % 2)) -eq 1 ]; then
    run_build base "$BASE_BIN" "$round"; run_build new "$NEW_BIN" "$round"
  else
    run_build new "$NEW_BIN" "$round"; run_build base "$BASE_BIN" "$round"
  fi
  echo "round $round done" >&2
done

python3 - "$RESULTS" "$BASE" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dropped = [r for r in rows if "dropped" in r]
skipped = [r for r in rows if "skipped" in r]
rows = [r for r in rows if "label" in r]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
print(f"A/B against {sys.argv[2]}: median of {max((len(v) for v in by.values()), default=0)} rounds each"
      + (f" ({len(dropped)} build-rounds dropped for steal)" if dropped else "") + ".\n")
print("| scenario | metric | base | new | new / base |")
print("|---|---|---|---|---|")
wamp = [f"wamp-{ser}/{scen}" for ser in ["json", "msgpack"] for scen in ["pipelined", "fan-in"]]
for scen in ["seq", "pipelined", "fan-in", "payload", "http"] + wamp:
    for metric, key in [("req/s", "rps"), ("p99 µs", "p99_us")]:
        b = [r[key] for r in by.get(f"base/{scen}", [])]
        n = [r[key] for r in by.get(f"new/{scen}", [])]
        if not b and not n:
            continue
        if not b or not n:
            # A WAMP scenario only one build speaks.
            cell = lambda v: f"{median(v):,.0f}" if v else "–"
            print(f"| {scen} | {metric} | {cell(b)} | {cell(n)} | – |")
            continue
        mb, mn = median(b), median(n)
        print(f"| {scen} | {metric} | {mb:,.0f} | {mn:,.0f} | {mn / mb:.2f} |")
errors = {}
for r in rows:
    if r.get("errors"):
        errors[r["label"]] = errors.get(r["label"], 0) + r["errors"]
if errors:
    print("\nRuns with errors (label: errors): " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
for r in skipped:
    print(f"\nNot run: {r['skipped']} ({r['reason']})")
PY
