/**
 * The netlink wire codec: attribute streams and message framing from npm:netlink's pure codec
 * modules (its native socket is not used: it needs libuv polling, which Deno lacks), plus the
 * fixed rtnetlink headers, which are written by hand because the package decodes their enums to
 * names. Everything here is host byte order, as netlink is.
 */
import { Buffer } from "node:buffer";
// @ts-types="./_npm_structs.d.ts"
import * as structs from "netlink/dist/structs.js";
// @ts-types="./_npm_rt.d.ts"
import * as rt from "netlink/dist/rt/gen_structs.js";
// @ts-types="./_npm_ifla.d.ts"
import * as ifla from "netlink/dist/rt/ifla.js";
import type { NetlinkMessage, StreamData } from "./_npm_structs.d.ts";

export { Buffer, ifla, rt, structs };
export type { NetlinkMessage, StreamData };

/**
 * An attribute-stream parser for the attribute types in `fns`, made once. npm:netlink's generated
 * `parse*Attrs` build their table of one closure per attribute type on every call (about 2 KiB of
 * garbage per route: 5 000 routes dumped every 10 s kept the young generation busy); its own
 * `getObject` walks the stream the same way with a table built once.
 */
export function attributeParser<T extends object>(
  fns: Record<number, (data: Buffer, obj: T) => unknown>,
): (stream: Buffer) => T {
  return (stream) => structs.getObject<T>(stream, fns);
}

/** The encoding counterpart of {@link attributeParser}: the formatter table made once. */
export function attributeFormatter<T extends object>(
  fns: Record<string, (out: structs.AttrStream, obj: T) => unknown>,
): (x: T) => StreamData {
  return (x) => structs.putObject<T>(x, fns);
}

/** nlmsg_type values. */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** nlmsg_flags values. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** On NLMSG_ERROR: the original request was not echoed / extended-ack TLVs follow. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

/** Concatenates an attribute stream into one buffer (for nesting). */
export function streamBytes(data: StreamData): Buffer {
  const out = new structs.AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
}

/** Frames one request message: header, fixed struct, attributes. */
export function encodeMessage(
  type: number,
  flags: number,
  seq: number,
  fixed: Uint8Array,
  attrs?: StreamData,
): Uint8Array {
  const out = new structs.AttrStream();
  out.emit(fixed);
  if (attrs) out.emit(attrs);
  return Buffer.concat(structs.formatMessage({ type, flags, seq, port: 0, data: out.bufs }));
}

/** Splits one datagram into its messages. */
export function decodeMessages(datagram: Uint8Array): NetlinkMessage[] {
  return structs.parseMessages(
    Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength),
  );
}

/** `struct ifinfomsg` (16 bytes). */
export function ifinfomsg(
  family: number,
  index: number,
  flags = 0,
  change = 0,
): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

/** `struct ifaddrmsg` (8 bytes). */
export function ifaddrmsg(
  family: number,
  prefixLen: number,
  scope: number,
  index: number,
): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

/** `struct rtmsg` (12 bytes). */
export function rtmsg(r: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(r.family, 0);
  b.writeUInt8(r.dstLen, 1);
  b.writeUInt8(r.srcLen, 2);
  b.writeUInt8(r.tos, 3);
  b.writeUInt8(r.table & 0xff, 4);
  b.writeUInt8(r.protocol, 5);
  b.writeUInt8(r.scope, 6);
  b.writeUInt8(r.type, 7);
  b.writeUInt32LE(r.flags >>> 0, 8);
  return b;
}

export function parseRtmsg(b: Buffer): RtMsg {
  if (b.length < 12) throw new Error(`Cannot parse rtmsg: ${b.length} bytes, need 12`);
  return {
    family: b.readUInt8(0),
    dstLen: b.readUInt8(1),
    srcLen: b.readUInt8(2),
    tos: b.readUInt8(3),
    table: b.readUInt8(4),
    protocol: b.readUInt8(5),
    scope: b.readUInt8(6),
    type: b.readUInt8(7),
    flags: b.readUInt32LE(8),
  };
}

export interface NdMsg {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
}

/** `struct ndmsg` (12 bytes). */
export function ndmsg(n: NdMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(n.family, 0);
  b.writeInt32LE(n.index, 4);
  b.writeUInt16LE(n.state, 8);
  b.writeUInt8(n.flags, 10);
  b.writeUInt8(n.type, 11);
  return b;
}

export function parseNdmsg(b: Buffer): NdMsg {
  if (b.length < 12) throw new Error(`Cannot parse ndmsg: ${b.length} bytes, need 12`);
  return {
    family: b.readUInt8(0),
    index: b.readInt32LE(4),
    state: b.readUInt16LE(8),
    flags: b.readUInt8(10),
    type: b.readUInt8(11),
  };
}
