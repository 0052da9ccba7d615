/**
 * Notices watches whose connection died without a reset reaching us (etcd host crash, NAT or
 * load-balancer idle timeout): such a stream stays open and silent forever. A quiet watch is
 * normal (leases rarely change), so silence alone proves nothing; instead, every `everyMs` the
 * watches silent for at least half of that are compared with etcd's current state, read by one
 * cheap request per check (a serializable `keys_only` range of one key):
 *
 * - a single-key watch is behind when the key's mod revision is newer than what the watch has
 *   delivered, or the key is gone while the watch last saw it (or never saw it) present;
 * - a prefix watch is behind when etcd's revision is newer than what the watch has delivered.
 *   With etcd used for nothing but this network that means an event was missed; with other
 *   writers it restarts quiet watches needlessly (cheap, and logged only at `-v=1`).
 *
 * A watch still behind after a short grace (an answer may be in flight) is restarted by its
 * owner from its last revision, on a new connection.
 */
import { sleep } from "../../util/abort.ts";
import { describeError, type Logger } from "../../util/log.ts";

export interface CheckedWatch {
  /** The watched key, or the prefix. */
  readonly key: string;
  /** Whether only `key` itself is watched. */
  readonly single: boolean;
  /** When the stream last received anything. */
  heardAt: number;
  /** The revision up to which the stream has delivered everything. */
  covered: bigint;
  /** Single key: whether it exists, per the stream's own events (undefined: unknown). */
  present?: boolean;
  /** Drops the stream's connection and watches again from its last revision. */
  restart(why: { silentMs: number; revision: bigint }): void;
}

export interface KeyState {
  /** etcd's current revision. */
  revision: bigint;
  /** The key's mod revision; undefined when the key does not exist. */
  modRevision?: bigint;
}

export interface WatchCheckerOptions {
  everyMs: number;
  /** Reads `key` (never a range) with its own timeout. */
  probe(key: string, signal: AbortSignal): Promise<KeyState>;
  log: Logger;
  /** Aborted when the client closes. */
  closed: AbortSignal;
  graceMs?: number;
  now?: () => number;
}

export class WatchChecker {
  readonly #o: WatchCheckerOptions;
  readonly #now: () => number;
  readonly #watches = new Set<CheckedWatch>();
  #timer?: ReturnType<typeof setInterval>;
  #busy = false;

  constructor(options: WatchCheckerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Checks `watch` from now on; the returned function stops that. */
  add(watch: CheckedWatch): () => void {
    this.#watches.add(watch);
    this.#timer ??= setInterval(() => void this.check(), this.#o.everyMs);
    return () => {
      this.#watches.delete(watch);
      if (this.#watches.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** One check (run every `everyMs`; tests call it directly). */
  async check(): Promise<void> {
    if (this.#busy || this.#o.closed.aborted) return;
    this.#busy = true;
    try {
      const now = this.#now();
      const quiet = [...this.#watches].filter((w) => now - w.heardAt >= this.#o.everyMs / 2);
      if (quiet.length === 0) return;
      const keys = new Map<string, KeyState>();
      let revision = 0n;
      for (const key of new Set(quiet.filter((w) => w.single).map((w) => w.key))) {
        const state = await this.#o.probe(key, this.#o.closed);
        keys.set(key, state);
        if (state.revision > revision) revision = state.revision;
      }
      // Prefix watches need only the revision: any one-key read returns it.
      if (revision === 0n) revision = (await this.#o.probe(quiet[0].key, this.#o.closed)).revision;
      const behind = (w: CheckedWatch): bigint | undefined => {
        const state = keys.get(w.key);
        if (!w.single || !state) return revision > w.covered ? revision : undefined;
        if (state.modRevision !== undefined) {
          return state.modRevision > w.covered ? state.modRevision : undefined;
        }
        return w.present === false ? undefined : state.revision;
      };
      const late = quiet.filter((w) => behind(w) !== undefined);
      if (late.length === 0) return;
      await sleep(this.#o.graceMs ?? 1000, this.#o.closed);
      for (const w of late) {
        const target = behind(w);
        if (target === undefined || !this.#watches.has(w) || this.#o.closed.aborted) continue;
        // A missing key stays missing for this watch unless it reports otherwise.
        if (w.single && keys.get(w.key)?.modRevision === undefined) w.present = false;
        w.restart({ silentMs: this.#now() - w.heardAt, revision: target });
      }
    } catch (err) {
      if (!this.#o.closed.aborted) {
        this.#o.log.v(1, `Cannot check etcd watches (trying again later): ${describeError(err)}`);
      }
    } finally {
      this.#busy = false;
    }
  }
}
