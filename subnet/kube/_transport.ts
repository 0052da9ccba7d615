/**
 * One HTTP exchange with the API server, as a web `Response`: Deno `fetch` with the cluster's CA
 * and client certificate, or — for `insecure-skip-tls-verify`, which Deno's fetch cannot do —
 * `node:https` with `rejectUnauthorized: false` (imported only then: it costs memory).
 */

export interface TlsSettings {
  caCerts?: string[];
  cert?: string;
  key?: string;
  insecureSkipTLSVerify?: boolean;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface Sender {
  send(req: HttpRequest): Promise<Response>;
  close(): void;
}

/**
 * A sender for `tls`. HTTP/1.1 only: each watch then has a connection of its own, and aborting a
 * silent watch drops that connection. Over HTTP/2 every request shares one connection, which
 * stays pooled when one stream is aborted, so the next watch would go to the same dead one.
 */
export function createSender(tls: TlsSettings): Sender {
  if (tls.insecureSkipTLSVerify) return insecureSender(tls);
  const client = Deno.createHttpClient({
    http2: false,
    ...(tls.caCerts?.length && { caCerts: tls.caCerts }),
    ...(tls.cert && tls.key && { cert: tls.cert, key: tls.key }),
  });
  return {
    send: (req) =>
      fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
        client,
      }),
    close: () => client.close(),
  };
}

function insecureSender(tls: TlsSettings): Sender {
  const loading = import("node:https").then(({ default: https }) => ({
    https,
    agent: new https.Agent({
      keepAlive: true,
      rejectUnauthorized: false,
      ...(tls.cert && tls.key && { cert: tls.cert, key: tls.key }),
    }),
  }));
  return {
    send: async (req) => {
      const { https, agent } = await loading;
      return await new Promise<Response>((resolve, reject) => {
        req.signal?.throwIfAborted();
        const url = new URL(req.url);
        if (url.protocol !== "https:") {
          // insecure-skip-tls-verify has no meaning for http://; use fetch.
          fetch(req.url, req).then(resolve, reject);
          return;
        }
        const r = https.request({
          agent,
          method: req.method,
          host: url.hostname.replace(/^\[|\]$/g, ""),
          port: url.port || 443,
          path: url.pathname + url.search,
          headers: req.headers,
          rejectUnauthorized: false,
        }, (res) => {
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              res.on("data", (c: Uint8Array) => controller.enqueue(new Uint8Array(c)));
              res.on("end", () => controller.close());
              res.on("error", (e: Error) => controller.error(e));
            },
            cancel() {
              res.destroy();
            },
          });
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") headers.set(k, v);
          }
          resolve(new Response(body, { status: res.statusCode ?? 0, headers }));
        });
        const onAbort = () => r.destroy(req.signal?.reason ?? new Error("aborted"));
        req.signal?.addEventListener("abort", onAbort, { once: true });
        r.on("close", () => req.signal?.removeEventListener("abort", onAbort));
        r.on("error", reject);
        if (req.body !== undefined) r.write(req.body);
        r.end();
      });
    },
    close: () => void loading.then(({ agent }) => agent.destroy()),
  };
}
