/**
 * An in-memory SubnetManager for backend tests: `acquireLease` hands out the configured lease,
 * `watchLeases` yields whatever the test pushes (`push({ snapshot })`, `push({ events })`).
 */
import type {
  Lease,
  LeaseAttrs,
  LeaseWatchResult,
  NetworkConfig,
  SignalOptions,
  SubnetManager,
} from "../../subnet/mod.ts";

export class FakeSubnetManager implements SubnetManager {
  readonly name = "fake";
  readonly acquired: LeaseAttrs[] = [];
  #queue: LeaseWatchResult[] = [];
  #wake?: () => void;

  constructor(readonly config: NetworkConfig, readonly lease: Lease) {}

  getNetworkConfig(): Promise<NetworkConfig> {
    return Promise.resolve(this.config);
  }

  acquireLease(attrs: LeaseAttrs): Promise<Lease> {
    this.acquired.push(attrs);
    return Promise.resolve({ ...this.lease, attrs });
  }

  /** Queues a watch result for the backend. */
  push(result: LeaseWatchResult): void {
    this.#queue.push(result);
    this.#wake?.();
  }

  async *watchLeases(options?: SignalOptions): AsyncIterable<LeaseWatchResult> {
    const signal = options?.signal;
    const onAbort = () => this.#wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        const next = this.#queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  completeLease(_lease: Lease, options?: SignalOptions): Promise<void> {
    return new Promise((resolve) => {
      if (options?.signal?.aborted) return resolve();
      options?.signal?.addEventListener("abort", () => resolve(), { once: true });
    });
  }
}
