/** Lease renewal timing (flannel pkg/subnet/etcd/local_manager.go (TTL, renewal)): pure, tested with an injected clock. */

/** etcd lease TTL flannel grants: 24 h. */
export const LEASE_TTL_SECONDS = 86_400;

/** How long to wait after a failed renewal before trying again (flannel: 1 min). */
export const RENEW_RETRY_MS = 60_000;

/**
 * Milliseconds from `now` until the lease should be renewed: `expiration − margin`, never negative.
 * `undefined` for a lease without expiration (a reservation is never renewed).
 */
export function renewDelay(
  expiration: number | undefined,
  now: number,
  marginMinutes: number,
): number | undefined {
  if (expiration === undefined) return undefined;
  return Math.max(0, expiration - marginMinutes * 60_000 - now);
}

/** Formats a duration the way Go prints one in flannel's `Waiting for 22h59m59s to renew lease`. */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
