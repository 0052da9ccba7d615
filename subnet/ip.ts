/**
 * IPv4 and IPv6 addresses and networks as plain numbers, parsed and printed with `ipaddr.js`.
 *
 * IPv4 addresses are unsigned 32-bit integers (`number`), IPv6 addresses 128-bit `bigint`s, so
 * subnet maths (stepping, masking, containment) is arithmetic. Text forms follow Go's `net`
 * package: IPv4 dotted quads without leading zeros, IPv6 in RFC 5952 canonical form.
 */
import ipaddr from "ipaddr.js";
import { quote } from "../util/quote.ts";

/** An address is never longer than ~50 characters: 64 shows every near miss whole. */
const SHOWN = 64;

/** An IPv4 network: `ip` is the (masked) network address, `prefix` 0..32. */
export interface IP4Net {
  readonly ip: number;
  readonly prefix: number;
}

/** An IPv6 network: `ip` is the (masked) network address, `prefix` 0..128. */
export interface IP6Net {
  readonly ip: bigint;
  readonly prefix: number;
}

const MAX6 = (1n << 128n) - 1n;

/** Parses dotted-quad IPv4 text ("10.1.2.3"); throws `SyntaxError` naming the text otherwise. */
export function parseIP4(text: string): number {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    throw new SyntaxError(`Cannot parse IPv4 address ${quote(text, SHOWN)}`);
  }
  const o = ipaddr.IPv4.parse(text).octets;
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
}

/** Formats an IPv4 address number as dotted quad. */
export function formatIP4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Parses IPv6 text (any valid form, not IPv4); throws `SyntaxError` naming the text otherwise. */
export function parseIP6(text: string): bigint {
  if (!text.includes(":") || !ipaddr.IPv6.isValid(text) || text.includes("%")) {
    throw new SyntaxError(`Cannot parse IPv6 address ${quote(text, SHOWN)}`);
  }
  let n = 0n;
  for (const part of ipaddr.IPv6.parse(text).parts) n = (n << 16n) | BigInt(part);
  return n;
}

/** Formats an IPv6 address in RFC 5952 canonical form (as Go's `net.IP.String()`). */
export function formatIP6(ip: bigint): string {
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((ip >> BigInt(i * 16)) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}

/** The netmask of an IPv4 prefix length as a number. */
export function mask4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The netmask of an IPv6 prefix length as a bigint. */
export function mask6(prefix: number): bigint {
  return prefix === 0 ? 0n : (MAX6 << BigInt(128 - prefix)) & MAX6;
}

function splitCIDR(text: string, family: string): [string, number] {
  const slash = text.indexOf("/");
  const len = text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(len)) {
    throw new SyntaxError(
      `Cannot parse ${family} CIDR ${quote(text, SHOWN)}: expected address/prefix`,
    );
  }
  return [text.slice(0, slash), Number(len)];
}

/** Parses "a.b.c.d/n" and masks the host bits (Go's `net.ParseCIDR`). */
export function parseIP4Net(text: string): IP4Net {
  const [addr, prefix] = splitCIDR(text, "IPv4");
  if (prefix > 32) {
    throw new SyntaxError(`Cannot parse IPv4 CIDR ${quote(text, SHOWN)}: prefix exceeds 32`);
  }
  return { ip: (parseIP4(addr) & mask4(prefix)) >>> 0, prefix };
}

/** Parses "v6addr/n" and masks the host bits. */
export function parseIP6Net(text: string): IP6Net {
  const [addr, prefix] = splitCIDR(text, "IPv6");
  if (prefix > 128) {
    throw new SyntaxError(`Cannot parse IPv6 CIDR ${quote(text, SHOWN)}: prefix exceeds 128`);
  }
  return { ip: parseIP6(addr) & mask6(prefix), prefix };
}

/** "a.b.c.d/n" */
export function formatIP4Net(net: IP4Net): string {
  return `${formatIP4(net.ip)}/${net.prefix}`;
}

/** "canonical-v6/n" */
export function formatIP6Net(net: IP6Net): string {
  return `${formatIP6(net.ip)}/${net.prefix}`;
}

/** Whether `ip` lies inside `net`. */
export function contains4(net: IP4Net, ip: number): boolean {
  return ((ip & mask4(net.prefix)) >>> 0) === net.ip;
}

/** Whether `ip` lies inside `net`. */
export function contains6(net: IP6Net, ip: bigint): boolean {
  return (ip & mask6(net.prefix)) === net.ip;
}

/** Whether two IPv4 networks overlap (equal under the shorter mask). */
export function overlaps4(a: IP4Net, b: IP4Net): boolean {
  const m = mask4(Math.min(a.prefix, b.prefix));
  return ((a.ip & m) >>> 0) === ((b.ip & m) >>> 0);
}

/** Whether two IPv6 networks overlap (equal under the shorter mask). */
export function overlaps6(a: IP6Net, b: IP6Net): boolean {
  const m = mask6(Math.min(a.prefix, b.prefix));
  return (a.ip & m) === (b.ip & m);
}

/** Exact equality of two networks of either family (undefined equals undefined). */
export function netEqual<T extends IP4Net | IP6Net>(a: T | undefined, b: T | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.ip === b.ip && a.prefix === b.prefix;
}
