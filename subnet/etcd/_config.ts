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
  cert: string;
  key: string;
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
 * flannel's rule: TLS with a client certificate only when both `--etcd-certfile` and
 * `--etcd-keyfile` are set; `--etcd-cafile` is then added to the trusted roots. Otherwise the
 * files are ignored (with flannel's warning), and https:// endpoints are verified against the
 * system roots.
 */
export function loadTls(flags: TlsFlags, log: Logger): TlsMaterial | undefined {
  const { caFile, certFile, keyFile } = flags;
  if (!certFile || !keyFile) {
    log.warn("no certificate provided: connecting to etcd with http. This is insecure");
    const ignored = [
      caFile ? `--etcd-cafile "${caFile}"` : "",
      certFile ? `--etcd-certfile "${certFile}"` : "",
      keyFile ? `--etcd-keyfile "${keyFile}"` : "",
    ].filter((s) => s !== "");
    if (ignored.length > 0) {
      log.warn(
        `Ignoring ${ignored.join(" and ")}: TLS needs both --etcd-certfile and --etcd-keyfile`,
      );
    }
    return undefined;
  }
  return {
    caCerts: caFile ? [readFlagFile("--etcd-cafile", caFile)] : undefined,
    cert: readFlagFile("--etcd-certfile", certFile),
    key: readFlagFile("--etcd-keyfile", keyFile),
  };
}
