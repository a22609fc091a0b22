#!/usr/bin/env bash
# What a user pays to build wirecall: cold debug builds (empty target dir) of the same
# two-method service three ways — wirecall's trait macro, wirecall's build.rs path, and
# jsonrpsee's macros — ROUNDS times each. README.md ("Build cost") reports a run.
#
#   bench/buildcost/run.sh [ROUNDS]      default 2; needs the crates.io registry (cargo fetch)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for c in macro buildrs jsonrpsee; do (cd "$here/$c" && cargo fetch -q); done
for round in $(seq 1 "$rounds"); do
  for c in macro buildrs jsonrpsee; do
    rm -rf "$work/target"
    start=$(date +%s.%N)
    (cd "$here/$c" && CARGO_TARGET_DIR="$work/target" cargo build -q)
    end=$(date +%s.%N)
    crates=$(ls "$work"/target/debug/deps/*.rlib | wc -l)
    printf '%s round %s: %.1f s, %s crates compiled\n' "$c" "$round" "$(echo "$end - $start" | bc)" "$crates"
  done
done
