/**
 * POSTs to etcd's JSON gateway with endpoint failover: endpoints are tried in order from the last
 * one that answered; a connection error, a timeout or gRPC `Unavailable` moves on to the next.
 * Any other answer (including an HTTP error) is returned to the caller.
 *
 * Every request has a timeout. A request that times out is tried once more, on a connection of
 * its own: the first may have been a pooled one whose other end vanished without a reset reaching
 * us (etcd host crash, NAT or load-balancer idle timeout), and so may the other idle ones.
 * Aborting the request drops its connection from the pool.
 */
import { quote } from "../../util/quote.ts";
import type { Logger } from "../../util/log.ts";
import { EtcdUnavailableError, gatewayError, GrpcCode } from "./_errors.ts";
import { explainTlsFailure, type TlsContext, type TlsProblem } from "./_tls_failure.ts";

// deno-lint-ignore no-explicit-any
export type Json = any;

export interface Exchange {
  endpoint: string;
  status: number;
  /** undefined when the answer is not JSON. */
  json: Json;
  text: string;
}

export interface OpenStream {
  endpoint: string;
  response: Response;
  /** Aborts the request and unhooks it from the caller's signal: call once done with the body. */
  release(): void;
}

export interface TransportOptions {
  endpoints: string[];
  http?: Deno.HttpClient;
  /** A client that keeps no idle connections, for the retry after a timeout. */
  freshHttp?: Deno.HttpClient;
  timeoutMs: number;
  log: Logger;
  /** Aborted when the client closes: ends every request. */
  closed: AbortSignal;
  /** The TLS flags and material, to explain a failed handshake. */
  tls?: TlsContext;
}

/** Describes an answer that is not the gateway's JSON, with a hint for a known etcd refusal. */
export function strangeAnswer(path: string, ex: Exchange): string {
  const hint = ex.text.includes("CommonName of client")
    ? " (with auth enabled, etcd's JSON gateway, which this client uses, refuses client " +
      "certificates that have a CommonName: use a certificate without CN for --etcd-certfile)"
    : "";
  return `etcd at ${ex.endpoint} answered POST ${path} with HTTP ${ex.status}: ${
    quote(ex.text.trim())
  }${hint}`;
}

/** An AbortController aborted by any of `signals`, with `dispose()` to unhook it. */
function linkedController(signals: (AbortSignal | undefined)[]) {
  const controller = new AbortController();
  const hooks: [AbortSignal, () => void][] = [];
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      controller.abort(s.reason);
      continue;
    }
    const onAbort = () => controller.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    hooks.push([s, onAbort]);
  }
  return {
    controller,
    dispose() {
      for (const [s, h] of hooks) s.removeEventListener("abort", h);
    },
  };
}

export class Transport {
  readonly #endpoints: string[];
  #current = 0;
  readonly #http?: Deno.HttpClient;
  readonly #freshHttp?: Deno.HttpClient;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #closed: AbortSignal;
  readonly #tls: TlsContext;

  constructor(options: TransportOptions) {
    this.#endpoints = options.endpoints;
    this.#http = options.http;
    this.#freshHttp = options.freshHttp;
    this.#timeoutMs = options.timeoutMs;
    this.#log = options.log;
    this.#closed = options.closed;
    this.#tls = options.tls ?? {};
  }

  /** The endpoint requests go to first (the last one that answered). */
  get endpoint(): string {
    return this.#endpoints[this.#current];
  }

  /** POSTs `body` and reads the whole answer, all within the timeout. */
  exchange(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Exchange> {
    return this.#failover(path, body, headers, signal, true, async (response, endpoint) => {
      const text = await response.text();
      let json: Json;
      try {
        json = JSON.parse(text);
      } catch {
        // An answer, but not from the gateway (or a gateway-level refusal): not a failover reason.
        return { endpoint, status: response.status, json: undefined, text };
      }
      const err = gatewayError(json);
      if (err?.code === GrpcCode.Unavailable) {
        throw new Error(`etcd at ${endpoint} is unavailable: ${err.message}`);
      }
      return { endpoint, status: response.status, json, text };
    });
  }

  /** A streaming POST (the watch): the timeout covers the response headers only. */
  open(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<OpenStream> {
    return this.#failover(
      path,
      body,
      headers,
      signal,
      false,
      (response, endpoint, release) => Promise.resolve({ endpoint, response, release }),
    );
  }

  /**
   * Tries each endpoint from the current one. `handle` turns the response into the result; its
   * failure, like a connection failure or a timeout, moves on to the next endpoint (the first
   * timeout of a call is retried on the same endpoint first). With `settle` the request is
   * released after `handle`; otherwise the result owns `release`.
   */
  async #failover<T>(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    settle: boolean,
    handle: (response: Response, endpoint: string, release: () => void) => Promise<T>,
  ): Promise<T> {
    const n = this.#endpoints.length;
    const order = Array.from({ length: n }, (_, i) => (this.#current + i) % n);
    /** Position in `order` of the retry after a timeout (-1: none yet). */
    let retry = -1;
    let lastError: unknown;
    let tlsProblem: TlsProblem | undefined;
    for (let k = 0; k < order.length; k++) {
      const index = order[k];
      const endpoint = this.#endpoints[index];
      const { controller, dispose } = linkedController([signal, this.#closed]);
      const release = () => {
        controller.abort();
        dispose();
      };
      const timer = setTimeout(
        () =>
          controller.abort(
            new DOMException(`no answer within ${this.#timeoutMs} ms`, "TimeoutError"),
          ),
        this.#timeoutMs,
      );
      let handedOver = false;
      try {
        const response = await fetch(endpoint + path, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...headers },
          body: JSON.stringify(body),
          signal: controller.signal,
          client: k === retry ? this.#freshHttp ?? this.#http : this.#http,
        });
        clearTimeout(timer);
        const result = settle
          ? await this.#withTimeout(controller, () => handle(response, endpoint, release))
          : await handle(response, endpoint, release);
        handedOver = !settle;
        if (index !== this.#current) {
          this.#log.info(`Switched to etcd endpoint ${endpoint}`);
          this.#current = index;
        }
        return result;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (this.#closed.aborted) throw this.#closed.reason;
        lastError = controller.signal.aborted ? controller.signal.reason : err;
        const timedOut = lastError instanceof DOMException && lastError.name === "TimeoutError";
        this.#log.v(
          1,
          `etcd endpoint ${endpoint} failed for POST ${path}: ${
            lastError instanceof Error ? lastError.message : String(lastError)
          }${timedOut && retry < 0 ? " (trying again on a new connection)" : ""}`,
        );
        if (timedOut && retry < 0) {
          retry = k + 1;
          order.splice(retry, 0, index);
        }
        tlsProblem = timedOut ? undefined : await explainTlsFailure(endpoint, err, this.#tls);
      } finally {
        clearTimeout(timer);
        if (!handedOver) release();
      }
    }
    const tried = [...new Set(order.map((i) => this.#endpoints[i]))];
    if (tlsProblem) {
      // The TCP connection was made: the cause alone, worded the same on every retry.
      throw new EtcdUnavailableError(tried, {
        cause: new Error(tlsProblem.detail),
        reason: tlsProblem.message,
      });
    }
    throw new EtcdUnavailableError(tried, { cause: lastError });
  }

  /** Runs `fn` (reading a body) under the same timeout as the request. */
  async #withTimeout<T>(controller: AbortController, fn: () => Promise<T>): Promise<T> {
    const timer = setTimeout(
      () =>
        controller.abort(
          new DOMException(`answer not read within ${this.#timeoutMs} ms`, "TimeoutError"),
        ),
      this.#timeoutMs,
    );
    try {
      return await fn();
    } finally {
      clearTimeout(timer);
    }
  }
}
