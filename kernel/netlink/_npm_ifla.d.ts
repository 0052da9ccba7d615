// Types for the parts of npm:netlink@0.3.0 `dist/rt/ifla.js` this folder uses (see
// `_npm_structs.d.ts` for why the package's own declarations are not used).
import type { Buffer } from "node:buffer";
import type { StreamData } from "./_npm_structs.d.ts";

export interface LinkAttrs {
  address?: Buffer;
  ifname?: string;
  mtu?: number;
  master?: number;
  linkinfo?: Buffer;
  extMask?: Buffer;
}
export declare function parseLinkAttrs(r: Buffer): LinkAttrs;
export declare function formatLinkAttrs(x: LinkAttrs): StreamData;

export interface Info {
  kind?: string;
  data?: Buffer;
}
export declare function parseInfo(r: Buffer): Info;
export declare function formatInfo(x: Info): StreamData;

export interface Vxlan {
  id?: number;
  link?: number;
  local?: Buffer;
  local6?: Buffer;
  learning?: number;
  port?: Buffer;
  gbp?: true;
}
export declare function parseVxlan(r: Buffer): Vxlan;
export declare function formatVxlan(x: Vxlan): StreamData;
