/**
 * The iptables / ip6tables command line: listing a chain and applying a restore payload, always
 * with the backend (legacy or nft) that holds the host's rules, detected on first use.
 */
import type { Logger } from "../../util/log.ts";
import { type CommandRunner, formatArgv, MissingToolError, systemRunner } from "./command.ts";
import { type BackendChoice, detectBackend } from "./_xtables_backend.ts";
import { type IpFamily, outputLines, supportsRandomFully } from "./iptables_rules.ts";

const IPTABLES_FIX = "install it (apt-get install iptables, or dnf install iptables-nft) " +
  'or set "EnableNFTables": true in the network config to use nftables';

export interface XtablesFeatures {
  /** `--random-fully` is available (iptables ≥ 1.6.2). */
  readonly randomFully: boolean;
  /** `*-restore --wait` is available (iptables ≥ 1.6.2). */
  readonly restoreWait: boolean;
}

export class Xtables {
  readonly #run: CommandRunner;
  readonly #log: Logger;
  #features?: Promise<XtablesFeatures>;
  #backend?: Promise<BackendChoice>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(run: CommandRunner | undefined, log: Logger) {
    this.#run = run ?? systemRunner;
    this.#log = log;
  }

  /** The backend every command uses, detected once (and logged) on the first call. */
  backend(signal?: AbortSignal): Promise<BackendChoice> {
    this.#backend ??= detectBackend(this.#run, signal).then((choice) => {
      this.#log.info(choice.reason);
      return choice;
    });
    return this.#backend;
  }

  async #tool(family: IpFamily, signal?: AbortSignal): Promise<string> {
    const { suffix } = await this.backend(signal);
    return `${family === 4 ? "iptables" : "ip6tables"}${suffix}`;
  }

  async #exec(argv: string[], stdin?: string, signal?: AbortSignal) {
    try {
      return await this.#run(argv, { stdin, signal });
    } catch (err) {
      if (err instanceof MissingToolError) {
        throw new MissingToolError(
          argv[0],
          `Cannot run "${argv[0]}": it is not installed; ${IPTABLES_FIX}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** `iptables --version`, once: whether `--random-fully` and restore `--wait` are supported. */
  features(signal?: AbortSignal): Promise<XtablesFeatures> {
    this.#features ??= (async () => {
      const tool = await this.#tool(4, signal);
      const out = await this.#exec([tool, "--version"], undefined, signal);
      const text = (out.stdout + out.stderr).trim();
      if (out.code !== 0) {
        throw new Error(`Cannot run "${tool} --version" (exit ${out.code}): ${text}`);
      }
      this.#log.v(2, `Using ${text}`);
      const modern = supportsRandomFully(text);
      return { randomFully: modern, restoreWait: modern };
    })();
    this.#features.catch(() => this.#features = undefined);
    return this.#features;
  }

  /** `iptables -w -t TABLE -S CHAIN` as lines; undefined when the command fails (no such chain). */
  async list(
    family: IpFamily,
    table: string,
    chain: string,
    signal?: AbortSignal,
  ): Promise<string[] | undefined> {
    const out = await this.#exec(
      [await this.#tool(family, signal), "-w", "-t", table, "-S", chain],
      undefined,
      signal,
    );
    return out.code === 0 ? outputLines(out.stdout) : undefined;
  }

  /**
   * `iptables-restore --noflush [--wait]` with `payload` (serialised: one restore at a time).
   * Throws naming `what`, the tool's complaint, the payload and the likely fix.
   */
  restore(family: IpFamily, payload: string, what: string, signal?: AbortSignal): Promise<void> {
    const task = this.#queue.then(async () => {
      const { restoreWait: wait } = await this.features(signal);
      const tool = await this.#tool(family, signal);
      const argv = [`${tool}-restore`, "--noflush", ...(wait ? ["--wait"] : [])];
      this.#log.v(6, `${formatArgv(argv)} <<EOF\n${payload}EOF`);
      const out = await this.#exec(argv, payload, signal);
      if (out.code !== 0) {
        throw new Error(
          `Cannot install ${what} with "${formatArgv(argv)}" (exit ${out.code}): ` +
            `${out.stderr.trim() || out.stdout.trim()}; check that flanneld runs as root ` +
            `(CAP_NET_ADMIN) and that the kernel provides the table and targets ` +
            `(modprobe iptable_nat iptable_filter xt_MASQUERADE xt_comment xt_mark, or the ` +
            `nf_tables equivalents); payload:\n${payload}`,
        );
      }
    });
    this.#queue = task.catch(() => {});
    return task;
  }
}
