/**
 * The vxlan lease `BackendData` (flannel pkg/lease/lease.go (LeaseAttrs)): `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`,
 * byte for byte what flannel writes, and VTEP MAC addresses parsed as Go's `net.ParseMAC` parses
 * the 6-byte forms.
 */
import { decodeJSONString, jsonKind, lookupMember, objectMembers } from "../../subnet/json.ts";
import { clip, quote } from "../../util/quote.ts";

/** What a peer advertises for its VXLAN tunnel endpoint. */
export interface VxlanLeaseData {
  readonly vni: number;
  /** Lower-case colon hex. */
  readonly vtepMac: string;
}

/**
 * Parses a 48-bit MAC in one of Go's `net.ParseMAC` notations (`aa:bb:cc:dd:ee:ff`,
 * `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`) to lower-case colon hex. A VTEP needs a unicast
 * address, so multicast and all-zero MACs are rejected too.
 */
export function parseMac(text: string): string {
  let groups: string[] | undefined;
  if (/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(text)) {
    groups = text.split(/[:-]/);
  } else if (/^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4}){2}$/.test(text)) {
    groups = text.split(".").flatMap((g) => [g.slice(0, 2), g.slice(2)]);
  }
  if (!groups) throw new SyntaxError(`Cannot parse MAC address ${quote(text)}`);
  const mac = groups.join(":").toLowerCase();
  if (mac === "00:00:00:00:00:00") {
    throw new RangeError(`MAC address ${quote(text)} is all zeros: not a usable VTEP address`);
  }
  if (parseInt(groups[0], 16) & 1) {
    throw new RangeError(
      `MAC address ${quote(text)} is a multicast address: not a usable VTEP address`,
    );
  }
  return mac;
}

/**
 * A random unicast, locally administered MAC, as flannel makes one (`b0 = (rand & 0xfe) | 0x02`).
 */
export function randomMac(
  random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b),
): string {
  const b = random(new Uint8Array(6));
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** The `BackendData` text flannel writes: `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`. */
export function encodeBackendData(data: VxlanLeaseData): string {
  return `{"VNI":${data.vni},"VtepMAC":"${data.vtepMac}"}`;
}

/**
 * Decodes a peer's `BackendData` or `BackendV6Data` (named by `field` in errors; keys case-insensitive, unknown keys ignored, as Go decodes it).
 * Throws naming what is wrong: missing or malformed JSON, a non-integer `VNI`, a missing or
 * unparsable `VtepMAC`.
 */
export function decodeBackendData(
  text: string | undefined,
  field: "BackendData" | "BackendV6Data" = "BackendData",
): VxlanLeaseData {
  if (text === undefined) throw new TypeError(`the lease has no ${field}`);
  let members;
  try {
    members = objectMembers(text);
  } catch (cause) {
    throw new SyntaxError(`Cannot decode ${field} ${clip(text)}`, { cause });
  }
  if (!members) throw new TypeError(`Cannot decode ${field} ${clip(text)}: it is null`);
  const vni = lookupMember(members, "VNI");
  const mac = lookupMember(members, "VtepMAC");
  if (!vni || jsonKind(vni.raw) !== "number" || !Number.isInteger(Number(vni.raw))) {
    throw new TypeError(`Cannot decode ${field} ${clip(text)}: "VNI" must be an integer`);
  }
  if (!mac || jsonKind(mac.raw) !== "string") {
    throw new TypeError(`Cannot decode ${field} ${clip(text)}: "VtepMAC" must be a string`);
  }
  try {
    return { vni: Number(vni.raw), vtepMac: parseMac(decodeJSONString(mac.raw)) };
  } catch (cause) {
    throw new SyntaxError(`Cannot decode ${field} ${clip(text)}: bad "VtepMAC"`, { cause });
  }
}
