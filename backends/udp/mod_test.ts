import assert from "node:assert/strict";
import createUdpBackend, { DEFAULT_PORT, parsePort } from "./mod.ts";
import type { BackendDeps } from "../mod.ts";
import { parseNetworkConfig } from "../../subnet/config.ts";

Deno.test("parsePort() reads Backend.Port case-insensitively with flannel's default", async (t) => {
  const ok: [string, Record<string, unknown>, number][] = [
    ["absent", {}, DEFAULT_PORT],
    ["Port", { Type: "udp", Port: 9000 }, 9000],
    ["port (lower case)", { port: 8000 }, 8000],
    ["zero means default", { Port: 0 }, DEFAULT_PORT],
  ];
  for (const [name, backend, want] of ok) {
    await t.step(name, () => assert.equal(parsePort(backend), want));
  }
  for (const bad of ["8285", 70000, 1.5, -1]) {
    await t.step(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parsePort({ Port: bad }), /Invalid udp backend "Port"/);
    });
  }
});

Deno.test("udp registerNetwork() refuses EnableIPv6 with one error naming the fix", async () => {
  const config = parseNetworkConfig(
    '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"udp"}}',
  );
  const backend = createUdpBackend(
    { extIface: { name: "eth0", index: 2, mtu: 1500 } } as BackendDeps,
  );
  await assert.rejects(
    () => backend.registerNetwork(config),
    /udp backend carries IPv4 only, as flannel's: remove "EnableIPv6" .*"vxlan"/,
  );
});
