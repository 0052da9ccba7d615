/**
 * iptables mode (flannel pkg/trafficmngr/iptables/iptables.go, pkg/trafficmngr/iptables/iptables.go (forward rules)): flannel's chains `FLANNEL-POSTRTG` (nat) and
 * `FLANNEL-FWD` (filter), each (re)built atomically with one `iptables-restore --noflush`, and a
 * resync that compares two `iptables -S` listings per chain with what was installed.
 */
import { describeError, type Logger } from "../../util/log.ts";
import { canonicalCidr } from "./_cidr.ts";
import { Nft } from "./_nft.ts";
import { resyncLoop } from "./_resync_loop.ts";
import { Xtables } from "./_xtables.ts";
import {
  type ChainRules,
  expectedChainListing,
  flannelParentLines,
  forwardRules,
  installPayload,
  type IpFamily,
  masqRules,
} from "./iptables_rules.ts";
import type {
  ForwardOptions,
  MasqOptions,
  ResyncLoopOptions,
  TrafficManager,
  TrafficManagerOptions,
} from "./mod.ts";
import { deleteTablesScript } from "./nftables_rules.ts";

/** What the kernel showed right after we installed a rule set: the resync compares against it. */
interface Installed {
  readonly set: ChainRules;
  chain: string[];
  jumps: string[];
}

function familyName(family: IpFamily): string {
  return family === 4 ? "IPv4" : "IPv6";
}

function sameLines(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((l, i) => l === b[i]);
}

export class IptablesManager implements TrafficManager {
  readonly mode = "iptables" as const;
  readonly #log: Logger;
  readonly #xt: Xtables;
  readonly #nft: Nft;
  readonly #onRestored?: TrafficManagerOptions["onRestored"];
  /** Keyed by `family/table`. */
  readonly #installed = new Map<string, Installed>();

  constructor(opts: TrafficManagerOptions) {
    this.#log = opts.log;
    this.#xt = new Xtables(opts.run, opts.log);
    this.#nft = new Nft(opts.run, opts.log);
    this.#onRestored = opts.onRestored;
  }

  /** Deletes the nftables-mode tables `ip flannel-ipv4` and `ip6 flannel-ipv6` if present. */
  async cleanupOther(opts: { signal?: AbortSignal } = {}): Promise<void> {
    let present: string[];
    try {
      present = await this.#nft.tables(opts.signal);
    } catch (err) {
      // Without nft there can be no nftables-mode tables to worry about (or no way to see them).
      this.#log.v(2, `Skipping nftables cleanup: ${describeError(err)}`);
      return;
    }
    const script = deleteTablesScript(present);
    if (script === "") return;
    this.#log.info(`Removing nftables-mode tables left by an earlier run: ${script.trim()}`);
    await this.#nft.apply(script, "the removal of flannel's nftables tables", opts.signal);
  }

  async setupMasq(opts: MasqOptions): Promise<void> {
    const { randomFully } = await this.#xt.features(opts.signal);
    const fullyRandom = opts.fullyRandom && randomFully;
    if (opts.fullyRandom && !randomFully) {
      this.#log.warn(
        "iptables does not support --random-fully (needs 1.6.2); masquerading without it",
      );
    }
    const families: [IpFamily, string | undefined, string | undefined, string?, string?][] = [
      [4, opts.network, opts.subnet, opts.prevNetwork, opts.prevSubnet],
      [6, opts.ipv6Network, opts.ipv6Subnet, opts.prevIpv6Network, opts.prevIpv6Subnet],
    ];
    // Validate every input before touching the kernel.
    const todo = families.filter(([, network]) => network).map(
      ([family, network, subnet, prevNetwork, prevSubnet]) => {
        if (!subnet) {
          throw new TypeError(
            `Cannot set up IPv${family} masquerade for network "${network}" without the own subnet`,
          );
        }
        const n = canonicalCidr(network!, family, "network");
        const p = canonicalCidr(subnet, family, "subnet");
        return { family, n, p, prevNetwork, prevSubnet };
      },
    );
    for (const { family, n, p, prevNetwork, prevSubnet } of todo) {
      if ((prevNetwork && prevNetwork !== n) || (prevSubnet && prevSubnet !== p)) {
        // The chain is rebuilt from scratch below, so the old network's rules go with the flush.
        this.#log.info(
          `Removing masquerade rules of the previous network ${prevNetwork ?? "?"} / subnet ` +
            `${prevSubnet ?? "?"}`,
        );
      }
      this.#log.info(`Setting up masking rules (${familyName(family)}: network ${n}, subnet ${p})`);
      await this.#install(masqRules(family, n, p, fullyRandom), opts.signal);
    }
  }

  async setupForward(opts: ForwardOptions): Promise<void> {
    const families: [IpFamily, string | undefined][] = [[4, opts.network], [6, opts.ipv6Network]];
    for (const [family, network] of families) {
      if (!network) continue;
      const n = canonicalCidr(network, family, "network");
      this.#log.info(`Setting up forward rules (${familyName(family)}: network ${n})`);
      await this.#install(forwardRules(family, n), opts.signal);
    }
  }

  async resync(opts: { signal?: AbortSignal } = {}): Promise<number> {
    let restored = 0;
    for (const entry of this.#installed.values()) {
      if (!(await this.#drifted(entry, opts.signal))) continue;
      this.#log.warn(
        `Some iptables rules are missing; deleting and recreating rules ` +
          `(${familyName(entry.set.family)} ${entry.set.table} ${entry.set.chain})`,
      );
      await this.#install(entry.set, opts.signal);
      restored++;
      this.#onRestored?.("iptables");
    }
    return restored;
  }

  run(opts: ResyncLoopOptions): Promise<void> {
    return resyncLoop((signal) => this.resync({ signal }), this.#log, opts);
  }

  async #install(set: ChainRules, signal?: AbortSignal): Promise<void> {
    const { family, table, parent, chain } = set;
    const parentBefore = (await this.#xt.list(family, table, parent, signal)) ?? [];
    const what = `the ${set.comment} rules (${familyName(family)} ${table} ${chain})`;
    await this.#xt.restore(family, installPayload(set, parentBefore), what, signal);
    const chainNow = (await this.#xt.list(family, table, chain, signal)) ?? [];
    const parentNow = (await this.#xt.list(family, table, parent, signal)) ?? [];
    const expected = expectedChainListing(set);
    if (!sameLines(chainNow, expected)) {
      this.#log.v(2, `iptables -S ${chain} prints the rules differently:\n${chainNow.join("\n")}`);
    }
    this.#installed.set(`${family}/${table}`, {
      set,
      chain: chainNow,
      jumps: flannelParentLines(parent, chain, set.comment, parentNow),
    });
  }

  async #drifted(entry: Installed, signal?: AbortSignal): Promise<boolean> {
    const { family, table, parent, chain, comment } = entry.set;
    const chainNow = await this.#xt.list(family, table, chain, signal);
    if (!sameLines(chainNow, entry.chain)) return true;
    const parentNow = await this.#xt.list(family, table, parent, signal);
    return !sameLines(
      parentNow && flannelParentLines(parent, chain, comment, parentNow),
      entry.jumps,
    );
  }
}
