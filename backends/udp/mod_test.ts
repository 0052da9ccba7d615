import assert from "node:assert/strict";
import { DEFAULT_PORT, parsePort } from "./mod.ts";

Deno.test("parsePort() reads Backend.Port case-insensitively with flannel's default", async (t) => {
  const ok: [string, Record<string, unknown>, number][] = [
    ["absent", {}, DEFAULT_PORT],
    ["Port", { Type: "udp", Port: 9000 }, 9000],
    ["port (lower case)", { port: 8000 }, 8000],
    ["zero means default", { Port: 0 }, DEFAULT_PORT],
  ];
  for (const [name, backend, want] of ok) {
    await t.step(name, () => assert.equal(parsePort(backend), want));
  }
  for (const bad of ["8285", 70000, 1.5, -1]) {
    await t.step(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parsePort({ Port: bad }), /Invalid udp backend "Port"/);
    });
  }
});
