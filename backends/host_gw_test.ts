import assert from "node:assert/strict";
import createHostGwBackend from "./host_gw.ts";
import type { ExternalInterface } from "./mod.ts";
import type { RouteNetwork } from "./route_network.ts";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import { FakeSubnetManager } from "../test/fakes/subnet_manager.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { encodeLeaseAttrs } from "../subnet/lease_attrs.ts";
import { parseIP4, parseIP4Net } from "../subnet/ip.ts";
import { silentLogger } from "../util/log.ts";
import { unservedMetrics } from "../util/metrics.ts";

const config = parseNetworkConfig('{"Network":"10.100.0.0/16","Backend":{"Type":"host-gw"}}');
const own = {
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseIP4Net("10.100.1.0/24"),
  attrs: { publicIP: 0 },
};

function iface(extAddr: string): ExternalInterface {
  return {
    name: "eth0",
    index: 2,
    mtu: 1450,
    ifaceAddr: parseIP4("192.168.1.10"),
    extAddr: parseIP4(extAddr),
  };
}

Deno.test("host-gw advertises BackendType host-gw and routes via the peer's public IP", async () => {
  const manager = new FakeSubnetManager(config, own);
  const backend = await createHostGwBackend({
    subnetManager: manager,
    extIface: iface("192.168.1.10"),
    log: silentLogger,
    metrics: unservedMetrics(),
    netlink: new FakeNetlink(),
  });
  const network = await backend.registerNetwork(config) as RouteNetwork;
  assert.equal(
    encodeLeaseAttrs(manager.acquired[0]),
    '{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"host-gw"}',
  );
  assert.equal(network.mtu, 1450, "MTU is the interface MTU");
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
