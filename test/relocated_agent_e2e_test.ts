/**
 * The agent run from elsewhere than this source tree, as a compiled binary or an installed copy
 * runs: from a copy of the project in another folder, and from `deno task bundle` output, each
 * with `/` as working directory. Root: two udp hosts (the backend that loads a worker module at
 * run time), one per form, ping pod to pod. Without root: both print the version.
 */
import assert from "node:assert/strict";
import { bundle } from "../scripts/bundle.ts";
import { AgentProcess } from "./agent_process.ts";
import { eventually, IS_ROOT, ping, TestBed } from "./testbed.ts";
import { VERSION } from "../version.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Copies the files git tracks or would track (what a clone of the tree holds). */
async function copyProject(to: string): Promise<void> {
  const ls = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  })
    .output().catch(() => undefined);
  const files = ls?.success ? new TextDecoder().decode(ls.stdout).split("\0").filter(Boolean) : [];
  assert.ok(files.includes("main.ts"), "git ls-files lists the project");
  for (const f of files) {
    await Deno.mkdir(`${to}/${f.slice(0, f.lastIndexOf("/") + 1)}`, { recursive: true });
    await Deno.copyFile(`${ROOT}${f}`, `${to}/${f}`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // deleted, not yet committed
    });
  }
}

Deno.test({
  name: "the agent runs from a moved copy of the project and from the bundle",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "flanneld-elsewhere-" });
    try {
      const moved = `${dir}/moved/main.ts`;
      const bundled = `${dir}/bundle/flanneld.js`;
      await copyProject(`${dir}/moved`);
      await bundle(`${dir}/bundle`);

      await t.step("--version", async () => {
        for (const main of [moved, bundled]) {
          const a = new AgentProcess(["--version"], { main, cwd: "/" });
          assert.equal((await a.status).code, 0, main);
          await a.stop();
          assert.deepEqual(a.lines.filter(Boolean), [VERSION], main);
        }
      });

      await t.step({
        name: "udp hosts, one per form, reach each other's pods",
        ignore: !IS_ROOT,
        fn: async () => {
          const config = '{"Network":"10.100.0.0/16","Backend":{"Type":"udp"}}';
          await using bed = await TestBed.create({ hosts: 2, config });
          for (const [i, main] of [moved, bundled].entries()) {
            const h = bed.hosts[i];
            h.agent = new AgentProcess([
              `--etcd-endpoints=${bed.etcdEndpoint}`,
              `--subnet-file=${h.subnetFile}`,
              "--iface=eth0",
            ], { netns: h.ns, main, cwd: "/" });
          }
          await Promise.all(bed.hosts.map((h) => h.agent!.waitFor(/Wrote subnet file/, 30_000)));
          for (const h of bed.hosts) await h.addPod();
          const [a, b] = bed.hosts;
          await eventually(() => ping(a.pods[0], b.pods[0].ip), 10_000, "moved → bundled pod");
          await eventually(() => ping(b.pods[0], a.pods[0].ip), 10_000, "bundled → moved pod");
        },
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
