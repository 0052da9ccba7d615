/** RTM_*LINK messages ⇄ {@link Link} / {@link LinkSpec}. */
import {
  AF_UNSPEC,
  Buffer,
  ifinfomsg,
  ifla,
  type NetlinkMessage,
  streamBytes,
  type StreamData,
} from "./_codec.ts";
import { ipBytes, ipText, macBytes, macText } from "./_text.ts";
import type { Link, LinkChange, LinkSpec, VxlanInfo } from "./types.ts";

export const IFF_UP = 0x1;
/** IFLA_EXT_MASK bit asking the kernel to leave statistics out of link dumps. */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const VXLAN_DEFAULT_PORT = 8472;

/** Request body for `ip link add` (RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL). */
export function encodeLinkAdd(spec: LinkSpec): [Buffer, StreamData] {
  const info: ifla.Info = { kind: spec.kind };
  if (spec.kind === "vxlan") {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(spec.port ?? VXLAN_DEFAULT_PORT);
    const vx: ifla.Vxlan = { id: spec.vni, learning: spec.learning ? 1 : 0, port };
    if (spec.dev !== undefined) vx.link = spec.dev;
    if (spec.local !== undefined) {
      const local = ipBytes(spec.local);
      if (local.family === 4) vx.local = local.bytes;
      else vx.local6 = local.bytes;
    }
    if (spec.gbp) vx.gbp = true;
    info.data = streamBytes(ifla.formatVxlan(vx));
  }
  const attrs: ifla.LinkAttrs = { ifname: spec.name, linkinfo: streamBytes(ifla.formatInfo(info)) };
  if (spec.mtu !== undefined) attrs.mtu = spec.mtu;
  if (spec.mac !== undefined) attrs.address = macBytes(spec.mac);
  return [ifinfomsg(AF_UNSPEC, 0), ifla.formatLinkAttrs(attrs)];
}

/** Request body for `ip link set` (RTM_NEWLINK on an existing index). */
export function encodeLinkSet(index: number, change: LinkChange): [Buffer, StreamData] {
  const attrs: ifla.LinkAttrs = {};
  if (change.mtu !== undefined) attrs.mtu = change.mtu;
  if (change.mac !== undefined) attrs.address = macBytes(change.mac);
  const flags = change.up ? IFF_UP : 0;
  const mask = change.up === undefined ? 0 : IFF_UP;
  return [ifinfomsg(AF_UNSPEC, index, flags, mask), ifla.formatLinkAttrs(attrs)];
}

/** Request body for a link lookup by name (index 0) or by index. */
export function encodeLinkGet(index: number, name?: string): [Buffer, StreamData] {
  const attrs: ifla.LinkAttrs = { extMask: u32(RTEXT_FILTER_SKIP_STATS) };
  if (name !== undefined) attrs.ifname = name;
  return [ifinfomsg(AF_UNSPEC, index), ifla.formatLinkAttrs(attrs)];
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function decodeVxlan(data: Buffer): VxlanInfo {
  const vx = ifla.parseVxlan(data);
  const local = vx.local ?? vx.local6;
  return {
    vni: vx.id ?? 0,
    ...(local && !local.every((b) => b === 0) ? { local: ipText(local) } : {}),
    ...(vx.link ? { dev: vx.link } : {}),
    port: vx.port ? vx.port.readUInt16BE(0) : VXLAN_DEFAULT_PORT,
    learning: (vx.learning ?? 1) !== 0,
    gbp: vx.gbp === true,
  };
}

/** Decodes an RTM_NEWLINK / RTM_DELLINK payload. */
export function decodeLink(msg: NetlinkMessage): Link {
  const d = msg.data;
  if (d.length < 16) throw new Error(`Cannot parse ifinfomsg: ${d.length} bytes, need 16`);
  const index = d.readInt32LE(4);
  const flags = d.readUInt32LE(8);
  const attrs = ifla.parseLinkAttrs(d.subarray(16));
  let kind: string | undefined;
  let vxlan: VxlanInfo | undefined;
  if (attrs.linkinfo) {
    const info = ifla.parseInfo(attrs.linkinfo);
    kind = info.kind;
    if (kind === "vxlan" && info.data) vxlan = decodeVxlan(info.data);
  }
  return {
    index,
    name: attrs.ifname ?? "",
    mtu: attrs.mtu ?? 0,
    up: (flags & IFF_UP) !== 0,
    flags,
    ...(attrs.address && attrs.address.length > 0 ? { mac: macText(attrs.address) } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(attrs.master ? { master: attrs.master } : {}),
    ...(vxlan ? { vxlan } : {}),
  };
}
