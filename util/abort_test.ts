import assert from "node:assert/strict";
import { Backoff, isAbort, sleep } from "./abort.ts";

Deno.test("Backoff doubles from its start up to its cap, and reset() starts over", () => {
  const b = new Backoff(100, 700);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 700, 700]);
  b.reset();
  assert.equal(b.next(), 100);
  const d = new Backoff();
  assert.deepEqual(Array.from({ length: 8 }, () => d.next()).slice(-2), [5000, 5000]);
});

Deno.test("sleep() resolves true after the delay and false at once on abort", async () => {
  assert.equal(await sleep(1), true);
  const ac = new AbortController();
  const pending = sleep(60_000, ac.signal);
  ac.abort();
  assert.equal(await pending, false);
  assert.equal(await sleep(60_000, ac.signal), false, "already aborted");
});

Deno.test("isAbort() recognises aborts and timeouts only", () => {
  assert.equal(isAbort(new DOMException("x", "AbortError")), true);
  assert.equal(isAbort(new DOMException("x", "TimeoutError")), true);
  assert.equal(isAbort(new Error("x")), false);
  assert.equal(isAbort(new Error("x"), AbortSignal.abort()), true);
});
