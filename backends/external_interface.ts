/**
 * External interface selection (flannel pkg/ipmatch/match.go), as a pure function over the host's interfaces:
 * `--iface` (name or IP, first match wins), then `--iface-regex` (IPs, then names), then the
 * default-route interface; `--public-ip` overrides the advertised address.
 */
import type { HostInterface } from "../kernel/iface.ts";
import { formatIP4, formatIP6, parseIP4, parseIP6 } from "../subnet/ip.ts";
import type { Logger } from "../util/log.ts";
import type { ExternalInterface } from "./mod.ts";

export interface SelectionOptions {
  iface: readonly string[];
  ifaceRegex: readonly string[];
  /** `--public-ip` (may be empty). */
  publicIP: string;
  publicIPv6: string;
  /** `--iface-can-reach`, resolved by `ip route get`: the output interface and source address. */
  canReach?: { target: string; index?: number; src?: string };
  /** Name of the interface holding the default route, if any. */
  defaultInterface?: string;
  ipv4: boolean;
  ipv6: boolean;
  /**
   * With `ipv6`: the interface names whose `disable_ipv6` is 1 (`all` for
   * `net.ipv6.conf.all`), or `kernel` when the kernel has no IPv6 (`ipv6.disable=1`).
   */
  ipv6Disabled?: ReadonlySet<string>;
}

/** IPv6 is enabled in the config but off on the host or the interface. */
export class IPv6DisabledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IPv6DisabledError";
  }
}

/** Throws naming the setting and the fix when IPv6 is off for interface `name`. */
function checkIPv6Enabled(name: string, disabled: ReadonlySet<string> | undefined): void {
  if (!disabled) return;
  const fix = 'or set "EnableIPv6": false in the network config';
  if (disabled.has("kernel")) {
    throw new IPv6DisabledError(
      "EnableIPv6 is set but this kernel has IPv6 disabled (/proc/sys/net/ipv6 is missing: " +
        `booted with ipv6.disable=1?): remove ipv6.disable=1 from the kernel command line, ${fix}`,
    );
  }
  for (const dev of ["all", name]) {
    if (!disabled.has(dev)) continue;
    throw new IPv6DisabledError(
      `EnableIPv6 is set but IPv6 is disabled on this host (net.ipv6.conf.${dev}.disable_ipv6=1): ` +
        `run sysctl -w net.ipv6.conf.${dev}.disable_ipv6=0 (and give ${name} an IPv6 address), ${fix}`,
    );
  }
}

/** No interface matched what the operator asked for. */
export class InterfaceNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterfaceNotFoundError";
  }
}

function describeInterfaces(ifaces: readonly HostInterface[]): string {
  return ifaces.map((i) => `${i.name}:[${[...i.ipv4, ...i.ipv6].join(" ")}]`).join(", ");
}

function isIP(text: string): boolean {
  try {
    parseIP4(text);
    return true;
  } catch {
    try {
      parseIP6(text);
      return true;
    } catch {
      return false;
    }
  }
}

function withAddress(
  i: HostInterface,
  opts: SelectionOptions,
): [HostInterface, string | undefined] {
  return [i, opts.ipv4 ? i.ipv4[0] : i.ipv6[0]];
}

function byIface(
  value: string,
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
): [HostInterface, string | undefined] | undefined {
  if (isIP(value)) {
    const i = ifaces.find((i) => i.ipv4.includes(value) || i.ipv6.includes(value));
    return i ? [i, value] : undefined;
  }
  const i = ifaces.find((i) => i.name === value);
  return i ? withAddress(i, opts) : undefined;
}

function byRegex(
  pattern: string,
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
): [HostInterface, string | undefined] | undefined {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new SyntaxError(`Invalid --iface-regex "${pattern}": ${(err as Error).message}`);
  }
  for (const i of ifaces) {
    const ip = (opts.ipv4 ? i.ipv4 : i.ipv6).find((a) => re.test(a));
    if (ip) return [i, ip];
  }
  const i = ifaces.find((i) => re.test(i.name));
  return i ? withAddress(i, opts) : undefined;
}

/** Chooses the external interface; throws `InterfaceNotFoundError` listing what exists. */
export function selectExternalInterface(
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
  log: Logger,
): ExternalInterface {
  let found: [HostInterface, string | undefined] | undefined;
  if (opts.iface.length === 0 && opts.ifaceRegex.length === 0 && !opts.canReach) {
    const ip = opts.publicIP || (opts.ipv4 ? "" : opts.publicIPv6);
    if (ip) {
      found = byIface(ip, ifaces, opts);
      if (!found) {
        throw new InterfaceNotFoundError(
          `no local interface has the address ${ip} given by --public-ip; ` +
            `add --iface=<name> to choose the interface explicitly (interfaces: ${
              describeInterfaces(ifaces)
            })`,
        );
      }
    } else {
      log.info("Determining IP address of default interface");
      const i = ifaces.find((i) => i.name === opts.defaultInterface);
      if (!i) {
        throw new InterfaceNotFoundError(
          `failed to get default interface: no default route; use --iface or --iface-regex ` +
            `(interfaces: ${describeInterfaces(ifaces)})`,
        );
      }
      found = withAddress(i, opts);
    }
  } else {
    for (const value of opts.iface) {
      found = byIface(value, ifaces, opts);
      if (found) break;
      log.warn(`Could not find valid interface matching ${value}`);
    }
    for (const pattern of found ? [] : opts.ifaceRegex) {
      found = byRegex(pattern, ifaces, opts);
      if (found) break;
      log.warn(`Could not find valid interface matching ${pattern}`);
    }
    if (!found && opts.canReach) {
      const { target, index, src } = opts.canReach;
      const i = ifaces.find((i) => i.index === index);
      if (i) {
        found = src && (i.ipv4.includes(src) || i.ipv6.includes(src))
          ? [i, src]
          : withAddress(i, opts);
      } else log.warn(`Could not find valid interface matching ${target}`);
    }
    if (!found) {
      throw new InterfaceNotFoundError(
        `Failed to find interface to use that matches the interfaces and/or regexes provided ` +
          `(--iface ${JSON.stringify(opts.iface)}, --iface-regex ${
            JSON.stringify(opts.ifaceRegex)
          }${opts.canReach ? `, --iface-can-reach ${opts.canReach.target}` : ""}); interfaces: ${
            describeInterfaces(ifaces)
          }`,
      );
    }
  }
  const [iface, address] = found;
  if (opts.ipv6) checkIPv6Enabled(iface.name, opts.ipv6Disabled);
  if (!address) {
    throw new InterfaceNotFoundError(
      `interface ${iface.name} has no ${
        opts.ipv4 ? "IPv4" : "IPv6"
      } address; choose another with --iface`,
    );
  }
  if (iface.mtu === 0) throw new InterfaceNotFoundError(`interface ${iface.name} has MTU 0`);
  log.info(`Using interface with name ${iface.name} and address ${address}`);
  const ifaceAddr = iface.ipv4[0] !== undefined
    ? parseIP4(opts.ipv4 && iface.ipv4.includes(address) ? address : iface.ipv4[0])
    : undefined;
  const ifaceV6Addr = iface.ipv6[0] !== undefined ? parseIP6(iface.ipv6[0]) : undefined;
  let extAddr = ifaceAddr;
  if (opts.publicIP) {
    extAddr = parseIP4(opts.publicIP);
    log.info(`Using ${opts.publicIP} as external address`);
  } else if (ifaceAddr !== undefined) {
    log.info(`Defaulting external address to interface address (${formatIP4(ifaceAddr)})`);
  }
  const extV6Addr = opts.publicIPv6 ? parseIP6(opts.publicIPv6) : ifaceV6Addr;
  if (opts.ipv6 && extV6Addr === undefined) {
    throw new InterfaceNotFoundError(
      `EnableIPv6 is set but interface ${iface.name} has no IPv6 address: add one (ip -6 addr ` +
        `add ... dev ${iface.name}), set --public-ipv6, choose another --iface, or set ` +
        '"EnableIPv6": false in the network config',
    );
  }
  if (opts.ipv6 && opts.publicIPv6 === "" && ifaceV6Addr !== undefined) {
    log.info(`Using IPv6 address ${formatIP6(ifaceV6Addr)} of ${iface.name}`);
  }
  return {
    name: iface.name,
    index: iface.index,
    mtu: iface.mtu,
    ifaceAddr,
    ifaceV6Addr,
    extAddr: opts.ipv4 ? extAddr : undefined,
    extV6Addr: opts.ipv6 ? extV6Addr : undefined,
  };
}
