/**
 * The `vxlan` backend (flannel pkg/backend/vxlan/vxlan_network.go): pod traffic to other hosts is encapsulated by a kernel
 * VXLAN device `flannel.<VNI>`, with one neighbour entry, one FDB entry and one onlink route per
 * remote host, wire-compatible with flannel nodes (device name, port, `BackendData`, entries).
 * Beyond flannel, the entries are reconciled continuously (see `network.ts`).
 *
 * IPv4 only: the `flannel-v6.<VNI>` device of dual-stack flannel is not built yet.
 */
import { formatIP4, type IP4Net } from "../../subnet/ip.ts";
import type { NetworkConfig, SignalOptions } from "../../subnet/mod.ts";
import { describeError } from "../../util/log.ts";
import { isAbort } from "../../util/abort.ts";
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

/** The smallest MTU IPv4 allows on the device. */
const MIN_DEVICE_MTU = 68;

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
  options?: SignalOptions,
): Promise<string> {
  const existing = await deps.netlink.linkByName(name);
  const candidates: Array<[string, string | undefined]> = [
    [`existing device ${name}`, existing?.kind === "vxlan" ? existing.mac : undefined],
  ];
  if (deps.subnetManager.storedMacAddresses) {
    try {
      candidates.push([
        "stored backend data",
        (await deps.subnetManager.storedMacAddresses(options)).v4,
      ]);
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

/** Sets up the device, acquires the lease advertising its MAC, and returns the network. */
export async function registerVxlanNetwork(
  deps: BackendDeps,
  config: NetworkConfig,
  options: SignalOptions & VxlanBackendOptions = {},
): Promise<VxlanNetwork> {
  const { extIface, log, metrics, netlink, subnetManager } = deps;
  const cfg = parseVxlanConfig(config.backend);
  log.info(describeVxlanConfig(cfg));
  if (config.enableIPv6) {
    throw new Error(
      "the vxlan backend of this build supports IPv4 only; set EnableIPv6 to false or use host-gw",
    );
  }
  const network: IP4Net | undefined = config.network;
  if (!config.enableIPv4 || !network) {
    throw new Error("the vxlan backend needs an IPv4 Network in the network config");
  }
  if (extIface.extAddr === undefined) {
    throw new Error(
      `the vxlan backend needs an IPv4 address to advertise: interface ${extIface.name} has none; ` +
        "set --public-ip or choose another --iface",
    );
  }
  const underlayMtu = cfg.mtu || extIface.mtu;
  const mtu = underlayMtu - VXLAN_OVERHEAD;
  if (mtu < MIN_DEVICE_MTU) {
    throw new RangeError(
      `VXLAN MTU ${underlayMtu} is too small: the device MTU would be ${mtu}; ` +
        `use an underlay MTU of at least ${MIN_DEVICE_MTU + VXLAN_OVERHEAD}`,
    );
  }
  const name = `flannel.${cfg.vni}`;
  const device = new VxlanDevice({
    netlink,
    log,
    procSys: options.procSys,
    spec: {
      kind: "vxlan",
      name,
      vni: cfg.vni,
      local: formatIP4(extIface.extAddr),
      dev: extIface.index,
      ...(cfg.port > 0 ? { port: cfg.port } : {}),
      learning: cfg.learning,
      gbp: cfg.gbp,
      mtu,
      mac: await chooseMac(deps, name, options),
    },
  });
  try {
    await device.ensure();
  } catch (err) {
    throw new Error(`failed to create VXLAN device ${name}: ${describeError(err)}`, {
      cause: err,
    });
  }

  let lease;
  try {
    lease = await subnetManager.acquireLease({
      publicIP: extIface.extAddr,
      backendType: BACKEND_TYPE,
      backendData: encodeBackendData({ vni: cfg.vni, vtepMac: device.spec.mac }),
    }, options);
  } catch (err) {
    if (isAbort(err, options.signal)) throw err;
    throw new Error(`failed to acquire lease: ${describeError(err)}`, { cause: err });
  }

  device.setAddress(lease.subnet.ip, network);
  let link;
  try {
    link = await device.ensure();
  } catch (err) {
    throw new Error(`failed to configure interface ${name}: ${describeError(err)}`, {
      cause: err,
    });
  }
  return new VxlanNetwork({
    manager: subnetManager,
    netlink,
    log,
    metrics,
    config,
    lease,
    mtu,
    device,
    vni: cfg.vni,
    directRouting: cfg.directRouting,
    devIndex: link.index,
    reconcileIntervalMs: options.reconcileIntervalMs,
    onReconciled: options.onReconciled,
  });
}

export default function createVxlanBackend(deps: BackendDeps): Backend {
  return {
    registerNetwork: (config: NetworkConfig, options?: SignalOptions): Promise<Network> =>
      registerVxlanNetwork(deps, config, options),
  };
}
