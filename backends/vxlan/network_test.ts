import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { encodeLeaseAttrs } from "../../subnet/lease_attrs.ts";
import { parseNetworkConfig } from "../../subnet/config.ts";
import { parseIP4Net, parseIP6, parseIP6Net } from "../../subnet/ip.ts";
import type { Lease, NetworkConfig } from "../../subnet/mod.ts";
import { FakeSubnetManager } from "../../test/fakes/subnet_manager.ts";
import { ROUTE_PROTOCOL } from "../mod.ts";
import createVxlanBackend, { registerVxlanNetwork, type VxlanNetworks } from "./mod.ts";
import { HOSTILE_VXLAN_DATA, hostileLeases } from "../../test/hostile_leases.ts";
import {
  data,
  peerLease,
  until,
  vxlanConfig,
  type World,
  world,
} from "../../test/vxlan_fixtures.ts";

/** `world()` with eth0 also on fd00:1::10/64 and an own lease with an IPv6 subnet. */
async function dualWorld(config: NetworkConfig): Promise<World> {
  const w = await world(config);
  await w.nl.external.addressAdd({ index: w.eth0, address: "fd00:1::10/64" });
  const own: Lease = {
    enableIPv4: config.enableIPv4,
    enableIPv6: true,
    subnet: parseIP4Net(config.enableIPv4 ? "10.244.1.0/24" : "0.0.0.0/0"),
    ipv6Subnet: parseIP6Net("fd00:244:0:1::/64"),
    attrs: { publicIP: 0 },
  };
  const manager = new FakeSubnetManager(config, own);
  const extIface = {
    ...w.deps.extIface,
    ifaceV6Addr: parseIP6("fd00:1::10"),
    extV6Addr: parseIP6("fd00:1::10"),
  };
  return { ...w, manager, deps: { ...w.deps, subnetManager: manager, extIface } };
}

const MAC_A = "aa:aa:aa:aa:aa:01";
const MAC_B = "aa:aa:aa:aa:aa:02";
const MAC_C = "aa:aa:aa:aa:aa:03";

interface Running extends World {
  network: VxlanNetworks;
  dev: () => Promise<number>;
  stop: () => Promise<void>;
  /** `ip neigh` / `bridge fdb` / `ip route proto 101` as compact text, sorted. */
  state: () => Promise<{ neigh: string[]; fdb: string[]; routes: string[] }>;
}

async function running(config = vxlanConfig(), intervalMs = 60_000): Promise<Running> {
  const w = await world(config);
  const network = await registerVxlanNetwork(w.deps, config, { reconcileIntervalMs: intervalMs });
  const ac = new AbortController();
  const done = network.run({ signal: ac.signal });
  const dev = async () => (await w.nl.linkByName("flannel.1"))?.index ?? -1;
  return {
    ...w,
    network,
    dev,
    stop: async () => {
      ac.abort();
      await done;
    },
    state: async () => {
      const i = await dev();
      return {
        neigh: (await w.nl.external.neighs(i)).map((n) => `${n.ip} ${n.mac}`).sort(),
        fdb: (await w.nl.external.fdbs(i)).map((f) => `${f.mac} ${f.dst}`).sort(),
        routes: (await w.nl.external.routes({ protocol: ROUTE_PROTOCOL })).map((r) =>
          `${r.dst} via ${r.gateway} dev ${r.index}${r.onlink ? " onlink" : ""}`
        ).sort(),
      };
    },
  };
}

const A = () => peerLease("10.244.2.0/24", "192.168.1.12", data(MAC_A));
const B = () => peerLease("10.244.3.0/24", "192.168.1.13", data(MAC_B));

async function tunnelState(r: Running, peers: Array<[string, string, string]>) {
  const dev = await r.dev();
  return {
    neigh: peers.map(([subnet, , mac]) => `${subnet.split("/")[0]} ${mac}`).sort(),
    fdb: peers.map(([, ip, mac]) => `${mac} ${ip}`).sort(),
    routes: peers.map(([subnet]) => `${subnet} via ${subnet.split("/")[0]} dev ${dev} onlink`)
      .sort(),
  };
}

/** Waits until the kernel state is `want`; on timeout fails with the difference. */
async function settle(r: Running, want: unknown, what: string) {
  try {
    await until(async () => isDeepStrictEqual(await r.state(), want), what);
  } catch {
    assert.deepEqual(await r.state(), want, `timed out waiting for ${what}`);
  }
}

Deno.test("registerNetwork() advertises flannel's lease bytes and the device MTU", async (t) => {
  await t.step("defaults: MTU 1500 - 50, VNI 1, a random locally administered MAC", async () => {
    const w = await world();
    const network = await createVxlanBackend(w.deps).registerNetwork(vxlanConfig());
    const link = (await w.nl.linkByName("flannel.1"))!;
    assert.equal(network.mtu, 1450);
    assert.equal(link.mtu, 1450);
    assert.equal(
      encodeLeaseAttrs(w.manager.acquired[0]),
      `{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${link.mac}"}}`,
    );
    assert.equal(parseInt(link.mac!.slice(0, 2), 16) & 3, 2);
    assert.deepEqual((await w.nl.addresses(link.index)).map((a) => a.address), ["10.244.1.0/32"]);
    assert.ok(
      w.log.lines.some((l) =>
        l.endsWith("VXLAN config: VNI=1 Port=0 GBP=false Learning=false DirectRouting=false")
      ),
    );
  });
  await t.step("configured MTU, VNI, port and GBP", async () => {
    const config = vxlanConfig({ MTU: 9000, VNI: 7, Port: 4789, GBP: true });
    const w = await world(config);
    const network = await createVxlanBackend(w.deps).registerNetwork(config);
    const link = (await w.nl.linkByName("flannel.7"))!;
    assert.equal(network.mtu, 8950);
    assert.equal(link.mtu, 8950);
    assert.equal(link.vxlan?.port, 4789);
    assert.equal(link.vxlan?.gbp, true);
    assert.equal(link.vxlan?.vni, 7);
    assert.match(w.manager.acquired[0].backendData!, /^\{"VNI":7,"VtepMAC":"[0-9a-f:]{17}"\}$/);
  });
  await t.step("keeps the MAC of an existing device", async () => {
    const w = await world();
    await w.nl.external.linkAdd({
      kind: "vxlan",
      name: "flannel.1",
      vni: 1,
      local: "192.168.1.10",
      dev: w.eth0,
      mac: "06:11:22:33:44:55",
      mtu: 1450,
    });
    const index = (await w.nl.linkByName("flannel.1"))!.index;
    await createVxlanBackend(w.deps).registerNetwork(vxlanConfig());
    assert.equal((await w.nl.linkByName("flannel.1"))!.index, index, "reused, not recreated");
    assert.equal(w.manager.acquired[0].backendData, data("06:11:22:33:44:55"));
  });
  await t.step("uses the datastore's stored MAC when there is no device", async () => {
    const w = await world();
    const subnetManager = Object.assign(w.manager, {
      storedMacAddresses: () => Promise.resolve({ v4: "06:AA:BB:CC:DD:EE" }),
    });
    await createVxlanBackend({ ...w.deps, subnetManager }).registerNetwork(vxlanConfig());
    assert.equal((await w.nl.linkByName("flannel.1"))!.mac, "06:aa:bb:cc:dd:ee");
    assert.equal(w.manager.acquired[0].backendData, data("06:aa:bb:cc:dd:ee"));
  });
  await t.step(
    "dual stack: flannel-v6.1 at 1500 - 70 with <IPv6 subnet>/128; the smaller MTU",
    async () => {
      const config = parseNetworkConfig(JSON.stringify({
        Network: "10.244.0.0/16",
        EnableIPv6: true,
        IPv6Network: "fd00:244::/56",
        Backend: { Type: "vxlan" },
      }));
      const w = await dualWorld(config);
      const network = await createVxlanBackend(w.deps).registerNetwork(config);
      const v4 = (await w.nl.linkByName("flannel.1"))!;
      const v6 = await w.nl.linkByName("flannel-v6.1");
      assert.ok(v6, "the IPv6 device is flannel-v6.1");
      assert.deepEqual([v4.mtu, v6.mtu, network.mtu], [1450, 1430, 1430]);
      assert.equal(v6.vxlan?.local, "fd00:1::10");
      assert.deepEqual((await w.nl.addresses(v6.index)).map((a) => a.address), [
        "fd00:244:0:1::/128",
      ]);
      assert.equal(
        encodeLeaseAttrs(w.manager.acquired[0]),
        `{"PublicIP":"192.168.1.10","PublicIPv6":"fd00:1::10","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${v4.mac}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${v6.mac}"}}`,
      );
      assert.ok(
        w.log.lines.some((l) => l.includes("FLANNEL_MTU is 1430, the smallest device MTU")),
      );
    },
  );
  await t.step("IPv6 only: flannel-v6.1 alone at 1500 - 70", async () => {
    const config = parseNetworkConfig(JSON.stringify({
      EnableIPv4: false,
      EnableIPv6: true,
      IPv6Network: "fd00:244::/56",
      Backend: { Type: "vxlan" },
    }));
    const w = await dualWorld(config);
    const network = await createVxlanBackend(w.deps).registerNetwork(config);
    assert.equal(await w.nl.linkByName("flannel.1"), undefined);
    const v6 = (await w.nl.linkByName("flannel-v6.1"))!;
    assert.deepEqual([v6.mtu, network.mtu], [1430, 1430]);
    assert.equal(
      encodeLeaseAttrs(w.manager.acquired[0]),
      `{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:1::10","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${v6.mac}"}}`,
    );
  });
  await t.step("rejects a bad config naming the key, and an MTU too small", async () => {
    const w = await world();
    await assert.rejects(
      createVxlanBackend(w.deps).registerNetwork(vxlanConfig({ VNI: "x" })),
      /error decoding VXLAN backend config: "VNI" must be an integer/,
    );
    await assert.rejects(
      createVxlanBackend(w.deps).registerNetwork(vxlanConfig({ MTU: 100 })),
      /VXLAN MTU 100 is too small/,
    );
  });
});

Deno.test("VxlanNetwork programs neighbour, FDB entry and route per peer, in that order", async () => {
  const r = await running();
  try {
    r.manager.push({ snapshot: [A(), B()] });
    await settle(
      r,
      await tunnelState(r, [
        ["10.244.2.0/24", "192.168.1.12", MAC_A],
        ["10.244.3.0/24", "192.168.1.13", MAC_B],
      ]),
      "two peers programmed",
    );
    const writes = r.nl.calls.filter((c) => /Replace$/.test(c.method)).map((c) => c.method);
    assert.deepEqual(writes, [
      "neighReplace",
      "fdbReplace",
      "routeReplace",
      "neighReplace",
      "fdbReplace",
      "routeReplace",
    ]);
    // A further pass with nothing to do writes nothing.
    const before = r.nl.calls.length;
    await r.network.reconcile();
    assert.ok(!r.nl.calls.slice(before).some((c) => /Replace$|Delete$/.test(c.method)));
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork removes every entry of a removed peer", async () => {
  const r = await running();
  try {
    r.manager.push({ snapshot: [A(), B()] });
    await until(async () => (await r.state()).routes.length === 2, "programmed");
    r.manager.push({ events: [{ type: "removed", lease: A() }] });
    await settle(
      r,
      await tunnelState(r, [["10.244.3.0/24", "192.168.1.13", MAC_B]]),
      "peer A gone",
    );
    assert.ok(r.log.lines.some((l) => l.endsWith("Subnet removed: 10.244.2.0/24")));
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork replaces a changed peer and drops its old MAC's entries", async (t) => {
  const r = await running();
  try {
    r.manager.push({ snapshot: [A()] });
    await until(async () => (await r.state()).routes.length === 1, "programmed");
    await t.step("new MAC", async () => {
      r.manager.push({
        events: [{ type: "added", lease: peerLease("10.244.2.0/24", "192.168.1.12", data(MAC_C)) }],
      });
      await settle(r, await tunnelState(r, [["10.244.2.0/24", "192.168.1.12", MAC_C]]), "MAC C");
    });
    await t.step("new public IP", async () => {
      r.manager.push({
        events: [{ type: "added", lease: peerLease("10.244.2.0/24", "192.168.1.22", data(MAC_C)) }],
      });
      await settle(r, await tunnelState(r, [["10.244.2.0/24", "192.168.1.22", MAC_C]]), "new IP");
    });
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork skips bad leases, logging them, and keeps serving the others", async () => {
  const r = await running();
  try {
    const bad: Lease[] = [
      peerLease("10.244.4.0/24", "192.168.1.14", "{not json"),
      peerLease("10.244.5.0/24", "192.168.1.15", data(MAC_C, 2)),
      peerLease("10.244.6.0/24", "192.168.1.16", '{"VNI":1,"VtepMAC":"nope"}'),
      peerLease("10.244.7.0/24", "192.168.1.17", undefined),
      peerLease("10.244.8.0/24", "192.168.1.18", undefined, "host-gw"),
    ];
    r.manager.push({ snapshot: [A(), ...bad, B()] });
    await settle(
      r,
      await tunnelState(r, [
        ["10.244.2.0/24", "192.168.1.12", MAC_A],
        ["10.244.3.0/24", "192.168.1.13", MAC_B],
      ]),
      "good peers programmed",
    );
    const skipped = r.log.lines.filter((l) => l.includes("Ignoring the lease"));
    assert.equal(skipped.length, 5, skipped.join("\n"));
    assert.match(skipped[0], /for 10\.244\.4\.0\/24: Cannot decode BackendData \{not json/);
    assert.match(skipped[1], /its VNI 2 differs from ours \(1\)/);
    assert.match(skipped[2], /bad "VtepMAC"/);
    assert.match(skipped[3], /no BackendData/);
    assert.match(skipped[4], /for 10\.244\.8\.0\/24: it is a non-vxlan subnet \(type="host-gw"\)/);
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork with DirectRouting routes on-link peers directly", async (t) => {
  const r = await running(vxlanConfig({ DirectRouting: true }));
  try {
    const far = () => peerLease("10.244.3.0/24", "192.168.2.13", data(MAC_B));
    r.manager.push({ snapshot: [A(), far()] });
    const dev = await r.dev();
    await t.step("on-link peer: plain route; off-link peer: tunnel", async () => {
      await settle(r, {
        neigh: [`10.244.3.0 ${MAC_B}`],
        fdb: [`${MAC_B} 192.168.2.13`],
        routes: [
          `10.244.2.0/24 via 192.168.1.12 dev ${r.eth0}`,
          `10.244.3.0/24 via 10.244.3.0 dev ${dev} onlink`,
        ],
      }, "direct + tunnel");
    });
    await t.step("re-evaluated when the peer changes", async () => {
      r.manager.push({
        events: [
          { type: "added", lease: peerLease("10.244.2.0/24", "192.168.2.12", data(MAC_A)) },
          { type: "added", lease: peerLease("10.244.3.0/24", "192.168.1.13", data(MAC_B)) },
        ],
      });
      await settle(r, {
        neigh: [`10.244.2.0 ${MAC_A}`],
        fdb: [`${MAC_A} 192.168.2.12`],
        routes: [
          `10.244.2.0/24 via 10.244.2.0 dev ${dev} onlink`,
          `10.244.3.0/24 via 192.168.1.13 dev ${r.eth0}`,
        ],
      }, "swapped");
    });
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork with DirectRouting never routes directly through its own device", async () => {
  const r = await running(vxlanConfig({ DirectRouting: true }));
  try {
    const dev = await r.dev();
    // The peer's public IP is "on-link" only through flannel.1: that is the tunnel, not L2.
    await until(async () => (await r.nl.linkByIndex(dev))?.up === true, "device up");
    await r.nl.external.routeAdd({ dst: "192.168.5.0/24", index: dev, protocol: 2 });
    const peer = peerLease("10.244.5.0/24", "192.168.5.12", data(MAC_A));
    r.manager.push({ snapshot: [peer] });
    await settle(r, await tunnelState(r, [["10.244.5.0/24", "192.168.5.12", MAC_A]]), "tunnel");
    assert.ok(!r.log.lines.some((l) => l.includes("Adding direct route")));
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork rolls a peer back when a later step fails, then retries", async (t) => {
  for (const method of ["fdbReplace", "routeReplace"] as const) {
    await t.step(method, async () => {
      const r = await running();
      try {
        r.nl.failNext(method, 22);
        r.manager.push({ snapshot: [A()] });
        await until(
          () => r.nl.calls.some((c) => c.method === "neighDelete"),
          "rollback of the neighbour",
        );
        if (method === "routeReplace") {
          assert.ok(r.nl.calls.some((c) => c.method === "fdbDelete"), "FDB entry rolled back");
        }
        assert.ok(r.log.lines.some((l) => l.includes("(rolled back)")));
        // The retry (100 ms backoff) programs the peer completely.
        await settle(
          r,
          await tunnelState(r, [["10.244.2.0/24", "192.168.1.12", MAC_A]]),
          "retried",
        );
      } finally {
        await r.stop();
      }
    });
  }
  await t.step("a half-programmed peer is never left behind", async () => {
    const r = await running();
    try {
      r.nl.failNext("routeReplace", 22, 1000);
      r.manager.push({ snapshot: [A()] });
      await until(() => r.nl.calls.filter((c) => c.method === "fdbDelete").length >= 2, "2 tries");
      assert.deepEqual(await r.state(), { neigh: [], fdb: [], routes: [] });
      // Retries back off (100 ms, 200 ms, ...): the rollback's own events do not spin the loop.
      const tries = () => r.nl.calls.filter((c) => c.method === "routeReplace").length;
      const n = tries();
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.ok(tries() - n <= 2, `${tries() - n} retries in 250 ms`);
    } finally {
      await r.stop();
    }
  });
});

Deno.test("VxlanNetwork heals entries deleted behind its back", async (t) => {
  const r = await running();
  try {
    r.manager.push({ snapshot: [A(), B()] });
    const want = await tunnelState(r, [
      ["10.244.2.0/24", "192.168.1.12", MAC_A],
      ["10.244.3.0/24", "192.168.1.13", MAC_B],
    ]);
    await settle(r, want, "programmed");
    const dev = await r.dev();
    const ext = r.nl.external;
    await t.step("route", async () => {
      await ext.routeDelete({ dst: "10.244.2.0/24" });
      await settle(r, want, "route back");
    });
    await t.step("neighbour", async () => {
      await ext.neighDelete({ index: dev, ip: "10.244.3.0" });
      await settle(r, want, "neighbour back");
    });
    await t.step("FDB entry", async () => {
      await ext.fdbDelete({ index: dev, mac: MAC_A });
      await settle(r, want, "FDB back");
    });
    await t.step("FDB entry pointed at another host", async () => {
      await ext.fdbReplace({ index: dev, mac: MAC_B, dst: "192.168.1.99" });
      await settle(r, want, "FDB corrected");
    });
    await t.step("someone else's flood list (all-zero MAC) is left alone", async () => {
      r.nl.appendFdb({ index: dev, mac: "00:00:00:00:00:00", dst: "192.168.1.50" });
      r.nl.appendFdb({ index: dev, mac: "00:00:00:00:00:00", dst: "192.168.1.51" });
      await r.network.reconcile();
      const flood = {
        fdb: [...want.fdb, "00:00:00:00:00:00 192.168.1.50", "00:00:00:00:00:00 192.168.1.51"]
          .sort(),
      };
      assert.deepEqual(await r.state(), { ...want, ...flood });
      await ext.fdbDelete({ index: dev, mac: "00:00:00:00:00:00" });
    });
    await t.step("neighbour changed", async () => {
      await ext.neighReplace({ index: dev, ip: "10.244.3.0", mac: MAC_C });
      await settle(r, want, "neighbour corrected");
    });
    await t.step(
      "the device itself: recreated with its MAC, every peer re-programmed",
      async () => {
        const mac = (await r.nl.linkByName("flannel.1"))!.mac;
        await ext.linkDelete(dev);
        await until(async () => (await r.dev()) !== -1, "device back");
        const now = (await r.nl.linkByName("flannel.1"))!;
        assert.notEqual(now.index, dev);
        assert.equal(now.mac, mac);
        await settle(
          r,
          await tunnelState(r, [
            ["10.244.2.0/24", "192.168.1.12", MAC_A],
            ["10.244.3.0/24", "192.168.1.13", MAC_B],
          ]),
          "peers re-programmed",
        );
        assert.deepEqual((await r.nl.addresses(now.index)).map((a) => a.address), [
          "10.244.1.0/32",
        ]);
        assert.ok(r.log.lines.some((l) => l.includes("re-programming 2 peers")));
      },
    );
    await t.step("the device set down", async () => {
      const i = await r.dev();
      await ext.linkSet(i, { up: false });
      await until(async () => (await r.nl.linkByIndex(i))?.up === true, "up again");
      await settle(
        r,
        await tunnelState(r, [
          ["10.244.2.0/24", "192.168.1.12", MAC_A],
          ["10.244.3.0/24", "192.168.1.13", MAC_B],
        ]),
        "routes back",
      );
    });
  } finally {
    await r.stop();
  }
});

Deno.test("VxlanNetwork removes stale entries of a previous run once the leases are known", async () => {
  const w = await world();
  const config = vxlanConfig();
  // A previous run left the device, peer A and a peer that has gone since (10.244.9.0/24).
  const network0 = await registerVxlanNetwork(w.deps, config);
  const dev = (await w.nl.linkByName("flannel.1"))!.index;
  const ext = w.nl.external;
  for (
    const [subnet, ip, mac] of [["10.244.2.0", "192.168.1.12", MAC_A], [
      "10.244.9.0",
      "192.168.1.19",
      MAC_C,
    ]]
  ) {
    await ext.neighReplace({ index: dev, ip: subnet, mac });
    await ext.fdbReplace({ index: dev, mac, dst: ip });
    await ext.routeReplace({
      dst: `${subnet}/24`,
      gateway: subnet,
      index: dev,
      onlink: true,
      protocol: ROUTE_PROTOCOL,
    });
  }
  await ext.routeAdd({ dst: "172.16.0.0/16", gateway: "192.168.1.1", index: w.eth0 });
  assert.equal(network0.mtu, 1450);
  const network = await registerVxlanNetwork(w.deps, config);
  const ac = new AbortController();
  const done = network.run({ signal: ac.signal });
  try {
    // A pass before the lease list is known (a kernel event, the device recreated) removes
    // nothing: every entry might still belong to a peer.
    await network.reconcile();
    assert.equal((await ext.neighs(dev)).length, 2, "nothing swept before the first listing");
    const before = w.nl.calls.length;
    w.manager.push({ snapshot: [A()] });
    await until(async () => (await ext.neighs(dev)).length === 1, "stale neighbour gone");
    await until(async () => (await ext.fdbs(dev)).length === 1, "stale FDB gone");
    await until(
      async () => (await ext.routes({ protocol: ROUTE_PROTOCOL })).length === 1,
      "stale route gone",
    );
    assert.ok(
      (await ext.routes()).some((r) => r.dst === "172.16.0.0/16"),
      "foreign routes untouched",
    );
    assert.ok(
      !w.nl.calls.slice(before).some((c) =>
        /Replace$/.test(c.method) || c.method === "linkAdd" || c.method === "linkDelete"
      ),
      "peer A's entries were reused as they were",
    );
  } finally {
    ac.abort();
    await done;
  }
});

Deno.test("VxlanNetwork programs no hostile lease and logs each once", async (t) => {
  const w = await world();
  const own = { ...w.manager.lease, attrs: { publicIP: w.deps.extIface.extAddr! } };
  const table = hostileLeases(
    { good: A(), own, network: vxlanConfig().network!, otherType: "host-gw" },
    HOSTILE_VXLAN_DATA,
  );
  for (const c of table) {
    await t.step(c.name, async () => {
      const r = await running();
      try {
        r.manager.push({ snapshot: [c.lease] });
        await until(() => r.log.lines.some((l) => l.includes("Ignoring the lease")), "warning");
        // The periodic pass and a re-list (with a good peer, to know it was applied) add
        // neither kernel state nor log lines for the bad lease.
        await r.network.reconcile();
        await r.network.reconcile();
        r.manager.push({ snapshot: [c.lease, B()] });
        await settle(
          r,
          await tunnelState(r, [["10.244.3.0/24", "192.168.1.13", MAC_B]]),
          "only the good peer",
        );
        const warnings = r.log.lines.filter((l) => /^[WE] /.test(l));
        assert.equal(warnings.length, 1, warnings.join("\n").slice(0, 2000));
        assert.ok(warnings[0].startsWith(`W Ignoring the lease of ${c.lease.source} for `));
        assert.match(warnings[0], c.reason);
        assert.ok(warnings[0].length < 800, `${warnings[0].length} characters`);
      } finally {
        await r.stop();
      }
    });
  }
});

Deno.test("dual-stack VxlanNetwork: a peer's bad IPv6 half creates no IPv6 state and is logged once", async (t) => {
  const config = parseNetworkConfig(JSON.stringify({
    Network: "10.244.0.0/16",
    EnableIPv6: true,
    IPv6Network: "fd00:244::/56",
    Backend: { Type: "vxlan" },
  }));
  /** A dual-stack peer: subnet 10.244.<n>.0/24 and fd00:244:0:<n>::/64, VTEPs on eth0's link. */
  const dualPeer = (
    n: number,
    attrs: Partial<Lease["attrs"]> = {},
    v6 = `fd00:244:0:${n}::/64`,
  ) => {
    const mac = `aa:aa:aa:aa:aa:0${n}`;
    const lease = peerLease(`10.244.${n}.0/24`, `192.168.1.${10 + n}`, data(mac));
    return {
      ...lease,
      enableIPv6: true,
      ipv6Subnet: parseIP6Net(v6),
      attrs: {
        ...lease.attrs,
        publicIPv6: parseIP6(`fd00:1::${10 + n}`),
        backendV6Data: data(mac),
        ...attrs,
      },
      source: `etcd key "peer ${n}"`,
    } as Lease;
  };
  const cases: Array<[string, Lease, RegExp]> = [
    ["PublicIPv6 missing", dualPeer(2, { publicIPv6: undefined }), /PublicIPv6 is missing/],
    ["PublicIPv6 loopback", dualPeer(2, { publicIPv6: parseIP6("::1") }), /PublicIPv6 ::1/],
    [
      "PublicIPv6 multicast",
      dualPeer(2, { publicIPv6: parseIP6("ff02::1") }),
      /PublicIPv6 ff02::1/,
    ],
    [
      "IPv6 subnet outside the IPv6Network",
      dualPeer(2, {}, "fd99::/64"),
      /IPv6 subnet fd99::\/64 is outside the IPv6Network/,
    ],
    [
      "IPv6 subnet overlapping ours",
      dualPeer(2, {}, "fd00:244::/56"),
      /IPv6 subnet fd00:244::\/56 overlaps our own subnet fd00:244:0:1::\/64/,
    ],
    [
      "BackendV6Data garbage",
      dualPeer(2, { backendV6Data: '{"VNI":1,"VtepMAC":"nope"}' }),
      /VtepMAC/,
    ],
    ["BackendV6Data missing", dualPeer(2, { backendV6Data: undefined }), /BackendV6Data/],
  ];
  for (const [name, bad, reason] of cases) {
    await t.step(name, async () => {
      const w = await dualWorld(config);
      const network = await registerVxlanNetwork(w.deps, config, { reconcileIntervalMs: 60_000 });
      const ac = new AbortController();
      const done = network.run({ signal: ac.signal });
      try {
        const v6State = async () => {
          const dev = (await w.nl.linkByName("flannel-v6.1"))!.index;
          return {
            neigh: (await w.nl.external.neighs(dev)).map((n) => `${n.ip} ${n.mac}`).sort(),
            fdb: (await w.nl.external.fdbs(dev)).map((f) => `${f.mac} ${f.dst}`).sort(),
          };
        };
        w.manager.push({ snapshot: [bad, dualPeer(3)] });
        const good = {
          neigh: ["fd00:244:0:3:: aa:aa:aa:aa:aa:03"],
          fdb: ["aa:aa:aa:aa:aa:03 fd00:1::13"],
        };
        await until(
          async () => isDeepStrictEqual(await v6State(), good),
          "only the good peer over IPv6",
        );
        await network.reconcile();
        assert.deepEqual(await v6State(), good);
        const warnings = w.log.lines.filter((l) => /^[WE] /.test(l) && l.includes("peer 2"));
        assert.ok(warnings.length >= 1 && warnings.length <= 2, warnings.join("\n"));
        for (const line of warnings) assert.match(line, reason);
        // Logged once per loop that refuses it, and not again on the next pass.
        const before = warnings.length;
        await network.reconcile();
        assert.equal(
          w.log.lines.filter((l) => /^[WE] /.test(l) && l.includes("peer 2")).length,
          before,
        );
      } finally {
        ac.abort();
        await done;
      }
    });
  }
});
