/**
 * The desired kernel state for one remote vxlan host (flannel pkg/backend/vxlan/vxlan_network.go), as pure data: a tunnel
 * peer needs a neighbour entry, an FDB entry and an onlink route on the VXLAN device; a direct
 * peer (DirectRouting, on the same L2 segment) a plain route via its public IP.
 */
import type { Family, Fdb, Neigh, Route } from "../../kernel/netlink/types.ts";
import { formatIP4, formatIP4Net, formatIP6, formatIP6Net } from "../../subnet/ip.ts";
import type { Lease } from "../../subnet/mod.ts";
import { ROUTE_PROTOCOL } from "../mod.ts";
import { decodeBackendData } from "./backend_data.ts";

/** NUD_PERMANENT. */
export const NUD_PERMANENT = 0x80;

/** One remote host as this backend programs it. */
export interface Peer {
  /** The peer's subnet, `"10.244.2.0/24"` (or IPv6): the key of every table here. */
  readonly dst: string;
  /** The subnet's network address, `"10.244.2.0"`: the tunnel route's gateway. */
  readonly gateway: string;
  readonly publicIP: string;
  readonly vtepMac: string;
  /** Set when DirectRouting applies: the underlay device the peer is reached on. */
  readonly directIndex?: number;
}

/**
 * Reads a vxlan lease into a peer of `family` (IPv4: subnet, PublicIP, BackendData; IPv6: IPv6
 * subnet, PublicIPv6, BackendV6Data); throws naming what is wrong with its data or VNI.
 */
export function peerFromLease(lease: Lease, vni: number, family: Family = 4): Peer {
  const data = family === 4
    ? decodeBackendData(lease.attrs.backendData)
    : decodeBackendData(lease.attrs.backendV6Data, "BackendV6Data");
  if (data.vni !== vni) {
    throw new RangeError(`its VNI ${data.vni} differs from ours (${vni})`);
  }
  if (family === 4) {
    return {
      dst: formatIP4Net(lease.subnet),
      gateway: formatIP4(lease.subnet.ip),
      publicIP: formatIP4(lease.attrs.publicIP),
      vtepMac: data.vtepMac,
    };
  }
  const net = lease.ipv6Subnet, ip = lease.attrs.publicIPv6;
  if (!net || ip === undefined) throw new TypeError("the lease has no IPv6 subnet or PublicIPv6");
  return {
    dst: formatIP6Net(net),
    gateway: formatIP6(net.ip),
    publicIP: formatIP6(ip),
    vtepMac: data.vtepMac,
  };
}

/** `ip neigh replace <subnet addr> lladdr <VtepMAC> dev flannel.<VNI> nud permanent`. */
export function neighFor(peer: Peer, devIndex: number): Neigh {
  return { index: devIndex, ip: peer.gateway, mac: peer.vtepMac, state: NUD_PERMANENT };
}

/** `bridge fdb replace <VtepMAC> dev flannel.<VNI> dst <public IP> self permanent`. */
export function fdbFor(peer: Peer, devIndex: number): Fdb {
  return { index: devIndex, mac: peer.vtepMac, dst: peer.publicIP, state: NUD_PERMANENT };
}

/**
 * Tunnel: `<subnet> via <subnet addr> dev flannel.<VNI> onlink`; direct: `<subnet> via
 * <public IP> dev <underlay>`. Both carry our protocol number.
 */
export function routeFor(peer: Peer, devIndex: number): Route {
  if (peer.directIndex !== undefined) {
    return {
      dst: peer.dst,
      gateway: peer.publicIP,
      index: peer.directIndex,
      protocol: ROUTE_PROTOCOL,
    };
  }
  return {
    dst: peer.dst,
    gateway: peer.gateway,
    index: devIndex,
    onlink: true,
    protocol: ROUTE_PROTOCOL,
  };
}

/** Equality of the route fields we set (the kernel fills in scope, metric, ...). */
export function sameRouteAs(have: Route | undefined, want: Route): boolean {
  return have !== undefined && have.dst === want.dst && have.gateway === want.gateway &&
    have.index === want.index && (have.table ?? 254) === 254 &&
    (have.type ?? "unicast") === "unicast" && (have.onlink ?? false) === (want.onlink ?? false);
}

export function sameNeighAs(have: Neigh | undefined, want: Neigh): boolean {
  return have !== undefined && have.mac === want.mac &&
    ((have.state ?? 0) & NUD_PERMANENT) !== 0;
}

export function sameFdbAs(have: Fdb | undefined, want: Fdb): boolean {
  return have !== undefined && have.mac === want.mac && have.dst === want.dst &&
    ((have.state ?? 0) & NUD_PERMANENT) !== 0;
}
