#!/usr/bin/env bash
# Installs the real WAMP clients the WAMP tests drive (tests/tests/wamp.rs):
# Autobahn|Python (asyncio) from PyPI in a venv, and Autobahn|JS from npm. Idempotent;
# `.ci/run` runs it, and the test runs it when they are missing (it says SKIPPED if that
# fails, e.g. with no network). The venv is target/wamp-venv (WAMP_VENV overrides).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WAMP_VENV:-$root/target/wamp-venv}"
if ! "$venv/bin/python" -c "import autobahn.asyncio" 2>/dev/null; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "autobahn==26.11.1"
fi
"$venv/bin/python" -c "import autobahn; print('autobahn (python)', autobahn.__version__)"
if [ ! -f "$here/node_modules/autobahn/package.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --silent
fi
node -e "console.log('autobahn (js)', require('$here/node_modules/autobahn/package.json').version)"
