/** Wire encoding of etcd's JSON gateway: base64 keys/values, int64 fields as decimal strings. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function base64ToBytes(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** UTF-8 text → base64, as the gateway expects `bytes` fields. */
export function encodeText(text: string): string {
  return bytesToBase64(encoder.encode(text));
}

/** base64 → UTF-8 text; a missing field (proto3 omits empty bytes) is "". */
export function decodeText(b64: string | undefined): string {
  return b64 ? decoder.decode(base64ToBytes(b64)) : "";
}

/**
 * The `range_end` that selects every key starting with `prefix` (clientv3's `GetPrefixRangeEnd`):
 * the prefix with its last byte below 0xff incremented; "\0" (all keys) for an empty or all-0xff
 * prefix.
 */
export function prefixRangeEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i]++;
      return bytesToBase64(end);
    }
  }
  return bytesToBase64(new Uint8Array([0]));
}

/** An int64 JSON field (string, number, or omitted when zero) as a bigint. */
export function int64(value: unknown): bigint {
  if (value === undefined || value === null || value === "") return 0n;
  if (typeof value === "string" || typeof value === "number") return BigInt(value);
  throw new TypeError(`Cannot parse etcd int64 field ${JSON.stringify(value)}`);
}
