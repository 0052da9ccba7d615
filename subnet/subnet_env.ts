/**
 * subnet.env (flannel pkg/subnet/subnet.go (WriteSubnetFile)): the file flannel writes for the CNI plugin, systemd units and
 * `mk-docker-opts.sh`, and reads back at startup to recover the previous subnets.
 *
 * The written form is byte-exact: unquoted `KEY=value` lines in flannel's order. The reader is
 * tolerant like `godotenv`, because operators and tools may have rewritten the file.
 */
import { atomicWriteFile } from "../util/atomic_write.ts";
import type { Logger } from "../util/log.ts";
import {
  formatIP4Net,
  formatIP6Net,
  type IP4Net,
  type IP6Net,
  parseIP4Net,
  parseIP6Net,
} from "./ip.ts";
import type { Lease, NetworkConfig } from "./mod.ts";

const MAX6 = (1n << 128n) - 1n;

/**
 * The subnet.env contents for this node: network and first usable address of the lease
 * (network address + 1, with the lease's prefix) for each enabled family, then MTU and ip-masq.
 */
export function formatSubnetEnv(
  config: NetworkConfig,
  lease: Lease,
  mtu: number,
  ipMasq: boolean,
): string {
  let out = "";
  if (config.enableIPv4) {
    if (config.network === undefined) {
      throw new TypeError(
        "Cannot format subnet.env: IPv4 is enabled but the config has no Network",
      );
    }
    out += `FLANNEL_NETWORK=${formatIP4Net(config.network)}\n`;
    const first = { ip: (lease.subnet.ip + 1) >>> 0, prefix: lease.subnet.prefix };
    out += `FLANNEL_SUBNET=${formatIP4Net(first)}\n`;
  }
  if (config.enableIPv6 && lease.ipv6Subnet !== undefined) {
    if (config.ipv6Network === undefined) {
      throw new TypeError(
        "Cannot format subnet.env: IPv6 is enabled but the config has no IPv6Network",
      );
    }
    out += `FLANNEL_IPV6_NETWORK=${formatIP6Net(config.ipv6Network)}\n`;
    const first = { ip: (lease.ipv6Subnet.ip + 1n) & MAX6, prefix: lease.ipv6Subnet.prefix };
    out += `FLANNEL_IPV6_SUBNET=${formatIP6Net(first)}\n`;
  }
  if (!Number.isInteger(mtu) || mtu < 0) {
    throw new RangeError(`Cannot format subnet.env: MTU ${mtu} is not a non-negative integer`);
  }
  out += `FLANNEL_MTU=${mtu}\n`;
  out += `FLANNEL_IPMASQ=${ipMasq}\n`;
  return out;
}

/** Writes subnet.env atomically (mode 0644 for a new file; an existing file keeps its mode). */
export function writeSubnetFile(path: string, content: string): Promise<void> {
  return atomicWriteFile(path, content, { mode: 0o644 });
}

const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t" };

/**
 * Parses dotenv text like `godotenv`: `KEY=value` or `KEY: value`, optional `export ` prefix,
 * `#` comments (whole-line, or after whitespace in an unquoted value), blank lines, CRLF,
 * single-quoted values taken literally, double-quoted values with `\n`, `\r`, `\t` and
 * `\<char>` escapes; quoted values may span lines. Later keys win. Unlike godotenv, `$VAR`
 * is not expanded (subnet.env never contains one). Malformed lines are skipped.
 */
export function parseDotenv(text: string): Map<string, string> {
  const src = text.replace(/\r\n?/g, "\n");
  const out = new Map<string, string>();
  let i = 0;
  const lineEnd = (from: number) => {
    const nl = src.indexOf("\n", from);
    return nl < 0 ? src.length : nl;
  };
  while (i < src.length) {
    let end = lineEnd(i);
    const line = src.slice(i, end).replace(/^\s+/, "");
    const m = /^(?:export\s+)?([A-Za-z_.][\w.-]*)\s*[=:][ \t]*/.exec(line);
    if (line === "" || line.startsWith("#") || m === null) {
      i = end + 1;
      continue;
    }
    const valueStart = end - line.length + m[0].length;
    const quote = src[valueStart];
    let value: string;
    if (quote === "'" || quote === '"') {
      let j = valueStart + 1;
      let buf = "";
      while (j < src.length && src[j] !== quote) {
        if (quote === '"' && src[j] === "\\" && j + 1 < src.length) {
          j++;
          buf += ESCAPES[src[j]] ?? src[j];
        } else {
          buf += src[j];
        }
        j++;
      }
      if (j >= src.length) break; // unterminated quote: godotenv rejects the rest
      value = buf;
      end = lineEnd(j);
    } else {
      value = src.slice(valueStart, end).replace(/\s#.*$/, "").trimEnd();
    }
    out.set(m[1], value);
    i = end + 1;
  }
  return out;
}

/** The subnets recorded in a previous subnet.env; a field is absent unless exactly one is valid. */
export interface PreviousSubnets {
  subnet?: IP4Net;
  network?: IP4Net;
  ipv6Subnet?: IP6Net;
  ipv6Network?: IP6Net;
}

function pickOne<T>(
  values: Map<string, string> | undefined,
  key: string,
  path: string,
  parse: (text: string) => T,
  log: Logger,
): T | undefined {
  const found: T[] = [];
  const raw = values?.get(key);
  if (raw !== undefined) {
    for (const piece of raw.split(",")) {
      try {
        found.push(parse(piece));
      } catch {
        log.error(
          `Couldn't parse previous ${key} from subnet file at ${path}: invalid CIDR address: ${piece}`,
        );
      }
    }
  }
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    log.warn(`no subnet found for key: ${key} in file: ${path}`);
  } else {
    log.error(`error reading subnet: more than 1 entry found for key: ${key} in file ${path}: `);
  }
  return undefined;
}

/**
 * Reads `FLANNEL_SUBNET`, `FLANNEL_NETWORK`, `FLANNEL_IPV6_SUBNET` and `FLANNEL_IPV6_NETWORK`
 * from a previous subnet.env (flannel main.go (reading the previous subnet.env)). Each value is split on `,` and every piece parsed
 * as a CIDR masked to its network (`10.5.72.1/24` → `10.5.72.0/24`); bad pieces are logged and
 * skipped. A key yields a subnet only when exactly one piece is valid. Never throws: a missing or
 * unreadable file yields nothing, with flannel's log lines.
 */
export async function readPreviousSubnets(path: string, log: Logger): Promise<PreviousSubnets> {
  const keys = ["FLANNEL_SUBNET", "FLANNEL_NETWORK", "FLANNEL_IPV6_SUBNET", "FLANNEL_IPV6_NETWORK"];
  let values: Map<string, string> | undefined;
  try {
    values = parseDotenv(await Deno.readTextFile(path));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      const reason = err instanceof Error ? err.message : String(err);
      for (const key of keys) {
        log.error(`Couldn't fetch previous ${key} from subnet file at ${path}: ${reason}`);
      }
    }
  }
  return {
    subnet: pickOne(values, "FLANNEL_SUBNET", path, parseIP4Net, log),
    network: pickOne(values, "FLANNEL_NETWORK", path, parseIP4Net, log),
    ipv6Subnet: pickOne(values, "FLANNEL_IPV6_SUBNET", path, parseIP6Net, log),
    ipv6Network: pickOne(values, "FLANNEL_IPV6_NETWORK", path, parseIP6Net, log),
  };
}
