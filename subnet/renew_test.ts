import assert from "node:assert/strict";
import { formatDuration, renewDelay } from "./renew.ts";

Deno.test("renewDelay() renews margin minutes before expiry", async (t) => {
  const now = Date.UTC(2026, 0, 1);
  await t.step("24 h lease, 60 min margin → 23 h", () => {
    assert.equal(renewDelay(now + 86_400_000, now, 60), 23 * 3_600_000);
  });
  await t.step("already past the renewal point → 0", () => {
    assert.equal(renewDelay(now + 30 * 60_000, now, 60), 0);
  });
  await t.step("reservation (no expiry) → undefined", () => {
    assert.equal(renewDelay(undefined, now, 60), undefined);
  });
  await t.step("margin 1439 of a 24 h lease → 1 min", () => {
    assert.equal(renewDelay(now + 86_400_000, now, 1439), 60_000);
  });
});

Deno.test("formatDuration() prints like Go's time.Duration", () => {
  assert.equal(formatDuration(23 * 3_600_000), "23h0m0s");
  assert.equal(formatDuration(61_000), "1m1s");
  assert.equal(formatDuration(500), "1s");
  assert.equal(formatDuration(0), "0s");
});
