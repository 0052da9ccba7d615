/**
 * The udp backend's network (REFERENCE §6.4): runs the data path, keeps the peer table in step
 * with lease events, logs drops at most once per reason per interval, and puts the overlay route
 * back if someone deletes it.
 */
import type { Netlink, Route } from "../../kernel/netlink/types.ts";
import { formatIP4, formatIP4Net } from "../../subnet/ip.ts";
import { subnetKeyOf } from "../../subnet/lease_watcher.ts";
import type {
  Lease,
  LeaseEvent,
  NetworkConfig,
  SignalOptions,
  SubnetManager,
} from "../../subnet/mod.ts";
import { metrics } from "../../util/metrics.ts";
import { sleep } from "../../util/abort.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { Network } from "../mod.ts";
import { LeaseIntake } from "../_lease_intake.ts";
import { DataPath } from "./datapath.ts";
import { type Peer, PeerTable } from "./peers.ts";
import { readStats, S, type UdpStats } from "./stats.ts";

/** At most one log line per drop reason per interval; also how often the route is checked. */
export const HOUSEKEEPING_INTERVAL_MS = 10_000;
/** How often the drop counters are looked at. */
const DROP_CHECK_MS = 1000;

export interface UdpNetworkOptions {
  readonly manager: SubnetManager;
  readonly netlink: Netlink;
  readonly log: Logger;
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
  readonly housekeepingIntervalMs?: number;
}

/** The udp backend's lease intake; flannel's udp leases carry no BackendType. */
export function udpLeaseIntake(config: NetworkConfig, own: Lease, log: Logger): LeaseIntake {
  return new LeaseIntake({ config, own, backendTypes: ["udp", ""], log });
}

/** Applies a batch of (usable) lease events to the peer map. */
export function applyLeaseEvents(
  peers: Map<string, Peer>,
  batch: readonly LeaseEvent[],
  port: number,
  log: Logger,
): void {
  for (const { type, lease } of batch) {
    if (!lease.enableIPv4) continue;
    const key = subnetKeyOf(lease);
    const dst = formatIP4Net(lease.subnet);
    if (type === "removed") {
      if (peers.delete(key)) log.info(`Subnet removed: ${dst}`);
      continue;
    }
    const ip = lease.attrs.publicIP >>> 0;
    peers.set(key, { net: lease.subnet.ip >>> 0, prefix: lease.subnet.prefix, publicIP: ip, port });
    log.info(`Subnet added: ${dst} via ${formatIP4(ip)}:${port}`);
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

export class UdpNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  readonly #o: UdpNetworkOptions;
  readonly #table = new PeerTable();
  readonly #peers = new Map<string, Peer>();
  readonly #logged = new Float64Array(64);
  readonly #loggedAt = new Map<number, number>();
  #intake?: LeaseIntake;
  #exported?: UdpStats;
  #dp?: DataPath;

  constructor(options: UdpNetworkOptions) {
    this.#o = options;
    this.lease = options.lease;
    this.mtu = options.mtu;
  }

  /** The TUN device's name (`flannel0`). */
  get device(): string {
    return this.#o.tun.name;
  }

  /** The current peers (tests, metrics). */
  get peers(): Peer[] {
    return [...this.#peers.values()];
  }

  /** Data-path counters: packets in/out, drops by reason. */
  stats(): UdpStats {
    const s = this.#dp?.stats ?? new Float64Array(64);
    return readStats(s, this.#intake?.refused ?? 0);
  }

  async run(options?: SignalOptions): Promise<void> {
    const o = this.#o;
    const signal = options?.signal;
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
      await Promise.all([this.#watchLeases(signal), this.#housekeeping(signal)]);
    } finally {
      await this.#dp?.stop();
      o.udp.close();
      o.tun.close();
    }
  }

  async #watchLeases(signal?: AbortSignal): Promise<void> {
    const o = this.#o;
    const intake = this.#intake = udpLeaseIntake(o.config, this.lease, o.log);
    for await (const result of o.manager.watchLeases({ signal })) {
      const batch = intake.apply(result);
      if (batch.length === 0) continue;
      applyLeaseEvents(this.#peers, batch, o.port, o.log);
      try {
        this.#table.publish([...this.#peers.values()]);
      } catch (err) {
        o.log.error(describeError(err));
      }
    }
  }

  async #housekeeping(signal?: AbortSignal): Promise<void> {
    const interval = this.#o.housekeepingIntervalMs ?? HOUSEKEEPING_INTERVAL_MS;
    let lastRouteCheck = Date.now();
    while (await sleep(DROP_CHECK_MS, signal)) {
      this.#logDrops(interval);
      this.#exportMetrics();
      if (Date.now() - lastRouteCheck >= interval) {
        lastRouteCheck = Date.now();
        await this.#ensureRoute();
      }
    }
  }

  /** Adds what the data path counted since the last call to the process metrics. */
  #exportMetrics(): void {
    const now = this.stats();
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
    metrics.peersKnown.set(this.#peers.size);
    metrics.peersProgrammed.set(this.#peers.size);
  }

  /** One line per drop reason at most every `interval`; the first drop is logged within 1 s. */
  #logDrops(interval: number): void {
    const s = this.#dp?.stats;
    if (!s) return;
    const now = Date.now();
    for (const [slot, what, last] of dropReasons) {
      const delta = s[slot] - this.#logged[slot];
      if (delta <= 0 || now - (this.#loggedAt.get(slot) ?? -Infinity) < interval) continue;
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

  async #ensureRoute(): Promise<void> {
    const { netlink, route, log } = this.#o;
    try {
      const have = await netlink.routes({ family: 4, dst: route.dst });
      if (have.some((r) => r.index === route.index)) return;
      await netlink.routeReplace(route);
      log.info(`Route ${route.dst} dev ${this.#o.tun.name} restored`);
    } catch (err) {
      log.error(`Cannot restore route ${route.dst} dev ${this.#o.tun.name}: ${describeError(err)}`);
    }
  }
}
