import assert from "node:assert/strict";
import { silentLogger } from "./log.ts";
import { runWatchdog, watchdogIntervalMs } from "./watchdog.ts";

Deno.test("watchdogIntervalMs() is half of WATCHDOG_USEC, for this process only", async (t) => {
  const cases: [string, { WATCHDOG_USEC?: string; WATCHDOG_PID?: string }, number | undefined][] = [
    ["unset", {}, undefined],
    ["30 s", { WATCHDOG_USEC: "30000000" }, 15_000],
    ["our pid", { WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" }, 15_000],
    ["empty pid", { WATCHDOG_USEC: "30000000", WATCHDOG_PID: "" }, 15_000],
    ["another pid", { WATCHDOG_USEC: "30000000", WATCHDOG_PID: "43" }, undefined],
    ["zero", { WATCHDOG_USEC: "0" }, undefined],
    ["garbage", { WATCHDOG_USEC: "30s" }, undefined],
    ["tiny", { WATCHDOG_USEC: "1" }, 1],
  ];
  for (const [name, env, want] of cases) {
    await t.step(name, () => assert.equal(watchdogIntervalMs(env, 42), want));
  }
});

Deno.test("runWatchdog() pings every half period while healthy, until aborted", async () => {
  const sent: number[] = [];
  const ac = new AbortController();
  let healthy = true;
  const started = performance.now();
  const timer = setTimeout(() => ac.abort(), 300);
  await runWatchdog({
    log: silentLogger,
    signal: ac.signal,
    env: { WATCHDOG_USEC: "20000" }, // 20 ms: a ping every 10 ms
    pid: 1,
    isHealthy: () => healthy,
    notify: (state) => {
      assert.equal(state, "WATCHDOG=1");
      sent.push(performance.now() - started);
      if (sent.length === 3) healthy = false; // a stuck loop: pings stop
      return Promise.resolve(true);
    },
  });
  clearTimeout(timer);
  assert.equal(sent.length, 3, "no pings while unhealthy");
  assert.ok(sent[0] < sent[1] - 8, "the first ping comes before the first wait");
  assert.ok(sent[2] - sent[1] >= 8, "pings are half a period apart");
});

Deno.test("runWatchdog() returns at once when the watchdog is off and logs send errors", async () => {
  let calls = 0;
  await runWatchdog({
    log: silentLogger,
    signal: new AbortController().signal,
    env: {},
    notify: () => {
      calls++;
      return Promise.resolve(true);
    },
  });
  assert.equal(calls, 0);

  const errors: string[] = [];
  const ac = new AbortController();
  await runWatchdog({
    log: { ...silentLogger, error: (m) => errors.push(m) },
    signal: ac.signal,
    env: { WATCHDOG_USEC: "20000" },
    pid: 1,
    notify: () => {
      ac.abort();
      return Promise.reject(new Error("Cannot notify systemd"));
    },
  });
  assert.deepEqual(errors, [
    "Failed to notify systemd the message WATCHDOG=1: Cannot notify systemd",
  ]);
});
