#!/usr/bin/env bash
# A/B: wirecall's benchmark server built from BASE (a git revision) against the one built
# from the working tree, measured in PAIRS: both servers run side by side (pinned to core
# 0, the idle one costs nothing), and every scenario runs against one and then at once
# against the other (the order alternating), so each pair sees the same moment of this
# shared VM. The figure to quote is the median of the per-pair ratios new / base; with
# medians of whole build-rounds, a VM whose speed drifts by ±20 % between minutes hid a
# 3 % step (see README "Benchmarks").
#
#   bench/ab.sh BASE [ROUNDS] [SECONDS]        e.g. bench/ab.sh 05ef5ef 6 5
#
# Builds both in release (BASE in a git worktree under target/ab/), the generator on core
# 1, runs every WebSocket scenario of run.sh plus HTTP POST, ROUNDS pairs each, and prints
# per scenario: the medians of each side, the median of the pair ratios and their spread
# (lowest–highest). WAMP (pipelined and fan-in, `wampgen` of the working tree) runs for
# each serializer both builds speak; one a build refuses (a base without WAMP, or without
# wamp.2.msgpack) is measured on the new side only, with a note, and shows "–".
# A pair in which either half saw steal time (/proc/stat) above 5 % is dropped and counted.
# WIRECALL_BENCH_LAYER=noop|rate puts the new server's calculator behind one pass-through
# policy layer or the rate-limit layer; the base never gets it, so
#   WIRECALL_BENCH_LAYER=noop bench/ab.sh HEAD 6 3
# measures what one layer costs a call. ONLY=REGEX keeps the scenarios whose label matches
# (e.g. ONLY=http, ONLY='seq|fan-in'). Raw JSON lines: target/ab/results.jsonl.
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

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_server() { # NAME BIN -> sets URL_<NAME>
  local name=$1 bin=$2 log="$OUT/server-$1.log"
  local layer=${WIRECALL_BENCH_LAYER:-}
  [ "$name" = base ] && layer=
  WIRECALL_BENCH_LAYER=$layer taskset -c "$SERVER_CORE" "$bin/bench-server" wirecall 127.0.0.1:0 > "$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.05; done
  grep -q "listening on" "$log" || { echo "error: $name server did not start: $(cat "$log")" >&2; exit 1; }
  printf -v "URL_$name" '%s' "$(sed -n 's/^listening on //p' "$log")"
}
start_server base "$BASE_BIN"
start_server new "$NEW_BIN"

# Which WAMP serializers each side speaks.
declare -A SPEAKS
for name in base new; do
  url_var="URL_$name"
  for ser in json msgpack; do
    if taskset -c "$GEN_CORE" "$NEW_BIN/wampgen" --url "${!url_var}" --serializer "$ser" --probe 2> "$OUT/wamp-probe.err"; then
      SPEAKS[$name/$ser]=1
    else
      if [ "$name" = new ] && [ "$ser" = json ]; then
        echo "error: WAMP json does not work on the new build: $(cat "$OUT/wamp-probe.err")" >&2
        exit 1
      fi
      echo "note: $name: WAMP $ser not measured: $(cat "$OUT/wamp-probe.err")" >&2
      python3 -c 'import json, sys; print(json.dumps({"skipped": sys.argv[1], "reason": sys.argv[2]}))' \
        "$name/wamp-$ser" "$(cat "$OUT/wamp-probe.err")" >> "$RESULTS"
    fi
  done
done

gen() { # NAME ROUND LABEL TOOL ARGS... -> one JSON line with the steal share of the run
  local name=$1 round=$2 label=$3 tool=$4 url_var="URL_$1"
  shift 4
  local url=${!url_var}
  [ "$label" = http ] && url=${url/ws:/http:}
  local s0 t0 line
  s0=$(steal); t0=$(total)
  line=$(taskset -c "$GEN_CORE" "$NEW_BIN/$tool" --url "$url" --seconds "$SECONDS_PER_RUN" --label "$name/$label" "$@")
  local pct=$(( ($(steal) - s0) * 100 / ($(total) - t0 + 1) ))
  printf '%s\n' "$line" | sed "s/^{/{\"round\": $round, \"steal_pct\": $pct, /"
}

SCENARIOS=(
  "seq loadgen --conns 1 --inflight 1"
  "pipelined loadgen --conns 1 --inflight 64"
  "fan-in loadgen --conns 32 --inflight 16"
  "payload loadgen --conns 8 --inflight 8 --method echo --payload 16384"
  "http loadgen --conns 32 --inflight 1"
)
for ser in json msgpack; do
  [ -n "${SPEAKS[new/$ser]:-}" ] || continue
  SCENARIOS+=("wamp-$ser/pipelined wampgen --serializer $ser --conns 1 --inflight 64"
              "wamp-$ser/fan-in wampgen --serializer $ser --conns 32 --inflight 16")
done

n=0
for round in $(seq 1 "$ROUNDS"); do
  for scen in "${SCENARIOS[@]}"; do
    set -- $scen
    label=$1
    shift
    [[ "$label" =~ ^(${ONLY:-.*})$ ]] || continue
    n=$((n + 1))
    order="base new"
    [ $((n % 2)) -eq 0 ] && order="new base"
    for name in $order; do
      case $label in
        wamp-*) ser=${label#wamp-}; ser=${ser%%/*}; [ -n "${SPEAKS[$name/$ser]:-}" ] || continue ;;
      esac
      gen "$name" "$round" "$label" "$@" >> "$RESULTS"
    done
  done
  echo "round $round done" >&2
done

python3 - "$RESULTS" "$BASE" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
skipped = [r for r in rows if "skipped" in r]
rows = [r for r in rows if "label" in r]
runs = {}  # (scenario, round) -> {side: row}
for r in rows:
    side, scen = r["label"].split("/", 1)
    runs.setdefault((scen, r["round"]), {})[side] = r
scens = []
for (scen, _) in runs:
    if scen not in scens:
        scens.append(scen)
dropped = sum(1 for pair in runs.values()
              if len(pair) == 2 and any(p["steal_pct"] > 5 for p in pair.values()))
print(f"A/B against {sys.argv[2]}, in pairs (each scenario against both servers back to back)"
      + (f"; {dropped} pairs dropped for steal above 5 %" if dropped else "") + ".\n")
print("| scenario | metric | base | new | new / base (median of pairs) | spread | pairs |")
print("|---|---|---|---|---|---|---|")
for scen in scens:
    pairs = [p for (s, _), p in sorted(runs.items()) if s == scen]
    for metric, key in [("req/s", "rps"), ("p99 µs", "p99_us")]:
        full = [p for p in pairs if len(p) == 2 and all(x["steal_pct"] <= 5 for x in p.values())]
        if not full:
            n = [p["new"][key] for p in pairs if "new" in p]
            print(f"| {scen} | {metric} | – | {median(n):,.0f} | – | – | {len(n)} (new only) |" if n else f"| {scen} | {metric} | – | – | – | – | 0 |")
            continue
        b = [p["base"][key] for p in full]
        n = [p["new"][key] for p in full]
        ratios = sorted(p["new"][key] / p["base"][key] for p in full if p["base"][key])
        if not ratios:
            # The base does not serve it (e.g. no HTTP door before the hyper listener).
            print(f"| {scen} | {metric} | – | {median(n):,.0f} | – | – | {len(n)} (new only) |")
            continue
        print(f"| {scen} | {metric} | {median(b):,.0f} | {median(n):,.0f} | {median(ratios):.2f} | "
              f"{ratios[0]:.2f}–{ratios[-1]:.2f} | {len(full)} |")
errors = {}
for r in rows:
    if r.get("errors"):
        errors[r["label"]] = errors.get(r["label"], 0) + r["errors"]
if errors:
    print("\nRuns with errors (label: errors): " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
for r in skipped:
    print(f"\nNot measured: {r['skipped']} ({r['reason']})")
PY
