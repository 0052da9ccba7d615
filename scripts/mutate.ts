/**
 * `deno task mutate [--only TEXT]`: applies each one-line mutation of `test/mutations.ts` in
 * turn, runs its fast test files (`deno test --no-check`, so a test must catch the change at
 * run time, not the type checker), puts the file back, and prints which mutations were killed
 * and which survived. Exits 1 when any survived (a behaviour no test checks), did not load
 * (a bad replacement proves nothing) or the list is stale (a `find` that does not occur exactly
 * once).
 *
 * Refuses to start when a file it would mutate has uncommitted changes, and restores the file
 * after every run, also on Ctrl-C or a crash.
 */
import { type Mutation, mutations } from "../test/mutations.ts";

const root = new URL("..", import.meta.url).pathname;

/** Problems that make the list unusable: missing files, `find` not occurring exactly once. */
export async function staleEntries(list: readonly Mutation[]): Promise<string[]> {
  const problems: string[] = [];
  for (const m of list) {
    let text: string;
    try {
      text = await Deno.readTextFile(root + m.file);
    } catch {
      problems.push(`${m.file}: cannot read it (mutation "${m.behaviour}")`);
      continue;
    }
    const count = text.split(m.find).length - 1;
    if (count !== 1) {
      problems.push(`${m.file}: "${m.find}" occurs ${count} times, not once ("${m.behaviour}")`);
    }
    if (m.find === m.replace) problems.push(`${m.file}: "${m.behaviour}" changes nothing`);
    for (const t of m.tests) {
      if (!(await Deno.stat(root + t).then((s) => s.isFile, () => false))) {
        problems.push(`${t}: no such test file ("${m.behaviour}")`);
      }
    }
  }
  return problems;
}

async function dirtyFiles(files: readonly string[]): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["status", "--porcelain", "--", ...files],
    cwd: root,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim() !== "");
}

/** "passed", "failed" (a test caught it) or "broken" (the mutated code does not even load). */
async function runTests(tests: readonly string[]): Promise<"passed" | "failed" | "broken"> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", "--parallel", "--fail-fast", ...tests],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) return "passed";
  const text = new TextDecoder().decode(out.stdout);
  return /\.\.\. FAILED/.test(text) ? "failed" : "broken";
}

async function main(args: string[]): Promise<number> {
  const only = args[0] === "--only" ? args[1] : undefined;
  const chosen = mutations.filter((m) => only === undefined || m.behaviour.includes(only));
  const stale = await staleEntries(chosen);
  if (stale.length > 0) {
    console.error(`test/mutations.ts is out of date:\n  ${stale.join("\n  ")}`);
    return 1;
  }
  const files = [...new Set(chosen.map((m) => m.file))];
  const dirty = await dirtyFiles(files);
  if (dirty.length > 0) {
    console.error(`Refusing to mutate files with uncommitted changes:\n  ${dirty.join("\n  ")}`);
    return 1;
  }
  // Put back whatever is mutated when interrupted; the finally below covers errors.
  let restore: (() => void) | undefined;
  const onSignal = () => {
    restore?.();
    console.error("interrupted; the mutated file was restored");
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const survived: Mutation[] = [];
  const broken: Mutation[] = [];
  const started = performance.now();
  try {
    for (const [i, m] of chosen.entries()) {
      const path = root + m.file;
      const original = await Deno.readTextFile(path);
      restore = () => Deno.writeTextFileSync(path, original);
      const t0 = performance.now();
      let result;
      try {
        await Deno.writeTextFile(path, original.replace(m.find, () => m.replace));
        result = await runTests(m.tests);
      } finally {
        restore();
        restore = undefined;
      }
      if (result === "passed") survived.push(m);
      if (result === "broken") broken.push(m);
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      const label = { passed: "SURVIVED", failed: "killed  ", broken: "BROKEN  " }[result];
      console.log(
        `${String(i + 1).padStart(2)}/${chosen.length} ${label} ` +
          `${seconds.padStart(5)} s  ${m.behaviour} (${m.file})`,
      );
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const total = ((performance.now() - started) / 1000).toFixed(0);
  const killed = chosen.length - survived.length - broken.length;
  console.log(
    `\n${killed} of ${chosen.length} mutations killed, ${survived.length} survived, ` +
      `${broken.length} did not load (${total} s)`,
  );
  for (const m of survived) {
    console.log(`  survived: ${m.behaviour}: ${m.file}: ${JSON.stringify(m.find)}`);
  }
  for (const m of broken) {
    console.log(`  does not load (fix the replacement): ${m.behaviour}: ${m.file}`);
  }
  return survived.length === 0 && broken.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
