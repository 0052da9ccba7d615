/**
 * The `vxlan` backend (flannel pkg/backend/vxlan/vxlan_network.go): pod traffic to other hosts is encapsulated by a kernel
 * VXLAN device, `flannel.<VNI>` over the IPv4 underlay and, with `EnableIPv6`,
 * `flannel-v6.<VNI>` over the IPv6 underlay, with one neighbour entry, one FDB entry and one
 * onlink route per remote host and family, wire-compatible with flannel nodes (device names,
 * port, `BackendData`/`BackendV6Data`, entries). Beyond flannel, the entries (and both devices)
 * are reconciled continuously (see `network.ts`), one reconcile loop per family, and
 * `FLANNEL_MTU` is what fits every enabled family.
 */
import type { Family } from "../../kernel/netlink/types.ts";
import { formatIP4, formatIP6 } from "../../subnet/ip.ts";
import type { Lease, NetworkConfig, SignalOptions } from "../../subnet/mod.ts";
import { describeError } from "../../util/log.ts";
import { isAbort } from "../../util/abort.ts";
import { FamilyNetworks } from "../_family_networks.ts";
import { shareLeaseWatch } from "../_lease_fanout.ts";
import type { Backend, BackendDeps, Network } from "../mod.ts";
import { encodeBackendData, parseMac, randomMac } from "./backend_data.ts";
import { describeVxlanConfig, parseVxlanConfig } from "./config.ts";
import { VxlanDevice } from "./device.ts";
import type { ReconcileStats } from "../reconcile_loop.ts";
import { BACKEND_TYPE, VxlanNetwork } from "./network.ts";

export { BACKEND_TYPE } from "./network.ts";

/**
 * Bytes VXLAN adds to every pod packet on the underlay: outer IPv4 header 20 + UDP 8 + VXLAN
 * header 8 + inner Ethernet header 14 = 50. The device MTU (and `FLANNEL_MTU`) is the underlay
 * MTU minus this, so encapsulated packets never need fragmenting (1500 → 1450).
 */
export const VXLAN_OVERHEAD = 50;

/**
 * The same over an IPv6 underlay, whose header is 40 bytes: 70 (1500 → 1430, what the kernel
 * clamps a larger request to).
 */
export const VXLAN6_OVERHEAD = 70;

/** The smallest MTU IPv4 allows on the device; IPv6 needs 1280. */
const MIN_DEVICE_MTU = { 4: 68, 6: 1280 } as const;

export interface VxlanBackendOptions {
  /** Period of the full reconcile pass; default 10 s. */
  readonly reconcileIntervalMs?: number;
  /** Where sysctls live; default `/proc/sys`. */
  readonly procSys?: string;
  /** Called after every reconcile pass (tests, benchmarks). */
  onReconciled?(stats: ReconcileStats): void;
}

/** The VTEP MAC: the existing device's, else the datastore's, else a fresh random one. */
async function chooseMac(
  deps: BackendDeps,
  name: string,
  family: Family,
  options?: SignalOptions,
): Promise<string> {
  const existing = await deps.netlink.linkByName(name);
  const candidates: Array<[string, string | undefined]> = [
    [`existing device ${name}`, existing?.kind === "vxlan" ? existing.mac : undefined],
  ];
  if (deps.subnetManager.storedMacAddresses) {
    try {
      const stored = await deps.subnetManager.storedMacAddresses(options);
      candidates.push(["stored backend data", family === 4 ? stored.v4 : stored.v6]);
    } catch (err) {
      deps.log.warn(`Cannot read the stored VTEP MAC: ${describeError(err)}`);
    }
  }
  for (const [source, mac] of candidates) {
    if (mac === undefined) continue;
    try {
      return parseMac(mac);
    } catch (err) {
      deps.log.warn(`Not reusing the MAC of the ${source}: ${describeError(err)}`);
    }
  }
  return randomMac();
}

/** The networks of a vxlan node, one per enabled family; `reconcile()` sweeps them all. */
export class VxlanNetworks extends FamilyNetworks<VxlanNetwork> {
  async reconcile(): Promise<void> {
    await Promise.all(this.families.map((n) => n.reconcile()));
  }
}

/** The underlay address a family's device uses and advertises, or a clear error. */
function localAddress(deps: BackendDeps, family: Family): string {
  const { extIface } = deps;
  if (family === 4) {
    if (extIface.extAddr === undefined) {
      throw new Error(
        `the vxlan backend needs an IPv4 address to advertise: interface ${extIface.name} has ` +
          "none; set --public-ip or choose another --iface",
      );
    }
    return formatIP4(extIface.extAddr);
  }
  if (extIface.extV6Addr === undefined) {
    throw new Error(
      `EnableIPv6 needs an IPv6 address to advertise: interface ${extIface.name} has none; ` +
        "add one, set --public-ipv6 or choose another --iface",
    );
  }
  return formatIP6(extIface.extV6Addr);
}

/** Sets up the device(s), acquires the lease advertising their MACs, and returns the network. */
export async function registerVxlanNetwork(
  deps: BackendDeps,
  config: NetworkConfig,
  options: SignalOptions & VxlanBackendOptions = {},
): Promise<VxlanNetworks> {
  const { extIface, log, metrics, netlink, subnetManager } = deps;
  const cfg = parseVxlanConfig(config.backend);
  log.info(describeVxlanConfig(cfg));
  const families: Family[] = [];
  if (config.enableIPv4) {
    if (!config.network) throw new Error("the vxlan backend needs an IPv4 Network");
    families.push(4);
  }
  if (config.enableIPv6) {
    if (!config.ipv6Network) throw new Error("EnableIPv6 needs an IPv6Network");
    families.push(6);
  }
  if (families.length === 0) {
    throw new Error("the vxlan backend needs EnableIPv4 or EnableIPv6 in the network config");
  }
  const underlayMtu = cfg.mtu || extIface.mtu;
  const devices = new Map<Family, VxlanDevice>();
  for (const family of families) {
    const mtu = underlayMtu - (family === 4 ? VXLAN_OVERHEAD : VXLAN6_OVERHEAD);
    if (mtu < MIN_DEVICE_MTU[family]) {
      throw new RangeError(
        `VXLAN MTU ${underlayMtu} is too small: the ${
          family === 4 ? "IPv4" : "IPv6"
        } device MTU would be ${mtu}; use an underlay MTU of at least ${
          MIN_DEVICE_MTU[family] + (family === 4 ? VXLAN_OVERHEAD : VXLAN6_OVERHEAD)
        }`,
      );
    }
    const name = family === 4 ? `flannel.${cfg.vni}` : `flannel-v6.${cfg.vni}`;
    const device = new VxlanDevice({
      netlink,
      log,
      procSys: options.procSys,
      spec: {
        kind: "vxlan",
        name,
        vni: cfg.vni,
        local: localAddress(deps, family),
        dev: extIface.index,
        ...(cfg.port > 0 ? { port: cfg.port } : {}),
        learning: cfg.learning,
        gbp: cfg.gbp,
        mtu,
        mac: await chooseMac(deps, name, family, options),
      },
    });
    try {
      await device.ensure();
    } catch (err) {
      throw new Error(`failed to create VXLAN device ${name}: ${describeError(err)}`, {
        cause: err,
      });
    }
    devices.set(family, device);
  }

  const v4 = devices.get(4), v6 = devices.get(6);
  let lease: Lease;
  try {
    lease = await subnetManager.acquireLease({
      publicIP: v4 ? extIface.extAddr! : 0,
      backendType: BACKEND_TYPE,
      ...(v4 ? { backendData: encodeBackendData({ vni: cfg.vni, vtepMac: v4.spec.mac }) } : {}),
      ...(v6
        ? {
          publicIPv6: extIface.extV6Addr,
          backendV6Data: encodeBackendData({ vni: cfg.vni, vtepMac: v6.spec.mac }),
        }
        : {}),
    }, options);
  } catch (err) {
    if (isAbort(err, options.signal)) throw err;
    throw new Error(`failed to acquire lease: ${describeError(err)}`, { cause: err });
  }

  if (v4) v4.setAddress(lease.subnet.ip, config.network!);
  if (v6) {
    if (!lease.ipv6Subnet) {
      throw new Error(`failed to configure interface ${v6.name}: the lease has no IPv6 subnet`);
    }
    v6.setAddress6(lease.ipv6Subnet.ip, config.ipv6Network!);
  }
  const watches = shareLeaseWatch(subnetManager, families.length);
  const networks: VxlanNetwork[] = [];
  const mtus: string[] = [];
  let mtu = Infinity;
  for (const [i, family] of families.entries()) {
    const device = devices.get(family)!;
    let link;
    try {
      link = await device.ensure();
    } catch (err) {
      throw new Error(`failed to configure interface ${device.name}: ${describeError(err)}`, {
        cause: err,
      });
    }
    // The kernel may clamp what we asked for: the device's real MTU is what pods can use.
    mtu = Math.min(mtu, link.mtu);
    mtus.push(`${device.name} ${link.mtu}`);
    networks.push(
      new VxlanNetwork({
        manager: watches[i],
        netlink,
        log,
        metrics,
        config,
        lease,
        mtu: link.mtu,
        device,
        vni: cfg.vni,
        family,
        directRouting: cfg.directRouting,
        devIndex: link.index,
        reconcileIntervalMs: options.reconcileIntervalMs,
        onReconciled: options.onReconciled,
      }),
    );
  }
  if (families.length > 1) {
    log.info(
      `FLANNEL_MTU is ${mtu}, the smallest device MTU (${
        mtus.join(", ")
      }): VXLAN over IPv6 costs 70 bytes, over IPv4 50, and pods must fit both`,
    );
  }
  return new VxlanNetworks(lease, mtu, networks);
}

export default function createVxlanBackend(deps: BackendDeps): Backend {
  return {
    registerNetwork: (config: NetworkConfig, options?: SignalOptions): Promise<Network> =>
      registerVxlanNetwork(deps, config, options),
  };
}
