/**
 * The `host-gw` backend (flannel pkg/backend/hostgw/hostgw.go): no devices; a route to every peer's subnet via the
 * peer's public IP on the external interface. Needs L2 adjacency between hosts.
 */
import { formatIP4, formatIP4Net, formatIP6, formatIP6Net } from "../subnet/ip.ts";
import type { NetworkConfig, SignalOptions } from "../subnet/mod.ts";
import { FamilyNetworks } from "./_family_networks.ts";
import { shareLeaseWatch } from "./_lease_fanout.ts";
import type { Backend, BackendDeps, Network } from "./mod.ts";
import { RouteNetwork, type RouteNetworkOptions } from "./route_network.ts";

/** The wire name of this backend in leases and configs. */
export const BACKEND_TYPE = "host-gw";

export default function createHostGwBackend(deps: BackendDeps): Backend {
  const { extIface } = deps;
  if (extIface.extAddr !== undefined && extIface.extAddr !== extIface.ifaceAddr) {
    throw new Error(
      "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is " +
        `not supported by host-gw backend (PublicIP ${formatIP4(extIface.extAddr ?? 0)}, ` +
        `interface ${extIface.name} has ${formatIP4(extIface.ifaceAddr ?? 0)}); drop --public-ip ` +
        `or use the vxlan backend`,
    );
  }
  if (extIface.extV6Addr !== undefined && extIface.extV6Addr !== extIface.ifaceV6Addr) {
    throw new Error(
      "your PublicIPv6 differs from interface IPv6, which is not supported by host-gw backend " +
        `(PublicIPv6 ${formatIP6(extIface.extV6Addr)}, interface ${extIface.name} has ${
          extIface.ifaceV6Addr === undefined ? "none" : formatIP6(extIface.ifaceV6Addr)
        }); drop --public-ipv6 or use the vxlan backend`,
    );
  }
  return {
    async registerNetwork(config: NetworkConfig, options?: SignalOptions): Promise<Network> {
      const lease = await deps.subnetManager.acquireLease({
        publicIP: (config.enableIPv4 ? extIface.extAddr : undefined) ?? 0,
        ...(config.enableIPv6 ? { publicIPv6: extIface.extV6Addr } : {}),
        backendType: BACKEND_TYPE,
      }, options);
      const families: RouteNetworkOptions["routeFor"][] = [];
      if (config.enableIPv4) {
        families.push((peer) => ({
          dst: formatIP4Net(peer.subnet),
          gateway: formatIP4(peer.attrs.publicIP),
          index: extIface.index,
        }));
      }
      if (config.enableIPv6) {
        families.push((peer) =>
          peer.enableIPv6 && peer.ipv6Subnet && peer.attrs.publicIPv6 !== undefined
            ? {
              dst: formatIP6Net(peer.ipv6Subnet),
              gateway: formatIP6(peer.attrs.publicIPv6),
              index: extIface.index,
            }
            : undefined
        );
      }
      const watches = shareLeaseWatch(deps.subnetManager, families.length);
      const v6Only = !config.enableIPv4;
      const networks = families.map((routeFor, i) =>
        new RouteNetwork({
          manager: watches[i],
          netlink: deps.netlink,
          log: deps.log,
          metrics: deps.metrics,
          config,
          backendType: BACKEND_TYPE,
          lease,
          mtu: extIface.mtu,
          family: i === 1 || v6Only ? 6 : 4,
          routeFor,
        })
      );
      return networks.length === 1
        ? networks[0]
        : new FamilyNetworks(lease, extIface.mtu, networks);
    },
  };
}
