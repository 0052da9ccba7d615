/**
 * TUN devices and the UDP sockets beside them, through libc over Deno FFI (needs
 * `--allow-ffi`; creating a device needs CAP_NET_ADMIN):
 *
 * - {@link openTun}: `/dev/net/tun` + `ioctl(TUNSETIFF)` with `IFF_TUN | IFF_NO_PI`; the kernel
 *   fills in a `%d` in the name (`flannel%d` → `flannel0`). The device is not persistent: it
 *   disappears, with its addresses and routes, when the file descriptor is closed.
 * - {@link openUdpSocket}: an IPv4 UDP socket bound to an address and port.
 * - {@link EventFd}: a wake-up descriptor for threads blocked in `poll`.
 * - {@link tunLibc}: the raw calls (read/write/recvmmsg/sendmmsg/poll) for data-path workers.
 *
 * This folder is a leaf: it imports nothing from `subnet/` or `backends/`.
 */
import { errnoName, errnoText } from "./netlink/errors.ts";
import {
  AF_INET,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  errno,
  IFF_NO_PI,
  IFF_TUN,
  IFNAMSIZ,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
  tunLibc,
  TUNSETIFF,
} from "./_tun_libc.ts";

export * from "./_tun_libc.ts";

const extraErrnos: Record<number, string> = {
  98: "EADDRINUSE (Address already in use)",
  24: "EMFILE (Too many open files)",
};

/** `"EPERM (Operation not permitted)"` for a positive errno. */
export function describeErrno(e: number): string {
  return extraErrnos[e] ?? `${errnoName(e)} (${errnoText(e)})`;
}

function fail(action: string): never {
  const e = errno();
  throw new Error(`${action}: ${describeErrno(e)}`);
}

/** An open TUN device. Closing the descriptor removes the (non-persistent) device. */
export interface TunDevice {
  readonly fd: number;
  /** The name the kernel gave it (`flannel0`). */
  readonly name: string;
  close(): void;
}

export interface OpenTunOptions {
  /** Non-blocking reads and writes (default true). */
  readonly nonblocking?: boolean;
}

/**
 * Creates a TUN device (`ip tuntap add mode tun`, without packet information): `template` may
 * contain `%d`, which the kernel replaces with the first free number.
 */
export function openTun(template: string, options: OpenTunOptions = {}): TunDevice {
  const nameBytes = new TextEncoder().encode(template);
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ) {
    throw new RangeError(
      `Cannot create TUN device "${template}": the name must have 1 to ${IFNAMSIZ - 1} bytes`,
    );
  }
  const libc = tunLibc();
  const flags = O_RDWR | O_CLOEXEC | ((options.nonblocking ?? true) ? O_NONBLOCK : 0);
  const fd = libc.open(new TextEncoder().encode("/dev/net/tun\0"), flags, 0);
  if (fd < 0) fail(`Cannot create TUN device "${template}": open /dev/net/tun failed`);
  // struct ifreq: char ifr_name[16]; short ifr_flags; (padded to 40 bytes)
  const ifreq = new Uint8Array(40);
  ifreq.set(nameBytes);
  new DataView(ifreq.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, true);
  if (libc.ioctl(fd, BigInt(TUNSETIFF), ifreq) < 0) {
    const e = errno();
    libc.close(fd);
    throw new Error(
      `Cannot create TUN device "${template}": TUNSETIFF failed: ${describeErrno(e)}`,
    );
  }
  const end = ifreq.indexOf(0);
  const name = new TextDecoder().decode(ifreq.subarray(0, end < 0 ? IFNAMSIZ : end));
  let open = true;
  return {
    fd,
    name,
    close() {
      if (open) libc.close(fd);
      open = false;
    },
  };
}

/** `struct sockaddr_in` for `ip` (IPv4 as a 32-bit number) and `port`. */
export function sockaddrIn(ip: number, port: number): Uint8Array {
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port);
  dv.setUint32(4, ip >>> 0);
  return sa;
}

export interface UdpSocketOptions {
  /** Socket buffer sizes in bytes (SO_RCVBUF/SO_SNDBUF, forced when privileged); default 4 MiB. */
  readonly bufferSize?: number;
}

/** An open UDP socket (blocking; receive with MSG_DONTWAIT to poll). */
export interface UdpSocket {
  readonly fd: number;
  close(): void;
}

function formatIP(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Opens an IPv4 UDP socket bound to `ip:port` (`ip` as a 32-bit number). */
export function openUdpSocket(ip: number, port: number, options: UdpSocketOptions = {}): UdpSocket {
  const libc = tunLibc();
  const where = `${formatIP(ip)}:${port}`;
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(`Cannot open a UDP socket for ${where}`);
  const size = new Int32Array([options.bufferSize ?? 4 << 20]);
  const sizeBytes = new Uint8Array(size.buffer);
  for (const [forced, plain] of [[SO_RCVBUFFORCE, SO_RCVBUF], [SO_SNDBUFFORCE, SO_SNDBUF]]) {
    // Forcing needs CAP_NET_ADMIN; the plain option is capped at net.core.*mem_max.
    if (libc.setsockopt(fd, SOL_SOCKET, forced, sizeBytes, 4) < 0) {
      libc.setsockopt(fd, SOL_SOCKET, plain, sizeBytes, 4);
    }
  }
  if (libc.bind(fd, sockaddrIn(ip, port), 16) < 0) {
    const e = errno();
    libc.close(fd);
    throw new Error(`Cannot bind the UDP socket to ${where}: ${describeErrno(e)}`);
  }
  let open = true;
  return {
    fd,
    close() {
      if (open) libc.close(fd);
      open = false;
    },
  };
}

/** An eventfd: `signal()` makes it readable for good, waking every `poll` that watches it. */
export class EventFd {
  readonly fd: number;
  #open = true;

  constructor() {
    const fd = tunLibc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) fail("Cannot create an eventfd");
    this.fd = fd;
  }

  signal(): void {
    if (!this.#open) return;
    const one = new BigUint64Array([1n]);
    tunLibc().write(this.fd, new Uint8Array(one.buffer), 8n);
  }

  close(): void {
    if (this.#open) tunLibc().close(this.fd);
    this.#open = false;
  }
}

/**
 * Sets `net/ipv4/conf/<name>/<key>` (or another `/proc/sys/net` path under `family`) to `value`,
 * as `sysctl -w` does. Throws naming the file on failure.
 */
export function setInterfaceSysctl(
  family: "ipv4" | "ipv6",
  name: string,
  key: string,
  value: string,
): void {
  const path = `/proc/sys/net/${family}/conf/${name}/${key}`;
  try {
    Deno.writeTextFileSync(path, value);
  } catch (cause) {
    throw new Error(`Cannot set ${path} to ${value}`, { cause });
  }
}
