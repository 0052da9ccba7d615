/**
 * flannel's iptables rule lists (flannel pkg/trafficmngr/iptables/iptables.go (masquerade rules)) and the `iptables-restore` payloads that
 * install or remove them. Pure: no I/O, golden-tested.
 */

export type IpFamily = 4 | 6;

/**
 * One flannel-owned chain and the jump into it from a built-in chain, e.g. nat `POSTROUTING` →
 * `FLANNEL-POSTRTG`. Rules are argument strings as `iptables -S` prints them after `-A <chain>`.
 */
export interface ChainRules {
  readonly family: IpFamily;
  readonly table: "nat" | "filter";
  /** The built-in chain holding the jump. */
  readonly parent: "POSTROUTING" | "FORWARD";
  readonly chain: "FLANNEL-POSTRTG" | "FLANNEL-FWD";
  /** The comment every rule carries (`flanneld masq`, `flanneld forward`). */
  readonly comment: string;
  /** Arguments of the jump rule in `parent`. */
  readonly jump: string;
  /** Arguments of each rule of `chain`, in order. */
  readonly rules: readonly string[];
}

export const MASQ_COMMENT = "flanneld masq";
export const FORWARD_COMMENT = "flanneld forward";

/** The kube-proxy masquerade mark: packets carrying it are left to kube-proxy. */
const KUBE_MARK = "0x4000/0x4000";

function tag(comment: string): string {
  return `-m comment --comment "${comment}"`;
}

/**
 * The masquerade rules for cluster network `network` and own pod subnet `subnet` (both
 * canonical CIDRs of `family`), as flannel pkg/trafficmngr/iptables/iptables.go (masquerade rules) lists them.
 */
export function masqRules(
  family: IpFamily,
  network: string,
  subnet: string,
  fullyRandom: boolean,
): ChainRules {
  const c = tag(MASQ_COMMENT);
  const multicast = family === 4 ? "224.0.0.0/4" : "ff00::/8";
  const masq = fullyRandom ? "MASQUERADE --random-fully" : "MASQUERADE";
  return {
    family,
    table: "nat",
    parent: "POSTROUTING",
    chain: "FLANNEL-POSTRTG",
    comment: MASQ_COMMENT,
    jump: `${c} -j FLANNEL-POSTRTG`,
    rules: [
      `-m mark --mark ${KUBE_MARK} ${c} -j RETURN`,
      `-s ${subnet} -d ${network} ${c} -j RETURN`,
      `-s ${network} -d ${subnet} ${c} -j RETURN`,
      `! -s ${network} -d ${subnet} ${c} -j RETURN`,
      `-s ${network} ! -d ${multicast} ${c} -j ${masq}`,
      `! -s ${network} -d ${network} ${c} -j ${masq}`,
    ],
  };
}

/** The forward-accept rules for cluster network `network` (flannel pkg/trafficmngr/iptables/iptables.go (forward rules)). */
export function forwardRules(family: IpFamily, network: string): ChainRules {
  const c = tag(FORWARD_COMMENT);
  return {
    family,
    table: "filter",
    parent: "FORWARD",
    chain: "FLANNEL-FWD",
    comment: FORWARD_COMMENT,
    jump: `${c} -j FLANNEL-FWD`,
    rules: [`-s ${network} ${c} -j ACCEPT`, `-d ${network} ${c} -j ACCEPT`],
  };
}

/** The lines `iptables -S <chain>` prints for `set.chain` when it holds exactly our rules. */
export function expectedChainListing(set: ChainRules): string[] {
  return [`-N ${set.chain}`, ...set.rules.map((r) => `-A ${set.chain} ${r}`)];
}

/** The jump line as `iptables -S <parent>` prints it. */
export function jumpLine(set: ChainRules): string {
  return `-A ${set.parent} ${set.jump}`;
}

/**
 * Lines of an `iptables -S <parent>` listing that belong to flannel: jumps into `chain` and rules
 * carrying `comment` (an older flannel put its rules straight into the parent).
 */
export function flannelParentLines(
  parent: string,
  chain: string,
  comment: string,
  parentListing: readonly string[],
): string[] {
  return parentListing.filter((line) =>
    line.startsWith(`-A ${parent} `) &&
    (line.endsWith(` -j ${chain}`) || line.includes(` -j ${chain} `) ||
      line.includes(`--comment "${comment}"`))
  );
}

/** The flannel lines of the parent listing other than the first copy of the wanted jump. */
export function strayParentLines(set: ChainRules, parentListing: readonly string[]): string[] {
  const ours = flannelParentLines(set.parent, set.chain, set.comment, parentListing);
  const keep = ours.indexOf(jumpLine(set));
  return ours.filter((_, i) => i !== keep);
}

/**
 * The `iptables-restore --noflush` payload that (re)builds `set` atomically: declaring the chain
 * creates or flushes it, stray flannel lines in the parent are deleted, the jump is appended
 * unless `parentListing` already holds it, and the chain's rules are appended in order.
 */
export function installPayload(set: ChainRules, parentListing: readonly string[]): string {
  const lines = [`*${set.table}`, `:${set.chain} - [0:0]`];
  for (const stray of strayParentLines(set, parentListing)) {
    lines.push(stray.replace(/^-A /, "-D "));
  }
  if (!parentListing.includes(jumpLine(set))) lines.push(jumpLine(set));
  for (const rule of set.rules) lines.push(`-A ${set.chain} ${rule}`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/**
 * The payload that removes a flannel chain completely: every flannel line of the parent is
 * deleted, then the chain is flushed and deleted (only if `chainExists`). Empty when there is
 * nothing to remove.
 */
export function removePayload(
  table: "nat" | "filter",
  parent: string,
  chain: string,
  comment: string,
  parentListing: readonly string[],
  chainExists: boolean,
): string {
  const deletes = flannelParentLines(parent, chain, comment, parentListing)
    .map((l) => l.replace(/^-A /, "-D "));
  if (deletes.length === 0 && !chainExists) return "";
  const lines = [`*${table}`, ...deletes];
  if (chainExists) lines.push(`-F ${chain}`, `-X ${chain}`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** Splits command output into non-empty lines. */
export function outputLines(text: string): string[] {
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "");
}

/** Whether `iptables --version` output names a version that supports `--random-fully` and `--wait` on restore (≥ 1.6.2). */
export function supportsRandomFully(versionOutput: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj !== 1) return maj > 1;
  if (min !== 6) return min > 6;
  return patch >= 2;
}
