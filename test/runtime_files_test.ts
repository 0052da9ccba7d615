/**
 * What the agent loads at run time without a static import must resolve in a `deno compile`
 * binary and in a bundle too, not only in the source tree: every dynamic `import()` in the
 * agent's module graph is a literal (so compile and bundle follow it), every worker module is in
 * the compile task's `--include` list, and no module finds files relative to itself or the
 * working directory except the worker lookup made for that (backends/udp/_worker_url.ts).
 */
import assert from "node:assert/strict";
import { WORKER_BUNDLE, workerUrl } from "../backends/udp/_worker_url.ts";
import { COMPILE_INCLUDES } from "../scripts/compile.ts";

const ROOT = new URL("../", import.meta.url);

/** The local modules `deno info` finds from `entry`, dynamic literal imports included. */
async function graph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT.pathname,
    stdout: "piped",
  }).output();
  assert.ok(out.success, `deno info ${entry}`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  return info.modules.map((m: { specifier: string }) => m.specifier)
    .filter((s: string) => s.startsWith(ROOT.href)).map((s: string) => s.slice(ROOT.href.length));
}

const agent = await graph("main.ts");
const workers = (await Promise.all(COMPILE_INCLUDES.map(graph))).flat();

Deno.test("the agent's module graph reaches every backend and the Kubernetes manager", () => {
  for (
    const m of [
      "backends/alloc.ts",
      "backends/host_gw.ts",
      "backends/vxlan/mod.ts",
      "backends/udp/mod.ts",
      "subnet/kube/mod.ts",
    ]
  ) {
    assert.ok(agent.includes(m), `${m} is reached from main.ts`);
  }
});

Deno.test("no module of the agent loads code or files through a computed path", async () => {
  const allowed = new Set(["backends/udp/_worker_url.ts"]);
  for (const path of new Set([...agent, ...workers])) {
    const text = await Deno.readTextFile(new URL(path, ROOT));
    const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bimport\(\s*[^"'\s]/, `${path}: import() of a computed specifier`);
    if (allowed.has(path)) continue;
    assert.doesNotMatch(code, /import\.meta\.(url|dirname|filename)/, `${path} finds files by URL`);
    assert.doesNotMatch(code, /Deno\.cwd\(\)/, `${path} depends on the working directory`);
    assert.doesNotMatch(
      code,
      /new Worker\((?!workerUrl\(\))/,
      `${path}: a worker not found through workerUrl(), which compile and bundle may miss`,
    );
  }
});

Deno.test("workerUrl() finds the worker in the tree, a compiled binary and a bundle", () => {
  const here = new URL("backends/udp/_worker_url.ts", ROOT).href;
  const worker = workerUrl(here).href.slice(ROOT.href.length);
  assert.ok(COMPILE_INCLUDES.includes(worker), `${worker} is embedded by deno task compile`);
  assert.equal(
    workerUrl("file:///opt/flanneld/flanneld.js").href,
    `file:///opt/flanneld/${WORKER_BUNDLE}`,
  );
});
