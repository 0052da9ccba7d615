/**
 * Typed netlink errors. Callers branch with `instanceof`: {@link ExistsError} (EEXIST),
 * {@link NotFoundError} (ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL), {@link PermissionDeniedError}
 * (EPERM, EACCES); every other kernel error is a plain {@link NetlinkError}.
 */

const errnoNames: Record<number, [string, string]> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  22: ["EINVAL", "Invalid argument"],
  34: ["ERANGE", "Numerical result out of range"],
  90: ["EMSGSIZE", "Message too long"],
  93: ["EPROTONOSUPPORT", "Protocol not supported"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  97: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  99: ["EADDRNOTAVAIL", "Cannot assign requested address"],
  100: ["ENETDOWN", "Network is down"],
  101: ["ENETUNREACH", "Network is unreachable"],
  105: ["ENOBUFS", "No buffer space available"],
  113: ["EHOSTUNREACH", "No route to host"],
};

/** The symbolic name of `errno` (`"EEXIST"`), or `"E<number>"` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames[errno]?.[0] ?? `E${errno}`;
}

/** The C library's text for `errno` (`"File exists"`), or `"errno <number>"` when unknown. */
export function errnoText(errno: number): string {
  return errnoNames[errno]?.[1] ?? `errno ${errno}`;
}

/** A failed netlink request or socket call; `errno` is the positive kernel error number. */
export class NetlinkError extends Error {
  /** Positive errno, e.g. 17 for EEXIST. */
  readonly errno: number;
  /** Symbolic errno name, e.g. `"EEXIST"`. */
  readonly code: string;

  constructor(action: string, errno: number, options?: ErrorOptions & { detail?: string }) {
    const detail = options?.detail ? ` (kernel: ${options.detail})` : "";
    super(`${action}: ${errnoText(errno)} [${errnoName(errno)}]${detail}`, options);
    this.name = "NetlinkError";
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** The object already exists (EEXIST), e.g. `ip route add` of an existing route. */
export class ExistsError extends NetlinkError {
  constructor(action: string, errno: number, options?: ErrorOptions & { detail?: string }) {
    super(action, errno, options);
    this.name = "ExistsError";
  }
}

/** The object does not exist (ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL). */
export class NotFoundError extends NetlinkError {
  constructor(action: string, errno: number, options?: ErrorOptions & { detail?: string }) {
    super(action, errno, options);
    this.name = "NotFoundError";
  }
}

/** The caller lacks the privilege (EPERM, EACCES): run as root or with CAP_NET_ADMIN. */
export class PermissionDeniedError extends NetlinkError {
  constructor(action: string, errno: number, options?: ErrorOptions & { detail?: string }) {
    super(action, errno, options);
    this.name = "PermissionDeniedError";
  }
}

/** Builds the most specific error class for `errno` (positive). */
export function errnoError(
  action: string,
  errno: number,
  options?: ErrorOptions & { detail?: string },
): NetlinkError {
  switch (errno) {
    case 17:
      return new ExistsError(action, errno, options);
    case 2:
    case 3:
    case 19:
    case 99:
      return new NotFoundError(action, errno, options);
    case 1:
    case 13:
      return new PermissionDeniedError(action, errno, options);
    default:
      return new NetlinkError(action, errno, options);
  }
}
