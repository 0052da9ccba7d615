#!/usr/bin/env bash
# Installs the pinned Deno from the npm package `deno` when no suitable deno is on PATH.
# Usage: scripts/install-deno.sh   (prints the path of the deno binary it found or installed)
set -euo pipefail
DENO_VERSION="${DENO_VERSION:-2.9.6}"
PREFIX="${DENO_PREFIX:-/opt/deno-npm}"

if command -v deno >/dev/null 2>&1 && deno --version | head -1 | grep -q "^deno 2\.9\."; then
  command -v deno
  exit 0
fi
mkdir -p "$PREFIX"
cd "$PREFIX"
[ -f package.json ] || echo '{"private":true}' > package.json
npm install --no-audit --no-fund --silent "deno@${DENO_VERSION}" >&2
bin=$(ls "$PREFIX"/node_modules/@deno/linux-*/deno 2>/dev/null | head -1)
[ -x "$bin" ] || { echo "install-deno: the deno binary was not found under $PREFIX/node_modules/@deno" >&2; exit 1; }
ln -sf "$bin" /usr/local/bin/deno 2>/dev/null || true
echo "$bin"
