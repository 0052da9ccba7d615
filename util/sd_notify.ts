/**
 * systemd readiness notification (flannel main.go (daemon.SdNotify)): one datagram to the unix socket named by
 * `$NOTIFY_SOCKET`, as `sd_notify(3)` sends it.
 *
 * Deno has no stable unix-datagram client, so this calls libc through FFI: `socket(AF_UNIX,
 * SOCK_DGRAM)`, `sendto` with a hand-built `sockaddr_un`, `close`. libc is opened per call and
 * closed again: notifications are rare and this leaves no resource behind. Needs `--allow-ffi`
 * (and `--allow-env` when the environment is not passed in). Linux only.
 */

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EAGAIN = 11;
/** `sizeof(struct sockaddr_un)`: a 2-byte family and a 108-byte path. */
const SOCKADDR_UN_SIZE = 110;
/** Retries when the receiver's queue is full (EAGAIN): about 1.3 s in all. */
const EAGAIN_DELAYS_MS = [5, 10, 20, 40, 80, 160, 320, 640];

/** The symbols, exported for the test that checks which parameters must be pinned. */
export const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

const encoder = new TextEncoder();
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Builds a `struct sockaddr_un` for a path, or for the abstract namespace when `socket` starts
 * with `@` (replaced by a NUL byte, no terminator: abstract names are length-delimited).
 * Returns the buffer and the address length to pass to `sendto`/`bind`.
 */
export function sockaddrUn(socket: string): { addr: Uint8Array<ArrayBuffer>; len: number } {
  const abstract = socket.startsWith("@");
  const name = encoder.encode(abstract ? socket.slice(1) : socket);
  // A path needs its NUL terminator; an abstract name needs its leading NUL.
  if (name.length === 0 || name.length + 1 > SOCKADDR_UN_SIZE - 2) {
    throw new RangeError(
      `Cannot address unix socket "${socket}": the name must be 1 to ${SOCKADDR_UN_SIZE - 3} bytes`,
    );
  }
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, littleEndian);
  addr.set(name, abstract ? 3 : 2);
  return { addr, len: 2 + 1 + name.length };
}

/** Reads `errno` right after a failed call, with its `strerror` text. */
function lastError(libc: Libc): { errno: number; message: string } {
  const errno = new Deno.UnsafePointerView(libc.__errno_location()!).getInt32();
  const text = libc.strerror(errno);
  return { errno, message: text ? Deno.UnsafePointerView.getCString(text) : `errno ${errno}` };
}

/** Opens libc with the symbols this module uses; the caller closes it. */
function openLibc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> {
  return Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
}

async function send(libc: Libc, socket: string, state: string): Promise<void> {
  const { addr, len } = sockaddrUn(socket);
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed: ${lastError(libc).message}`);
  try {
    const payload = encoder.encode(state);
    for (let attempt = 0;; attempt++) {
      const n = Number(libc.sendto(fd, payload, BigInt(payload.length), MSG_NOSIGNAL, addr, len));
      if (n === payload.length) return;
      if (n >= 0) throw new Error(`sendto sent ${n} of ${payload.length} bytes`);
      const { errno, message } = lastError(libc);
      if (errno === EINTR) continue;
      if (errno === EAGAIN && attempt < EAGAIN_DELAYS_MS.length) {
        await new Promise((resolve) => setTimeout(resolve, EAGAIN_DELAYS_MS[attempt]));
        continue;
      }
      throw new Error(`sendto failed: ${message}`);
    }
  } finally {
    libc.close(fd);
  }
}

/**
 * Sends `state` (e.g. `READY=1`) to the systemd notification socket named by `NOTIFY_SOCKET`
 * (a path, or an abstract name when it starts with `@`). Returns false without doing anything
 * when the variable is unset or empty, true once the datagram was sent. Throws, naming the
 * socket, when sending fails. `env` defaults to the process environment.
 */
export async function sdNotify(
  state: string,
  env: { NOTIFY_SOCKET?: string } = { NOTIFY_SOCKET: Deno.env.get("NOTIFY_SOCKET") },
): Promise<boolean> {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === "") return false;
  let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;
  try {
    lib = openLibc();
    await send(lib.symbols, socket, state);
    return true;
  } catch (err) {
    throw new Error(`Cannot notify systemd at NOTIFY_SOCKET "${socket}" with "${state}"`, {
      cause: err,
    });
  } finally {
    lib?.close();
  }
}
