/**
 * Data-path counters in shared memory: each worker writes its own slots (one writer per slot, no
 * locking), the main thread reads them for `stats()` and for rate-limited drop logging.
 */

/** Slot numbers in the shared Float64Array. */
export const S = {
  // TUN → UDP (outbound)
  tunRead: 0,
  udpSent: 1,
  udpSentBytes: 2,
  outBatches: 3,
  icmpSent: 4,
  outShort: 5,
  outMalformed: 6,
  outTtl: 7,
  outNoRoute: 8,
  outSendError: 9,
  outReadError: 10,
  // UDP → TUN (inbound)
  udpReceived: 11,
  tunWritten: 12,
  tunWrittenBytes: 13,
  inBatches: 14,
  inShort: 15,
  inMalformed: 16,
  inOversize: 17,
  inTtl: 18,
  inUnknownSource: 19,
  inSpoofedSource: 20,
  inWriteError: 21,
  inRecvError: 22,
  // Last offenders, for log lines (IPv4 as number, errno).
  lastNoRouteDst: 23,
  lastUnknownSource: 24,
  lastSpoofedSource: 25,
  lastSendErrno: 26,
  lastWriteErrno: 27,
  /** Unexpected exceptions caught in a worker loop (the loop carries on). */
  internalErrors: 28,
  lastRecvErrno: 29,
} as const;

export const STAT_SLOTS = 30;

/** Drop counters by reason, for both directions. */
export interface UdpDrops {
  /** Shorter than an IPv4 header (either direction). */
  readonly short: number;
  /** Bad version / header length / total length (either direction). */
  readonly malformed: number;
  /** Datagram larger than the TUN MTU. */
  readonly oversize: number;
  /** TTL reached 0 (either direction). */
  readonly ttl: number;
  /** Destination in no peer's subnet (answered with ICMP net unreachable where due). */
  readonly noRoute: number;
  /** Datagram from an address that is no current peer's public IP. */
  readonly unknownSource: number;
  /** Datagram from a peer carrying an inner source outside that peer's subnet. */
  readonly spoofedSource: number;
  /** sendmmsg refused a packet. */
  readonly sendError: number;
  /** Writing into the TUN device failed. */
  readonly tunWriteError: number;
  /** recvmmsg failed (other than "nothing to read"). */
  readonly receiveError: number;
  /** Reading from the TUN device failed (other than "nothing to read"). */
  readonly tunReadError: number;
  /** Unexpected exceptions in a worker loop (the loop carried on). */
  readonly internalError: number;
}

/** The data-path counters `UdpNetwork` reads, as numbers. */
export interface UdpStats {
  /** Datagrams received from peers, and the packets of them written into the TUN device. */
  readonly packetsIn: number;
  readonly packetsInDelivered: number;
  readonly bytesIn: number;
  /** Packets read from the TUN device, and datagrams sent for them. */
  readonly packetsOutRead: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
  readonly icmpSent: number;
  /** Average packets per recvmmsg / per sendmmsg call. */
  readonly inBatchAvg: number;
  readonly outBatchAvg: number;
  readonly drops: UdpDrops;
  /** Peer leases currently refused as unusable (see `backends/_lease_intake.ts`). */
  readonly badPeers: number;
  readonly internalErrors: number;
}

export function readStats(s: Float64Array, badPeers: number): UdpStats {
  return {
    packetsIn: s[S.udpReceived],
    packetsInDelivered: s[S.tunWritten],
    bytesIn: s[S.tunWrittenBytes],
    packetsOutRead: s[S.tunRead],
    packetsOut: s[S.udpSent],
    bytesOut: s[S.udpSentBytes],
    icmpSent: s[S.icmpSent],
    inBatchAvg: s[S.inBatches] ? s[S.udpReceived] / s[S.inBatches] : 0,
    outBatchAvg: s[S.outBatches] ? s[S.udpSent] / s[S.outBatches] : 0,
    drops: {
      short: s[S.outShort] + s[S.inShort],
      malformed: s[S.outMalformed] + s[S.inMalformed],
      oversize: s[S.inOversize],
      ttl: s[S.outTtl] + s[S.inTtl],
      noRoute: s[S.outNoRoute],
      unknownSource: s[S.inUnknownSource],
      spoofedSource: s[S.inSpoofedSource],
      sendError: s[S.outSendError],
      tunWriteError: s[S.inWriteError],
      receiveError: s[S.inRecvError],
      tunReadError: s[S.outReadError],
      internalError: s[S.internalErrors],
    },
    badPeers,
    internalErrors: s[S.internalErrors],
  };
}
