/**
 * The vxlan network (flannel pkg/backend/vxlan/vxlan_network.go, plus self-healing): the reconcile loop
 * (`../reconcile_loop.ts`) with a peer per remote vxlan lease as its policy. Every change runs
 * the full sweep, which compares before it writes.
 *
 * The sweep first makes sure the device exists, is up and carries its address (recreating it if
 * it was deleted: the kernel then dropped every neighbour, FDB entry and route through it, and the
 * sweep re-programs them all); then dumps routes (our protocol), neighbours and FDB entries once
 * and writes only what is missing or different, per peer in flannel's order (neighbour, FDB,
 * route), undoing the peer's writes when a later step fails. Once the lease list is known it
 * removes what matches no peer: our routes, and permanent neighbour/FDB entries on the device
 * (which covers a removed peer and the stale entries of a peer's old MAC).
 */
import type {
  Family,
  Fdb,
  KernelEvent,
  Neigh,
  Netlink,
  Route,
} from "../../kernel/netlink/types.ts";
import { formatIP4Net, formatIP6Net } from "../../subnet/ip.ts";
import type { Lease, NetworkConfig, SubnetManager } from "../../subnet/mod.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { FlannelMetrics } from "../../util/metrics.ts";
import { LeaseIntake } from "../_lease_intake.ts";
import { ROUTE_PROTOCOL } from "../mod.ts";
import {
  type Concern,
  type Pass,
  ReconcileLoop,
  type ReconcilePolicy,
  type ReconcileStats,
  type ReconcileView,
} from "../reconcile_loop.ts";
import type { VxlanDevice } from "./device.ts";
import {
  fdbFor,
  neighFor,
  NUD_PERMANENT,
  type Peer,
  peerFromLease,
  routeFor,
  sameFdbAs,
  sameNeighAs,
  sameRouteAs,
} from "./peers.ts";

/** The wire name of this backend in leases and configs. */
export const BACKEND_TYPE = "vxlan";

export interface VxlanNetworkOptions {
  readonly manager: Pick<SubnetManager, "watchLeases">;
  readonly netlink: Netlink;
  readonly log: Logger;
  readonly metrics: FlannelMetrics;
  /** The network config peers' subnets must fit. */
  readonly config: NetworkConfig;
  readonly lease: Lease;
  readonly mtu: number;
  readonly device: VxlanDevice;
  readonly vni: number;
  readonly directRouting: boolean;
  /**
   * The family of the device and its peers: 4 (`flannel.<VNI>`, the default) or 6
   * (`flannel-v6.<VNI>`, peers from `BackendV6Data`); a dual-stack node runs one of each.
   */
  readonly family?: Family;
  /** The device's index when the network is built. */
  readonly devIndex?: number;
  readonly reconcileIntervalMs?: number;
  /** Called after every reconcile pass (tests, benchmarks). */
  onReconciled?(stats: ReconcileStats): void;
}

const ZERO_MAC = "00:00:00:00:00:00";

/** The reconcile loop with {@link VxlanPolicy}. */
export class VxlanNetwork extends ReconcileLoop<Peer> {
  constructor(options: VxlanNetworkOptions) {
    const { config, lease, log, vni } = options;
    const family = options.family ?? 4;
    const intake = new LeaseIntake({
      config,
      own: lease,
      backendTypes: [BACKEND_TYPE],
      // Each family's loop checks its own data: an IPv4 peer's BackendV6Data is not its concern.
      checkBackendData: (lease) => {
        if (family === 4 || lease.enableIPv6) void peerFromLease(lease, vni, family);
      },
      log,
    });
    super({ ...options, intake, policy: new VxlanPolicy(options) });
  }
}

/** What one dump of the device's state holds, indexed for the comparison. */
interface KernelState {
  readonly routes: readonly Route[];
  readonly neighs: readonly Neigh[];
  readonly fdbs: readonly Fdb[];
  readonly routeByDst: ReadonlyMap<string, Route>;
  readonly neighByIp: ReadonlyMap<string, Neigh>;
  /** A unicast MAC (every VtepMAC is one) has a single remote: replace rewrites it in place. */
  readonly fdbByMac: ReadonlyMap<string, Fdb>;
}

interface Step {
  readonly what: string;
  apply(): Promise<void>;
  undo?(): Promise<void>;
}

/** A tunnel peer's neighbour, FDB entry and onlink route, or a direct peer's plain route. */
class VxlanPolicy implements ReconcilePolicy<Peer> {
  readonly kind = "vxlan";
  readonly name: string;
  readonly eventGroups: readonly ["link", "ipv4-route" | "ipv6-route", "neigh"];
  readonly family: Family;
  readonly #o: VxlanNetworkOptions;
  readonly #family: Family;
  #devIndex?: number;
  /** Tunnel peers by subnet network address and by VTEP MAC, for kernel-event lookups. */
  #byGateway = new Map<string, Peer>();
  #byMac = new Map<string, Peer>();
  /** Peers as last programmed completely: a later fix of the same peer is a restoration. */
  readonly #installed = new Map<string, Peer>();

  constructor(options: VxlanNetworkOptions) {
    this.#o = options;
    this.#devIndex = options.devIndex;
    this.#family = this.family = options.family ?? 4;
    this.name = this.#family === 4 ? "VXLAN" : "VXLAN IPv6";
    this.eventGroups = ["link", this.#family === 4 ? "ipv4-route" : "ipv6-route", "neigh"];
  }

  keyOf(lease: Lease): string | undefined {
    if (this.#family === 4) return formatIP4Net(lease.subnet);
    return lease.enableIPv6 && lease.ipv6Subnet ? formatIP6Net(lease.ipv6Subnet) : undefined;
  }

  async desire(lease: Lease, old: Peer | undefined): Promise<Peer | undefined> {
    const { log } = this.#o;
    if (this.#family === 6 && !lease.enableIPv6) return undefined;
    // The intake let through only leases whose backend data decodes with our VNI.
    let peer = peerFromLease(lease, this.#o.vni, this.#family);
    const directIndex = this.#o.directRouting ? await this.#directIndex(peer) : undefined;
    if (directIndex !== undefined) {
      peer = { ...peer, directIndex };
      log.info(`Adding direct route to subnet: ${peer.dst} PublicIP: ${peer.publicIP}`);
    } else {
      log.info(`Subnet added: ${peer.dst} via ${peer.publicIP} (VtepMAC ${peer.vtepMac})`);
    }
    if (old && (old.vtepMac !== peer.vtepMac || old.publicIP !== peer.publicIP)) {
      log.info(
        `Subnet ${peer.dst} changed: VtepMAC ${old.vtepMac} → ${peer.vtepMac}, PublicIP ${old.publicIP} → ${peer.publicIP}`,
      );
    }
    return peer;
  }

  /**
   * DirectRouting: `ip route get <public IP>` answers with a route without a gateway (the peer
   * is on one of our links) ⇒ route to the peer directly, through that link.
   */
  async #directIndex(peer: Peer): Promise<number | undefined> {
    try {
      const r = await this.#o.netlink.routeGet(peer.publicIP);
      if (!r || r.gateway !== undefined || r.index === undefined) return undefined;
      if ((r.type ?? "unicast") !== "unicast" || r.index === this.#devIndex) return undefined;
      return r.index;
    } catch (err) {
      this.#o.log.warn(
        `Cannot tell whether ${peer.publicIP} is on-link (using the tunnel): ${describeError(err)}`,
      );
      return undefined;
    }
  }

  async sweep(pass: Pass<Peer>): Promise<void> {
    const { log, device } = this.#o;
    const link = await device.ensure();
    if (this.#devIndex !== undefined && link.index !== this.#devIndex) {
      log.info(`${device.name} was recreated; re-programming ${pass.desired.size} peers`);
      this.#installed.clear();
    }
    this.#devIndex = link.index;
    this.#index(pass.desired);
    const kernel = await this.#dump(link.index);
    for (const peer of pass.desired.values()) await this.#program(peer, link.index, kernel, pass);
    if (pass.synced) await this.#removeStale(kernel, pass);
  }

  /** Rebuilds the event lookups, and forgets what was installed for peers that are gone. */
  #index(peers: ReadonlyMap<string, Peer>): void {
    this.#byGateway = new Map();
    this.#byMac = new Map();
    for (const p of peers.values()) {
      if (p.directIndex !== undefined) continue;
      this.#byGateway.set(p.gateway, p);
      this.#byMac.set(p.vtepMac, p);
    }
    for (const dst of this.#installed.keys()) if (!peers.has(dst)) this.#installed.delete(dst);
  }

  async #dump(dev: number): Promise<KernelState> {
    const nl = this.#o.netlink;
    const routes = await nl.routes({ family: this.#family, protocol: ROUTE_PROTOCOL });
    const v6 = this.#family === 6;
    const neighs = (await nl.neighs(dev)).filter((n) =>
      n.index === dev && n.ip.includes(":") === v6
    );
    const fdbs = (await nl.fdbs(dev)).filter((f) => f.index === dev);
    return {
      routes,
      neighs,
      fdbs,
      routeByDst: new Map(routes.map((r) => [r.dst, r])),
      neighByIp: new Map(neighs.map((n) => [n.ip, n])),
      fdbByMac: new Map(fdbs.map((f) => [f.mac, f])),
    };
  }

  /** Writes what `peer` lacks, in flannel's order; undoes the peer's writes if a step fails. */
  async #program(peer: Peer, dev: number, kernel: KernelState, pass: Pass<Peer>): Promise<void> {
    const { netlink: nl, log } = this.#o;
    const steps: Step[] = [];
    if (peer.directIndex === undefined) {
      const neigh = neighFor(peer, dev), fdb = fdbFor(peer, dev);
      if (!sameNeighAs(kernel.neighByIp.get(peer.gateway), neigh)) {
        steps.push({
          what: "neighbour",
          apply: () => nl.neighReplace(neigh),
          undo: () => nl.neighDelete(neigh),
        });
      }
      if (!sameFdbAs(kernel.fdbByMac.get(peer.vtepMac), fdb)) {
        steps.push({
          what: "FDB entry",
          apply: () => nl.fdbReplace(fdb),
          undo: () => nl.fdbDelete(fdb),
        });
      }
    }
    const route = routeFor(peer, dev);
    if (!sameRouteAs(kernel.routeByDst.get(peer.dst), route)) {
      steps.push({ what: "route", apply: () => nl.routeReplace(route) });
    }
    const done: Step[] = [];
    try {
      for (const step of steps) {
        await step.apply();
        done.push(step);
        pass.wrote();
      }
    } catch (err) {
      // Marked failing first, so the events of the rollback do not trigger another pass.
      pass.fail(
        peer.dst,
        `Failed to add ${steps[done.length].what} for ${peer.dst} via ${peer.publicIP} ` +
          `(rolled back): ${describeError(err)}`,
      );
      this.#installed.delete(peer.dst);
      for (const step of done.reverse()) await step.undo?.().catch(() => {});
      return;
    }
    if (steps.length > 0 && this.#installed.get(peer.dst) === peer) {
      log.info(`Restored ${steps.map((s) => s.what).join(", ")} for ${peer.dst}`);
    }
    pass.ok(peer.dst);
    this.#installed.set(peer.dst, peer);
  }

  /** Removes our routes and permanent device entries that no peer wants. */
  async #removeStale(kernel: KernelState, pass: Pass<Peer>): Promise<void> {
    const nl = this.#o.netlink;
    for (const r of kernel.routes) {
      if (pass.desired.has(r.dst)) continue;
      await pass.removeStale(`route ${r.dst} via ${r.gateway}`, () => nl.routeDelete(r));
    }
    for (const n of kernel.neighs) {
      if (this.#byGateway.has(n.ip) || ((n.state ?? 0) & NUD_PERMANENT) === 0) continue;
      await pass.removeStale(`neighbour ${n.ip} (${n.mac})`, () => nl.neighDelete(n));
    }
    for (const f of kernel.fdbs) {
      if (this.#byMac.has(f.mac) || f.mac === ZERO_MAC) continue;
      if (((f.state ?? 0) & NUD_PERMANENT) === 0) continue;
      await pass.removeStale(`FDB entry ${f.mac} dst ${f.dst}`, () => nl.fdbDelete(f));
    }
  }

  concerns(event: KernelEvent, view: ReconcileView<Peer>): Concern | undefined {
    const what = this.#undone(event, view);
    return what === undefined ? undefined : { what };
  }

  /**
   * What `event` undid of what we want, undefined when it does not concern us. Changes to a peer
   * whose programming is failing are left to the retry (our own rollback would otherwise
   * re-trigger it).
   */
  #undone(event: KernelEvent, view: ReconcileView<Peer>): string | undefined {
    const dev = this.#devIndex;
    const name = this.#o.device.name;
    switch (event.kind) {
      case "link": {
        const l = event.link;
        if (l.name !== name && l.index !== dev) return undefined;
        if (event.op === "del") {
          return l.index === dev || dev === undefined ? `${name} was deleted` : undefined;
        }
        if (l.index !== dev) return `${name} was replaced`;
        if (!l.up) return `${name} was set down`;
        if (l.mac !== this.#o.device.spec.mac || l.mtu !== this.#o.device.spec.mtu) {
          return `${name} was changed`;
        }
        return undefined;
      }
      case "route": {
        const peer = view.desired.get(event.route.dst);
        if (!peer || view.isFailing(peer.dst) || dev === undefined) return undefined;
        if ((event.route.table ?? 254) !== 254) return undefined;
        if (event.op === "del") {
          return event.route.protocol === ROUTE_PROTOCOL
            ? `Route to ${peer.dst} was deleted`
            : undefined;
        }
        return sameRouteAs(event.route, routeFor(peer, dev)) &&
            event.route.protocol === ROUTE_PROTOCOL
          ? undefined
          : `Route to ${peer.dst} was changed`;
      }
      case "neigh": {
        const n = event.neigh;
        const peer = n.index === dev ? this.#byGateway.get(n.ip) : undefined;
        if (!peer || view.isFailing(peer.dst)) return undefined;
        if (event.op === "del") return `Neighbour ${n.ip} on ${name} was deleted`;
        return sameNeighAs(n, neighFor(peer, dev!)) ? undefined : `Neighbour ${n.ip} was changed`;
      }
      case "fdb": {
        const f = event.fdb;
        const peer = f.index === dev ? this.#byMac.get(f.mac) : undefined;
        if (!peer || view.isFailing(peer.dst)) return undefined;
        if (event.op === "del") {
          return f.dst === peer.publicIP ? `FDB entry ${f.mac} on ${name} was deleted` : undefined;
        }
        return f.dst === peer.publicIP ? undefined : `FDB entry ${f.mac} was changed`;
      }
      default:
        return undefined;
    }
  }
}
