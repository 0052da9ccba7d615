/**
 * The `flannel.<VNI>` (or `flannel-v6.<VNI>`) VXLAN device (flannel pkg/backend/vxlan/vxlan_network.go): created with the
 * wanted attributes, or an existing one reused as is when compatible (zero-downtime restart) and
 * recreated, saying what differed, when not; its `<own subnet>/32` (`<own IPv6 subnet>/128`)
 * address; up; IPv6 router advertisements off.
 *
 * `ensure()` is idempotent and cheap when nothing is wrong (one link lookup, one address dump),
 * so the network's reconcile pass calls it every time: a device deleted or set down by hand is
 * back on the next pass.
 */
import type { Link, Netlink, VxlanLinkSpec } from "../../kernel/netlink/types.ts";
import { ExistsError, NotFoundError } from "../../kernel/netlink/errors.ts";
import {
  contains4,
  contains6,
  formatIP4,
  formatIP6,
  type IP4Net,
  type IP6Net,
  parseIP4,
  parseIP6,
} from "../../subnet/ip.ts";
import type { Logger } from "../../util/log.ts";
import { KERNEL_DEFAULT_PORT } from "./config.ts";

/** The device spec this backend wants; `mac` and `mtu` are always set. */
export interface DeviceSpec extends VxlanLinkSpec {
  readonly mac: string;
  readonly mtu: number;
}

/**
 * Why `existing` cannot serve as the wanted device, one phrase per difference (empty when it
 * can). Compared as flannel does: kind, VNI, underlay device (if both set), local address (if
 * both set), port, GBP; and, stricter than flannel, learning (a changed `Learning` setting takes
 * effect). Port 0 stands for the kernel default. MAC and MTU are not compared: the MAC is kept,
 * the MTU corrected in place.
 */
export function incompatibilities(existing: Link, want: VxlanLinkSpec): string[] {
  if (existing.kind !== "vxlan" || !existing.vxlan) {
    return [`type ${existing.kind ?? "device"} (want vxlan)`];
  }
  const have = existing.vxlan;
  const diffs: string[] = [];
  if (have.vni !== want.vni) diffs.push(`vni ${have.vni} (want ${want.vni})`);
  if (have.dev && want.dev && have.dev !== want.dev) {
    diffs.push(`underlay device index ${have.dev} (want ${want.dev})`);
  }
  if (have.local && want.local && have.local !== want.local) {
    diffs.push(`local ${have.local} (want ${want.local})`);
  }
  const port = want.port || KERNEL_DEFAULT_PORT;
  if ((have.port || KERNEL_DEFAULT_PORT) !== port) diffs.push(`port ${have.port} (want ${port})`);
  if (have.gbp !== (want.gbp ?? false)) diffs.push(`gbp ${have.gbp} (want ${want.gbp ?? false})`);
  if (have.learning !== (want.learning ?? false)) {
    diffs.push(`learning ${have.learning} (want ${want.learning ?? false})`);
  }
  return diffs;
}

/** The one address the device keeps, and which others of its family are stale. */
interface DeviceAddress {
  readonly family: 4 | 6;
  /** `"10.244.1.0/32"`, `"fd00:244:0:1::/128"`. */
  readonly text: string;
  readonly inNetwork: (ip: string) => boolean;
}

export interface VxlanDeviceOptions {
  readonly netlink: Netlink;
  readonly log: Logger;
  readonly spec: DeviceSpec;
  /** Where sysctls live; default `/proc/sys` (tests point it elsewhere). */
  readonly procSys?: string;
}

export class VxlanDevice {
  readonly spec: DeviceSpec;
  readonly #nl: Netlink;
  readonly #log: Logger;
  readonly #procSys: string;
  /** Set once the lease is known: the device's `/32` (`/128`) and the network it must be in. */
  #address?: DeviceAddress;
  #raDone = false;

  constructor(options: VxlanDeviceOptions) {
    this.spec = options.spec;
    this.#nl = options.netlink;
    this.#log = options.log;
    this.#procSys = options.procSys ?? "/proc/sys";
  }

  get name(): string {
    return this.spec.name;
  }

  /** From now on `ensure()` also keeps `<ip>/32` (and no other address inside `network`). */
  setAddress(ip: number, network: IP4Net): void {
    this.#address = {
      family: 4,
      text: `${formatIP4(ip)}/32`,
      inNetwork: (a) => contains4(network, parseIP4(a)),
    };
  }

  /** The IPv6 device's `<ip>/128` (and no other address inside the IPv6 `network`). */
  setAddress6(ip: bigint, network: IP6Net): void {
    this.#address = {
      family: 6,
      text: `${formatIP6(ip)}/128`,
      inNetwork: (a) => contains6(network, parseIP6(a)),
    };
  }

  /**
   * Makes the device exist with the wanted attributes, MTU, MAC, address and up state; returns
   * the link as it is afterwards.
   */
  async ensure(): Promise<Link> {
    let link = await this.#ensureLink();
    if (!this.#raDone) {
      await this.#disableAcceptRA();
      this.#raDone = true;
    }
    if (this.#address) await this.#ensureAddress(link.index, this.#address);
    if (!link.up) {
      await this.#nl.linkSet(link.index, { up: true });
      link = { ...link, up: true };
    }
    if (link.mac !== this.spec.mac) {
      throw new Error(
        `${this.name}'s mac address wanted: ${this.spec.mac}, but got: ${link.mac ?? "none"}`,
      );
    }
    return link;
  }

  async #ensureLink(): Promise<Link> {
    const nl = this.#nl, spec = this.spec;
    const existing = await nl.linkByName(spec.name);
    if (existing) {
      const diffs = incompatibilities(existing, spec);
      if (diffs.length === 0) {
        if (existing.mtu === spec.mtu && existing.mac === spec.mac) return existing;
        await nl.linkSet(existing.index, { mtu: spec.mtu, mac: spec.mac });
        this.#log.info(
          `Corrected ${spec.name}: mtu ${existing.mtu} → ${spec.mtu}, mac ${existing.mac} → ${spec.mac}`,
        );
        return { ...existing, mtu: spec.mtu, mac: spec.mac };
      }
      this.#log.warn(
        `"${spec.name}" already exists with incompatible configuration: ${
          diffs.join(", ")
        }; recreating device`,
      );
      await nl.linkDelete(existing.index).catch((err) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    }
    try {
      await nl.linkAdd(spec);
    } catch (err) {
      // Someone created it between our lookup and add: check that one on the next pass.
      if (!(err instanceof ExistsError)) {
        throw new Error(`Cannot create VXLAN device "${spec.name}"`, { cause: err });
      }
    }
    const link = await nl.linkByName(spec.name);
    if (!link) throw new Error(`Cannot find VXLAN device "${spec.name}" right after creating it`);
    this.#log.info(`Created VXLAN device ${spec.name} (mac ${spec.mac}, mtu ${spec.mtu})`);
    this.#raDone = false;
    return link;
  }

  /** `<ip>/32` (`/128`) on the device; others of its family inside the network removed. */
  async #ensureAddress(index: number, want: DeviceAddress): Promise<void> {
    let present = false;
    for (const a of await this.#nl.addresses(index, want.family)) {
      if (a.address === want.text) {
        present = true;
        continue;
      }
      if (!want.inNetwork(a.address.slice(0, a.address.indexOf("/")))) continue;
      await this.#nl.addressDelete(a);
      this.#log.info(`Removed stale address ${a.address} from ${this.name}`);
    }
    if (!present) await this.#nl.addressAdd({ index, address: want.text });
  }

  /** `net/ipv6/conf/<dev>/accept_ra = 0` where IPv6 is present; errors ignored as in flannel. */
  async #disableAcceptRA(): Promise<void> {
    const path = `${this.#procSys}/net/ipv6/conf/${this.name}/accept_ra`;
    try {
      await Deno.writeTextFile(path, "0", { create: false });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        this.#log.v(1, `Cannot disable accept_ra on ${this.name}: ${String(err)}`);
      }
    }
  }
}
