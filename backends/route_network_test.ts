import assert from "node:assert/strict";
import { ROUTE_PROTOCOL } from "./mod.ts";
import { RouteNetwork } from "./route_network.ts";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import { FakeSubnetManager } from "../test/fakes/subnet_manager.ts";
import { formatIP4, formatIP4Net, parseIP4, parseIP4Net } from "../subnet/ip.ts";
import type { Lease } from "../subnet/mod.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { unservedMetrics } from "../util/metrics.ts";
import { hostileLeases } from "../test/hostile_leases.ts";
import { recordingLogger } from "../test/recording_logger.ts";
import { eventually } from "../test/eventually.ts";

const config = parseNetworkConfig('{"Network":"10.100.0.0/16","Backend":{"Type":"host-gw"}}');

function lease(subnet: string, publicIP: string, backendType = "host-gw"): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType },
  };
}

function setup(reconcileIntervalMs = 60_000, eventQueueLimit?: number) {
  const netlink = new FakeNetlink({ eventQueueLimit });
  const eth0 = netlink.seedLink("eth0", { mtu: 1500, addresses: ["192.168.1.10/24"] });
  const own = lease("10.100.1.0/24", "192.168.1.10");
  const manager = new FakeSubnetManager(config, own);
  const log = recordingLogger();
  let passes = 0;
  const network = new RouteNetwork({
    manager,
    netlink,
    log,
    metrics: unservedMetrics(),
    config,
    backendType: "host-gw",
    lease: own,
    mtu: 1500,
    reconcileIntervalMs,
    routeFor: (l) => ({
      dst: formatIP4Net(l.subnet),
      gateway: formatIP4(l.attrs.publicIP),
      index: eth0.index,
    }),
    onReconciled: () => passes++,
  });
  const abort = new AbortController();
  const running = network.run({ signal: abort.signal });
  /** Waits until at least `n` more reconcile passes have run. */
  const passesAfter = (n: number) => {
    const target = passes + n;
    return eventually(
      () => passes >= target,
      3000,
      () => `reconcile passes (${passes}/${target})`,
      2,
    );
  };
  const routes = async () =>
    (await netlink.routes({ family: 4, protocol: ROUTE_PROTOCOL }))
      .map((r) => `${r.dst} via ${r.gateway}`).sort();
  return {
    netlink,
    manager,
    network,
    eth0,
    log,
    passesAfter,
    routes,
    async [Symbol.asyncDispose]() {
      abort.abort();
      await running;
    },
  };
}

Deno.test("RouteNetwork installs a route per peer lease and removes it with the lease", async () => {
  await using s = setup();
  s.manager.push({
    snapshot: [lease("10.100.2.0/24", "192.168.1.11"), lease("10.100.3.0/24", "192.168.1.12")],
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), [
    "10.100.2.0/24 via 192.168.1.11",
    "10.100.3.0/24 via 192.168.1.12",
  ]);

  s.manager.push({ events: [{ type: "removed", lease: lease("10.100.2.0/24", "0.0.0.0") }] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.3.0/24 via 192.168.1.12"]);
});

Deno.test("RouteNetwork replaces a route whose gateway changed (one route, new gateway)", async () => {
  await using s = setup();
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  s.manager.push({ events: [{ type: "added", lease: lease("10.100.2.0/24", "192.168.1.99") }] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.99"]);
});

Deno.test("RouteNetwork ignores leases of other backends and never routes its own", async () => {
  await using s = setup();
  s.manager.push({
    snapshot: [
      lease("10.100.1.0/24", "192.168.1.10"),
      lease("10.100.4.0/24", "192.168.1.13", "vxlan"),
    ],
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), []);
  assert.ok(
    s.log.lines.includes(
      'W Ignoring the lease for 10.100.4.0/24: it is a non-host-gw subnet (type="vxlan")',
    ),
    s.log.lines.join("\n"),
  );
});

Deno.test("RouteNetwork removes stale routes of a previous run but never foreign ones", async () => {
  await using s = setup();
  const eth0 = s.eth0.index;
  await s.netlink.external.routeReplace({
    dst: "10.100.9.0/24",
    gateway: "192.168.1.50",
    index: eth0,
    protocol: ROUTE_PROTOCOL,
  });
  await s.netlink.external.routeReplace({
    dst: "10.100.8.0/24",
    gateway: "192.168.1.51",
    index: eth0,
  });
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  const all = (await s.netlink.routes({ family: 4 })).map((r) => r.dst);
  assert.ok(all.includes("10.100.8.0/24"), "a route we did not create is left alone");
});

Deno.test("RouteNetwork restores a route deleted behind its back without waiting for the timer", async () => {
  await using s = setup(60_000);
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  await s.netlink.external.routeDelete({
    dst: "10.100.2.0/24",
    gateway: "192.168.1.11",
    index: s.eth0.index,
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  assert.ok(s.log.lines.some((l) => l.includes("deleted by someone else")));
});

Deno.test("RouteNetwork corrects a route changed behind its back", async () => {
  await using s = setup(60_000);
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  await s.netlink.external.routeReplace({
    dst: "10.100.2.0/24",
    gateway: "192.168.1.77",
    index: s.eth0.index,
    protocol: ROUTE_PROTOCOL,
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
});

Deno.test("RouteNetwork reconciles everything after a lost-notification resync", async () => {
  // Queue limit 0: every notification overflows, so the network only ever sees "resync".
  await using s = setup(60_000, 0);
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  await s.netlink.external.routeDelete({
    dst: "10.100.2.0/24",
    gateway: "192.168.1.11",
    index: s.eth0.index,
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  assert.ok(!s.log.lines.some((l) => l.includes("deleted by someone else")), "no route event seen");
});

Deno.test("RouteNetwork re-adds missing routes on its timer", async () => {
  await using s = setup(30);
  s.manager.push({ snapshot: [lease("10.100.2.0/24", "192.168.1.11")] });
  await s.passesAfter(1);
  s.netlink.failNext("routeReplace", 101, 1); // ENETUNREACH once
  s.manager.push({ events: [{ type: "added", lease: lease("10.100.3.0/24", "192.168.1.12") }] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  assert.ok(s.log.lines.some((l) => l.startsWith("E Failed to add route 10.100.3.0/24")));
  await s.passesAfter(2);
  assert.deepEqual(await s.routes(), [
    "10.100.2.0/24 via 192.168.1.11",
    "10.100.3.0/24 via 192.168.1.12",
  ]);
});

Deno.test("RouteNetwork keeps serving the other peers when one route cannot be installed", async () => {
  await using s = setup();
  // 10.0.0.1 is not on-link: the kernel (and the fake) refuse the gateway.
  s.manager.push({
    snapshot: [lease("10.100.2.0/24", "10.0.0.1"), lease("10.100.3.0/24", "192.168.1.12")],
  });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.3.0/24 via 192.168.1.12"]);
  const errors = s.log.lines.filter((l) =>
    l.startsWith("E Failed to add route 10.100.2.0/24 via 10.0.0.1")
  );
  assert.equal(errors.length, 1);
});

Deno.test("RouteNetwork programs no hostile lease and logs each once", async (t) => {
  const good = lease("10.100.2.0/24", "192.168.1.11");
  const own = lease("10.100.1.0/24", "192.168.1.10");
  const table = hostileLeases({ good, own, network: config.network!, otherType: "vxlan" });
  for (const c of table) {
    await t.step(c.name, async () => {
      await using s = setup();
      s.manager.push({ snapshot: [c.lease] });
      await s.passesAfter(1);
      // The periodic sweep and a re-list change nothing and log nothing more.
      await s.network.reconcile();
      await s.network.reconcile();
      s.manager.push({ snapshot: [c.lease] });
      await s.passesAfter(1);
      assert.deepEqual(await s.routes(), []);
      assert.deepEqual([...s.network.desired.values()], []);
      const warnings = s.log.lines.filter((l) => /^[WE] /.test(l));
      assert.equal(warnings.length, 1, warnings.join("\n").slice(0, 2000));
      assert.ok(warnings[0].startsWith(`W Ignoring the lease of ${c.lease.source} for `));
      assert.match(warnings[0], c.reason);
      assert.ok(warnings[0].length < 600, `${warnings[0].length} characters`);
    });
  }
});

Deno.test("RouteNetwork removes the route of a lease that turns bad and adds it back when fixed", async () => {
  await using s = setup();
  const good = lease("10.100.2.0/24", "192.168.1.11");
  s.manager.push({ snapshot: [good] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  const bad = lease("10.100.2.0/24", "0.0.0.0");
  s.manager.push({ events: [{ type: "added", lease: bad }] });
  await s.passesAfter(1);
  assert.deepEqual(await s.routes(), [], "the route of the now unusable lease is gone");
  s.manager.push({ events: [{ type: "added", lease: bad }] });
  s.manager.push({ events: [{ type: "added", lease: lease("10.100.2.0/24", "127.0.0.1") }] });
  s.manager.push({ events: [{ type: "added", lease: good }] });
  await s.passesAfter(3);
  assert.deepEqual(await s.routes(), ["10.100.2.0/24 via 192.168.1.11"]);
  const warnings = s.log.lines.filter((l) => l.startsWith("W "));
  assert.deepEqual(warnings, [
    "W Ignoring the lease for 10.100.2.0/24: PublicIP 0.0.0.0 is unset (0.0.0.0)",
    "W Ignoring the lease for 10.100.2.0/24: PublicIP 127.0.0.1 is a loopback address",
  ]);
  assert.ok(!s.log.lines.some((l) => l.includes("corrected")), "no periodic rewrite");
});
