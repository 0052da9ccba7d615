/**
 * The few libc calls a netlink socket needs, through Deno FFI. Only `poll` blocks, so only it is
 * `nonblocking` (run on a worker thread): everything else runs on the calling thread, where
 * `errno()` read right after a failed call is that call's errno.
 */

/** The symbols, exported for the test that checks which parameters must be pinned. */
export const symbols = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  // Runs on another thread while JavaScript goes on: its poll set must be pinned (../pinned.ts).
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let lib: Libc | undefined;

/** Opens libc on first use (so importing this module needs no FFI permission). */
export function libc(): Libc {
  if (!lib) {
    try {
      lib = Deno.dlopen("libc.so.6", symbols).symbols;
    } catch (cause) {
      throw new Error(
        `Cannot open libc.so.6 for netlink: run with --allow-ffi on a glibc Linux host`,
        { cause },
      );
    }
  }
  return lib;
}

/** The calling thread's errno (valid right after a failed synchronous call). */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0x80000;
export const NETLINK_ROUTE = 0;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const MSG_PEEK = 0x2;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;
export const EINTR = 4;
export const EAGAIN = 11;
