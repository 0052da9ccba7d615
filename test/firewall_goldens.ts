/**
 * flannel's firewall rules (flannel pkg/trafficmngr) as goldens: `iptables -S` of its chains and `nft list`
 * of its tables, with `<N>` (network), `<P>` (subnet), `<M>` (multicast), `<F>`/`<V>` (family).
 */

export const GOLDEN_NAT = `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-N FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s <P> -d <N> -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s <N> -d <P> -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s <N> -d <P> -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s <N> ! -d <M> -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s <N> -d <N> -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`;

export const GOLDEN_FWD = `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-N FLANNEL-FWD
-A FLANNEL-FWD -s <N> -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d <N> -m comment --comment "flanneld forward" -j ACCEPT`;

export const GOLDEN_NFT_POSTRTG = `table <F> flannel-ipv<V> {
	chain postrtg {
		comment "chain to manage traffic masquerading by flannel"
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x00004000 return
		<F> saddr <P> <F> daddr <N> return
		<F> saddr <N> <F> daddr <P> return
		<F> saddr != <P> <F> daddr <N> return
		<F> saddr <N> <F> daddr != <M> masquerade fully-random
		<F> saddr != <N> <F> daddr <N> masquerade fully-random
	}
}
`;

export const GOLDEN_NFT_FORWARD = `table <F> flannel-ipv<V> {
	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		<F> saddr <N> accept
		<F> daddr <N> accept
	}
}
`;

/** A golden with the network `n` and subnet `p` of family `v` filled in. */
export function fillGolden(golden: string, net: { n: string; p: string }, v: 4 | 6): string {
  const [m, f] = v === 4 ? ["224.0.0.0/4", "ip"] : ["ff00::/8", "ip6"];
  return golden.replaceAll("<N>", net.n).replaceAll("<P>", net.p).replaceAll("<M>", m)
    .replaceAll("<F>", f).replaceAll("<V>", String(v));
}

/** The flannel lines of `iptables -S` output, in order. */
function flannelLines(listing: string): string {
  return listing.split("\n").filter((l) => l.includes("FLANNEL")).join("\n");
}

/**
 * What flannel's e2e suite compares: the flannel lines of the built-in chain, then the listing of
 * flannel's chain (`iptables -S` of a whole table prints every `-N` before any `-A`).
 */
export async function flannelChains(
  ns: { sh(cmd: string): Promise<string> },
  tool: string,
  table: "nat" | "filter",
): Promise<string> {
  const [parent, chain] = table === "nat"
    ? ["POSTROUTING", "FLANNEL-POSTRTG"]
    : ["FORWARD", "FLANNEL-FWD"];
  const parentLines = flannelLines(await ns.sh(`${tool} -t ${table} -S ${parent}`));
  return parentLines + "\n" + (await ns.sh(`${tool} -t ${table} -S ${chain}`)).trimEnd();
}
