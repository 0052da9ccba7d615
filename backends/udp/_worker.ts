/**
 * A data-path worker of the udp backend: one thread per direction, blocking in `poll` when idle.
 *
 * - `out` (TUN → UDP): reads packets from the TUN device until it would block or the batch is
 *   full, rewrites each in place (TTL, checksum), then sends the whole batch with one `sendmmsg`.
 *   Packets to unleased subnets get flannel's ICMP net unreachable written back into the TUN.
 * - `in` (UDP → TUN): receives a batch with one `recvmmsg`, drops strangers and spoofed or broken
 *   packets, rewrites the rest in place and writes each into the TUN device.
 *
 * Every buffer is allocated once; the per-packet work is a few byte reads and writes plus the
 * one system call the kernel interface requires. State comes in through shared memory: the peer
 * table (re-read when its version changes), the stop flag and the counters.
 */
/// <reference lib="deno.worker" />
import {
  EAGAIN,
  EINTR,
  errno,
  MSG_DONTWAIT,
  MSG_TRUNC,
  POLLIN,
  type TunLibc,
  tunLibc,
} from "../../kernel/tun.ts";
import {
  buildNetUnreachable,
  checkHeader,
  decrementTtl,
  NET_UNREACHABLE_MAX,
  readU32,
  Verdict,
} from "./packet.ts";
import { checkSource, PeerIndex, SourceVerdict } from "./peers.ts";
import { S } from "./stats.ts";

/** What the main thread sends to start a worker. */
export interface WorkerConfig {
  readonly direction: "in" | "out";
  readonly tunFd: number;
  readonly udpFd: number;
  /** eventfd made readable to wake the worker for stopping. */
  readonly wakeFd: number;
  /** Int32Array: [0] stop flag. */
  readonly control: SharedArrayBuffer;
  readonly peers: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  /** The TUN device's address (source of ICMP replies). */
  readonly tunAddr: number;
  readonly mtu: number;
  /** Packets per system-call batch. */
  readonly batch: number;
}

const HDR = 64; // sizeof(struct mmsghdr) on x86_64 / aarch64
const IOV = 16;
const NAME = 16; // sizeof(struct sockaddr_in)

function address(buf: ArrayBuffer): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** Preallocated buffers and the mmsghdr vector pointing into them. */
class Batch {
  readonly slot: number;
  readonly data: Uint8Array;
  readonly views: Uint8Array[];
  readonly hdrs: Uint8Array;
  readonly hdrViews: Uint8Array[];
  readonly hdr32: Uint32Array;
  readonly iov32: Uint32Array;
  readonly names: Uint8Array;

  constructor(readonly size: number, mtu: number) {
    this.slot = (mtu + 64 + 63) & ~63;
    const data = new ArrayBuffer(size * this.slot);
    const hdrs = new ArrayBuffer(size * HDR);
    const iovs = new ArrayBuffer(size * IOV);
    const names = new ArrayBuffer(size * NAME);
    this.data = new Uint8Array(data);
    this.hdrs = new Uint8Array(hdrs);
    this.hdr32 = new Uint32Array(hdrs);
    this.iov32 = new Uint32Array(iovs);
    this.names = new Uint8Array(names);
    const hdr64 = new BigUint64Array(hdrs);
    const iov64 = new BigUint64Array(iovs);
    const [pData, pIovs, pNames] = [address(data), address(iovs), address(names)];
    this.views = [];
    this.hdrViews = [];
    for (let i = 0; i < size; i++) {
      this.views.push(this.data.subarray(i * this.slot, (i + 1) * this.slot));
      this.hdrViews.push(this.hdrs.subarray(i * HDR));
      iov64[i * 2] = pData + BigInt(i * this.slot);
      iov64[i * 2 + 1] = BigInt(this.slot);
      hdr64[i * 8] = pNames + BigInt(i * NAME); // msg_name
      this.hdr32[i * 16 + 2] = NAME; // msg_namelen
      hdr64[i * 8 + 2] = pIovs + BigInt(i * IOV); // msg_iov
      hdr64[i * 8 + 3] = 1n; // msg_iovlen
      this.names[i * NAME] = 2; // AF_INET (little-endian u16)
    }
  }
}

function pollFds(fd: number, wakeFd: number): Uint8Array {
  const b = new Uint8Array(new ArrayBuffer(16));
  const dv = new DataView(b.buffer);
  dv.setInt32(0, fd, true);
  dv.setInt16(4, POLLIN, true);
  dv.setInt32(8, wakeFd, true);
  dv.setInt16(12, POLLIN, true);
  return b;
}

function runOut(c: WorkerConfig, libc: TunLibc): void {
  const stop = new Int32Array(c.control);
  const st = new Float64Array(c.stats);
  const peers = new PeerIndex(c.peers);
  const b = new Batch(c.batch, c.mtu);
  const { data, views, iov32, names, hdrViews, slot } = b;
  const icmp = new Uint8Array(new ArrayBuffer(NET_UNREACHABLE_MAX));
  const fds = pollFds(c.tunFd, c.wakeFd);
  const { tunFd, udpFd, tunAddr, batch } = c;
  const slotBig = BigInt(slot);
  let failures = 0;
  while (Atomics.load(stop, 0) === 0) {
    try {
      peers.refresh();
      let k = 0;
      let drained = false;
      let bytes = 0;
      while (k < batch) {
        const n = libc.read(tunFd, views[k], slotBig);
        if (n < 0) {
          const e = errno();
          if (e !== EAGAIN && e !== EINTR) st[S.outReadError]++;
          drained = true;
          break;
        }
        st[S.tunRead]++;
        const off = k * slot;
        const len = checkHeader(data, off, n);
        if (len < 0) {
          st[len === -Verdict.short ? S.outShort : S.outMalformed]++;
          continue;
        }
        const dst = readU32(data, off + 16);
        const p = peers.route(dst);
        if (p === undefined) {
          st[S.outNoRoute]++;
          st[S.lastNoRouteDst] = dst;
          const m = buildNetUnreachable(data, off, len, tunAddr, icmp);
          if (m > 0 && libc.write(tunFd, icmp, BigInt(m)) === m) st[S.icmpSent]++;
          continue;
        }
        if (!decrementTtl(data, off)) {
          st[S.outTtl]++;
          continue;
        }
        iov32[k * 4 + 2] = len;
        const na = k * NAME;
        names[na + 2] = p.port >>> 8;
        names[na + 3] = p.port & 255;
        const ip = p.publicIP;
        names[na + 4] = ip >>> 24;
        names[na + 5] = (ip >>> 16) & 255;
        names[na + 6] = (ip >>> 8) & 255;
        names[na + 7] = ip & 255;
        bytes += len;
        k++;
      }
      if (k > 0) {
        st[S.outBatches]++;
        let sent = 0;
        let failed = 0;
        while (sent < k) {
          const r = libc.sendmmsg(udpFd, hdrViews[sent], k - sent, 0);
          if (r > 0) {
            sent += r;
            continue;
          }
          const e = errno();
          if (e === EINTR) continue;
          // The first remaining datagram was refused (no route, EMSGSIZE ...): skip it.
          st[S.outSendError]++;
          st[S.lastSendErrno] = e;
          bytes -= iov32[sent * 4 + 2];
          failed++;
          sent++;
        }
        st[S.udpSent] += k - failed;
        st[S.udpSentBytes] += bytes;
      }
      if (drained) libc.poll(fds, 2n, -1);
      failures = 0;
    } catch {
      st[S.internalErrors]++;
      // Never spin on a persistent fault: back off a little.
      if (++failures > 3) libc.poll(fds, 0n, 10);
    }
  }
}

function runIn(c: WorkerConfig, libc: TunLibc): void {
  const stop = new Int32Array(c.control);
  const st = new Float64Array(c.stats);
  const peers = new PeerIndex(c.peers);
  const b = new Batch(c.batch, c.mtu);
  const { data, views, hdrs, hdr32, names, slot } = b;
  const fds = pollFds(c.udpFd, c.wakeFd);
  const { tunFd, udpFd, mtu, batch } = c;
  let failures = 0;
  while (Atomics.load(stop, 0) === 0) {
    try {
      const r = libc.recvmmsg(udpFd, hdrs, batch, MSG_DONTWAIT, null);
      if (r < 0) {
        const e = errno();
        if (e !== EAGAIN && e !== EINTR) st[S.inRecvError]++;
        if (e !== EINTR) libc.poll(fds, 2n, -1);
        continue;
      }
      st[S.inBatches]++;
      peers.refresh();
      for (let i = 0; i < r; i++) {
        st[S.udpReceived]++;
        const h = i * 16;
        const n = hdr32[h + 14];
        const flags = hdr32[h + 12];
        hdr32[h + 2] = NAME; // the kernel rewrote msg_namelen
        if ((flags & MSG_TRUNC) !== 0 || n > mtu) {
          st[S.inOversize]++;
          continue;
        }
        const off = i * slot;
        const len = checkHeader(data, off, n);
        if (len < 0) {
          st[len === -Verdict.short ? S.inShort : S.inMalformed]++;
          continue;
        }
        const src = readU32(names, i * NAME + 4);
        const v = checkSource(peers, src, readU32(data, off + 12));
        if (v !== SourceVerdict.ok) {
          if (v === SourceVerdict.unknownSource) {
            st[S.inUnknownSource]++;
            st[S.lastUnknownSource] = src;
          } else {
            st[S.inSpoofedSource]++;
            st[S.lastSpoofedSource] = src;
          }
          continue;
        }
        if (!decrementTtl(data, off)) {
          st[S.inTtl]++;
          continue;
        }
        const lenBig = BigInt(len);
        let w = libc.write(tunFd, views[i], lenBig);
        for (let tries = 0; w < 0 && tries < 8 && errno() === EAGAIN; tries++) {
          w = libc.write(tunFd, views[i], lenBig);
        }
        if (w === len) {
          st[S.tunWritten]++;
          st[S.tunWrittenBytes] += len;
        } else {
          st[S.inWriteError]++;
          st[S.lastWriteErrno] = w < 0 ? errno() : 0;
        }
      }
      failures = 0;
    } catch {
      st[S.internalErrors]++;
      if (++failures > 3) libc.poll(fds, 0n, 10);
    }
  }
}

self.onmessage = (e: MessageEvent<WorkerConfig>) => {
  const c = e.data;
  const libc = tunLibc();
  self.postMessage({ started: true });
  if (c.direction === "out") runOut(c, libc);
  else runIn(c, libc);
  self.postMessage({ stopped: true });
  self.close();
};
