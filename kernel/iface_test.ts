import assert from "node:assert/strict";
import { defaultRouteInterface4, defaultRouteInterface6, hostInterfaces } from "./iface.ts";

Deno.test("defaultRouteInterface4() finds the 0.0.0.0/0 route in /proc/net/route", () => {
  const text = [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
  ].join("\n");
  assert.equal(defaultRouteInterface4(text), "eth0");
  assert.equal(defaultRouteInterface4(text.split("\n").slice(0, 2).join("\n")), undefined);
});

Deno.test("defaultRouteInterface6() finds ::/0 and skips lo", () => {
  const z = "0".repeat(32);
  const text = [
    `${z} 00 ${z} 00 ${z} ffffffff 00000001 00000000 00200200       lo`,
    `${z} 00 ${z} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0`,
  ].join("\n");
  assert.equal(defaultRouteInterface6(text), "eth0");
});

Deno.test("hostInterfaces() lists loopback with index and MTU", async () => {
  const lo = (await hostInterfaces()).find((i) => i.name === "lo");
  assert.ok(lo, "lo is listed");
  assert.ok(lo.index >= 1);
  assert.ok(lo.mtu > 0);
  assert.ok(lo.ipv4.includes("127.0.0.1"));
});
