import assert from "node:assert/strict";
import { Buffer, RTM_DELROUTE, RTM_NEWNEIGH, RTM_NEWROUTE, streamBytes } from "./_codec.ts";
import { groupMask, subscribeEvents } from "./_events.ts";
import { encodeFdb } from "./_neigh.ts";
import { encodeRoute } from "./_route.ts";
import { kernelMessage, ScriptedSocket } from "../../test/fakes/scripted_socket.ts";
import type { OpenSocketOptions } from "./_socket.ts";
import { errnoError } from "./errors.ts";
import type { KernelEvent } from "./types.ts";

function payload([fixed, attrs]: [Uint8Array, unknown]): Uint8Array {
  return Buffer.concat([fixed, streamBytes(attrs as Uint8Array)]);
}

Deno.test("groupMask() sets bit group-1 per RTNLGRP", () => {
  assert.equal(groupMask(["link"]), 0x1);
  assert.equal(groupMask(["ipv4-route", "ipv6-route", "neigh"]), (1 << 6) | (1 << 10) | (1 << 2));
  assert.throws(() => groupMask(["nope" as "link"]), /unknown event group "nope"/);
});

Deno.test("subscribeEvents() decodes notifications, turns ENOBUFS into resync, ends on abort", async () => {
  const sock = new ScriptedSocket(() => []);
  let opened: OpenSocketOptions | undefined;
  const ac = new AbortController();
  const events = subscribeEvents(["ipv4-route", "neigh"], { signal: ac.signal }, (o) => {
    opened = o;
    return sock;
  });
  assert.equal(opened?.groups, (1 << 6) | (1 << 2), "bound when subscribe() returns");
  const route = { dst: "10.5.3.0/24", gateway: "10.5.3.0", index: 4, onlink: true, protocol: 77 };
  sock.push(
    Buffer.concat([
      kernelMessage(RTM_NEWROUTE, 0, 0, payload(encodeRoute(route, "set"))),
      kernelMessage(RTM_DELROUTE, 0, 0, payload(encodeRoute(route, "set"))),
    ]),
    errnoError("Cannot receive", 105),
    kernelMessage(
      RTM_NEWNEIGH,
      0,
      0,
      payload(encodeFdb({ index: 4, mac: "0A:00:00:00:00:01", dst: "192.168.1.2" }, "set")),
    ),
    Buffer.from([1, 2, 3]), // garbage: unparseable → resync
  );
  const seen: KernelEvent[] = [];
  for await (const ev of events) {
    seen.push(ev);
    if (seen.length === 5) ac.abort();
  }
  assert.equal(sock.closed, true);
  const want = {
    ...route,
    table: 254,
    scope: 0,
    type: "unicast",
    metric: 0,
  };
  assert.deepEqual(seen, [
    { kind: "route", op: "new", route: want },
    { kind: "route", op: "del", route: want },
    { kind: "resync" },
    {
      kind: "fdb",
      op: "new",
      fdb: { index: 4, mac: "0a:00:00:00:00:01", dst: "192.168.1.2", state: 0x80 },
    },
    { kind: "resync" },
  ]);
});

Deno.test("subscribeEvents() with an aborted signal yields nothing and closes the socket", async () => {
  const sock = new ScriptedSocket(() => []);
  const events = subscribeEvents(["link"], { signal: AbortSignal.abort() }, () => sock);
  assert.equal(sock.closed, true);
  for await (const _ of events) assert.fail("no events expected");
});
