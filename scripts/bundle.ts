/**
 * `deno task bundle [--outdir DIR]`: the agent as JavaScript bundles that any Deno 2.9 runs
 * (`deno run -A DIR/flanneld.js ...`), where `deno compile` cannot get its runtime. Two files,
 * because the udp data path runs in a worker that loads its own module: `flanneld.js` and, beside
 * it, the worker's bundle (backends/udp/_worker_url.ts finds it there). Default DIR: dist/bundle.
 */
import { parseArgs } from "node:util";
import { WORKER_BUNDLE } from "../backends/udp/_worker_url.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Bundles `main.ts` and the udp worker into `outdir`; throws with deno's output on failure. */
export async function bundle(outdir: string): Promise<void> {
  for (
    const [entry, out] of [["main.ts", "flanneld.js"], ["backends/udp/_worker.ts", WORKER_BUNDLE]]
  ) {
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=deno", "-o", `${outdir}/${out}`, entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!res.success) {
      const text = new TextDecoder().decode(res.stderr).trim();
      throw new Error(`deno bundle ${entry} failed (exit ${res.code}): ${text}`);
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { outdir: { type: "string" } } });
  const outdir = values.outdir ?? `${ROOT}dist/bundle`;
  try {
    await bundle(outdir);
  } catch (err) {
    console.error(`deno task bundle: ${(err as Error).message}`);
    Deno.exit(1);
  }
  console.error(`Bundled the agent into ${outdir}/flanneld.js (+ ${WORKER_BUNDLE})`);
}
