/**
 * The udp backend's network (flannel pkg/backend/udp/udp_network_amd64.go): the reconcile loop (`../reconcile_loop.ts`) with the
 * peer table as its policy ({@link UdpPeerPolicy}: every change and every 10 s, publish the table
 * to the data path if it changed and put the overlay route back if someone deleted it), around the
 * data path itself, whose drops are logged at most once per reason per 10 s.
 */
import type { Netlink, Route } from "../../kernel/netlink/types.ts";
import { formatIP4, formatIP4Net } from "../../subnet/ip.ts";
import type { Lease, NetworkConfig, SignalOptions, SubnetManager } from "../../subnet/mod.ts";
import type { FlannelMetrics } from "../../util/metrics.ts";
import { sleep } from "../../util/abort.ts";
import { describeError, type Logger } from "../../util/log.ts";
import { LeaseIntake } from "../_lease_intake.ts";
import { type Pass, ReconcileLoop, type ReconcilePolicy } from "../reconcile_loop.ts";
import { DataPath } from "./datapath.ts";
import { type Peer, PeerTable } from "./peers.ts";
import { readStats, S, type UdpStats } from "./stats.ts";

/** At most one log line per drop reason per this long. */
const DROP_REPORT_MS = 10_000;
/** How often the drop counters are looked at. */
const DROP_CHECK_MS = 1000;

export interface UdpNetworkOptions {
  readonly manager: SubnetManager;
  readonly netlink: Netlink;
  readonly log: Logger;
  readonly metrics: FlannelMetrics;
  /** The network config peers' subnets must fit. */
  readonly config: NetworkConfig;
  readonly lease: Lease;
  readonly mtu: number;
  /** UDP port of every peer (flannel assumes all nodes use the local `Port`). */
  readonly port: number;
  readonly tun: { readonly fd: number; readonly name: string; close(): void };
  readonly udp: { readonly fd: number; close(): void };
  /** Address of the TUN device (the lease's network address). */
  readonly tunAddr: number;
  readonly tunMtu: number;
  /** `<Network> dev flannel0`, kept in place. */
  readonly route: Route;
  /** Packets per system call (default 64). */
  readonly batch?: number;
}

/** The udp backend's lease intake; flannel's udp leases carry no BackendType. */
export function udpLeaseIntake(config: NetworkConfig, own: Lease, log: Logger): LeaseIntake {
  return new LeaseIntake({ config, own, backendTypes: ["udp", ""], log });
}

export interface UdpPeerPolicyOptions {
  readonly netlink: Pick<Netlink, "routes" | "routeReplace">;
  readonly log: Logger;
  /** Where the data path reads its peers. */
  readonly table: PeerTable;
  readonly port: number;
  /** `<Network> dev flannel0` and the device's name. */
  readonly route: Route;
  readonly device: string;
}

/** Keys of the two things besides peers a pass can fail at. */
const TABLE = "peer table", ROUTE = "overlay route";

/** A peer per IPv4 lease, published whole; the overlay route checked on every sweep. */
export class UdpPeerPolicy implements ReconcilePolicy<Peer> {
  readonly kind = "udp";
  readonly name = "udp";
  /** No kernel events: the sweep (after every batch and every 10 s) checks the route. */
  readonly eventGroups = [] as const;
  readonly #o: UdpPeerPolicyOptions;
  #published: readonly Peer[] = [];

  constructor(options: UdpPeerPolicyOptions) {
    this.#o = options;
  }

  desire(lease: Lease): Peer | undefined {
    if (!lease.enableIPv4) return undefined;
    const { port } = this.#o;
    const ip = lease.attrs.publicIP >>> 0;
    this.#o.log.info(`Subnet added: ${formatIP4Net(lease.subnet)} via ${formatIP4(ip)}:${port}`);
    return { net: lease.subnet.ip >>> 0, prefix: lease.subnet.prefix, publicIP: ip, port };
  }

  async sweep(pass: Pass<Peer>): Promise<void> {
    await this.#ensureRoute(pass);
    const peers = [...pass.desired.values()];
    if (
      peers.length === this.#published.length && peers.every((p, i) => p === this.#published[i])
    ) {
      return;
    }
    try {
      this.#o.table.publish(peers);
      this.#published = peers;
      pass.ok(TABLE);
    } catch (err) {
      pass.fail(TABLE, describeError(err));
    }
  }

  async #ensureRoute(pass: Pass<Peer>): Promise<void> {
    const { netlink, route, log, device } = this.#o;
    try {
      const have = await netlink.routes({ family: 4, dst: route.dst });
      if (!have.some((r) => r.index === route.index)) {
        await netlink.routeReplace(route);
        pass.wrote();
        log.info(`Route ${route.dst} dev ${device} restored`);
      }
      pass.ok(ROUTE);
    } catch (err) {
      pass.fail(ROUTE, `Cannot restore route ${route.dst} dev ${device}: ${describeError(err)}`);
    }
  }
}

const dropReasons: [slot: number, what: string, last?: number][] = [
  [S.inUnknownSource, "datagrams from addresses that are no peer's public IP", S.lastUnknownSource],
  [
    S.inSpoofedSource,
    "datagrams whose inner source is outside the sending peer's subnet",
    S.lastSpoofedSource,
  ],
  [S.inOversize, "datagrams larger than the TUN MTU"],
  [S.inShort, "datagrams shorter than an IPv4 header"],
  [S.inMalformed, "datagrams without a valid IPv4 header"],
  [S.inTtl, "inbound packets whose TTL ran out"],
  [S.inWriteError, "packets the TUN device refused", S.lastWriteErrno],
  [S.inRecvError, "failed receive calls", S.lastRecvErrno],
  [S.outNoRoute, "packets to subnets no peer leases", S.lastNoRouteDst],
  [S.outShort, "TUN packets shorter than an IPv4 header"],
  [S.outMalformed, "TUN packets without a valid IPv4 header"],
  [S.outTtl, "outbound packets whose TTL ran out"],
  [S.outSendError, "datagrams the socket refused", S.lastSendErrno],
  [S.outReadError, "failed TUN reads"],
  [S.internalErrors, "unexpected data-path errors"],
];

/** The reconcile loop with {@link UdpPeerPolicy}, around the data path. */
export class UdpNetwork extends ReconcileLoop<Peer> {
  readonly #o: UdpNetworkOptions;
  readonly #table: PeerTable;
  readonly #intake: LeaseIntake;
  readonly #logged = new Float64Array(64);
  readonly #loggedAt = new Map<number, number>();
  #exported?: UdpStats;
  #dp?: DataPath;

  constructor(options: UdpNetworkOptions) {
    const { config, lease, log, tun } = options;
    const table = new PeerTable();
    const intake = udpLeaseIntake(config, lease, log);
    const policy = new UdpPeerPolicy({ ...options, table, device: tun.name });
    super({ ...options, intake, policy });
    this.#o = options;
    this.#table = table;
    this.#intake = intake;
  }

  /** Starts the data path, runs the loop and the drop reports, then closes the devices. */
  override async run(options?: SignalOptions): Promise<void> {
    const o = this.#o;
    try {
      this.#dp = await DataPath.start({
        tunFd: o.tun.fd,
        udpFd: o.udp.fd,
        tunAddr: o.tunAddr,
        mtu: o.tunMtu,
        peers: this.#table,
        log: o.log,
        batch: o.batch,
      });
      await Promise.all([super.run(options), this.#housekeeping(options?.signal)]);
    } finally {
      await this.#dp?.stop();
      o.udp.close();
      o.tun.close();
    }
  }

  /** Data-path counters: packets in/out, drops by reason. */
  #stats(): UdpStats {
    const s = this.#dp?.stats ?? new Float64Array(64);
    return readStats(s, this.#intake.refused);
  }

  async #housekeeping(signal?: AbortSignal): Promise<void> {
    while (await sleep(DROP_CHECK_MS, signal)) {
      this.#logDrops();
      this.#exportMetrics();
    }
  }

  /** Adds what the data path counted since the last call to the metrics. */
  #exportMetrics(): void {
    const { metrics } = this.#o;
    const now = this.#stats();
    const was = this.#exported;
    this.#exported = now;
    metrics.udpPackets.inc({ direction: "rx" }, Math.max(0, now.packetsIn - (was?.packetsIn ?? 0)));
    metrics.udpPackets.inc(
      { direction: "tx" },
      Math.max(0, now.packetsOut - (was?.packetsOut ?? 0)),
    );
    for (const [reason, n] of Object.entries(now.drops)) {
      const before = was?.drops[reason as keyof typeof now.drops] ?? 0;
      if (n > before) metrics.udpDrops.inc({ reason }, n - before);
    }
  }

  /** One line per drop reason at most every 10 s; the first drop is logged within 1 s. */
  #logDrops(): void {
    const s = this.#dp?.stats;
    if (!s) return;
    const now = Date.now();
    for (const [slot, what, last] of dropReasons) {
      const delta = s[slot] - this.#logged[slot];
      if (delta <= 0 || now - (this.#loggedAt.get(slot) ?? -Infinity) < DROP_REPORT_MS) continue;
      this.#logged[slot] = s[slot];
      this.#loggedAt.set(slot, now);
      let detail = "";
      if (last !== undefined) {
        detail = last === S.lastSendErrno || last === S.lastWriteErrno || last === S.lastRecvErrno
          ? ` (last errno ${s[last]})`
          : ` (last ${formatIP4(s[last])})`;
      }
      this.#o.log.warn(`udp: dropped ${delta} ${what} since the last report${detail}`);
    }
  }
}
