/**
 * The Kubernetes subnet manager (flannel pkg/subnet/kube/kube.go): subnets from `node.spec.podCIDR(s)`, the own
 * lease advertised in node annotations (patched on `nodes/<name>/status`), peers from a
 * list+watch of all nodes. Network config from `--net-config-path`, read once.
 */
import { Backoff, isAbort, sleep } from "../../util/abort.ts";
import { formatDuration } from "../renew.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type {
  Lease,
  LeaseAttrs,
  LeaseWatchResult,
  NetworkConfig,
  SignalOptions,
  SubnetManager,
} from "../mod.ts";
import type { Annotations } from "./annotations.ts";
import { KubeApiError, type KubeClient, WatchSilentError } from "./client.ts";
import { NodeLeaseState } from "./_node_state.ts";
import {
  annotationPatch,
  badAddressAnnotations,
  checkOwnPodCIDRs,
  macFromBackendData,
  nodeSource,
  ownAnnotations,
  parsePodCIDRs,
} from "./node_lease.ts";
import type { Node } from "./types.ts";

/** The calls the manager makes (the real one is `KubeClient`). */
export type KubeApi = Pick<KubeClient, "getNode" | "listNodes" | "watchNodes" | "patchNodeStatus">;

export interface KubeSubnetManagerOptions {
  client: KubeApi;
  nodeName: string;
  config: NetworkConfig;
  /** For messages: where `config` came from. */
  netConfigPath: string;
  annotations: Annotations;
  /** `--set-node-network-unavailable` (default true). */
  setNodeNetworkUnavailable?: boolean;
  log: Logger;
  /** Delay between own-lease attempts (flannel polls every 3 s). */
  retryMs?: number;
  /** Watch silence after which the stream is re-opened (default `watchTimeoutSeconds` + 5 s). */
  idleTimeoutMs?: number;
  /** Server-side watch timeout in seconds (default 30-39 at random). */
  watchTimeoutSeconds?: number;
  /** Reconnect backoff bounds (default 100 ms doubling to 5 s). */
  backoffMs?: { initial: number; max: number };
  now?: () => number;
  /** Called when the manager is closed (closes the client). */
  onClose?: () => void;
}

/** Backend types whose leases may carry IPv6 (others are forced to IPv4 only, as flannel). */
const DUAL_STACK_BACKENDS = new Set(["vxlan", "host-gw", "wireguard"]);

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class KubeSubnetManager implements SubnetManager {
  readonly name: string;
  readonly nodeName: string;
  readonly #o: KubeSubnetManagerOptions;
  readonly #a: Annotations;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Warnings already logged (each bad own annotation once, however often it is read). */
  readonly #warned = new Set<string>();

  constructor(options: KubeSubnetManagerOptions) {
    this.#o = options;
    this.#a = options.annotations;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.nodeName = options.nodeName;
    this.name = `Kubernetes Subnet Manager - ${options.nodeName}`;
  }

  close(): void {
    this.#o.onClose?.();
  }

  #warnOnce(warnings: Map<string, string>): void {
    for (const line of warnings.values()) {
      if (!this.#warned.has(line)) this.#log.warn(line);
      this.#warned.add(line);
    }
  }

  getNetworkConfig(): Promise<NetworkConfig> {
    return Promise.resolve(this.#o.config);
  }

  /**
   * Reads the own node, checks its podCIDR(s) against the network config, writes the lease
   * annotations and returns the lease. Every problem (no podCIDR yet, podCIDR outside Network,
   * API errors) is logged once per distinct message and retried until `signal` aborts.
   */
  async acquireLease(attrs: LeaseAttrs, options?: SignalOptions): Promise<Lease> {
    const signal = options?.signal;
    let last = "";
    while (true) {
      signal?.throwIfAborted();
      try {
        return await this.#tryAcquire(attrs, signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const message = describeError(err);
        if (message !== last) {
          this.#log.error(
            `Failed to acquire lease for node "${this.nodeName}" (retrying every ${
              (this.#o.retryMs ?? 3000) / 1000
            } s): ${message}`,
          );
          last = message;
        }
        await sleep(this.#o.retryMs ?? 3000, signal);
      }
    }
  }

  async #tryAcquire(attrs: LeaseAttrs, signal?: AbortSignal): Promise<Lease> {
    const name = this.nodeName;
    const node = await this.#o.client.getNode(name, { signal });
    if (!node.spec?.podCIDR && !(node.spec?.podCIDRs?.length)) {
      throw new Error(
        `node "${name}" pod cidr not assigned: the node has no spec.podCIDR; let ` +
          `kube-controller-manager assign one (--allocate-node-cidrs=true ` +
          `--cluster-cidr=<Network of ${this.#o.netConfigPath}>, kubeadm --pod-network-cidr) or ` +
          `set it with kubectl patch node ${name} -p '{"spec":{"podCIDR":"<cidr>"}}'`,
      );
    }
    const { subnet, ipv6Subnet } = checkOwnPodCIDRs(
      name,
      parsePodCIDRs(node),
      this.#o.config,
      this.#o.netConfigPath,
    );
    this.#warnOnce(badAddressAnnotations(node, this.#a));
    const changes = ownAnnotations(node, attrs, this.#a);
    if (changes) {
      await this.#o.client.patchNodeStatus(name, annotationPatch(changes), { signal });
      this.#log.info(
        `Patched node "${name}" annotations: ${Object.keys(changes).sort().join(", ")}`,
      );
    }
    const dual = DUAL_STACK_BACKENDS.has(attrs.backendType ?? "");
    const enableIPv6 = dual && this.#o.config.enableIPv6;
    return {
      enableIPv4: dual ? this.#o.config.enableIPv4 : true,
      enableIPv6,
      subnet,
      ...(enableIPv6 && ipv6Subnet && { ipv6Subnet }),
      attrs,
      expiration: this.#now() + 24 * 3600_000,
      source: nodeSource(name),
    };
  }

  /**
   * Patches `NetworkUnavailable=False` (flannel pkg/subnet/kube/kube.go) when `--set-node-network-unavailable`,
   * retrying a few times, then holds the lease until `signal` aborts, as the `SubnetManager`
   * contract says: Kubernetes leases need no renewal.
   */
  async completeLease(_lease: Lease, options?: SignalOptions): Promise<void> {
    const signal = options?.signal;
    if (this.#o.setNodeNetworkUnavailable !== false) await this.#setNetworkAvailable(signal);
    if (signal?.aborted) return;
    await new Promise<void>((resolve) =>
      signal?.addEventListener("abort", () => resolve(), { once: true })
    );
  }

  async #setNetworkAvailable(signal?: AbortSignal): Promise<void> {
    for (let attempt = 1; attempt <= 10 && !signal?.aborted; attempt++) {
      const now = rfc3339(this.#now());
      const body = JSON.stringify({
        status: {
          conditions: [{
            type: "NetworkUnavailable",
            status: "False",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
            reason: "FlannelIsUp",
            message: "Flannel is running on this node",
          }],
        },
      });
      try {
        await this.#o.client.patchNodeStatus(this.nodeName, body, { signal });
        this.#log.info(`Set node "${this.nodeName}" condition NetworkUnavailable=False`);
        return;
      } catch (err) {
        if (isAbort(err, signal)) return;
        this.#log.error(
          `Failed to set NetworkUnavailable=False on node "${this.nodeName}" (attempt ${attempt}` +
            ` of 10): ${describeError(err)}`,
        );
        await sleep(this.#o.retryMs ?? 3000, signal);
      }
    }
  }

  async #ownAnnotations(options?: SignalOptions): Promise<Record<string, string>> {
    try {
      const node = await this.#o.client.getNode(this.nodeName, options);
      return node.metadata?.annotations ?? {};
    } catch (err) {
      throw new Error(`Cannot read node "${this.nodeName}"`, { cause: err });
    }
  }

  /** The `node-public-ip` / `node-public-ipv6` annotations (they override `--public-ip[v6]`). */
  async storedPublicIPs(options?: SignalOptions): Promise<{ ipv4?: string; ipv6?: string }> {
    const ann = await this.#ownAnnotations(options);
    const bad = badAddressAnnotations(
      { metadata: { name: this.nodeName, annotations: ann } },
      this.#a,
    );
    this.#warnOnce(bad);
    const usable = (key: string) => bad.has(key) ? undefined : ann[key];
    const ipv4 = usable(this.#a.nodePublicIP), ipv6 = usable(this.#a.nodePublicIPv6);
    return { ...(ipv4 && { ipv4 }), ...(ipv6 && { ipv6 }) };
  }

  /** The VTEP MACs in the own `backend-data` / `backend-v6-data` annotations. */
  async storedMacAddresses(options?: SignalOptions): Promise<{ v4?: string; v6?: string }> {
    const ann = await this.#ownAnnotations(options);
    const v4 = macFromBackendData(ann[this.#a.backendData]);
    const v6 = macFromBackendData(ann[this.#a.backendV6Data]);
    return { ...(v4 && { v4 }), ...(v6 && { v6 }) };
  }

  /**
   * Leases of all flannel-managed nodes: a snapshot, then coalesced changes; a fresh snapshot
   * after every re-list (410 Gone). The list+watch runs in the background so a slow consumer
   * never stalls the stream.
   */
  async *watchLeases(options?: SignalOptions): AsyncIterable<LeaseWatchResult> {
    const signal = options?.signal;
    const state = new NodeLeaseState(this.#o.config, this.#a, this.#log);
    const stop = new AbortController();
    const pumpSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    pumpSignal.addEventListener("abort", notify, { once: true });
    const pump = this.#reflect(state, notify, pumpSignal);
    try {
      while (!pumpSignal.aborted) {
        const result = state.take();
        if (result) {
          yield result;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      stop.abort();
      await pump;
    }
  }

  /** List, then watch from the list's resourceVersion; resume, re-list or reconnect as needed. */
  async #reflect(state: NodeLeaseState, notify: () => void, signal: AbortSignal): Promise<void> {
    const b = this.#o.backoffMs;
    const backoff = new Backoff(b?.initial ?? 100, b?.max ?? 5000);
    let lastProblem = "";
    const problem = (message: string) => {
      if (message !== lastProblem) this.#log.warn(message);
      lastProblem = message;
    };
    // The first list comes from the API server's watch cache (resourceVersion=0), as informers
    // do: a DaemonSet rollout must not mean one quorum read of the node list per node. After
    // 410 Gone the cache may be as old as the expired version, so that re-list is consistent.
    let fromCache = true;
    while (!signal.aborted) {
      let rv: string;
      try {
        const list = await this.#o.client.listNodes({ signal, fromCache });
        rv = list.metadata?.resourceVersion ?? "";
        if (!rv) throw new Error("the node list has no metadata.resourceVersion");
        state.replace(list.items);
        this.#log.v(1, `Listed ${list.items.length} nodes at resourceVersion ${rv}`);
      } catch (err) {
        if (isAbort(err, signal)) return;
        problem(`Cannot list nodes (retrying): ${describeError(err)}`);
        await sleep(backoff.next(), signal);
        continue;
      }
      lastProblem = "";
      backoff.reset();
      notify();
      // Watch from rv; resume from the latest rv after each end or failure; re-list on 410.
      while (!signal.aborted) {
        const started = this.#now();
        let received = 0;
        try {
          for await (
            const ev of this.#o.client.watchNodes(rv, {
              signal,
              idleTimeoutMs: this.#o.idleTimeoutMs,
              timeoutSeconds: this.#o.watchTimeoutSeconds,
            })
          ) {
            received++;
            const node = ev.object as Node;
            const next = node?.metadata?.resourceVersion;
            if (next) rv = next;
            if (ev.type !== "BOOKMARK") {
              state.apply(ev.type as "ADDED" | "MODIFIED" | "DELETED", node);
              notify();
            }
            if (lastProblem) {
              this.#log.info(`Watch of nodes resumed at resourceVersion ${rv}`);
              lastProblem = "";
            }
            backoff.reset();
          }
          if (signal.aborted) return;
          // The server ended the stream (its timeout): resume at once unless it ends them fast.
          if (received > 0 || this.#now() - started > 1000) continue;
          await sleep(backoff.next(), signal);
        } catch (err) {
          if (isAbort(err, signal)) return;
          if (err instanceof WatchSilentError) {
            // A dead connection (a live stream ends by itself sooner): watch again at once.
            this.#log.info(
              `Watch of nodes restarted from resourceVersion ${rv}: silent for ${
                formatDuration(err.silentMs)
              } (${err.message})`,
            );
            continue;
          }
          if (err instanceof KubeApiError && err.gone) {
            this.#log.info(
              `Watch of nodes expired at resourceVersion ${rv} (410 Gone): re-listing`,
            );
            fromCache = false;
            break;
          }
          problem(
            `Watch of nodes interrupted (resuming from resourceVersion ${rv}): ${
              describeError(err)
            }`,
          );
          await sleep(backoff.next(), signal);
        }
      }
    }
  }
}
