import assert from "node:assert/strict";

Deno.test("the kube manager's module graph uses @kubernetes/client-node for types only", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("./mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout));
  const users: string[] = [];
  for (const m of graph.modules ?? []) {
    for (const d of m.dependencies ?? []) {
      if (!String(d.code?.specifier ?? d.type?.specifier).includes("@kubernetes/client-node")) {
        continue;
      }
      users.push(m.specifier);
      assert.equal(d.code, undefined, `${m.specifier} imports @kubernetes/client-node at run time`);
    }
  }
  assert.ok(users.some((u) => u.endsWith("/subnet/kube/types.ts")), "types.ts uses its types");
});
