import assert from "node:assert/strict";
import { parseNetworkConfig } from "../../subnet/config.ts";
import type { Lease, LeaseWatchResult } from "../../subnet/mod.ts";
import { parseIP4, parseIP4Net } from "../../subnet/ip.ts";
import { createLogger } from "../../util/log.ts";
import { unservedMetrics } from "../../util/metrics.ts";
import { eventually } from "../../test/eventually.ts";
import { FakeNetlink } from "../../test/fakes/netlink.ts";
import { FakeSubnetManager } from "../../test/fakes/subnet_manager.ts";
import { hostileLeases } from "../../test/hostile_leases.ts";
import { ROUTE_PROTOCOL } from "../mod.ts";
import { ReconcileLoop } from "../reconcile_loop.ts";
import { udpLeaseIntake, UdpPeerPolicy } from "./network.ts";
import { type Peer, PeerIndex, PeerTable } from "./peers.ts";

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

/** UdpNetwork without its data path: the loop with the peer policy, on a fake host. */
async function udpPeers(reconcileIntervalMs = 60_000) {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l.trimEnd()) });
  const netlink = new FakeNetlink();
  const flannel0 = netlink.seedLink("flannel0", { mtu: 1472, addresses: ["10.5.9.0/32"] });
  const route = { dst: "10.5.0.0/16", index: flannel0.index, scope: 0, protocol: ROUTE_PROTOCOL };
  await netlink.routeReplace(route); // as registerNetwork leaves it
  const manager = new FakeSubnetManager(config, own);
  const table = new PeerTable(8);
  const intake = udpLeaseIntake(config, own, log);
  let passes = 0;
  const loop = new ReconcileLoop<Peer>({
    manager,
    intake,
    netlink,
    log,
    metrics: unservedMetrics(),
    lease: own,
    mtu: 1472,
    policy: new UdpPeerPolicy({ netlink, log, table, port: 8285, route, device: "flannel0" }),
    reconcileIntervalMs,
    onReconciled: () => passes++,
  });
  const abort = new AbortController();
  const running = loop.run({ signal: abort.signal });
  const index = new PeerIndex(table.buffer);
  return {
    lines,
    intake,
    netlink,
    route,
    /** The peers the data path would see. */
    peers: () => [...loop.desired.values()],
    /** Which peer the published table routes `dst` to. */
    routed: (dst: string) => (index.refresh(), index.route(parseIP4(dst))),
    /** Pushes a watch result and waits for the pass it causes. */
    apply: async (result: LeaseWatchResult) => {
      const target = passes + 1;
      manager.push(result);
      await eventually(() => passes >= target, 2000, "a reconcile pass", 2);
    },
    async [Symbol.asyncDispose]() {
      abort.abort();
      await running;
    },
  };
}

Deno.test("the udp peer table takes leases without BackendType and skips bad IPs", async () => {
  await using u = await udpPeers();
  const { lines, peers, apply, intake } = u;
  await apply({
    events: [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.11") },
      { type: "added", lease: lease("10.5.2.0/24", "192.168.1.12", "udp") },
      { type: "added", lease: lease("10.5.3.0/24", "0.0.0.0") },
      { type: "added", lease: lease("10.5.4.0/24", "224.0.0.1") },
    ],
  });
  assert.equal(intake.refused, 2);
  const a = {
    net: parseIP4("10.5.1.0"),
    prefix: 24,
    publicIP: parseIP4("192.168.1.11"),
    port: 8285,
  };
  const b = {
    net: parseIP4("10.5.2.0"),
    prefix: 24,
    publicIP: parseIP4("192.168.1.12"),
    port: 8285,
  };
  assert.deepEqual(peers(), [a, b]);
  assert.deepEqual(u.routed("10.5.2.7"), b, "published to the data path");
  assert.equal(u.routed("10.5.3.7"), undefined);
  assert.ok(lines.some((l) => l.includes("Subnet added: 10.5.1.0/24 via 192.168.1.11:8285")));
  assert.ok(lines.some((l) => l.includes("for 10.5.3.0/24: PublicIP 0.0.0.0 is unset")));

  await apply({
    events: [
      { type: "added", lease: lease("10.5.1.0/24", "192.168.1.21") },
      { type: "removed", lease: lease("10.5.2.0/24", "192.168.1.12") },
    ],
  });
  assert.deepEqual(peers().map((p) => p.publicIP), [parseIP4("192.168.1.21")]);
  assert.equal(u.routed("10.5.2.7"), undefined, "the removed peer is unpublished");
  assert.ok(lines.some((l) => l.includes("Subnet removed: 10.5.2.0/24")));
});

Deno.test("the udp sweep puts the overlay route back and leaves it alone otherwise", async () => {
  await using u = await udpPeers(20);
  await u.apply({ snapshot: [lease("10.5.1.0/24", "192.168.1.11")] });
  assert.ok(!u.lines.some((l) => l.includes("restored")), "the route was in place");
  await u.netlink.external.routeDelete(u.route);
  await eventually(
    async () => (await u.netlink.routes({ dst: "10.5.0.0/16" })).length === 1,
    2000,
    "route back",
    2,
  );
  assert.ok(u.lines.some((l) => l.endsWith("Route 10.5.0.0/16 dev flannel0 restored")));
});

Deno.test("the udp intake publishes no hostile lease and logs each once", async (t) => {
  const good = lease("10.5.2.0/24", "192.168.1.12");
  const table = hostileLeases({ good, own, network: config.network!, otherType: "vxlan" });
  for (const c of table) {
    await t.step(c.name, async () => {
      await using u = await udpPeers();
      const { lines, peers, apply } = u;
      await apply({ snapshot: [c.lease] });
      await apply({ snapshot: [c.lease] }); // a re-list
      await apply({ events: [{ type: "added", lease: c.lease }] }); // the same lease again
      assert.deepEqual(peers(), []);
      const warnings = lines.filter((l) => /^[WE]\d/.test(l));
      assert.equal(warnings.length, 1, warnings.join("\n").slice(0, 2000));
      assert.ok(warnings[0].includes(`] Ignoring the lease of ${c.lease.source} for `));
      assert.match(warnings[0], c.reason);
      assert.ok(warnings[0].length < 600, `${warnings[0].length} characters`);
    });
  }
});
