/**
 * Entry point of the Kubernetes subnet manager for `main.ts`: builds the API client from the
 * flags, finds the node name, reads `--net-config-path`, and returns a `KubeSubnetManager`.
 */
import type { Logger } from "../../util/log.ts";
import { parseNetworkConfig } from "../config.ts";
import { formatIP4Net, formatIP6Net } from "../ip.ts";
import type { NetworkConfig } from "../mod.ts";
import { annotationsFor, DEFAULT_ANNOTATION_PREFIX } from "./annotations.ts";
import { KubeClient } from "./client.ts";
import { resolveClientConfig } from "./client_config.ts";
import { KubeSubnetManager } from "./manager.ts";

export { KubeApiError, KubeClient } from "./client.ts";
export { KubeSubnetManager } from "./manager.ts";

export interface CreateKubeSubnetManagerOptions {
  /** `--kubeconfig-file` ("" = none). */
  kubeconfigFile?: string;
  /** `--kube-api-url` ("" = none). */
  apiUrl?: string;
  /** `--kube-annotation-prefix` (default `flannel.alpha.coreos.com`). */
  annotationPrefix?: string;
  /** `--net-config-path` (default `/etc/kube-flannel/net-conf.json`). */
  netConfigPath?: string;
  /** `--set-node-network-unavailable` (default true). */
  setNodeNetworkUnavailable?: boolean;
  /** NODE_NAME, POD_NAME, POD_NAMESPACE, KUBERNETES_SERVICE_HOST/_PORT, EVENT_QUEUE_DEPTH. */
  env: Record<string, string | undefined>;
  log: Logger;
  signal?: AbortSignal;
  /** In-cluster token and CA directory (tests). */
  serviceAccountDir?: string;
  /** Watch silence before the stream is re-opened (tests; default watch timeout + 5 s). */
  idleTimeoutMs?: number;
  /** Server-side watch timeout in seconds (tests; default 30-39 at random). */
  watchTimeoutSeconds?: number;
  /** Delay between own-lease attempts (tests; default 3 s). */
  retryMs?: number;
}

export const DEFAULT_NET_CONFIG_PATH = "/etc/kube-flannel/net-conf.json";

/** Reads and parses net-conf.json (no flannel defaults/checks), requiring each enabled Network. */
export async function readNetConfig(path: string): Promise<NetworkConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(
      `failed to read net conf: "${path}": mount the kube-flannel-cfg ConfigMap there or set ` +
        `--net-config-path`,
      { cause: err },
    );
  }
  let config: NetworkConfig;
  try {
    config = parseNetworkConfig(text, { validate: false });
  } catch (err) {
    throw new Error(`error parsing subnet config: ${path}`, { cause: err });
  }
  if (config.enableIPv4 && (!config.network || config.network.prefix === 0)) {
    throw new Error(
      `error parsing subnet config: ${path}: IPv4 is enabled but "Network" is missing: set it ` +
        `to the cluster's pod CIDR, e.g. "Network": "10.244.0.0/16"` +
        (config.enableIPv6
          ? `, or for an IPv6-only cluster set "EnableIPv4": false (it defaults to true)`
          : ""),
    );
  }
  if (config.enableIPv6 && (!config.ipv6Network || config.ipv6Network.prefix === 0)) {
    throw new Error(
      `error parsing subnet config: ${path}: IPv6 is enabled but "IPv6Network" is missing: set ` +
        `it to the cluster's IPv6 pod CIDR`,
    );
  }
  return config;
}

/** flannel's node name rule: NODE_NAME, else the `spec.nodeName` of POD_NAMESPACE/POD_NAME. */
async function nodeNameOf(
  client: KubeClient,
  env: Record<string, string | undefined>,
  signal?: AbortSignal,
): Promise<string> {
  if (env.NODE_NAME) return env.NODE_NAME;
  const pod = env.POD_NAME, ns = env.POD_NAMESPACE;
  if (!pod || !ns) {
    throw new Error(
      "env variables POD_NAME and POD_NAMESPACE must be set (or NODE_NAME): in the DaemonSet, " +
        "set them from fieldRef metadata.name and metadata.namespace",
    );
  }
  let spec;
  try {
    spec = (await client.getPod(ns, pod, { signal })).spec;
  } catch (err) {
    throw new Error(`error retrieving pod spec for '${ns}/${pod}'`, { cause: err });
  }
  if (!spec?.nodeName) throw new Error(`node name not present in pod spec '${ns}/${pod}'`);
  return spec.nodeName;
}

/**
 * Builds the manager. Throws (for main to log and exit 1) on a bad annotation prefix, an
 * unusable kubeconfig or in-cluster setup, an unknown node name, or an unreadable net-conf.json.
 */
export async function createKubeSubnetManager(
  options: CreateKubeSubnetManagerOptions,
): Promise<KubeSubnetManager> {
  const { env, log } = options;
  const annotations = annotationsFor(options.annotationPrefix || DEFAULT_ANNOTATION_PREFIX);
  const depth = env.EVENT_QUEUE_DEPTH;
  if (depth && !/^[-+]?\d+$/.test(depth)) {
    throw new Error(`env EVENT_QUEUE_DEPTH=${depth} format error: expected an integer`);
  }
  // flannel's manifest and chart set both; they are accepted, and neither changes anything here:
  // node updates coalesce per node (there is no event queue to size), and a node list that is
  // slow or fails is retried, never fatal (flannel's CONT_WHEN_CACHE_NOT_READY=true, always).
  const cont = env.CONT_WHEN_CACHE_NOT_READY;
  if (depth || cont) {
    log.info(
      `Accepted ${depth ? `EVENT_QUEUE_DEPTH=${depth} ` : ""}${
        cont ? `CONT_WHEN_CACHE_NOT_READY=${cont} ` : ""
      }(no effect: updates coalesce per node, and the node list is retried until it succeeds)`,
    );
  }
  const netConfigPath = options.netConfigPath || DEFAULT_NET_CONFIG_PATH;
  const config = await readNetConfig(netConfigPath);
  const clientConfig = await resolveClientConfig({
    kubeconfigFile: options.kubeconfigFile || undefined,
    apiUrl: options.apiUrl || undefined,
    env,
    serviceAccountDir: options.serviceAccountDir,
  });
  const client = new KubeClient(clientConfig);
  try {
    const nodeName = await nodeNameOf(client, env, options.signal);
    log.info(
      `Kubernetes API ${clientConfig.server} (${clientConfig.source}), node "${nodeName}", ` +
        `Network ${config.network ? formatIP4Net(config.network) : "-"}${
          config.ipv6Network ? ` IPv6Network ${formatIP6Net(config.ipv6Network)}` : ""
        } from ${netConfigPath}`,
    );
    return new KubeSubnetManager({
      client,
      nodeName,
      config,
      netConfigPath,
      annotations,
      setNodeNetworkUnavailable: options.setNodeNetworkUnavailable ?? true,
      log,
      idleTimeoutMs: options.idleTimeoutMs,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      retryMs: options.retryMs,
      onClose: () => client.close(),
    });
  } catch (err) {
    client.close();
    throw new Error("Failed to create Kubernetes subnet manager", {
      cause: err,
    });
  }
}
