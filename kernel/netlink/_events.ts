/**
 * Change notifications (`ip monitor`) on a socket of their own. Lost notifications (ENOBUFS
 * when the consumer falls behind the kernel, or a message this layer cannot parse) become one
 * `resync` event: the caller then reconciles from a fresh dump.
 */
import {
  decodeMessages,
  type NetlinkMessage,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
} from "./_codec.ts";
import { decodeAddress } from "./_addr.ts";
import { decodeLink } from "./_link.ts";
import { decodeNeigh } from "./_neigh.ts";
import { decodeRoute } from "./_route.ts";
import type { OpenSocketOptions, PacketSocket } from "./_socket.ts";
import { NetlinkError } from "./errors.ts";
import type { EventGroup, KernelEvent, SubscribeOptions } from "./types.ts";

const ENOBUFS = 105;
const DEFAULT_RECEIVE_BUFFER = 4 << 20;

/** RTNLGRP_* numbers. */
const groupNumbers: Record<EventGroup, number> = {
  "link": 1,
  "neigh": 3,
  "ipv4-address": 5,
  "ipv4-route": 7,
  "ipv6-address": 9,
  "ipv6-route": 11,
};

/** The bind() multicast bitmask for `groups`. */
export function groupMask(groups: readonly EventGroup[]): number {
  let mask = 0;
  for (const g of groups) {
    const n = groupNumbers[g];
    if (n === undefined) throw new TypeError(`Cannot subscribe to unknown event group "${g}"`);
    mask |= 1 << (n - 1);
  }
  return mask >>> 0;
}

/** Decodes one notification; undefined for messages of no interest (e.g. cloned routes). */
export function decodeEvent(msg: NetlinkMessage): KernelEvent | undefined {
  switch (msg.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return { kind: "link", op: msg.type === RTM_NEWLINK ? "new" : "del", link: decodeLink(msg) };
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const address = decodeAddress(msg);
      return address && { kind: "address", op: msg.type === RTM_NEWADDR ? "new" : "del", address };
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const r = decodeRoute(msg);
      if (!r || r.cloned) return undefined;
      return { kind: "route", op: msg.type === RTM_NEWROUTE ? "new" : "del", route: r.route };
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const op = msg.type === RTM_NEWNEIGH ? "new" : "del";
      const n = decodeNeigh(msg);
      if (!n) return undefined;
      return n.kind === "fdb"
        ? { kind: "fdb", op, fdb: n.fdb }
        : { kind: "neigh", op, neigh: n.neigh };
    }
    default:
      return undefined;
  }
}

const RESYNC: KernelEvent = { kind: "resync" };

async function* readEvents(
  socket: PacketSocket,
  signal: AbortSignal | undefined,
): AsyncGenerator<KernelEvent> {
  const onAbort = () => socket.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!signal?.aborted) {
      let datagram: Uint8Array | undefined;
      try {
        datagram = await socket.receive();
      } catch (err) {
        if (err instanceof NetlinkError && err.errno === ENOBUFS) {
          yield RESYNC;
          continue;
        }
        throw err;
      }
      if (!datagram) return;
      const events: KernelEvent[] = [];
      let lost = false;
      try {
        for (const msg of decodeMessages(datagram)) {
          const ev = decodeEvent(msg);
          if (ev) events.push(ev);
        }
      } catch {
        lost = true;
      }
      yield* events;
      if (lost) yield RESYNC;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    socket.close();
  }
}

/**
 * Opens a notification socket bound to `groups` now (so nothing between this call and the first
 * `next()` is missed) and returns its events; one iteration per call.
 */
export function subscribeEvents(
  groups: readonly EventGroup[],
  options: SubscribeOptions,
  open: (o: OpenSocketOptions) => PacketSocket,
): AsyncIterable<KernelEvent> {
  const socket = open({
    groups: groupMask(groups),
    receiveBufferSize: options.receiveBufferSize ?? DEFAULT_RECEIVE_BUFFER,
  });
  if (options.signal?.aborted) socket.close();
  let iterated = false;
  return {
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error("Cannot iterate a netlink subscription twice");
      iterated = true;
      return readEvents(socket, options.signal);
    },
  };
}
