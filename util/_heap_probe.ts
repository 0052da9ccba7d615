/** Grows the heap by ~100 MiB of short-lived objects, compacts, prints RSS before and after (MiB). */
import { compactHeap } from "./heap.ts";
let keep: unknown[] = [];
for (let r = 0; r < 30; r++) {
  const batch = [];
  for (let i = 0; i < 30000; i++) batch.push({ a: "x" + i, b: [i, i + 1], c: { d: i } });
  keep.push(batch);
  if (keep.length > 3) keep.shift();
}
keep = [];
const mib = () => Deno.memoryUsage().rss / 1048576;
const before = mib();
if (!compactHeap()) throw new Error("no gc: run with --v8-flags=--expose-gc");
await new Promise((r) => setTimeout(r, 200));
console.log(before.toFixed(1), mib().toFixed(1), keep.length);
