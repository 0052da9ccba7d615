/**
 * A small etcd v3 client over etcd's JSON gateway (`POST /v3/...`), using `fetch` only: key/value,
 * transactions, leases, compaction and streaming watches, with endpoint failover (see
 * `_transport.ts`), TLS client certificates and username/password auth (flannel pkg/subnet/etcd/registry.go).
 * Errors etcd answers with are plain `Error`s carrying etcd's message, except the classes below.
 */
import { quote } from "../../util/quote.ts";
import { formatDuration } from "../renew.ts";
import { type Logger, silentLogger } from "../../util/log.ts";
import { type FlannelMetrics, unservedMetrics } from "../../util/metrics.ts";
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
import { type CheckedWatch, type KeyState, WatchChecker } from "./_watch_check.ts";
import { decodeKv, type KeyValue, parseWatchMessage, type WatchResponse } from "./_wire.ts";

export { EtcdAuthError, EtcdCompactedError, EtcdUnavailableError };
export type { KeyValue, WatchEvent, WatchResponse } from "./_wire.ts";

export interface EtcdClientOptions {
  /** `--etcd-endpoints`, already split on ",". */
  endpoints: string[];
  /**
   * `--etcd-cafile`: trusted roots for etcd's certificate, with or without a client certificate
   * (flannel uses it only with one); ignored when no endpoint is `https://`.
   */
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
  /**
   * How often watches silent for half of it are checked against etcd (see `_watch_check.ts`),
   * default 20 000 ms. A change made after a watch's connection died silently is delivered within
   * about 1.5 times this, plus a second and up to two request timeouts.
   */
  watchCheckMs?: number;
  log?: Logger;
  /** Where watch restarts are counted (`flanneld_watch_reconnects_total`); default: nowhere. */
  metrics?: FlannelMetrics;
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
export const DEFAULT_WATCH_CHECK_MS = 20_000;

export class EtcdClient {
  readonly #transport: Transport;
  readonly #tokens: TokenCache;
  readonly #http: Deno.HttpClient;
  readonly #freshHttp: Deno.HttpClient;
  readonly #closer = new AbortController();
  readonly #log: Logger;
  readonly #metrics: FlannelMetrics;
  readonly #checker: WatchChecker;

  /** Validates the endpoints and reads the TLS files (throws naming the bad flag). */
  constructor(options: EtcdClientOptions) {
    const log = options.log ?? silentLogger;
    this.#log = log;
    this.#metrics = options.metrics ?? unservedMetrics();
    const endpoints = parseEndpoints(options.endpoints);
    const tls = loadTls({ ...options, endpoints }, log);
    // HTTP/1.1 only, so each watch has its own connection and aborting a request drops its
    // connection; one idle connection kept. The retry after a timeout never uses a pooled one.
    this.#http = Deno.createHttpClient({ ...tls, http2: false, poolMaxIdlePerHost: 1 });
    this.#freshHttp = Deno.createHttpClient({ ...tls, http2: false, poolMaxIdlePerHost: 0 });
    this.#transport = new Transport({
      endpoints,
      http: this.#http,
      freshHttp: this.#freshHttp,
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      log,
      closed: this.#closer.signal,
      tls: { ...options, material: tls },
    });
    this.#tokens = new TokenCache(this.#transport, options.username, options.password ?? "", log);
    this.#checker = new WatchChecker({
      everyMs: options.watchCheckMs ?? DEFAULT_WATCH_CHECK_MS,
      probe: (key, signal) => this.#keyState(key, signal),
      log,
      closed: this.#closer.signal,
    });
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
   * A stream found behind etcd while silent (a dead connection, see `_watch_check.ts`) is
   * re-created from its last revision without the caller noticing. Ends quietly when `signal`
   * aborts or the client is closed; throws when the stream breaks or ends, so the caller can
   * watch again from its last revision + 1 (this client does not retry).
   */
  async *watch(
    prefix: string,
    fromRevision: bigint,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchResponse> {
    const signal = opts.signal;
    const stopped = () => (signal?.aborted ?? false) || this.#closer.signal.aborted;
    const single = opts.prefix === false;
    const what = `watch ${single ? "key" : "prefix"} "${prefix}"`;
    /** Where the next stream starts: after the last revision delivered. */
    let start = fromRevision;
    let stream: OpenStream | undefined;
    let restartRequested = false;
    /** The last restart, until the new stream shows whether events had been missed. */
    let restarted: { silentMs: number; revision: bigint; from: bigint } | undefined;
    const checked: CheckedWatch = {
      key: prefix,
      single,
      heardAt: Date.now(),
      covered: fromRevision > 0n ? fromRevision - 1n : 0n,
      restart: (why) => {
        if (!stream) return;
        restartRequested = true;
        restarted = { ...why, from: start };
        this.#log.v(
          1,
          `etcd ${what} restarted from revision ${start}: silent for ${
            formatDuration(why.silentMs)
          } while etcd is at revision ${why.revision}`,
        );
        this.#metrics.watchReconnects.inc({ source: "etcd" });
        stream.release();
      },
    };
    const stopChecking = this.#checker.add(checked);
    let retriedAuth = false;
    try {
      attempt: for (;;) {
        const body = {
          create_request: {
            key: encodeText(prefix),
            ...(single ? {} : { range_end: prefixRangeEnd(prefix) }),
            start_revision: String(start),
            progress_notify: true,
          },
        };
        restartRequested = false;
        try {
          stream = await this.#openWatch(body, what, signal);
        } catch (err) {
          if (stopped()) return;
          throw err;
        }
        checked.heardAt = Date.now();
        const from = stream.endpoint;
        const reader = stream.response.body!.getReader();
        try {
          const lines = new LineSplitter();
          for (;;) {
            let chunk: ReadableStreamReadResult<Uint8Array>;
            try {
              chunk = await reader.read();
            } catch (err) {
              if (stopped()) return;
              if (restartRequested) continue attempt;
              throw new Error(`etcd ${what} from ${from}: the stream broke`, { cause: err });
            }
            if (chunk.done) {
              if (stopped()) return;
              if (restartRequested) continue attempt;
              throw new Error(`etcd ${what} from ${from}: the stream ended`);
            }
            checked.heardAt = Date.now();
            for (const line of lines.push(chunk.value)) {
              let json: Json;
              try {
                json = JSON.parse(line);
              } catch (err) {
                throw new Error(`etcd ${what} from ${from}: cannot parse ${quote(line)}`, {
                  cause: err,
                });
              }
              const msg = parseWatchMessage(json, checked.covered);
              if (msg.kind === "created") {
                // etcd now owes this stream every event up to its current revision.
                if (msg.revision > checked.covered) checked.covered = msg.revision;
                if (start === 0n) start = msg.revision + 1n;
                continue;
              }
              if (msg.kind === "error") {
                if (this.#tokens.enabled && isStaleToken(msg.error) && !retriedAuth) {
                  retriedAuth = true;
                  this.#tokens.invalidate();
                  continue attempt;
                }
                throw this.#mapError(msg.error, what);
              }
              const resp = msg.response;
              if (restarted && resp.events.length > 0) {
                const r = restarted;
                restarted = undefined;
                if (resp.events.some((e) => e.kv.modRevision <= r.revision)) {
                  this.#log.info(
                    `etcd ${what} restarted from revision ${r.from}: it was silent for ${
                      formatDuration(r.silentMs)
                    } and missed changes up to revision ${r.revision} (a dead connection)`,
                  );
                }
              }
              if (resp.revision > checked.covered) checked.covered = resp.revision;
              start = resp.revision + 1n;
              for (const e of resp.events) {
                if (e.kv.key === prefix) checked.present = e.type === "put";
              }
              yield resp;
              if (resp.canceled) return;
            }
          }
        } finally {
          stream.release();
          stream = undefined;
          await reader.cancel().catch(() => {});
        }
      }
    } finally {
      stopChecking();
    }
  }

  /** etcd's revision and the mod revision of `key`: one serializable read of the key alone. */
  async #keyState(key: string, signal: AbortSignal): Promise<KeyState> {
    const body = { key: encodeText(key), keys_only: true, serializable: true };
    const json = await this.#call("/v3/kv/range", body, `read "${key}"`, { signal });
    const kv = json.kvs?.[0];
    return {
      revision: int64(json.header?.revision),
      modRevision: kv ? int64(kv.mod_revision) : undefined,
    };
  }

  /** Aborts in-flight requests and watches and releases the TLS client. */
  close(): void {
    if (this.#closer.signal.aborted) return;
    this.#closer.abort(new Error("EtcdClient was closed"));
    this.#http.close();
    this.#freshHttp.close();
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
