/** RTM_*ROUTE messages ⇄ {@link Route}. */
import {
  AF_UNSPEC,
  attributeFormatter,
  attributeParser,
  Buffer,
  type NetlinkMessage,
  parseRtmsg,
  rt,
  rtmsg,
  type StreamData,
  structs,
} from "./_codec.ts";
import { afOf, cidrBytes, ipBytes, ipText, zeroAddress } from "./_text.ts";
import type { Route, RouteFilter, RouteType } from "./types.ts";

export const RT_TABLE_MAIN = 254;
const RT_TABLE_COMPAT = 252;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_NOWHERE = 255;
export const RTNH_F_ONLINK = 0x4;
export const RTM_F_CLONED = 0x200;

const routeTypes: Record<RouteType, number> = {
  unicast: 1,
  local: 2,
  broadcast: 3,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
};
const routeTypeNames = new Map(
  Object.entries(routeTypes).map(([name, n]) => [n, name as RouteType]),
);

/** The RTN_* number of a route type. */
export function routeTypeNumber(type: RouteType | number | undefined): number {
  if (type === undefined) return 0;
  return typeof type === "number" ? type : routeTypes[type];
}

/** Whether `ip route` would give this route `scope link` by default. */
export function defaultScope(route: Route): number {
  const type = routeTypeNumber(route.type ?? "unicast");
  return type === 1 && route.gateway === undefined && !route.onlink
    ? RT_SCOPE_LINK
    : RT_SCOPE_UNIVERSE;
}

/** The route attributes this layer writes (RTA_DST, RTA_OIF, RTA_GATEWAY, ...). */
const formatRouteAttrs = attributeFormatter<rt.RouteAttrs>({
  dst: (out, x) => out.push(1, x.dst!),
  oif: (out, x) => out.push(4, structs.putU32(x.oif!)),
  gateway: (out, x) => out.push(5, x.gateway!),
  priority: (out, x) => out.push(6, structs.putU32(x.priority!)),
  prefsrc: (out, x) => out.push(7, x.prefsrc!),
  table: (out, x) => out.push(15, structs.putU32(x.table!)),
});

/**
 * Request body for `ip route add|replace|del`. On delete, unset fields are wildcards as with
 * `ip route del`: any scope, protocol and type.
 */
export function encodeRoute(route: Route, op: "set" | "delete"): [Buffer, StreamData] {
  const dst = cidrBytes(route.dst);
  const table = route.table ?? RT_TABLE_MAIN;
  const attrs: rt.RouteAttrs = { table };
  if (dst.prefixLen > 0) attrs.dst = dst.bytes;
  if (route.gateway !== undefined) {
    const gw = ipBytes(route.gateway);
    if (gw.family !== dst.family) {
      throw new TypeError(
        `Cannot route ${route.dst} via ${route.gateway}: the gateway's family differs`,
      );
    }
    attrs.gateway = gw.bytes;
  }
  if (route.index !== undefined) attrs.oif = route.index;
  if (route.metric !== undefined) attrs.priority = route.metric;
  if (route.src !== undefined) attrs.prefsrc = ipBytes(route.src).bytes;
  const set = op === "set";
  const header = rtmsg({
    family: afOf(dst.family),
    dstLen: dst.prefixLen,
    srcLen: 0,
    tos: 0,
    table: table < 256 ? table : RT_TABLE_COMPAT,
    protocol: route.protocol ?? (set ? RTPROT_BOOT : 0),
    scope: route.scope ?? (set ? defaultScope(route) : RT_SCOPE_NOWHERE),
    type: routeTypeNumber(route.type ?? (set ? "unicast" : undefined)),
    flags: route.onlink ? RTNH_F_ONLINK : 0,
  });
  return [header, formatRouteAttrs(attrs)];
}

/** Request body for a route dump narrowed in the kernel (strict checking) by table, proto, dev. */
export function encodeRouteDump(filter: RouteFilter): [Buffer, StreamData] {
  const table = filter.table ?? RT_TABLE_MAIN;
  const attrs: rt.RouteAttrs = {};
  if (table !== 0) attrs.table = table;
  if (filter.index !== undefined) attrs.oif = filter.index;
  const header = rtmsg({
    family: filter.family ? afOf(filter.family) : AF_UNSPEC,
    dstLen: 0,
    srcLen: 0,
    tos: 0,
    table: table < 256 ? table : RT_TABLE_COMPAT,
    protocol: filter.protocol ?? 0,
    scope: 0,
    type: 0,
    flags: 0,
  });
  return [header, formatRouteAttrs(attrs)];
}

/** Request body for `ip route get ADDR`. */
export function encodeRouteGet(dst: string): [Buffer, StreamData] {
  const ip = ipBytes(dst);
  const header = rtmsg({
    family: afOf(ip.family),
    dstLen: ip.family === 4 ? 32 : 128,
    srcLen: 0,
    tos: 0,
    table: 0,
    protocol: 0,
    scope: 0,
    type: 0,
    flags: 0,
  });
  return [header, formatRouteAttrs({ dst: ip.bytes })];
}

/** Decoded route plus the header bits callers of the decoder filter on. */
export interface DecodedRoute {
  route: Route;
  cloned: boolean;
}

/** The route attributes {@link decodeRoute} reads (RTA_DST, RTA_OIF, RTA_GATEWAY, ...). */
const parseRouteAttrs = attributeParser<rt.RouteAttrs>({
  1: (data, obj) => obj.dst = data,
  4: (data, obj) => obj.oif = structs.getU32(data),
  5: (data, obj) => obj.gateway = data,
  6: (data, obj) => obj.priority = structs.getU32(data),
  7: (data, obj) => obj.prefsrc = data,
  15: (data, obj) => obj.table = structs.getU32(data),
});

/** Decodes an RTM_NEWROUTE / RTM_DELROUTE payload; undefined for non-IP families. */
export function decodeRoute(msg: NetlinkMessage): DecodedRoute | undefined {
  const h = parseRtmsg(msg.data);
  if (h.family !== 2 && h.family !== 10) return undefined;
  const family = h.family === 2 ? 4 : 6;
  const attrs = parseRouteAttrs(msg.data.subarray(12));
  const dst = attrs.dst ?? zeroAddress(family);
  const route: Route = {
    dst: `${ipText(dst)}/${h.dstLen}`,
    ...(attrs.gateway ? { gateway: ipText(attrs.gateway) } : {}),
    ...(attrs.oif !== undefined ? { index: attrs.oif } : {}),
    ...((h.flags & RTNH_F_ONLINK) !== 0 ? { onlink: true } : {}),
    table: attrs.table ?? h.table,
    protocol: h.protocol,
    scope: h.scope,
    type: routeTypeNames.get(h.type) ?? h.type,
    metric: attrs.priority ?? 0,
    ...(attrs.prefsrc ? { src: ipText(attrs.prefsrc) } : {}),
  };
  return { route, cloned: (h.flags & RTM_F_CLONED) !== 0 };
}

/**
 * A check of a route message's fixed header (family, prefix length, protocol) against `filter`,
 * so that a dump decodes only the routes that can match: finding the default route among
 * thousands of peer routes reads one byte of each instead of decoding it.
 */
export function routeHeaderFilter(filter: RouteFilter): (data: Uint8Array) => boolean {
  const family = filter.family === undefined ? -1 : afOf(filter.family);
  const dstLen = filter.dst === undefined ? -1 : cidrBytes(filter.dst).prefixLen;
  const protocol = filter.protocol ?? -1;
  return (data) =>
    data.length >= 12 && (family < 0 || data[0] === family) &&
    (dstLen < 0 || data[1] === dstLen) && (protocol < 0 || data[5] === protocol);
}

/** Whether a decoded route passes `filter` (the kernel filters too; this makes it exact). */
export function routeMatches(route: Route, filter: RouteFilter): boolean {
  const table = filter.table ?? RT_TABLE_MAIN;
  if (table !== 0 && route.table !== table) return false;
  if (filter.protocol !== undefined && route.protocol !== filter.protocol) return false;
  if (filter.index !== undefined && route.index !== filter.index) return false;
  if (filter.family !== undefined && route.dst.includes(":") !== (filter.family === 6)) {
    return false;
  }
  if (filter.dst !== undefined) {
    const want = cidrBytes(filter.dst);
    const have = cidrBytes(route.dst);
    if (want.prefixLen !== have.prefixLen || !want.bytes.equals(have.bytes)) return false;
  }
  return true;
}
