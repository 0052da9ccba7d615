/** Resolves the client's endpoints and TLS material from the `--etcd-*` flags. */
import type { Logger } from "../../util/log.ts";

/** Parses each endpoint into its origin (`https://10.0.0.1:2379`); paths are ignored, as in clientv3. */
export function parseEndpoints(endpoints: string[]): string[] {
  if (endpoints.length === 0) {
    throw new Error("No etcd endpoint given: set --etcd-endpoints (e.g. http://127.0.0.1:2379)");
  }
  return endpoints.map((value) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch (err) {
      throw new Error(
        `Invalid --etcd-endpoints entry "${value}": not a URL; expected http://host:port or https://host:port`,
        { cause: err },
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(
        `Invalid --etcd-endpoints entry "${value}": unsupported scheme "${url.protocol}"; expected http:// or https://`,
      );
    }
    if (url.hostname === "") {
      throw new Error(`Invalid --etcd-endpoints entry "${value}": no host`);
    }
    return url.origin;
  });
}

export interface TlsFlags {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface TlsMaterial {
  caCerts?: string[];
  /** Client certificate and key: both or neither. */
  cert?: string;
  key?: string;
}

function readFlagFile(flag: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "file does not exist"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : "cannot read it";
    throw new Error(
      `Cannot read ${flag} "${path}": ${why}; point ${flag} at an existing PEM file or leave it empty`,
      { cause: err },
    );
  }
}

/**
 * flannel's rule: a client certificate only when both `--etcd-certfile` and `--etcd-keyfile` are
 * set, with `--etcd-cafile` added to the trusted roots. Otherwise flannel ignores all three (with
 * its warning); we differ for `--etcd-cafile` alone with an `https://` endpoint: it verifies
 * etcd's certificate (server-only TLS, a legitimate setup that flannel cannot connect to when the
 * CA is private). Without a CA, `https://` endpoints are verified against the system roots.
 */
export function loadTls(
  flags: TlsFlags & { endpoints: string[] },
  log: Logger,
): TlsMaterial | undefined {
  const { caFile, certFile, keyFile, endpoints } = flags;
  const https = endpoints.some((e) => e.startsWith("https:"));
  const readCa = () => caFile ? [readFlagFile("--etcd-cafile", caFile)] : undefined;
  if (certFile && keyFile) {
    return {
      caCerts: readCa(),
      cert: readFlagFile("--etcd-certfile", certFile),
      key: readFlagFile("--etcd-keyfile", keyFile),
    };
  }
  if (endpoints.some((e) => e.startsWith("http:"))) {
    log.warn("no certificate provided: connecting to etcd with http. This is insecure");
  }
  const caUsed = Boolean(caFile) && https;
  const ignored = [
    caFile && !caUsed ? `--etcd-cafile "${caFile}"` : "",
    certFile ? `--etcd-certfile "${certFile}"` : "",
    keyFile ? `--etcd-keyfile "${keyFile}"` : "",
  ].filter((s) => s !== "");
  if (ignored.length > 0) {
    const needs = caUsed ? "a client certificate needs" : "TLS needs";
    log.warn(`Ignoring ${ignored.join(" and ")}: ${needs} both --etcd-certfile and --etcd-keyfile`);
  }
  if (!caUsed) return undefined;
  log.info(
    `Verifying etcd's certificate with --etcd-cafile "${caFile}"; no client certificate ` +
      "(--etcd-certfile and --etcd-keyfile are not both set)",
  );
  return { caCerts: readCa() };
}
