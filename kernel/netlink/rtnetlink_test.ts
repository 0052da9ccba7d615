/**
 * Root-only: runs `test/netlink_kernel_cases.ts` against the real kernel inside a throwaway network namespace
 * (`unshare --net`: the namespace dies with the child process, also when it crashes, so there is
 * nothing to clean up). Without root the test is skipped with a message.
 */
import assert from "node:assert/strict";

const IS_ROOT = Deno.uid() === 0;
if (!IS_ROOT) {
  console.error("skipping rtnetlink kernel tests: needs root (network namespaces)");
}

Deno.test({
  name: "openNetlink() passes the Netlink contract and the kernel-only cases in a netns",
  ignore: !IS_ROOT,
  sanitizeResources: false,
}, async () => {
  const cases = new URL("../../test/netlink_kernel_cases.ts", import.meta.url).pathname;
  const out = await new Deno.Command("unshare", {
    args: ["--net", "--", Deno.execPath(), "test", "-A", "--no-check", cases],
    env: { NETLINK_TEST_IN_NETNS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  for (const line of stdout.split("\n")) {
    if (line.startsWith("figure:")) console.log(line);
  }
  assert.ok(out.success, `kernel cases failed (exit ${out.code}):\n${stdout}\n${stderr}`);
  // Every case ran: none was ignored (the namespace guard) and none failed.
  assert.match(stdout, /\nok \| \d+ passed \| 0 failed \(/);
  assert.doesNotMatch(stdout, /\.\.\. ignored/);
});
