/**
 * etcd username/password auth: one `/v3/auth/authenticate` call, its token cached and sent as the
 * `Authorization` header until etcd rejects it. The password and token are never logged.
 */
import type { Logger } from "../../util/log.ts";
import { EtcdAuthError, gatewayError } from "./_errors.ts";
import { strangeAnswer, type Transport } from "./_transport.ts";

export class TokenCache {
  readonly #transport: Transport;
  readonly #user?: string;
  readonly #password: string;
  readonly #log: Logger;
  #token?: Promise<string>;

  constructor(transport: Transport, user: string | undefined, password: string, log: Logger) {
    this.#transport = transport;
    this.#user = user || undefined;
    this.#password = password;
    this.#log = log;
  }

  /** Whether requests carry a token (a username is configured). */
  get enabled(): boolean {
    return this.#user !== undefined;
  }

  get user(): string {
    return this.#user ?? "";
  }

  /** Headers for a request: `{Authorization: token}`, authenticating first if needed. */
  async headers(signal?: AbortSignal): Promise<Record<string, string>> {
    if (!this.#user) return {};
    if (!this.#token) {
      const pending = this.#authenticate(this.#user, signal);
      this.#token = pending;
      pending.catch(() => {
        if (this.#token === pending) this.#token = undefined;
      });
    }
    const token = await this.#token;
    return token ? { Authorization: token } : {};
  }

  /** Drops the cached token (etcd said it is invalid or stale). */
  invalidate(): void {
    this.#token = undefined;
  }

  async #authenticate(user: string, signal?: AbortSignal): Promise<string> {
    const path = "/v3/auth/authenticate";
    const ex = await this.#transport.exchange(
      path,
      { name: user, password: this.#password },
      {},
      signal,
    );
    const fail = (why: string) =>
      new EtcdAuthError(`Cannot authenticate to etcd as user "${user}": ${why}`);
    if (ex.json === undefined) throw fail(strangeAnswer(path, ex));
    const err = gatewayError(ex.json);
    if (err) {
      if (err.message.includes("authentication is not enabled")) {
        // As clientv3: a username for an etcd without auth is not an error.
        this.#log.v(1, "etcd has auth disabled; sending requests without a token");
        return "";
      }
      throw fail(`${err.message}; check --etcd-username and --etcd-password`);
    }
    if (typeof ex.json.token !== "string") throw fail("no token in the answer");
    this.#log.v(2, `Authenticated to etcd as user "${user}"`);
    return ex.json.token;
  }
}
