/**
 * IPv4 packet work for the udp backend's data path (flannel pkg/backend/udp/udp_network_amd64.go), on bytes in place: header
 * checks, the TTL decrement with an incremental checksum fix (RFC 1624), and flannel's ICMP
 * "net unreachable" reply. No allocation: these run once per packet.
 */

/** Bytes of an IPv4 header without options. */
export const IPV4_HEADER_LEN = 20;
export const IPPROTO_ICMP = 1;
/** Longest IPv4 header (ihl 15). flannel refuses to quote an offender with one (`>= 20 + 40`). */
const MAX_QUOTED_HEADER = 60;

/** Why a packet was not forwarded; `ok` (0) when it was. */
export const Verdict = {
  ok: 0,
  /** Shorter than an IPv4 header. */
  short: 1,
  /** Not IPv4, header length below 5 words or beyond the packet, or total length inconsistent. */
  malformed: 2,
  /** TTL would reach 0. */
  ttl: 3,
} as const;

/**
 * Checks the IPv4 header of the `len` bytes at `off`. Returns the packet's length (its total
 * length field, which may be shorter than `len` when the link padded it) or a negative
 * `Verdict` value.
 */
export function checkHeader(b: Uint8Array, off: number, len: number): number {
  if (len < IPV4_HEADER_LEN) return -Verdict.short;
  const vihl = b[off];
  const hlen = (vihl & 15) << 2;
  if (vihl >> 4 !== 4 || hlen < IPV4_HEADER_LEN || hlen > len) return -Verdict.malformed;
  const total = (b[off + 2] << 8) | b[off + 3];
  if (total < hlen || total > len) return -Verdict.malformed;
  return total;
}

/**
 * Decrements the TTL of the IPv4 header at `off` and fixes its checksum incrementally
 * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where m is the TTL/protocol word and m' = m − 0x100,
 * so ~m + m' = 0xFEFF). Returns false, changing nothing, when the TTL would reach 0.
 */
export function decrementTtl(b: Uint8Array, off: number): boolean {
  const ttl = b[off + 8];
  if (ttl <= 1) return false;
  b[off + 8] = ttl - 1;
  let s = (~((b[off + 10] << 8) | b[off + 11]) & 0xffff) + 0xfeff;
  s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  b[off + 10] = c >>> 8;
  b[off + 11] = c & 0xff;
  return true;
}

/** The Internet checksum (RFC 1071) of `len` bytes at `off`, computed from scratch. */
export function internetChecksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  let i = 0;
  for (; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (i < len) sum += b[off + i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The 32-bit big-endian word at `off`, as an unsigned number. */
export function readU32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 255;
  b[off + 2] = (v >>> 8) & 255;
  b[off + 3] = v & 255;
}

/** Room `buildNetUnreachable` needs in `out`. */
export const NET_UNREACHABLE_MAX = IPV4_HEADER_LEN + 8 + MAX_QUOTED_HEADER + 8;

/**
 * Writes into `out` the ICMP "destination unreachable / net unreachable" (type 3, code 0) that
 * flannel writes back into the TUN device for a packet to a subnet nobody leases: IP header
 * (version 4, ihl 5, TTL 8, protocol ICMP, id 0, src `tunAddr`, dst the offender's source), ICMP
 * header, then the offender's IP header and the first 8 bytes after it (zero-filled where the
 * offender is shorter). Returns the length, or 0 when no reply is due: the offender is ICMP
 * (RFC 792), a non-first fragment, or has a header length flannel calls malformed (ihl 15).
 */
export function buildNetUnreachable(
  offender: Uint8Array,
  off: number,
  len: number,
  tunAddr: number,
  out: Uint8Array,
): number {
  const hlen = (offender[off] & 15) << 2;
  if (hlen >= MAX_QUOTED_HEADER || hlen < IPV4_HEADER_LEN) return 0;
  if (offender[off + 9] === IPPROTO_ICMP) return 0;
  if ((((offender[off + 6] << 8) | offender[off + 7]) & 0x1fff) !== 0) return 0;
  const quoted = hlen + 8;
  const total = IPV4_HEADER_LEN + 8 + quoted;
  out.fill(0, 0, total);
  out[0] = 0x45;
  out[2] = total >>> 8;
  out[3] = total & 255;
  out[8] = 8;
  out[9] = IPPROTO_ICMP;
  writeU32(out, 12, tunAddr);
  for (let i = 0; i < 4; i++) out[16 + i] = offender[off + 12 + i];
  const ipSum = internetChecksum(out, 0, IPV4_HEADER_LEN);
  out[10] = ipSum >>> 8;
  out[11] = ipSum & 255;
  out[20] = 3; // ICMP_DEST_UNREACH
  out[21] = 0; // ICMP_NET_UNREACH
  const avail = Math.min(quoted, len);
  for (let i = 0; i < avail; i++) out[28 + i] = offender[off + i];
  const icmpSum = internetChecksum(out, 20, 8 + quoted);
  out[22] = icmpSum >>> 8;
  out[23] = icmpSum & 255;
  return total;
}
