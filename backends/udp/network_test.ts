import assert from "node:assert/strict";
import { parseNetworkConfig } from "../../subnet/config.ts";
import type { Lease } from "../../subnet/mod.ts";
import { parseIP4, parseIP4Net } from "../../subnet/ip.ts";
import { createLogger } from "../../util/log.ts";
import { hostileLeases } from "../../test/hostile_leases.ts";
import { applyLeaseEvents, udpLeaseIntake } from "./network.ts";
import type { Peer } from "./peers.ts";

const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}');
const own = lease("10.5.9.0/24", "192.168.1.10");

function lease(subnet: string, publicIP: string, backendType?: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType },
  };
}

/** What UdpNetwork does with each watch result, and the peers it would publish. */
function udpPeers() {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l.trimEnd()) });
  const intake = udpLeaseIntake(config, own, log);
  const peers = new Map<string, Peer>();
  return {
    lines,
    intake,
    peers,
    apply: (result: Parameters<typeof intake.apply>[0]) =>
      applyLeaseEvents(peers, intake.apply(result), 8285, log),
  };
}

Deno.test("the udp intake keeps the peer map, accepts leases without BackendType, skips bad IPs", () => {
  const { lines, peers, apply, intake } = udpPeers();
  apply({
    events: [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.11") },
      { type: "added", lease: lease("10.5.2.0/24", "192.168.1.12", "udp") },
      { type: "added", lease: lease("10.5.3.0/24", "0.0.0.0") },
      { type: "added", lease: lease("10.5.4.0/24", "224.0.0.1") },
    ],
  });
  assert.equal(intake.refused, 2);
  assert.deepEqual([...peers.values()], [
    { net: parseIP4("10.5.1.0"), prefix: 24, publicIP: parseIP4("192.168.1.11"), port: 8285 },
    { net: parseIP4("10.5.2.0"), prefix: 24, publicIP: parseIP4("192.168.1.12"), port: 8285 },
  ]);
  assert.ok(lines.some((l) => l.includes("Subnet added: 10.5.1.0/24 via 192.168.1.11:8285")));
  assert.ok(lines.some((l) => l.includes("for 10.5.3.0/24: PublicIP 0.0.0.0 is unset")));

  apply({
    events: [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.21") },
      { type: "removed", lease: lease("10.5.2.0/24", "192.168.1.12") },
    ],
  });
  assert.deepEqual([...peers.values()].map((p) => p.publicIP), [parseIP4("192.168.1.21")]);
  assert.ok(lines.some((l) => l.includes("Subnet removed: 10.5.2.0/24")));
});

Deno.test("the udp intake publishes no hostile lease and logs each once", async (t) => {
  const good = lease("10.5.2.0/24", "192.168.1.12");
  const table = hostileLeases({ good, own, network: config.network!, otherType: "vxlan" });
  for (const c of table) {
    await t.step(c.name, () => {
      const { lines, peers, apply } = udpPeers();
      apply({ snapshot: [c.lease] });
      apply({ snapshot: [c.lease] }); // a re-list
      apply({ events: [{ type: "added", lease: c.lease }] }); // the same lease again
      assert.deepEqual([...peers.values()], []);
      const warnings = lines.filter((l) => /^[WE]\d/.test(l));
      assert.equal(warnings.length, 1, warnings.join("\n").slice(0, 2000));
      assert.ok(warnings[0].includes(`] Ignoring the lease of ${c.lease.source} for `));
      assert.match(warnings[0], c.reason);
      assert.ok(warnings[0].length < 600, `${warnings[0].length} characters`);
    });
  }
});
