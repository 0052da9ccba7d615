import assert from "node:assert/strict";
import { releaseFreedMemory, trimPeriodically } from "./malloc_trim.ts";

Deno.test("releaseFreedMemory() trims glibc's heap and can be called again", () => {
  // Free some C heap first (ArrayBuffer backing stores are malloc'd).
  let bufs: Uint8Array[] | undefined = Array.from({ length: 200 }, () => new Uint8Array(64 << 10));
  assert.equal(bufs.length, 200);
  bufs = undefined;
  assert.equal(releaseFreedMemory(), true, "this test host has glibc and FFI");
  assert.equal(releaseFreedMemory(), true);
});

Deno.test("trimPeriodically() stops when its signal aborts and never holds the process", async () => {
  const ac = new AbortController();
  trimPeriodically(5, ac.signal);
  await new Promise((r) => setTimeout(r, 20));
  ac.abort(); // the test sanitiser fails the test if an interval is left running
  const aborted = new AbortController();
  aborted.abort();
  trimPeriodically(5, aborted.signal); // nothing started
});
