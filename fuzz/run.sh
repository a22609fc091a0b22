#!/usr/bin/env bash
# Run one fuzz target (README.md, "Development"). Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run.sh TARGET [SECONDS] [JOBS]     TARGET: idl, codec, session or wamp (default 60 s, 1 job)
#
# Seeds fuzz/corpus/TARGET from the test fixtures first: every .wire file of the
# repository for `idl`, every JSON-RPC message quoted in the docs and tests for `codec`.
# The corpus grows in place (git ignores it); crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${1:?usage: fuzz/run.sh idl|codec|session|wamp [SECONDS] [JOBS]}"
seconds="${2:-60}"
jobs="${3:-1}"
corpus="$here/corpus/$target"
mkdir -p "$corpus"
case "$target" in
  idl)
    find "$root" -name '*.wire' -not -path '*/target/*' -not -path '*/fuzz/*' | while read -r f; do
      cp "$f" "$corpus/seed-$(sha1sum < "$f" | cut -c1-16)"
    done ;;
  codec)
    grep -rhoE '\[?\{"jsonrpc[^`]*\}\]?' "$root/docs" "$root/tests/tests" "$root/runtime/src" 2>/dev/null |
      sed 's/\\"/"/g' | sort -u | while IFS= read -r line; do
        printf '%s' "$line" > "$corpus/seed-$(printf '%s' "$line" | sha1sum | cut -c1-16)"
      done ;;
  session | wamp) ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
echo "corpus $corpus: $(ls "$corpus" | wc -l) inputs" >&2
cd "$here"
exec cargo +nightly fuzz run "$target" "$corpus" -O --jobs "$jobs" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=8192
