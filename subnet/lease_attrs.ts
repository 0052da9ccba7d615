/**
 * The lease value stored in etcd (flannel pkg/lease/lease.go (LeaseAttrs)), byte-compatible with Go's `json.Marshal` of
 * flannel's `lease.LeaseAttrs`:
 * `{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}`.
 */
import type { LeaseAttrs } from "./mod.ts";
import { formatIP4, formatIP6, parseIP4, parseIP6 } from "./ip.ts";
import {
  compactJSON,
  decodeJSONString,
  foldEquals,
  jsonKind,
  objectMembers,
  quoteJSON,
  trimQuotes,
} from "./json.ts";
import { quote } from "../util/quote.ts";

/**
 * Encodes lease attributes in flannel's field order with no whitespace: `PublicIP` (always),
 * `PublicIPv6` (`null` when unset), then `BackendType`, `BackendData` and `BackendV6Data`, each
 * omitted when empty. Backend data is compacted and HTML-escaped as Go does for
 * `json.RawMessage`; invalid backend data throws `SyntaxError`.
 */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  let out = `{"PublicIP":"${formatIP4(a.publicIP)}","PublicIPv6":`;
  out += a.publicIPv6 === undefined ? "null" : `"${formatIP6(a.publicIPv6)}"`;
  if (a.backendType) out += `,"BackendType":${quoteJSON(a.backendType)}`;
  if (a.backendData) out += `,"BackendData":${compactJSON(a.backendData)}`;
  if (a.backendV6Data) out += `,"BackendV6Data":${compactJSON(a.backendV6Data)}`;
  return out + "}";
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes a lease value as Go's `json.Unmarshal` into `LeaseAttrs` does: keys matched
 * case-insensitively, the last duplicate wins, unknown keys ignored. A missing `PublicIP` stays
 * 0 ("0.0.0.0", Go's zero value), `PublicIPv6: null` means unset, a `null` `BackendType` is
 * ignored, and `BackendData`/`BackendV6Data` are kept as compacted JSON text (any JSON value,
 * including `null`, as Go's `RawMessage` keeps it). The JSON literal `null` decodes to zero
 * attributes, as in Go.
 *
 * Throws `SyntaxError` naming the value and the problem.
 */
export function decodeLeaseAttrs(text: string): LeaseAttrs {
  const fail = (reason: string, cause?: unknown): never => {
    throw new SyntaxError(`Cannot decode lease value ${quote(text)}: ${reason}`, {
      cause,
    });
  };
  let members;
  try {
    members = objectMembers(text) ?? [];
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err), err);
  }
  const attrs: Mutable<LeaseAttrs> = { publicIP: 0 };
  for (const { key, raw } of members) {
    if (foldEquals(key, "PublicIP")) {
      try {
        attrs.publicIP = parseIP4(trimQuotes(raw));
      } catch (err) {
        fail(`${key} ${quote(trimQuotes(raw))} is not an IPv4 address`, err);
      }
    } else if (foldEquals(key, "PublicIPv6")) {
      if (raw === "null") {
        delete attrs.publicIPv6;
        continue;
      }
      try {
        attrs.publicIPv6 = parseIP6(trimQuotes(raw));
      } catch (err) {
        fail(`${key} ${quote(trimQuotes(raw))} is not an IPv6 address`, err);
      }
    } else if (foldEquals(key, "BackendType")) {
      const kind = jsonKind(raw);
      if (kind === "null") continue;
      if (kind !== "string") fail(`${key} must be a string, got ${kind}`);
      attrs.backendType = decodeJSONString(raw);
    } else if (foldEquals(key, "BackendData")) {
      attrs.backendData = compactJSON(raw);
    } else if (foldEquals(key, "BackendV6Data")) {
      attrs.backendV6Data = compactJSON(raw);
    }
  }
  return attrs;
}
