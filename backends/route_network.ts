/**
 * The network of route-based backends (flannel's RouteNetwork, flannel pkg/backend/route_network.go), host-gw's: the
 * reconcile loop (`reconcile_loop.ts`) with a route per peer lease as its policy. A lease change
 * is written at once with `ip route replace` (or deleted), a route the kernel reports deleted or
 * changed is put back at once, and the full sweep compares every route of our protocol.
 */
import type { KernelEvent, Netlink, Route } from "../kernel/netlink/types.ts";
import type { Family } from "../kernel/netlink/types.ts";
import { formatIP4Net, formatIP6Net } from "../subnet/ip.ts";
import type { Lease, NetworkConfig, SubnetManager } from "../subnet/mod.ts";
import { describeError, type Logger } from "../util/log.ts";
import type { FlannelMetrics } from "../util/metrics.ts";
import { LeaseIntake } from "./_lease_intake.ts";
import { ROUTE_PROTOCOL } from "./mod.ts";
import {
  type Concern,
  type Pass,
  ReconcileLoop,
  type ReconcilePolicy,
  type ReconcileStats,
  type ReconcileView,
} from "./reconcile_loop.ts";

export interface RouteNetworkOptions {
  readonly manager: Pick<SubnetManager, "watchLeases">;
  readonly netlink: Netlink;
  readonly log: Logger;
  readonly metrics: FlannelMetrics;
  /** The network config peers' subnets must fit. */
  readonly config: NetworkConfig;
  /** The wire backend type leases must carry (`host-gw`); others are ignored with a warning. */
  readonly backendType: string;
  readonly lease: Lease;
  readonly mtu: number;
  /** The family this network routes: 4 (default) or 6; a dual-stack node runs one of each. */
  readonly family?: Family;
  /** The route of `family` for a remote lease (without `protocol`, added here). */
  routeFor(lease: Lease): Route | undefined;
  readonly reconcileIntervalMs?: number;
  /** Called after every reconcile pass (tests). */
  onReconciled?(stats: ReconcileStats): void;
}

/** Equality of the fields we set (the kernel fills in others, such as scope and metric). */
function sameRoute(a: Route, b: Route): boolean {
  return a.dst === b.dst && a.gateway === b.gateway && a.index === b.index &&
    (a.table ?? 254) === (b.table ?? 254) && (a.type ?? "unicast") === (b.type ?? "unicast");
}

/** The reconcile loop with {@link RoutePolicy}. */
export class RouteNetwork extends ReconcileLoop<Route> {
  constructor(options: RouteNetworkOptions) {
    const { config, lease, backendType, log } = options;
    const intake = new LeaseIntake({ config, own: lease, backendTypes: [backendType], log });
    super({ ...options, intake, policy: new RoutePolicy(options) });
  }
}

/** One route per peer, `<subnet> via <public IP> dev <iface> proto 101`. */
class RoutePolicy implements ReconcilePolicy<Route> {
  readonly kind = "route";
  readonly name: string = "Route";
  readonly eventGroups: readonly ["ipv4-route" | "ipv6-route", "link"];
  readonly family: Family;
  readonly #o: RouteNetworkOptions;
  readonly #family: Family;

  constructor(options: RouteNetworkOptions) {
    this.#o = options;
    this.#family = this.family = options.family ?? 4;
    this.eventGroups = [this.#family === 6 ? "ipv6-route" : "ipv4-route", "link"];
    if (this.#family === 6) this.name = "IPv6 route";
  }

  keyOf(lease: Lease): string | undefined {
    if (this.#family === 4) return formatIP4Net(lease.subnet);
    return lease.enableIPv6 && lease.ipv6Subnet ? formatIP6Net(lease.ipv6Subnet) : undefined;
  }

  desire(lease: Lease): Route | undefined {
    const route = this.#o.routeFor(lease);
    if (!route) return undefined;
    this.#o.log.info(`Subnet added: ${route.dst} via ${route.gateway ?? route.index}`);
    return { ...route, protocol: ROUTE_PROTOCOL };
  }

  apply(_key: string, want: Route, pass: Pass<Route>): Promise<void> {
    return this.#replace(want, undefined, pass);
  }

  remove(_key: string, old: Route, pass: Pass<Route>): Promise<void> {
    return pass.removeStale(
      `route ${old.dst} via ${old.gateway}`,
      () => this.#o.netlink.routeDelete(old),
    );
  }

  async sweep(pass: Pass<Route>): Promise<void> {
    const { netlink } = this.#o;
    const kernel = await netlink.routes({ family: this.#family, protocol: ROUTE_PROTOCOL });
    const have = new Map(kernel.map((r) => [r.dst, r]));
    for (const [dst, route] of pass.desired) {
      const current = have.get(dst);
      if (current && sameRoute(current, route)) pass.ok(dst);
      else await this.#replace(route, current, pass);
    }
    if (!pass.synced) return;
    for (const route of kernel) {
      if (pass.desired.has(route.dst)) continue;
      await pass.removeStale(
        `route ${route.dst} via ${route.gateway}`,
        () => netlink.routeDelete(route),
      );
    }
  }

  /** `ip route replace`; `current` is the route it corrects, if any. */
  async #replace(route: Route, current: Route | undefined, pass: Pass<Route>): Promise<void> {
    const { netlink, log } = this.#o;
    try {
      await netlink.routeReplace(route);
    } catch (err) {
      pass.fail(
        route.dst,
        `Failed to add route ${route.dst} via ${route.gateway}: ${describeError(err)}`,
      );
      return;
    }
    pass.wrote();
    pass.ok(route.dst);
    if (current) log.info(`Route to ${route.dst} corrected (was via ${current.gateway})`);
    else log.v(2, `Route to ${route.dst} via ${route.gateway} installed`);
  }

  concerns(event: KernelEvent, view: ReconcileView<Route>): Concern | undefined {
    // A link going down takes its routes with it, without a notification per route.
    if (event.kind === "link") return {};
    if (event.kind !== "route") return undefined;
    const want = view.desired.get(event.route.dst);
    if (!want || (event.op === "new" && sameRoute(event.route, want))) return undefined;
    const what = event.op === "del" ? "deleted" : "changed";
    return { what: `Route to ${want.dst} was ${what}`, key: want.dst };
  }
}
