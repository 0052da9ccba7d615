/**
 * Virtual time for tests of code that sleeps (renewal retries, backoffs): `setTimeout`,
 * `clearTimeout` and `Date` are replaced until the returned clock is disposed, and
 * `await clock.tickAsync(ms)` runs every timer due in that span, letting promises settle
 * between them. Use with `using clock = fakeTime();`.
 */
// @ts-types="@types/sinonjs__fake-timers"
import FakeTimers from "@sinonjs/fake-timers";

export interface FakeClock {
  /** The virtual epoch milliseconds (what `Date.now()` returns). */
  readonly now: number;
  /** Advances virtual time by `ms`, firing due timers in order. */
  tickAsync(ms: number): Promise<number>;
  /** Runs every pending timer, however far ahead. */
  runAllAsync(): Promise<number>;
  [Symbol.dispose](): void;
}

/** Installs virtual time starting at `now` (default 2026-01-01T00:00:00Z). */
export function fakeTime(now = Date.UTC(2026, 0, 1)): FakeClock {
  const clock = FakeTimers.withGlobal(globalThis).install({
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
    now,
  });
  return {
    get now() {
      return clock.now;
    },
    tickAsync: (ms) => clock.tickAsync(ms),
    runAllAsync: () => clock.runAllAsync(),
    [Symbol.dispose]: () => clock.uninstall(),
  };
}
