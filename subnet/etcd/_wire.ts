/** The client's data types and their decoding from the gateway's JSON. */
import { decodeText, int64 } from "./_codec.ts";
import { type GatewayError, GrpcCode } from "./_errors.ts";
import type { Json } from "./_transport.ts";

export interface KeyValue {
  key: string;
  value: string;
  /** etcd lease ID as a decimal string, "0" when the key has no lease. */
  lease: string;
  modRevision: bigint;
  createRevision: bigint;
  version: bigint;
}

export interface WatchEvent {
  type: "put" | "delete";
  /** For a delete: only `key` and `modRevision` are set. */
  kv: KeyValue;
}

export interface WatchResponse {
  /** The store revision this response brings the watcher up to (resume from `revision + 1`). */
  revision: bigint;
  /** Empty for a progress notification. */
  events: WatchEvent[];
  /**
   * Set when the start revision was compacted: etcd cancelled the watch, this is the last response
   * and the caller must re-list and watch again from a new snapshot.
   */
  compactRevision?: bigint;
  canceled?: boolean;
}

export function decodeKv(kv: Json): KeyValue {
  return {
    key: decodeText(kv.key),
    value: decodeText(kv.value),
    lease: String(int64(kv.lease)),
    modRevision: int64(kv.mod_revision),
    createRevision: int64(kv.create_revision),
    version: int64(kv.version),
  };
}

/** One line of the watch stream, classified. */
export type WatchMessage =
  | { kind: "created"; revision: bigint }
  | { kind: "response"; response: WatchResponse }
  | { kind: "error"; error: GatewayError };

/** Names of the gRPC codes that appear in a watch's `cancel_reason`. */
const CODE_NAMES: Record<string, number> = {
  InvalidArgument: GrpcCode.InvalidArgument,
  NotFound: GrpcCode.NotFound,
  PermissionDenied: GrpcCode.PermissionDenied,
  OutOfRange: GrpcCode.OutOfRange,
  Unavailable: GrpcCode.Unavailable,
  Unauthenticated: GrpcCode.Unauthenticated,
};

/**
 * Classifies a parsed watch line (`{"result": {...}}` or a stream error `{"error": {...}}`).
 * `lastRevision` stands in when etcd omits the header revision (its compaction notice does).
 */
export function parseWatchMessage(msg: Json, lastRevision: bigint): WatchMessage {
  if (msg?.error) {
    const e = msg.error;
    return typeof e === "object"
      ? {
        kind: "error",
        error: { code: Number(e.grpc_code ?? e.code ?? -1), message: String(e.message) },
      }
      : { kind: "error", error: { code: -1, message: String(e) } };
  }
  const r = msg?.result ?? {};
  const revision = r.header?.revision !== undefined ? int64(r.header.revision) : lastRevision;
  const compactRevision = int64(r.compact_revision);
  if (compactRevision !== 0n) {
    return {
      kind: "response",
      response: { revision, events: [], compactRevision, canceled: true },
    };
  }
  if (r.canceled) {
    const reason = String(r.cancel_reason ?? "");
    const m = /code = (\w+) desc = (.*)$/s.exec(reason);
    return {
      kind: "error",
      error: m
        ? { code: CODE_NAMES[m[1]] ?? -1, message: m[2] }
        : { code: -1, message: reason || "watch canceled by etcd" },
    };
  }
  if (r.created) return { kind: "created", revision };
  const events: WatchEvent[] = (r.events ?? []).map((e: Json) => ({
    type: e.type === "DELETE" ? "delete" : "put",
    kv: decodeKv(e.kv ?? {}),
  }));
  return { kind: "response", response: { revision, events } };
}
