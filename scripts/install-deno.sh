#!/usr/bin/env bash
# Installs the pinned Deno when no Deno of the same minor version is on PATH: from the npm package
# `deno` where npm exists, else with Deno's official installer (needs curl and unzip). Links it as
# $DENO_LINK_DIR/deno and prints the path of the deno binary on stdout; messages go to stderr.
#
#   scripts/install-deno.sh            install when needed, print the binary's path
#   scripts/install-deno.sh --check    exit 0 when a suitable deno is on PATH, 1 otherwise
#   scripts/install-deno.sh --dry-run  say what it would install (nothing when deno is there)
#
# DENO_VERSION (2.9.6), DENO_PREFIX (/opt/deno-npm, or /opt/deno for the official installer),
# DENO_LINK_DIR (/usr/local/bin).
set -euo pipefail
DENO_VERSION="${DENO_VERSION:-2.9.6}"
LINK_DIR="${DENO_LINK_DIR:-/usr/local/bin}"
mode=${1:-install}

fail() {
	echo "setup: could not install Deno $DENO_VERSION $*" >&2
	exit 1
}

suitable() {
	command -v deno >/dev/null 2>&1 &&
		deno --version 2>/dev/null | sed -n 1p | grep -q "^deno ${DENO_VERSION%.*}\."
}

if suitable; then
	[ "$mode" = install ] && command -v deno
	exit 0
fi
[ "$mode" = --check ] && exit 1

if command -v npm >/dev/null 2>&1; then
	how="npm package deno"
	prefix="${DENO_PREFIX:-/opt/deno-npm}"
else
	how="Deno's official installer"
	prefix="${DENO_PREFIX:-/opt/deno}"
fi
if [ "$mode" = --dry-run ]; then
	echo "setup: would install Deno $DENO_VERSION ($how) into $prefix" >&2
	exit 0
fi
mkdir -p "$prefix" 2>/dev/null && [ -w "$prefix" ] ||
	fail "into $prefix: cannot write there (run as root, or set DENO_PREFIX)"
echo "setup: installing Deno $DENO_VERSION ($how) into $prefix" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
last_line() { grep -v '^\s*$' "$log" | tail -1; }

if [ "$how" = "npm package deno" ]; then
	[ -f "$prefix/package.json" ] || echo '{"private":true}' >"$prefix/package.json"
	(cd "$prefix" && npm install --no-audit --no-fund --silent "deno@${DENO_VERSION}") >"$log" 2>&1 ||
		fail "from npm (no network?): $(last_line)"
	bin=$(ls "$prefix"/node_modules/@deno/linux-*/deno 2>/dev/null | head -1 || true)
else
	command -v curl >/dev/null 2>&1 || fail "with Deno's official installer: curl is missing"
	curl -fsSL https://deno.land/install.sh 2>"$log" |
		DENO_INSTALL="$prefix" sh -s "v${DENO_VERSION}" >>"$log" 2>&1 ||
		fail "with Deno's official installer (https://deno.land/install.sh; no network?): $(last_line)"
	bin="$prefix/bin/deno"
fi
[ -n "$bin" ] && "$bin" --version 2>/dev/null | sed -n 1p | grep -q "^deno ${DENO_VERSION}\b" ||
	fail "($how): no working deno $DENO_VERSION binary under $prefix"
ln -sf "$bin" "$LINK_DIR/deno" 2>/dev/null || true
echo "$bin"
