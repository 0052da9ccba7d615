/**
 * Who owns which subnet: the types every subnet manager and backend share, and the
 * `SubnetManager` seam. The managers live in `subnet/etcd/` and `subnet/kube/`; backends import
 * only these types.
 */
import type { IP4Net, IP6Net } from "./ip.ts";

export type { IP4Net, IP6Net } from "./ip.ts";

/**
 * A network configuration after parsing, validation and defaulting (flannel pkg/subnet/config.go): every default
 * is applied once, so downstream code never sees an unset field of an enabled family.
 */
export interface NetworkConfig {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  readonly enableNFTables: boolean;
  /** Set when `enableIPv4`. */
  readonly network?: IP4Net;
  readonly subnetLen: number;
  /** First allocatable IPv4 subnet address (inclusive). */
  readonly subnetMin: number;
  /** Last allocatable IPv4 subnet address (inclusive). */
  readonly subnetMax: number;
  /** Set when `enableIPv6`. */
  readonly ipv6Network?: IP6Net;
  readonly ipv6SubnetLen: number;
  readonly ipv6SubnetMin: bigint;
  readonly ipv6SubnetMax: bigint;
  /** Lower-cased `Backend.Type` ("udp" when `Backend` is absent, flannel's code default). */
  readonly backendType: string;
  /** The `Backend` object as decoded JSON (`{}` when absent); backends read their own keys. */
  readonly backend: Readonly<Record<string, unknown>>;
}

/** What a node advertises with its lease (flannel pkg/lease/lease.go (LeaseAttrs)). */
export interface LeaseAttrs {
  /** IPv4 public address as a 32-bit number; 0 means unset ("0.0.0.0"). */
  readonly publicIP: number;
  readonly publicIPv6?: bigint;
  readonly backendType?: string;
  /** Compacted JSON text of `BackendData`, kept verbatim for byte compatibility. */
  readonly backendData?: string;
  /** Compacted JSON text of `BackendV6Data`. */
  readonly backendV6Data?: string;
}

/** A subnet lease: who holds which subnet(s), until when. */
export interface Lease {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  readonly subnet: IP4Net;
  readonly ipv6Subnet?: IP6Net;
  readonly attrs: LeaseAttrs;
  /** Expiry as epoch milliseconds; `undefined` for a reservation (no etcd lease, no TTL). */
  readonly expiration?: number;
  /**
   * Where the lease was read, for log lines: `etcd key "/coreos.com/network/subnets/10.5.3.0-24"`
   * or `node "worker-1"` (foreign text already quoted). Not part of what the lease says.
   */
  readonly source?: string;
}

/** One change to the set of leases. A removal carries the last known lease when there is one. */
export interface LeaseEvent {
  readonly type: "added" | "removed";
  readonly lease: Lease;
}

/**
 * What a manager's lease watch yields: either a full snapshot (initial list, or a re-list after
 * the watch fell behind) or incremental events. `LeaseWatcher` turns both into event batches.
 */
export type LeaseWatchResult =
  | { readonly snapshot: readonly Lease[]; readonly events?: undefined }
  | { readonly events: readonly LeaseEvent[]; readonly snapshot?: undefined };

/** Options carrying cancellation, taken by every long-running call. */
export interface SignalOptions {
  readonly signal?: AbortSignal;
}

/** The datastore seam: etcd or Kubernetes. */
export interface SubnetManager {
  /** Human-readable, logged as `Created subnet manager: <name>`. */
  readonly name: string;
  /** Reads (and, in etcd mode, validates) the network configuration. Throws on absence or error. */
  getNetworkConfig(options?: SignalOptions): Promise<NetworkConfig>;
  /** Acquires (or re-acquires) this node's lease advertising `attrs`. */
  acquireLease(attrs: LeaseAttrs, options?: SignalOptions): Promise<Lease>;
  /** All leases: a snapshot first, then events; re-lists when it falls behind; ends on abort. */
  watchLeases(options?: SignalOptions): AsyncIterable<LeaseWatchResult>;
  /**
   * Holds the own lease until aborted. This is where the etcd manager renews it,
   * `--subnet-lease-renew-margin` minutes before it expires (the timing is `renew.ts`). Resolves
   * on abort; rejects with `LeaseRevokedError` when the lease is deleted out from under us.
   */
  completeLease(lease: Lease, options?: SignalOptions): Promise<void>;
  /**
   * Addresses the datastore pins for this node (kube: `node-public-ip` / `node-public-ipv6`
   * annotations); they override `--public-ip` / `--public-ipv6`. Absent in etcd mode.
   */
  storedPublicIPs?(options?: SignalOptions): Promise<{ ipv4?: string; ipv6?: string }>;
  /**
   * The VTEP MACs this node advertised before (kube: from its own `backend-data` annotations), so
   * a recreated vxlan device keeps its MAC. Absent in etcd mode.
   */
  storedMacAddresses?(options?: SignalOptions): Promise<{ v4?: string; v6?: string }>;
}

/** The own lease was deleted by someone else: flannel logs and exits 0. */
export class LeaseRevokedError extends Error {
  constructor(message = "Lease has been revoked", options?: ErrorOptions) {
    super(message, options);
    this.name = "LeaseRevokedError";
  }
}
