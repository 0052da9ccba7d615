/**
 * External interface selection (flannel main.go and pkg/ipmatch/match.go `LookupExtIface`), as
 * a pure function over the host's interfaces, per address family of the network config:
 * `--iface` (name or IP, first match wins), then `--iface-regex` (IPs, then names), then
 * `--iface-can-reach`; with none of them, the interface holding `--public-ip` (or, dual stack,
 * `--public-ipv6`), else the default-route interface. A selector that finds an interface
 * without a usable address of a needed family is a miss, and the next one is tried.
 */
import { type HostInterface, unusableReason } from "../kernel/iface.ts";
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
  /**
   * Output interface indexes of the main-table default routes by family (`0`: a route without
   * a single device); absent when there is none.
   */
  defaultRoute?: { readonly 4?: number; readonly 6?: number };
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

/** No interface matched what the operator asked for. */
export class InterfaceNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterfaceNotFoundError";
  }
}

const NO_IPV6_FIX = 'or set "EnableIPv6": false in the network config';

/** Throws naming the setting and the fix when IPv6 is off for interface `name`. */
function checkIPv6Enabled(name: string, disabled: ReadonlySet<string> | undefined): void {
  if (!disabled) return;
  if (disabled.has("kernel")) {
    throw new IPv6DisabledError(
      "EnableIPv6 is set but this kernel has IPv6 disabled (/proc/sys/net/ipv6 is missing: " +
        `booted with ipv6.disable=1?): remove ipv6.disable=1 from the kernel command line, ${NO_IPV6_FIX}`,
    );
  }
  for (const dev of ["all", name]) {
    if (!disabled.has(dev)) continue;
    throw new IPv6DisabledError(
      `EnableIPv6 is set but IPv6 is disabled on this host (net.ipv6.conf.${dev}.disable_ipv6=1): ` +
        `run sysctl -w net.ipv6.conf.${dev}.disable_ipv6=0 (and give ${name} an IPv6 address), ${NO_IPV6_FIX}`,
    );
  }
}

/** A selector's find: the interface, and the address of a family when the selector fixed it. */
interface Found {
  iface: HostInterface;
  v4?: string;
  v6?: string;
}

type Family = 4 | 6;

function familyOf(ip: string): Family {
  return ip.includes(":") ? 6 : 4;
}

/** The IP in canonical text, or undefined when `text` is not an IP address. */
function canonicalIP(text: string): string | undefined {
  try {
    return formatIP4(parseIP4(text));
  } catch {
    try {
      return formatIP6(parseIP6(text));
    } catch {
      return undefined;
    }
  }
}

/** `eth0:[10.0.0.5 fd00::5 fd00::6(tentative)]`: candidates first, then the unusable ones. */
function describeInterfaces(ifaces: readonly HostInterface[]): string {
  return ifaces.map((i) => {
    const unusable = i.addresses.filter((a) => unusableReason(a))
      .map((a) => `${a.ip}(${unusableReason(a)?.split(" ")[0]})`);
    return `${i.name}:[${[...i.ipv4, ...i.ipv6, ...unusable].join(" ")}]`;
  }).join(", ");
}

function miss(message: string): never {
  throw new InterfaceNotFoundError(message);
}

/**
 * The interface holding exactly `ip` (any flags, as flannel's `GetInterfaceByIP`); when several
 * do, the first where it is usable (not, say, a copy that failed DAD).
 */
function holder(ip: string, ifaces: readonly HostInterface[]): HostInterface | undefined {
  const holders = ifaces.filter((i) => i.addresses.some((a) => a.ip === ip));
  return holders.find((i) => !unusableReason(i.addresses.find((a) => a.ip === ip)!, true)) ??
    holders[0];
}

/** `ip` on an interface, refusing an address the kernel cannot use as a source. */
function ownedAddress(ip: string, what: string, ifaces: readonly HostInterface[]): HostInterface {
  const iface = holder(ip, ifaces) ??
    miss(`no local interface has the address ${ip} given by ${what}`);
  const reason = unusableReason(iface.addresses.find((a) => a.ip === ip)!, true);
  if (reason) {
    miss(`the address ${ip} given by ${what} on ${iface.name} is ${reason}`);
  }
  return iface;
}

/**
 * `--iface=VALUE` (or `--public-ip` with no selector). An IP selects the interface holding it;
 * in dual stack `--public-ipv6` must then be on the same interface and is its IPv6 address.
 */
function byIface(
  value: string,
  what: string,
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
): Found {
  const ip = canonicalIP(value);
  if (ip === undefined) {
    const iface = ifaces.find((i) => i.name === value) ?? miss(`no interface named ${value}`);
    return { iface };
  }
  const family = familyOf(ip);
  const wanted = family === 4 ? opts.ipv4 : opts.ipv6;
  if (!wanted) {
    miss(
      `${ip} given by ${what} is an IPv${family} address but the network config has ` +
        `EnableIPv${family} off: give an IPv${family === 4 ? 6 : 4} address or an interface name`,
    );
  }
  const iface = ownedAddress(ip, what, ifaces);
  const found: Found = family === 4 ? { iface, v4: ip } : { iface, v6: ip };
  if (opts.ipv4 && opts.ipv6 && opts.publicIPv6 !== "") {
    const v6 = canonicalIP(opts.publicIPv6) ?? opts.publicIPv6;
    const v6Iface = ownedAddress(v6, "--public-ipv6", ifaces);
    if (v6Iface.name !== iface.name) {
      miss(
        `v6 interface ${v6Iface.name} must be the same with v4 interface ${iface.name}: ` +
          `--public-ipv6 ${v6} is not on the interface chosen by ${what}`,
      );
    }
    if (family === 4) found.v6 = v6;
  }
  return found;
}

function compileRegex(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new SyntaxError(`Invalid --iface-regex "${pattern}": ${(err as Error).message}`);
  }
}

/** `--iface-regex`: the first interface with a matching candidate of each family, else by name. */
function byRegex(pattern: string, ifaces: readonly HostInterface[], opts: SelectionOptions): Found {
  const re = compileRegex(pattern);
  for (const iface of ifaces) {
    const v4 = opts.ipv4 ? iface.ipv4.find((a) => re.test(a)) : undefined;
    const v6 = opts.ipv6 ? iface.ipv6.find((a) => re.test(a)) : undefined;
    if ((opts.ipv4 && v4 === undefined) || (opts.ipv6 && v6 === undefined)) continue;
    return { iface, ...(v4 !== undefined ? { v4 } : {}), ...(v6 !== undefined ? { v6 } : {}) };
  }
  const iface = ifaces.find((i) => re.test(i.name)) ??
    miss(`could not match pattern ${pattern} to any of the available network interfaces`);
  return { iface };
}

/** `--iface-can-reach`: the route's interface; its source address for the target's family. */
function byCanReach(
  canReach: NonNullable<SelectionOptions["canReach"]>,
  ifaces: readonly HostInterface[],
): Found {
  const { target, index, src } = canReach;
  const iface = ifaces.find((i) => i.index === index) ??
    miss(`no route to ${target} through a local interface (ip route get ${target})`);
  if (src === undefined || !iface.addresses.some((a) => a.ip === src)) return { iface };
  return familyOf(src) === 4 ? { iface, v4: src } : { iface, v6: src };
}

/** No selector: the default route's interface of each family; dual stack needs them equal. */
function byDefaultRoute(ifaces: readonly HostInterface[], opts: SelectionOptions): Found {
  const pick = (family: Family): HostInterface => {
    const index = opts.defaultRoute?.[family];
    const v = family === 4 ? "" : " v6";
    if (index === undefined) {
      miss(
        `failed to get default${v} interface: no default${v} route; use --iface, --iface-regex ` +
          "or --iface-can-reach to choose the interface",
      );
    }
    return ifaces.find((i) => i.index === index) ??
      miss(`found default${v} route but could not determine interface; use --iface`);
  };
  const iface = pick(opts.ipv4 ? 4 : 6);
  if (opts.ipv4 && opts.ipv6) {
    const v6Iface = pick(6);
    if (v6Iface.name !== iface.name) {
      miss(
        `v6 default route interface ${v6Iface.name} must be the same with v4 default route ` +
          `interface ${iface.name}: use --iface to choose the interface`,
      );
    }
  }
  return { iface };
}

/** Why `iface` has no candidate of `family`, with the fixes. */
function noAddress(iface: HostInterface, family: Family): string {
  const unusable = iface.addresses
    .filter((a) => familyOf(a.ip) === family && unusableReason(a))
    .map((a) => `${a.ip} is ${unusableReason(a)}`);
  const detail = unusable.length ? ` (${unusable.join("; ")})` : "";
  const fix = family === 6
    ? `add one (ip -6 addr add ADDR/LEN dev ${iface.name}), choose another interface with ` +
      `--iface, ${NO_IPV6_FIX}`
    : `add one (ip addr add ADDR/LEN dev ${iface.name}) or choose another interface with --iface`;
  return `interface ${iface.name} has no usable IPv${family} address${detail}: ${fix}`;
}

/** Fills in the first candidate of each needed family the selector left open. */
function complete(found: Found, opts: SelectionOptions): Found {
  const { iface } = found;
  if (opts.ipv6) checkIPv6Enabled(iface.name, opts.ipv6Disabled);
  const v4 = found.v4 ?? iface.ipv4[0];
  const v6 = found.v6 ?? iface.ipv6[0];
  if (opts.ipv4 && v4 === undefined) miss(noAddress(iface, 4));
  if (opts.ipv6 && v6 === undefined) miss(noAddress(iface, 6));
  if (iface.mtu === 0) miss(`failed to determine MTU for ${iface.name} interface (MTU is 0)`);
  return { iface, ...(v4 !== undefined ? { v4 } : {}), ...(v6 !== undefined ? { v6 } : {}) };
}

/** Runs one selector; a miss is logged as flannel does and returned as its reason. */
function attempt(
  label: string,
  run: () => Found,
  opts: SelectionOptions,
  log: Logger,
): Found | string {
  try {
    return complete(run(), opts);
  } catch (err) {
    if (!(err instanceof InterfaceNotFoundError)) throw err;
    // flannel's wording, with the bare value: `... matching eth0: ...`.
    const value = label.slice(label.indexOf("=") + 1);
    log.warn(`Could not find valid interface matching ${value}: ${err.message}`);
    return `${label}: ${err.message}`;
  }
}

function choose(
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
  log: Logger,
): Found {
  if (opts.iface.length === 0 && opts.ifaceRegex.length === 0 && !opts.canReach) {
    if (opts.publicIP) return complete(byIface(opts.publicIP, "--public-ip", ifaces, opts), opts);
    // flannel then tries --public-ipv6 even in an IPv4-only network, where it must fail; there
    // it is not advertised, so we fall through to the default route instead.
    if (opts.publicIPv6 && opts.ipv6) {
      return complete(byIface(opts.publicIPv6, "--public-ipv6", ifaces, opts), opts);
    }
    log.info("Determining IP address of default interface");
    return complete(byDefaultRoute(ifaces, opts), opts);
  }
  const reasons: string[] = [];
  const tries: Array<[string, () => Found]> = [
    ...opts.iface.map((v): [string, () => Found] => [
      `--iface=${v}`,
      () => byIface(v, `--iface=${v}`, ifaces, opts),
    ]),
    ...opts.ifaceRegex.map((p): [string, () => Found] => {
      compileRegex(p); // a bad pattern is an error, not a miss
      return [`--iface-regex=${p}`, () => byRegex(p, ifaces, opts)];
    }),
  ];
  const canReach = opts.canReach;
  if (canReach) {
    tries.push([`--iface-can-reach=${canReach.target}`, () => byCanReach(canReach, ifaces)]);
  }
  for (const [label, run] of tries) {
    const got = attempt(label, run, opts, log);
    if (typeof got !== "string") return got;
    reasons.push(got);
  }
  miss(
    "Failed to find interface to use that matches the interfaces and/or regexes provided: " +
      reasons.join("; "),
  );
}

/**
 * Chooses the external interface and its addresses; throws `InterfaceNotFoundError` naming the
 * flag, the reason and the interfaces it saw, or `IPv6DisabledError`.
 */
export function selectExternalInterface(
  ifaces: readonly HostInterface[],
  opts: SelectionOptions,
  log: Logger,
): ExternalInterface {
  let found: Found;
  try {
    found = choose(ifaces, opts, log);
  } catch (err) {
    if (err instanceof InterfaceNotFoundError) {
      throw new InterfaceNotFoundError(
        `${err.message} (interfaces: ${describeInterfaces(ifaces)})`,
      );
    }
    throw err;
  }
  const { iface, v4, v6 } = found;
  if (opts.ipv4 && v4 !== undefined) {
    log.info(`Using interface with name ${iface.name} and address ${v4}`);
  }
  if (opts.ipv6 && v6 !== undefined) {
    log.info(`Using interface with name ${iface.name} and v6 address ${v6}`);
  }
  const ifaceAddr = v4 !== undefined ? parseIP4(v4) : undefined;
  const ifaceV6Addr = v6 !== undefined ? parseIP6(v6) : undefined;
  let extAddr = ifaceAddr;
  if (opts.publicIP) {
    extAddr = parseIP4(opts.publicIP);
    log.info(`Using ${opts.publicIP} as external address`);
  } else if (opts.ipv4 && ifaceAddr !== undefined) {
    log.info(`Defaulting external address to interface address (${v4})`);
  }
  let extV6Addr = ifaceV6Addr;
  if (opts.publicIPv6) {
    extV6Addr = parseIP6(opts.publicIPv6);
    if (opts.ipv6) log.info(`Using ${opts.publicIPv6} as external address`);
  } else if (opts.ipv6 && ifaceV6Addr !== undefined) {
    log.info(`Defaulting external v6 address to interface address (${v6})`);
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
