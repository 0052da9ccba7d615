/**
 * {@link Netlink} over a real NETLINK_ROUTE socket: requests on one socket (serialised, strict
 * dump checking so the kernel filters), notifications on a socket per subscription.
 */
import {
  AF_BRIDGE,
  AF_UNSPEC,
  ifaddrmsg,
  ifinfomsg,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_SETLINK,
} from "./_codec.ts";
import { decodeAddress, encodeAddress } from "./_addr.ts";
import { Connection } from "./_conn.ts";
import { subscribeEvents } from "./_events.ts";
import { decodeLink, encodeLinkAdd, encodeLinkGet, encodeLinkSet } from "./_link.ts";
import { decodeNeigh, encodeFdb, encodeNeigh, encodeNeighDump } from "./_neigh.ts";
import {
  decodeRoute,
  encodeRoute,
  encodeRouteDump,
  encodeRouteGet,
  routeHeaderFilter,
  routeMatches,
} from "./_route.ts";
import { FfiNetlinkSocket, type OpenSocketOptions, type PacketSocket } from "./_socket.ts";
import { afOf } from "./_text.ts";
import { NetlinkError, NotFoundError } from "./errors.ts";
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
} from "./types.ts";

const ENETUNREACH = 101;
const EHOSTUNREACH = 113;

export interface OpenNetlinkOptions {
  /** Socket factory; tests pass a scripted one. Default: an FFI NETLINK_ROUTE socket. */
  openSocket?: (options: OpenSocketOptions) => PacketSocket;
}

/** `ip route` style text for errors: `10.1.0.0/24 via 10.0.0.1 dev 3 table 254`. */
export function describeRoute(r: Route): string {
  const parts = [typeof r.type === "string" && r.type !== "unicast" ? `${r.type} ${r.dst}` : r.dst];
  if (r.gateway !== undefined) parts.push(`via ${r.gateway}`);
  if (r.index !== undefined) parts.push(`dev ${r.index}`);
  if (r.onlink) parts.push("onlink");
  if (r.table !== undefined) parts.push(`table ${r.table}`);
  if (r.protocol !== undefined) parts.push(`proto ${r.protocol}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  return parts.join(" ");
}

/** Opens the request socket. Needs `--allow-ffi`; changing state needs CAP_NET_ADMIN. */
export function openNetlink(options: OpenNetlinkOptions = {}): Netlink {
  return new RtNetlink(options.openSocket ?? ((o) => new FfiNetlinkSocket(o)));
}

class RtNetlink implements Netlink {
  #conn: Connection;
  #open: (options: OpenSocketOptions) => PacketSocket;

  constructor(open: (options: OpenSocketOptions) => PacketSocket) {
    this.#open = open;
    this.#conn = new Connection(open({ strictCheck: true }));
  }

  async #getLink(index: number, name: string | undefined, action: string) {
    try {
      const [msg] = await this.#conn.request(RTM_GETLINK, 0, encodeLinkGet(index, name), action);
      return msg ? decodeLink(msg) : undefined;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  linkByName(name: string): Promise<Link | undefined> {
    return this.#getLink(0, name, `Cannot look up link "${name}"`);
  }

  linkByIndex(index: number): Promise<Link | undefined> {
    return this.#getLink(index, undefined, `Cannot look up link ${index}`);
  }

  async links(): Promise<Link[]> {
    const msgs = await this.#conn.dump(RTM_GETLINK, encodeLinkGet(0), "Cannot list links");
    return msgs.filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
  }

  async linkAdd(spec: LinkSpec): Promise<void> {
    await this.#conn.request(
      RTM_NEWLINK,
      NLM_F_CREATE | NLM_F_EXCL,
      encodeLinkAdd(spec),
      `Cannot add ${spec.kind} link "${spec.name}"`,
    );
  }

  async linkDelete(index: number): Promise<void> {
    await this.#conn.request(
      RTM_DELLINK,
      0,
      [ifinfomsg(AF_UNSPEC, index), []],
      `Cannot delete link ${index}`,
    );
  }

  async linkSet(index: number, change: LinkChange): Promise<void> {
    await this.#conn.request(
      RTM_SETLINK,
      0,
      encodeLinkSet(index, change),
      `Cannot set link ${index} ${JSON.stringify(change)}`,
    );
  }

  async addresses(index?: number, family?: Family): Promise<Address[]> {
    const af = family ? afOf(family) : AF_UNSPEC;
    const msgs = await this.#conn.dump(
      RTM_GETADDR,
      [ifaddrmsg(af, 0, 0, index ?? 0), []],
      "Cannot list addresses",
    );
    const out: Address[] = [];
    for (const m of msgs) {
      const a = m.type === RTM_NEWADDR ? decodeAddress(m) : undefined;
      if (!a || (index !== undefined && a.index !== index)) continue;
      if (family !== undefined && a.address.includes(":") !== (family === 6)) continue;
      out.push(a);
    }
    return out;
  }

  async addressAdd(a: Address): Promise<void> {
    await this.#conn.request(
      RTM_NEWADDR,
      NLM_F_CREATE | NLM_F_EXCL,
      encodeAddress(a, true),
      `Cannot add address ${a.address} to link ${a.index}`,
    );
  }

  async addressDelete(a: Address): Promise<void> {
    await this.#conn.request(
      RTM_DELADDR,
      0,
      encodeAddress(a),
      `Cannot delete address ${a.address} from link ${a.index}`,
    );
  }

  async routes(filter: RouteFilter = {}): Promise<Route[]> {
    let msgs;
    try {
      msgs = await this.#conn.dump(RTM_GETROUTE, encodeRouteDump(filter), "Cannot list routes");
    } catch (err) {
      // The kernel answers ENODEV when the `dev` filter names no link: no routes.
      if (err instanceof NotFoundError && filter.index !== undefined) return [];
      throw err;
    }
    const out: Route[] = [];
    const mayMatch = routeHeaderFilter(filter);
    for (const m of msgs) {
      if (m.type !== RTM_NEWROUTE || !mayMatch(m.data)) continue;
      const r = decodeRoute(m);
      if (r && !r.cloned && routeMatches(r.route, filter)) out.push(r.route);
    }
    return out;
  }

  async routeAdd(r: Route): Promise<void> {
    await this.#conn.request(
      RTM_NEWROUTE,
      NLM_F_CREATE | NLM_F_EXCL,
      encodeRoute(r, "set"),
      `Cannot add route ${describeRoute(r)}`,
    );
  }

  async routeReplace(r: Route): Promise<void> {
    await this.#conn.request(
      RTM_NEWROUTE,
      NLM_F_CREATE | NLM_F_REPLACE,
      encodeRoute(r, "set"),
      `Cannot replace route ${describeRoute(r)}`,
    );
  }

  async routeDelete(r: Route): Promise<void> {
    await this.#conn.request(
      RTM_DELROUTE,
      0,
      encodeRoute(r, "delete"),
      `Cannot delete route ${describeRoute(r)}`,
    );
  }

  async routeGet(dst: string): Promise<Route | undefined> {
    try {
      const msgs = await this.#conn.request(
        RTM_GETROUTE,
        0,
        encodeRouteGet(dst),
        `Cannot get route to ${dst}`,
      );
      const msg = msgs.find((m) => m.type === RTM_NEWROUTE);
      return msg ? decodeRoute(msg)?.route : undefined;
    } catch (err) {
      if (
        err instanceof NetlinkError && (err.errno === ENETUNREACH || err.errno === EHOSTUNREACH)
      ) {
        return undefined;
      }
      throw err;
    }
  }

  async neighs(index?: number): Promise<Neigh[]> {
    const msgs = await this.#conn.dump(
      RTM_GETNEIGH,
      encodeNeighDump(AF_UNSPEC, index),
      "Cannot list neighbours",
    );
    const out: Neigh[] = [];
    for (const m of msgs) {
      const n = m.type === RTM_NEWNEIGH ? decodeNeigh(m) : undefined;
      if (n?.kind === "neigh" && (index === undefined || n.neigh.index === index)) {
        out.push(n.neigh);
      }
    }
    return out;
  }

  async neighReplace(n: Neigh): Promise<void> {
    await this.#conn.request(
      RTM_NEWNEIGH,
      NLM_F_CREATE | NLM_F_REPLACE,
      encodeNeigh(n, "set"),
      `Cannot replace neighbour ${n.ip} lladdr ${n.mac} dev ${n.index}`,
    );
  }

  async neighDelete(n: Neigh): Promise<void> {
    await this.#conn.request(
      RTM_DELNEIGH,
      0,
      encodeNeigh(n, "delete"),
      `Cannot delete neighbour ${n.ip} dev ${n.index}`,
    );
  }

  async fdbs(index?: number): Promise<Fdb[]> {
    const msgs = await this.#conn.dump(
      RTM_GETNEIGH,
      encodeNeighDump(AF_BRIDGE, index),
      "Cannot list FDB entries",
    );
    const out: Fdb[] = [];
    for (const m of msgs) {
      const n = m.type === RTM_NEWNEIGH ? decodeNeigh(m) : undefined;
      if (n?.kind === "fdb" && (index === undefined || n.fdb.index === index)) out.push(n.fdb);
    }
    return out;
  }

  async fdbReplace(f: Fdb): Promise<void> {
    await this.#conn.request(
      RTM_NEWNEIGH,
      NLM_F_CREATE | NLM_F_REPLACE,
      encodeFdb(f, "set"),
      `Cannot replace FDB entry ${f.mac} dev ${f.index} dst ${f.dst}`,
    );
  }

  async fdbDelete(f: Fdb): Promise<void> {
    await this.#conn.request(
      RTM_DELNEIGH,
      0,
      encodeFdb(f, "delete"),
      `Cannot delete FDB entry ${f.mac} dev ${f.index}`,
    );
  }

  subscribe(
    groups: readonly EventGroup[],
    options: SubscribeOptions = {},
  ): AsyncIterable<KernelEvent> {
    return subscribeEvents(groups, options, this.#open);
  }

  close(): void {
    this.#conn.close();
  }
}
