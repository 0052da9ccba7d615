/**
 * The consumer side of a lease watch (flannel pkg/subnet/etcd/registry.go (watches), flannel's `LeaseWatcher`): a pure state
 * machine, no I/O. It remembers the known remote leases and turns snapshots and raw events into
 * the event batches a backend applies. The own lease is never reported.
 */
import { netEqual } from "./ip.ts";
import type { Lease, LeaseEvent, LeaseWatchResult } from "./mod.ts";

/** Whether two leases of the same subnet say the same (attributes and IPv6 subnet). */
export function sameAttrs(a: Lease, b: Lease): boolean {
  const x = a.attrs, y = b.attrs;
  return x.publicIP === y.publicIP && x.publicIPv6 === y.publicIPv6 &&
    x.backendType === y.backendType && x.backendData === y.backendData &&
    x.backendV6Data === y.backendV6Data && netEqual(a.ipv6Subnet, b.ipv6Subnet);
}

export interface LeaseWatcherOptions {
  /**
   * When a snapshot shows a known lease with changed attributes, report it as added again.
   * flannel keeps the stale attributes silently; we default to reporting the change (a peer that
   * re-registered with a new VTEP MAC or public IP while we were disconnected must be re-programmed).
   */
  reportChangedOnResync?: boolean;
}

/** A key under which `sameSubnet` leases collide (the families the lease has enabled). */
export function subnetKeyOf(lease: Lease): string {
  const v4 = `${lease.subnet.ip}/${lease.subnet.prefix}`;
  const v6 = lease.ipv6Subnet ? `${lease.ipv6Subnet.ip}/${lease.ipv6Subnet.prefix}` : "";
  if (lease.enableIPv4 && lease.enableIPv6) return `${v4}&${v6}`;
  return lease.enableIPv6 ? `&${v6}` : v4;
}

export class LeaseWatcher {
  #ownKey: string | undefined;
  #known = new Map<string, Lease>();
  #reportChanged: boolean;

  constructor(ownLease: Lease | undefined, options: LeaseWatcherOptions = {}) {
    this.#ownKey = ownLease ? subnetKeyOf(ownLease) : undefined;
    this.#reportChanged = options.reportChangedOnResync ?? true;
  }

  /** The remote leases currently known. */
  get leases(): Lease[] {
    return [...this.#known.values()];
  }

  /** Whether a remote lease with the subnet(s) of `lease` is known. */
  has(lease: Lease): boolean {
    return this.#known.has(subnetKeyOf(lease));
  }

  /** Applies one watch result; returns the batch to hand to the backend (possibly empty). */
  apply(result: LeaseWatchResult): LeaseEvent[] {
    return result.snapshot !== undefined
      ? this.#reset(result.snapshot)
      : this.#update(result.events);
  }

  #update(events: readonly LeaseEvent[]): LeaseEvent[] {
    const batch: LeaseEvent[] = [];
    for (const event of events) {
      const key = subnetKeyOf(event.lease);
      if (key === this.#ownKey) continue;
      if (event.type === "added") {
        this.#known.set(key, event.lease);
        batch.push(event);
      } else {
        const old = this.#known.get(key);
        this.#known.delete(key);
        batch.push(old ? { type: "removed", lease: old } : event);
      }
    }
    return batch;
  }

  #reset(snapshot: readonly Lease[]): LeaseEvent[] {
    const batch: LeaseEvent[] = [];
    const next = new Map<string, Lease>();
    for (const lease of snapshot) {
      const key = subnetKeyOf(lease);
      if (key === this.#ownKey) continue;
      const old = this.#known.get(key);
      if (!old || (this.#reportChanged && !sameAttrs(old, lease))) {
        batch.push({ type: "added", lease });
      }
      next.set(key, lease);
    }
    for (const [key, old] of this.#known) {
      if (!next.has(key)) batch.push({ type: "removed", lease: old });
    }
    this.#known = next;
    return batch;
  }
}
