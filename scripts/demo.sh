#!/usr/bin/env bash
# The first command on a fresh Debian/Ubuntu machine, as root: installs what the demo needs and
# this machine lacks (the pinned Deno, etcd, iproute2, iptables, nftables, ping, iperf3), then
# runs it: several hosts in network namespaces on one machine, a local etcd, the agent on each.
#
#   scripts/demo.sh [--backend host-gw|vxlan|udp] [--hosts N] [--kube | --dual-stack]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh
setup demo
exec deno task --quiet demo "$@"
