/**
 * `deno task compile [--output PATH]`: the single flanneld binary (default dist/flanneld).
 * `deno compile` downloads Deno's runtime (denort) from Deno's release host; where that host is
 * unreachable, or `DENORT_BIN` points to no usable denort, this says so in one paragraph with the
 * fix, instead of deno's stack of causes.
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname;

/** Files the binary loads at run time that no static import names (each `new Worker` module). */
export const COMPILE_INCLUDES = ["backends/udp/_worker.ts"];

/**
 * The V8 flags baked into the binary: a small young generation (lower memory peaks in lease
 * bursts; README, benchmarks) and `gc` exposed (main.ts runs one full collection a minute).
 */
export const SHIPPED_V8_FLAGS = "--max-semi-space-size=1,--expose-gc";

/** The `deno compile` arguments for `output`. */
export function compileArgs(output: string): string[] {
  return [
    "compile",
    "-A",
    "--frozen",
    ...COMPILE_INCLUDES.flatMap((f) => ["--include", f]),
    `--v8-flags=${SHIPPED_V8_FLAGS}`,
    "--output",
    output,
    "main.ts",
  ];
}

/** What to tell the user when `deno compile` failed with `stderr`; undefined if not runtime trouble. */
export function explainRuntimeFailure(
  stderr: string,
  denortBin: string | undefined,
): string | undefined {
  const version = Deno.version.deno;
  if (denortBin) {
    if (!/base binary|denort|No such file|os error/i.test(stderr)) return undefined;
    return `deno compile could not use DENORT_BIN=${denortBin} as its runtime: it must be the ` +
      `denort binary of Deno ${version} (unzipped from denort-<target>.zip of that release).`;
  }
  if (!/denort|dl\.deno\.land|Setting up base binary/i.test(stderr)) return undefined;
  return `deno compile could not download Deno's runtime (denort ${version} for ` +
    `${Deno.build.target}) from Deno's release host, which this machine cannot reach.\n` +
    `Fix: on a machine that can, download denort-${Deno.build.target}.zip of Deno ${version} ` +
    `from Deno's releases, unzip it, copy the denort binary here and run\n` +
    `  DENORT_BIN=$PWD/denort deno task compile\n` +
    `Without a binary, \`deno task bundle\` writes dist/bundle/flanneld.js, which ` +
    `\`deno run -A dist/bundle/flanneld.js\` runs with Deno ${version}.`;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { output: { type: "string" } } });
  const output = values.output ?? `${ROOT}dist/flanneld`;
  const res = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(output),
    cwd: ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(res.stderr);
  if (!res.success) {
    const why = explainRuntimeFailure(stderr, Deno.env.get("DENORT_BIN"));
    console.error(why ? `deno task compile: ${why}` : stderr.trimEnd());
    Deno.exit(1);
  }
  await Deno.stderr.write(res.stderr);
  console.error(`Compiled ${output}`);
}
