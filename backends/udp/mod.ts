/**
 * The `udp` backend (flannel pkg/backend/udp/udp_network_amd64.go): a `flannel0` TUN device and userspace encapsulation,
 * wire-compatible with flannel (the UDP payload is the raw IPv4 packet, TTL decremented on each
 * side). For hosts where VXLAN is filtered or missing.
 *
 * The data path runs on two worker threads (see `_worker.ts`); `deno compile` needs
 * `--include backends/udp/_worker.ts` to embed it.
 */
import { ExistsError } from "../../kernel/netlink/errors.ts";
import {
  openTun,
  openUdpSocket,
  setInterfaceSysctl,
  type TunDevice,
  type UdpSocket,
} from "../../kernel/tun.ts";
import { formatIP4, formatIP4Net } from "../../subnet/ip.ts";
import { getFold } from "../../subnet/json.ts";
import type { NetworkConfig, SignalOptions } from "../../subnet/mod.ts";
import { describeError, type Logger } from "../../util/log.ts";
import { quote } from "../../util/quote.ts";
import { type Backend, type BackendDeps, type Network, ROUTE_PROTOCOL } from "../mod.ts";
import { UdpNetwork } from "./network.ts";

/** flannel's default `Port`. */
export const DEFAULT_PORT = 8285;
/** IPv4 (20) + UDP (8) header bytes. */
export const ENCAP_OVERHEAD = 28;
export const TUN_NAME_TEMPLATE = "flannel%d";

/** Reads `Backend.Port` (case-insensitive key; default 8285). */
export function parsePort(backend: Readonly<Record<string, unknown>>): number {
  const v = getFold(backend, "Port");
  if (v === undefined || v === null) return DEFAULT_PORT;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new RangeError(
      `Invalid udp backend "Port" ${quote(v)}: use an integer from 1 to 65535 ` +
        `(default ${DEFAULT_PORT})`,
    );
  }
  return v === 0 ? DEFAULT_PORT : v;
}

export default function createUdpBackend(deps: BackendDeps): Backend {
  const { extIface, netlink, log, metrics } = deps;
  return {
    async registerNetwork(config: NetworkConfig, options?: SignalOptions): Promise<Network> {
      const port = parsePort(config.backend);
      const network = config.network;
      if (config.enableIPv6) {
        throw new Error(
          'the udp backend carries IPv4 only, as flannel\'s: remove "EnableIPv6" from the ' +
            'network config, or use "Backend": {"Type": "vxlan"} (or "host-gw") for IPv6',
        );
      }
      if (!config.enableIPv4 || !network) {
        throw new Error(
          'the udp backend carries IPv4 only: set "Network" in the network config (or use vxlan)',
        );
      }
      const ifaceAddr = extIface.ifaceAddr;
      if (ifaceAddr === undefined) {
        throw new Error(
          `the udp backend needs an IPv4 address on interface ${extIface.name} to bind its socket`,
        );
      }
      // flannel's quirk: only PublicIP, no BackendType and no BackendData.
      const lease = await deps.subnetManager.acquireLease(
        { publicIP: extIface.extAddr ?? ifaceAddr },
        options,
      );
      const mtu = extIface.mtu - ENCAP_OVERHEAD;
      const tunAddr = lease.subnet.ip >>> 0;
      let tun: TunDevice | undefined;
      let udp: UdpSocket | undefined;
      try {
        tun = openTun(TUN_NAME_TEMPLATE);
        const link = await netlink.linkByName(tun.name);
        if (!link) throw new Error(`TUN device ${tun.name} vanished right after its creation`);
        await netlink.addressAdd({ index: link.index, address: `${formatIP4(tunAddr)}/32` })
          .catch((err) => {
            if (!(err instanceof ExistsError)) throw err;
          });
        tuneSysctls(tun.name, log);
        await netlink.linkSet(link.index, { mtu, up: true });
        const route = {
          dst: formatIP4Net(network),
          index: link.index,
          scope: 0,
          protocol: ROUTE_PROTOCOL,
        };
        await netlink.routeReplace(route);
        udp = openUdpSocket(ifaceAddr, port);
        log.info(
          `udp backend: ${tun.name} ${formatIP4(tunAddr)}/32 mtu ${mtu}, route ${route.dst}, ` +
            `listening on ${formatIP4(ifaceAddr)}:${port}`,
        );
        return new UdpNetwork({
          manager: deps.subnetManager,
          netlink,
          log,
          metrics,
          config,
          lease,
          mtu,
          port,
          tun,
          udp,
          tunAddr,
          tunMtu: mtu,
          route,
        });
      } catch (err) {
        udp?.close();
        tun?.close();
        throw new Error(`Cannot set up the udp backend: ${describe(err)}`, { cause: err });
      }
    },
  };
}

/**
 * Two settings on the TUN device, best effort: `accept_local`, so the ICMP net unreachable the
 * data path writes with the device's own address as source is delivered rather than dropped as a
 * martian (flannel's replies are lost that way); and no IPv6, which this backend cannot carry
 * (the kernel would otherwise send router solicitations into it).
 */
function tuneSysctls(name: string, log: Logger): void {
  for (
    const [family, key, value] of [["ipv4", "accept_local", "1"], ["ipv6", "disable_ipv6", "1"]]
  ) {
    try {
      setInterfaceSysctl(family as "ipv4" | "ipv6", name, key, value);
    } catch (err) {
      log.warn(`udp backend: ${describeError(err)}`);
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
