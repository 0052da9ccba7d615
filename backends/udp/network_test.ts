import assert from "node:assert/strict";
import type { Lease } from "../../subnet/mod.ts";
import { parseIP4, parseIP4Net } from "../../subnet/ip.ts";
import { createLogger } from "../../util/log.ts";
import { applyLeaseEvents, badPublicIP } from "./network.ts";
import type { Peer } from "./peers.ts";

function lease(subnet: string, publicIP: string, backendType?: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType },
  };
}

Deno.test("applyLeaseEvents() keeps the peer map, accepts leases without BackendType, skips bad IPs", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  const peers = new Map<string, Peer>();
  const bad = applyLeaseEvents(
    peers,
    [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.11") },
      { type: "added", lease: lease("10.5.2.0/24", "192.168.1.12", "udp") },
      { type: "added", lease: lease("10.5.3.0/24", "0.0.0.0") },
      { type: "added", lease: lease("10.5.4.0/24", "224.0.0.1") },
    ],
    8285,
    log,
  );
  assert.equal(bad, 2);
  assert.deepEqual([...peers.values()], [
    { net: parseIP4("10.5.1.0"), prefix: 24, publicIP: parseIP4("192.168.1.11"), port: 8285 },
    { net: parseIP4("10.5.2.0"), prefix: 24, publicIP: parseIP4("192.168.1.12"), port: 8285 },
  ]);
  assert.ok(lines.some((l) => l.includes("Subnet added: 10.5.1.0/24 via 192.168.1.11:8285")));
  assert.ok(lines.some((l) => l.includes("Ignoring subnet 10.5.3.0/24: its PublicIP 0.0.0.0")));

  applyLeaseEvents(
    peers,
    [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.21") },
      { type: "removed", lease: lease("10.5.2.0/24", "192.168.1.12") },
    ],
    8285,
    log,
  );
  assert.deepEqual([...peers.values()].map((p) => p.publicIP), [parseIP4("192.168.1.21")]);
  assert.ok(lines.some((l) => l.includes("Subnet removed: 10.5.2.0/24")));
});

Deno.test("badPublicIP() refuses addresses that cannot carry unicast traffic", async (t) => {
  const cases: [string, boolean][] = [
    ["192.168.1.1", false],
    ["10.0.0.1", false],
    ["0.0.0.0", true],
    ["0.1.2.3", true],
    ["127.0.0.1", true],
    ["239.1.1.1", true],
    ["255.255.255.255", true],
  ];
  for (const [text, isBad] of cases) {
    await t.step(text, () => assert.equal(badPublicIP(parseIP4(text)) !== undefined, isBad));
  }
});
