import assert from "node:assert/strict";
import { staleEntries } from "../scripts/mutate.ts";
import { mutations } from "./mutations.ts";

Deno.test("every mutation of test/mutations.ts still applies to exactly one place", async () => {
  assert.deepEqual(await staleEntries(mutations), []);
  assert.ok(mutations.length >= 25, `${mutations.length} mutations`);
  const behaviours = mutations.map((m) => m.behaviour);
  assert.equal(new Set(behaviours).size, behaviours.length, "behaviours are distinct");
  for (const m of mutations) {
    assert.ok(
      !m.file.endsWith("_test.ts") && !m.file.startsWith("test/"),
      `${m.file} is production`,
    );
    assert.ok(m.tests.length > 0 && m.tests.every((t) => t.endsWith("_test.ts")), m.behaviour);
  }
});
