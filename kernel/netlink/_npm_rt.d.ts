// Types for the parts of npm:netlink@0.3.0 `dist/rt/gen_structs.js` this folder uses (see
// `_npm_structs.d.ts` for why the package's own declarations are not used).
import type { Buffer } from "node:buffer";
import type { StreamData } from "./_npm_structs.d.ts";

export interface RouteAttrs {
  dst?: Buffer;
  src?: Buffer;
  iif?: number;
  oif?: number;
  gateway?: Buffer;
  priority?: number;
  prefsrc?: Buffer;
  table?: number;
}
export declare function parseRouteAttrs(r: Buffer): RouteAttrs;
export declare function formatRouteAttrs(x: RouteAttrs): StreamData;

/** IFA_F_* bits by name (the package's decoded form of the IFA_FLAGS word). */
export type AddressFlags = Record<string, boolean | number>;

export interface AddressAttrs {
  address?: Buffer;
  local?: Buffer;
  label?: string;
  /** IFA_FLAGS: the 32-bit flags word (kernel 3.14+), which supersedes ifa_flags. */
  flags?: AddressFlags;
}
export declare function parseAddressFlags(r: number): AddressFlags;
export declare function formatAddressFlags(x: AddressFlags): number;
export declare function parseAddressAttrs(r: Buffer): AddressAttrs;
export declare function formatAddressAttrs(x: AddressAttrs): StreamData;

export interface NeighborAttrs {
  dst?: Buffer;
  lladdr?: Buffer;
  master?: number;
}
export declare function parseNeighborAttrs(r: Buffer): NeighborAttrs;
export declare function formatNeighborAttrs(x: NeighborAttrs): StreamData;
