/**
 * The data types and the {@link Netlink} seam. Addresses cross this seam as text
 * (`"10.1.2.3"`, `"fd00::1"`, CIDRs as `"10.1.0.0/24"`, MACs as `"aa:bb:cc:dd:ee:ff"`): that is
 * what `ip` prints, it makes test failures readable, and it keeps this folder a leaf that needs
 * none of the project's IP maths. Outputs are canonical (lower-case MAC, compressed IPv6, a
 * route's `dst` always with its prefix length).
 */

/** Address family: 4 (AF_INET) or 6 (AF_INET6). */
export type Family = 4 | 6;

/** VXLAN attributes of a link, as `ip -d link show` prints them. */
export interface VxlanInfo {
  /** VNI (`id`). */
  readonly vni: number;
  /** Source address (`local`), IPv4 or IPv6. */
  readonly local?: string;
  /** Underlay device index (`dev`). */
  readonly dev?: number;
  /** UDP destination port (`dstport`). */
  readonly port: number;
  /** false for `nolearning`. */
  readonly learning: boolean;
  /** Group Based Policy extension (`gbp`). */
  readonly gbp: boolean;
}

/** A network interface (`ip -d link show`). */
export interface Link {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  /** IFF_UP is set (administratively up). */
  readonly up: boolean;
  /** IFF_* flags word. */
  readonly flags: number;
  /** Hardware address, if the link has one. */
  readonly mac?: string;
  /** `IFLA_INFO_KIND`: "vxlan", "dummy", "bridge", ...; absent for physical devices. */
  readonly kind?: string;
  /** Index of the master (bridge) device. */
  readonly master?: number;
  /** Present when `kind` is "vxlan". */
  readonly vxlan?: VxlanInfo;
}

interface LinkSpecBase {
  readonly name: string;
  readonly mtu?: number;
  /** Hardware address to set at creation (`address MAC`). */
  readonly mac?: string;
}

/** `ip link add NAME type dummy`. */
export interface DummyLinkSpec extends LinkSpecBase {
  readonly kind: "dummy";
}

/** `ip link add NAME type bridge`. */
export interface BridgeLinkSpec extends LinkSpecBase {
  readonly kind: "bridge";
}

/** `ip link add NAME type vxlan id VNI [local ADDR] [dev IDX] dstport PORT nolearning [gbp]`. */
export interface VxlanLinkSpec extends LinkSpecBase {
  readonly kind: "vxlan";
  readonly vni: number;
  readonly local?: string;
  /** Underlay device index. */
  readonly dev?: number;
  /** Default 8472 (the Linux default, and flannel's). */
  readonly port?: number;
  /** Default false (`nolearning`). */
  readonly learning?: boolean;
  readonly gbp?: boolean;
}

export type LinkSpec = DummyLinkSpec | BridgeLinkSpec | VxlanLinkSpec;

/** What `linkSet` changes; absent fields are left alone. */
export interface LinkChange {
  /** `ip link set dev X up` / `down`. */
  readonly up?: boolean;
  /** `ip link set dev X mtu N`. */
  readonly mtu?: number;
  /** `ip link set dev X address MAC`. */
  readonly mac?: string;
}

/** An interface address (`ip addr show`). */
export interface Address {
  /** Interface index. */
  readonly index: number;
  /** Address with prefix length, e.g. `"10.5.3.0/32"`. */
  readonly address: string;
  /** `scope`: 0 global (default), 253 link, 254 host. */
  readonly scope?: number;
  /** `label`, IPv4 only. */
  readonly label?: string;
  /**
   * IFA_F_* word ({@link IFA_F}): read from the 32-bit IFA_FLAGS attribute when the kernel sends
   * it, else from the 8-bit `ifa_flags` header. On add, the kernel honours only the settable bits
   * (`nodad`, `mngtmpaddr`, `noprefixroute`, ...) and adds `permanent` itself.
   */
  readonly flags?: number;
}

/** IFA_F_* address flags (linux/if_addr.h), as `ip addr` prints them. */
export const IFA_F = {
  /** IPv6 `temporary` (privacy address); the same bit means `secondary` for IPv4. */
  TEMPORARY: 0x01,
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  /** Not from autoconfiguration: added by hand with an infinite lifetime (`ip` prints nothing). */
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
} as const;

/** Route types this layer knows by name; others read back as their number. */
export type RouteType =
  | "unicast"
  | "local"
  | "broadcast"
  | "blackhole"
  | "unreachable"
  | "prohibit";

/** A route (`ip route show`). */
export interface Route {
  /** Destination with prefix length (`"10.5.3.0/24"`, `"0.0.0.0/0"`); a bare address means /32 or /128. */
  readonly dst: string;
  /** `via`. */
  readonly gateway?: string;
  /** `dev`: output interface index. */
  readonly index?: number;
  /** `onlink`: the gateway is on the link even though no address says so. */
  readonly onlink?: boolean;
  /** `table`, default 254 (main). */
  readonly table?: number;
  /** `proto`: our routes carry our own number; default 3 (boot) as with `ip route`. */
  readonly protocol?: number;
  /** `scope`: default 0 (global), or 253 (link) for a unicast route with neither gateway nor onlink. */
  readonly scope?: number;
  /** `type`, default "unicast". */
  readonly type?: RouteType | number;
  /** `metric` (RTA_PRIORITY); default 0 for IPv4, 1024 for IPv6 (the kernel's choice). */
  readonly metric?: number;
  /** `src`: preferred source address. */
  readonly src?: string;
}

/** Which routes `routes()` returns; every field narrows. */
export interface RouteFilter {
  /** Only this family; default both. */
  readonly family?: Family;
  /** Only this table; default 254 (main). Use 0 for every table. */
  readonly table?: number;
  readonly protocol?: number;
  /** Output interface index (`dev`). */
  readonly index?: number;
  /** Exactly this destination (`"10.5.3.0/24"`). */
  readonly dst?: string;
}

/** An ARP / NDP entry (`ip neigh`). */
export interface Neigh {
  readonly index: number;
  readonly ip: string;
  /** `lladdr`; absent for incomplete entries. */
  readonly mac?: string;
  /** NUD_* state word; 0x80 (permanent) when written by this layer. */
  readonly state?: number;
}

/** A bridge forwarding entry on a VXLAN device (`bridge fdb ... self`). */
export interface Fdb {
  readonly index: number;
  readonly mac: string;
  /** `dst`: the remote VTEP. */
  readonly dst?: string;
  /** NUD_* state word; 0x80 (permanent) when written by this layer. */
  readonly state?: number;
}

/** A notification group to subscribe to. */
export type EventGroup =
  | "link"
  | "ipv4-address"
  | "ipv6-address"
  | "ipv4-route"
  | "ipv6-route"
  | "neigh";

export type ChangeOp = "new" | "del";

/**
 * A kernel change notification. `resync` means notifications were lost (ENOBUFS or a truncated
 * read): reconcile everything from a fresh dump.
 */
export type KernelEvent =
  | { readonly kind: "link"; readonly op: ChangeOp; readonly link: Link }
  | { readonly kind: "address"; readonly op: ChangeOp; readonly address: Address }
  | { readonly kind: "route"; readonly op: ChangeOp; readonly route: Route }
  | { readonly kind: "neigh"; readonly op: ChangeOp; readonly neigh: Neigh }
  | { readonly kind: "fdb"; readonly op: ChangeOp; readonly fdb: Fdb }
  | { readonly kind: "resync" };

export interface SubscribeOptions {
  /** Ends the iteration and closes the subscription socket. */
  signal?: AbortSignal;
  /** Socket receive buffer in bytes; default 4 MiB. Small values make `resync` likelier. */
  receiveBufferSize?: number;
}

/**
 * Kernel routing, link, address, neighbour and FDB programming: one method per `ip` command.
 * Failures throw `NetlinkError` or a subclass (`ExistsError`, `NotFoundError`,
 * `PermissionDeniedError`) from `errors.ts`.
 */
export interface Netlink {
  /** `ip link show dev NAME`; undefined when there is no such link. */
  linkByName(name: string): Promise<Link | undefined>;
  /** `ip link show` of the link with this index; undefined when there is none. */
  linkByIndex(index: number): Promise<Link | undefined>;
  /** `ip -d link show`. */
  links(): Promise<Link[]>;
  /** `ip link add NAME [address MAC] [mtu N] type dummy|bridge|vxlan ...`; ExistsError if taken. */
  linkAdd(spec: LinkSpec): Promise<void>;
  /** `ip link del dev IDX`. */
  linkDelete(index: number): Promise<void>;
  /** `ip link set dev IDX [up|down] [mtu N] [address MAC]`. */
  linkSet(index: number, change: LinkChange): Promise<void>;
  /** `ip [-4|-6] addr show [dev IDX]`. */
  addresses(index?: number, family?: Family): Promise<Address[]>;
  /** `ip addr add ADDR/LEN dev IDX [scope S]`; ExistsError if present. */
  addressAdd(address: Address): Promise<void>;
  /** `ip addr del ADDR/LEN dev IDX`; NotFoundError if absent. */
  addressDelete(address: Address): Promise<void>;
  /** `ip route show [table T] [proto P] [dev IDX] [DST]` (both families unless filtered). */
  routes(filter?: RouteFilter): Promise<Route[]>;
  /** `ip route add ...`; ExistsError if a route with the same key exists. */
  routeAdd(route: Route): Promise<void>;
  /** `ip route replace DST [via GW] [dev IDX] [onlink] [scope S] [table T] [proto P] [metric M]`. */
  routeReplace(route: Route): Promise<void>;
  /** `ip route del DST [via GW] [dev IDX] [table T] [proto P]`; NotFoundError if absent. */
  routeDelete(route: Route): Promise<void>;
  /** `ip route get ADDR`; undefined when unreachable. */
  routeGet(dst: string): Promise<Route | undefined>;
  /** `ip neigh show [dev IDX]` (IPv4 and IPv6). */
  neighs(index?: number): Promise<Neigh[]>;
  /** `ip neigh replace IP lladdr MAC dev IDX nud permanent`. */
  neighReplace(neigh: Neigh): Promise<void>;
  /** `ip neigh del IP dev IDX`; NotFoundError if absent. */
  neighDelete(neigh: Neigh): Promise<void>;
  /** `bridge fdb show [dev IDX]`. */
  fdbs(index?: number): Promise<Fdb[]>;
  /** `bridge fdb replace MAC dev IDX dst IP self permanent`. */
  fdbReplace(fdb: Fdb): Promise<void>;
  /**
   * `bridge fdb del MAC dev IDX [dst IP] self`; NotFoundError if the MAC is absent. With `dst`
   * only that remote is removed, and the kernel silently ignores a `dst` the entry lacks.
   */
  fdbDelete(fdb: Fdb): Promise<void>;
  /**
   * `ip monitor`: change notifications for `groups` until `signal` aborts. Membership starts
   * when this returns, so subscribe first and dump second to miss nothing.
   */
  subscribe(groups: readonly EventGroup[], options?: SubscribeOptions): AsyncIterable<KernelEvent>;
  /** Closes the request socket; later calls fail. */
  close(): void;
}
