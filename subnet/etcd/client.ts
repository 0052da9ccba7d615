/**
 * A small etcd v3 client over etcd's JSON gateway (`POST /v3/...`), using `fetch` only: key/value,
 * transactions, leases, compaction and streaming watches, with endpoint failover (see
 * `_transport.ts`), TLS client certificates and username/password auth (REFERENCE §3.1).
 * Errors etcd answers with are plain `Error`s carrying etcd's message, except the classes below.
 */
import { quote } from "../../util/quote.ts";
import { type Logger, silentLogger } from "../../util/log.ts";
import { encodeText, int64, prefixRangeEnd } from "./_codec.ts";
import { loadTls, parseEndpoints } from "./_config.ts";
import {
  EtcdAuthError,
  EtcdCompactedError,
  EtcdRequestError,
  EtcdUnavailableError,
  type GatewayError,
  gatewayError,
  GrpcCode,
  isStaleToken,
  isUserMissing,
} from "./_errors.ts";
import { LineSplitter } from "./_ndjson.ts";
import { TokenCache } from "./_token.ts";
import { type Json, type OpenStream, strangeAnswer, Transport } from "./_transport.ts";
import { decodeKv, type KeyValue, parseWatchMessage, type WatchResponse } from "./_wire.ts";

export { EtcdAuthError, EtcdCompactedError, EtcdUnavailableError };
export type { KeyValue, WatchEvent, WatchResponse } from "./_wire.ts";

export interface EtcdClientOptions {
  /** `--etcd-endpoints`, already split on ",". */
  endpoints: string[];
  /** `--etcd-cafile`; used only together with certFile and keyFile (flannel's rule). */
  caFile?: string;
  /** `--etcd-certfile` */
  certFile?: string;
  /** `--etcd-keyfile` */
  keyFile?: string;
  /** `--etcd-username`; when set, requests carry a token from `/v3/auth/authenticate`. */
  username?: string;
  /** `--etcd-password` (never logged). */
  password?: string;
  /** Per-request timeout (for a watch: until the stream is open), default 5000 ms. */
  requestTimeoutMs?: number;
  log?: Logger;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends RequestOptions {
  /** etcd lease ID to attach ("0" or absent: none). */
  lease?: string;
}

export interface WatchOptions extends RequestOptions {
  /** Watch every key starting with the given one (default true); false watches that key only. */
  prefix?: boolean;
}

const DEFAULT_TIMEOUT_MS = 5000;

export class EtcdClient {
  readonly #transport: Transport;
  readonly #tokens: TokenCache;
  readonly #http?: Deno.HttpClient;
  readonly #closer = new AbortController();

  /** Validates the endpoints and reads the TLS files (throws naming the bad flag). */
  constructor(options: EtcdClientOptions) {
    const log = options.log ?? silentLogger;
    const endpoints = parseEndpoints(options.endpoints);
    const tls = loadTls(options, log);
    if (tls) this.#http = Deno.createHttpClient(tls);
    this.#transport = new Transport({
      endpoints,
      http: this.#http,
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      log,
      closed: this.#closer.signal,
    });
    this.#tokens = new TokenCache(this.#transport, options.username, options.password ?? "", log);
  }

  /** Same as the constructor, for callers that prefer an async factory. */
  static create(options: EtcdClientOptions): Promise<EtcdClient> {
    return Promise.resolve().then(() => new EtcdClient(options));
  }

  /** The endpoint requests go to first (the last one that answered). */
  get endpoint(): string {
    return this.#transport.endpoint;
  }

  async get(key: string, opts: RequestOptions = {}): Promise<{ kv?: KeyValue; revision: bigint }> {
    const json = await this.#call("/v3/kv/range", { key: encodeText(key) }, `get "${key}"`, opts);
    const kvs: Json[] = json.kvs ?? [];
    return {
      kv: kvs.length > 0 ? decodeKv(kvs[0]) : undefined,
      revision: int64(json.header?.revision),
    };
  }

  /** Every key starting with `prefix`, sorted by key. */
  async range(
    prefix: string,
    opts: RequestOptions = {},
  ): Promise<{ kvs: KeyValue[]; revision: bigint }> {
    const body = {
      key: encodeText(prefix),
      range_end: prefixRangeEnd(prefix),
      sort_order: "ASCEND",
      sort_target: "KEY",
    };
    const json = await this.#call("/v3/kv/range", body, `list prefix "${prefix}"`, opts);
    return { kvs: (json.kvs ?? []).map(decodeKv), revision: int64(json.header?.revision) };
  }

  /** Returns the revision of the write. */
  async put(key: string, value: string, opts: PutOptions = {}): Promise<bigint> {
    const body = { key: encodeText(key), value: encodeText(value), lease: opts.lease ?? "0" };
    const json = await this.#call("/v3/kv/put", body, `put "${key}"`, opts);
    return int64(json.header?.revision);
  }

  /** Transaction `If(Version(key) == 0) Then(Put(key, value, lease))`; true if it wrote. */
  async createIfAbsent(key: string, value: string, opts: PutOptions = {}): Promise<boolean> {
    const k = encodeText(key);
    const body = {
      compare: [{ key: k, target: "VERSION", result: "EQUAL", version: "0" }],
      success: [{ request_put: { key: k, value: encodeText(value), lease: opts.lease ?? "0" } }],
    };
    const json = await this.#call("/v3/kv/txn", body, `create "${key}"`, opts);
    return json.succeeded === true;
  }

  /** Returns how many keys were deleted (0 or 1). */
  async delete(key: string, opts: RequestOptions = {}): Promise<number> {
    const body = { key: encodeText(key) };
    const json = await this.#call("/v3/kv/deleterange", body, `delete "${key}"`, opts);
    return Number(int64(json.deleted));
  }

  async grantLease(
    ttlSeconds: number,
    opts: RequestOptions = {},
  ): Promise<{ id: string; ttl: number }> {
    const what = `grant a lease of ${ttlSeconds}s`;
    const json = await this.#call("/v3/lease/grant", { TTL: String(ttlSeconds) }, what, opts);
    if (json.error) throw new Error(`Cannot ${what}: ${json.error}`);
    return { id: String(int64(json.ID)), ttl: Number(int64(json.TTL)) };
  }

  /** Revokes the lease, deleting its keys; an unknown (expired) lease is not an error. */
  async revokeLease(id: string, opts: RequestOptions = {}): Promise<void> {
    try {
      await this.#call("/v3/lease/revoke", { ID: id }, `revoke lease ${id}`, opts);
    } catch (err) {
      if (err instanceof EtcdRequestError && err.code === GrpcCode.NotFound) return;
      throw err;
    }
  }

  /** Remaining seconds of the lease; -1 when it does not exist or has expired (or id is "0"). */
  async leaseTimeToLive(id: string, opts: RequestOptions = {}): Promise<number> {
    if (id === "0" || id === "") return -1;
    const what = `read the TTL of lease ${id}`;
    const json = await this.#call("/v3/lease/timetolive", { ID: id }, what, opts);
    return Number(int64(json.TTL));
  }

  /**
   * Compacts the history up to `revision` (waits until it is physically applied). Throws
   * `EtcdCompactedError` when that revision is already compacted.
   */
  async compact(revision: bigint, opts: RequestOptions = {}): Promise<void> {
    const body = { revision: String(revision), physical: true };
    try {
      await this.#call("/v3/kv/compaction", body, `compact at revision ${revision}`, opts);
    } catch (err) {
      if (
        err instanceof EtcdRequestError && err.code === GrpcCode.OutOfRange &&
        err.etcdMessage.includes("compacted")
      ) {
        throw new EtcdCompactedError(revision, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Watches `prefix` (or the single key with `prefix: false`) from `fromRevision` (0: from now).
   * Yields event batches and progress notifications (no events); the creation ack is not yielded.
   * If the start revision was compacted, yields one response with `compactRevision` set and ends.
   * Ends quietly when `signal` aborts or the client is closed; throws when the stream breaks or
   * ends, so the caller can watch again from its last revision + 1 (this client does not retry).
   */
  async *watch(
    prefix: string,
    fromRevision: bigint,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchResponse> {
    const signal = opts.signal;
    const stopped = () => (signal?.aborted ?? false) || this.#closer.signal.aborted;
    const body = {
      create_request: {
        key: encodeText(prefix),
        ...(opts.prefix === false ? {} : { range_end: prefixRangeEnd(prefix) }),
        start_revision: String(fromRevision),
        progress_notify: true,
      },
    };
    const what = `watch ${opts.prefix === false ? "key" : "prefix"} "${prefix}"`;
    let retriedAuth = false;
    attempt: for (;;) {
      let stream: OpenStream;
      try {
        stream = await this.#openWatch(body, what, signal);
      } catch (err) {
        if (stopped()) return;
        throw err;
      }
      const reader = stream.response.body!.getReader();
      try {
        const lines = new LineSplitter();
        let revision = 0n;
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (err) {
            if (stopped()) return;
            throw new Error(`etcd ${what} from ${stream.endpoint}: the stream broke`, {
              cause: err,
            });
          }
          if (chunk.done) {
            if (stopped()) return;
            throw new Error(`etcd ${what} from ${stream.endpoint}: the stream ended`);
          }
          for (const line of lines.push(chunk.value)) {
            let json: Json;
            try {
              json = JSON.parse(line);
            } catch (err) {
              throw new Error(`etcd ${what} from ${stream.endpoint}: cannot parse ${quote(line)}`, {
                cause: err,
              });
            }
            const msg = parseWatchMessage(json, revision);
            if (msg.kind === "created") continue;
            if (msg.kind === "error") {
              if (this.#tokens.enabled && isStaleToken(msg.error) && !retriedAuth) {
                retriedAuth = true;
                this.#tokens.invalidate();
                continue attempt;
              }
              throw this.#mapError(msg.error, what);
            }
            revision = msg.response.revision;
            yield msg.response;
            if (msg.response.canceled) return;
          }
        }
      } finally {
        stream.release();
        await reader.cancel().catch(() => {});
      }
    }
  }

  /** Aborts in-flight requests and watches and releases the TLS client. */
  close(): void {
    if (this.#closer.signal.aborted) return;
    this.#closer.abort(new Error("EtcdClient was closed"));
    this.#http?.close();
  }

  /** A unary request with auth, failover and error mapping; returns the JSON answer. */
  async #call(path: string, body: unknown, what: string, opts: RequestOptions): Promise<Json> {
    let retriedAuth = false;
    for (;;) {
      const headers = await this.#tokens.headers(opts.signal);
      const ex = await this.#transport.exchange(path, body, headers, opts.signal);
      const err = gatewayError(ex.json);
      if (!err) {
        if (ex.json !== undefined && ex.status >= 200 && ex.status < 300) return ex.json;
        throw new Error(`Cannot ${what}: ${strangeAnswer(path, ex)}`);
      }
      if (this.#tokens.enabled && isStaleToken(err) && !retriedAuth) {
        retriedAuth = true;
        this.#tokens.invalidate();
        continue;
      }
      throw this.#mapError(err, what);
    }
  }

  /** Opens the watch stream; an HTTP error answer is mapped like a unary one. */
  async #openWatch(body: unknown, what: string, signal?: AbortSignal): Promise<OpenStream> {
    const headers = await this.#tokens.headers(signal);
    // clientv3's WithRequireLeader: a member without a leader ends the watch.
    headers["Grpc-Metadata-hasleader"] = "true";
    const stream = await this.#transport.open("/v3/watch", body, headers, signal);
    if (stream.response.ok) return stream;
    const text = await stream.response.text().catch(() => "");
    stream.release();
    let err: GatewayError | undefined;
    try {
      err = gatewayError(JSON.parse(text));
    } catch { /* not JSON */ }
    if (err) throw this.#mapError(err, what);
    const ex = { endpoint: stream.endpoint, status: stream.response.status, json: undefined, text };
    throw new Error(`Cannot ${what}: ${strangeAnswer("/v3/watch", ex)}`);
  }

  #mapError(err: GatewayError, what: string): Error {
    if (isUserMissing(err)) {
      return new EtcdAuthError(
        `Cannot ${what}: etcd requires authentication (${err.message}); set --etcd-username and --etcd-password`,
      );
    }
    if (err.code === GrpcCode.Unauthenticated) {
      return new EtcdAuthError(`Cannot ${what}: etcd rejected the auth token: ${err.message}`);
    }
    if (err.code === GrpcCode.PermissionDenied) {
      return new EtcdAuthError(
        `Cannot ${what}: etcd denied it to user "${this.#tokens.user}": ${err.message}`,
      );
    }
    return new EtcdRequestError(`Cannot ${what}: ${err.message}`, err);
  }
}
