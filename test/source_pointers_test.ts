/**
 * Every pointer in the code resolves for a reader of this repository alone: comments cite
 * flannel's own source files (`flannel pkg/subnet/etcd/local_manager.go`), never sections of a
 * specification kept outside the repository.
 */
import assert from "node:assert/strict";
import { sourceFiles } from "./source_files.ts";

Deno.test("no file cites sections of a document outside this repository", async () => {
  const offenders: string[] = [];
  const pattern = new RegExp(["REFERENCE", "(\\.md)?\\s*§"].join(""));
  for await (const [path, text] of sourceFiles(/\.(ts|sh|yml|md)$/)) {
    text.split("\n").forEach((line, i) => {
      const bare = /§\d/.test(line) && !/RFC \d+ §/.test(line);
      if (pattern.test(line) || bare) offenders.push(`${path}:${i + 1}`);
    });
  }
  assert.deepEqual(offenders, []);
});
