/**
 * etcd subnet keys (flannel pkg/subnet/etcd/registry.go (key layout)): `10.5.34.0-24`, or `10.12.13.0-24&fd00:12:13::-56` for a
 * dual-stack lease. Byte-compatible with flannel's `MakeSubnetKey` / `ParseSubnetKey`.
 */
import { formatIP4, formatIP6, type IP4Net, type IP6Net, parseIP4, parseIP6 } from "./ip.ts";
import { clip, quote } from "../util/quote.ts";

/**
 * flannel's `subnetRegex`, searched unanchored at the start and anchored at the end, so a full
 * etcd key (`/coreos.com/network/subnets/10.5.34.0-24`) parses too. The unescaped dots of the
 * original match any character but newline (`[^\n]` here; Go's `.`), the address is then checked.
 */
const SUBNET_KEY = /(\d+\.\d+[^\n]\d+[^\n]\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/**
 * Longest key parsed. The backtracking regex costs time quadratic in a run of digits (a key of
 * 30 000 digits takes a second, one of 1 MB would take minutes); Go's linear regexp does not
 * care. Real keys (`<prefix>/subnets/10.12.13.0-24&fd00:12:13::-56`) are far shorter.
 */
export const MAX_KEY_LENGTH = 1024;

/** The key of a lease: `<a.b.c.d>-<len>`, plus `&<ipv6>-<len>` when `ipv6Subnet` is non-empty. */
export function makeSubnetKey(subnet: IP4Net, ipv6Subnet?: IP6Net): string {
  const key = `${formatIP4(subnet.ip)}-${subnet.prefix}`;
  // flannel's `IP6Net.Empty()`: the zero network ::/0 means "no IPv6 subnet".
  if (ipv6Subnet === undefined || (ipv6Subnet.ip === 0n && ipv6Subnet.prefix === 0)) return key;
  return `${key}&${formatIP6(ipv6Subnet.ip)}-${ipv6Subnet.prefix}`;
}

/** Go's `strconv.ParseUint(s, 10, bits)`: leading zeros allowed, at most 2^bits − 1. */
function parsePrefix(digits: string, bits: number): number | undefined {
  const n = BigInt(digits);
  return n < 1n << BigInt(bits) ? Number(n) : undefined;
}

/**
 * Parses a subnet key (or a full etcd key ending in one). As in flannel, the addresses are kept
 * as written (host bits are not masked off), so `makeSubnetKey` reproduces a canonical key.
 *
 * Throws `SyntaxError` naming the key and the reason. Keeps flannel's quirk of rejecting `/32`
 * keys (the IPv4 prefix is parsed as a 5-bit number, 0..31): a real flanneld would ignore such a
 * key, so accepting it would make the two disagree about which subnets are taken.
 */
export function parseSubnetKey(key: string): { subnet: IP4Net; ipv6Subnet?: IP6Net } {
  const fail = (reason: string): never => {
    throw new SyntaxError(`Cannot parse subnet key ${quote(key)}: ${reason}`);
  };
  if (key.length > MAX_KEY_LENGTH) return fail(`longer than ${MAX_KEY_LENGTH} characters`);
  const m = SUBNET_KEY.exec(key);
  if (m === null) return fail("expected <a.b.c.d>-<prefix>[&<ipv6>-<prefix>] at the end");
  const [, v4, len4, v6, len6] = m;
  let ip: number;
  try {
    ip = parseIP4(v4);
  } catch {
    return fail(`${quote(v4)} is not an IPv4 address`);
  }
  const prefix = parsePrefix(len4, 5) ??
    fail(
      `IPv4 prefix length ${clip(len4)} is out of range 0..31 (flannel does not parse /32 keys)`,
    );
  const subnet = { ip, prefix };
  if (v6 === undefined) return { subnet };
  let ip6: bigint;
  try {
    ip6 = parseIP6(v6);
  } catch {
    return fail(`${quote(v6)} is not an IPv6 address`);
  }
  const prefix6 = parsePrefix(len6, 7) ??
    fail(`IPv6 prefix length ${clip(len6)} is out of range 0..127`);
  return { subnet, ipv6Subnet: { ip: ip6, prefix: prefix6 } };
}
