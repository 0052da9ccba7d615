/**
 * Kernel routing, link, address, neighbour and FDB programming over rtnetlink.
 *
 * - {@link Netlink} (in `types.ts`) is the seam backends use, one method per `ip`/`bridge`
 *   command; `test/fakes/netlink.ts` implements it in memory for unprivileged tests.
 * - {@link openNetlink} returns the real one: a NETLINK_ROUTE socket through Deno FFI to libc
 *   (needs `--allow-ffi`; changes need CAP_NET_ADMIN), messages encoded with npm:netlink's codec.
 * - Errors: {@link NetlinkError} with `errno`/`code`; branch on {@link ExistsError},
 *   {@link NotFoundError}, {@link PermissionDeniedError}.
 *
 * This folder is a leaf: it imports nothing from `subnet/` or `backends/`.
 */
export type * from "./types.ts";
export { IFA_F } from "./types.ts";
export {
  errnoError,
  errnoName,
  ExistsError,
  NetlinkError,
  NotFoundError,
  PermissionDeniedError,
} from "./errors.ts";
export { describeRoute, openNetlink, type OpenNetlinkOptions } from "./rtnetlink.ts";
