/**
 * A minimal Kubernetes API client over `fetch`: the five calls the subnet manager makes (get,
 * list and watch nodes, patch node status, get pod). Authenticates per `ClientConfig` (bearer
 * token re-fetched once after a 401, client certificates, including ones an exec plugin returns).
 */
import { quote } from "../../util/quote.ts";
import { LineSplitter } from "../etcd/_ndjson.ts";
import type { SignalOptions } from "../mod.ts";
import type { ClientConfig, Credentials } from "./client_config.ts";
import { createSender, type Sender } from "./_transport.ts";
import type { Node, NodeList, Pod, Status, WatchEvent } from "./types.ts";

/** The API server answered with an error status (or a watch ERROR event). */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason?: string;

  constructor(message: string, status: number, reason?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }

  /** 410 Gone: the resourceVersion is too old; re-list. */
  get gone(): boolean {
    return this.status === 410;
  }
}

export interface KubeClientOptions {
  /** Timeout for one non-streaming request (default 30 s). */
  timeoutMs?: number;
}

export interface WatchOptions extends SignalOptions {
  /**
   * Server-side end of the watch (`timeoutSeconds`), default 30-39 s at random (spread so that
   * nodes do not re-watch in step).
   */
  timeoutSeconds?: number;
  /**
   * End the stream when nothing (not even a bookmark) arrives for this long, default
   * `timeoutSeconds` + 5 s: by then a live stream has ended, so its connection is dead.
   */
  idleTimeoutMs?: number;
}

/** Margin of the default idle bound over the server's `timeoutSeconds`. */
const IDLE_MARGIN_MS = 5000;
/** Bound on the answer to a watch request (the API server sends its headers at once). */
const WATCH_OPEN_TIMEOUT_MS = 10_000;

/** The watch got nothing, not even the end the server promised: its connection is presumed dead. */
export class WatchSilentError extends Error {
  readonly silentMs: number;
  constructor(message: string, silentMs: number) {
    super(message);
    this.name = "WatchSilentError";
    this.silentMs = silentMs;
  }
}

export const PATCH_STRATEGIC = "application/strategic-merge-patch+json";
export const PATCH_MERGE = "application/merge-patch+json";

function describeStatus(method: string, path: string, status: number, body: string): string {
  let detail = body.trim();
  try {
    const s = JSON.parse(body) as Status;
    if (s?.kind === "Status" && s.message) detail = s.message;
  } catch { /* not JSON */ }
  const hint = status === 401
    ? " (credentials rejected: check the token or client certificate)"
    : status === 403
    ? " (forbidden: the flannel ClusterRole needs get/list/watch on nodes, patch on " +
      "nodes/status and get on pods; see deploy/kube-flannel.yml)"
    : "";
  return `${method} ${path}: HTTP ${status}: ${quote(detail)}${hint}`;
}

export class KubeClient {
  readonly config: ClientConfig;
  readonly #timeoutMs: number;
  #sender: Sender;
  #senderCert?: string;
  readonly #closed = new AbortController();

  constructor(config: ClientConfig, options: KubeClientOptions = {}) {
    this.config = config;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#sender = this.#makeSender(config.cert, config.key);
    this.#senderCert = config.cert;
  }

  #makeSender(cert?: string, key?: string): Sender {
    return createSender({
      caCerts: this.config.caCerts,
      cert,
      key,
      insecureSkipTLSVerify: this.config.insecureSkipTLSVerify,
    });
  }

  close(): void {
    this.#closed.abort();
    this.#sender.close();
  }

  async #headers(creds: Credentials, extra: Record<string, string>) {
    const h: Record<string, string> = { Accept: "application/json", ...extra };
    if (creds.token) h.Authorization = `Bearer ${creds.token}`;
    else if (this.config.basicAuth) {
      const { username, password } = this.config.basicAuth;
      h.Authorization = `Basic ${btoa(`${username}:${password}`)}`;
    }
    if (creds.cert && creds.key && creds.cert !== this.#senderCert) {
      // An exec plugin handed us a (new) client certificate.
      this.#sender.close();
      this.#sender = this.#makeSender(creds.cert, creds.key);
      this.#senderCert = creds.cert;
    }
    return await Promise.resolve(h);
  }

  /** Sends one request; on 401 fetches fresh credentials and retries once. */
  async #send(
    method: string,
    path: string,
    init: { body?: string; contentType?: string; signal: AbortSignal },
  ): Promise<Response> {
    for (let attempt = 0;; attempt++) {
      const creds = (await this.config.credentials?.get(attempt > 0)) ?? {};
      const headers = await this.#headers(
        creds,
        init.contentType ? { "Content-Type": init.contentType } : {},
      );
      let response: Response;
      try {
        response = await this.#sender.send({
          method,
          url: this.config.server + path,
          headers,
          body: init.body,
          signal: init.signal,
        });
      } catch (err) {
        init.signal.throwIfAborted();
        throw new Error(`${method} ${this.config.server}${path} failed`, { cause: err });
      }
      if (response.status === 401 && attempt === 0 && this.config.credentials) {
        await response.body?.cancel();
        continue;
      }
      return response;
    }
  }

  /** A JSON request with the client timeout; throws `KubeApiError` for an error status. */
  async request<T>(
    method: string,
    path: string,
    options: SignalOptions & { body?: string; contentType?: string } = {},
  ): Promise<T> {
    const signal = AbortSignal.any([
      this.#closed.signal,
      AbortSignal.timeout(this.#timeoutMs),
      ...(options.signal ? [options.signal] : []),
    ]);
    const response = await this.#send(method, path, { ...options, signal });
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      signal.throwIfAborted();
      throw new Error(`${method} ${path}: reading the answer failed`, { cause: err });
    }
    if (!response.ok) {
      let reason: string | undefined;
      try {
        reason = (JSON.parse(text) as Status).reason;
      } catch { /* not JSON */ }
      throw new KubeApiError(
        describeStatus(method, path, response.status, text),
        response.status,
        reason,
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new Error(
        `${method} ${path}: the API server answered HTTP ${response.status} with non-JSON ${
          quote(text)
        }`,
        { cause: err },
      );
    }
  }

  getNode(name: string, options?: SignalOptions): Promise<Node> {
    return this.request<Node>("GET", `/api/v1/nodes/${encodeURIComponent(name)}`, options);
  }

  getPod(namespace: string, name: string, options?: SignalOptions): Promise<Pod> {
    return this.request<Pod>(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      options,
    );
  }

  /**
   * Lists all nodes; the list's resourceVersion starts a watch. With `fromCache`, as informers
   * do on start: `resourceVersion=0`, which the API server answers from its watch cache (no
   * quorum read of etcd, and no paging); otherwise a consistent read in pages of `limit`
   * (following `continue` tokens), which is also followed if the server pages a cached list.
   */
  async listNodes(
    options: SignalOptions & { limit?: number; fromCache?: boolean } = {},
  ): Promise<NodeList> {
    const items: Node[] = [];
    let token = "";
    const limit = options.limit ?? 500;
    for (let first = true;; first = false) {
      const q = first && options.fromCache
        ? new URLSearchParams({ resourceVersion: "0" })
        : new URLSearchParams({ limit: String(limit) });
      if (token) q.set("continue", token);
      const page = await this.request<NodeList>("GET", `/api/v1/nodes?${q}`, options);
      if (!Array.isArray(page?.items)) {
        throw new Error(`GET /api/v1/nodes: the answer has no "items" list`);
      }
      items.push(...page.items);
      token = page.metadata?.continue ?? "";
      if (!token) return { ...page, items };
    }
  }

  /** Strategic-merge (default) or merge patch of `nodes/<name>/status`. */
  patchNodeStatus(
    name: string,
    body: string,
    options: SignalOptions & { contentType?: string } = {},
  ): Promise<Node> {
    return this.request<Node>("PATCH", `/api/v1/nodes/${encodeURIComponent(name)}/status`, {
      ...options,
      body,
      contentType: options.contentType ?? PATCH_STRATEGIC,
    });
  }

  /**
   * Watches nodes from `resourceVersion`. Yields events (including bookmarks) until the server
   * ends the stream (after `timeoutSeconds`) or `signal` aborts (which ends the iteration
   * quietly). Throws `WatchSilentError` when nothing arrives for `idleTimeoutMs`, and
   * `KubeApiError` for an ERROR event or error status (410 = re-list).
   */
  async *watchNodes(
    resourceVersion: string,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<Node>> {
    const timeoutSeconds = options.timeoutSeconds ?? 30 + Math.floor(Math.random() * 10);
    const idleMs = options.idleTimeoutMs ?? timeoutSeconds * 1000 + IDLE_MARGIN_MS;
    const q = new URLSearchParams({
      watch: "1",
      resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(timeoutSeconds),
    });
    const path = `/api/v1/nodes?${q}`;
    const stop = new AbortController();
    const signal = AbortSignal.any([
      this.#closed.signal,
      stop.signal,
      ...(options.signal ? [options.signal] : []),
    ]);
    let idle: ReturnType<typeof setTimeout> | undefined;
    let silentMs = 0;
    const arm = (ms: number) => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        silentMs = ms;
        stop.abort(new Error("idle"));
      }, ms);
    };
    try {
      arm(Math.min(idleMs, WATCH_OPEN_TIMEOUT_MS));
      let response: Response;
      try {
        response = await this.#send("GET", path, { signal });
      } catch (err) {
        if (options.signal?.aborted || this.#closed.signal.aborted) return;
        if (silentMs) {
          throw new WatchSilentError(`GET ${path}: no answer within ${silentMs} ms`, silentMs);
        }
        throw err;
      }
      if (!response.ok) {
        const text = await response.text().catch(() => "");
        throw new KubeApiError(describeStatus("GET", path, response.status, text), response.status);
      }
      if (!response.body) return;
      const lines = new LineSplitter();
      try {
        arm(idleMs);
        for await (const chunk of response.body) {
          arm(idleMs);
          for (const line of lines.push(chunk)) yield parseEvent(line);
        }
        const rest = lines.flush();
        if (rest) yield parseEvent(rest);
      } catch (err) {
        if (options.signal?.aborted || this.#closed.signal.aborted) return;
        if (silentMs) {
          throw new WatchSilentError(
            `nothing for ${silentMs} ms (no event, bookmark or end; timeoutSeconds=${timeoutSeconds})`,
            silentMs,
          );
        }
        throw err;
      }
    } finally {
      clearTimeout(idle);
      stop.abort();
    }
  }
}

function parseEvent(line: string): WatchEvent<Node> {
  let event: WatchEvent<Node>;
  try {
    event = JSON.parse(line);
  } catch (err) {
    throw new Error(`watch of nodes: undecodable line ${quote(line)}`, {
      cause: err,
    });
  }
  if (event?.type === "ERROR") {
    const s = (event.object ?? {}) as Status;
    throw new KubeApiError(
      `watch of nodes: ERROR event: ${s.code ?? "?"} ${s.reason ?? ""}: ${s.message ?? ""}`,
      s.code ?? 500,
      s.reason,
    );
  }
  if (
    !event || typeof event.object !== "object" || event.object === null ||
    !["ADDED", "MODIFIED", "DELETED", "BOOKMARK"].includes(event.type)
  ) {
    throw new Error(`watch of nodes: unexpected event ${quote(line)}`);
  }
  return event;
}
