#!/usr/bin/env bash
# The second command on a fresh Debian/Ubuntu machine (and what CI runs, through .ci/run):
# installs what the tests need and this machine lacks, then lint, type-check and every test
# (root-only end-to-end tests skip without root).
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh
setup test
deno --version | sed -n 1p
deno task lint
deno task check
deno task test
