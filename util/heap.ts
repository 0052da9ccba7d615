/**
 * Returns V8 heap memory to the kernel, where `--expose-gc` makes it possible (the compiled
 * binary's flags, `deno task start`).
 *
 * A plain `gc()` frees objects but keeps the heap's pages and its grown young generation: after
 * the start-up burst (decoding thousands of leases and routes) RSS stays where the burst left it.
 * V8's memory-reducing collection (`flavor: "last-resort"`, what its memory reducer runs after
 * some idle time) also compacts and releases the free pages: with 5 000 leases and the binary's
 * flags, 85 → 69 MiB; it takes ~35 ms there, so it runs once shortly after start and then once a
 * minute.
 */

/** When the agent compacts: 5 s after start, then once a minute (main.ts and its benchmarks). */
export const COMPACTION = { firstMs: 5_000, everyMs: 60_000 } as const;

type Gc = (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/** `globalThis.gc` when the process runs with `--expose-gc`. */
export function exposedGc(): Gc | undefined {
  return (globalThis as { gc?: Gc }).gc;
}

/** One memory-reducing full collection; false without `--expose-gc`. */
export function compactHeap(gc: Gc | undefined = exposedGc()): boolean {
  if (!gc) return false;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}

/**
 * {@link compactHeap} after `firstMs`, then every `everyMs`, until `signal` aborts; does nothing
 * without `--expose-gc`. The timers never keep the process alive.
 */
export function compactPeriodically(
  opts: { firstMs: number; everyMs: number; signal: AbortSignal; gc?: Gc },
): void {
  const gc = opts.gc ?? exposedGc();
  if (!gc || opts.signal.aborted) return;
  let interval: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    compactHeap(gc);
    const timer = setInterval(() => compactHeap(gc), opts.everyMs);
    Deno.unrefTimer(timer);
    interval = timer;
  }, opts.firstMs);
  Deno.unrefTimer(first);
  opts.signal.addEventListener("abort", () => {
    clearTimeout(first);
    clearInterval(interval);
  }, { once: true });
}
