/**
 * An in-memory etcd behind the manager's {@link EtcdKV} seam, for fast unit tests: one store
 * revision per write, keys with create/mod revisions and versions, leases with a TTL on an
 * injected clock (a revoked or expired lease deletes its keys in one revision), compaction, and
 * watches from any revision that replay the history and then follow live writes. What the
 * client's contract says is kept: an unknown lease revokes quietly, `leaseTimeToLive` is -1 for
 * an unknown lease, a watch from a compacted revision yields one response with
 * `compactRevision` and ends, an aborted watch ends quietly.
 *
 * Test hooks: `failNext()` makes calls fail, `breakWatches()` breaks every open watch stream (as
 * a lost connection does), `compact()`, `expireLeases()` after moving the clock, and `calls`
 * recording every call.
 */
import type { KeyValue, WatchEvent, WatchResponse } from "../../subnet/etcd/client.ts";
import type { EtcdKV } from "../../subnet/etcd/manager.ts";
import type { SignalOptions } from "../../subnet/mod.ts";

type Method = keyof EtcdKV;

interface StoredLease {
  readonly ttl: number;
  readonly expiresAt: number;
  readonly keys: Set<string>;
}

export interface MemoryEtcdOptions {
  /** Clock for lease expiry, default `Date.now`. */
  now?: () => number;
}

export class MemoryEtcd implements EtcdKV {
  /** Every call through the seam, in order. */
  readonly calls: Array<{ method: Method; args: unknown[] }> = [];
  #now: () => number;
  #revision = 1n;
  #compacted = 0n;
  #keys = new Map<string, KeyValue>();
  /** One entry per revision that changed something. */
  #history: Array<{ revision: bigint; events: WatchEvent[] }> = [];
  #leases = new Map<string, StoredLease>();
  #nextLease = 0x694d7a1c2b3e4f01n;
  #failures = new Map<Method, Error[]>();
  #wakers = new Set<() => void>();
  #breakers = new Set<(err: Error) => void>();

  constructor(options: MemoryEtcdOptions = {}) {
    this.#now = options.now ?? (() => Date.now());
  }

  /** The current store revision. */
  get revision(): bigint {
    return this.#revision;
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.#wakers.size;
  }

  /** Makes the next `times` calls of `method` throw `error`. */
  failNext(method: Method, error: Error = new Error("etcd is unavailable (injected)"), times = 1) {
    const list = this.#failures.get(method) ?? [];
    for (let i = 0; i < times; i++) list.push(error);
    this.#failures.set(method, list);
  }

  /** Ends every open watch with an error, as a broken connection does. */
  breakWatches(error = new Error("the watch stream broke (injected)")): void {
    for (const b of [...this.#breakers]) b(error);
  }

  /** Discards the history up to `revision`: watches from before it get `compactRevision`. */
  compact(revision: bigint = this.#revision): void {
    this.#compacted = revision;
    this.#history = this.#history.filter((h) => h.revision > revision);
  }

  /** Revokes every lease whose TTL has run out by the injected clock. */
  expireLeases(): void {
    for (const [id, lease] of this.#leases) {
      if (lease.expiresAt <= this.#now()) this.#revoke(id);
    }
  }

  get(key: string, opts?: SignalOptions): Promise<{ kv?: KeyValue; revision: bigint }> {
    return this.#call("get", [key], opts, () => {
      const kv = this.#keys.get(key);
      return { ...(kv ? { kv: { ...kv } } : {}), revision: this.#revision };
    });
  }

  range(prefix: string, opts?: SignalOptions): Promise<{ kvs: KeyValue[]; revision: bigint }> {
    return this.#call("range", [prefix], opts, () => ({
      kvs: [...this.#keys.values()].filter((kv) => kv.key.startsWith(prefix))
        .sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0).map((kv) => ({ ...kv })),
      revision: this.#revision,
    }));
  }

  put(key: string, value: string, opts?: SignalOptions & { lease?: string }): Promise<bigint> {
    return this.#call("put", [key, value, opts?.lease], opts, () => {
      this.#put(key, value, opts?.lease ?? "0");
      return this.#revision;
    });
  }

  createIfAbsent(
    key: string,
    value: string,
    opts?: SignalOptions & { lease?: string },
  ): Promise<boolean> {
    return this.#call("createIfAbsent", [key, value, opts?.lease], opts, () => {
      if (this.#keys.has(key)) return false;
      this.#put(key, value, opts?.lease ?? "0");
      return true;
    });
  }

  delete(key: string, opts?: SignalOptions): Promise<number> {
    return this.#call("delete", [key], opts, () => {
      if (!this.#keys.has(key)) return 0;
      this.#commit([this.#deletion(key)]);
      return 1;
    });
  }

  grantLease(ttlSeconds: number, opts?: SignalOptions): Promise<{ id: string; ttl: number }> {
    return this.#call("grantLease", [ttlSeconds], opts, () => {
      const id = String(this.#nextLease++);
      this.#leases.set(id, {
        ttl: ttlSeconds,
        expiresAt: this.#now() + ttlSeconds * 1000,
        keys: new Set(),
      });
      return { id, ttl: ttlSeconds };
    });
  }

  revokeLease(id: string, opts?: SignalOptions): Promise<void> {
    return this.#call("revokeLease", [id], opts, () => this.#revoke(id));
  }

  leaseTimeToLive(id: string, opts?: SignalOptions): Promise<number> {
    return this.#call("leaseTimeToLive", [id], opts, () => {
      const lease = this.#leases.get(id);
      return lease ? Math.ceil((lease.expiresAt - this.#now()) / 1000) : -1;
    });
  }

  async *watch(
    prefix: string,
    fromRevision: bigint,
    opts: SignalOptions & { prefix?: boolean },
  ): AsyncIterable<WatchResponse> {
    this.calls.push({ method: "watch", args: [prefix, fromRevision, opts.prefix] });
    const failure = this.#failures.get("watch")?.shift();
    if (failure) throw failure;
    const signal = opts.signal;
    const matches = (key: string) =>
      opts.prefix === false ? key === prefix : key.startsWith(prefix);
    let next = fromRevision === 0n ? this.#revision + 1n : fromRevision;
    if (next < this.#compacted) {
      yield {
        revision: this.#revision,
        events: [],
        compactRevision: this.#compacted,
        canceled: true,
      };
      return;
    }
    let wake = () => {};
    let broken: Error | undefined;
    const waker = () => wake();
    const breaker = (err: Error) => {
      broken = err;
      wake();
    };
    this.#wakers.add(waker);
    this.#breakers.add(breaker);
    signal?.addEventListener("abort", waker);
    try {
      while (!signal?.aborted) {
        if (broken) throw broken;
        const due = this.#history.filter((h) => h.revision >= next);
        for (const h of due) {
          next = h.revision + 1n;
          const events = h.events.filter((e) => matches(e.kv.key));
          if (events.length > 0) yield { revision: h.revision, events };
          if (signal?.aborted || broken) break;
        }
        if (due.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#wakers.delete(waker);
      this.#breakers.delete(breaker);
      signal?.removeEventListener("abort", waker);
    }
  }

  #put(key: string, value: string, lease: string): void {
    if (lease !== "0" && !this.#leases.has(lease)) {
      throw new Error(`Cannot put "${key}": etcdserver: requested lease not found`);
    }
    const old = this.#keys.get(key);
    if (old && old.lease !== "0") this.#leases.get(old.lease)?.keys.delete(key);
    const revision = this.#revision + 1n;
    const kv: KeyValue = {
      key,
      value,
      lease,
      createRevision: old?.createRevision ?? revision,
      modRevision: revision,
      version: (old?.version ?? 0n) + 1n,
    };
    if (lease !== "0") this.#leases.get(lease)!.keys.add(key);
    this.#keys.set(key, kv);
    this.#commit([{ type: "put", kv: { ...kv } }]);
  }

  #deletion(key: string): WatchEvent {
    const old = this.#keys.get(key)!;
    if (old.lease !== "0") this.#leases.get(old.lease)?.keys.delete(key);
    this.#keys.delete(key);
    const kv = { key, value: "", lease: "0", createRevision: 0n, modRevision: 0n, version: 0n };
    return { type: "delete", kv };
  }

  /** Revokes a lease: its keys go in one revision. An unknown lease is not an error. */
  #revoke(id: string): void {
    const lease = this.#leases.get(id);
    if (!lease) return;
    this.#leases.delete(id);
    const events = [...lease.keys].map((key) => this.#deletion(key));
    if (events.length > 0) this.#commit(events);
  }

  /** Writes `events` as the next revision and wakes the watches. */
  #commit(events: WatchEvent[]): void {
    const revision = ++this.#revision;
    for (const e of events) e.kv.modRevision = revision;
    this.#history.push({ revision, events });
    for (const wake of [...this.#wakers]) wake();
  }

  async #call<T>(
    method: Method,
    args: unknown[],
    opts: SignalOptions | undefined,
    fn: () => T,
  ): Promise<T> {
    this.calls.push({ method, args });
    await Promise.resolve();
    opts?.signal?.throwIfAborted();
    const failure = this.#failures.get(method)?.shift();
    if (failure) throw failure;
    return fn();
  }
}
