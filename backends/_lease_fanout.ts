/**
 * One lease watch shared by the reconcile loops of a dual-stack network (one loop per family):
 * the subnet manager lists and watches once, and every loop sees every result, in order. The
 * source starts when the first loop asks and ends when the first loop's signal aborts (all
 * loops of one network run under the same signal).
 */
import type { LeaseWatchResult, SignalOptions, SubnetManager } from "../subnet/mod.ts";

type Watch = Pick<SubnetManager, "watchLeases">;

/** `watchLeases` of `manager`, split into `n` branches that each see every result. */
export function shareLeaseWatch(manager: Watch, n: number): Watch[] {
  const queues = Array.from({ length: n }, () => [] as LeaseWatchResult[]);
  const wakers: Array<(() => void) | undefined> = new Array(n);
  let started = false, ended = false, failure: unknown;
  const wake = () => {
    for (let i = 0; i < n; i++) {
      const w = wakers[i];
      wakers[i] = undefined;
      w?.();
    }
  };
  const pump = async (options?: SignalOptions) => {
    try {
      for await (const result of manager.watchLeases(options)) {
        for (const q of queues) q.push(result);
        wake();
      }
    } catch (err) {
      failure = err;
    } finally {
      ended = true;
      wake();
    }
  };
  return queues.map((queue, i) => ({
    async *watchLeases(options?: SignalOptions): AsyncIterable<LeaseWatchResult> {
      if (!started) {
        started = true;
        void pump(options);
      }
      const aborted = new Promise<void>((resolve) =>
        options?.signal?.addEventListener("abort", () => resolve(), { once: true })
      );
      while (true) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (ended) {
          if (failure !== undefined) throw failure;
          return;
        }
        if (options?.signal?.aborted) return;
        await Promise.race([new Promise<void>((resolve) => wakers[i] = resolve), aborted]);
      }
    },
  }));
}
