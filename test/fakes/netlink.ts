/**
 * An in-memory {@link Netlink} that behaves like the kernel where backends can tell; the contract
 * in `test/netlink_contract.ts` runs against both, so keep them in step there. Links with
 * indexes, routes keyed like the kernel (family + table + dst/prefix + metric) with replace
 * semantics, EEXIST on adding an existing route or address, ENOENT/ESRCH on deleting a missing
 * one, neighbour and FDB tables, and change notifications to subscribers.
 *
 * Kernel habits it copies: a gateway route needs its gateway inside a subnet of the output
 * link's addresses unless `onlink` (ENETUNREACH "Nexthop has invalid gateway"), and a route's
 * link must be up (ENETDOWN); setting a link down or deleting it flushes its routes, notifying
 * only IPv6 route deletions (IPv4 flushes are silent, so watch link events too). An FDB entry is
 * a MAC with a list of remotes: a unicast MAC has one (replace rewrites it, append leaves it),
 * the all-zero and multicast MACs any number (append adds one, replace is EOPNOTSUPP); a delete
 * with `dst` removes that remote only. A replace that changes nothing notifies nothing. It adds
 * no prefix or local routes for addresses. `routeGet` answers from the main table by longest
 * prefix.
 *
 * Test hooks: `seedLink()` for host interfaces, `failNext()` to make calls fail, `external` to
 * change state "behind the agent's back" (notifies, is not recorded, ignores injected failures),
 * `appendFdb()` (`bridge fdb append`, also external), `emitResync()`, `eventQueueLimit` to
 * emulate ENOBUFS, and `calls` recording every call.
 */
import ipaddr from "ipaddr.js";
import { errnoError } from "../../kernel/netlink/errors.ts";
import { IFA_F } from "../../kernel/netlink/types.ts";
import type {
  Address,
  EventGroup,
  Family,
  Fdb,
  KernelEvent,
  Link,
  LinkChange,
  LinkSpec,
  Neigh,
  Netlink,
  Route,
  RouteFilter,
  SubscribeOptions,
} from "../../kernel/netlink/types.ts";

const EPERM = 1, ENOENT = 2, ESRCH = 3, EEXIST = 17, ENODEV = 19, EINVAL = 22;
const ENETDOWN = 100, ENETUNREACH = 101, EADDRNOTAVAIL = 99, EOPNOTSUPP = 95;
const IFF_UP = 0x1;
/** nodad, optimistic, home, mngtmpaddr, noprefixroute, autojoin. */
const SETTABLE_ADDRESS_FLAGS = 0x2 | 0x4 | 0x10 | 0x100 | 0x200 | 0x400;

export interface FakeNetlinkOptions {
  /** Accept any gateway and down links for routes (default false: kernel-like checks). */
  lenientNexthops?: boolean;
  /** Pending events per subscriber beyond which it gets `resync` instead (ENOBUFS); default none. */
  eventQueueLimit?: number;
}

export interface SeedLinkOptions {
  mtu?: number;
  mac?: string;
  up?: boolean;
  /**
   * CIDRs, e.g. `["192.168.1.10/24"]` (flags `permanent`), or with the IFA_F_* word the kernel
   * would report, e.g. `{ address: "fd00::5/64", flags: IFA_F.TENTATIVE }` for an address still
   * in duplicate address detection.
   */
  addresses?: Array<string | { address: string; flags: number }>;
  kind?: string;
}

type Method = Exclude<keyof Netlink, "subscribe" | "close">;

interface Cidr {
  ip: ipaddr.IPv4 | ipaddr.IPv6;
  len: number;
}

function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  try {
    const ip = ipaddr.parse(slash < 0 ? text : text.slice(0, slash));
    const max = ip.kind() === "ipv4" ? 32 : 128;
    const len = slash < 0 ? max : Number(text.slice(slash + 1));
    if (!Number.isInteger(len) || len < 0 || len > max) throw new RangeError("bad prefix length");
    return { ip, len };
  } catch (cause) {
    throw new TypeError(`Cannot parse prefix "${text}"`, { cause });
  }
}

function familyOf(c: Cidr): Family {
  return c.ip.kind() === "ipv4" ? 4 : 6;
}

function canonicalIp(text: string): string {
  return parseCidr(text).ip.toString();
}

function contains(net: Cidr, ip: Cidr): boolean {
  return net.ip.kind() === ip.ip.kind() &&
    (ip.ip as ipaddr.IPv4).match(net.ip as ipaddr.IPv4, net.len);
}

function networkOf(c: Cidr): string {
  const bytes = c.ip.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, c.len - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

function canonicalMac(mac: string): string {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`Cannot parse MAC address "${mac}"`);
  }
  return parts.map((p) => p.toLowerCase().padStart(2, "0")).join(":");
}

function defaultScope(r: Route): number {
  return (r.type ?? "unicast") === "unicast" && r.gateway === undefined && !r.onlink ? 253 : 0;
}

/** A route as a dump reports it: every default filled in, text canonical. */
function normalise(r: Route): Route {
  const dst = parseCidr(r.dst);
  const family = familyOf(dst);
  if (networkOf(dst) !== dst.ip.toString()) {
    throw errnoError(`Cannot add route ${r.dst}`, EINVAL, {
      detail: "Invalid prefix for given prefix length",
    });
  }
  return {
    dst: `${dst.ip.toString()}/${dst.len}`,
    ...(r.gateway !== undefined ? { gateway: canonicalIp(r.gateway) } : {}),
    ...(r.index !== undefined ? { index: r.index } : {}),
    ...(r.onlink ? { onlink: true } : {}),
    table: r.table ?? 254,
    protocol: r.protocol ?? 3,
    scope: r.scope ?? defaultScope(r),
    type: r.type ?? "unicast",
    metric: r.metric ?? (family === 4 ? 0 : 1024),
    ...(r.src !== undefined ? { src: canonicalIp(r.src) } : {}),
  };
}

function routeKey(r: Route): string {
  return `${r.dst.includes(":") ? 6 : 4}|${r.table}|${r.dst}|${r.metric}`;
}

function routeGroup(r: Route): EventGroup {
  return r.dst.includes(":") ? "ipv6-route" : "ipv4-route";
}

interface Subscriber {
  groups: Set<EventGroup>;
  queue: KernelEvent[];
  wake?: () => void;
  done: boolean;
}

export class FakeNetlink implements Netlink {
  /** Every call made through the Netlink interface, in order. */
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  /** Mutations that bypass recording and injected failures: "someone else" changing the host. */
  readonly external: Netlink;

  #options: FakeNetlinkOptions;
  #links = new Map<number, Link>();
  #nextIndex = 1;
  #addresses: Address[] = [];
  #routes = new Map<string, Route>();
  #neighs = new Map<string, Neigh>();
  /** FDB entries by `index|mac`: the remotes in kernel order (`replace` rewrites the first). */
  #fdbs = new Map<string, Fdb[]>();
  #subs = new Set<Subscriber>();
  #failures = new Map<string, Error[]>();
  #closed = false;

  constructor(options: FakeNetlinkOptions = {}) {
    this.#options = options;
    this.#links.set(1, {
      index: 1,
      name: "lo",
      mtu: 65536,
      up: true,
      flags: IFF_UP | 0x8,
      mac: "00:00:00:00:00:00",
    });
    this.#nextIndex = 2;
    this.external = this.#externalView();
  }

  /** Adds a host interface (kind "dummy" unless given), up by default, with addresses. */
  seedLink(name: string, options: SeedLinkOptions = {}): Link {
    const index = this.#nextIndex++;
    const link: Link = {
      index,
      name,
      mtu: options.mtu ?? 1500,
      up: options.up ?? true,
      flags: (options.up ?? true) ? IFF_UP : 0,
      mac: canonicalMac(
        options.mac ?? `02:00:00:00:${(index >> 8).toString(16)}:${(index & 255).toString(16)}`,
      ),
      kind: options.kind ?? "dummy",
    };
    this.#links.set(index, link);
    for (const a of options.addresses ?? []) {
      if (typeof a === "string") this.#addressAdd({ index, address: a });
      else this.#addressAdd({ index, ...a }, true);
    }
    return link;
  }

  /**
   * Makes the next `times` calls of `method` fail with `error` (an errno gives the matching
   * typed error, e.g. 1 → PermissionDeniedError).
   */
  failNext(method: Method, error: Error | number = EPERM, times = 1): void {
    const list = this.#failures.get(method) ?? [];
    for (let i = 0; i < times; i++) {
      list.push(typeof error === "number" ? errnoError(`fake ${method}`, error) : error);
    }
    this.#failures.set(method, list);
  }

  /** Tells every subscriber that notifications were lost. */
  emitResync(): void {
    for (const s of this.#subs) this.#deliver(s, { kind: "resync" });
  }

  /** Number of live subscriptions (tests check that aborting ends them). */
  get subscriberCount(): number {
    return this.#subs.size;
  }

  linkByName(name: string): Promise<Link | undefined> {
    return this.#call("linkByName", [name], () => this.#linkNamed(name));
  }

  linkByIndex(index: number): Promise<Link | undefined> {
    return this.#call("linkByIndex", [index], () => this.#links.get(index));
  }

  links(): Promise<Link[]> {
    return this.#call("links", [], () => [...this.#links.values()]);
  }

  linkAdd(spec: LinkSpec): Promise<void> {
    return this.#call("linkAdd", [spec], () => this.#linkAdd(spec));
  }

  linkDelete(index: number): Promise<void> {
    return this.#call("linkDelete", [index], () => this.#linkDelete(index));
  }

  linkSet(index: number, change: LinkChange): Promise<void> {
    return this.#call("linkSet", [index, change], () => this.#linkSet(index, change));
  }

  addresses(index?: number, family?: Family): Promise<Address[]> {
    return this.#call("addresses", [index, family], () => this.#addressesOf(index, family));
  }

  #addressesOf(index?: number, family?: Family): Address[] {
    return this.#addresses.filter((a) =>
      (index === undefined || a.index === index) &&
      (family === undefined || a.address.includes(":") === (family === 6))
    );
  }

  addressAdd(address: Address): Promise<void> {
    return this.#call("addressAdd", [address], () => this.#addressAdd(address));
  }

  addressDelete(address: Address): Promise<void> {
    return this.#call("addressDelete", [address], () => this.#addressDelete(address));
  }

  routes(filter: RouteFilter = {}): Promise<Route[]> {
    return this.#call("routes", [filter], () => this.#routesMatching(filter));
  }

  #routesMatching(filter: RouteFilter): Route[] {
    const table = filter.table ?? 254;
    const dst = filter.dst === undefined ? undefined : normalise({ dst: filter.dst }).dst;
    return [...this.#routes.values()].filter((r) =>
      (table === 0 || r.table === table) &&
      (filter.protocol === undefined || r.protocol === filter.protocol) &&
      (filter.index === undefined || r.index === filter.index) &&
      (filter.family === undefined || r.dst.includes(":") === (filter.family === 6)) &&
      (dst === undefined || r.dst === dst)
    );
  }

  routeAdd(route: Route): Promise<void> {
    return this.#call("routeAdd", [route], () => this.#routeSet(route, false));
  }

  routeReplace(route: Route): Promise<void> {
    return this.#call("routeReplace", [route], () => this.#routeSet(route, true));
  }

  routeDelete(route: Route): Promise<void> {
    return this.#call("routeDelete", [route], () => this.#routeDelete(route));
  }

  routeGet(dst: string): Promise<Route | undefined> {
    return this.#call("routeGet", [dst], () => this.#routeGet(dst));
  }

  #routeGet(dst: string): Route | undefined {
    const ip = parseCidr(dst);
    let best: Route | undefined;
    let bestLen = -1;
    for (const r of this.#routes.values()) {
      const net = parseCidr(r.dst);
      if (r.table !== 254 || !contains(net, ip) || net.len <= bestLen) continue;
      best = r;
      bestLen = net.len;
    }
    if (!best || best.type === "unreachable") return undefined;
    if (best.type !== "unicast") {
      throw errnoError(`Cannot get route to ${dst}`, best.type === "prohibit" ? 13 : EINVAL);
    }
    return {
      dst: `${ip.ip.toString()}/${ip.len}`,
      ...(best.gateway !== undefined ? { gateway: best.gateway } : {}),
      ...(best.index !== undefined ? { index: best.index } : {}),
      table: 254,
      protocol: 0,
      scope: 0,
      type: "unicast",
      metric: 0,
    };
  }

  neighs(index?: number): Promise<Neigh[]> {
    return this.#call("neighs", [index], () => this.#neighsOf(index));
  }

  #neighsOf(index?: number): Neigh[] {
    return [...this.#neighs.values()].filter((n) => index === undefined || n.index === index);
  }

  neighReplace(neigh: Neigh): Promise<void> {
    return this.#call("neighReplace", [neigh], () => this.#neighReplace(neigh));
  }

  neighDelete(neigh: Neigh): Promise<void> {
    return this.#call("neighDelete", [neigh], () => this.#neighDelete(neigh));
  }

  fdbs(index?: number): Promise<Fdb[]> {
    return this.#call("fdbs", [index], () => this.#fdbsOf(index));
  }

  #fdbsOf(index?: number): Fdb[] {
    return [...this.#fdbs.values()].flat().filter((f) => index === undefined || f.index === index);
  }

  fdbReplace(fdb: Fdb): Promise<void> {
    return this.#call("fdbReplace", [fdb], () => this.#fdbReplace(fdb));
  }

  fdbDelete(fdb: Fdb): Promise<void> {
    return this.#call("fdbDelete", [fdb], () => this.#fdbDelete(fdb));
  }

  subscribe(
    groups: readonly EventGroup[],
    options: SubscribeOptions = {},
  ): AsyncIterable<KernelEvent> {
    this.calls.push({ method: "subscribe", args: [groups] });
    const sub: Subscriber = { groups: new Set(groups), queue: [], done: false };
    const signal = options.signal;
    const end = () => {
      sub.done = true;
      this.#subs.delete(sub);
      sub.wake?.();
    };
    if (signal?.aborted) sub.done = true;
    else this.#subs.add(sub);
    signal?.addEventListener("abort", end, { once: true });
    async function* iterate(): AsyncGenerator<KernelEvent> {
      try {
        for (;;) {
          while (sub.queue.length > 0 && !sub.done) yield sub.queue.shift()!;
          if (sub.done) return;
          await new Promise<void>((resolve) => sub.wake = resolve);
          sub.wake = undefined;
        }
      } finally {
        signal?.removeEventListener("abort", end);
        end();
      }
    }
    return { [Symbol.asyncIterator]: iterate };
  }

  close(): void {
    this.#closed = true;
  }

  async #call<T>(method: string, args: unknown[], fn: () => T): Promise<T> {
    this.calls.push({ method, args });
    await Promise.resolve();
    if (this.#closed) throw new Error(`Cannot ${method}: the netlink socket was closed`);
    const failure = this.#failures.get(method)?.shift();
    if (failure) throw failure;
    return fn();
  }

  #externalView(): Netlink {
    const run = async <T>(fn: () => T): Promise<T> => {
      await Promise.resolve();
      return fn();
    };
    return {
      linkByName: (name) => run(() => this.#linkNamed(name)),
      linkByIndex: (index) => run(() => this.#links.get(index)),
      links: () => run(() => [...this.#links.values()]),
      linkAdd: (spec) => run(() => this.#linkAdd(spec)),
      linkDelete: (index) => run(() => this.#linkDelete(index)),
      linkSet: (index, change) => run(() => this.#linkSet(index, change)),
      addresses: (index, family) => run(() => this.#addressesOf(index, family)),
      addressAdd: (a) => run(() => this.#addressAdd(a)),
      addressDelete: (a) => run(() => this.#addressDelete(a)),
      routes: (filter) => run(() => this.#routesMatching(filter ?? {})),
      routeAdd: (r) => run(() => this.#routeSet(r, false)),
      routeReplace: (r) => run(() => this.#routeSet(r, true)),
      routeDelete: (r) => run(() => this.#routeDelete(r)),
      routeGet: (dst) => run(() => this.#routeGet(dst)),
      neighs: (index) => run(() => this.#neighsOf(index)),
      neighReplace: (n) => run(() => this.#neighReplace(n)),
      neighDelete: (n) => run(() => this.#neighDelete(n)),
      fdbs: (index) => run(() => this.#fdbsOf(index)),
      fdbReplace: (f) => run(() => this.#fdbReplace(f)),
      fdbDelete: (f) => run(() => this.#fdbDelete(f)),
      subscribe: (groups, options) => this.subscribe(groups, options),
      close: () => {},
    };
  }

  #emit(group: EventGroup, event: KernelEvent): void {
    for (const s of this.#subs) if (s.groups.has(group)) this.#deliver(s, event);
  }

  #deliver(s: Subscriber, event: KernelEvent): void {
    const limit = this.#options.eventQueueLimit;
    if (limit !== undefined && s.queue.length >= limit) {
      s.queue = [{ kind: "resync" }];
    } else {
      s.queue.push(event);
    }
    s.wake?.();
  }

  #linkNamed(name: string): Link | undefined {
    for (const l of this.#links.values()) if (l.name === name) return l;
    return undefined;
  }

  #link(index: number, action: string): Link {
    const link = this.#links.get(index);
    if (!link) throw errnoError(action, ENODEV);
    return link;
  }

  #linkAdd(spec: LinkSpec): void {
    const action = `Cannot add ${spec.kind} link "${spec.name}"`;
    if (this.#linkNamed(spec.name)) throw errnoError(action, EEXIST);
    let mtu = spec.mtu ?? 1500;
    let vxlan: Link["vxlan"];
    if (spec.kind === "vxlan") {
      const dev = spec.dev === undefined ? undefined : this.#link(spec.dev, action);
      const overhead = spec.local?.includes(":") ? 70 : 50;
      mtu = spec.mtu ?? (dev ? dev.mtu - overhead : 1500);
      vxlan = {
        vni: spec.vni,
        ...(spec.local !== undefined ? { local: canonicalIp(spec.local) } : {}),
        ...(spec.dev !== undefined ? { dev: spec.dev } : {}),
        port: spec.port ?? 8472,
        learning: spec.learning ?? false,
        gbp: spec.gbp ?? false,
      };
    }
    const index = this.#nextIndex++;
    const link: Link = {
      index,
      name: spec.name,
      mtu,
      up: false,
      flags: 0,
      mac: canonicalMac(
        spec.mac ?? `0e:00:00:00:${(index >> 8).toString(16)}:${(index & 255).toString(16)}`,
      ),
      kind: spec.kind,
      ...(vxlan ? { vxlan } : {}),
    };
    this.#links.set(index, link);
    this.#emit("link", { kind: "link", op: "new", link });
  }

  #linkDelete(index: number): void {
    const link = this.#link(index, `Cannot delete link ${index}`);
    this.#flushRoutes(index);
    this.#addresses = this.#addresses.filter((a) => a.index !== index);
    for (const [k, n] of this.#neighs) if (n.index === index) this.#neighs.delete(k);
    for (const [k, [f]] of this.#fdbs) if (f.index === index) this.#fdbs.delete(k);
    this.#links.delete(index);
    this.#emit("link", { kind: "link", op: "del", link });
  }

  #linkSet(index: number, change: LinkChange): void {
    const old = this.#link(index, `Cannot set link ${index}`);
    const up = change.up ?? old.up;
    const link: Link = {
      ...old,
      up,
      flags: up ? old.flags | IFF_UP : old.flags & ~IFF_UP,
      mtu: change.mtu ?? old.mtu,
      ...(change.mac !== undefined ? { mac: canonicalMac(change.mac) } : {}),
    };
    this.#links.set(index, link);
    if (old.up && !up) this.#flushRoutes(index);
    this.#emit("link", { kind: "link", op: "new", link });
  }

  /** Drops routes through a link going down or away, notifying only IPv6 ones like the kernel. */
  #flushRoutes(index: number): void {
    for (const [k, r] of this.#routes) {
      if (r.index !== index) continue;
      this.#routes.delete(k);
      if (r.dst.includes(":")) this.#emit("ipv6-route", { kind: "route", op: "del", route: r });
    }
  }

  /** Like the kernel, keeps only the settable flags and adds `permanent`, unless `seeded`. */
  #addressAdd(a: Address, seeded = false): void {
    const c = parseCidr(a.address);
    const address: Address = {
      index: a.index,
      address: `${c.ip.toString()}/${c.len}`,
      scope: a.scope ?? 0,
      flags: seeded ? a.flags ?? 0 : ((a.flags ?? 0) & SETTABLE_ADDRESS_FLAGS) | IFA_F.PERMANENT,
      ...(a.label !== undefined ? { label: a.label } : {}),
    };
    const action = `Cannot add address ${a.address} to link ${a.index}`;
    this.#link(a.index, action);
    if (this.#addresses.some((x) => x.index === a.index && x.address === address.address)) {
      throw errnoError(action, EEXIST);
    }
    this.#addresses.push(address);
    this.#emit(c.ip.kind() === "ipv4" ? "ipv4-address" : "ipv6-address", {
      kind: "address",
      op: "new",
      address,
    });
  }

  #addressDelete(a: Address): void {
    const c = parseCidr(a.address);
    const text = `${c.ip.toString()}/${c.len}`;
    const i = this.#addresses.findIndex((x) => x.index === a.index && x.address === text);
    if (i < 0) {
      throw errnoError(`Cannot delete address ${a.address} from link ${a.index}`, EADDRNOTAVAIL);
    }
    const [address] = this.#addresses.splice(i, 1);
    this.#emit(c.ip.kind() === "ipv4" ? "ipv4-address" : "ipv6-address", {
      kind: "address",
      op: "del",
      address,
    });
  }

  #checkNexthop(r: Route, action: string): Route {
    if (r.index === undefined && r.gateway === undefined) return r;
    if (r.index !== undefined) this.#link(r.index, action);
    if (this.#options.lenientNexthops || r.type !== "unicast") return r;
    if (r.index !== undefined && !this.#links.get(r.index)!.up) {
      throw errnoError(action, ENETDOWN, { detail: "Nexthop device is not up" });
    }
    if (r.gateway === undefined) return r;
    const gw = parseCidr(r.gateway);
    const local = this.#addresses.find((a) =>
      (r.index === undefined || a.index === r.index) && this.#links.get(a.index)?.up &&
      contains(parseCidr(a.address), gw)
    );
    if (local) return r.index === undefined ? { ...r, index: local.index } : r;
    if (r.onlink) return r;
    throw errnoError(action, ENETUNREACH, { detail: "Nexthop has invalid gateway" });
  }

  #routeSet(input: Route, replace: boolean): void {
    const action = `Cannot ${replace ? "replace" : "add"} route ${input.dst}`;
    const route = this.#checkNexthop(normalise(input), action);
    const key = routeKey(route);
    if (!replace && this.#routes.has(key)) throw errnoError(action, EEXIST);
    this.#routes.set(key, route);
    this.#emit(routeGroup(route), { kind: "route", op: "new", route });
  }

  #routeDelete(want: Route): void {
    const dst = normalise({ dst: want.dst }).dst;
    const table = want.table ?? 254;
    for (const [k, r] of this.#routes) {
      if (
        r.dst === dst && r.table === table &&
        (want.metric === undefined || r.metric === want.metric) &&
        (want.gateway === undefined || r.gateway === canonicalIp(want.gateway)) &&
        (want.index === undefined || r.index === want.index) &&
        (want.protocol === undefined || r.protocol === want.protocol) &&
        (want.scope === undefined || r.scope === want.scope) &&
        (want.type === undefined || r.type === want.type)
      ) {
        this.#routes.delete(k);
        this.#emit(routeGroup(r), { kind: "route", op: "del", route: r });
        return;
      }
    }
    throw errnoError(`Cannot delete route ${want.dst}`, dst.includes(":") ? ENOENT : ESRCH);
  }

  #neighReplace(n: Neigh): void {
    const action = `Cannot replace neighbour ${n.ip} dev ${n.index}`;
    this.#link(n.index, action);
    if (n.mac === undefined) throw new TypeError(`${action}: no MAC given`);
    const neigh: Neigh = {
      index: n.index,
      ip: canonicalIp(n.ip),
      mac: canonicalMac(n.mac),
      state: n.state ?? 0x80,
    };
    this.#neighs.set(`${neigh.index}|${neigh.ip}`, neigh);
    this.#emit("neigh", { kind: "neigh", op: "new", neigh });
  }

  #neighDelete(n: Neigh): void {
    const key = `${n.index}|${canonicalIp(n.ip)}`;
    const neigh = this.#neighs.get(key);
    if (!neigh) throw errnoError(`Cannot delete neighbour ${n.ip} dev ${n.index}`, ENOENT);
    this.#neighs.delete(key);
    this.#emit("neigh", { kind: "neigh", op: "del", neigh });
  }

  #fdbReplace(f: Fdb): void {
    const action = `Cannot replace FDB entry ${f.mac} dev ${f.index}`;
    this.#link(f.index, action);
    const fdb = fdbEntry(f);
    const key = `${fdb.index}|${fdb.mac}`;
    const remotes = this.#fdbs.get(key);
    if (!remotes) {
      this.#fdbs.set(key, [fdb]);
    } else if (!isUnicastMac(fdb.mac)) {
      throw errnoError(action, EOPNOTSUPP, { detail: "Cannot replace non-unicast fdb entries" });
    } else {
      // A unicast MAC has one remote: replace rewrites it (or only its state, for the same dst).
      const [old] = remotes;
      if (old.dst === fdb.dst && old.state === fdb.state) return; // no change, no notification
      remotes[0] = fdb;
    }
    this.#emit("neigh", { kind: "fdb", op: "new", fdb });
  }

  /**
   * `bridge fdb append MAC dev IDX dst IP self permanent`, done by someone else (not recorded,
   * not part of {@link Netlink}). Like the kernel it adds a remote only to an all-zero or
   * multicast MAC (the flood list); for an existing unicast MAC it silently does nothing.
   */
  appendFdb(f: Fdb): void {
    this.#link(f.index, `Cannot append FDB entry ${f.mac} dev ${f.index}`);
    const fdb = fdbEntry(f);
    const key = `${fdb.index}|${fdb.mac}`;
    const remotes = this.#fdbs.get(key);
    if (!remotes) {
      this.#fdbs.set(key, [fdb]);
    } else if (isUnicastMac(fdb.mac)) {
      // No second remote; only the state of the one there is updated.
      if (remotes[0].state === fdb.state) return;
      remotes[0] = { ...remotes[0], state: fdb.state };
      this.#emit("neigh", { kind: "fdb", op: "new", fdb: remotes[0] });
      return;
    } else if (remotes.some((r) => r.dst === fdb.dst)) {
      return;
    } else {
      remotes.push(fdb);
    }
    this.#emit("neigh", { kind: "fdb", op: "new", fdb });
  }

  #fdbDelete(f: Fdb): void {
    const key = `${f.index}|${canonicalMac(f.mac)}`;
    const remotes = this.#fdbs.get(key);
    if (!remotes) throw errnoError(`Cannot delete FDB entry ${f.mac} dev ${f.index}`, ENOENT);
    let gone = remotes;
    if (f.dst !== undefined) {
      // Like the kernel: only that remote goes, and a `dst` the entry lacks is quietly ignored.
      const dst = canonicalIp(f.dst);
      gone = remotes.filter((r) => r.dst === dst);
      if (gone.length === 0) return;
    }
    const kept = remotes.filter((r) => !gone.includes(r));
    if (kept.length > 0) this.#fdbs.set(key, kept);
    else this.#fdbs.delete(key);
    for (const fdb of gone) this.#emit("neigh", { kind: "fdb", op: "del", fdb });
  }
}

/** An FDB entry as a dump reports it. */
function fdbEntry(f: Fdb): Fdb {
  return {
    index: f.index,
    mac: canonicalMac(f.mac),
    ...(f.dst !== undefined ? { dst: canonicalIp(f.dst) } : {}),
    state: f.state ?? 0x80,
  };
}

/** Neither all-zero (the default flood entry) nor multicast: the kernel keeps one remote. */
function isUnicastMac(mac: string): boolean {
  return mac !== "00:00:00:00:00:00" && (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
