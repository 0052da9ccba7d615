/**
 * The network shared by route-based backends (flannel's RouteNetwork, REFERENCE §6.1): a desired
 * route per remote lease, reconciled with idempotent `ip route replace` after every lease batch,
 * every 10 s, and within a moment of the kernel reporting one of our routes deleted or changed.
 *
 * Our routes carry the routing protocol number `ROUTE_PROTOCOL`, so start-up cleanup removes
 * routes of a previous run that match no lease without ever touching routes we did not create.
 */
import type { Netlink, Route } from "../kernel/netlink/types.ts";
import { NotFoundError } from "../kernel/netlink/errors.ts";
import { formatIP4, formatIP4Net } from "../subnet/ip.ts";
import type {
  Lease,
  LeaseEvent,
  NetworkConfig,
  SignalOptions,
  SubnetManager,
} from "../subnet/mod.ts";
import { sleep } from "../util/abort.ts";
import { forEachKernelEvent } from "./_kernel_events.ts";
import { metrics } from "../util/metrics.ts";
import { describeError, type Logger } from "../util/log.ts";
import type { Network } from "./mod.ts";
import { LeaseIntake } from "./_lease_intake.ts";

/**
 * `proto 101` in `ip route`: marks the routes this agent installs. Not assigned in iproute2's
 * `rt_protos`; flannel itself uses the default `boot` (3).
 */
export const ROUTE_PROTOCOL = 101;

/** flannel's reconciliation period. */
export const RECONCILE_INTERVAL_MS = 10_000;

export interface RouteNetworkOptions {
  readonly manager: SubnetManager;
  readonly netlink: Netlink;
  readonly log: Logger;
  /** The network config peers' subnets must fit. */
  readonly config: NetworkConfig;
  /** The wire backend type leases must carry (`host-gw`); others are ignored with a warning. */
  readonly backendType: string;
  readonly lease: Lease;
  readonly mtu: number;
  /** The IPv4 route for a remote lease (without `protocol`, added here). */
  routeFor(lease: Lease): Route | undefined;
  readonly reconcileIntervalMs?: number;
  /** Called after every reconcile pass (tests, metrics). */
  onReconciled?(stats: ReconcileStats): void;
}

export interface ReconcileStats {
  readonly replaced: number;
  readonly deleted: number;
  readonly failed: number;
}

/** Equality of the fields we set (the kernel fills in others, such as scope and metric). */
export function sameRoute(a: Route, b: Route): boolean {
  return a.dst === b.dst && a.gateway === b.gateway && a.index === b.index &&
    (a.table ?? 254) === (b.table ?? 254) && (a.type ?? "unicast") === (b.type ?? "unicast");
}

function describeLease(l: Lease): string {
  return `${formatIP4Net(l.subnet)} (PublicIP ${formatIP4(l.attrs.publicIP)})`;
}

export class RouteNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  readonly #o: RouteNetworkOptions;
  /** Desired routes by destination. */
  readonly #desired = new Map<string, Route>();
  /** Destinations whose last apply failed, with the error text (logged once per change). */
  readonly #failing = new Map<string, string>();
  #synced = false;
  #pending?: Promise<void>;
  #serial: Promise<void> = Promise.resolve();
  #dirty = false;

  constructor(options: RouteNetworkOptions) {
    this.#o = options;
    this.lease = options.lease;
    this.mtu = options.mtu;
  }

  /** The routes this network wants in the kernel (tests, metrics). */
  get desiredRoutes(): Route[] {
    return [...this.#desired.values()];
  }

  async run(options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    const tasks = [
      this.#watchKernel(signal),
      this.#periodic(signal),
      this.#watchLeases(signal),
    ];
    await Promise.all(tasks);
  }

  async #watchLeases(signal?: AbortSignal): Promise<void> {
    const { config, backendType, log } = this.#o;
    const intake = new LeaseIntake({ config, own: this.lease, backendTypes: [backendType], log });
    for await (const result of this.#o.manager.watchLeases({ signal })) {
      const batch = intake.apply(result);
      const changes = this.#applyBatch(batch);
      metrics.peersKnown.set(intake.leases.length);
      if (result.snapshot) {
        // A (re-)list: compare everything, and remove routes of leases that are gone.
        const t0 = performance.now();
        this.#synced = true;
        await this.reconcile();
        this.#o.log.info(
          `Synced ${this.#desired.size} routes with the kernel in ${
            (performance.now() - t0).toFixed(0)
          } ms`,
        );
      } else {
        await this.#exclusive(() => this.#applyChanges(changes));
      }
    }
  }

  /** Runs kernel-changing work one piece at a time. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn);
    this.#serial = run.then(() => {}, () => {});
    return run;
  }

  /** Replaces and deletes exactly the routes a batch of events changed (no full dump). */
  async #applyChanges(changes: { replace: Route[]; remove: Route[] }): Promise<void> {
    let replaced = 0, deleted = 0, failed = 0;
    for (const route of changes.remove) {
      try {
        await this.#o.netlink.routeDelete(route);
        deleted++;
      } catch (err) {
        if (!(err instanceof NotFoundError)) {
          failed++;
          this.#o.log.error(`Failed to delete route ${route.dst}: ${describeError(err)}`);
        }
      }
    }
    for (const route of changes.replace) {
      if (await this.#replace(route)) replaced++;
      else failed++;
    }
    this.#reported({ replaced, deleted, failed });
  }

  /** `ip route replace`; a failure is logged once per distinct error and retried later. */
  async #replace(route: Route, current?: Route): Promise<boolean> {
    const { netlink, log } = this.#o;
    try {
      await netlink.routeReplace(route);
      this.#failing.delete(route.dst);
      if (current) log.info(`Route to ${route.dst} corrected (was via ${current.gateway})`);
      else log.v(2, `Route to ${route.dst} via ${route.gateway} installed`);
      return true;
    } catch (err) {
      const text = describeError(err);
      if (this.#failing.get(route.dst) !== text) {
        log.error(`Failed to add route ${route.dst} via ${route.gateway}: ${text}`);
        this.#failing.set(route.dst, text);
      }
      return false;
    }
  }

  #applyBatch(batch: readonly LeaseEvent[]): { replace: Route[]; remove: Route[] } {
    const replace: Route[] = [], remove: Route[] = [];
    const { log } = this.#o;
    for (const [i, event] of batch.entries()) {
      log.v(2, `Batch elem [${i}] is { ${event.type} ${describeLease(event.lease)} }`);
      const lease = event.lease;
      const dst = formatIP4Net(lease.subnet);
      const old = this.#desired.get(dst);
      if (event.type === "removed") {
        if (old) {
          this.#desired.delete(dst);
          remove.push(old);
          log.info(`Subnet removed: ${dst}`);
        }
        this.#failing.delete(dst);
        continue;
      }
      const route = this.#o.routeFor(lease);
      if (!route) continue;
      const want = { ...route, protocol: ROUTE_PROTOCOL };
      this.#desired.set(dst, want);
      replace.push(want);
      log.info(`Subnet added: ${dst} via ${route.gateway ?? route.index}`);
    }
    return { replace, remove };
  }

  /**
   * Brings the kernel in line with the desired routes: replaces missing or different ones and,
   * once the lease list is known, deletes our routes that match no lease. Concurrent calls are
   * coalesced into one extra pass.
   */
  reconcile(): Promise<void> {
    if (this.#pending) {
      this.#dirty = true;
      return this.#pending;
    }
    this.#pending = (async () => {
      do {
        this.#dirty = false;
        await this.#exclusive(() => this.#reconcileOnce()).catch((err) =>
          this.#o.log.error(`Route reconciliation failed: ${describeError(err)}`)
        );
      } while (this.#dirty);
    })().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #reconcileOnce(): Promise<void> {
    const { netlink, log } = this.#o;
    metrics.reconcileRuns.inc({ kind: "route" });
    const done = metrics.reconcileDuration.startTimer({ kind: "route" });
    const kernel = await netlink.routes({ family: 4, protocol: ROUTE_PROTOCOL });
    const have = new Map(kernel.map((r) => [r.dst, r]));
    let replaced = 0, deleted = 0, failed = 0;
    for (const [dst, route] of this.#desired) {
      const current = have.get(dst);
      if (current && sameRoute(current, route)) {
        this.#failing.delete(dst);
        continue;
      }
      if (await this.#replace(route, current)) replaced++;
      else failed++;
    }
    if (this.#synced) {
      for (const route of kernel) {
        if (this.#desired.has(route.dst)) continue;
        try {
          await netlink.routeDelete(route);
          deleted++;
        } catch (err) {
          if (!(err instanceof NotFoundError)) {
            log.error(`Failed to delete route ${route.dst}: ${describeError(err)}`);
          }
        }
      }
    }
    done();
    this.#reported({ replaced, deleted, failed });
  }

  #reported(stats: ReconcileStats): void {
    metrics.peersProgrammed.set(this.#desired.size - this.#failing.size);
    if (stats.failed > 0) metrics.reconcileErrors.inc({ kind: "route" }, stats.failed);
    this.#o.onReconciled?.(stats);
  }

  async #periodic(signal?: AbortSignal): Promise<void> {
    const interval = this.#o.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS;
    while (await sleep(interval, signal)) await this.reconcile();
  }

  /** Reconciles soon after the kernel reports a change to a route we want. */
  #watchKernel(signal?: AbortSignal): Promise<void> {
    const { netlink, log } = this.#o;
    return forEachKernelEvent(netlink, ["ipv4-route", "link"], log, signal, (event) => {
      if (event.kind === "resync" || event.kind === "link") {
        this.reconcile();
        return;
      }
      if (event.kind !== "route") return;
      const want = this.#desired.get(event.route.dst);
      if (!want || (event.op === "new" && sameRoute(event.route, want))) return;
      log.info(
        `Route to ${event.route.dst} was ${
          event.op === "del" ? "deleted" : "changed"
        } by someone else, restoring`,
      );
      metrics.kernelObjectsRestored.inc({ kind: "route" });
      this.#exclusive(() => this.#applyChanges({ replace: [want], remove: [] }));
    });
  }
}
