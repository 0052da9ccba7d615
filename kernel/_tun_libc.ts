/**
 * The libc calls behind TUN devices and the udp backend's data path, through Deno FFI. Every
 * call is synchronous: the data path runs them on dedicated worker threads, where blocking in
 * `poll` costs nothing, and `errno()` read right after a failed call on the same thread is that
 * call's errno. Buffers used only during a call are passed as typed arrays (V8 fast calls, no
 * per-call allocation); memory the kernel reaches through stored addresses (the mmsghdr vectors)
 * or that a call may use after it returns is a `"pointer"` into pinned memory (./pinned.ts).
 */

/** The symbols, exported for the test that checks which parameters must be pinned. */
export const symbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "u64"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "u64", "i32", "buffer", "u32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "pointer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

export type TunLibc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let lib: TunLibc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Opens libc on first use in this thread (each worker opens its own handle). */
export function tunLibc(): TunLibc {
  if (!lib) {
    try {
      lib = Deno.dlopen("libc.so.6", symbols).symbols;
    } catch (cause) {
      throw new Error(
        "Cannot open libc.so.6 for the TUN device: run with --allow-ffi on a glibc Linux host",
        { cause },
      );
    }
  }
  return lib;
}

/** This thread's errno (valid right after a failed call). */
export function errno(): number {
  // __errno_location is constant per thread, so its view is cached.
  if (!errnoView) {
    const p = tunLibc().__errno_location();
    if (!p) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32();
}

export const O_RDWR = 0x2;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;
export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFNAMSIZ = 16;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const EFD_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;
export const EINTR = 4;
export const EAGAIN = 11;
