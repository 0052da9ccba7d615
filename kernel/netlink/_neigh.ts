/** RTM_*NEIGH messages ⇄ {@link Neigh} (ARP/NDP) and {@link Fdb} (AF_BRIDGE, NTF_SELF). */
import {
  AF_BRIDGE,
  AF_UNSPEC,
  attributeFormatter,
  attributeParser,
  Buffer,
  ndmsg,
  type NetlinkMessage,
  parseNdmsg,
  rt,
  type StreamData,
} from "./_codec.ts";
import { afOf, ipBytes, ipText, macBytes, macText } from "./_text.ts";
import type { Fdb, Neigh } from "./types.ts";

export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
const RTN_UNICAST = 1;
/** NDA_IFINDEX: the dump filter by device. */
const NDA_IFINDEX = 8;

/** The neighbour attributes this layer writes (NDA_DST, NDA_LLADDR). */
const formatNeighborAttrs = attributeFormatter<rt.NeighborAttrs>({
  dst: (out, x) => out.push(1, x.dst!),
  lladdr: (out, x) => out.push(2, x.lladdr!),
});

/** Request body for `ip neigh replace|del IP [lladdr MAC] dev IDX nud permanent`. */
export function encodeNeigh(n: Neigh, op: "set" | "delete"): [Buffer, StreamData] {
  const ip = ipBytes(n.ip);
  const attrs: rt.NeighborAttrs = { dst: ip.bytes };
  if (op === "set") {
    if (n.mac === undefined) throw new TypeError(`Cannot set neighbour ${n.ip}: no MAC given`);
    attrs.lladdr = macBytes(n.mac);
  }
  const header = ndmsg({
    family: afOf(ip.family),
    index: n.index,
    state: op === "set" ? n.state ?? NUD_PERMANENT : 0,
    flags: 0,
    type: op === "set" ? RTN_UNICAST : 0,
  });
  return [header, formatNeighborAttrs(attrs)];
}

/** Request body for `bridge fdb replace|del MAC dev IDX [dst IP] self [permanent]`. */
export function encodeFdb(f: Fdb, op: "set" | "delete"): [Buffer, StreamData] {
  const attrs: rt.NeighborAttrs = { lladdr: macBytes(f.mac) };
  if (f.dst !== undefined) attrs.dst = ipBytes(f.dst).bytes;
  const header = ndmsg({
    family: AF_BRIDGE,
    index: f.index,
    state: op === "set" ? f.state ?? NUD_PERMANENT : 0,
    flags: NTF_SELF,
    type: 0,
  });
  return [header, formatNeighborAttrs(attrs)];
}

/** Request body for a neighbour (`family` AF_UNSPEC) or FDB (AF_BRIDGE) dump. */
export function encodeNeighDump(family: number, index?: number): [Buffer, StreamData] {
  const header = ndmsg({ family, index: 0, state: 0, flags: 0, type: 0 });
  if (index === undefined) return [header, []];
  const attr = Buffer.alloc(8);
  attr.writeUInt16LE(8, 0);
  attr.writeUInt16LE(NDA_IFINDEX, 2);
  attr.writeUInt32LE(index, 4);
  return [header, attr];
}

export type DecodedNeigh =
  | { kind: "neigh"; neigh: Neigh }
  | { kind: "fdb"; fdb: Fdb }
  | undefined;

/** The neighbour attributes {@link decodeNeigh} reads (NDA_DST, NDA_LLADDR). */
const parseNeighborAttrs = attributeParser<rt.NeighborAttrs>({
  1: (data, obj) => obj.dst = data,
  2: (data, obj) => obj.lladdr = data,
});

/** Decodes an RTM_NEWNEIGH / RTM_DELNEIGH payload of any family. */
export function decodeNeigh(msg: NetlinkMessage): DecodedNeigh {
  const h = parseNdmsg(msg.data);
  const attrs = parseNeighborAttrs(msg.data.subarray(12));
  if (h.family === AF_BRIDGE) {
    if (!attrs.lladdr) return undefined;
    return {
      kind: "fdb",
      fdb: {
        index: h.index,
        mac: macText(attrs.lladdr),
        ...(attrs.dst ? { dst: ipText(attrs.dst) } : {}),
        state: h.state,
      },
    };
  }
  if ((h.family !== 2 && h.family !== 10) || !attrs.dst) return undefined;
  return {
    kind: "neigh",
    neigh: {
      index: h.index,
      ip: ipText(attrs.dst),
      ...(attrs.lladdr && attrs.lladdr.length > 0 ? { mac: macText(attrs.lladdr) } : {}),
      state: h.state,
    },
  };
}

export { AF_UNSPEC };
