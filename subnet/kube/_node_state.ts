/**
 * The peer-lease state behind `watchLeases`: the latest lease per flannel-managed node (fed by
 * the list+watch), what the consumer has been told, and which nodes changed since. Changes
 * coalesce per node, so a slow consumer costs at most one pending entry per node.
 */
import { subnetKeyOf } from "../lease_watcher.ts";
import type { Lease, LeaseEvent, LeaseWatchResult, NetworkConfig } from "../mod.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { Annotations } from "./annotations.ts";
import { isManaged, nodeToLease, sameLease } from "./node_lease.ts";
import type { Node } from "./types.ts";

export class NodeLeaseState {
  readonly #config: NetworkConfig;
  readonly #annotations: Annotations;
  readonly #log: Logger;
  #current = new Map<string, Lease>();
  #published = new Map<string, Lease>();
  #dirty = new Set<string>();
  #snapshotPending = false;
  /** The last conversion error logged per node (each distinct problem is logged once). */
  #problems = new Map<string, string>();

  constructor(config: NetworkConfig, annotations: Annotations, log: Logger) {
    this.#config = config;
    this.#annotations = annotations;
    this.#log = log;
  }

  /** Number of nodes with a usable lease. */
  get size(): number {
    return this.#current.size;
  }

  /** The lease for `node`, `null` when it is not flannel-managed, `undefined` if unusable. */
  #convert(node: Node): Lease | null | undefined {
    const name = node.metadata?.name ?? "";
    if (!isManaged(node, this.#annotations)) {
      this.#problems.delete(name);
      return null;
    }
    try {
      const lease = nodeToLease(node, this.#config, this.#annotations);
      this.#problems.delete(name);
      return lease;
    } catch (err) {
      const message = describeError(err);
      if (this.#problems.get(name) !== message) {
        this.#log.error(`Error turning node "${name}" to lease (skipping it): ${message}`);
        this.#problems.set(name, message);
      }
      return undefined;
    }
  }

  /** Applies one watch event. A node whose annotations cannot be used keeps its last lease. */
  apply(type: "ADDED" | "MODIFIED" | "DELETED", node: Node): void {
    const name = node.metadata?.name;
    if (!name) {
      this.#log.warn(`Ignoring a node ${type} event without metadata.name`);
      return;
    }
    if (type === "DELETED") {
      this.#problems.delete(name);
      if (this.#current.delete(name)) this.#dirty.add(name);
      return;
    }
    const lease = this.#convert(node);
    if (lease === undefined) return;
    if (lease === null) {
      if (this.#current.delete(name)) this.#dirty.add(name);
      return;
    }
    if (!sameLease(this.#current.get(name), lease)) {
      this.#current.set(name, lease);
      this.#dirty.add(name);
    }
  }

  /** Replaces everything with a fresh list; the next `take()` is a snapshot. */
  replace(nodes: readonly Node[]): void {
    const next = new Map<string, Lease>();
    const seen = new Set<string>();
    for (const node of nodes) {
      const name = node.metadata?.name;
      if (!name) continue;
      seen.add(name);
      const lease = this.#convert(node);
      if (lease) next.set(name, lease);
      else if (lease === undefined && this.#current.has(name)) {
        next.set(name, this.#current.get(name)!);
      }
    }
    for (const name of this.#problems.keys()) if (!seen.has(name)) this.#problems.delete(name);
    this.#current = next;
    this.#dirty.clear();
    this.#snapshotPending = true;
  }

  /** What to hand the consumer now: a snapshot after a (re-)list, else the coalesced changes. */
  take(): LeaseWatchResult | undefined {
    if (this.#snapshotPending) {
      this.#snapshotPending = false;
      this.#dirty.clear();
      this.#published = new Map(this.#current);
      return { snapshot: [...this.#current.values()] };
    }
    if (this.#dirty.size === 0) return undefined;
    const events: LeaseEvent[] = [];
    for (const name of this.#dirty) {
      const before = this.#published.get(name);
      const after = this.#current.get(name);
      if (before && (!after || subnetKeyOf(before) !== subnetKeyOf(after))) {
        events.push({ type: "removed", lease: before });
      }
      if (after && !sameLease(before, after)) events.push({ type: "added", lease: after });
      if (after) this.#published.set(name, after);
      else this.#published.delete(name);
    }
    this.#dirty.clear();
    return events.length > 0 ? { events } : undefined;
  }
}
