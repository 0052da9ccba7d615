/**
 * The host's interfaces as external-interface selection sees them, read over rtnetlink:
 * `ip -d link show`, `ip addr show` (with the IFA_F_* flags that rank addresses) and
 * `ip route show default`. Which addresses are candidates follows flannel's
 * `GetInterfaceIP4Addrs` / `GetInterfaceIP6Addrs` (pkg/ip/iface.go), plus skipping addresses
 * the kernel will not use as a source yet or ever (tentative, failed DAD).
 */
import ipaddr from "ipaddr.js";
import { type Address, type Family, IFA_F, type Netlink } from "./netlink/mod.ts";

/** One address of an interface: text without prefix length, and its IFA_F_* word. */
export interface HostAddress {
  readonly ip: string;
  readonly flags: number;
}

export interface HostInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  /** Every address of the interface in kernel order, usable or not (`--iface=IP` matches any). */
  readonly addresses: readonly HostAddress[];
  /** IPv4 candidates, best first ({@link candidateAddresses}). */
  readonly ipv4: readonly string[];
  /** IPv6 candidates, best first ({@link candidateAddresses}). */
  readonly ipv6: readonly string[];
}

type Kind = "global" | "link-local" | "loopback" | "other";

/** Go's `IsGlobalUnicast` / `IsLinkLocalUnicast` / `IsLoopback` on the address bytes. */
function kindOf(ip: string): Kind {
  const b = ipaddr.parse(ip).toByteArray();
  if (b.length === 4) {
    if (b[0] === 127) return "loopback";
    if (b[0] === 169 && b[1] === 254) return "link-local";
    if (b.every((x) => x === 0) || b[0] >= 224) return "other"; // unspecified, multicast, broadcast
    return "global";
  }
  if (b[0] === 0xff || b.every((x) => x === 0)) return "other";
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return "loopback";
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return "link-local";
  return "global";
}

/**
 * Why an address is not a candidate, or undefined when it is. flannel skips `deprecated`; we
 * also skip `dadfailed` and `tentative` (DAD still running: the kernel refuses it as a source),
 * except an optimistic address (RFC 4429), which the kernel does use during DAD. `explicit`
 * (the operator named the address): a deprecated address is still fine.
 */
export function unusableReason(a: HostAddress, explicit = false): string | undefined {
  if (kindOf(a.ip) === "other") return "not a unicast address";
  if (a.flags & IFA_F.DADFAILED) return "dadfailed (another host has it)";
  if (a.flags & IFA_F.TENTATIVE && !(a.flags & IFA_F.OPTIMISTIC)) {
    return "tentative (duplicate address detection has not finished: is the link up?)";
  }
  if (a.flags & IFA_F.DEPRECATED && !explicit) return "deprecated (preferred lifetime over)";
  return undefined;
}

const KIND_RANK: Record<Kind, number> = { global: 0, "link-local": 1, loopback: 2, other: 3 };

/**
 * The usable addresses of one family in flannel's order of preference (`compareAddrs`): global
 * before link-local, permanent (added by hand) before dynamic, non-temporary before temporary;
 * kernel order otherwise (a stable sort, where Go's `slices.SortFunc` is not). Loopback
 * addresses come last: flannel never uses them, we keep `--iface=lo` working for local tests.
 */
export function candidateAddresses(addrs: readonly HostAddress[], family: Family): string[] {
  const key = (a: HostAddress) => [
    KIND_RANK[kindOf(a.ip)],
    a.flags & IFA_F.PERMANENT ? 0 : 1,
    a.flags & IFA_F.TEMPORARY ? 1 : 0,
  ];
  return addrs
    .filter((a) => a.ip.includes(":") === (family === 6) && unusableReason(a) === undefined)
    .map((a) => ({ a, k: key(a) }))
    .sort((x, y) => x.k[0] - y.k[0] || x.k[1] - y.k[1] || x.k[2] - y.k[2])
    .map(({ a }) => a.ip);
}

function hostAddress(a: Address): HostAddress {
  const slash = a.address.indexOf("/");
  return { ip: slash < 0 ? a.address : a.address.slice(0, slash), flags: a.flags ?? 0 };
}

async function readInterfaces(netlink: Netlink): Promise<HostInterface[]> {
  const [links, addrs] = await Promise.all([netlink.links(), netlink.addresses()]);
  return links
    .sort((a, b) => a.index - b.index)
    .map((l) => {
      const addresses = addrs.filter((a) => a.index === l.index).map(hostAddress);
      return {
        name: l.name,
        index: l.index,
        mtu: l.mtu,
        addresses,
        ipv4: candidateAddresses(addresses, 4),
        ipv6: candidateAddresses(addresses, 6),
      };
    });
}

export interface HostInterfacesOptions {
  /**
   * Wait up to this long (default 0) while some global address is still in duplicate address
   * detection (tentative, not optimistic, not failed), re-reading every `pollMs` (250).
   * Link-local ones are not waited for: a global address is preferred anyway.
   */
  settleMs?: number;
  pollMs?: number;
  /** Called once, with `"ADDR on DEV"` texts, when waiting starts. */
  onWait?: (pending: string[]) => void;
}

/** Every link in index order, with its addresses and candidates (`ip addr show`). */
export async function hostInterfaces(
  netlink: Netlink,
  options: HostInterfacesOptions = {},
): Promise<HostInterface[]> {
  const deadline = Date.now() + (options.settleMs ?? 0);
  const waiting = IFA_F.TENTATIVE | IFA_F.DADFAILED | IFA_F.OPTIMISTIC;
  let told = false;
  for (;;) {
    const ifaces = await readInterfaces(netlink);
    const pending = ifaces.flatMap((i) =>
      i.addresses.filter((a) =>
        (a.flags & waiting) === IFA_F.TENTATIVE && kindOf(a.ip) === "global"
      )
        .map((a) => `${a.ip} on ${i.name}`)
    );
    if (pending.length === 0 || Date.now() >= deadline) return ifaces;
    if (!told) options.onWait?.(pending);
    told = true;
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
}

/**
 * The output interface index of the first main-table default route of `family` (flannel's
 * `GetDefaultGatewayInterface` / `GetDefaultV6GatewayInterface`), `0` when that route has no
 * single device (multipath), undefined when there is no default route.
 */
export async function defaultRouteIndex(
  netlink: Netlink,
  family: Family,
): Promise<number | undefined> {
  const dst = family === 4 ? "0.0.0.0/0" : "::/0";
  const route = (await netlink.routes({ family, table: 254, dst })).find((r) =>
    (r.type ?? "unicast") === "unicast"
  );
  return route ? route.index ?? 0 : undefined;
}

/**
 * `ip route get TARGET` for `--iface-can-reach` (flannel's `GetInterfaceBySpecificIPRouting`):
 * the output interface and preferred source address, IPv4 or IPv6; neither when unreachable.
 */
export async function routeToward(
  netlink: Netlink,
  target: string,
): Promise<{ target: string; index?: number; src?: string }> {
  try {
    const route = await netlink.routeGet(target);
    return {
      target,
      ...(route?.index !== undefined ? { index: route.index } : {}),
      ...(route?.src !== undefined ? { src: route.src } : {}),
    };
  } catch {
    return { target };
  }
}

/**
 * The interfaces with `net.ipv6.conf.<name>.disable_ipv6 = 1` (`all` included), or `{"kernel"}`
 * when the kernel has no IPv6 at all (no `/proc/sys/net/ipv6`).
 */
export async function ipv6DisabledInterfaces(procSys = "/proc/sys"): Promise<Set<string>> {
  const out = new Set<string>();
  const dir = `${procSys}/net/ipv6/conf`;
  try {
    for await (const entry of Deno.readDir(dir)) {
      try {
        if ((await Deno.readTextFile(`${dir}/${entry.name}/disable_ipv6`)).trim() === "1") {
          out.add(entry.name);
        }
      } catch {
        // The interface vanished meanwhile.
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) out.add("kernel");
    else throw err;
  }
  return out;
}
