/** Errors callers branch on; everything else is a plain `Error` carrying etcd's message. */

/**
 * No endpoint answered (connection refused, TLS failure, timeout); `cause` is the last error.
 * With `reason` (a TLS failure: etcd was reached), the message is that reason alone.
 */
export class EtcdUnavailableError extends Error {
  constructor(endpoints: string[], options: ErrorOptions & { reason?: string } = {}) {
    const { reason, ...errorOptions } = options;
    super(
      reason ??
        `No etcd endpoint answered (tried ${endpoints.join(", ")}); ` +
          "check that etcd is running and that --etcd-endpoints lists its client URLs",
      errorOptions,
    );
    this.name = "EtcdUnavailableError";
  }
}

/** `compact()` was asked for a revision at or below the one already compacted. */
export class EtcdCompactedError extends Error {
  readonly revision: bigint;
  constructor(revision: bigint, options?: ErrorOptions) {
    super(`Cannot compact etcd at revision ${revision}: it has already been compacted`, options);
    this.name = "EtcdCompactedError";
    this.revision = revision;
  }
}

/** Wrong credentials, auth required but no user configured, or permission denied. */
export class EtcdAuthError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EtcdAuthError";
  }
}

/** gRPC status codes the client reacts to. */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  PermissionDenied: 7,
  OutOfRange: 11,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** An error body of the gateway: `{"error": "...", "message": "...", "code": 5}`. */
export interface GatewayError {
  message: string;
  code: number;
}

export function gatewayError(json: unknown): GatewayError | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const o = json as Record<string, unknown>;
  if (typeof o.code !== "number" || o.code === 0) return undefined;
  const message = typeof o.message === "string"
    ? o.message
    : typeof o.error === "string"
    ? o.error
    : "unknown error";
  return { message, code: o.code };
}

/** Token errors after which clientv3 fetches a new token and retries once. */
export function isStaleToken(e: GatewayError): boolean {
  return e.code === GrpcCode.Unauthenticated ||
    (e.code === GrpcCode.InvalidArgument && e.message.includes("revision of auth store is old"));
}

/** etcd says auth is on but the request carried no user. */
export function isUserMissing(e: GatewayError): boolean {
  return e.code === GrpcCode.InvalidArgument && e.message.includes("user name is empty");
}

/** Any other error etcd answered with; internal (callers get it as a plain `Error`). */
export class EtcdRequestError extends Error {
  readonly code: number;
  readonly etcdMessage: string;
  constructor(message: string, err: GatewayError) {
    super(message);
    this.name = "EtcdRequestError";
    this.code = err.code;
    this.etcdMessage = err.message;
  }
}
