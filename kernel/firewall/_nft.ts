/** The `nft` command line: apply a script in one transaction, check one, list a table. */
import type { Logger } from "../../util/log.ts";
import { type CommandRunner, MissingToolError, systemRunner } from "./command.ts";

const NFT_FIX = "install it (apt-get install nftables, or dnf install nftables) " +
  'or remove "EnableNFTables" from the network config to use iptables';

export class Nft {
  readonly #run: CommandRunner;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(run: CommandRunner | undefined, log: Logger) {
    this.#run = run ?? systemRunner;
    this.#log = log;
  }

  async #exec(args: string[], stdin?: string, signal?: AbortSignal) {
    try {
      return await this.#run(["nft", ...args], { stdin, signal });
    } catch (err) {
      if (err instanceof MissingToolError) {
        throw new MissingToolError("nft", `Cannot run "nft": it is not installed; ${NFT_FIX}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** `nft -f -` with `script`: all or nothing. Throws naming `what`, nft's complaint and the script. */
  apply(script: string, what: string, signal?: AbortSignal): Promise<void> {
    const task = this.#queue.then(async () => {
      this.#log.v(6, `nft -f - <<EOF\n${script}EOF`);
      const out = await this.#exec(["-f", "-"], script, signal);
      if (out.code !== 0) {
        throw new Error(
          `Cannot install ${what} with "nft -f -" (exit ${out.code}): ${out.stderr.trim()}; ` +
            `check that flanneld runs as root (CAP_NET_ADMIN) and that the kernel has ` +
            `nf_tables with NAT support (modprobe nf_tables nft_chain_nat nft_masq); ` +
            `script:\n${script}`,
        );
      }
    });
    this.#queue = task.catch(() => {});
    return task;
  }

  /** `nft -c -f -`: whether the kernel would accept `script` (nothing is committed). */
  async check(script: string, signal?: AbortSignal): Promise<boolean> {
    const out = await this.#exec(["-c", "-f", "-"], script, signal);
    return out.code === 0;
  }

  /** `nft list table FAMILY NAME`; undefined when the table does not exist. */
  async listTable(family: string, name: string, signal?: AbortSignal): Promise<string | undefined> {
    const out = await this.#exec(["list", "table", family, name], undefined, signal);
    return out.code === 0 ? out.stdout : undefined;
  }

  /** `nft list tables` as `"ip flannel-ipv4"`-style entries. */
  async tables(signal?: AbortSignal): Promise<string[]> {
    const out = await this.#exec(["list", "tables"], undefined, signal);
    if (out.code !== 0) throw new Error(`Cannot list nftables tables: ${out.stderr.trim()}`);
    return out.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("table "))
      .map((l) => l.slice("table ".length));
  }
}
