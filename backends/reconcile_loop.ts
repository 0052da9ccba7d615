/**
 * The one reconcile loop every backend runs (kube-router's desired-state table; flannel's
 * RouteNetwork loop made general). It keeps one desired object per peer (a route, a vxlan peer's
 * entries, a udp peer) and brings the kernel in line with them:
 *
 * - after every lease batch from the intake (`_lease_intake.ts`): at once for the objects the
 *   batch changed, when the policy can write one object alone, else by a full sweep;
 * - by a full sweep after every (re-)listing, every 10 s, and when kernel notifications were lost;
 * - as soon as the kernel reports a change that undoes something we want (`_kernel_events.ts`);
 * - after a failed pass, again with backoff (100 ms doubling to 10 s) until a pass succeeds.
 *
 * Work is serialised and coalesced: what is asked for while a pass runs is done by one more pass.
 * The loop counts passes, their failures and duration, restored objects and peers. What the
 * objects are, how one is written or removed, what a sweep compares and which kernel events matter
 * is the backend's {@link ReconcilePolicy}.
 */
import { NotFoundError } from "../kernel/netlink/errors.ts";
import type { EventGroup, Family, KernelEvent, Netlink } from "../kernel/netlink/types.ts";
import { formatIP4, formatIP4Net } from "../subnet/ip.ts";
import { describeSubnets } from "../subnet/lease_check.ts";
import type { Lease, LeaseEvent, SignalOptions, SubnetManager } from "../subnet/mod.ts";
import { Backoff, sleep } from "../util/abort.ts";
import { describeError, type Logger } from "../util/log.ts";
import type { FlannelMetrics } from "../util/metrics.ts";
import { clip } from "../util/quote.ts";
import { forEachKernelEvent } from "./_kernel_events.ts";
import type { LeaseIntake } from "./_lease_intake.ts";
import { type Network, RECONCILE_INTERVAL_MS, RETRY_BACKOFF_MS } from "./mod.ts";

/** What a policy may read of the loop. */
export interface ReconcileView<T> {
  /** The desired object per peer subnet (`"10.244.2.0/24"`), in lease order. */
  readonly desired: ReadonlyMap<string, T>;
  /** Whether the lease list is known: only then may a sweep remove what no lease wants. */
  readonly synced: boolean;
  /** Whether the last attempt to program `key` failed (its kernel events are left to the retry). */
  isFailing(key: string): boolean;
}

/** One pass, as the policy reports into it. */
export interface Pass<T> extends ReconcileView<T> {
  /** Counts one kernel object written. */
  wrote(): void;
  /** `key` is programmed as desired. */
  ok(key: string): void;
  /**
   * `key` could not be programmed: `message` is logged (again only when it changes) and the
   * pass is retried with backoff.
   */
  fail(key: string, message: string): void;
  /** Deletes a kernel object no peer wants (gone already is fine); logs a failure. */
  removeStale(what: string, remove: () => Promise<void>): Promise<void>;
}

export interface ReconcileStats {
  /** Kernel objects written. */
  readonly written: number;
  /** Stale kernel objects deleted. */
  readonly deleted: number;
  /** Peers whose programming failed. */
  readonly failed: number;
}

/** What a kernel event means to a backend. */
export interface Concern {
  /**
   * What happened, logged as `<what> by someone else, restoring` and counted as a restoration;
   * none for a change that needs no mention (a link event for host-gw).
   */
  readonly what?: string;
  /** The one desired object to write again; without it (or without `apply`) a full sweep runs. */
  readonly key?: string;
}

/** A backend's part: what to want for each peer, and how to put it into the kernel. */
export interface ReconcilePolicy<T> {
  /** The `kind` label of the pass metrics (`route`, `vxlan`, `udp`). */
  readonly kind: string;
  /**
   * The address family of its objects, default 4: a dual-stack network runs one loop per family,
   * and each reports its peers under its own `family` label.
   */
  readonly family?: Family;
  /** Names a pass in `<name> reconciliation failed: ...`. */
  readonly name: string;
  /** The kernel notifications to watch; none: no subscription, the sweeps only. */
  readonly eventGroups: readonly EventGroup[];
  /**
   * The key of a lease's object: its subnet of the policy's family (`"10.244.2.0/24"`,
   * `"fd00:244:2::/64"`), undefined when the lease has none; default the IPv4 subnet.
   */
  keyOf?(lease: Lease): string | undefined;
  /**
   * The object a usable peer lease asks for, undefined for none; logs the decision (`Subnet
   * added: ...`). `old` is what the lease's subnet had.
   */
  desire(lease: Lease, old: T | undefined): T | undefined | Promise<T | undefined>;
  /**
   * Writes one desired object at once, without comparing (an idempotent replace); optional:
   * without it every change waits for a full sweep.
   */
  apply?(key: string, want: T, pass: Pass<T>): Promise<void>;
  /** Removes the kernel object of a peer that went away; optional, as `apply`. */
  remove?(key: string, old: T, pass: Pass<T>): Promise<void>;
  /**
   * The full sweep: compares the kernel with `pass.desired`, writes what differs, and once
   * `pass.synced` removes what is ours but wanted by no peer.
   */
  sweep(pass: Pass<T>): Promise<void>;
  /**
   * Whether a change notification (never `resync`: that is the loop's) undoes what we want;
   * without it every notification of `eventGroups` runs a full sweep.
   */
  concerns?(event: KernelEvent, view: ReconcileView<T>): Concern | undefined;
}

export interface ReconcileLoopOptions<T> {
  readonly manager: Pick<SubnetManager, "watchLeases">;
  readonly intake: LeaseIntake;
  readonly netlink: Pick<Netlink, "subscribe">;
  readonly log: Logger;
  readonly metrics: FlannelMetrics;
  readonly policy: ReconcilePolicy<T>;
  /** The own lease. */
  readonly lease: Lease;
  readonly mtu: number;
  /** Period of the full sweep; default {@link RECONCILE_INTERVAL_MS}. */
  readonly reconcileIntervalMs?: number;
  /** Waits `ms`, resolving false at once when `signal` aborts (tests: a manual clock). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<boolean>;
  /** Called after every pass that did not throw (tests, benchmarks). */
  onReconciled?(stats: ReconcileStats): void;
}

/** The v2 line of a batch element: subnets, public IP and, when set, the backend data. */
function describeLease(l: Lease): string {
  const data = l.attrs.backendData === undefined
    ? ""
    : `, BackendData ${clip(l.attrs.backendData)}`;
  return `${describeSubnets(l)} (PublicIP ${formatIP4(l.attrs.publicIP)}${data})`;
}

export class ReconcileLoop<T> implements Network, ReconcileView<T> {
  readonly lease: Lease;
  readonly mtu: number;
  readonly #o: ReconcileLoopOptions<T>;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<boolean>;
  readonly #desired = new Map<string, T>();
  /** Keys whose last attempt failed, with the message logged for it. */
  readonly #failing = new Map<string, string>();
  #synced = false;
  // The work of the next turn.
  #sweepWanted = false;
  #applyWanted = false;
  readonly #toApply = new Set<string>();
  readonly #toRemove = new Map<string, T>();
  #draining?: Promise<void>;
  #retrying = false;
  readonly #backoff = new Backoff(RETRY_BACKOFF_MS.initial, RETRY_BACKOFF_MS.max);
  /** The last error a pass threw, logged once while it repeats. */
  #passError?: string;
  #signal?: AbortSignal;
  /** The `family` label of the peer gauges. */
  readonly #familyLabel: { family: string };

  constructor(options: ReconcileLoopOptions<T>) {
    this.#o = options;
    this.#familyLabel = { family: options.policy.family === 6 ? "ipv6" : "ipv4" };
    this.lease = options.lease;
    this.mtu = options.mtu;
    this.#sleep = options.sleep ?? sleep;
  }

  get desired(): ReadonlyMap<string, T> {
    return this.#desired;
  }

  get synced(): boolean {
    return this.#synced;
  }

  isFailing(key: string): boolean {
    return this.#failing.has(key);
  }

  /** Watches leases, the sweep timer and the kernel until `signal` aborts. */
  async run(options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    this.#signal = signal;
    await Promise.all([
      this.#watchLeases(signal),
      this.#periodic(signal),
      this.#watchKernel(signal),
    ]);
    await this.#draining;
  }

  /** A full sweep (joining one already waiting); resolves once it has run. */
  reconcile(): Promise<void> {
    this.#sweepWanted = true;
    return this.#drain();
  }

  async #watchLeases(signal?: AbortSignal): Promise<void> {
    const { manager, intake, log, metrics, policy } = this.#o;
    for await (const result of manager.watchLeases({ signal })) {
      await this.#take(intake.apply(result));
      // Peers of this loop's family (a dual-stack network's IPv4-only peers are not IPv6 ones).
      metrics.peersKnown.set(this.#desired.size, this.#familyLabel);
      if (result.snapshot) {
        // A (re-)listing: compare everything, and remove what leases that are gone had.
        const t0 = performance.now();
        this.#synced = true;
        await this.reconcile();
        log.info(
          `Synced ${this.#desired.size} peers with the kernel in ${
            (performance.now() - t0).toFixed(0)
          } ms`,
        );
      } else if (policy.apply) {
        this.#applyWanted = true;
        await this.#drain();
      } else {
        await this.reconcile();
      }
    }
  }

  /** Turns a batch into desired objects, and the writes and removals it calls for. */
  async #take(batch: readonly LeaseEvent[]): Promise<void> {
    const { policy, log } = this.#o;
    for (const [i, event] of batch.entries()) {
      const lease = event.lease;
      log.v(2, `Batch elem [${i}] is { ${event.type} ${describeLease(lease)} }`);
      const key = policy.keyOf ? policy.keyOf(lease) : formatIP4Net(lease.subnet);
      if (key === undefined) continue;
      const old = this.#desired.get(key);
      this.#failing.delete(key);
      const want = event.type === "added" ? await policy.desire(lease, old) : undefined;
      if (want !== undefined) {
        this.#desired.set(key, want);
        this.#toRemove.delete(key);
        if (policy.apply) this.#toApply.add(key);
        else this.#sweepWanted = true;
      } else if (old !== undefined) {
        this.#desired.delete(key);
        this.#toApply.delete(key);
        if (policy.remove) this.#toRemove.set(key, old);
        else this.#sweepWanted = true;
        log.info(`Subnet removed: ${key}`);
      }
    }
  }

  #hasWork(): boolean {
    return (this.#sweepWanted || this.#applyWanted) && !this.#signal?.aborted;
  }

  /** Runs turns until no work is left; callers share the run under way. */
  #drain(): Promise<void> {
    if (!this.#draining && this.#hasWork()) this.#draining = this.#drainLoop();
    return this.#draining ?? Promise.resolve();
  }

  async #drainLoop(): Promise<void> {
    try {
      while (this.#hasWork()) await this.#turn();
    } finally {
      // Reached only after a turn awaited, so `#draining` was set; no request falls in between.
      this.#draining = undefined;
    }
  }

  /** One pass: the removals and writes waiting, or a full sweep, which covers the writes. */
  async #turn(): Promise<void> {
    const { policy, metrics, log } = this.#o;
    const sweep = this.#sweepWanted;
    const removals = [...this.#toRemove];
    const applies = sweep ? [] : [...this.#toApply];
    this.#sweepWanted = this.#applyWanted = false;
    this.#toRemove.clear();
    this.#toApply.clear();

    const labels = { kind: policy.kind };
    metrics.reconcileRuns.inc(labels);
    const done = metrics.reconcileDuration.startTimer(labels);
    const pass = new PassRecord(this, this.#failing, log);
    let threw = false;
    try {
      for (const [key, old] of removals) await policy.remove!(key, old, pass);
      for (const key of applies) {
        const want = this.#desired.get(key);
        if (want !== undefined) await policy.apply!(key, want, pass);
      }
      if (sweep) await policy.sweep(pass);
      this.#passError = undefined;
    } catch (err) {
      threw = true;
      metrics.reconcileErrors.inc(labels);
      const text = describeError(err);
      if (text !== this.#passError) log.error(`${policy.name} reconciliation failed: ${text}`);
      this.#passError = text;
    }
    done();
    const stats = pass.stats();
    if (stats.failed > 0) metrics.reconcileErrors.inc(labels, stats.failed);
    metrics.peersProgrammed.set(this.#programmed(), this.#familyLabel);
    if (!threw) this.#o.onReconciled?.(stats);
    if (threw || stats.failed > 0) this.#retryLater();
    else this.#backoff.reset();
  }

  #programmed(): number {
    let n = 0;
    for (const key of this.#desired.keys()) if (!this.#failing.has(key)) n++;
    return n;
  }

  #retryLater(): void {
    if (this.#retrying || this.#signal?.aborted) return;
    this.#retrying = true;
    void this.#sleep(this.#backoff.next(), this.#signal).then((slept) => {
      this.#retrying = false;
      if (slept) void this.reconcile();
    });
  }

  async #periodic(signal?: AbortSignal): Promise<void> {
    const interval = this.#o.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS;
    while (await this.#sleep(interval, signal)) await this.reconcile();
  }

  /** Repairs soon after the kernel reports a change to something we want. */
  async #watchKernel(signal?: AbortSignal): Promise<void> {
    const { netlink, log, metrics, policy } = this.#o;
    if (policy.eventGroups.length === 0) return;
    await forEachKernelEvent(netlink, policy.eventGroups, log, signal, (event) => {
      // Notifications were lost: only a full sweep can tell what changed meanwhile.
      if (event.kind === "resync") {
        metrics.kernelEventOverflows.inc({ kind: policy.kind });
        return void this.reconcile();
      }
      const concern = policy.concerns ? policy.concerns(event, this) : {};
      if (concern === undefined) return;
      if (concern.what !== undefined) {
        log.info(`${concern.what} by someone else, restoring`);
        metrics.kernelObjectsRestored.inc({ kind: policy.kind });
      }
      if (concern.key !== undefined && policy.apply && this.#desired.has(concern.key)) {
        this.#toApply.add(concern.key);
        this.#applyWanted = true;
        void this.#drain();
      } else {
        void this.reconcile();
      }
    });
  }
}

/** The {@link Pass} of one turn: the loop's view, its failure table, the turn's counts. */
class PassRecord<T> implements Pass<T> {
  readonly #view: ReconcileView<T>;
  readonly #failing: Map<string, string>;
  readonly #log: Logger;
  #written = 0;
  #deleted = 0;
  #failed = 0;

  constructor(view: ReconcileView<T>, failing: Map<string, string>, log: Logger) {
    this.#view = view;
    this.#failing = failing;
    this.#log = log;
  }

  get desired(): ReadonlyMap<string, T> {
    return this.#view.desired;
  }

  get synced(): boolean {
    return this.#view.synced;
  }

  isFailing(key: string): boolean {
    return this.#failing.has(key);
  }

  wrote(): void {
    this.#written++;
  }

  ok(key: string): void {
    this.#failing.delete(key);
  }

  fail(key: string, message: string): void {
    this.#failed++;
    if (this.#failing.get(key) !== message) this.#log.error(message);
    this.#failing.set(key, message);
  }

  async removeStale(what: string, remove: () => Promise<void>): Promise<void> {
    try {
      await remove();
      this.#deleted++;
      this.#log.v(2, `Removed stale ${what}`);
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        this.#log.error(`Failed to remove stale ${what}: ${describeError(err)}`);
      }
    }
  }

  stats(): ReconcileStats {
    return { written: this.#written, deleted: this.#deleted, failed: this.#failed };
  }
}
