/**
 * Pure lease-allocation decisions (flannel pkg/subnet/etcd/local_manager.go (AcquireLease) steps 3-5): which existing lease is ours,
 * whether a subnet fits the config, and which free subnet to take. No I/O.
 */
import { contains4, contains6, type IP4Net, type IP6Net, overlaps4, overlaps6 } from "./ip.ts";
import type { Lease, NetworkConfig } from "./mod.ts";

/** At most this many free candidates are collected before picking one at random (flannel's 100). */
export const MAX_CANDIDATES = 100;

/** Whether an IPv4 subnet is allocatable under `config` (inside [SubnetMin, SubnetMax], right size). */
export function compatible4(config: NetworkConfig, subnet: IP4Net): boolean {
  return subnet.prefix === config.subnetLen && subnet.ip >= config.subnetMin &&
    subnet.ip <= config.subnetMax && (config.network ? contains4(config.network, subnet.ip) : true);
}

/** The IPv6 half of compatibility: IPv6 disabled ⇒ no IPv6 subnet; enabled ⇒ inside the range. */
export function compatible6(config: NetworkConfig, subnet: IP6Net | undefined): boolean {
  if (!config.enableIPv6) return subnet === undefined;
  if (!subnet || !config.ipv6Network) return false;
  return subnet.prefix === config.ipv6SubnetLen && subnet.ip >= config.ipv6SubnetMin &&
    subnet.ip <= config.ipv6SubnetMax && contains6(config.ipv6Network, subnet.ip);
}

/** Whether a lease's subnets are both compatible with `config`. */
export function leaseCompatible(config: NetworkConfig, lease: Lease): boolean {
  return compatible4(config, lease.subnet) && compatible6(config, lease.ipv6Subnet);
}

/** The first lease (in key order) advertising `publicIP`, flannel's reuse-by-PublicIP match. */
export function findLeaseByPublicIP(leases: readonly Lease[], publicIP: number): Lease | undefined {
  return leases.find((l) => l.attrs.publicIP === publicIP);
}

/**
 * The lease this node held before: by PublicIP, or on an IPv6-only node (PublicIP unset) by
 * PublicIPv6, since every IPv6-only lease has PublicIP 0.0.0.0.
 */
export function findOwnLease(
  leases: readonly Lease[],
  publicIP: number,
  publicIPv6: bigint | undefined,
): Lease | undefined {
  if (publicIP !== 0) return findLeaseByPublicIP(leases, publicIP);
  if (publicIPv6 === undefined) return undefined;
  return leases.find((l) => l.attrs.publicIP === 0 && l.attrs.publicIPv6 === publicIPv6);
}

/** Whether any lease's IPv4 subnet overlaps `subnet`. */
export function isLeased4(leases: readonly Lease[], subnet: IP4Net): boolean {
  return leases.some((l) => overlaps4(l.subnet, subnet));
}

/**
 * Up to `MAX_CANDIDATES` free IPv4 subnets from SubnetMin to SubnetMax, in order. Leases of the
 * configured size are looked up in a set, so 5 000 existing leases cost no more than a few.
 */
export function freeSubnets4(config: NetworkConfig, leases: readonly Lease[]): IP4Net[] {
  const size = 2 ** (32 - config.subnetLen);
  const sameSize = new Set<number>();
  const others: IP4Net[] = [];
  for (const l of leases) {
    if (l.subnet.prefix === config.subnetLen) sameSize.add(l.subnet.ip);
    else others.push(l.subnet);
  }
  const out: IP4Net[] = [];
  for (
    let ip = config.subnetMin;
    ip <= config.subnetMax && out.length < MAX_CANDIDATES;
    ip += size
  ) {
    const candidate = { ip, prefix: config.subnetLen };
    if (sameSize.has(ip) || others.some((o) => overlaps4(o, candidate))) continue;
    out.push(candidate);
  }
  return out;
}

/** Up to `MAX_CANDIDATES` free IPv6 subnets from IPv6SubnetMin to IPv6SubnetMax. */
export function freeSubnets6(config: NetworkConfig, leases: readonly Lease[]): IP6Net[] {
  const size = 1n << BigInt(128 - config.ipv6SubnetLen);
  const taken = leases.flatMap((l) => (l.ipv6Subnet ? [l.ipv6Subnet] : []));
  const out: IP6Net[] = [];
  for (
    let ip = config.ipv6SubnetMin;
    ip <= config.ipv6SubnetMax && out.length < MAX_CANDIDATES;
    ip += size
  ) {
    const candidate = { ip, prefix: config.ipv6SubnetLen };
    if (!taken.some((t) => overlaps6(t, candidate))) out.push(candidate);
  }
  return out;
}

/**
 * Thrown when no subnet is free; the message keeps flannel's `out of subnets` and names where the
 * leases are (`/coreos.com/network/subnets`).
 */
export class OutOfSubnetsError extends Error {
  constructor(config: NetworkConfig, leasesAt: string) {
    super(
      `out of subnets: every /${config.subnetLen} between SubnetMin and SubnetMax is leased; ` +
        `remove stale leases under ${leasesAt} or widen Network/SubnetMin/SubnetMax`,
    );
    this.name = "OutOfSubnetsError";
  }
}

export interface PickOptions {
  /** Where the leases are stored, for the `out of subnets` message. */
  leasesAt: string;
  /** Returns [0, 1); injectable for tests (default `Math.random`). */
  random?: () => number;
}

/**
 * Picks a free subnet (and IPv6 subnet when enabled) uniformly at random among the first free
 * candidates.
 */
export function pickFreeSubnet(
  config: NetworkConfig,
  leases: readonly Lease[],
  options: PickOptions,
): { subnet: IP4Net; ipv6Subnet?: IP6Net } {
  const random = options.random ?? Math.random;
  // IPv6-only: every lease carries the same empty IPv4 subnet 0.0.0.0/0 (its key names both).
  const v4 = config.enableIPv4 ? freeSubnets4(config, leases) : [{ ip: 0, prefix: 0 }];
  const v6 = config.enableIPv6 ? freeSubnets6(config, leases) : [];
  if (v4.length === 0 || (config.enableIPv6 && v6.length === 0)) {
    throw new OutOfSubnetsError(config, options.leasesAt);
  }
  const subnet = v4[Math.floor(random() * v4.length)];
  if (!config.enableIPv6) return { subnet };
  return { subnet, ipv6Subnet: v6[Math.floor(random() * v6.length)] };
}
