/**
 * Health endpoints (flannel main.go (mustRunHealthz)), stricter than flannel's: `/healthz` fails when a loop of
 * the agent stopped reporting, `/readyz` succeeds only when every readiness condition holds and
 * says which are missing, and `/metrics` serves the Prometheus registry.
 */
import type { Logger } from "./log.ts";
import { PROMETHEUS_CONTENT_TYPE, type Registry } from "./metrics.ts";

/** The readiness conditions the agent reports, in the order they become true (flannel main.go's start-up order). */
export const READINESS_CONDITIONS = ["lease", "rules", "subnet-file", "backend"] as const;

export interface Heartbeat {
  /** The loop is alive: call at least once per `maxIntervalMs`. */
  beat(): void;
  /** The loop ended on purpose: stop watching it. */
  stop(): void;
}

export interface HealthOptions {
  /** Conditions that must all hold for `/readyz`; default {@link READINESS_CONDITIONS}. */
  readonly conditions?: readonly string[];
  /** Clock in ms, default `performance.now()`. */
  readonly now?: () => number;
}

export interface StaleLoop {
  readonly name: string;
  readonly ageMs: number;
  readonly maxIntervalMs: number;
}

/** Liveness (loop heartbeats) and readiness (named conditions) of the agent. */
export class Health {
  readonly #now: () => number;
  readonly #conditions: Map<string, boolean>;
  readonly #loops = new Map<string, { last: number; maxIntervalMs: number }>();
  #shuttingDown = false;

  constructor(opts: HealthOptions = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#conditions = new Map((opts.conditions ?? READINESS_CONDITIONS).map((c) => [c, false]));
  }

  /** Registers loop `name` (alive now); it is stale once `maxIntervalMs` pass without a beat. */
  heartbeat(name: string, maxIntervalMs: number): Heartbeat {
    const entry = { last: this.#now(), maxIntervalMs };
    this.#loops.set(name, entry);
    return {
      beat: () => entry.last = this.#now(),
      stop: () => {
        if (this.#loops.get(name) === entry) this.#loops.delete(name);
      },
    };
  }

  /** Sets readiness condition `name`; throws for a name not declared at construction. */
  setReady(name: string, ok: boolean): void {
    if (!this.#conditions.has(name)) {
      throw new TypeError(
        `Unknown readiness condition "${name}": expected one of ${
          [...this.#conditions.keys()].join(", ")
        }`,
      );
    }
    this.#conditions.set(name, ok);
  }

  /** Marks the agent as stopping: not ready from now on. */
  shutdown(): void {
    this.#shuttingDown = true;
  }

  /** Loops that missed their interval. */
  stale(): StaleLoop[] {
    const now = this.#now();
    return [...this.#loops].map(([name, l]) => ({
      name,
      ageMs: now - l.last,
      maxIntervalMs: l.maxIntervalMs,
    }))
      .filter((l) => l.ageMs > l.maxIntervalMs);
  }

  /** Conditions that do not hold (plus `shutting-down` once stopping). */
  missing(): string[] {
    const missing = [...this.#conditions].filter(([, ok]) => !ok).map(([c]) => c);
    return this.#shuttingDown ? [...missing, "shutting-down"] : missing;
  }
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** The request handler: `/healthz`, `/readyz`, `/metrics` (any method), 404 otherwise. */
export function healthHandler(health: Health, registry?: Registry): (req: Request) => Response {
  return (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") {
      const stale = health.stale();
      if (stale.length === 0) return text(200, "flanneld is running");
      const detail = stale.map((l) =>
        `loop "${l.name}" last reported ${(l.ageMs / 1000).toFixed(1)} s ago ` +
        `(limit ${(l.maxIntervalMs / 1000).toFixed(1)} s)`
      ).join("; ");
      return text(500, `flanneld is not healthy: ${detail}`);
    }
    if (path === "/readyz") {
      const missing = health.missing();
      if (missing.length === 0) return text(200, "flanneld is ready");
      return new Response(
        JSON.stringify({ ready: false, message: "flanneld is not ready yet", missing }) + "\n",
        { status: 503, headers: { "content-type": "application/json" } },
      );
    }
    if (path === "/metrics" && registry) {
      return new Response(registry.render(), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    }
    return text(404, "404 page not found\n");
  };
}

export interface HealthServerOptions {
  /** `--healthz-ip`; IPv6 with or without brackets. */
  readonly hostname: string;
  /** `--healthz-port` (> 0; 0 means the caller should not start a server). */
  readonly port: number;
  readonly health: Health;
  readonly registry?: Registry;
  readonly log: Logger;
  /** Aborting starts a graceful shutdown (at most {@link SHUTDOWN_GRACE_MS}). */
  readonly signal?: AbortSignal;
}

export interface HealthServer {
  /** `host:port` with IPv6 bracketed, e.g. `[::1]:8471`. */
  readonly address: string;
  /** The bound port (useful with port 0 in tests). */
  readonly port: number;
  /** Marks the agent not ready and stops serving; resolves within {@link SHUTDOWN_GRACE_MS}. */
  shutdown(): Promise<void>;
  /** Resolves once the server has stopped. */
  readonly finished: Promise<void>;
}

export const SHUTDOWN_GRACE_MS = 3000;

/** `host:port`, bracketing IPv6 hosts. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts the health server. A listen failure (port in use, address not local) throws an error
 * naming the address, the flag and the fix.
 */
export function startHealthServer(opts: HealthServerOptions): HealthServer {
  const hostname = opts.hostname.replace(/^\[(.*)\]$/, "$1");
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port: opts.port,
      onListen: () => {},
      onError: (err) => {
        opts.log.error(`Health server request failed: ${String(err)}`);
        return text(500, "internal error");
      },
    }, healthHandler(opts.health, opts.registry));
  } catch (err) {
    const where = joinHostPort(hostname, opts.port);
    if (err instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot start the health server on ${where}: the port is already in use; stop the ` +
          `other process or choose a free port with --healthz-port (0 disables the server)`,
        { cause: err },
      );
    }
    if (err instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(
        `Cannot start the health server on ${where}: no local interface has that address; ` +
          `set --healthz-ip to an address of this host (or 0.0.0.0)`,
        { cause: err },
      );
    }
    throw new Error(
      `Cannot start the health server on ${where}; check --healthz-ip and --healthz-port`,
      { cause: err },
    );
  }
  const address = joinHostPort(hostname, server.addr.port);
  opts.log.info(`Serving health checks on http://${address}/healthz, /readyz and /metrics`);
  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      opts.health.shutdown();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, SHUTDOWN_GRACE_MS));
      await Promise.race([server.shutdown(), grace]);
      clearTimeout(timer);
    })();
    return stopping;
  };
  if (opts.signal?.aborted) void shutdown();
  opts.signal?.addEventListener("abort", () => void shutdown(), { once: true });
  return { address, port: server.addr.port, shutdown, finished: server.finished };
}
