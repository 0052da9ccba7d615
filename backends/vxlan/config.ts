/**
 * The vxlan `Backend` object (flannel pkg/backend/vxlan/vxlan_network.go): keys matched case-insensitively as Go's
 * `encoding/json` does, unknown keys (`Type`, Windows-only `MacPrefix`, `Name`, ...) ignored, a
 * key of the wrong type rejected with its name.
 */
import { getFold } from "../../subnet/json.ts";
import { quote } from "../../util/quote.ts";

/** The resolved vxlan settings: every default applied. */
export interface VxlanConfig {
  /** VXLAN network identifier; also names the device (`flannel.<VNI>`). */
  readonly vni: number;
  /** UDP port; 0 leaves the kernel default (8472). */
  readonly port: number;
  /** Underlay MTU; 0 means the external interface's MTU. */
  readonly mtu: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
}

/** The Linux kernel's VXLAN port when none is given (flannel's default too). */
export const KERNEL_DEFAULT_PORT = 8472;

const MAX_VNI = (1 << 24) - 1;

function integer(
  backend: Readonly<Record<string, unknown>>,
  key: string,
  min: number,
  max: number,
) {
  const v = getFold(backend, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(
      `error decoding VXLAN backend config: "${key}" must be an integer, got ${quote(v)}`,
    );
  }
  if (v < min || v > max) {
    throw new RangeError(
      `error decoding VXLAN backend config: "${key}" is ${v}; it must be between ${min} and ${max}`,
    );
  }
  return v;
}

function boolean(backend: Readonly<Record<string, unknown>>, key: string): boolean {
  const v = getFold(backend, key);
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") {
    throw new TypeError(
      `error decoding VXLAN backend config: "${key}" must be true or false, got ${quote(v)}`,
    );
  }
  return v;
}

/** Reads the vxlan keys of the decoded `Backend` object; throws naming the offending key. */
export function parseVxlanConfig(backend: Readonly<Record<string, unknown>>): VxlanConfig {
  return {
    vni: integer(backend, "VNI", 0, MAX_VNI) ?? 1,
    port: integer(backend, "Port", 0, 65535) ?? 0,
    // 0 (Go's zero value) means "the external interface's MTU"; else it must leave a usable
    // device MTU (68, the IPv4 minimum) after the 50-byte VXLAN overhead.
    mtu: integer(backend, "MTU", 0, 65535) ?? 0,
    gbp: boolean(backend, "GBP"),
    learning: boolean(backend, "Learning"),
    directRouting: boolean(backend, "DirectRouting"),
  };
}

/** flannel's start-up line: `VXLAN config: VNI=1 Port=0 GBP=false Learning=false DirectRouting=false`. */
export function describeVxlanConfig(c: VxlanConfig): string {
  return `VXLAN config: VNI=${c.vni} Port=${c.port} GBP=${c.gbp} Learning=${c.learning} ` +
    `DirectRouting=${c.directRouting}`;
}
