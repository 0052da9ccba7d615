/**
 * nftables mode (flannel pkg/trafficmngr/nftables/nftables.go): one table per family (`ip flannel-ipv4`, `ip6 flannel-ipv6`)
 * replaced as a whole in one `nft -f` transaction whenever what it should hold changes, plus a
 * resync (flannel has none) that compares `nft list table` with what was installed.
 */
import { describeError, type Logger } from "../../util/log.ts";
import { canonicalCidr } from "./_cidr.ts";
import { Nft } from "./_nft.ts";
import { resyncLoop } from "./_resync_loop.ts";
import { Xtables } from "./_xtables.ts";
import { type IpFamily, removePayload } from "./iptables_rules.ts";
import type {
  ForwardOptions,
  MasqOptions,
  ResyncLoopOptions,
  TrafficManager,
  TrafficManagerOptions,
} from "./mod.ts";
import {
  fullyRandomProbeScript,
  nftFamily,
  type NftTable,
  tableName,
  tableScript,
} from "./nftables_rules.ts";

interface Installed {
  want: NftTable;
  /** `nft list table` right after the last install. */
  listing: string;
}

/** The iptables-mode chains removed at start-up: table, built-in parent, chain, comment. */
const IPTABLES_CHAINS = [
  ["nat", "POSTROUTING", "FLANNEL-POSTRTG", "flanneld masq"],
  ["filter", "FORWARD", "FLANNEL-FWD", "flanneld forward"],
] as const;

export class NftablesManager implements TrafficManager {
  readonly mode = "nftables" as const;
  readonly #log: Logger;
  readonly #nft: Nft;
  readonly #xt: Xtables;
  readonly #onRestored?: TrafficManagerOptions["onRestored"];
  readonly #installed = new Map<IpFamily, Installed>();
  #fullyRandom?: Promise<boolean>;

  constructor(opts: TrafficManagerOptions) {
    this.#log = opts.log;
    this.#nft = new Nft(opts.run, opts.log);
    this.#xt = new Xtables(opts.run, opts.log);
    this.#onRestored = opts.onRestored;
  }

  /**
   * Removes iptables-mode leftovers for both families: the jumps and flannel-commented rules in
   * POSTROUTING / FORWARD, then the chains `FLANNEL-POSTRTG` (nat) and `FLANNEL-FWD` (filter).
   * Only reads when there is nothing to remove; skipped when iptables is not installed.
   */
  async cleanupOther(opts: { signal?: AbortSignal } = {}): Promise<void> {
    for (const family of [4, 6] as const) {
      for (const [table, parent, chain, comment] of IPTABLES_CHAINS) {
        let payload: string;
        try {
          const parentListing = (await this.#xt.list(family, table, parent, opts.signal)) ?? [];
          const chainExists =
            (await this.#xt.list(family, table, chain, opts.signal)) !== undefined;
          payload = removePayload(table, parent, chain, comment, parentListing, chainExists);
        } catch (err) {
          this.#log.v(2, `Skipping iptables cleanup: ${describeError(err)}`);
          return;
        }
        if (payload === "") continue;
        this.#log.info(`Removing iptables-mode rules left by an earlier run (${table} ${chain})`);
        await this.#xt.restore(family, payload, `the removal of ${table} ${chain}`, opts.signal);
      }
    }
  }

  async setupMasq(opts: MasqOptions): Promise<void> {
    const fullyRandom = opts.fullyRandom && (await this.#probeFullyRandom(opts.signal));
    const families: [IpFamily, string | undefined, string | undefined][] = [
      [4, opts.network, opts.subnet],
      [6, opts.ipv6Network, opts.ipv6Subnet],
    ];
    // Validate every input before touching the kernel.
    const todo = families.filter(([, network]) => network).map(([family, network, subnet]) => {
      if (!subnet) {
        throw new TypeError(
          `Cannot set up IPv${family} masquerade for network "${network}" without the own subnet`,
        );
      }
      const masq = {
        network: canonicalCidr(network!, family, "network"),
        subnet: canonicalCidr(subnet, family, "subnet"),
        fullyRandom,
      };
      return { family, masq };
    });
    for (const { family, masq } of todo) {
      this.#log.info(
        `Setting up masking rules (${
          tableName(family)
        }: network ${masq.network}, subnet ${masq.subnet})`,
      );
      // The table is replaced whole, so a previous network's rules cannot survive.
      await this.#install(family, { ...this.#installed.get(family)?.want, masq }, opts.signal);
    }
  }

  async setupForward(opts: ForwardOptions): Promise<void> {
    const families: [IpFamily, string | undefined][] = [[4, opts.network], [6, opts.ipv6Network]];
    for (const [family, network] of families) {
      if (!network) continue;
      const forward = canonicalCidr(network, family, "network");
      this.#log.info(`Setting up forward rules (${tableName(family)}: network ${forward})`);
      await this.#install(family, { ...this.#installed.get(family)?.want, forward }, opts.signal);
    }
  }

  async resync(opts: { signal?: AbortSignal } = {}): Promise<number> {
    let restored = 0;
    for (const [family, entry] of this.#installed) {
      const now = await this.#nft.listTable(nftFamily(family), tableName(family), opts.signal);
      if (now === entry.listing) continue;
      this.#log.warn(
        `Some nftables rules are missing; recreating table ${nftFamily(family)} ${
          tableName(family)
        }`,
      );
      await this.#install(family, entry.want, opts.signal);
      restored++;
      this.#onRestored?.("nftables");
    }
    return restored;
  }

  run(opts: ResyncLoopOptions): Promise<void> {
    return resyncLoop((signal) => this.resync({ signal }), this.#log, opts);
  }

  async #install(family: IpFamily, want: NftTable, signal?: AbortSignal): Promise<void> {
    const what = `the nftables table ${nftFamily(family)} ${tableName(family)}`;
    await this.#nft.apply(tableScript(family, want), what, signal);
    const listing = await this.#nft.listTable(nftFamily(family), tableName(family), signal);
    if (listing === undefined) throw new Error(`Cannot list ${what} right after creating it`);
    this.#installed.set(family, { want, listing });
  }

  /** flannel's probe: does the kernel accept `masquerade fully-random`? (asked once) */
  #probeFullyRandom(signal?: AbortSignal): Promise<boolean> {
    this.#fullyRandom ??= this.#nft.check(fullyRandomProbeScript(), signal).then((ok) => {
      if (!ok) {
        this.#log.warn(
          "nftables does not support masquerade fully-random; masquerading without it",
        );
      }
      return ok;
    });
    this.#fullyRandom.catch(() => this.#fullyRandom = undefined);
    return this.#fullyRandom;
  }
}
