#!/usr/bin/env bash
# The long run (README.md, "Development"): nothing may leak, no call may be lost.
#
#   bench/soak.sh [MINUTES] [CONNS] [CHURN]      default: 10 minutes, 10 000 connections, 50
#
# Builds in release, raises this shell's open-file limit to its hard limit (each side
# needs one descriptor per connection: 10 000 connections fit under the 20 000 this
# machine allows; `ulimit -Hn` shows yours), pins the server to core 0 and the clients to
# core 1, samples the server every 10 s and prints a markdown table; exits 1 on a leak or
# a lost call (bench/src/bin/soak.rs says what is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files: $(ulimit -n)" >&2
cargo build --release -q -p wirecall-bench --bin soak
exec taskset -c 1 target/release/soak run --minutes "${1:-10}" --conns "${2:-10000}" \
  --churn "${3:-50}" --server-cpu 0
