/**
 * Gives freed C heap memory back to the kernel (glibc `malloc_trim(0)`, through Deno FFI).
 *
 * Deno's native side (HTTP bodies of etcd and API-server watches, ArrayBuffer backing stores of
 * netlink messages) allocates with glibc malloc on several threads; after a burst the freed
 * chunks stay in the per-thread arenas and count in RSS until reused. In Kubernetes mode with
 * 1 000 nodes and a burst of updates that is ~8 MiB of the agent's RSS (bench/kube.ts: 83 → 75
 * MiB). A trim with nothing to give back costs microseconds.
 */

/** How often the agent trims (main.ts and its benchmarks). */
export const TRIM_INTERVAL_MS = 2_000;

/** The symbol table (checked by test/ffi_memory_test.ts with every other FFI table). */
export const LIBC_SYMBOLS = { malloc_trim: { parameters: ["usize"], result: "i32" } } as const;

let trim: (() => number) | null | undefined;

/**
 * Trims the C heap; false where that is impossible (no glibc, no FFI permission), and then
 * every later call returns false at once.
 */
export function releaseFreedMemory(): boolean {
  if (trim === undefined) {
    try {
      const lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
      trim = () => lib.symbols.malloc_trim(0n);
    } catch {
      trim = null;
    }
  }
  if (trim === null) return false;
  trim();
  return true;
}

/**
 * Calls {@link releaseFreedMemory} every `everyMs` until `signal` aborts; the timer never keeps
 * the process alive.
 */
export function trimPeriodically(everyMs: number, signal: AbortSignal): void {
  if (signal.aborted || !releaseFreedMemory()) return;
  const timer = setInterval(releaseFreedMemory, everyMs);
  Deno.unrefTimer(timer);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
