/**
 * A raw NETLINK_ROUTE socket over Deno FFI. Sends are synchronous (the kernel handles an
 * rtnetlink request inside `sendto`, so there is nothing to wait for); receives try a
 * non-blocking `recv` first and only wait in `poll` on a worker thread when the queue is empty,
 * so the event loop keeps running. An eventfd wakes that `poll` on close.
 */
import { Pinned } from "../pinned.ts";
import { errnoError } from "./errors.ts";
import * as c from "./_libc.ts";

/** What the request engine and the subscription need from a socket (a fake in unit tests). */
export interface PacketSocket {
  /** Sends one datagram to the kernel; throws `NetlinkError`. */
  send(datagram: Uint8Array): void;
  /** The next datagram, or undefined once closed; throws `NetlinkError` (ENOBUFS: lost events). */
  receive(): Promise<Uint8Array | undefined>;
  close(): void;
}

export interface OpenSocketOptions {
  /** Multicast group bitmask (RTMGRP_*: bit `group - 1`). */
  groups?: number;
  /** SO_RCVBUF(FORCE) in bytes. */
  receiveBufferSize?: number;
  /** Ask the kernel to filter dumps by the request's header and attributes. */
  strictCheck?: boolean;
}

const INITIAL_BUFFER = 64 * 1024;

function check(result: number | bigint, action: string): number {
  const n = Number(result);
  if (n < 0) throw errnoError(action, c.errno());
  return n;
}

function int32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
}

function sockaddrNl(groups: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint16(0, c.AF_NETLINK, true);
  v.setUint32(8, groups >>> 0, true);
  return b;
}

const kernelAddress = sockaddrNl(0);

export class FfiNetlinkSocket implements PacketSocket {
  #fd: number;
  #wake: number;
  #buf = new Uint8Array(INITIAL_BUFFER);
  /** The poll set (socket, eventfd): read by a poll running on another thread, so pinned. */
  readonly #pollSet: Pinned;
  #closed = false;
  #polling = false;
  /** The port (nl_pid) the kernel assigned. */
  readonly port: number;

  constructor(options: OpenSocketOptions = {}) {
    const lib = c.libc();
    this.#fd = check(
      lib.socket(c.AF_NETLINK, c.SOCK_RAW | c.SOCK_CLOEXEC, c.NETLINK_ROUTE),
      "Cannot open netlink socket",
    );
    try {
      this.#wake = check(lib.eventfd(0, c.EFD_NONBLOCK | c.EFD_CLOEXEC), "Cannot create eventfd");
    } catch (err) {
      lib.close(this.#fd);
      throw err;
    }
    try {
      this.#option(c.SOL_NETLINK, c.NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
      this.#option(c.SOL_NETLINK, c.NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
      if (options.strictCheck) {
        this.#option(c.SOL_NETLINK, c.NETLINK_GET_STRICT_CHK, 1, "NETLINK_GET_STRICT_CHK");
      }
      this.#option(c.SOL_SOCKET, c.SO_SNDBUF, 1 << 20, "SO_SNDBUF");
      if (options.receiveBufferSize !== undefined) {
        const size = options.receiveBufferSize;
        // SO_RCVBUFFORCE passes rmem_max (needs CAP_NET_ADMIN); fall back to the capped one.
        if (Number(lib.setsockopt(this.#fd, c.SOL_SOCKET, c.SO_RCVBUFFORCE, int32(size), 4)) < 0) {
          this.#option(c.SOL_SOCKET, c.SO_RCVBUF, size, "SO_RCVBUF");
        }
      }
      const addr = sockaddrNl(options.groups ?? 0);
      check(lib.bind(this.#fd, addr, addr.length), "Cannot bind netlink socket");
      const len = int32(12);
      check(lib.getsockname(this.#fd, addr, len), "Cannot read netlink socket address");
      this.port = new DataView(addr.buffer).getUint32(4, true);
    } catch (err) {
      lib.close(this.#fd);
      lib.close(this.#wake);
      throw err;
    }
    this.#pollSet = new Pinned(16);
    const v = new DataView(this.#pollSet.bytes.buffer);
    v.setInt32(0, this.#fd, true);
    v.setInt16(4, c.POLLIN, true);
    v.setInt32(8, this.#wake, true);
    v.setInt16(12, c.POLLIN, true);
  }

  #option(level: number, name: number, value: number, label: string): void {
    check(
      c.libc().setsockopt(this.#fd, level, name, int32(value), 4),
      `Cannot set netlink socket option ${label}=${value}`,
    );
  }

  send(datagram: Uint8Array): void {
    if (this.#closed) throw new Error("Cannot send on a closed netlink socket");
    for (;;) {
      const n = Number(
        c.libc().sendto(
          this.#fd,
          datagram,
          BigInt(datagram.length),
          0,
          kernelAddress,
          kernelAddress.length,
        ),
      );
      if (n >= 0) return;
      const e = c.errno();
      if (e !== c.EINTR) throw errnoError("Cannot send netlink request", e);
    }
  }

  async receive(): Promise<Uint8Array | undefined> {
    const lib = c.libc();
    while (!this.#closed) {
      // Peek with MSG_TRUNC for the datagram's real size, grow the buffer if needed, then read.
      const size = Number(
        lib.recv(
          this.#fd,
          this.#buf,
          BigInt(this.#buf.length),
          c.MSG_PEEK | c.MSG_TRUNC |
            c.MSG_DONTWAIT,
        ),
      );
      if (size < 0) {
        const e = c.errno();
        if (e === c.EAGAIN) await this.#waitReadable();
        else if (e !== c.EINTR) throw errnoError("Cannot receive from netlink socket", e);
        continue;
      }
      if (size > this.#buf.length) this.#buf = new Uint8Array(Math.max(size, this.#buf.length * 2));
      const n = check(
        lib.recv(this.#fd, this.#buf, BigInt(this.#buf.length), c.MSG_DONTWAIT),
        "Cannot receive from netlink socket",
      );
      return this.#buf.slice(0, n);
    }
    return undefined;
  }

  async #waitReadable(): Promise<void> {
    this.#polling = true;
    try {
      await c.libc().poll(this.#pollSet.pointer(), 2n, -1);
    } finally {
      this.#polling = false;
      if (this.#closed) this.#release();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#polling) {
      // The poll thread still uses both fds: wake it; it releases them when it returns.
      const one = new Uint8Array(8);
      one[0] = 1;
      c.libc().write(this.#wake, one, 8n);
    } else {
      this.#release();
    }
  }

  #release(): void {
    if (this.#fd < 0) return;
    c.libc().close(this.#fd);
    c.libc().close(this.#wake);
    this.#fd = -1;
    this.#wake = -1;
    // No poll is in flight (close() waits for it), so the poll set can go.
    this.#pollSet.release();
  }
}
