import assert from "node:assert/strict";
import createHostGwBackend from "./host_gw.ts";
import type { ExternalInterface } from "./mod.ts";
import { ROUTE_PROTOCOL } from "./mod.ts";
import type { RouteNetwork } from "./route_network.ts";
import { eventually } from "../test/eventually.ts";
import type { Lease } from "../subnet/mod.ts";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import { FakeSubnetManager } from "../test/fakes/subnet_manager.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { encodeLeaseAttrs } from "../subnet/lease_attrs.ts";
import { parseIP4, parseIP4Net, parseIP6, parseIP6Net } from "../subnet/ip.ts";
import { silentLogger } from "../util/log.ts";
import { unservedMetrics } from "../util/metrics.ts";

const config = parseNetworkConfig('{"Network":"10.100.0.0/16","Backend":{"Type":"host-gw"}}');
const own = {
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseIP4Net("10.100.1.0/24"),
  attrs: { publicIP: 0 },
};

function peer(subnet: string, publicIP: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType: "host-gw" },
  };
}

function iface(extAddr: string, index = 2): ExternalInterface {
  return {
    name: "eth0",
    index,
    mtu: 1450,
    ifaceAddr: parseIP4("192.168.1.10"),
    extAddr: parseIP4(extAddr),
  };
}

Deno.test("host-gw advertises BackendType host-gw and routes via the peer's public IP", async () => {
  const netlink = new FakeNetlink();
  const eth0 = netlink.seedLink("eth0", { mtu: 1450, addresses: ["192.168.1.10/24"] });
  const manager = new FakeSubnetManager(config, own);
  const backend = await createHostGwBackend({
    subnetManager: manager,
    extIface: iface("192.168.1.10", eth0.index),
    log: silentLogger,
    metrics: unservedMetrics(),
    netlink,
  });
  const network = await backend.registerNetwork(config) as RouteNetwork;
  assert.equal(
    encodeLeaseAttrs(manager.acquired[0]),
    '{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"host-gw"}',
  );
  assert.equal(network.mtu, 1450, "MTU is the interface MTU");

  const abort = new AbortController();
  const running = network.run({ signal: abort.signal });
  try {
    manager.push({
      snapshot: [peer("10.100.2.0/24", "192.168.1.12"), peer("10.100.3.0/24", "192.168.1.13")],
    });
    const routes = async () =>
      (await netlink.routes({ protocol: ROUTE_PROTOCOL })).map((r) =>
        `${r.dst} via ${r.gateway} dev ${r.index}`
      ).sort();
    await eventually(async () => (await routes()).length === 2, 2000, "two peer routes");
    assert.deepEqual(await routes(), [
      `10.100.2.0/24 via 192.168.1.12 dev ${eth0.index}`,
      `10.100.3.0/24 via 192.168.1.13 dev ${eth0.index}`,
    ]);
  } finally {
    abort.abort();
    await running;
  }
});

Deno.test("host-gw in dual stack routes each family via the peer's address of that family", async () => {
  const dual = parseNetworkConfig(
    '{"Network":"10.100.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:100::/56",' +
      '"Backend":{"Type":"host-gw"}}',
  );
  const netlink = new FakeNetlink();
  const eth0 = netlink.seedLink("eth0", {
    mtu: 1450,
    addresses: ["192.168.1.10/24", "fd00:1::10/64"],
  });
  const own6 = { ...own, enableIPv6: true, ipv6Subnet: parseIP6Net("fd00:100:0:1::/64") };
  const manager = new FakeSubnetManager(dual, own6);
  const metrics = unservedMetrics();
  const backend = await createHostGwBackend({
    subnetManager: manager,
    extIface: {
      ...iface("192.168.1.10", eth0.index),
      ifaceV6Addr: parseIP6("fd00:1::10"),
      extV6Addr: parseIP6("fd00:1::10"),
    },
    log: silentLogger,
    metrics,
    netlink,
  });
  const network = await backend.registerNetwork(dual);
  assert.equal(
    encodeLeaseAttrs(manager.acquired[0]),
    '{"PublicIP":"192.168.1.10","PublicIPv6":"fd00:1::10","BackendType":"host-gw"}',
  );
  const dualPeer = (n: number): Lease => ({
    ...peer(`10.100.${n}.0/24`, `192.168.1.${n + 10}`),
    enableIPv6: true,
    ipv6Subnet: parseIP6Net(`fd00:100:0:${n}::/64`),
    attrs: {
      publicIP: parseIP4(`192.168.1.${n + 10}`),
      publicIPv6: parseIP6(`fd00:1::${n + 10}`),
      backendType: "host-gw",
    },
  });

  const abort = new AbortController();
  const running = network.run({ signal: abort.signal });
  try {
    manager.push({ snapshot: [dualPeer(2), dualPeer(3)] });
    const routes = async () =>
      (await netlink.routes({ protocol: ROUTE_PROTOCOL })).map((r) =>
        `${r.dst} via ${r.gateway} dev ${r.index}`
      ).sort();
    await eventually(async () => (await routes()).length === 4, 2000, "four peer routes");
    assert.deepEqual(await routes(), [
      `10.100.2.0/24 via 192.168.1.12 dev ${eth0.index}`,
      `10.100.3.0/24 via 192.168.1.13 dev ${eth0.index}`,
      `fd00:100:0:2::/64 via fd00:1::12 dev ${eth0.index}`,
      `fd00:100:0:3::/64 via fd00:1::13 dev ${eth0.index}`,
    ]);
    // Each family's loop reports its own peers (one gauge would flap between the two).
    // An IPv4-only peer (an old node) joins: two IPv4 peers, one IPv6 peer.
    manager.push({ events: [{ type: "added", lease: peer("10.100.4.0/24", "192.168.1.14") }] });
    await eventually(async () => (await routes()).length === 5, 2000, "five peer routes");
    for (const [family, n] of [["ipv4", 3], ["ipv6", 2]] as const) {
      assert.equal(metrics.peersKnown.get({ family }), n, `${family} peers known`);
      assert.equal(metrics.peersProgrammed.get({ family }), n, `${family} peers programmed`);
    }
  } finally {
    abort.abort();
    await running;
  }
});

Deno.test("host-gw refuses a public IP that differs from the interface IP (NAT)", () => {
  assert.throws(
    () =>
      createHostGwBackend({
        subnetManager: new FakeSubnetManager(config, own),
        extIface: iface("203.0.113.5"),
        log: silentLogger,
        metrics: unservedMetrics(),
        netlink: new FakeNetlink(),
      }),
    /your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend/,
  );
});
