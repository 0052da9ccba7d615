/**
 * The etcd subnet manager (flannel pkg/subnet/etcd/local_manager.go): network config from `<prefix>/config`, leases under
 * `<prefix>/subnets/<key>` attached to 24 h etcd leases, acquisition, renewal and the all-leases
 * watch. Talks to etcd only through the `EtcdKV` seam (the JSON-gateway client in production).
 */
import { describeError, type Logger } from "../../util/log.ts";
import { Backoff, isAbort, sleep } from "../../util/abort.ts";
import { type FlannelMetrics, unservedMetrics } from "../../util/metrics.ts";
import { quote } from "../../util/quote.ts";
import { findOwnLease, isLeased4, leaseCompatible, pickFreeSubnet } from "../allocate.ts";
import { ConfigError, parseNetworkConfig } from "../config.ts";
import {
  formatIP4,
  formatIP4Net,
  formatIP6Net,
  type IP4Net,
  type IP6Net,
  overlaps4,
  overlaps6,
} from "../ip.ts";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "../lease_attrs.ts";
import {
  type Lease,
  type LeaseAttrs,
  type LeaseEvent,
  LeaseRevokedError,
  type LeaseWatchResult,
  type NetworkConfig,
  type SignalOptions,
  type SubnetManager,
} from "../mod.ts";
import { formatDuration, LEASE_TTL_SECONDS, RENEW_RETRY_MS, renewDelay } from "../renew.ts";
import { makeSubnetKey, parseSubnetKey } from "../subnet_key.ts";
import type { KeyValue, WatchResponse } from "./client.ts";

/** The part of the etcd client the manager uses (the real one is `EtcdClient`). */
export interface EtcdKV {
  get(key: string, opts?: SignalOptions): Promise<{ kv?: KeyValue; revision: bigint }>;
  range(prefix: string, opts?: SignalOptions): Promise<{ kvs: KeyValue[]; revision: bigint }>;
  put(key: string, value: string, opts?: SignalOptions & { lease?: string }): Promise<bigint>;
  createIfAbsent(
    key: string,
    value: string,
    opts?: SignalOptions & { lease?: string },
  ): Promise<boolean>;
  delete(key: string, opts?: SignalOptions): Promise<number>;
  grantLease(ttlSeconds: number, opts?: SignalOptions): Promise<{ id: string; ttl: number }>;
  revokeLease(id: string, opts?: SignalOptions): Promise<void>;
  leaseTimeToLive(id: string, opts?: SignalOptions): Promise<number>;
  watch(
    prefix: string,
    fromRevision: bigint,
    opts: SignalOptions & { prefix?: boolean },
  ): AsyncIterable<WatchResponse>;
}

export interface EtcdSubnetManagerOptions {
  /** `--etcd-prefix`, normalised here like Go's `path.Join`. */
  prefix: string;
  log: Logger;
  /** Where renewals and watch reconnects are counted; default: counted nowhere. */
  metrics?: FlannelMetrics;
  /** `FLANNEL_SUBNET` / `FLANNEL_IPV6_SUBNET` of the previous subnet.env, for reuse. */
  previousSubnet?: IP4Net;
  previousIPv6Subnet?: IP6Net;
  /** `--subnet-lease-renew-margin` in minutes. */
  renewMarginMinutes?: number;
  now?: () => number;
  random?: () => number;
}

/** Attempts at creating a lease before giving up (another node may win each race). */
const ACQUIRE_ATTEMPTS = 10;

/** Go's `path.Join` for an absolute etcd prefix: collapses duplicate and trailing slashes. */
export function normalizePrefix(prefix: string): string {
  const parts = prefix.split("/").filter((p) => p !== "" && p !== ".");
  return "/" + parts.join("/");
}

/** Every lease as listed at one revision. */
type Listing = { leases: StoredLease[]; revision: bigint };

interface StoredLease {
  key: string;
  kv: KeyValue;
  lease: Lease;
}

export class EtcdSubnetManager implements SubnetManager {
  readonly name: string;
  #kv: EtcdKV;
  #log: Logger;
  #metrics: FlannelMetrics;
  #prefix: string;
  #previous?: IP4Net;
  #previous6?: IP6Net;
  #margin: number;
  #now: () => number;
  #random: () => number;
  /** The listing made while acquiring the lease, reused once by the first watch. */
  #lastListing?: { leases: StoredLease[]; revision: bigint; at: number };
  /** The etcd lease id and key of the own lease, once acquired. */
  #own?: { key: string; leaseId: string; attrs: LeaseAttrs };
  /** Undecodable keys and values, with the problem logged (once per key and problem). */
  #undecodable = new Map<string, string>();

  constructor(kv: EtcdKV, options: EtcdSubnetManagerOptions) {
    this.#kv = kv;
    this.#log = options.log;
    this.#metrics = options.metrics ?? unservedMetrics();
    this.#prefix = normalizePrefix(options.prefix);
    this.#previous = options.previousSubnet;
    this.#previous6 = options.previousIPv6Subnet;
    this.#margin = options.renewMarginMinutes ?? 60;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.name = `Etcd Local Manager with Previous Subnet: ${
      this.#previous ? formatIP4Net(this.#previous) : "None"
    }`;
  }

  get configKey(): string {
    return `${this.#prefix}/config`;
  }

  get subnetsPrefix(): string {
    return `${this.#prefix}/subnets/`;
  }

  async getNetworkConfig(options?: SignalOptions): Promise<NetworkConfig> {
    const { kv } = await this.#kv.get(this.configKey, options);
    if (!kv) {
      throw new ConfigError(
        `flannel config not found in etcd store. Did you create your config using etcdv3 API? ` +
          `(key "${this.configKey}"; create it with: ETCDCTL_API=3 etcdctl put ${this.configKey} ` +
          `'{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan"}}')`,
      );
    }
    try {
      return parseNetworkConfig(kv.value);
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new ConfigError(`${err.message} (in etcd key "${this.configKey}")`, { cause: err });
      }
      throw err;
    }
  }

  /** Lists and decodes every lease; undecodable keys or values are skipped with a warning. */
  async #listLeases(options?: SignalOptions): Promise<Listing> {
    const { kvs, revision } = await this.#kv.range(this.subnetsPrefix, options);
    const leases: StoredLease[] = [];
    const present = new Set<string>();
    for (const kv of kvs) {
      present.add(kv.key);
      const lease = this.#decode(kv);
      if (lease) leases.push({ key: kv.key, kv, lease });
    }
    for (const key of this.#undecodable.keys()) {
      if (!present.has(key)) this.#undecodable.delete(key);
    }
    return { leases, revision };
  }

  /**
   * The lease stored under `kv`, or undefined (logged once per key and problem, so re-lists
   * stay quiet) when its key or value cannot be decoded.
   */
  #decode(kv: KeyValue, expiration?: number): Lease | undefined {
    let problem: string;
    try {
      const subnets = parseSubnetKey(kv.key);
      try {
        const lease = {
          enableIPv4: true,
          enableIPv6: subnets.ipv6Subnet !== undefined,
          subnet: subnets.subnet,
          ipv6Subnet: subnets.ipv6Subnet,
          attrs: decodeLeaseAttrs(kv.value),
          expiration,
          source: `etcd key ${quote(kv.key)}`,
        };
        this.#undecodable.delete(kv.key);
        return lease;
      } catch (err) {
        problem = `Ignoring lease ${quote(kv.key)} with a bad value: ${describeError(err)}`;
      }
    } catch (err) {
      problem = `Ignoring bad subnet node ${quote(kv.key)}: ${describeError(err)}`;
    }
    if (this.#undecodable.get(kv.key) !== problem) this.#log.warn(problem);
    this.#undecodable.set(kv.key, problem);
    return undefined;
  }

  #keyOf(subnet: IP4Net, ipv6Subnet?: IP6Net): string {
    return this.subnetsPrefix + makeSubnetKey(subnet, ipv6Subnet);
  }

  async acquireLease(attrs: LeaseAttrs, options?: SignalOptions): Promise<Lease> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= ACQUIRE_ATTEMPTS; attempt++) {
      const lease = await this.#tryAcquire(attrs, options);
      if (lease) return lease;
      lastError = new Error("another node created the same subnet first");
      this.#log.info(`Subnet collision with another node, retrying (attempt ${attempt})`);
      // Jittered, growing pause so that racing nodes spread out instead of colliding again.
      await sleep(Math.floor(Math.random() * Math.min(1000, 25 * 2 ** attempt)), options?.signal);
      options?.signal?.throwIfAborted();
    }
    throw new Error(`failed to acquire lease after ${ACQUIRE_ATTEMPTS} attempts`, {
      cause: lastError,
    });
  }

  /**
   * One pass of flannel pkg/subnet/etcd/local_manager.go (AcquireLease); `undefined` means "lost
   * a creation race, try again". The config, the listing and a fresh etcd lease are requested at
   * once (one round trip instead of three); the etcd lease is revoked unless it ends up holding
   * our key.
   */
  async #tryAcquire(attrs: LeaseAttrs, options?: SignalOptions): Promise<Lease | undefined> {
    const [configR, listedR, grantR] = await Promise.allSettled([
      this.getNetworkConfig(options),
      this.#listLeases(options),
      this.#kv.grantLease(LEASE_TTL_SECONDS, options),
    ]);
    let spare = grantR.status === "fulfilled" ? grantR.value : undefined;
    try {
      for (const r of [configR, listedR, grantR]) if (r.status === "rejected") throw r.reason;
      const lease = await this.#acquireWith(
        (configR as PromiseFulfilledResult<NetworkConfig>).value,
        (listedR as PromiseFulfilledResult<Listing>).value,
        spare!,
        attrs,
        options,
      );
      if (lease && this.#own?.leaseId === spare?.id) spare = undefined; // it holds our key now
      return lease;
    } finally {
      if (spare) await this.#kv.revokeLease(spare.id).catch(() => {});
    }
  }

  /** {@link #tryAcquire} once the config, the listing and an unused etcd lease (`grant`) are in. */
  async #acquireWith(
    config: NetworkConfig,
    listed: Listing,
    grant: { id: string; ttl: number },
    attrs: LeaseAttrs,
    options?: SignalOptions,
  ): Promise<Lease | undefined> {
    const leases = listed.leases;
    // The watch that follows starts from this listing instead of listing all leases again
    // (with thousands of leases that second listing costs as much as the first).
    this.#lastListing = { ...listed, leases: [...listed.leases], at: this.#now() };
    const value = encodeLeaseAttrs(attrs);

    // 3. Reuse by PublicIP.
    let mine = findOwnLease(leases.map((l) => l.lease), attrs.publicIP, attrs.publicIPv6);
    while (mine) {
      const stored = leases.find((l) => l.lease === mine)!;
      if (leaseCompatible(config, mine)) {
        this.#log.info(
          `Found lease (ip: ${formatIP4Net(mine.subnet)} ipv6: ${
            mine.ipv6Subnet ? formatIP6Net(mine.ipv6Subnet) : "::/0"
          }) for current IP (${formatIP4(attrs.publicIP)}), reusing`,
        );
        return await this.#update(stored, attrs, value, grant, options);
      }
      this.#log.info(
        `Lease (ip: ${formatIP4Net(mine.subnet)}) for current IP (${
          formatIP4(attrs.publicIP)
        }) not compatible with current config, deleting`,
      );
      await this.#kv.delete(stored.key, options);
      leases.splice(leases.indexOf(stored), 1);
      mine = findOwnLease(leases.map((l) => l.lease), attrs.publicIP, attrs.publicIPv6);
    }

    // 4. Reuse the previous subnet from subnet.env; 5. else pick a free one at random.
    const current = leases.map((l) => l.lease);
    let choice: { subnet: IP4Net; ipv6Subnet?: IP6Net } | undefined;
    if (this.#previous && !isLeased4(current, this.#previous)) {
      const previous = { subnet: this.#previous, ipv6Subnet: this.#previous6 };
      if (leaseCompatible(config, { ...previous, enableIPv4: true, enableIPv6: false, attrs })) {
        choice = previous;
      } else {
        this.#log.info(
          `Found previously leased subnet (${
            formatIP4Net(this.#previous)
          }) that is not compatible with the Etcd network config, ignoring`,
        );
      }
    }
    const { subnet, ipv6Subnet } = choice ?? pickFreeSubnet(config, current, {
      leasesAt: this.subnetsPrefix.slice(0, -1),
      random: this.#random,
    });

    const key = this.#keyOf(subnet, ipv6Subnet);
    if (!await this.#kv.createIfAbsent(key, value, { ...options, lease: grant.id })) {
      return undefined;
    }
    if (ipv6Subnet && await this.#lostDualStackRace(config, key, subnet, ipv6Subnet, options)) {
      await this.#kv.delete(key, options).catch(() => {});
      return undefined;
    }
    this.#own = { key, leaseId: grant.id, attrs };
    return {
      enableIPv4: true,
      enableIPv6: ipv6Subnet !== undefined,
      subnet,
      ipv6Subnet,
      attrs,
      expiration: this.#now() + grant.ttl * 1000,
      source: `etcd key ${quote(key)}`,
    };
  }

  /**
   * A dual-stack key names both subnets, so two nodes that drew the same IPv4 subnet with
   * different IPv6 subnets (or the reverse) both pass the create-if-absent transaction: flannel
   * then runs two nodes on one subnet. After creating, the node whose key was created later than
   * an overlapping one yields (every node decides the same from the creation revisions).
   */
  async #lostDualStackRace(
    config: NetworkConfig,
    key: string,
    subnet: IP4Net,
    ipv6Subnet: IP6Net,
    options?: SignalOptions,
  ): Promise<boolean> {
    const { leases } = await this.#listLeases(options);
    const ours = leases.find((l) => l.key === key);
    if (!ours) return true;
    return leases.some((l) =>
      l.key !== key && l.kv.createRevision < ours.kv.createRevision &&
      ((config.enableIPv4 && overlaps4(l.lease.subnet, subnet)) ||
        (l.lease.ipv6Subnet !== undefined && overlaps6(l.lease.ipv6Subnet, ipv6Subnet)))
    );
  }

  /**
   * Re-puts an existing lease with our attributes. An ordinary lease moves to the fresh 24 h etcd
   * lease `grant` (and the old one is revoked); a reservation (no etcd lease) stays a reservation
   * (and `grant` stays unused: the lease returned has no expiration).
   */
  async #update(
    stored: StoredLease,
    attrs: LeaseAttrs,
    value: string,
    grant: { id: string; ttl: number },
    options?: SignalOptions,
  ): Promise<Lease> {
    const reservation = stored.kv.lease === "0";
    let expiration: number | undefined;
    let leaseId = "0";
    if (reservation) {
      await this.#kv.put(stored.key, value, options);
    } else {
      await this.#kv.put(stored.key, value, { ...options, lease: grant.id });
      await this.#kv.revokeLease(stored.kv.lease).catch(() => {});
      leaseId = grant.id;
      expiration = this.#now() + grant.ttl * 1000;
    }
    this.#own = { key: stored.key, leaseId, attrs };
    return { ...stored.lease, attrs, expiration };
  }

  async *watchLeases(options?: SignalOptions): AsyncIterable<LeaseWatchResult> {
    const signal = options?.signal;
    const backoff = new Backoff();
    while (!signal?.aborted) {
      // Snapshot (retried until it works: flannel gives up on the first failure).
      let snap: { leases: StoredLease[]; revision: bigint } | undefined = this.#takeRecentListing();
      try {
        snap ??= await this.#listLeases(options);
      } catch (err) {
        if (isAbort(err, signal)) return;
        this.#log.error(`could not list leases (retrying): ${describeError(err)}`);
        await sleep(backoff.next(), signal);
        continue;
      }
      backoff.reset();
      let revision = snap.revision + 1n;
      const snapshot = snap.leases.map((l) => l.lease);
      // The listing's raw keys and values are not needed any more: this generator lives as long
      // as the watch, so keeping `snap` would hold them (thousands of strings) until a re-list.
      snap = undefined;
      yield { snapshot };
      // Watch from the snapshot, resuming from the last revision after each drop.
      relist: while (!signal?.aborted) {
        try {
          for await (const resp of this.#kv.watch(this.subnetsPrefix, revision, { signal })) {
            if (resp.compactRevision !== undefined) {
              this.#log.warn(
                `Watch of ${this.subnetsPrefix} fell behind compaction (revision ${resp.compactRevision}), re-listing`,
              );
              break relist;
            }
            backoff.reset();
            const events = resp.events.flatMap((e): LeaseEvent[] => {
              const lease = e.type === "put" ? this.#decode(e.kv) : undefined;
              if (lease) return [{ type: "added", lease }];
              // Deleted, or overwritten with a value that cannot be used: either way gone.
              if (e.type === "delete") this.#undecodable.delete(e.kv.key);
              const gone = this.#removed(e.kv.key);
              return gone ? [{ type: "removed", lease: gone }] : [];
            });
            revision = resp.revision + 1n;
            if (events.length > 0) yield { events };
          }
        } catch (err) {
          if (isAbort(err, signal)) return;
          this.#log.warn(
            `Watch of ${this.subnetsPrefix} interrupted (resuming from revision ${revision}): ${
              describeError(err)
            }`,
          );
          this.#metrics.watchReconnects.inc({ source: "etcd" });
        }
        if (signal?.aborted) return;
        await sleep(backoff.next(), signal);
      }
    }
  }

  /** The acquisition's listing if it is under 30 s old; events after it arrive through the watch. */
  #takeRecentListing() {
    const listing = this.#lastListing;
    this.#lastListing = undefined;
    return listing && this.#now() - listing.at < 30_000 ? listing : undefined;
  }

  #removed(key: string): Lease | undefined {
    try {
      const { subnet, ipv6Subnet } = parseSubnetKey(key);
      return {
        enableIPv4: true,
        enableIPv6: ipv6Subnet !== undefined,
        subnet,
        ipv6Subnet,
        attrs: { publicIP: 0 },
      };
    } catch {
      return undefined;
    }
  }

  async completeLease(lease: Lease, options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    const own = this.#own;
    if (!own) throw new Error("completeLease called before acquireLease");
    let expiration = lease.expiration;
    const watchAbort = new AbortController();
    const onAbort = () => watchAbort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const revoked = this.#watchOwnKey(own.key, watchAbort.signal);
    try {
      while (!signal?.aborted) {
        const delay = renewDelay(expiration, this.#now(), this.#margin);
        if (delay !== undefined) {
          this.#log.info(`Waiting for ${formatDuration(delay)} to renew lease`);
        }
        const timer = sleep(delay ?? 2 ** 31 - 1, watchAbort.signal).then(() => "timer" as const);
        const which = await Promise.race([timer, revoked]);
        if (which === "revoked") {
          throw new LeaseRevokedError("Lease has been revoked. Shutting down daemon.");
        }
        if (signal?.aborted) return;
        try {
          expiration = await this.#renew(own, signal);
          this.#log.info(`Lease renewed, new expiration: ${new Date(expiration).toISOString()}`);
          this.#metrics.leaseRenewals.inc({ result: "success" });
          this.#metrics.leaseExpiry.set(expiration / 1000);
        } catch (err) {
          if (isAbort(err, signal)) return;
          this.#log.error(`Error renewing lease (trying again in 1 min): ${describeError(err)}`);
          this.#metrics.leaseRenewals.inc({ result: "error" });
          expiration = this.#now() + RENEW_RETRY_MS + this.#margin * 60_000;
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      watchAbort.abort();
      await revoked.catch(() => {});
    }
  }

  /** Grants a fresh 24 h etcd lease, re-puts the own key on it, revokes the old one. */
  async #renew(own: { key: string; leaseId: string; attrs: LeaseAttrs }, signal?: AbortSignal) {
    const grant = await this.#kv.grantLease(LEASE_TTL_SECONDS, { signal });
    await this.#kv.put(own.key, encodeLeaseAttrs(own.attrs), { signal, lease: grant.id });
    const old = own.leaseId;
    own.leaseId = grant.id;
    if (old !== "0") await this.#kv.revokeLease(old).catch(() => {});
    return this.#now() + grant.ttl * 1000;
  }

  /**
   * Resolves "revoked" when the own key is deleted; survives watch drops and compaction
   * (re-reading the key). Resolves "stopped" when `signal` aborts.
   */
  async #watchOwnKey(key: string, signal: AbortSignal): Promise<"revoked" | "stopped"> {
    const backoff = new Backoff();
    let revision: bigint | undefined;
    while (!signal.aborted) {
      try {
        if (revision === undefined) {
          const got = await this.#kv.get(key, { signal });
          if (!got.kv) return "revoked";
          revision = got.revision + 1n;
        }
        for await (const resp of this.#kv.watch(key, revision, { signal, prefix: false })) {
          if (resp.compactRevision !== undefined) {
            revision = undefined;
            break;
          }
          backoff.reset();
          if (resp.events.some((e) => e.type === "delete" && e.kv.key === key)) return "revoked";
          revision = resp.revision + 1n;
        }
      } catch (err) {
        if (isAbort(err, signal)) return "stopped";
        this.#log.warn(`Watch of own lease ${key} interrupted, resuming: ${describeError(err)}`);
      }
      await sleep(backoff.next(), signal);
    }
    return "stopped";
  }
}
