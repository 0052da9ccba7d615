/**
 * Helpers for Kubernetes-mode tests: a fake API server with a net-conf.json, managers built with
 * the real factory against it, log capture, and a peer view fed through `LeaseWatcher` as a
 * backend would see it.
 */
import { formatIP4, formatIP4Net } from "../subnet/ip.ts";
import { eventually as poll } from "./eventually.ts";
import { LeaseWatcher } from "../subnet/lease_watcher.ts";
import type { Lease } from "../subnet/mod.ts";
import { createKubeSubnetManager } from "../subnet/kube/mod.ts";
import type { KubeSubnetManager } from "../subnet/kube/manager.ts";
import type { Node } from "../subnet/kube/types.ts";
import { type RecordingLogger, recordingLogger } from "./recording_logger.ts";
import type { Logger } from "../util/log.ts";
import { FakeApiServer, type FakeApiServerOptions } from "./fake_apiserver.ts";

export const PREFIX = "flannel.alpha.coreos.com/";

/** The tests' recording logger at `-v=1`. */
export function captureLog(): RecordingLogger {
  return recordingLogger(1);
}

/** A cluster node as kubeadm creates it: podCIDR assigned, no flannel annotations yet. */
export function bareNode(name: string, podCIDR?: string | string[]): Node {
  return {
    metadata: { name, annotations: { "node.alpha.kubernetes.io/ttl": "0" } },
    spec: Array.isArray(podCIDR)
      ? { podCIDR: podCIDR[0], podCIDRs: podCIDR }
      : podCIDR
      ? { podCIDR, podCIDRs: [podCIDR] }
      : {},
    status: { conditions: [{ type: "Ready", status: "True" }] },
  };
}

/** A node already run by (real) flannel with host-gw. */
export function flannelNode(name: string, podCIDR: string, publicIP: string): Node {
  const n = bareNode(name, podCIDR);
  Object.assign(n.metadata!.annotations!, {
    [`${PREFIX}backend-data`]: "null",
    [`${PREFIX}backend-type`]: "host-gw",
    [`${PREFIX}kube-subnet-manager`]: "true",
    [`${PREFIX}public-ip`]: publicIP,
  });
  return n;
}

export class KubeCluster implements AsyncDisposable {
  readonly api: FakeApiServer;
  readonly dir: string;
  readonly netConfigPath: string;
  readonly #managers: KubeSubnetManager[] = [];
  readonly #aborts: AbortController[] = [];

  private constructor(api: FakeApiServer, dir: string) {
    this.api = api;
    this.dir = dir;
    this.netConfigPath = `${dir}/net-conf.json`;
  }

  static async start(
    netConf = '{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}',
    options: FakeApiServerOptions = {},
  ): Promise<KubeCluster> {
    const api = await FakeApiServer.start(options);
    const dir = await Deno.makeTempDir({ prefix: "flannel-kube-" });
    const c = new KubeCluster(api, dir);
    await Deno.writeTextFile(c.netConfigPath, netConf);
    return c;
  }

  async manager(
    nodeName: string,
    options: {
      log?: Logger;
      idleTimeoutMs?: number;
      watchTimeoutSeconds?: number;
      retryMs?: number;
    } = {},
  ): Promise<KubeSubnetManager> {
    const m = await createKubeSubnetManager({
      apiUrl: this.api.url,
      netConfigPath: this.netConfigPath,
      env: { NODE_NAME: nodeName },
      log: options.log ?? captureLog(),
      idleTimeoutMs: options.idleTimeoutMs,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      retryMs: options.retryMs ?? 50,
    });
    this.#managers.push(m);
    return m;
  }

  /** An AbortSignal aborted when the cluster is disposed. */
  signal(): AbortSignal {
    const ac = new AbortController();
    this.#aborts.push(ac);
    return ac.signal;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const a of this.#aborts) a.abort();
    await new Promise((r) => setTimeout(r, 10));
    for (const m of this.#managers) m.close();
    await this.api.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** What a backend would see: the peers of `own`, kept up to date from `watchLeases`. */
export class PeerView {
  readonly watcher: LeaseWatcher;
  readonly batches: number[] = [];
  #waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(manager: KubeSubnetManager, own: Lease | undefined, signal: AbortSignal) {
    const watcher = new LeaseWatcher(own);
    this.watcher = watcher;
    this.done = (async () => {
      for await (const result of manager.watchLeases({ signal })) {
        const batch = watcher.apply(result);
        this.batches.push(batch.length);
        for (const w of this.#waiters) w();
      }
    })();
  }

  /** Peers as `subnet via publicIP` strings, sorted. */
  get peers(): string[] {
    return this.watcher.leases.map((l) =>
      `${formatIP4Net(l.subnet)} via ${formatIP4(l.attrs.publicIP)}`
    ).sort();
  }

  /** Waits until `peers` equals `want` (or throws after `timeoutMs` showing what it saw). */
  async until(want: string[], timeoutMs = 5000): Promise<void> {
    const ok = () => JSON.stringify(this.peers) === JSON.stringify([...want].sort());
    if (ok()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!ok()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`peers ${JSON.stringify(this.peers)}, want ${JSON.stringify(want)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }
}

/** Resolves once `cond()` holds (polling), else throws after `timeoutMs` with `what`. */
export function eventually(
  cond: () => boolean,
  what: () => string,
  timeoutMs = 5000,
): Promise<void> {
  return poll(cond, timeoutMs, what);
}
