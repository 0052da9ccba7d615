/**
 * Every backend's lease intake: the lease watch results go through here on their way to the
 * backend, so no backend ever sees a lease that fails `peerLeaseProblem` (a missing or unusable
 * public IP, a subnet outside the Network or overlapping ours, another backend's lease, bad
 * backend data). Such a lease is logged once, with its source and the reason, and logged again
 * only when it changes and is still bad. A lease that turns bad is reported to the backend as
 * removed, so its kernel state goes; one that turns good is reported as added.
 */
import {
  describeSubnets,
  isOwnLease,
  peerLeaseProblem,
  type PeerLeaseRules,
} from "../subnet/lease_check.ts";
import { LeaseWatcher, sameAttrs, subnetKeyOf } from "../subnet/lease_watcher.ts";
import type { Lease, LeaseEvent, LeaseWatchResult } from "../subnet/mod.ts";
import type { Logger } from "../util/log.ts";

export interface LeaseIntakeOptions extends PeerLeaseRules {
  readonly log: Logger;
}

export class LeaseIntake {
  readonly #o: LeaseIntakeOptions;
  readonly #watcher: LeaseWatcher;
  /** The leases refused, by subnet key, as last logged. */
  readonly #refused = new Map<string, Lease>();

  constructor(options: LeaseIntakeOptions) {
    this.#o = options;
    this.#watcher = new LeaseWatcher(options.own);
  }

  /** The remote leases accepted and currently known. */
  get leases(): Lease[] {
    return this.#watcher.leases;
  }

  /** How many leases are currently refused. */
  get refused(): number {
    return this.#refused.size;
  }

  /** Applies one watch result; returns the batch of usable changes for the backend. */
  apply(result: LeaseWatchResult): LeaseEvent[] {
    if (result.snapshot !== undefined) {
      const present = new Set<string>();
      const usable = result.snapshot.filter((lease) => {
        present.add(subnetKeyOf(lease));
        return this.#admit(lease);
      });
      for (const key of this.#refused.keys()) if (!present.has(key)) this.#refused.delete(key);
      return this.#watcher.apply({ snapshot: usable });
    }
    const events: LeaseEvent[] = [];
    for (const event of result.events) {
      const known = this.#watcher.has(event.lease);
      if (event.type === "removed") {
        // A refused lease that goes away was never programmed: nothing to tell the backend.
        if (this.#refused.delete(subnetKeyOf(event.lease)) && !known) continue;
        events.push(event);
      } else if (this.#admit(event.lease)) {
        events.push(event);
      } else if (known) {
        events.push({ type: "removed", lease: event.lease });
      }
    }
    return this.#watcher.apply({ events });
  }

  /**
   * Whether `lease` may go to the backend: not our own, and usable. A refusal is logged unless
   * it was logged for this same lease.
   */
  #admit(lease: Lease): boolean {
    if (isOwnLease(lease, this.#o.own)) return false;
    const key = subnetKeyOf(lease);
    const why = peerLeaseProblem(lease, this.#o);
    if (why === undefined) {
      this.#refused.delete(key);
      return true;
    }
    const last = this.#refused.get(key);
    if (!last || !sameAttrs(last, lease) || last.source !== lease.source) {
      const of = lease.source ? `of ${lease.source} ` : "";
      this.#o.log.warn(`Ignoring the lease ${of}for ${describeSubnets(lease)}: ${why}`);
    }
    this.#refused.set(key, lease);
    return false;
  }
}
