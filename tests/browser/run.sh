#!/usr/bin/env bash
# The TypeScript checks and the browser test (README.md, "Tests"). Needs Node.js ≥ 20, npm
# and Debian's `chromium` (/usr/bin/chromium, or set CHROMIUM). `.ci/run` installs them.
#
#   1. `tsc --strict` (the strictest options, no DOM) over the TypeScript generated from
#      every fixture and every file of the torture corpus (idl/tests/torture: edge cases
#      `wirecall check` accepts), type-level tests (types/mapping.ts) and values serialized
#      by the Rust side (ts_samples): the TypeScript types match the JSON mapping. Then
#      every TypeScript snippet of README.md, docs/*.md and the package's README
#      (snippets.mjs).
#   2. The example page (examples/web) builds, and its committed build is current.
#   3. The runtime under faults in Node.js, against the Rust calculator server and fake
#      HTTP servers; without a
#      WebSocket class of Node.js's own, and with the `ws` package's; then over TLS with a
#      bearer token (certificates made by the make_certs example); then as the npm package
#      of clients/typescript, packed from a copy of its folder and installed offline; the
#      server's policy (rate limits, refusals) as the client's typed errors.
#   4. Headless Chromium drives the example page against the Rust calculator server; then
#      signs in on it with a token (a wrong one shown as refused) and calls over the rate.
#   5. The same page served by the `web` example, WebSocket blocked: the client falls back
#      to HTTP POST and server-sent events.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

step() { printf '\n== browser: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "npm packages"
if [ ! -x "$here/node_modules/.bin/tsc" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund
fi
tsc="$here/node_modules/.bin/tsc"
"$tsc" --version

step "build the CLI and the calculator server"
cargo build -q -p wirecall-cli -p wirecall-examples --bin wirecall --bin calculator --bin web --bin chat
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
wirecall="$target/debug/wirecall"
export CALCULATOR_BIN="$target/debug/calculator"
export WEB_BIN="$target/debug/web"
export CHAT_BIN="$target/debug/chat"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "tsc --strict: generated code, type tests, Rust-serialized samples"
mkdir -p "$work/strict"
for wire in examples/idl/calculator.wire examples/idl/chat.wire idl/tests/golden/everything.wire idl/tests/torture/*.wire; do
  "$wirecall" gen ts "$wire" --out "$work/strict"
done
cp "$here/types/mapping.ts" "$work/strict/"
cargo run -q -p wirecall-tests --example ts_samples > "$work/strict/samples.ts"
cp "$here/tsconfig.strict.json" "$work/strict/tsconfig.json"
"$tsc" -p "$work/strict"
echo "ok: $(ls "$work/strict"/*.ts | wc -l) files"

step "tsc --strict: the documentation's TypeScript snippets"
node "$here/snippets.mjs" "$work/snippets"
for wire in examples/idl/calculator.wire examples/idl/chat.wire; do
  "$wirecall" gen ts "$wire" --out "$work/snippets/gen"
done
ln -s "$here/node_modules" "$work/snippets/node_modules"   # `ws` and its types
"$tsc" -p "$work/snippets"
echo "ok"

step "example page: builds, and examples/web/dist is current"
"$tsc" -p examples/web --outDir "$work/web-dist"
if ! diff -r "$work/web-dist" examples/web/dist; then
  echo "examples/web/dist is stale: run \`tests/browser/node_modules/.bin/tsc -p examples/web\` and commit it" >&2
  exit 1
fi
echo "ok"

step "runtime tests in Node.js"
node --experimental-websocket --test "$here/runtime.test.mjs"

step "Node.js without a WebSocket class of its own; the \`ws\` package's (no --experimental-websocket)"
node --test "$here/ws.test.mjs"

step "runtime against fake HTTP servers in Node.js: cut event streams, backoff, jitter, tokens"
node --test "$here/faults.test.mjs"

step "topics in Node.js: \$since across a server restart (Redis), gaps"
node --experimental-websocket --test "$here/topics.test.mjs"

step "TLS and tokens in Node.js (wss://, https://, 4401 then a fresh token)"
cargo run -q -p wirecall-tests --example make_certs -- "$work/certs"
TLS_CERT="$work/certs/cert.pem" TLS_KEY="$work/certs/key.pem" NODE_EXTRA_CA_CERTS="$work/certs/ca.pem" \
  node --experimental-websocket --test "$here/tls.test.mjs"

step "the npm package (clients/typescript): packed from a copy of its folder (prepack builds it), installed offline, generated code importing it"
mkdir -p "$work/pkg-copy"
(cd clients/typescript && cp -r package.json package-lock.json tsconfig.json README.md src "$work/pkg-copy/")
(cd "$work/pkg-copy" && npm ci --offline --no-audit --no-fund --silent && npm pack --offline --silent --pack-destination "$work" >/dev/null)
contents="$(tar -tzf "$work"/wirecall-client-*.tgz | sort | tr '\n' ' ')"
for f in package/dist/wirecall.js package/dist/wirecall.d.ts package/README.md package/package.json; do
  case " $contents" in
    *" $f "*) ;;
    *) echo "the packed package lacks $f: $contents" >&2; exit 1 ;;
  esac
done
mkdir -p "$work/pkg-user"
printf '{"name":"pkg-user","private":true,"type":"module"}\n' > "$work/pkg-user/package.json"
npm install --offline --no-audit --no-fund --silent --prefix "$work/pkg-user" "$work"/wirecall-client-*.tgz
"$wirecall" gen ts examples/idl/calculator.wire --out "$work/pkg-user/src" --runtime-import @wirecall/client
cat > "$work/pkg-user/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "lib": ["ES2022"],
    "types": [], "strict": true, "noUncheckedIndexedAccess": true, "exactOptionalPropertyTypes": true,
    "rootDir": "src", "outDir": "dist"
  },
  "include": ["src/*.ts"]
}
JSON
"$tsc" -p "$work/pkg-user"
PKG_USER="$work/pkg-user" node --experimental-websocket --test "$here/package.test.mjs"

step "compatibility: the version 1 TypeScript client against a version 2 server (docs/EVOLUTION.md)"
cargo build -q -p wirecall-tests --example compat_server
mkdir -p "$work/compat/src"
"$wirecall" gen ts tests/compat/compat_v1.wire --out "$work/compat/src"
printf '{"type":"module"}\n' > "$work/compat/package.json"
cat > "$work/compat/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "ES2022", "moduleResolution": "Bundler", "lib": ["ES2022", "DOM"],
    "types": [], "strict": true, "rootDir": "src", "outDir": "dist"
  },
  "include": ["src/*.ts"]
}
JSON
"$tsc" -p "$work/compat"
COMPAT_BIN="$target/debug/examples/compat_server" COMPAT_JS="$work/compat/dist" \
  node --experimental-websocket --test "$here/compat.test.mjs"

step "the server's policy in Node.js: RateLimitedError, idempotent calls retried once, ForbiddenError"
node --experimental-websocket --test "$here/policy.test.mjs"

step "end to end in headless Chromium"
node --test "$here/e2e.test.mjs"

step "signing in and refusals in headless Chromium (calculator serve --token --rate)"
node --test "$here/signin.test.mjs"

step "HTTP fallback in headless Chromium (WebSocket blocked), against the axum example"
node --test "$here/http.test.mjs"
