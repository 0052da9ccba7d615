/**
 * The network configuration JSON (flannel pkg/subnet/config.go): parsing as flannel's `ParseConfig` does with Go's
 * `encoding/json`, then the defaults and checks of `CheckNetworkConfig`.
 *
 * Errors are `ConfigError`s whose message starts with flannel's own text (so operators' greps
 * still match) followed by the offending value and, where useful, the fix.
 */
import type { NetworkConfig } from "./mod.ts";
import {
  formatIP4,
  formatIP4Net,
  formatIP6,
  formatIP6Net,
  type IP4Net,
  type IP6Net,
  mask4,
  mask6,
  parseIP4,
  parseIP4Net,
  parseIP6,
  parseIP6Net,
} from "./ip.ts";
import {
  decodeJSONString,
  foldEquals,
  jsonKind,
  type JSONMember,
  lookupMember,
  objectMembers,
  trimQuotes,
} from "./json.ts";
import { clip, quote } from "../util/quote.ts";

/** The network configuration is missing, malformed or inconsistent; main retries on it. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

export interface ParseNetworkConfigOptions {
  /**
   * Apply `CheckNetworkConfig`'s defaults and checks (default `true`, etcd mode). Kubernetes mode
   * passes `false`, as flannel does not validate its net-conf.json.
   */
  readonly validate?: boolean;
}

/** What the JSON said, before defaulting; zero values where Go's struct would hold them. */
interface Draft {
  enableIPv4: boolean;
  enableIPv6: boolean;
  enableNFTables: boolean;
  network?: IP4Net;
  ipv6Network?: IP6Net;
  subnetLen: number;
  subnetMin: number;
  subnetMax: number;
  ipv6SubnetLen: number;
  ipv6SubnetMin?: bigint;
  ipv6SubnetMax?: bigint;
  /** Raw text of `Backend` (`json.RawMessage`); undefined when absent. */
  backendRaw?: string;
}

const MAX_UINT64 = (1n << 64n) - 1n;

function describe(raw: string): string {
  return `${jsonKind(raw)} ${clip(raw)}`;
}

function boolField(name: keyof Draft & `enable${string}`) {
  return (d: Draft, m: JSONMember) => {
    const kind = jsonKind(m.raw);
    if (kind === "null") return; // Go leaves the field unchanged
    if (kind !== "boolean") {
      throw new ConfigError(
        `invalid network config: ${m.key} must be a JSON boolean (true or false), got ${
          describe(m.raw)
        }`,
      );
    }
    d[name] = m.raw === "true";
  };
}

function uintField(name: "subnetLen" | "ipv6SubnetLen") {
  return (d: Draft, m: JSONMember) => {
    const kind = jsonKind(m.raw);
    if (kind === "null") return;
    if (kind !== "number" || !/^\d+$/.test(m.raw) || BigInt(m.raw) > MAX_UINT64) {
      throw new ConfigError(
        `invalid network config: ${m.key} must be a non-negative integer (a prefix length such as 24), got ${
          describe(m.raw)
        }`,
      );
    }
    d[name] = Number(m.raw);
  };
}

function addressError(flannelText: string, m: JSONMember, expected: string, cause: unknown) {
  return new ConfigError(
    `${flannelText}: ${m.key} ${quote(trimQuotes(m.raw))}: expected ${expected}`,
    { cause },
  );
}

const FIELDS: Readonly<Record<string, (d: Draft, m: JSONMember) => void>> = {
  EnableIPv4: boolField("enableIPv4"),
  EnableIPv6: boolField("enableIPv6"),
  EnableNFTables: boolField("enableNFTables"),
  Network(d, m) {
    try {
      d.network = parseIP4Net(trimQuotes(m.raw));
    } catch (err) {
      throw addressError(
        "invalid IPv4 CIDR format",
        m,
        'an IPv4 CIDR such as "10.244.0.0/16"',
        err,
      );
    }
  },
  IPv6Network(d, m) {
    try {
      d.ipv6Network = parseIP6Net(trimQuotes(m.raw));
    } catch (err) {
      throw addressError("invalid IPv6 CIDR format", m, 'an IPv6 CIDR such as "fd00::/56"', err);
    }
  },
  SubnetLen: uintField("subnetLen"),
  IPv6SubnetLen: uintField("ipv6SubnetLen"),
  SubnetMin(d, m) {
    d.subnetMin = parseAddress4(m);
  },
  SubnetMax(d, m) {
    d.subnetMax = parseAddress4(m);
  },
  IPv6SubnetMin(d, m) {
    d.ipv6SubnetMin = parseAddress6(m);
  },
  IPv6SubnetMax(d, m) {
    d.ipv6SubnetMax = parseAddress6(m);
  },
  Backend(d, m) {
    d.backendRaw = m.raw;
  },
};
const FIELD_NAMES = Object.keys(FIELDS);

function parseAddress4(m: JSONMember): number {
  try {
    return parseIP4(trimQuotes(m.raw));
  } catch (err) {
    throw addressError("invalid IPv4 address format", m, 'an IPv4 address such as "10.5.1.0"', err);
  }
}

/** A pointer field in Go: JSON null resets it to unset. */
function parseAddress6(m: JSONMember): bigint | undefined {
  if (m.raw === "null") return undefined;
  try {
    return parseIP6(trimQuotes(m.raw));
  } catch (err) {
    throw addressError(
      "invalid IP address format",
      m,
      'an IPv6 address such as "fd00:0:0:1::"',
      err,
    );
  }
}

function decodeMembers(text: string): JSONMember[] {
  try {
    return objectMembers(text) ?? [];
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`invalid network config JSON: ${reason}`, { cause: err });
  }
}

/** flannel's `parseBackendType`, plus the decoded object for backends and lower-casing. */
function resolveBackend(raw: string | undefined): {
  backendType: string;
  backend: Record<string, unknown>;
} {
  if (raw === undefined) return { backendType: "udp", backend: {} };
  const kind = jsonKind(raw);
  if (kind === "null") return { backendType: "", backend: {} };
  const prefix = "error decoding Backend property of config";
  if (kind !== "object") {
    throw new ConfigError(
      `${prefix}: Backend must be a JSON object, got ${describe(raw)}: use e.g. {"Type": "vxlan"}`,
    );
  }
  const type = lookupMember(objectMembers(raw) ?? [], "Type");
  let backendType = "";
  if (type !== undefined && type.raw !== "null") {
    if (jsonKind(type.raw) !== "string") {
      throw new ConfigError(
        `${prefix}: Backend.${type.key} must be a string such as "vxlan", got ${
          describe(type.raw)
        }`,
      );
    }
    backendType = decodeJSONString(type.raw).toLowerCase();
  }
  return { backendType, backend: JSON.parse(raw) as Record<string, unknown> };
}

function check4(d: Draft): void {
  const net = d.network;
  if (net === undefined || (net.ip === 0 && net.prefix === 0)) {
    throw new ConfigError(
      'please define a correct Network parameter in the flannel config: set "Network" to an IPv4 CIDR such as "10.244.0.0/16"',
    );
  }
  const shown = `Network "${formatIP4Net(net)}"`;
  if (d.subnetLen > 0) {
    if (d.subnetLen > 30) {
      throw new ConfigError(
        `SubnetLen must be less than /31 (SubnetLen ${d.subnetLen}): use a SubnetLen of at most 30`,
      );
    }
    if (d.subnetLen < net.prefix + 2) {
      throw new ConfigError(
        `network must be able to accommodate at least four subnets (${shown}, SubnetLen ${d.subnetLen}): use a SubnetLen of at least ${
          net.prefix + 2
        } or a larger Network`,
      );
    }
  } else if (net.prefix > 28) {
    throw new ConfigError(
      `network is too small. Minimum useful network prefix is /28 (${shown}): use a /28 or larger Network`,
    );
  } else {
    d.subnetLen = net.prefix <= 22 ? 24 : net.prefix + 2;
  }
  const size = 2 ** (32 - d.subnetLen);
  const mask = mask4(d.subnetLen);
  const inNet = (ip: number) => ((ip & mask4(net.prefix)) >>> 0) === net.ip;
  if (d.subnetMin === 0) {
    d.subnetMin = (net.ip + size) >>> 0;
  } else if (!inNet(d.subnetMin)) {
    throw new ConfigError(
      `SubnetMin is not in the range of the Network (SubnetMin "${
        formatIP4(d.subnetMin)
      }", ${shown})`,
    );
  }
  if (d.subnetMax === 0) {
    d.subnetMax = (net.ip + 2 ** (32 - net.prefix) - size) >>> 0;
  } else if (!inNet(d.subnetMax)) {
    throw new ConfigError(
      `SubnetMax is not in the range of the Network (SubnetMax "${
        formatIP4(d.subnetMax)
      }", ${shown})`,
    );
  }
  for (const [name, ip] of [["SubnetMin", d.subnetMin], ["SubnetMax", d.subnetMax]] as const) {
    if (((ip & mask) >>> 0) !== ip) {
      throw new ConfigError(
        `${name} is not on a SubnetLen boundary: ${formatIP4(ip)} (SubnetLen ${d.subnetLen}): use ${
          formatIP4((ip & mask) >>> 0)
        } or another multiple of the subnet size`,
      );
    }
  }
}

function check6(d: Draft): void {
  const net = d.ipv6Network;
  if (net === undefined || (net.ip === 0n && net.prefix === 0)) {
    throw new ConfigError(
      'please define a correct IPv6Network parameter in the flannel config: set "IPv6Network" to an IPv6 CIDR such as "fd00:10:244::/56"',
    );
  }
  const shown = `IPv6Network "${formatIP6Net(net)}"`;
  if (d.ipv6SubnetLen > 0) {
    if (d.ipv6SubnetLen > 126) {
      throw new ConfigError(
        `SubnetLen must be less than /127 (IPv6SubnetLen ${d.ipv6SubnetLen}): use an IPv6SubnetLen of at most 126`,
      );
    }
    if (d.ipv6SubnetLen < net.prefix + 2) {
      throw new ConfigError(
        `network must be able to accommodate at least four subnets (${shown}, IPv6SubnetLen ${d.ipv6SubnetLen}): use an IPv6SubnetLen of at least ${
          net.prefix + 2
        } or a larger IPv6Network`,
      );
    }
  } else if (net.prefix > 124) {
    throw new ConfigError(
      `IPv6Network is too small. Minimum useful network prefix is /124 (${shown}): use a /124 or larger IPv6Network`,
    );
  } else {
    d.ipv6SubnetLen = net.prefix <= 62 ? 64 : net.prefix + 2;
  }
  const size = 1n << BigInt(128 - d.ipv6SubnetLen);
  const inNet = (ip: bigint) => (ip & mask6(net.prefix)) === net.ip;
  if (!d.ipv6SubnetMin) {
    d.ipv6SubnetMin = net.ip + size;
  } else if (!inNet(d.ipv6SubnetMin)) {
    throw new ConfigError(
      `IPv6SubnetMin is not in the range of the IPv6Network (IPv6SubnetMin "${
        formatIP6(d.ipv6SubnetMin)
      }", ${shown})`,
    );
  }
  if (!d.ipv6SubnetMax) {
    d.ipv6SubnetMax = net.ip + (1n << BigInt(128 - net.prefix)) - size;
  } else if (!inNet(d.ipv6SubnetMax)) {
    throw new ConfigError(
      `IPv6SubnetMax is not in the range of the IPv6Network (IPv6SubnetMax "${
        formatIP6(d.ipv6SubnetMax)
      }", ${shown})`,
    );
  }
  const mask = mask6(d.ipv6SubnetLen);
  for (
    const [name, ip] of [["IPv6SubnetMin", d.ipv6SubnetMin], [
      "IPv6SubnetMax",
      d.ipv6SubnetMax,
    ]] as const
  ) {
    if ((ip & mask) !== ip) {
      throw new ConfigError(
        `${name} is not on a SubnetLen boundary: ${
          formatIP6(ip)
        } (IPv6SubnetLen ${d.ipv6SubnetLen}): use ${
          formatIP6(ip & mask)
        } or another multiple of the subnet size`,
      );
    }
  }
}

/**
 * Parses network configuration JSON (flannel pkg/subnet/config.go) and, unless `validate` is false, applies
 * every default and check of flannel pkg/subnet/config.go (CheckNetworkConfig). Throws `ConfigError` for malformed JSON, a value of the wrong
 * JSON type, an unparsable address, both families disabled (flannel's `none defined stack`), and
 * every validation failure.
 *
 * Without validation (Kubernetes mode) the result holds what the JSON said plus the defaults
 * that flannel's order of checks reaches before the first failing check: with a usable
 * `Network`, `subnetLen`/`subnetMin`/`subnetMax` are defaulted as in etcd mode (same for IPv6);
 * fields that stay unset are 0. `network`/`ipv6Network` are set whenever the JSON gives them.
 */
export function parseNetworkConfig(
  text: string,
  options: ParseNetworkConfigOptions = {},
): NetworkConfig {
  const d: Draft = {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    subnetLen: 0,
    subnetMin: 0,
    subnetMax: 0,
    ipv6SubnetLen: 0,
  };
  for (const m of decodeMembers(text)) {
    const field = FIELD_NAMES.find((name) => foldEquals(m.key, name));
    if (field !== undefined) FIELDS[field](d, m);
  }
  const { backendType, backend } = resolveBackend(d.backendRaw);
  if (!d.enableIPv4 && !d.enableIPv6) {
    throw new ConfigError(
      "none defined stack: EnableIPv4 and EnableIPv6 are both false: enable at least one address family",
    );
  }
  const validate = options.validate ?? true;
  for (const [enabled, check] of [[d.enableIPv4, check4], [d.enableIPv6, check6]] as const) {
    if (!enabled) continue;
    try {
      check(d);
    } catch (err) {
      if (validate) throw err;
    }
  }
  return {
    enableIPv4: d.enableIPv4,
    enableIPv6: d.enableIPv6,
    enableNFTables: d.enableNFTables,
    ...(d.network && { network: d.network }),
    subnetLen: d.subnetLen,
    subnetMin: d.subnetMin,
    subnetMax: d.subnetMax,
    ...(d.ipv6Network && { ipv6Network: d.ipv6Network }),
    ipv6SubnetLen: d.ipv6SubnetLen,
    ipv6SubnetMin: d.ipv6SubnetMin ?? 0n,
    ipv6SubnetMax: d.ipv6SubnetMax ?? 0n,
    backendType,
    backend,
  };
}

/**
 * One log line describing a resolved configuration, e.g.
 * `Network=10.5.0.0/16 SubnetLen=24 SubnetMin=10.5.1.0 SubnetMax=10.5.255.0 Backend=vxlan`.
 */
export function formatNetworkConfigSummary(c: NetworkConfig): string {
  const parts: string[] = [];
  if (c.enableIPv4) {
    parts.push(
      `Network=${c.network ? formatIP4Net(c.network) : "(unset)"}`,
      `SubnetLen=${c.subnetLen}`,
      `SubnetMin=${formatIP4(c.subnetMin)}`,
      `SubnetMax=${formatIP4(c.subnetMax)}`,
    );
  } else {
    parts.push("EnableIPv4=false");
  }
  if (c.enableIPv6) {
    parts.push(
      `IPv6Network=${c.ipv6Network ? formatIP6Net(c.ipv6Network) : "(unset)"}`,
      `IPv6SubnetLen=${c.ipv6SubnetLen}`,
      `IPv6SubnetMin=${formatIP6(c.ipv6SubnetMin)}`,
      `IPv6SubnetMax=${formatIP6(c.ipv6SubnetMax)}`,
    );
  }
  if (c.enableNFTables) parts.push("EnableNFTables=true");
  parts.push(`Backend=${c.backendType === "" ? '""' : clip(c.backendType)}`);
  return parts.join(" ");
}
