import assert from "node:assert/strict";
import { Buffer, decodeMessages, parseRtmsg, rt, RTM_NEWROUTE, streamBytes } from "./_codec.ts";
import {
  decodeRoute,
  encodeRoute,
  encodeRouteDump,
  routeHeaderFilter,
  routeMatches,
} from "./_route.ts";
import { kernelMessage } from "../../test/fakes/scripted_socket.ts";
import type { Route } from "./types.ts";

function roundTrip(r: Route): Route {
  const [fixed, attrs] = encodeRoute(r, "set");
  const bytes = kernelMessage(RTM_NEWROUTE, 0, 1, Buffer.concat([fixed, streamBytes(attrs)]));
  return decodeRoute(decodeMessages(bytes)[0])!.route;
}

Deno.test("encodeRoute() applies `ip route` defaults and round-trips through decodeRoute()", async (t) => {
  await t.step("gateway route: proto boot, scope global, main table", () => {
    const [h] = encodeRoute({ dst: "10.5.0.0/16", gateway: "192.168.1.2", index: 3 }, "set");
    const m = parseRtmsg(h);
    assert.deepEqual([m.family, m.dstLen, m.protocol, m.scope, m.type, m.table], [
      2,
      16,
      3,
      0,
      1,
      254,
    ]);
  });
  await t.step("device route gets scope link", () => {
    assert.equal(parseRtmsg(encodeRoute({ dst: "10.5.0.0/16", index: 3 }, "set")[0]).scope, 253);
  });
  await t.step("onlink gateway keeps scope global and sets RTNH_F_ONLINK", () => {
    const m = parseRtmsg(
      encodeRoute({ dst: "10.5.3.0/24", gateway: "10.5.3.0", index: 3, onlink: true }, "set")[0],
    );
    assert.deepEqual([m.scope, m.flags], [0, 4]);
  });
  await t.step("delete leaves scope, protocol and type as wildcards", () => {
    const m = parseRtmsg(encodeRoute({ dst: "10.5.0.0/16" }, "delete")[0]);
    assert.deepEqual([m.scope, m.protocol, m.type], [255, 0, 0]);
  });
  await t.step("table above 255 goes in RTA_TABLE with RT_TABLE_COMPAT in the header", () => {
    const [h, attrs] = encodeRoute({ dst: "10.5.0.0/16", index: 3, table: 1000 }, "set");
    assert.equal(parseRtmsg(h).table, 252);
    assert.equal(rt.parseRouteAttrs(streamBytes(attrs)).table, 1000);
  });
  await t.step("round trips", () => {
    const cases: Route[] = [
      { dst: "10.5.3.0/24", gateway: "10.5.3.0", index: 7, onlink: true, protocol: 77 },
      { dst: "0.0.0.0/0", gateway: "192.168.1.1", index: 2 },
      { dst: "fd00:5::/64", gateway: "fd00::2", index: 2, metric: 1024, table: 1000 },
      { dst: "10.9.0.0/16", type: "blackhole", protocol: 77 },
      { dst: "10.9.1.0/24", index: 2, src: "10.9.1.1", scope: 253 },
    ];
    for (const r of cases) {
      const back = roundTrip(r);
      for (const [k, v] of Object.entries(r)) {
        assert.deepEqual(back[k as keyof Route], v, `${k} of ${r.dst}`);
      }
    }
    assert.equal(roundTrip({ dst: "10.7.7.7", index: 1 }).dst, "10.7.7.7/32");
  });
  await t.step("rejects a gateway of the other family and bad prefixes", () => {
    assert.throws(
      () => encodeRoute({ dst: "10.0.0.0/8", gateway: "fd00::1" }, "set"),
      /family differs/,
    );
    assert.throws(
      () => encodeRoute({ dst: "10.0.0.0/33" }, "set"),
      /prefix length must be 0\.\.32/,
    );
    assert.throws(
      () => encodeRoute({ dst: "10.0.0/8" }, "set"),
      /Cannot parse IP address "10\.0\.0"/,
    );
  });
});

Deno.test("encodeRouteDump() asks the kernel to filter by table, protocol and device", () => {
  const [h, attrs] = encodeRouteDump({ protocol: 77, index: 5, family: 4 });
  const m = parseRtmsg(h);
  assert.deepEqual([m.family, m.protocol, m.table, m.scope, m.dstLen], [2, 77, 254, 0, 0]);
  assert.deepEqual(rt.parseRouteAttrs(streamBytes(attrs)), { table: 254, oif: 5 });
  const all = encodeRouteDump({ table: 0 });
  assert.equal(parseRtmsg(all[0]).table, 0);
  assert.deepEqual(streamBytes(all[1]), Buffer.alloc(0));
});

Deno.test("routeMatches() applies every filter field", () => {
  const r: Route = { dst: "10.5.3.0/24", index: 4, table: 254, protocol: 77 };
  assert.ok(routeMatches(r, {}));
  assert.ok(routeMatches(r, { table: 0, protocol: 77, index: 4, family: 4, dst: "10.5.3.0/24" }));
  assert.ok(!routeMatches(r, { table: 100 }));
  assert.ok(!routeMatches(r, { protocol: 3 }));
  assert.ok(!routeMatches(r, { index: 5 }));
  assert.ok(!routeMatches(r, { family: 6 }));
  assert.ok(!routeMatches(r, { dst: "10.5.3.0/25" }));
});

Deno.test("routeHeaderFilter() passes exactly the messages whose header fits family, length and protocol", () => {
  const header = (r: Route) => encodeRoute(r, "set")[0];
  const peer = header({ dst: "10.5.3.0/24", gateway: "192.168.1.2", protocol: 101 });
  const deflt = header({ dst: "0.0.0.0/0", gateway: "192.168.1.1", protocol: 3 });
  const v6 = header({ dst: "::/0", gateway: "fe80::1", index: 2, protocol: 3 });
  const any = routeHeaderFilter({});
  assert.ok(any(peer) && any(deflt) && any(v6));
  const default4 = routeHeaderFilter({ family: 4, dst: "0.0.0.0/0" });
  assert.deepEqual([default4(peer), default4(deflt), default4(v6)], [false, true, false]);
  const ours = routeHeaderFilter({ protocol: 101 });
  assert.deepEqual([ours(peer), ours(deflt), ours(v6)], [true, false, false]);
  assert.equal(routeHeaderFilter({ family: 6, dst: "::/0" })(v6), true);
  assert.equal(any(new Uint8Array(4)), false, "a truncated header never passes");
});

Deno.test("the route attribute tables made once write and read exactly what npm:netlink's own do", () => {
  const attrs: rt.RouteAttrs = {
    table: 254,
    dst: Buffer.from([10, 5, 3, 0]),
    gateway: Buffer.from([192, 168, 1, 2]),
    oif: 7,
    priority: 100,
    prefsrc: Buffer.from([192, 168, 1, 10]),
  };
  const [fixed, ours] = encodeRoute({
    dst: "10.5.3.0/24",
    gateway: "192.168.1.2",
    index: 7,
    metric: 100,
    src: "192.168.1.10",
  }, "set");
  assert.deepEqual(streamBytes(ours), streamBytes(rt.formatRouteAttrs(attrs)));
  const bytes = kernelMessage(RTM_NEWROUTE, 0, 1, Buffer.concat([fixed, streamBytes(ours)]));
  const msg = decodeMessages(bytes)[0];
  const theirs = rt.parseRouteAttrs(msg.data.subarray(12));
  assert.deepEqual(decodeRoute(msg)!.route, {
    dst: "10.5.3.0/24",
    gateway: "192.168.1.2",
    index: theirs.oif,
    table: theirs.table,
    protocol: 3,
    scope: 0,
    type: "unicast",
    metric: theirs.priority,
    src: "192.168.1.10",
  });
});
