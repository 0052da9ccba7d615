/**
 * A unix datagram receiver for tests (a stand-in for systemd's notify socket), built with libc
 * through FFI because `Deno.listenDatagram` needs --unstable-net.
 */
import assert from "node:assert/strict";
import { sockaddrUn } from "../util/sd_notify.ts";

// `Deno.listenDatagram({ transport: "unixpacket" })` needs --unstable-net, so the receiving
// side is built with libc through FFI too: a non-blocking datagram socket bound to the address.
export const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_UNIX = 1;
const SOCK_DGRAM_NONBLOCK_CLOEXEC = 2 | 0o4000 | 0o2000000;

export interface Receiver extends Disposable {
  /** The next queued datagram as text; throws when none is queued (never waits). */
  take(): string;
  /** Queues "filler" datagrams until the receive queue is full; returns how many. */
  fill(): number;
}

function errno(lib: Deno.DynamicLibrary<typeof SYMBOLS>): number {
  return new Deno.UnsafePointerView(lib.symbols.__errno_location()!).getInt32();
}

export function listenUnixgram(socket: string): Receiver {
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  const fd = lib.symbols.socket(AF_UNIX, SOCK_DGRAM_NONBLOCK_CLOEXEC, 0);
  if (fd < 0) {
    lib.close();
    throw new Error(`socket failed: errno ${errno(lib)}`);
  }
  const { addr, len } = sockaddrUn(socket);
  if (lib.symbols.bind(fd, addr, len) !== 0) {
    const e = errno(lib);
    lib.symbols.close(fd);
    lib.close();
    throw new Error(`bind "${socket}" failed: errno ${e}`);
  }
  return {
    take() {
      const buf = new Uint8Array(4096);
      const n = Number(lib.symbols.recv(fd, buf, BigInt(buf.length), 0));
      if (n < 0) throw new Error(`recv on "${socket}" failed: errno ${errno(lib)}`);
      return new TextDecoder().decode(buf.subarray(0, n));
    },
    fill() {
      const tx = lib.symbols.socket(AF_UNIX, SOCK_DGRAM_NONBLOCK_CLOEXEC, 0);
      const msg = new TextEncoder().encode("filler");
      let count = 0;
      try {
        while (lib.symbols.sendto(tx, msg, BigInt(msg.length), 0, addr, len) >= 0) {
          if (++count > 100_000) throw new Error("receive queue never filled");
        }
        assert.equal(errno(lib), 11, "queue full should report EAGAIN");
        return count;
      } finally {
        lib.symbols.close(tx);
      }
    },
    [Symbol.dispose]() {
      lib.symbols.close(fd);
      lib.close();
    },
  };
}
