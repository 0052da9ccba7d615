/**
 * External interface lookup from procfs/sysfs and `Deno.networkInterfaces()` (no netlink needed):
 * interfaces with their addresses, MTU and index, and the default-route interface.
 * Equivalents: `ip -o addr show`, `cat /sys/class/net/NAME/mtu`, `ip route show default`.
 */

export interface HostInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  /** IPv4 addresses in kernel order. */
  readonly ipv4: string[];
  /** Global and link-local IPv6 addresses, global first. */
  readonly ipv6: string[];
}

async function readInt(path: string): Promise<number> {
  return Number((await Deno.readTextFile(path)).trim());
}

/** Every interface with at least one address, with index and MTU from sysfs. */
export async function hostInterfaces(): Promise<HostInterface[]> {
  const byName = new Map<string, { ipv4: string[]; ipv6: string[] }>();
  for (const a of Deno.networkInterfaces()) {
    const entry = byName.get(a.name) ?? { ipv4: [], ipv6: [] };
    if (a.family === "IPv4") entry.ipv4.push(a.address);
    else if (!a.address.startsWith("fe80")) entry.ipv6.unshift(a.address);
    else entry.ipv6.push(a.address);
    byName.set(a.name, entry);
  }
  const out: HostInterface[] = [];
  for (const [name, addrs] of byName) {
    try {
      const index = await readInt(`/sys/class/net/${name}/ifindex`);
      const mtu = await readInt(`/sys/class/net/${name}/mtu`);
      out.push({ name, index, mtu, ...addrs });
    } catch {
      // Interface vanished between the two reads, or an alias without sysfs entry.
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** Parses `/proc/net/route` text: the first default route's interface name, if any. */
export function defaultRouteInterface4(procNetRoute: string): string | undefined {
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[1] === "00000000" && f[7] === "00000000") return f[0];
  }
  return undefined;
}

/** Parses `/proc/net/ipv6_route` text: the first `::/0` route's interface name (not `lo`). */
export function defaultRouteInterface6(procNetIPv6Route: string): string | undefined {
  for (const line of procNetIPv6Route.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10 && /^0{32}$/.test(f[0]) && f[1] === "00" && f[9] !== "lo") return f[9];
  }
  return undefined;
}

/** Reads the default-route interface of the given family from procfs. */
export async function defaultRouteInterface(family: 4 | 6): Promise<string | undefined> {
  try {
    return family === 4
      ? defaultRouteInterface4(await Deno.readTextFile("/proc/net/route"))
      : defaultRouteInterface6(await Deno.readTextFile("/proc/net/ipv6_route"));
  } catch {
    return undefined;
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
