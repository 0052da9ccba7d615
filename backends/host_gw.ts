/**
 * The `host-gw` backend (flannel pkg/backend/hostgw/hostgw.go): no devices; a route to every peer's subnet via the
 * peer's public IP on the external interface. Needs L2 adjacency between hosts.
 */
import { formatIP4, formatIP4Net } from "../subnet/ip.ts";
import type { NetworkConfig, SignalOptions } from "../subnet/mod.ts";
import type { Backend, BackendDeps, Network } from "./mod.ts";
import { RouteNetwork } from "./route_network.ts";

/** The wire name of this backend in leases and configs. */
export const BACKEND_TYPE = "host-gw";

export default function createHostGwBackend(deps: BackendDeps): Backend {
  const { extIface } = deps;
  if (extIface.extAddr !== extIface.ifaceAddr) {
    throw new Error(
      "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is " +
        `not supported by host-gw backend (PublicIP ${formatIP4(extIface.extAddr ?? 0)}, ` +
        `interface ${extIface.name} has ${formatIP4(extIface.ifaceAddr ?? 0)}); drop --public-ip ` +
        `or use the vxlan backend`,
    );
  }
  return {
    async registerNetwork(config: NetworkConfig, options?: SignalOptions): Promise<Network> {
      const lease = await deps.subnetManager.acquireLease({
        publicIP: extIface.extAddr ?? 0,
        backendType: BACKEND_TYPE,
      }, options);
      return new RouteNetwork({
        manager: deps.subnetManager,
        netlink: deps.netlink,
        log: deps.log,
        metrics: deps.metrics,
        config,
        backendType: BACKEND_TYPE,
        lease,
        mtu: extIface.mtu,
        routeFor: (peer) => ({
          dst: formatIP4Net(peer.subnet),
          gateway: formatIP4(peer.attrs.publicIP),
          index: extIface.index,
        }),
      });
    },
  };
}
