/** Shared fixtures for the vxlan unit tests: a fake host (eth0 192.168.1.10/24) and leases. */
import { FakeNetlink } from "./fakes/netlink.ts";
import { eventually } from "./eventually.ts";
import { FakeSubnetManager } from "./fakes/subnet_manager.ts";
import { type RecordingLogger, recordingLogger } from "./recording_logger.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { parseIP4, parseIP4Net } from "../subnet/ip.ts";
import type { Lease, NetworkConfig } from "../subnet/mod.ts";
import type { BackendDeps } from "../backends/mod.ts";
import { unservedMetrics } from "../util/metrics.ts";

export function vxlanConfig(backend: Record<string, unknown> = {}): NetworkConfig {
  return parseNetworkConfig(JSON.stringify({
    Network: "10.244.0.0/16",
    Backend: { Type: "vxlan", ...backend },
  }));
}

export function peerLease(
  subnet: string,
  publicIP: string,
  backendData: string | undefined,
  backendType = "vxlan",
): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType, backendData },
  };
}

export function data(mac: string, vni = 1): string {
  return `{"VNI":${vni},"VtepMAC":"${mac}"}`;
}

export interface World {
  nl: FakeNetlink;
  manager: FakeSubnetManager;
  deps: BackendDeps;
  log: RecordingLogger;
  eth0: number;
}

/** A host with eth0 192.168.1.10/24 (on-link route), a default route via .1, own lease 10.244.1.0/24. */
export async function world(config: NetworkConfig = vxlanConfig()): Promise<World> {
  const nl = new FakeNetlink();
  const eth0 = nl.seedLink("eth0", { mtu: 1500, addresses: ["192.168.1.10/24"] }).index;
  await nl.external.routeAdd({ dst: "192.168.1.0/24", index: eth0, protocol: 2 });
  await nl.external.routeAdd({ dst: "0.0.0.0/0", gateway: "192.168.1.1", index: eth0 });
  const own: Lease = {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net("10.244.1.0/24"),
    attrs: { publicIP: 0 },
  };
  const manager = new FakeSubnetManager(config, own);
  const log = recordingLogger(2);
  const deps: BackendDeps = {
    subnetManager: manager,
    netlink: nl,
    log,
    metrics: unservedMetrics(),
    extIface: {
      name: "eth0",
      index: eth0,
      mtu: 1500,
      ifaceAddr: parseIP4("192.168.1.10"),
      extAddr: parseIP4("192.168.1.10"),
    },
  };
  return { nl, manager, deps, log, eth0 };
}

/** Polls `cond` every 2 ms until it holds, or fails after `ms` naming `what`. */
export function until(cond: () => Promise<boolean> | boolean, what: string, ms = 2000) {
  return eventually(cond, ms, what, 2);
}
