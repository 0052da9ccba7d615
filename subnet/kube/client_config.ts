/**
 * Where the API server is and how to authenticate (flannel pkg/subnet/kube/kube.go (NewSubnetManager) step 1, client-go's
 * `BuildConfigFromFlags`): `--kubeconfig-file` (its current context; server overridden by
 * `--kube-api-url`), else `--kube-api-url` alone (no credentials), else the in-cluster service
 * account (`KUBERNETES_SERVICE_HOST`/`_PORT`, token re-read when the kubelet rotates it, CA).
 */
import { ExecCredentialSource } from "./_exec_credential.ts";

/** A parsed kubeconfig node: whatever the YAML holds, checked field by field where read. */
// deno-lint-ignore no-explicit-any
type Yaml = any;

/** What authenticates one request. */
export interface Credentials {
  token?: string;
  cert?: string;
  key?: string;
}

/** Produces credentials per request; `refresh` after a 401 forces a new token. */
export interface CredentialSource {
  get(refresh: boolean): Promise<Credentials>;
}

export interface ClientConfig {
  /** `https://host:port` (no trailing slash). */
  server: string;
  caCerts?: string[];
  insecureSkipTLSVerify?: boolean;
  /** Static client certificate and key (PEM). */
  cert?: string;
  key?: string;
  basicAuth?: { username: string; password: string };
  credentials?: CredentialSource;
  /** Where this came from, for logs: `in-cluster`, `kubeconfig "/x" context "y"`, ... */
  source: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface ResolveOptions {
  kubeconfigFile?: string;
  apiUrl?: string;
  env?: Record<string, string | undefined>;
  /** In-cluster token/CA directory (tests). */
  serviceAccountDir?: string;
  /** How often the service-account token file is re-read at most (default 60 s). */
  tokenReloadMs?: number;
}

function readText(path: string, what: string, fix: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read ${what} "${path}": ${fix}`, { cause: err });
  }
}

function normalizeServer(server: string, what: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch (err) {
    throw new Error(`Invalid ${what} "${server}": expected a URL such as https://10.0.0.1:6443`, {
      cause: err,
    });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`Invalid ${what} "${server}": scheme must be https:// or http://`);
  }
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

/** A bearer token read from a file, re-read when older than `reloadMs` or after a 401. */
export class TokenFileSource implements CredentialSource {
  readonly #path: string;
  readonly #reloadMs: number;
  #token?: string;
  #readAt = 0;
  #mtime?: number;

  constructor(path: string, reloadMs = 60_000) {
    this.#path = path;
    this.#reloadMs = reloadMs;
  }

  async get(refresh: boolean): Promise<Credentials> {
    const now = Date.now();
    if (refresh || this.#token === undefined || now - this.#readAt >= this.#reloadMs) {
      const stat = await Deno.stat(this.#path).catch(() => undefined);
      const mtime = stat?.mtime?.getTime();
      if (this.#token === undefined || refresh || mtime !== this.#mtime) {
        try {
          this.#token = (await Deno.readTextFile(this.#path)).trim();
        } catch (err) {
          throw new Error(
            `Cannot read service account token "${this.#path}": mount the pod's service ` +
              `account token (automountServiceAccountToken) or pass --kubeconfig-file`,
            { cause: err },
          );
        }
        this.#mtime = mtime;
      }
      this.#readAt = now;
    }
    return { token: this.#token };
  }
}

/** Resolves the client configuration from the flags and environment. */
export async function resolveClientConfig(options: ResolveOptions): Promise<ClientConfig> {
  const env = options.env ?? {};
  if (options.kubeconfigFile) return await fromKubeconfig(options.kubeconfigFile, options.apiUrl);
  if (options.apiUrl) {
    return { server: normalizeServer(options.apiUrl, "--kube-api-url"), source: "--kube-api-url" };
  }
  const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error(
      "Cannot find the Kubernetes API server: not running in a pod (KUBERNETES_SERVICE_HOST and " +
        "KUBERNETES_SERVICE_PORT are unset) and neither --kubeconfig-file nor --kube-api-url is given",
    );
  }
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const h = host.includes(":") ? `[${host}]` : host;
  return {
    server: normalizeServer(`https://${h}:${port}`, "in-cluster API address"),
    caCerts: [
      readText(`${dir}/ca.crt`, "the service account CA", "mount the service account (in-cluster)"),
    ],
    credentials: new TokenFileSource(`${dir}/token`, options.tokenReloadMs),
    source: "in-cluster service account",
  };
}

function named(list: Yaml, name: string, kind: string, file: string, field: string): Yaml {
  const hit = Array.isArray(list) ? list.find((e) => e?.name === name) : undefined;
  if (!hit) {
    throw new Error(`kubeconfig "${file}": no ${kind} named "${name}" (from ${field})`);
  }
  return hit[kind] ?? {};
}

function dataOrFile(
  obj: Yaml,
  dataKey: string,
  fileKey: string,
  baseDir: string,
  file: string,
): string | undefined {
  const data = obj?.[dataKey];
  if (typeof data === "string" && data !== "") {
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
    } catch (err) {
      throw new Error(`kubeconfig "${file}": ${dataKey} is not base64`, { cause: err });
    }
  }
  const path = obj?.[fileKey];
  if (typeof path === "string" && path !== "") {
    const abs = path.startsWith("/") ? path : `${baseDir}/${path}`;
    return readText(abs, `${fileKey} of kubeconfig "${file}"`, "fix the path in the kubeconfig");
  }
  return undefined;
}

/**
 * The current context of a kubeconfig file (server overridden by `apiUrl`). The YAML parser is
 * loaded here, not with the module: in a pod (the DaemonSet) no kubeconfig is read, and the
 * parser alone costs ~3.5 MiB of RSS.
 */
export async function fromKubeconfig(file: string, apiUrl?: string): Promise<ClientConfig> {
  const text = readText(file, "--kubeconfig-file", "point --kubeconfig-file at a kubeconfig");
  const { load } = await import("js-yaml");
  let doc: Yaml;
  try {
    doc = load(text);
  } catch (err) {
    throw new Error(`Cannot parse --kubeconfig-file "${file}"`, { cause: err });
  }
  const baseDir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
  const contextName = doc?.["current-context"];
  if (typeof contextName !== "string" || contextName === "") {
    throw new Error(
      `kubeconfig "${file}" has no current-context: set one (kubectl config use-context NAME)`,
    );
  }
  const context = named(doc.contexts, contextName, "context", file, "current-context");
  const cluster = named(doc.clusters, context.cluster, "cluster", file, `context "${contextName}"`);
  const user = context.user
    ? named(doc.users, context.user, "user", file, `context "${contextName}"`)
    : {};
  const server = apiUrl ?? cluster.server;
  if (typeof server !== "string" || server === "") {
    throw new Error(`kubeconfig "${file}": cluster "${context.cluster}" has no server`);
  }
  if (user["auth-provider"]) {
    throw new Error(
      `kubeconfig "${file}": user "${context.user}" uses auth-provider ` +
        `"${user["auth-provider"]?.name}", which is not supported: use a token, a client ` +
        `certificate or an exec plugin`,
    );
  }
  const config: ClientConfig = {
    server: normalizeServer(server, apiUrl ? "--kube-api-url" : `server in "${file}"`),
    source: `kubeconfig "${file}" context "${contextName}"`,
  };
  const ca = dataOrFile(
    cluster,
    "certificate-authority-data",
    "certificate-authority",
    baseDir,
    file,
  );
  if (ca) config.caCerts = [ca];
  if (cluster["insecure-skip-tls-verify"] === true) config.insecureSkipTLSVerify = true;
  const cert = dataOrFile(user, "client-certificate-data", "client-certificate", baseDir, file);
  const key = dataOrFile(user, "client-key-data", "client-key", baseDir, file);
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error(
      `kubeconfig "${file}": user "${context.user}" has a client certificate without its key ` +
        `(or a key without its certificate): give both`,
    );
  }
  if (cert && key) Object.assign(config, { cert, key });
  if (typeof user.token === "string" && user.token !== "") {
    const token = user.token;
    config.credentials = { get: () => Promise.resolve({ token }) };
  } else if (typeof user.tokenFile === "string" && user.tokenFile !== "") {
    const path = user.tokenFile.startsWith("/") ? user.tokenFile : `${baseDir}/${user.tokenFile}`;
    config.credentials = new TokenFileSource(path);
  } else if (user.exec) {
    if (typeof user.exec.command !== "string") {
      throw new Error(`kubeconfig "${file}": user "${context.user}" exec has no command`);
    }
    config.credentials = new ExecCredentialSource(user.exec, {
      baseDir,
      cluster: {
        server: config.server,
        "certificate-authority-data": cluster["certificate-authority-data"],
      },
    });
  }
  if (typeof user.username === "string" && typeof user.password === "string") {
    config.basicAuth = { username: user.username, password: user.password };
  }
  return config;
}
