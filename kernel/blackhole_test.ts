import assert from "node:assert/strict";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import { silentLogger } from "../util/log.ts";
import { ensureBlackholeRoutes, runBlackholeRoutes } from "./blackhole.ts";

Deno.test("ensureBlackholeRoutes() adds a missing blackhole route per family, once", async () => {
  const nl = new FakeNetlink();
  const subnets = ["10.244.1.0/24", "fd00:1::/64"];
  assert.deepEqual(await ensureBlackholeRoutes(nl, subnets), { added: subnets, blocked: [] });
  const routes = await nl.routes();
  assert.deepEqual(routes.map((r) => [r.dst, r.type]).sort(), [
    ["10.244.1.0/24", "blackhole"],
    ["fd00:1::/64", "blackhole"],
  ]);
  nl.calls.length = 0;
  assert.deepEqual(await ensureBlackholeRoutes(nl, subnets), { added: [], blocked: [] });
  assert.ok(nl.calls.every((c) => c.method === "routes"), "a second pass only reads");
});

Deno.test("ensureBlackholeRoutes() reports a subnet blocked by another route with the same key", async () => {
  const nl = new FakeNetlink();
  const br = nl.seedLink("cni0", { addresses: ["10.244.1.1/24"] });
  await nl.external.routeAdd({ dst: "10.244.1.0/24", index: br.index });
  assert.deepEqual(await ensureBlackholeRoutes(nl, ["10.244.1.0/24"]), {
    added: [],
    blocked: ["10.244.1.0/24"],
  });
});

Deno.test("ensureBlackholeRoutes() names the subnet when the kernel refuses", async () => {
  const nl = new FakeNetlink();
  nl.failNext("routeAdd", 1);
  await assert.rejects(
    ensureBlackholeRoutes(nl, ["10.244.1.0/24"]),
    /Cannot add blackhole route "10.244.1.0\/24"/,
  );
});

Deno.test("runBlackholeRoutes() restores a deleted route on the next pass", async () => {
  const nl = new FakeNetlink();
  const ac = new AbortController();
  let ticks = 0;
  let restored = 0;
  await runBlackholeRoutes({
    netlink: nl,
    subnets: ["10.244.1.0/24"],
    periodSeconds: 0.01,
    log: silentLogger,
    signal: ac.signal,
    onRestored: () => restored++,
    onTick: () => {
      ticks++;
      if (ticks === 1) {
        // Someone removes it between passes.
        void nl.external.routeDelete({ dst: "10.244.1.0/24", type: "blackhole" });
      }
      if (ticks === 2) ac.abort();
    },
  });
  assert.equal(ticks, 2);
  assert.equal(restored, 1, "the first add is not a restore; the second is");
  assert.equal((await nl.routes({ dst: "10.244.1.0/24" }))[0]?.type, "blackhole");
});

Deno.test("runBlackholeRoutes() keeps going after an error", async () => {
  const nl = new FakeNetlink();
  nl.failNext("routes", 1);
  const ac = new AbortController();
  const errors: string[] = [];
  let ticks = 0;
  await runBlackholeRoutes({
    netlink: nl,
    subnets: ["10.244.1.0/24"],
    periodSeconds: 0.01,
    log: { ...silentLogger, error: (m) => errors.push(m) },
    signal: ac.signal,
    onTick: () => {
      if (++ticks === 2) ac.abort();
    },
  });
  assert.equal(errors.length, 1);
  assert.match(errors[0], /Failed to ensure blackhole routes/);
  assert.equal((await nl.routes({ dst: "10.244.1.0/24" }))[0]?.type, "blackhole");
});
