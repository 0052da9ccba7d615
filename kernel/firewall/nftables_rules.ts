/**
 * flannel's nftables tables (flannel pkg/trafficmngr/nftables/nftables.go) as `nft -f` scripts. Pure: no I/O, golden-tested.
 * Each script replaces the whole table in one transaction: we own the table, so nothing another
 * program added to it survives, and nothing of ours can be half-applied.
 */

export type IpFamily = 4 | 6;

export interface NftMasq {
  /** Cluster network, canonical CIDR. */
  readonly network: string;
  /** Own lease subnet, canonical CIDR. */
  readonly subnet: string;
  readonly fullyRandom: boolean;
}

/** What one family's table should hold. */
export interface NftTable {
  readonly masq?: NftMasq;
  /** Cluster network for the forward-accept chain. */
  readonly forward?: string;
}

export const MASQ_CHAIN_COMMENT = "chain to manage traffic masquerading by flannel";
export const FORWARD_CHAIN_COMMENT = "chain to accept flannel traffic";

/** `ip` / `ip6`: the nft family keyword, also the address match keyword. */
export function nftFamily(family: IpFamily): "ip" | "ip6" {
  return family === 4 ? "ip" : "ip6";
}

/** `flannel-ipv4` / `flannel-ipv6`. */
export function tableName(family: IpFamily): string {
  return family === 4 ? "flannel-ipv4" : "flannel-ipv6";
}

/** The postrtg chain's rules, as `nft list` prints them (without the mark's zero padding). */
export function masqRuleLines(family: IpFamily, m: NftMasq): string[] {
  const f = nftFamily(family);
  const multicast = family === 4 ? "224.0.0.0/4" : "ff00::/8";
  const masq = m.fullyRandom ? "masquerade fully-random" : "masquerade";
  const { network: n, subnet: p } = m;
  return [
    "meta mark 0x4000 return",
    `${f} saddr ${p} ${f} daddr ${n} return`,
    `${f} saddr ${n} ${f} daddr ${p} return`,
    `${f} saddr != ${p} ${f} daddr ${n} return`,
    `${f} saddr ${n} ${f} daddr != ${multicast} ${masq}`,
    `${f} saddr != ${n} ${f} daddr ${n} ${masq}`,
  ];
}

export function forwardRuleLines(family: IpFamily, network: string): string[] {
  const f = nftFamily(family);
  return [`${f} saddr ${network} accept`, `${f} daddr ${network} accept`];
}

/**
 * The script that replaces table `flannel-ipvN` with `want` atomically (`add` first so the
 * `delete` cannot fail on a missing table).
 */
export function tableScript(family: IpFamily, want: NftTable): string {
  const f = nftFamily(family);
  const t = `${f} ${tableName(family)}`;
  const lines = [
    `add table ${t}`,
    `delete table ${t}`,
    `add table ${t} { comment "rules for ${tableName(family)}" ; }`,
  ];
  if (want.masq) {
    lines.push(
      `add chain ${t} postrtg { comment "${MASQ_CHAIN_COMMENT}" ; ` +
        `type nat hook postrouting priority srcnat ; policy accept ; }`,
      ...masqRuleLines(family, want.masq).map((r) => `add rule ${t} postrtg ${r}`),
    );
  }
  if (want.forward !== undefined) {
    lines.push(
      `add chain ${t} forward { comment "${FORWARD_CHAIN_COMMENT}" ; ` +
        `type filter hook forward priority filter ; policy accept ; }`,
      ...forwardRuleLines(family, want.forward).map((r) => `add rule ${t} forward ${r}`),
    );
  }
  return lines.join("\n") + "\n";
}

/** The script that deletes both flannel tables among `present` (`nft list tables` entries). */
export function deleteTablesScript(present: readonly string[]): string {
  const ours = ["ip flannel-ipv4", "ip6 flannel-ipv6"].filter((t) => present.includes(t));
  return ours.map((t) => `delete table ${t}\n`).join("");
}

/**
 * flannel's dry-run probe for `masquerade fully-random` (a temporary chain that `nft -c`
 * validates but never commits).
 */
export function fullyRandomProbeScript(): string {
  return [
    "add table ip flannel-ipv4",
    "add chain ip flannel-ipv4 masqueradeTest { type nat hook postrouting priority srcnat ; }",
    "add rule ip flannel-ipv4 masqueradeTest ip saddr != 127.0.0.1 masquerade fully-random",
  ].join("\n") + "\n";
}
