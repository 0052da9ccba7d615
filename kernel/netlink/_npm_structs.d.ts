// Types for the parts of npm:netlink@0.3.0 `dist/structs.js` this folder uses. The package's own
// declarations pull in @types/node@12, which hides Deno's `node:` module types from the whole
// type-check graph, so `_codec.ts` imports the module with these instead.
import type { Buffer } from "node:buffer";

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  port: number;
  data: Buffer;
}

export type StreamData = Uint8Array | Uint8Array[] | ((out: AttrStream) => unknown);

export declare class AttrStream {
  readonly bufs: Uint8Array[];
  emit(data: StreamData): void;
  push(type: number, data: StreamData): void;
}

export declare function parseMessages(r: Buffer): NetlinkMessage[];
/** Walks an attribute stream, calling `fns[type](data, obj)` for the types it has. */
export declare function getObject<T>(
  x: Buffer,
  fns: Record<number, (data: Buffer, obj: T) => unknown>,
): T;
export declare function getU32(x: Buffer): number;
export declare function putU32(x: number): Buffer;
/** Emits the keys of `x` through `fns[key](out, x)`; an unknown key throws. */
export declare function putObject<T>(
  x: T,
  fns: Record<string, (out: AttrStream, obj: T) => unknown>,
): StreamData;
export declare function formatMessage(x: {
  type: number;
  flags: number;
  seq: number;
  port: number;
  data: Uint8Array | Uint8Array[];
}): Uint8Array[];
