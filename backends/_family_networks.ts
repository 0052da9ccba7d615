/**
 * A network made of one reconcile loop per address family (dual stack: an IPv4 and an IPv6
 * loop, each with its family's policy), sharing one lease watch (`_lease_fanout.ts`).
 */
import type { Lease, SignalOptions } from "../subnet/mod.ts";
import type { Network } from "./mod.ts";

/** The networks of every enabled family, run together, as one {@link Network}. */
export class FamilyNetworks<N extends Network = Network> implements Network {
  constructor(readonly lease: Lease, readonly mtu: number, readonly families: readonly N[]) {}

  async run(options?: SignalOptions): Promise<void> {
    await Promise.all(this.families.map((n) => n.run(options)));
  }
}
