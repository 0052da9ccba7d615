/**
 * A real etcd for tests: Debian's etcd-server on free loopback ports with a temporary data dir,
 * optionally with TLS client-certificate auth and/or username/password auth. Its log goes to
 * `<dir>/etcd.log`, not the test output. `await using` stops it and removes the dir.
 */
import type { TlsFiles } from "./tls.ts";

export interface EtcdServerOptions {
  /** Serve TLS with these files and require client certificates signed by their CA. */
  tls?: TlsFiles;
  /** With `tls`: whether client certificates are required (default true). */
  clientCertAuth?: boolean;
  /** Create this user (and `root` with the same password if different), grant root, enable auth. */
  auth?: { user: string; password: string };
  /** Address to listen on, default 127.0.0.1. */
  host?: string;
}

export interface EtcdServer extends AsyncDisposable {
  /** Client URL, `http://127.0.0.1:<port>` (https with TLS). */
  readonly endpoint: string;
  /** etcd's `--data-dir` (inside the temp dir that also holds the log). */
  readonly dataDir: string;
  readonly logFile: string;
  /** Stops etcd and removes its files. */
  stop(): Promise<void>;
  /** Stops etcd and starts it again on the same port and data dir. */
  restart(): Promise<void>;
  /** Stops etcd, keeping its data dir. */
  pause(): Promise<void>;
  /** Starts a paused etcd again (same port and data). */
  start(): Promise<void>;
  /** The sum of etcd's Prometheus samples whose line starts with `series` (name and labels). */
  metric(series: string): Promise<number>;
}

const HEALTH_TIMEOUT_MS = 10_000;

async function findEtcd(): Promise<string> {
  const dirs = ["/usr/bin", ...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "")];
  for (const dir of dirs) {
    try {
      const path = `${dir}/etcd`;
      if ((await Deno.stat(path)).isFile) return path;
    } catch { /* not here */ }
  }
  throw new Error(
    "etcd is not installed (no etcd in /usr/bin or PATH): apt-get install etcd-server",
  );
}

/** `count` distinct free TCP ports on `host` (bound together, then released). */
function freePorts(host: string, count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: host, port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

async function tail(path: string, lines = 15): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

class Server implements EtcdServer {
  readonly endpoint: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #dir: string;
  readonly #binary: string;
  readonly #args: string[];
  readonly #http?: Deno.HttpClient;
  #child?: Deno.ChildProcess;
  #removed = false;

  constructor(binary: string, dir: string, opts: EtcdServerOptions) {
    const host = opts.host ?? "127.0.0.1";
    const [clientPort, peerPort] = freePorts(host, 2);
    const scheme = opts.tls ? "https" : "http";
    this.#binary = binary;
    this.#dir = dir;
    this.dataDir = `${dir}/data`;
    this.logFile = `${dir}/etcd.log`;
    this.endpoint = `${scheme}://${host}:${clientPort}`;
    const peer = `http://${host}:${peerPort}`;
    this.#args = [
      "--name=test",
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=test=${peer}`,
      "--heartbeat-interval=20",
      "--election-timeout=200",
      "--logger=zap",
      `--log-outputs=${this.logFile}`,
      ...(opts.tls
        ? [
          `--cert-file=${opts.tls.serverCertFile}`,
          `--key-file=${opts.tls.serverKeyFile}`,
          ...(opts.clientCertAuth ?? true
            ? [`--trusted-ca-file=${opts.tls.caFile}`, "--client-cert-auth"]
            : []),
        ]
        : []),
    ];
    if (opts.tls) {
      this.#http = Deno.createHttpClient({
        caCerts: [Deno.readTextFileSync(opts.tls.caFile)],
        cert: Deno.readTextFileSync(opts.tls.clientCertFile),
        key: Deno.readTextFileSync(opts.tls.clientKeyFile),
      });
    }
  }

  async start(): Promise<void> {
    // Through sh so early errors (before etcd's logger starts) also land in the log file.
    this.#child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$LOG" 2>&1', this.#binary, ...this.#args],
      env: { LOG: this.logFile },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exited = this.#child.status;
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    let exitedEarly = false;
    exited.then(() => exitedEarly = true);
    while (Date.now() < deadline && !exitedEarly) {
      if (await this.#healthy()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    const why = exitedEarly
      ? `exited with code ${(await exited).code}`
      : `not healthy within ${HEALTH_TIMEOUT_MS} ms`;
    await this.#kill();
    throw new Error(
      `etcd at ${this.endpoint} ${why}; log ${this.logFile}:\n${await tail(this.logFile)}`,
    );
  }

  async #healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.endpoint}/health`, {
        client: this.#http,
        signal: AbortSignal.timeout(1000),
      });
      const body = await res.text();
      return res.ok && JSON.parse(body).health === "true";
    } catch {
      return false;
    }
  }

  /** POSTs to the gateway without a token (auth setup happens before auth is enabled). */
  async post(path: string, body: unknown): Promise<void> {
    const res = await fetch(this.endpoint + path, {
      method: "POST",
      body: JSON.stringify(body),
      client: this.#http,
    });
    const text = await res.text();
    if (!res.ok) {
      throw new Error(`etcd test setup: POST ${path} failed: HTTP ${res.status} ${text}`);
    }
  }

  async metric(series: string): Promise<number> {
    const res = await fetch(`${this.endpoint}/metrics`, { client: this.#http });
    let sum = 0;
    for (const line of (await res.text()).split("\n")) {
      if (line.startsWith(series)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  }

  async enableAuth(user: string, password: string): Promise<void> {
    await this.post("/v3/auth/role/add", { name: "root" });
    await this.post("/v3/auth/user/add", { name: "root", password });
    await this.post("/v3/auth/user/grant", { user: "root", role: "root" });
    if (user !== "root") {
      await this.post("/v3/auth/user/add", { name: user, password });
      await this.post("/v3/auth/user/grant", { user, role: "root" });
    }
    await this.post("/v3/auth/enable", {});
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 5000)),
    ]);
    clearTimeout(timer);
    if (!killed) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
  }

  async restart(): Promise<void> {
    await this.#kill();
    await this.start();
  }

  /** Stops etcd but keeps its data: `start()` brings it back as it was. */
  async pause(): Promise<void> {
    await this.#kill();
  }

  async stop(): Promise<void> {
    await this.#kill();
    this.#http?.close();
    if (!this.#removed) {
      this.#removed = true;
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

export async function startEtcd(opts: EtcdServerOptions = {}): Promise<EtcdServer> {
  const binary = await findEtcd();
  const dir = await Deno.makeTempDir({ prefix: "flannel-etcd-" });
  const server = new Server(binary, dir, opts);
  try {
    await server.start();
    if (opts.auth) await server.enableAuth(opts.auth.user, opts.auth.password);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
