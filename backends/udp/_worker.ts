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
import { Pinned } from "../../kernel/pinned.ts";
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
const POLLFD = 8;

/**
 * The buffers of one direction and the `mmsghdr` vector pointing into them, in ONE pinned region
 * (kernel/pinned.ts): headers, iovecs, addresses, packet slots, and the poll set. The headers hold
 * the addresses of the iovecs and names, the iovecs those of the slots, so the whole region must
 * stay put and alive for as long as the worker runs; it is released only after the loop ends.
 */
class Batch {
  readonly mem: Pinned;
  readonly slot: number;
  /** Packet slots: slot `i` starts at `i * slot`. */
  readonly data: Uint8Array;
  readonly views: Uint8Array[];
  readonly hdr32: Uint32Array;
  readonly iov32: Uint32Array;
  readonly names: Uint8Array;
  /** `hdrs[i]`: pointer to the i-th mmsghdr (for sendmmsg of a batch's tail). */
  readonly hdrs: Deno.PointerObject[];
  readonly pollSet: Deno.PointerObject;

  constructor(readonly size: number, mtu: number, fd: number, wakeFd: number) {
    this.slot = (mtu + 64 + 63) & ~63;
    const hdrAt = 0;
    const iovAt = hdrAt + size * HDR;
    const nameAt = iovAt + size * IOV;
    const pollAt = nameAt + size * NAME;
    const dataAt = (pollAt + 2 * POLLFD + 63) & ~63;
    const mem = new Pinned(dataAt + size * this.slot);
    this.mem = mem;
    const buf = mem.bytes.buffer;
    this.data = mem.view(dataAt, size * this.slot);
    this.hdr32 = new Uint32Array(buf, hdrAt, (size * HDR) / 4);
    this.iov32 = new Uint32Array(buf, iovAt, (size * IOV) / 4);
    this.names = mem.view(nameAt, size * NAME);
    const hdr64 = new BigUint64Array(buf, hdrAt, (size * HDR) / 8);
    const iov64 = new BigUint64Array(buf, iovAt, (size * IOV) / 8);
    this.views = [];
    this.hdrs = [];
    for (let i = 0; i < size; i++) {
      this.views.push(this.data.subarray(i * this.slot, (i + 1) * this.slot));
      this.hdrs.push(mem.pointer(hdrAt + i * HDR));
      iov64[i * 2] = mem.address(dataAt + i * this.slot);
      iov64[i * 2 + 1] = BigInt(this.slot);
      hdr64[i * 8] = mem.address(nameAt + i * NAME); // msg_name
      this.hdr32[i * 16 + 2] = NAME; // msg_namelen
      hdr64[i * 8 + 2] = mem.address(iovAt + i * IOV); // msg_iov
      hdr64[i * 8 + 3] = 1n; // msg_iovlen
      this.names[i * NAME] = 2; // AF_INET (little-endian u16)
    }
    const dv = new DataView(buf, pollAt, 2 * POLLFD);
    dv.setInt32(0, fd, true);
    dv.setInt16(4, POLLIN, true);
    dv.setInt32(8, wakeFd, true);
    dv.setInt16(12, POLLIN, true);
    this.pollSet = mem.pointer(pollAt);
  }
}

/**
 * With `--v8-flags=--expose-gc` and `FLANNEL_GC_STRESS=1` (the endurance tests), a full collection
 * every 256 rounds, so memory that is handed to the kernel but not kept alive fails within seconds,
 * not days.
 */
const stressGc = Deno.env.get("FLANNEL_GC_STRESS") === "1"
  ? (globalThis as { gc?: () => void }).gc
  : undefined;

function runOut(c: WorkerConfig, libc: TunLibc): void {
  const stop = new Int32Array(c.control);
  const st = new Float64Array(c.stats);
  const peers = new PeerIndex(c.peers);
  const b = new Batch(c.batch, c.mtu, c.tunFd, c.wakeFd);
  const { data, views, iov32, names, hdrs, slot, pollSet } = b;
  const icmp = new Uint8Array(new ArrayBuffer(NET_UNREACHABLE_MAX));
  const { tunFd, udpFd, tunAddr, batch } = c;
  const slotBig = BigInt(slot);
  let failures = 0;
  let rounds = 0;
  while (Atomics.load(stop, 0) === 0) {
    if (stressGc && (++rounds & 255) === 0) stressGc();
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
          const r = libc.sendmmsg(udpFd, hdrs[sent], k - sent, 0);
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
      if (drained) libc.poll(pollSet, 2n, -1);
      failures = 0;
    } catch {
      st[S.internalErrors]++;
      // Never spin on a persistent fault: back off a little.
      if (++failures > 3) libc.poll(pollSet, 0n, 10);
    }
  }
  // The loop is over: no call can use the region any more.
  b.mem.release();
}

function runIn(c: WorkerConfig, libc: TunLibc): void {
  const stop = new Int32Array(c.control);
  const st = new Float64Array(c.stats);
  const peers = new PeerIndex(c.peers);
  const b = new Batch(c.batch, c.mtu, c.udpFd, c.wakeFd);
  const { data, views, hdr32, names, slot, pollSet } = b;
  const first = b.hdrs[0];
  const { tunFd, udpFd, mtu, batch } = c;
  // Lengths as the bigints the FFI call takes, made once (no allocation per packet).
  const lengths = Array.from({ length: mtu + 1 }, (_, n) => BigInt(n));
  let failures = 0;
  let rounds = 0;
  while (Atomics.load(stop, 0) === 0) {
    if (stressGc && (++rounds & 255) === 0) stressGc();
    try {
      const r = libc.recvmmsg(udpFd, first, batch, MSG_DONTWAIT, null);
      if (r < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          libc.poll(pollSet, 2n, -1);
        } else {
          // A persistent failure must not spin: count it and wait a little.
          st[S.inRecvError]++;
          st[S.lastRecvErrno] = e;
          libc.poll(pollSet, 0n, 10);
        }
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
        let w = libc.write(tunFd, views[i], lengths[len]);
        for (let tries = 0; w < 0 && tries < 8 && errno() === EAGAIN; tries++) {
          w = libc.write(tunFd, views[i], lengths[len]);
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
      if (++failures > 3) libc.poll(pollSet, 0n, 10);
    }
  }
  b.mem.release();
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
