/**
 * The vxlan network's data-path loop (REFERENCE §6.3, plus self-healing): a desired-state table
 * of peers (one per remote vxlan lease), applied to the kernel with idempotent replace
 * operations after every lease batch, every 10 s, after a failure (backoff from 100 ms) and as
 * soon as the kernel reports that something we want was deleted or changed, the device included.
 *
 * A pass first makes sure the device exists, is up and carries its address (recreating it if it
 * was deleted: the kernel then dropped every neighbour, FDB entry and route through it, and the
 * pass re-programs them all); then dumps routes (our protocol), neighbours and FDB entries once
 * and writes only what is missing or different, per peer in flannel's order (neighbour, FDB,
 * route), undoing the peer's writes when a later step fails. Once the lease list is known it
 * removes what matches no peer: our routes, and permanent neighbour/FDB entries on the device
 * (which covers a removed peer and the stale entries of a peer's old MAC).
 */
import type { Fdb, KernelEvent, Netlink, Route } from "../../kernel/netlink/types.ts";
import { NotFoundError } from "../../kernel/netlink/errors.ts";
import { formatIP4, formatIP4Net } from "../../subnet/ip.ts";
import type {
  Lease,
  LeaseEvent,
  NetworkConfig,
  SignalOptions,
  SubnetManager,
} from "../../subnet/mod.ts";
import { clip } from "../../util/quote.ts";
import { Backoff, sleep } from "../../util/abort.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { Network } from "../mod.ts";
import { RECONCILE_INTERVAL_MS, ROUTE_PROTOCOL } from "../route_network.ts";
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
import { metrics } from "../../util/metrics.ts";
import { forEachKernelEvent } from "../_kernel_events.ts";
import { LeaseIntake } from "../_lease_intake.ts";

/** The wire name of this backend in leases and configs. */
export const BACKEND_TYPE = "vxlan";

export interface VxlanNetworkOptions {
  readonly manager: SubnetManager;
  readonly netlink: Netlink;
  readonly log: Logger;
  /** The network config peers' subnets must fit. */
  readonly config: NetworkConfig;
  readonly lease: Lease;
  readonly mtu: number;
  readonly device: VxlanDevice;
  readonly vni: number;
  readonly directRouting: boolean;
  readonly reconcileIntervalMs?: number;
  /** Called after every reconcile pass (tests, metrics). */
  onReconciled?(stats: VxlanReconcileStats): void;
}

export interface VxlanReconcileStats {
  /** Kernel objects written (neighbour, FDB entry, route). */
  readonly written: number;
  readonly deleted: number;
  /** Peers whose programming failed (and was rolled back). */
  readonly failed: number;
}

const ZERO_MAC = "00:00:00:00:00:00";

function describeLease(l: Lease): string {
  return `${formatIP4Net(l.subnet)} (PublicIP ${formatIP4(l.attrs.publicIP)}, BackendData ${
    l.attrs.backendData === undefined ? "none" : clip(l.attrs.backendData)
  })`;
}

export class VxlanNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  readonly #o: VxlanNetworkOptions;
  /** Desired peers by subnet (`"10.244.2.0/24"`). */
  readonly #peers = new Map<string, Peer>();
  /** Tunnel peers by subnet network address and by VTEP MAC, for kernel-event lookups. */
  #byGateway = new Map<string, Peer>();
  #byMac = new Map<string, Peer>();
  /** Peers whose last programming failed, with the error text (logged once per change). */
  readonly #failing = new Map<string, string>();
  /** Peers programmed completely at least once (a later fix is logged as a restoration). */
  readonly #installed = new Set<string>();
  #devIndex?: number;
  #synced = false;
  #pending?: Promise<void>;
  #dirty = false;
  #passError?: string;
  readonly #backoff = new Backoff(100, 10_000);
  #retryTimer?: ReturnType<typeof setTimeout>;
  #signal?: AbortSignal;

  constructor(options: VxlanNetworkOptions & { readonly devIndex?: number }) {
    this.#o = options;
    this.lease = options.lease;
    this.mtu = options.mtu;
    this.#devIndex = options.devIndex;
  }

  /** The peers this network wants programmed (tests, metrics). */
  get peers(): Peer[] {
    return [...this.#peers.values()];
  }

  async run(options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    this.#signal = signal;
    const stopRetry = () => clearTimeout(this.#retryTimer);
    signal?.addEventListener("abort", stopRetry, { once: true });
    try {
      await Promise.all([
        this.#watchKernel(signal),
        this.#periodic(signal),
        this.#watchLeases(signal),
      ]);
    } finally {
      signal?.removeEventListener("abort", stopRetry);
      stopRetry();
      await this.#pending;
    }
  }

  async #watchLeases(signal?: AbortSignal): Promise<void> {
    const { config, log, vni } = this.#o;
    const intake = new LeaseIntake({
      config,
      own: this.lease,
      backendTypes: [BACKEND_TYPE],
      checkBackendData: (lease) => void peerFromLease(lease, vni),
      log,
    });
    for await (const result of this.#o.manager.watchLeases({ signal })) {
      await this.#applyBatch(intake.apply(result));
      if (result.snapshot) this.#synced = true;
      await this.reconcile();
    }
  }

  async #applyBatch(batch: readonly LeaseEvent[]): Promise<void> {
    const { log } = this.#o;
    for (const [i, event] of batch.entries()) {
      const lease = event.lease;
      const dst = formatIP4Net(lease.subnet);
      log.v(2, `Batch elem [${i}] is { ${event.type} ${describeLease(lease)} }`);
      if (event.type === "removed") {
        if (this.#forget(dst)) log.info(`Subnet removed: ${dst}`);
        continue;
      }
      // The intake let through only leases whose BackendData decodes with our VNI.
      let peer = peerFromLease(lease, this.#o.vni);
      const directIndex = this.#o.directRouting ? await this.#directIndex(peer) : undefined;
      if (directIndex !== undefined) {
        peer = { ...peer, directIndex };
        log.info(`Adding direct route to subnet: ${dst} PublicIP: ${peer.publicIP}`);
      } else {
        log.info(`Subnet added: ${dst} via ${peer.publicIP} (VtepMAC ${peer.vtepMac})`);
      }
      const old = this.#peers.get(dst);
      if (old && (old.vtepMac !== peer.vtepMac || old.publicIP !== peer.publicIP)) {
        log.info(
          `Subnet ${dst} changed: VtepMAC ${old.vtepMac} → ${peer.vtepMac}, PublicIP ${old.publicIP} → ${peer.publicIP}`,
        );
      }
      this.#peers.set(dst, peer);
      this.#failing.delete(dst);
    }
    this.#index();
  }

  #forget(dst: string): boolean {
    this.#failing.delete(dst);
    this.#installed.delete(dst);
    return this.#peers.delete(dst);
  }

  #index(): void {
    this.#byGateway = new Map();
    this.#byMac = new Map();
    for (const p of this.#peers.values()) {
      if (p.directIndex !== undefined) continue;
      this.#byGateway.set(p.gateway, p);
      this.#byMac.set(p.vtepMac, p);
    }
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

  /**
   * Brings the kernel in line with the desired peers. Concurrent calls are coalesced into one
   * extra pass; a pass that failed anywhere schedules a retry with backoff.
   */
  reconcile(): Promise<void> {
    if (this.#pending) {
      this.#dirty = true;
      return this.#pending;
    }
    this.#pending = (async () => {
      do {
        this.#dirty = false;
        await this.#pass();
      } while (this.#dirty);
    })().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #pass(): Promise<void> {
    let ok = false;
    metrics.reconcileRuns.inc({ kind: "vxlan" });
    const done = metrics.reconcileDuration.startTimer({ kind: "vxlan" });
    try {
      const stats = await this.#reconcileOnce();
      ok = stats.failed === 0;
      this.#passError = undefined;
      metrics.peersKnown.set(this.#peers.size);
      metrics.peersProgrammed.set(this.#peers.size - stats.failed);
      if (stats.failed > 0) metrics.reconcileErrors.inc({ kind: "vxlan" }, stats.failed);
      this.#o.onReconciled?.(stats);
    } catch (err) {
      metrics.reconcileErrors.inc({ kind: "vxlan" });
      const text = describeError(err);
      if (text !== this.#passError) this.#o.log.error(`VXLAN reconciliation failed: ${text}`);
      this.#passError = text;
    }
    done();
    if (ok) this.#backoff.reset();
    else this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#signal?.aborted) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#signal?.aborted) this.reconcile();
    }, this.#backoff.next());
  }

  async #reconcileOnce(): Promise<VxlanReconcileStats> {
    const { netlink: nl, log, device } = this.#o;
    const link = await device.ensure();
    if (this.#devIndex !== undefined && link.index !== this.#devIndex) {
      log.info(`${device.name} was recreated; re-programming ${this.#peers.size} peers`);
      this.#installed.clear();
    }
    this.#devIndex = link.index;
    const dev = link.index;
    const routes = await nl.routes({ family: 4, protocol: ROUTE_PROTOCOL });
    const neighs = (await nl.neighs(dev)).filter((n) => n.index === dev && !n.ip.includes(":"));
    const fdbs = (await nl.fdbs(dev)).filter((f) => f.index === dev);
    const routeByDst = new Map(routes.map((r) => [r.dst, r]));
    const neighByIp = new Map(neighs.map((n) => [n.ip, n]));
    // A unicast MAC (every VtepMAC is one) has a single remote: replace rewrites it in place.
    const fdbByMac = new Map(fdbs.map((f) => [f.mac, f]));

    let written = 0, deleted = 0, failed = 0;
    for (const peer of this.#peers.values()) {
      const route = routeFor(peer, dev);
      const needRoute = !sameRouteAs(routeByDst.get(peer.dst), route);
      const steps: Array<{ what: string; apply: () => Promise<void>; undo?: () => Promise<void> }> =
        [];
      if (peer.directIndex === undefined) {
        const neigh = neighFor(peer, dev), fdb = fdbFor(peer, dev);
        if (!sameNeighAs(neighByIp.get(peer.gateway), neigh)) {
          steps.push({
            what: "neighbour",
            apply: () => nl.neighReplace(neigh),
            undo: () => nl.neighDelete(neigh),
          });
        }
        if (!sameFdbAs(fdbByMac.get(peer.vtepMac), fdb)) {
          steps.push({
            what: "FDB entry",
            apply: () => nl.fdbReplace(fdb),
            undo: () => nl.fdbDelete(fdb),
          });
        }
      }
      if (needRoute) steps.push({ what: "route", apply: () => nl.routeReplace(route) });
      if (steps.length > 0) {
        const done: typeof steps = [];
        try {
          for (const step of steps) {
            await step.apply();
            done.push(step);
            written++;
          }
          if (this.#installed.has(peer.dst)) {
            log.info(`Restored ${steps.map((s) => s.what).join(", ")} for ${peer.dst}`);
          }
          this.#failing.delete(peer.dst);
        } catch (err) {
          failed++;
          const failedStep = steps[done.length].what;
          const text =
            `Failed to add ${failedStep} for ${peer.dst} via ${peer.publicIP} (rolled back): ${
              describeError(err)
            }`;
          if (this.#failing.get(peer.dst) !== text) log.error(text);
          // Marked failing first, so the events of the rollback do not trigger another pass.
          this.#failing.set(peer.dst, text);
          this.#installed.delete(peer.dst);
          for (const step of done.reverse()) await step.undo?.().catch(() => {});
          continue;
        }
      }
      this.#installed.add(peer.dst);
    }
    if (this.#synced) deleted += await this.#sweep(routes, neighs, fdbs);
    return { written, deleted, failed };
  }

  /** Removes our routes and permanent device entries that no peer wants. */
  async #sweep(
    routes: readonly Route[],
    neighs: readonly { index: number; ip: string; mac?: string; state?: number }[],
    fdbs: readonly Fdb[],
  ): Promise<number> {
    const nl = this.#o.netlink;
    let deleted = 0;
    for (const r of routes) {
      if (this.#peers.has(r.dst)) continue;
      if (await this.#delete(() => nl.routeDelete(r), `route ${r.dst} via ${r.gateway}`)) deleted++;
    }
    for (const n of neighs) {
      if (this.#byGateway.has(n.ip) || ((n.state ?? 0) & NUD_PERMANENT) === 0) continue;
      if (await this.#delete(() => nl.neighDelete(n), `neighbour ${n.ip} (${n.mac})`)) deleted++;
    }
    for (const f of fdbs) {
      if (this.#byMac.has(f.mac) || f.mac === ZERO_MAC) continue;
      if (((f.state ?? 0) & NUD_PERMANENT) === 0) continue;
      if (await this.#delete(() => nl.fdbDelete(f), `FDB entry ${f.mac} dst ${f.dst}`)) deleted++;
    }
    return deleted;
  }

  async #delete(fn: () => Promise<void>, what: string): Promise<boolean> {
    try {
      await fn();
      this.#o.log.v(2, `Removed stale ${what}`);
      return true;
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        this.#o.log.error(`Failed to remove stale ${what}: ${describeError(err)}`);
      }
      return false;
    }
  }

  async #periodic(signal?: AbortSignal): Promise<void> {
    const interval = this.#o.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS;
    while (await sleep(interval, signal)) await this.reconcile();
  }

  /** Reconciles soon after the kernel reports a change to something we want. */
  #watchKernel(signal?: AbortSignal): Promise<void> {
    const { netlink, log } = this.#o;
    return forEachKernelEvent(netlink, ["link", "ipv4-route", "neigh"], log, signal, (event) => {
      const what = this.#concerns(event);
      if (what === undefined) return;
      if (what) {
        log.info(`${what} by someone else, restoring`);
        metrics.kernelObjectsRestored.inc({ kind: "vxlan" });
      }
      this.reconcile();
    });
  }

  /**
   * Whether `event` undoes something we want: a description of what happened, "" for a resync
   * (no description), undefined when it does not concern us. Changes to a peer whose programming
   * is failing are left to the retry timer (our own rollback would otherwise re-trigger it).
   */
  #concerns(event: KernelEvent): string | undefined {
    const dev = this.#devIndex;
    const name = this.#o.device.name;
    switch (event.kind) {
      case "resync":
        return "";
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
        const peer = this.#peers.get(event.route.dst);
        if (!peer || this.#failing.has(peer.dst) || dev === undefined) return undefined;
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
        if (!peer || this.#failing.has(peer.dst)) return undefined;
        if (event.op === "del") return `Neighbour ${n.ip} on ${name} was deleted`;
        return sameNeighAs(n, neighFor(peer, dev!)) ? undefined : `Neighbour ${n.ip} was changed`;
      }
      case "fdb": {
        const f = event.fdb;
        const peer = f.index === dev ? this.#byMac.get(f.mac) : undefined;
        if (!peer || this.#failing.has(peer.dst)) return undefined;
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
