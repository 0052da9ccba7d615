/**
 * A loopback TCP proxy tests put between the agent and a server to break the connection on
 * demand: `cut()` drops every open connection and refuses new ones (they are closed at once)
 * until `heal()`, a network partition; `freeze()` makes the open connections silently dead, as
 * after a server crash whose resets never reach the client, while new connections work.
 */

interface Pair {
  inbound: Deno.Conn;
  outbound: Deno.Conn;
  /** The server side is gone; the client side stays open and swallows what the client sends. */
  frozen: boolean;
}

export class TcpProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #pairs = new Set<Pair>();
  #cut = false;
  readonly #accepting: Promise<void>;
  /** Connections accepted so far (refused ones included). */
  accepted = 0;

  /** `target`: host and port, or a URL such as an etcd endpoint. */
  constructor(target: { hostname: string; port: number } | string) {
    this.#target = typeof target === "string"
      ? { hostname: new URL(target).hostname, port: Number(new URL(target).port) }
      : target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** `http://127.0.0.1:<port>` */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      this.accepted++;
      if (this.#cut) {
        conn.close();
        continue;
      }
      this.#pipe(conn).catch(() => {});
    }
  }

  async #pipe(inbound: Deno.Conn): Promise<void> {
    let outbound: Deno.Conn;
    try {
      outbound = await Deno.connect(this.#target);
    } catch {
      inbound.close();
      return;
    }
    const pair: Pair = { inbound, outbound, frozen: false };
    this.#pairs.add(pair);
    // HTTP needs no half-close: the first direction to end closes both (unless frozen).
    await Promise.race([
      copy(inbound, outbound, pair),
      copy(outbound, inbound, pair),
    ]).catch(() => {});
    if (!pair.frozen) this.#close(pair);
  }

  #close(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const c of [pair.inbound, pair.outbound]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  /** Drops all connections; new ones are closed until `heal()`. */
  cut(): void {
    this.#cut = true;
    for (const pair of [...this.#pairs]) this.#close(pair);
  }

  heal(): void {
    this.#cut = false;
  }

  /**
   * The open connections go silently dead: the server side is closed, the client side stays
   * ESTABLISHED, never answers again and drops whatever the client sends. New connections work.
   */
  freeze(): void {
    for (const pair of this.#pairs) {
      if (pair.frozen) continue;
      pair.frozen = true;
      try {
        pair.outbound.close();
      } catch { /* closed */ }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#accepting.catch(() => {});
  }
}

/** Copies `from` to `to` until `from` ends; once the pair is frozen, reads are dropped. */
async function copy(from: Deno.Conn, to: Deno.Conn, pair: Pair): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await from.read(buf);
    if (n === null) return;
    if (pair.frozen) continue;
    for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
  }
}
