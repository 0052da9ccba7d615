/**
 * Backends turn leases into kernel state. This module holds the backend seam, the constants every
 * backend shares, and the type → module registry; each backend lives in its own module, loaded by
 * the config's `Backend.Type` with a literal dynamic import so `deno compile` includes it. Every
 * backend runs its peers through the one loop in `reconcile_loop.ts`, supplying only its policy.
 */
import type { Lease, NetworkConfig, SignalOptions, SubnetManager } from "../subnet/mod.ts";
import type { Logger } from "../util/log.ts";
import type { FlannelMetrics } from "../util/metrics.ts";
import type { Netlink } from "../kernel/netlink/types.ts";
import { clip } from "../util/quote.ts";

/**
 * `proto 101` in `ip route`: marks every route this agent installs, so cleanup removes routes of
 * a previous run that match no lease and never touches routes we did not create. Not assigned in
 * iproute2's `rt_protos`; flannel itself uses the default `boot` (3).
 */
export const ROUTE_PROTOCOL = 101;

/** flannel's reconciliation period: the full sweep of every backend runs this often. */
export const RECONCILE_INTERVAL_MS = 10_000;

/** After a failed reconcile pass the next one comes this soon, doubling up to the maximum. */
export const RETRY_BACKOFF_MS = { initial: 100, max: 10_000 } as const;

/** The host's interface for inter-host traffic and the addresses it advertises (flannel pkg/backend/route_network.go). */
export interface ExternalInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  /** IPv4 address on the interface (number), if any. */
  readonly ifaceAddr?: number;
  readonly ifaceV6Addr?: bigint;
  /** Advertised IPv4: `--public-ip`, else `ifaceAddr`. */
  readonly extAddr?: number;
  readonly extV6Addr?: bigint;
}

/**
 * What a backend gets to work with: the agent (`agent.ts`) hands it the dependencies `main.ts`
 * built once, plus the external interface it chose.
 */
export interface BackendDeps {
  readonly subnetManager: SubnetManager;
  readonly extIface: ExternalInterface;
  readonly log: Logger;
  /** Where reconcile passes, peers and restorations are counted. */
  readonly metrics: FlannelMetrics;
  /** Kernel access (rtnetlink); the in-memory fake in tests. */
  readonly netlink: Netlink;
}

/** A network registered by a backend: the lease it holds, its MTU and its data-path loop. */
export interface Network {
  readonly lease: Lease;
  /** The MTU pods should use (`FLANNEL_MTU`). */
  readonly mtu: number;
  /** Watches peers and programs the data path until aborted. */
  run(options?: SignalOptions): Promise<void>;
}

/** A backend has one job: register the network (set up devices, acquire the lease). */
export interface Backend {
  registerNetwork(config: NetworkConfig, options?: SignalOptions): Promise<Network>;
}

export type BackendFactory = (deps: BackendDeps) => Backend | Promise<Backend>;

/** Raised for a `Backend.Type` no module implements. */
export class UnknownBackendError extends Error {
  constructor(type: string) {
    super(
      `unknown backend type: ${clip(type)} (known types: ${
        Object.keys(registry).join(", ")
      }); set "Backend": {"Type": ...} in the network config to one of them`,
    );
    this.name = "UnknownBackendError";
  }
}

const registry: Record<string, () => Promise<{ default: BackendFactory }>> = {
  alloc: () => import("./alloc.ts"),
  "host-gw": () => import("./host_gw.ts"),
  udp: () => import("./udp/mod.ts"),
  vxlan: () => import("./vxlan/mod.ts"),
};

/** Loads the backend module for `type` (case-insensitive) and returns its factory. */
export async function loadBackend(type: string): Promise<BackendFactory> {
  const load = registry[type.toLowerCase()];
  if (!load) throw new UnknownBackendError(type);
  return (await load()).default;
}
