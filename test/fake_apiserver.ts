/**
 * A fake Kubernetes API server for tests, following the real one where the subnet manager
 * depends on it: nodes with a cluster-wide resourceVersion, list (with `limit`/`continue`), watch
 * from a resourceVersion (newline-delimited JSON ADDED/MODIFIED/DELETED/BOOKMARK/ERROR events;
 * with `timeoutSeconds` the stream ends after that long, and with `allowWatchBookmarks` a
 * BOOKMARK carrying the current resourceVersion comes 2 s before that end, as the real watch
 * cache sends it), 410 Gone for versions older than the kept history
 * (as an ERROR event like the real server, or as HTTP 410), strategic-merge and merge patches on
 * `nodes/<n>` and `nodes/<n>/status` (each subresource keeps to its half of the object), pods,
 * bearer-token and client-certificate auth (TLS), streams dropped or silently dead on demand,
 * failures injected,
 * and a restart that keeps the store but (by default) not the watch history.
 */
import http from "node:http";
import https from "node:https";
import type { Node, Pod } from "../subnet/kube/types.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

export interface FakeApiServerOptions {
  /** Bearer tokens accepted (mutable through `tokens`). None and no `clientCA` → no auth. */
  tokens?: string[];
  /** Serve TLS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** With `tls`: require client certificates signed by this CA (PEM). */
  clientCA?: string;
  /**
   * Also send BOOKMARK events this often on watches that allow them (the real server: about
   * every minute; 0 = never, the default).
   */
  bookmarkMs?: number;
  /** Answer an expired resourceVersion with HTTP 410 instead of an ERROR event. */
  goneAsHttp?: boolean;
  /** Events of history kept for watch resumption (default 1000). */
  historyLimit?: number;
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  hostname?: string;
}

interface Stored {
  type: "ADDED" | "MODIFIED" | "DELETED";
  rv: number;
  object: Node;
}

interface WatchStream {
  send(line: string): void;
  end(abrupt: boolean): void;
  /** Sends nothing more and never ends: a connection whose other end is gone. */
  freeze(): void;
}

interface Injected {
  status: number;
  body: string;
  match?: RegExp;
}

const clone = <T>(v: T): T => structuredClone(v);

function status(code: number, reason: string, message: string) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** Lists merged by key under strategic merge (path → merge key). */
const MERGE_KEYS: Record<string, string> = {
  "status.conditions": "type",
  "status.addresses": "type",
};

/** RFC 7386 merge patch; with `strategic`, known lists merge by key and `null` deletes. */
export function applyPatch(target: Json, patch: Json, strategic: boolean, path = ""): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
    if (strategic && Array.isArray(patch) && Array.isArray(target) && MERGE_KEYS[path]) {
      const key = MERGE_KEYS[path];
      const out = clone(target);
      for (const item of patch) {
        const i = out.findIndex((e: Json) => e?.[key] === item?.[key]);
        if (i >= 0) out[i] = applyPatch(out[i], item, strategic, `${path}[]`);
        else out.push(item);
      }
      return out;
    }
    return clone(patch);
  }
  const out = target !== null && typeof target === "object" && !Array.isArray(target)
    ? clone(target)
    : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyPatch(out[k], v, strategic, path ? `${path}.${k}` : k);
  }
  return out;
}

export class FakeApiServer implements AsyncDisposable {
  readonly #o: FakeApiServerOptions;
  tokens: Set<string>;
  #rv = 1;
  #nodes = new Map<string, Node>();
  #pods = new Map<string, Pod>();
  #history: Stored[] = [];
  /** Oldest resourceVersion a watch may resume from (exclusive bound of lost history). */
  #oldest = 1;
  #watches = new Set<WatchStream>();
  /** Frozen streams, kept open until the server stops. */
  #frozen = new Set<WatchStream>();
  #injected: Injected[] = [];
  #server?: { close(): Promise<void> };
  #port = 0;
  /** Every request: method, path with query, content type, body. */
  readonly requests: { method: string; url: string; contentType: string; body: string }[] = [];

  private constructor(options: FakeApiServerOptions) {
    this.#o = options;
    this.tokens = new Set(options.tokens ?? []);
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(options);
    await s.#listen(options.port ?? 0);
    return s;
  }

  get url(): string {
    return `${this.#o.tls ? "https" : "http"}://${this.#o.hostname ?? "127.0.0.1"}:${this.#port}`;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  get watchCount(): number {
    return this.#watches.size;
  }

  // ---- store (test control) ----

  #record(type: Stored["type"], node: Node): void {
    this.#rv++;
    node.metadata = { ...node.metadata, resourceVersion: String(this.#rv) };
    const object = clone(node);
    const ev: Stored = { type, rv: this.#rv, object };
    this.#history.push(ev);
    const limit = this.#o.historyLimit ?? 1000;
    if (this.#history.length > limit) {
      const dropped = this.#history.splice(0, this.#history.length - limit);
      this.#oldest = dropped[dropped.length - 1].rv;
    }
    const line = JSON.stringify({ type, object }) + "\n";
    for (const w of this.#watches) w.send(line);
  }

  /** Creates or replaces a node (ADDED or MODIFIED). */
  setNode(node: Node): Node {
    const name = node.metadata?.name;
    if (!name) throw new Error("setNode: metadata.name is required");
    const copy = clone(node);
    copy.apiVersion = "v1";
    copy.kind = "Node";
    const type = this.#nodes.has(name) ? "MODIFIED" : "ADDED";
    this.#nodes.set(name, copy);
    this.#record(type, copy);
    return clone(copy);
  }

  /** Applies `change` to a stored node (MODIFIED). */
  updateNode(name: string, change: (n: Node) => void): Node {
    const node = this.#nodes.get(name);
    if (!node) throw new Error(`updateNode: no node "${name}"`);
    const copy = clone(node);
    change(copy);
    this.#nodes.set(name, copy);
    this.#record("MODIFIED", copy);
    return clone(copy);
  }

  deleteNode(name: string): void {
    const node = this.#nodes.get(name);
    if (!node) throw new Error(`deleteNode: no node "${name}"`);
    this.#nodes.delete(name);
    this.#record("DELETED", clone(node));
  }

  getNode(name: string): Node | undefined {
    const n = this.#nodes.get(name);
    return n && clone(n);
  }

  setPod(namespace: string, pod: Pod): void {
    this.#pods.set(`${namespace}/${pod.metadata?.name}`, clone(pod));
  }

  /** Forgets the watch history: resuming from any earlier resourceVersion gets 410 Gone. */
  compact(): void {
    this.#history = [];
    this.#oldest = this.#rv;
  }

  /** Ends every watch stream (cleanly, or by resetting the connection). */
  dropWatches(options: { abrupt?: boolean } = {}): void {
    for (const w of [...this.#watches]) w.end(options.abrupt ?? false);
    this.#watches.clear();
  }

  /**
   * Every open watch goes silently dead, as when the connection's other end vanishes without a
   * reset: no more events or bookmarks, no end at `timeoutSeconds`, the connection stays open.
   */
  freezeWatches(): void {
    for (const w of this.#watches) {
      w.freeze();
      this.#frozen.add(w);
    }
    this.#watches.clear();
  }

  /** Sends a raw line to every open watch (garbage tests). */
  sendRawWatchLine(line: string): void {
    for (const w of this.#watches) w.send(line.endsWith("\n") ? line : line + "\n");
  }

  /** The next `count` requests whose path matches `match` get this answer instead. */
  failNext(count: number, statusCode: number, body?: string, match?: RegExp): void {
    const text = body ??
      JSON.stringify(status(statusCode, "InternalError", `injected failure ${statusCode}`));
    for (let i = 0; i < count; i++) this.#injected.push({ status: statusCode, body: text, match });
  }

  /** Stops listening (open watches are reset), then listens again on the same port. */
  async restart(options: { keepHistory?: boolean; downMs?: number } = {}): Promise<void> {
    await this.stop();
    if (!options.keepHistory) this.compact();
    if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
    await this.#listen(this.#port);
  }

  async stop(): Promise<void> {
    this.dropWatches({ abrupt: true });
    for (const w of this.#frozen) w.end(true);
    this.#frozen.clear();
    await this.#server?.close();
    this.#server = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- HTTP ----

  async #listen(port: number): Promise<void> {
    // node:http(s) rather than Deno.serve: it can ask for client certificates and reset a
    // connection (an abrupt drop) without logging an error.
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.#nodeAdapter(req, res);
    const tls = this.#o.tls;
    const srv = tls
      ? https.createServer({
        cert: tls.cert,
        key: tls.key,
        ...(this.#o.clientCA && {
          ca: this.#o.clientCA,
          requestCert: true,
          rejectUnauthorized: false,
        }),
      }, handler)
      : http.createServer(handler);
    await new Promise<void>((resolve) =>
      srv.listen(port, this.#o.hostname ?? "127.0.0.1", () => resolve())
    );
    this.#port = (srv.address() as { port: number }).port;
    this.#server = {
      close: () =>
        new Promise<void>((resolve) => {
          srv.close(() => resolve());
          srv.closeAllConnections?.();
        }),
    };
  }

  #nodeAdapter(req: http.IncomingMessage, res: http.ServerResponse): void {
    // deno-lint-ignore no-explicit-any
    const authorized = Boolean(this.#o.clientCA && (req.socket as any).authorized);
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("end", async () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string") headers.set(k, v);
      }
      const body = chunks.length ? new Blob(chunks as BlobPart[]) : undefined;
      const request = new Request(`https://127.0.0.1${req.url}`, {
        method: req.method,
        headers,
        ...(body && req.method !== "GET" && { body }),
      });
      const response = await this.#handle(request, authorized);
      if (response.headers.get("transfer-encoding")) response.headers.delete("transfer-encoding");
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.flushHeaders();
      if (!response.body) return void res.end();
      const reader = response.body.getReader();
      res.on("close", () => reader.cancel().catch(() => {}));
      try {
        while (true) {
          const { done, value } = await reader.read();
          if (done) break;
          res.write(value);
        }
        res.end();
      } catch {
        res.destroy();
      }
    });
  }

  #json(code: number, body: Json): Response {
    return new Response(typeof body === "string" ? body : JSON.stringify(body), {
      status: code,
      headers: { "content-type": "application/json" },
    });
  }

  async #handle(req: Request, certAuthorized: boolean): Promise<Response> {
    const url = new URL(req.url);
    const body = req.method === "GET" ? "" : await req.text();
    const contentType = req.headers.get("content-type") ?? "";
    this.requests.push({ method: req.method, url: url.pathname + url.search, contentType, body });
    // Authentication.
    if (this.tokens.size > 0 || this.#o.clientCA) {
      const auth = req.headers.get("authorization") ?? "";
      const tokenOk = auth.startsWith("Bearer ") && this.tokens.has(auth.slice(7));
      if (!tokenOk && !certAuthorized) {
        return this.#json(401, status(401, "Unauthorized", "Unauthorized"));
      }
    }
    const i = this.#injected.findIndex((x) => !x.match || x.match.test(url.pathname + url.search));
    if (i >= 0) {
      const [inj] = this.#injected.splice(i, 1);
      return new Response(inj.body, { status: inj.status });
    }
    const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
    if (parts[0] !== "api" || parts[1] !== "v1") {
      return this.#json(404, status(404, "NotFound", `the server could not find ${url.pathname}`));
    }
    const [, , resource, name, sub] = parts;
    if (resource === "nodes") {
      if (!name && req.method === "GET") {
        return url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true"
          ? this.#watch(url)
          : this.#list(url);
      }
      if (name && req.method === "GET" && !sub) {
        const n = this.#nodes.get(name);
        return n
          ? this.#json(200, n)
          : this.#json(404, status(404, "NotFound", `nodes "${name}" not found`));
      }
      if (name && req.method === "PATCH" && (!sub || sub === "status")) {
        return this.#patch(name, sub === "status", contentType, body);
      }
      return this.#json(405, status(405, "MethodNotAllowed", `${req.method} not allowed`));
    }
    if (resource === "namespaces" && parts[4] === "pods" && parts[5] && req.method === "GET") {
      const pod = this.#pods.get(`${name}/${parts[5]}`);
      return pod
        ? this.#json(200, pod)
        : this.#json(404, status(404, "NotFound", `pods "${parts[5]}" not found`));
    }
    return this.#json(404, status(404, "NotFound", `the server could not find ${url.pathname}`));
  }

  #list(url: URL): Response {
    const names = [...this.#nodes.keys()].sort();
    // resourceVersion=0 is served from the watch cache, which ignores `limit` (no paging).
    const cached = url.searchParams.get("resourceVersion") === "0";
    const limit = cached ? 0 : Number(url.searchParams.get("limit") ?? "0");
    const after = url.searchParams.get("continue") ? atob(url.searchParams.get("continue")!) : "";
    let selected = names.filter((n) => n > after);
    let cont: string | undefined;
    if (limit > 0 && selected.length > limit) {
      selected = selected.slice(0, limit);
      cont = btoa(selected[selected.length - 1]);
    }
    return this.#json(200, {
      kind: "NodeList",
      apiVersion: "v1",
      metadata: { resourceVersion: String(this.#rv), ...(cont && { continue: cont }) },
      items: selected.map((n) => this.#nodes.get(n)),
    });
  }

  #watch(url: URL): Response {
    const from = url.searchParams.get("resourceVersion") ?? "";
    const bookmarks = url.searchParams.get("allowWatchBookmarks") === "true";
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? "0");
    const initial: string[] = [];
    if (from === "" || from === "0") {
      for (const n of this.#nodes.values()) {
        initial.push(JSON.stringify({ type: "ADDED", object: n }) + "\n");
      }
    } else {
      const rv = Number(from);
      if (!Number.isInteger(rv) || rv < this.#oldest) {
        const s = status(410, "Expired", `too old resource version: ${from} (${this.#oldest})`);
        if (this.#o.goneAsHttp) return this.#json(410, s);
        return new Response(JSON.stringify({ type: "ERROR", object: s }) + "\n", {
          headers: { "content-type": "application/json" },
        });
      }
      for (const ev of this.#history) {
        if (ev.rv > rv) initial.push(JSON.stringify({ type: ev.type, object: ev.object }) + "\n");
      }
    }
    const encoder = new TextEncoder();
    const watches = this.#watches;
    const bookmarkMs = this.#o.bookmarkMs ?? 0;
    const currentRv = () => String(this.#rv);
    let stream: WatchStream;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        let open = true;
        let frozen = false;
        const stopTimers = () => {
          for (const t of timers) clearTimeout(t), clearInterval(t);
        };
        const finish = () => {
          open = false;
          watches.delete(stream);
          stopTimers();
        };
        stream = {
          send(line) {
            if (open && !frozen) controller.enqueue(encoder.encode(line));
          },
          end(abrupt) {
            if (!open) return;
            finish();
            if (abrupt) controller.error(new Error("connection reset by fake API server"));
            else controller.close();
          },
          freeze() {
            frozen = true;
            stopTimers();
          },
        };
        watches.add(stream);
        for (const line of initial) stream.send(line);
        const bookmark = () =>
          stream.send(
            JSON.stringify({
              type: "BOOKMARK",
              object: {
                kind: "Node",
                apiVersion: "v1",
                metadata: { resourceVersion: currentRv() },
              },
            }) + "\n",
          );
        if (bookmarks && bookmarkMs > 0) timers.push(setInterval(bookmark, bookmarkMs));
        if (bookmarks && timeout > 2) timers.push(setTimeout(bookmark, (timeout - 2) * 1000));
        if (timeout > 0) timers.push(setTimeout(() => stream.end(false), timeout * 1000));
      },
      cancel() {
        stream.end(false);
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
    });
  }

  #patch(name: string, statusSub: boolean, contentType: string, body: string): Response {
    const node = this.#nodes.get(name);
    if (!node) return this.#json(404, status(404, "NotFound", `nodes "${name}" not found`));
    const ct = contentType.split(";")[0].trim();
    if (ct !== "application/strategic-merge-patch+json" && ct !== "application/merge-patch+json") {
      return this.#json(
        415,
        status(415, "UnsupportedMediaType", `the body of the request was in an unknown format`),
      );
    }
    let patch: Json;
    try {
      patch = JSON.parse(body);
    } catch {
      return this.#json(400, status(400, "BadRequest", "error decoding patch: invalid JSON"));
    }
    const patched = applyPatch(node, patch, ct.startsWith("application/strategic"));
    // The status subresource only changes metadata and status; the main resource not status.
    const next: Node = statusSub
      ? { ...node, metadata: patched.metadata, status: patched.status }
      : { ...patched, status: node.status };
    next.metadata = { ...next.metadata, name };
    this.#nodes.set(name, next);
    this.#record("MODIFIED", next);
    return this.#json(200, next);
  }
}
