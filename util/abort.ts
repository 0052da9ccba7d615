/** Cancellation-aware timing helpers. */

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. Returns false if aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential backoff: 100 ms doubling up to `max` (default 5 s), as flannel's watch reconnects. */
export class Backoff {
  #next: number;
  readonly #initial: number;
  readonly #max: number;

  constructor(initialMs = 100, maxMs = 5000) {
    this.#initial = initialMs;
    this.#next = initialMs;
    this.#max = maxMs;
  }

  /** The delay to wait now; doubles the next one. */
  next(): number {
    const d = this.#next;
    this.#next = Math.min(this.#next * 2, this.#max);
    return d;
  }

  reset(): void {
    this.#next = this.#initial;
  }
}

/** Whether `err` is the rejection of an aborted operation. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return (signal?.aborted ?? false) ||
    (err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError"));
}
