/** Canonical CIDR text for rules, so what we write is what `iptables -S` / `nft list` print. */
import ipaddr from "ipaddr.js";

/**
 * Parses `text` as an IPv4 or IPv6 CIDR of `family` and returns it in network form with host
 * bits cleared and IPv6 in RFC 5952 form (`"10.42.1.7/24"` → `"10.42.1.0/24"`). Throws a
 * `SyntaxError` naming `what` and the value otherwise.
 */
export function canonicalCidr(text: string, family: 4 | 6, what: string): string {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(text);
  } catch (err) {
    throw new SyntaxError(`Cannot parse ${what} "${text}" as a CIDR`, { cause: err });
  }
  const [addr, prefix] = parsed;
  if ((family === 4) !== (addr.kind() === "ipv4")) {
    throw new SyntaxError(`Cannot use ${what} "${text}": it is not an IPv${family} CIDR`);
  }
  if (addr.kind() === "ipv4") {
    const net = ipaddr.IPv4.networkAddressFromCIDR(text);
    return `${net.toString()}/${prefix}`;
  }
  const net = ipaddr.IPv6.networkAddressFromCIDR(text) as ipaddr.IPv6;
  return `${net.toRFC5952String()}/${prefix}`;
}
