/**
 * flanneld's command line resolved into {@linkcode Options}: flags (flannel main.go (flags)), then
 * `FLANNELD_*` environment variables for flags not given (flannel main.go (flagutil.SetFlagsFromEnv)), then defaults.
 */
import { FLAG_TABLE } from "./_flag_table.ts";
import { type FlagDef, FlagError, FlagSet, goQuote } from "./flags.ts";

export interface Options {
  /** `--etcd-endpoints` split on "," without trimming. */
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdKeyfile: string;
  etcdCertfile: string;
  etcdCafile: string;
  etcdUsername: string;
  etcdPassword: string;
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  subnetFile: string;
  publicIP: string;
  publicIPv6: string;
  /** Minutes. */
  subnetLeaseRenewMargin: number;
  ipMasq: boolean;
  ipMasqFullyRandomDisable: boolean;
  kubeSubnetMgr: boolean;
  kubeApiUrl: string;
  kubeAnnotationPrefix: string;
  kubeconfigFile: string;
  version: boolean;
  healthzIP: string;
  healthzPort: number;
  /** Seconds. */
  iptablesResync: number;
  iptablesForwardRules: boolean;
  ipBlackholeRoute: boolean;
  netConfigPath: string;
  setNodeNetworkUnavailable: boolean;
  v: number;
  vmodule: string;
  logBacktraceAt: string;
}

export interface ParsedOptions {
  options: Options;
  /** `-h`/`-help`/`--help` was given; `options` then holds only what preceded it. */
  help: boolean;
  /** Flag names set on the command line or through the environment. */
  explicit: ReadonlySet<string>;
  /** One message per unusable `FLANNELD_*` value; those flags keep their defaults. */
  envErrors: string[];
}

/** Every flag name, as given on the command line without dashes. */
export function flagNames(): string[] {
  return FLAG_TABLE.map((def) => def.name);
}

/** The environment variable consulted for flag `name`: `iface-can-reach` → `FLANNELD_IFACE_CAN_REACH`. */
export function envVarName(name: string): string {
  return "FLANNELD_" + name.toUpperCase().replaceAll(/[-.]/g, "_");
}

const EXPECTED: Readonly<Record<FlagDef["kind"], string>> = {
  string: "a string",
  list: "a string",
  int: "an integer (decimal, or 0x hex, 0o octal, 0b binary)",
  bool: "a boolean (true, false, 1, 0, t, f)",
};

/**
 * Parses `args` (without the program name) and falls back to `env` for every flag not on the
 * command line. Throws {@linkcode FlagError} for an unknown flag, a bad value, a missing value or
 * a positional argument; bad environment values are reported in `envErrors` instead.
 */
export function parseOptions(
  args: string[],
  env: Record<string, string | undefined>,
): ParsedOptions {
  const flags = new FlagSet(FLAG_TABLE);
  const { help } = flags.parse(args);
  const envErrors: string[] = [];
  if (!help) {
    const fromCli = new Set(flags.explicit);
    for (const def of FLAG_TABLE) {
      if (fromCli.has(def.name)) continue;
      const variable = envVarName(def.name);
      const text = env[variable];
      if (text === undefined || text === "") continue;
      try {
        flags.set(def.name, text);
      } catch (err) {
        if (!(err instanceof FlagError)) throw err;
        const reason = err.cause instanceof Error ? err.cause.message : err.message;
        envErrors.push(
          `invalid value ${goQuote(text)} for ${variable} (flag --${def.name}): ` +
            `expected ${EXPECTED[def.kind]}: ${reason}`,
        );
      }
    }
  }
  return { options: toOptions(flags), help, explicit: flags.explicit, envErrors };
}

function toOptions(f: FlagSet): Options {
  return {
    etcdEndpoints: f.string("etcd-endpoints").split(","),
    etcdPrefix: f.string("etcd-prefix"),
    etcdKeyfile: f.string("etcd-keyfile"),
    etcdCertfile: f.string("etcd-certfile"),
    etcdCafile: f.string("etcd-cafile"),
    etcdUsername: f.string("etcd-username"),
    etcdPassword: f.string("etcd-password"),
    iface: f.list("iface"),
    ifaceRegex: f.list("iface-regex"),
    ifaceCanReach: f.string("iface-can-reach"),
    subnetFile: f.string("subnet-file"),
    publicIP: f.string("public-ip"),
    publicIPv6: f.string("public-ipv6"),
    subnetLeaseRenewMargin: f.int("subnet-lease-renew-margin"),
    ipMasq: f.bool("ip-masq"),
    ipMasqFullyRandomDisable: f.bool("ip-masq-fully-random-disable"),
    kubeSubnetMgr: f.bool("kube-subnet-mgr"),
    kubeApiUrl: f.string("kube-api-url"),
    kubeAnnotationPrefix: f.string("kube-annotation-prefix"),
    kubeconfigFile: f.string("kubeconfig-file"),
    version: f.bool("version"),
    healthzIP: f.string("healthz-ip"),
    healthzPort: f.int("healthz-port"),
    iptablesResync: f.int("iptables-resync"),
    iptablesForwardRules: f.bool("iptables-forward-rules"),
    ipBlackholeRoute: f.bool("ip-blackhole-route"),
    netConfigPath: f.string("net-config-path"),
    setNodeNetworkUnavailable: f.bool("set-node-network-unavailable"),
    v: f.int("v"),
    vmodule: f.string("vmodule"),
    logBacktraceAt: f.string("log_backtrace_at"),
  };
}

/**
 * flannel's usage text: `Usage: <argv0> [OPTION]...` then every flag in Go `PrintDefaults`
 * layout. No trailing newline (`console.error` adds it).
 */
export function usage(argv0: string): string {
  const text = `Usage: ${argv0} [OPTION]...\n` + new FlagSet(FLAG_TABLE).printDefaults();
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}

/** The longest period a JavaScript timer can wait, in whole seconds (2^31−1 ms). */
const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);

/** Checks value ranges the flag kinds cannot express. Throws `RangeError` naming the fix. */
export function validateOptions(o: Options): void {
  if (!(o.subnetLeaseRenewMargin >= 1 && o.subnetLeaseRenewMargin < 24 * 60)) {
    throw new RangeError(
      `Invalid subnet-lease-renew-margin option ${o.subnetLeaseRenewMargin}, out of acceptable ` +
        `range: set --subnet-lease-renew-margin to a number of minutes from 1 to 1439 ` +
        `(the lease lives 24 h)`,
    );
  }
  if (!(o.healthzPort >= 0 && o.healthzPort <= 65535)) {
    throw new RangeError(
      `Invalid healthz-port option ${o.healthzPort}, out of acceptable range: set --healthz-port ` +
        `to a TCP port from 1 to 65535, or 0 to disable the health server`,
    );
  }
  if (!(o.iptablesResync >= 1 && o.iptablesResync <= MAX_TIMER_SECONDS)) {
    throw new RangeError(
      `Invalid iptables-resync option ${o.iptablesResync}, out of acceptable range: set ` +
        `--iptables-resync to a period in seconds from 1 to ${MAX_TIMER_SECONDS}`,
    );
  }
}

const REDACTED = "<redacted>";

/** Replaces the password of a `scheme://user:password@host` endpoint. */
function redactEndpoint(endpoint: string): string {
  return endpoint.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/, `$1:${REDACTED}@`);
}

/**
 * The options for the `CLI flags config: {...}` log line, with secrets replaced by
 * `"<redacted>"`: the etcd password and any password inside an etcd endpoint URL. (flannel logs
 * them in clear; we never log secrets.)
 */
export function redactedOptions(o: Options): Record<string, unknown> {
  return {
    ...o,
    etcdEndpoints: o.etcdEndpoints.map(redactEndpoint),
    etcdPassword: o.etcdPassword === "" ? "" : REDACTED,
  };
}
