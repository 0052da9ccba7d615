/**
 * `deno task compile` (scripts/compile.ts): the flags it passes, and a failed runtime download
 * reported with the DENORT_BIN fix. On a machine that reaches Deno's release host the real run
 * builds the binary instead, and the test checks it prints the version.
 */
import assert from "node:assert/strict";
import { VERSION } from "../version.ts";
import {
  COMPILE_INCLUDES,
  compileArgs,
  explainRuntimeFailure,
  SHIPPED_V8_FLAGS,
} from "./compile.ts";

const SCRIPT = new URL("./compile.ts", import.meta.url).pathname;

// What deno 2.9.6 prints when dl.deno.land cannot be resolved (seen on our build machines).
const NO_DOWNLOAD = `Compile main.ts to dist/flanneld
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'dist/flanneld.tmp-fdd026f04d3f6373'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
`;

Deno.test("compileArgs() embeds every runtime-loaded module and the small young generation", () => {
  const args = compileArgs("out/flanneld");
  for (const f of COMPILE_INCLUDES) assert.ok(args.join(" ").includes(`--include ${f}`), f);
  assert.ok(args.includes("--v8-flags=--max-semi-space-size=1,--expose-gc"));
  assert.deepEqual(args.slice(-3), ["--output", "out/flanneld", "main.ts"]);
});

Deno.test("`deno task start` runs main.ts with the V8 flags the binary bakes in", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  const command: string = config.tasks.start.command;
  assert.equal(command, `deno run -A --v8-flags=${SHIPPED_V8_FLAGS} main.ts`);
});

Deno.test("explainRuntimeFailure() names the download problem and the DENORT_BIN fix", () => {
  const text = explainRuntimeFailure(NO_DOWNLOAD, undefined)!;
  assert.match(text, /could not download Deno's runtime \(denort \d+\.\d+\.\d+/);
  assert.match(text, /DENORT_BIN=\$PWD\/denort deno task compile/);
  assert.match(text, /deno task bundle/);
  const bad = explainRuntimeFailure(
    "error: ...\n    1: No such file or directory (os error 2)",
    "/x",
  )!;
  assert.match(bad, /could not use DENORT_BIN=\/x as its runtime: it must be the denort binary/);
  assert.equal(
    explainRuntimeFailure("error: TS2304 [ERROR]: Cannot find name 'x'.", undefined),
    undefined,
  );
});

Deno.test({
  name: "deno task compile builds the binary, or says in one paragraph why it cannot",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "flanneld-compile-" });
    try {
      const env = { ...Deno.env.toObject() };
      delete env.DENORT_BIN;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", SCRIPT, "--output", `${dir}/flanneld`],
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      if (out.success) {
        const v = await new Deno.Command(`${dir}/flanneld`, { args: ["--version"] }).output();
        assert.equal(new TextDecoder().decode(v.stderr).trim(), VERSION);
      } else {
        assert.match(stderr, /^deno task compile: deno compile could not download Deno's runtime/);
        assert.match(stderr, /DENORT_BIN=/);
        assert.ok(stderr.trim().split("\n").length <= 5, stderr);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
