/**
 * Every pointer in the code resolves for a reader of this repository alone: comments cite
 * flannel's own source files (`flannel pkg/subnet/etcd/local_manager.go`), never sections of a
 * specification kept outside the repository.
 */
import assert from "node:assert/strict";

async function* sources(dir: URL, rel = ""): AsyncGenerator<[string, string]> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "dist") continue;
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* sources(new URL(`${e.name}/`, dir), path);
    else if (/\.(ts|sh|yml|md)$/.test(e.name)) {
      yield [path, await Deno.readTextFile(new URL(e.name, dir))];
    }
  }
}

Deno.test("no file cites sections of a document outside this repository", async () => {
  const offenders: string[] = [];
  const pattern = new RegExp(["REFERENCE", "(\\.md)?\\s*§"].join(""));
  for await (const [path, text] of sources(new URL("../", import.meta.url))) {
    text.split("\n").forEach((line, i) => {
      const bare = /§\d/.test(line) && !/RFC \d+ §/.test(line);
      if (pattern.test(line) || bare) offenders.push(`${path}:${i + 1}`);
    });
  }
  assert.deepEqual(offenders, []);
});
