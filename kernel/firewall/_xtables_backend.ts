/**
 * Which iptables backend the host uses, decided once at start-up as flannel's image does with
 * `iptables-wrapper`: where `iptables-legacy` and `iptables-nft` are both installed, our rules go
 * into the backend that already holds the host's rules (kubelet's `KUBE-IPTABLES-HINT`, then
 * kube-proxy's `KUBE-*`, Docker's chains, a non-default policy such as a legacy `FORWARD DROP`).
 * Rules in the other backend would be evaluated too, but could not accept what the host's rules
 * drop. A backend whose `*-save` fails (not installed, or the kernel lacks its tables) is out.
 */
import type { CommandRunner } from "./command.ts";

export type XtablesBackend = "legacy" | "nft";

/** What one backend's `iptables-save` and `ip6tables-save` show of the host's own rules. */
export interface HostRules {
  /** `KUBE-IPTABLES-HINT` / `KUBE-KUBELET-CANARY`: kubelet marks the backend it uses. */
  readonly hints: number;
  /** User-defined chains other than ours (`FLANNEL-*`). */
  readonly chains: number;
  /** Rules (`-A` lines) other than ours. */
  readonly rules: number;
  /** Built-in chains whose policy is not ACCEPT. */
  readonly policies: string[];
}

export interface BackendChoice {
  /** Program name suffix: `iptables${suffix}`, `ip6tables${suffix}-restore`, ... */
  readonly suffix: "" | "-legacy" | "-nft";
  /** One line for the log: the choice and why. */
  readonly reason: string;
}

const HINTS = new Set(["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"]);

/** Counts the host's rules in `iptables-save` output (any number of tables and families). */
export function countHostRules(save: string): HostRules {
  let hints = 0, chains = 0, rules = 0;
  const policies: string[] = [];
  let table = "";
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) table = line.slice(1).trim();
    const chain = /^:(\S+) (\S+)/.exec(line);
    if (chain) {
      const [, name, policy] = chain;
      if (HINTS.has(name)) hints++;
      else if (policy === "-" && !name.startsWith("FLANNEL-")) chains++;
      else if (policy !== "-" && policy !== "ACCEPT") policies.push(`${table} ${name} ${policy}`);
    } else if (line.startsWith("-A ") && !line.includes("FLANNEL-") && !line.includes("flanneld")) {
      rules++;
    }
  }
  return { hints, chains, rules, policies };
}

function describe(r: HostRules | undefined): string {
  if (!r) return "unusable";
  const parts = [
    r.hints ? `kubelet hint` : "",
    r.chains ? `${r.chains} chains` : "",
    r.rules ? `${r.rules} rules` : "",
    ...r.policies.map((p) => `policy ${p}`),
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : "empty";
}

function weight(r: HostRules): number {
  return r.chains + r.rules + r.policies.length;
}

/**
 * The backend to use given what each one holds (undefined: its `*-save` failed) and the one the
 * plain `iptables` command runs (from `iptables --version`; undefined when it is missing).
 */
export function chooseBackend(
  legacy: HostRules | undefined,
  nft: HostRules | undefined,
  plain: XtablesBackend | undefined,
): BackendChoice {
  const seen = `legacy: ${describe(legacy)}; nft: ${describe(nft)}`;
  const pick = (b: XtablesBackend, why: string): BackendChoice => ({
    suffix: plain === b ? "" : `-${b}`,
    reason: `Using iptables-${b}: ${why} (${seen})`,
  });
  if (!legacy && !nft) {
    return { suffix: "", reason: "Using iptables: neither iptables-legacy nor iptables-nft works" };
  }
  if (!legacy) return pick("nft", "iptables-legacy is not usable here");
  if (!nft) return pick("legacy", "iptables-nft is not usable here");
  if (legacy.hints !== nft.hints) {
    return pick(legacy.hints > nft.hints ? "legacy" : "nft", "kubelet's hint chain is there");
  }
  if (weight(legacy) !== weight(nft)) {
    return pick(weight(legacy) > weight(nft) ? "legacy" : "nft", "the host's rules are there");
  }
  const fallback = plain ?? "nft";
  return pick(fallback, `no host rules tell, so the default of "iptables"`);
}

async function save(run: CommandRunner, backend: XtablesBackend, signal?: AbortSignal) {
  try {
    const outs = await Promise.all(
      ["iptables", "ip6tables"].map((t) => run([`${t}-${backend}-save`], { signal })),
    );
    // IPv6 may be off in the kernel: only the IPv4 listing has to work.
    if (outs[0].code !== 0) return undefined;
    return countHostRules(outs.filter((o) => o.code === 0).map((o) => o.stdout).join("\n"));
  } catch {
    return undefined; // not installed
  }
}

async function plainBackend(run: CommandRunner, signal?: AbortSignal) {
  try {
    const out = await run(["iptables", "--version"], { signal });
    if (out.code !== 0) return undefined;
    // iptables before 1.8 knows no nf_tables and prints no backend.
    return /\(nf_tables\)/.test(out.stdout + out.stderr) ? "nft" : "legacy";
  } catch {
    return undefined;
  }
}

/** Looks at both backends' rules and returns the one to use for every rule (see module doc). */
export async function detectBackend(
  run: CommandRunner,
  signal?: AbortSignal,
): Promise<BackendChoice> {
  const [legacy, nft] = await Promise.all([save(run, "legacy", signal), save(run, "nft", signal)]);
  // Which backend the plain command runs matters only when both work.
  const plain = legacy && nft ? await plainBackend(run, signal) : undefined;
  return chooseBackend(legacy, nft, plain);
}
