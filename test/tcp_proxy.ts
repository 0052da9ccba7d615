/**
 * A loopback TCP proxy tests put between the agent and a server to cut the connection on demand:
 * `cut()` drops every open connection and refuses new ones (they are closed at once) until
 * `heal()`. Used to simulate a network partition from etcd while other clients keep writing.
 */

export class TcpProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #conns = new Set<Deno.Conn>();
  #cut = false;
  readonly #accepting: Promise<void>;

  constructor(target: { hostname: string; port: number }) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** `http://127.0.0.1:<port>` */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
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
    this.#conns.add(inbound);
    this.#conns.add(outbound);
    const close = () => {
      for (const c of [inbound, outbound]) {
        if (this.#conns.delete(c)) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      }
    };
    // HTTP needs no half-close: the first direction to end closes both.
    await Promise.race([
      inbound.readable.pipeTo(outbound.writable, { preventClose: true }),
      outbound.readable.pipeTo(inbound.writable, { preventClose: true }),
    ]).catch(() => {}).finally(close);
  }

  /** Drops all connections; new ones are closed until `heal()`. */
  cut(): void {
    this.#cut = true;
    for (const c of [...this.#conns]) {
      this.#conns.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  heal(): void {
    this.#cut = false;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#accepting.catch(() => {});
  }
}
