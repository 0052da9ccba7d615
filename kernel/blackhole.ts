/**
 * `--ip-blackhole-route` (flannel main.go (--ip-blackhole-route)): keep `blackhole <own lease subnet>` in the main table,
 * so traffic to unallocated local pod addresses is dropped here instead of following the default
 * route. Checked at start and every `--iptables-resync` seconds (flannel waits one period first).
 */
import { sleep } from "../util/abort.ts";
import { describeError, type Logger } from "../util/log.ts";
import { ExistsError } from "./netlink/errors.ts";
import type { Netlink } from "./netlink/types.ts";

export interface BlackholeLoopOptions {
  readonly netlink: Netlink;
  /** The own lease subnets, one per enabled family (`"10.244.1.0/24"`, `"fd00:1::/64"`). */
  readonly subnets: readonly string[];
  /** `--iptables-resync`: seconds between checks. */
  readonly periodSeconds: number;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Called for each blackhole route added after the first pass (self-healing metric). */
  readonly onRestored?: () => void;
  /** Called after every pass (liveness heartbeat). */
  readonly onTick?: () => void;
}

/**
 * Adds `blackhole <subnet>` for each subnet that has no blackhole route in the main table.
 * Returns the subnets it added a route for. A different route with the same key (e.g. a bridge
 * route to the whole subnet) makes the kernel refuse: that subnet is reported in `blocked`.
 */
export async function ensureBlackholeRoutes(
  netlink: Netlink,
  subnets: readonly string[],
): Promise<{ added: string[]; blocked: string[] }> {
  const added: string[] = [];
  const blocked: string[] = [];
  for (const dst of subnets) {
    const family = dst.includes(":") ? 6 : 4;
    const existing = await netlink.routes({ family, table: 254, dst });
    if (existing.some((r) => r.type === "blackhole")) continue;
    try {
      await netlink.routeAdd({ dst, type: "blackhole" });
      added.push(dst);
    } catch (err) {
      if (!(err instanceof ExistsError)) {
        throw new Error(`Cannot add blackhole route "${dst}"`, { cause: err });
      }
      blocked.push(dst);
    }
  }
  return { added, blocked };
}

/** Runs {@link ensureBlackholeRoutes} now and every period until `signal` aborts; errors are logged. */
export async function runBlackholeRoutes(opts: BlackholeLoopOptions): Promise<void> {
  const periodMs = Math.max(10, opts.periodSeconds * 1000);
  const warned = new Set<string>();
  let first = true;
  do {
    try {
      const { added, blocked } = await ensureBlackholeRoutes(opts.netlink, opts.subnets);
      for (const dst of added) {
        opts.log.info(`Added blackhole route ${dst}`);
        if (!first) opts.onRestored?.();
      }
      for (const dst of blocked) {
        if (warned.has(dst)) continue;
        warned.add(dst);
        opts.log.warn(
          `Cannot add blackhole route ${dst}: another route to ${dst} with the same metric ` +
            `exists (ip route show ${dst}); remove it or drop --ip-blackhole-route`,
        );
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      opts.log.error(`Failed to ensure blackhole routes: ${describeError(err)}`);
    }
    first = false;
    opts.onTick?.();
  } while (await sleep(periodMs, opts.signal));
}
