/**
 * Root-only: external interface selection against real kernel addresses. Runs
 * `test/iface_selection_cases.ts` in a throwaway network namespace (`unshare --net`: it dies with
 * the child process, so nothing is left to clean up).
 */
import assert from "node:assert/strict";
import { skipUnlessRoot } from "./testbed.ts";

Deno.test({
  name: "selectExternalInterface() picks real kernel addresses by their flags (netns)",
  ignore: skipUnlessRoot("interface selection netns test"),
  sanitizeResources: false,
}, async () => {
  const out = await new Deno.Command("unshare", {
    args: [
      "--net",
      "--",
      Deno.execPath(),
      "test",
      "-A",
      "--no-check",
      new URL("./iface_selection_cases.ts", import.meta.url).pathname,
    ],
    env: { IFACE_TEST_IN_NETNS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `netns cases failed (exit ${out.code}):\n${stdout}\n${stderr}`);
  assert.match(stdout, /\nok \| 1 passed \(\d+ steps\) \| 0 failed /);
});
