/**
 * Whether a peer's lease may become kernel state. Every field a peer controls is checked here,
 * once, before any backend programs anything: the subnet (from the etcd key or the podCIDR), the
 * public addresses, the backend type and, through a backend's own check, the backend data. A
 * lease that fails names the field, the value and why it is unusable. Pure functions, no I/O.
 *
 * Deliberately accepted: link-local public addresses (169.254.0.0/16, fe80::/10). They are
 * dubious but work on a shared link (some lab and cloud underlays use them), and a peer could
 * name any other reachable address just as well; the refused ranges below can never be one
 * peer's unicast address.
 */
import ipaddr from "ipaddr.js";
import { describeError } from "../util/log.ts";
import { quote } from "../util/quote.ts";
import {
  contains4,
  contains6,
  formatIP4,
  formatIP4Net,
  formatIP6,
  formatIP6Net,
  type IP4Net,
  type IP6Net,
  mask4,
  mask6,
  netEqual,
  overlaps4,
  overlaps6,
} from "./ip.ts";
import { subnetKeyOf } from "./lease_watcher.ts";
import type { Lease, NetworkConfig } from "./mod.ts";

/** Why IPv4 `ip` cannot be a peer's public address, or undefined when it can. */
export function publicIPProblem(ip: number): string | undefined {
  const octets = [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  switch (new ipaddr.IPv4(octets).range()) {
    case "unspecified":
      return ip === 0 ? "is unset (0.0.0.0)" : 'is in 0.0.0.0/8 ("this network")';
    case "loopback":
      return "is a loopback address";
    case "multicast":
      return "is a multicast address";
    case "broadcast":
      return "is the broadcast address";
  }
  // ipaddr.js files 240/4 under "reserved" together with the documentation ranges, which
  // test clusters do use; only 240/4 is never assigned.
  return octets[0] >= 240 ? "is in the reserved range 240.0.0.0/4" : undefined;
}

/** Why IPv6 `ip` cannot be a peer's public address, or undefined when it can. */
export function publicIPv6Problem(ip: bigint): string | undefined {
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((ip >> BigInt(i * 16)) & 0xffffn));
  switch (new ipaddr.IPv6(parts).range()) {
    case "unspecified":
      return "is unset (::)";
    case "loopback":
      return "is the loopback address";
    case "multicast":
      return "is a multicast address";
    case "ipv4Mapped":
      return "is an IPv4-mapped address (advertise it as PublicIP instead)";
  }
  return undefined;
}

/** What a peer lease is checked against. */
export interface PeerLeaseRules {
  readonly config: NetworkConfig;
  /** The own lease: nothing may overlap it. */
  readonly own: Lease;
  /** The `BackendType`s accepted; `""` accepts a lease without one (flannel's udp writes none). */
  readonly backendTypes: readonly [string, ...string[]];
  /** The backend's check of `BackendData`/`BackendV6Data`; throws naming what is wrong. */
  readonly checkBackendData?: (lease: Lease) => void;
}

function hostBits4(net: IP4Net): boolean {
  return ((net.ip & ~mask4(net.prefix)) >>> 0) !== 0;
}

function hostBits6(net: IP6Net): boolean {
  return (net.ip & ~mask6(net.prefix)) !== 0n;
}

/** The subnet(s) of a lease as text: `10.5.3.0/24`, `10.5.3.0/24 and fd00:5:3::/64`. */
export function describeSubnets(lease: Lease): string {
  const parts: string[] = [];
  if (lease.enableIPv4) parts.push(formatIP4Net(lease.subnet));
  if (lease.enableIPv6 && lease.ipv6Subnet) parts.push(formatIP6Net(lease.ipv6Subnet));
  return parts.join(" and ") || formatIP4Net(lease.subnet);
}

/**
 * Whether `lease` is the own lease as the datastore reports it back: from the same source (etcd
 * key, node) when the lease names one, else with the same subnets. Another node announcing our
 * subnet is not.
 */
export function isOwnLease(lease: Lease, own: Lease): boolean {
  if (lease.source !== undefined) return lease.source === own.source;
  return subnetKeyOf(lease) === subnetKeyOf(own);
}

/**
 * Why a remote lease (not `isOwnLease`) must not be programmed, or undefined when it may be.
 * Checked in this order: backend type, subnets (a network
 * address inside the Network, not overlapping ours), public addresses (usable unicast, not
 * inside the announced subnet or ours, not ours: a Network that also covers the hosts' own
 * addresses is sloppy but works, so an address elsewhere in the Network is accepted), then the
 * backend's check of its data.
 */
export function peerLeaseProblem(lease: Lease, rules: PeerLeaseRules): string | undefined {
  const { config, own } = rules;
  const type = lease.attrs.backendType ?? "";
  if (!rules.backendTypes.includes(type)) {
    return `it is a non-${rules.backendTypes[0]} subnet (type=${quote(type)})`;
  }
  if (lease.enableIPv4 && config.enableIPv4) {
    const net = lease.subnet, shown = formatIP4Net(net);
    const network = config.network;
    if (hostBits4(net)) return `subnet ${shown} is not a network address (host bits set)`;
    if (network && (net.prefix < network.prefix || !contains4(network, net.ip))) {
      return `subnet ${shown} is outside the Network ${formatIP4Net(network)}`;
    }
    if (own.enableIPv4 && overlaps4(net, own.subnet)) {
      return netEqual(net, own.subnet)
        ? `it announces our own subnet ${shown}`
        : `subnet ${shown} overlaps our own subnet ${formatIP4Net(own.subnet)}`;
    }
    const ip = lease.attrs.publicIP >>> 0, ipText = formatIP4(ip);
    const why = publicIPProblem(ip);
    if (why) return `PublicIP ${ipText} ${why}`;
    if (contains4(net, ip) || (own.enableIPv4 && contains4(own.subnet, ip))) {
      return `PublicIP ${ipText} lies inside ${
        contains4(net, ip) ? "the subnet it announces" : "our own subnet"
      } (it would be reached through the overlay itself)`;
    }
    if (ip === own.attrs.publicIP) return `PublicIP ${ipText} is this node's own address`;
  }
  if (lease.enableIPv6 && config.enableIPv6) {
    const net = lease.ipv6Subnet;
    if (!net) return "it has no IPv6 subnet";
    const shown = formatIP6Net(net), network = config.ipv6Network;
    if (hostBits6(net)) return `IPv6 subnet ${shown} is not a network address (host bits set)`;
    if (network && (net.prefix < network.prefix || !contains6(network, net.ip))) {
      return `IPv6 subnet ${shown} is outside the IPv6Network ${formatIP6Net(network)}`;
    }
    if (own.ipv6Subnet && overlaps6(net, own.ipv6Subnet)) {
      return `IPv6 subnet ${shown} overlaps our own subnet ${formatIP6Net(own.ipv6Subnet)}`;
    }
    const ip = lease.attrs.publicIPv6;
    if (ip === undefined) return "its PublicIPv6 is missing";
    const why = publicIPv6Problem(ip);
    if (why) return `PublicIPv6 ${formatIP6(ip)} ${why}`;
    if (contains6(net, ip) || (own.ipv6Subnet && contains6(own.ipv6Subnet, ip))) {
      return `PublicIPv6 ${formatIP6(ip)} lies inside ${
        contains6(net, ip) ? "the subnet it announces" : "our own subnet"
      }`;
    }
    if (ip === own.attrs.publicIPv6) {
      return `PublicIPv6 ${formatIP6(ip)} is this node's own address`;
    }
  }
  try {
    rules.checkBackendData?.(lease);
  } catch (err) {
    return describeError(err);
  }
  return undefined;
}
