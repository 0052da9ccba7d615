/** Text ⇄ bytes for the addresses that cross the seam as strings (IP, CIDR, MAC). */
import ipaddr from "ipaddr.js";
import { Buffer } from "node:buffer";

export interface IpBytes {
  family: 4 | 6;
  bytes: Buffer;
}

export interface CidrBytes extends IpBytes {
  prefixLen: number;
}

/** Parses `"10.1.2.3"` or `"fd00::1"`. */
export function ipBytes(text: string): IpBytes {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    if (!text.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(text)) {
      throw new SyntaxError("expected a dotted quad or an IPv6 address");
    }
    addr = ipaddr.parse(text);
  } catch (cause) {
    throw new TypeError(`Cannot parse IP address "${text}"`, { cause });
  }
  return { family: addr.kind() === "ipv4" ? 4 : 6, bytes: Buffer.from(addr.toByteArray()) };
}

/** Parses `"10.1.0.0/24"`; a bare address is a host prefix (/32, /128). */
export function cidrBytes(text: string): CidrBytes {
  const slash = text.indexOf("/");
  const ip = ipBytes(slash < 0 ? text : text.slice(0, slash));
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLen: max };
  const lenText = text.slice(slash + 1);
  const prefixLen = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || prefixLen > max) {
    throw new TypeError(`Cannot parse prefix "${text}": prefix length must be 0..${max}`);
  }
  return { ...ip, prefixLen };
}

/**
 * Formats 4 or 16 address bytes. IPv4 is the dotted quad written directly (what ipaddr.js
 * prints, without its intermediate array and object: every decoded route formats two).
 */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) {
    throw new TypeError(`Cannot format IP address of ${bytes.length} bytes`);
  }
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}

/** The all-zero address of a family, for default routes. */
export function zeroAddress(family: 4 | 6): Buffer {
  return Buffer.alloc(family === 4 ? 4 : 16);
}

/** Parses `"aa:bb:cc:dd:ee:ff"` (also `-` separated, any case). */
export function macBytes(text: string): Buffer {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`Cannot parse MAC address "${text}": expected six hex octets`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

/** Formats a hardware address as lower-case colon-separated hex. */
export function macText(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** AF_INET / AF_INET6 for 4 / 6. */
export function afOf(family: 4 | 6): number {
  return family === 4 ? 2 : 10;
}
