/** RTM_*ADDR messages ⇄ {@link Address}. */
import { Buffer, ifaddrmsg, type NetlinkMessage, rt, type StreamData } from "./_codec.ts";
import { afOf, cidrBytes, ipText } from "./_text.ts";
import type { Address } from "./types.ts";

/** The IFA_F_* bits a request may set (nodad, optimistic, home, mngtmpaddr, noprefixroute, autojoin). */
const SETTABLE_FLAGS = 0x2 | 0x4 | 0x10 | 0x100 | 0x200 | 0x400;

/**
 * Request body for `ip addr add|del ADDR/LEN dev IDX [scope S] [label L] [nodad ...]`; the
 * settable flags are sent (as IFA_FLAGS) only when `add`, so an address read back can be
 * passed to either.
 */
export function encodeAddress(a: Address, add = false): [Buffer, StreamData] {
  const c = cidrBytes(a.address);
  const attrs: rt.AddressAttrs = { local: c.bytes, address: c.bytes };
  if (a.label !== undefined) attrs.label = a.label;
  const flags = (a.flags ?? 0) & SETTABLE_FLAGS;
  if (add && flags !== 0) attrs.flags = rt.parseAddressFlags(flags);
  return [
    ifaddrmsg(afOf(c.family), c.prefixLen, a.scope ?? 0, a.index),
    rt.formatAddressAttrs(attrs),
  ];
}

/** Decodes an RTM_NEWADDR / RTM_DELADDR payload. */
export function decodeAddress(msg: NetlinkMessage): Address | undefined {
  const d = msg.data;
  if (d.length < 8) throw new Error(`Cannot parse ifaddrmsg: ${d.length} bytes, need 8`);
  const family = d.readUInt8(0);
  const prefixLen = d.readUInt8(1);
  const headerFlags = d.readUInt8(2);
  const scope = d.readUInt8(3);
  const index = d.readUInt32LE(4);
  const attrs = rt.parseAddressAttrs(d.subarray(8));
  const bytes = family === 2 ? attrs.local ?? attrs.address : attrs.address ?? attrs.local;
  if (!bytes) return undefined;
  return {
    index,
    address: `${ipText(bytes)}/${prefixLen}`,
    scope,
    // The header byte holds only the low 8 bits; IFA_FLAGS has them all (mngtmpaddr, ...).
    flags: attrs.flags !== undefined ? rt.formatAddressFlags(attrs.flags) : headerFlags,
    ...(attrs.label !== undefined ? { label: attrs.label } : {}),
  };
}
