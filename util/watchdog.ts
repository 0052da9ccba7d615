/**
 * systemd watchdog keep-alive: with `WatchdogSec=` in the unit, systemd sets `WATCHDOG_USEC`
 * (and `WATCHDOG_PID`) and restarts the service when `WATCHDOG=1` stops arriving. We ping every
 * half period, and only while the agent is healthy, so a stuck loop gets the process restarted.
 */
import { sleep } from "./abort.ts";
import { describeError, type Logger } from "./log.ts";
import { sdNotify } from "./sd_notify.ts";

export interface WatchdogEnv {
  readonly WATCHDOG_USEC?: string;
  readonly WATCHDOG_PID?: string;
}

/**
 * The ping interval in ms (half of `WATCHDOG_USEC`), or undefined when the watchdog is off:
 * the variable unset, not a positive integer, or `WATCHDOG_PID` naming another process.
 */
export function watchdogIntervalMs(env: WatchdogEnv, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[1-9][0-9]*$/.test(usec)) return undefined;
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== "" && owner !== String(pid)) return undefined;
  return Math.max(1, Number(usec) / 2000);
}

export interface WatchdogOptions {
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Default: the process environment. */
  readonly env?: WatchdogEnv;
  /** Default: `Deno.pid`. */
  readonly pid?: number;
  /** Default: {@link sdNotify}. */
  readonly notify?: (state: string) => Promise<boolean>;
  /** Pings are skipped while this returns false (e.g. a stale loop in `util/health.ts`). */
  readonly isHealthy?: () => boolean;
}

/**
 * Sends `WATCHDOG=1` now and every half `WATCHDOG_USEC` until `signal` aborts. Resolves at once
 * when the watchdog is off. Errors are logged, never thrown.
 */
export async function runWatchdog(opts: WatchdogOptions): Promise<void> {
  const env = opts.env ?? {
    WATCHDOG_USEC: Deno.env.get("WATCHDOG_USEC"),
    WATCHDOG_PID: Deno.env.get("WATCHDOG_PID"),
  };
  const interval = watchdogIntervalMs(env, opts.pid ?? Deno.pid);
  if (interval === undefined) return;
  const notify = opts.notify ?? ((state: string) => sdNotify(state));
  opts.log.info(`systemd watchdog enabled: pinging every ${(interval / 1000).toFixed(1)} s`);
  let unhealthy = false;
  do {
    if (opts.isHealthy && !opts.isHealthy()) {
      if (!unhealthy) opts.log.warn("Not pinging the systemd watchdog: flanneld is not healthy");
      unhealthy = true;
      continue;
    }
    unhealthy = false;
    try {
      await notify("WATCHDOG=1");
    } catch (err) {
      opts.log.error(`Failed to notify systemd the message WATCHDOG=1: ${describeError(err)}`);
    }
  } while (await sleep(interval, opts.signal));
}
