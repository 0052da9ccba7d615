/** The periodic resync shared by both modes. */
import { sleep } from "../../util/abort.ts";
import { describeError, type Logger } from "../../util/log.ts";
import type { ResyncLoopOptions } from "./mod.ts";

export async function resyncLoop(
  resync: (signal: AbortSignal) => Promise<number>,
  log: Logger,
  opts: ResyncLoopOptions,
): Promise<void> {
  const periodMs = Math.max(10, opts.resyncSeconds * 1000);
  while (await sleep(periodMs, opts.signal)) {
    try {
      await resync(opts.signal);
    } catch (err) {
      if (opts.signal.aborted) return;
      log.error(`Failed to ensure traffic rules: ${describeError(err)}`);
    }
    opts.onTick?.();
  }
}
