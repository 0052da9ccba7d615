import assert from "node:assert/strict";
import { compactHeap, compactPeriodically } from "./heap.ts";

Deno.test("compactHeap() asks V8 for its memory-reducing collection, and is a no-op without gc", () => {
  const calls: unknown[] = [];
  assert.equal(compactHeap((o) => calls.push(o)), true);
  assert.deepEqual(calls, [{ type: "major", execution: "sync", flavor: "last-resort" }]);
  assert.equal(compactHeap(undefined), false);
});

Deno.test("compactPeriodically() runs first after firstMs, then every everyMs, until aborted", async () => {
  const at: number[] = [];
  const t0 = Date.now();
  const ac = new AbortController();
  compactPeriodically({
    firstMs: 30,
    everyMs: 40,
    signal: ac.signal,
    gc: () => at.push(Date.now() - t0),
  });
  await new Promise((r) => setTimeout(r, 160));
  ac.abort();
  const n = at.length;
  assert.ok(n >= 3, `ran ${n} times`);
  assert.ok(at[0] >= 25, `first after ${at[0]} ms`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(at.length, n, "nothing after abort");
});

Deno.test("the memory-reducing collection gives a grown heap back (real V8, --expose-gc)", async () => {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (!gc) {
    // Run by itself in a child with the flag, so the test always measures something.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--v8-flags=--expose-gc",
        "-A",
        new URL("./_heap_probe.ts", import.meta.url).pathname,
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const [before, after] = text.split(" ").map(Number);
    assert.ok(after < before - 40, `RSS ${before} → ${after} MiB`);
  }
});
