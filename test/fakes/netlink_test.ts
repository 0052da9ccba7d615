import assert from "node:assert/strict";
import { type KernelEvent, PermissionDeniedError } from "../../kernel/netlink/mod.ts";
import { netlinkContract } from "../netlink_contract.ts";
import { FakeNetlink } from "./netlink.ts";

netlinkContract("FakeNetlink", async (fn) => {
  const nl = new FakeNetlink();
  const base = nl.seedLink("nl0", { addresses: ["10.88.0.1/24", "fd88::1/64"] });
  await fn({
    nl,
    base,
    appendFdb: (_device, fdb) => Promise.resolve(nl.appendFdb(fdb)),
    deleteRoute: (dst) => nl.external.routeDelete({ dst }),
  });
});

/** Collects events until `n` arrived, then aborts. */
async function take(
  it: AsyncIterable<KernelEvent>,
  n: number,
  ac: AbortController,
) {
  const out: KernelEvent[] = [];
  for await (const ev of it) {
    out.push(ev);
    if (out.length === n) ac.abort();
  }
  return out;
}

Deno.test("FakeNetlink with lenientNexthops accepts any gateway and down links", async () => {
  const nl = new FakeNetlink({ lenientNexthops: true });
  const eth0 = nl.seedLink("eth0", { up: false });
  await nl.routeReplace({ dst: "10.5.4.0/24", gateway: "10.9.9.9", index: eth0.index });
  assert.equal((await nl.routes({ dst: "10.5.4.0/24" }))[0]?.gateway, "10.9.9.9");
});

Deno.test("FakeNetlink notifies subscribers, including changes by someone else", async () => {
  const nl = new FakeNetlink();
  const eth0 = nl.seedLink("eth0", { addresses: ["192.168.1.10/24"] });
  const ac = new AbortController();
  const events = nl.subscribe(["ipv4-route", "link"], { signal: ac.signal });
  const got = take(events, 4, ac);
  await nl.routeReplace({ dst: "10.5.3.0/24", gateway: "192.168.1.12", index: eth0.index });
  await nl.neighReplace({ index: eth0.index, ip: "10.5.3.0", mac: "0a:00:00:00:00:01" }); // not subscribed
  const callsBefore = nl.calls.length;
  await nl.external.routeDelete({ dst: "10.5.3.0/24" });
  assert.equal(nl.calls.length, callsBefore, "external changes are not recorded");
  await nl.linkAdd({
    kind: "vxlan",
    name: "flannel.1",
    vni: 1,
    dev: eth0.index,
    local: "192.168.1.10",
  });
  nl.emitResync();
  const seen = await got;
  assert.deepEqual(
    seen.map((e) => e.kind === "route" || e.kind === "link" ? `${e.kind} ${e.op}` : e.kind),
    [
      "route new",
      "route del",
      "link new",
      "resync",
    ],
  );
  const link = seen[2].kind === "link" ? seen[2].link : undefined;
  assert.deepEqual(link?.vxlan, {
    vni: 1,
    local: "192.168.1.10",
    dev: eth0.index,
    port: 8472,
    learning: false,
    gbp: false,
  });
  assert.equal(link?.mtu, 1450);
  assert.equal(nl.subscriberCount, 0, "abort ends the subscription");
});

Deno.test("FakeNetlink emulates ENOBUFS with eventQueueLimit", async () => {
  const nl = new FakeNetlink({ eventQueueLimit: 3 });
  const eth0 = nl.seedLink("eth0", { addresses: ["192.168.1.10/24"] });
  const ac = new AbortController();
  const events = nl.subscribe(["ipv4-route"], { signal: ac.signal });
  for (let i = 0; i < 10; i++) await nl.routeReplace({ dst: `10.5.${i}.0/24`, index: eth0.index });
  const seen = await take(events, 1, ac);
  assert.deepEqual(seen, [{ kind: "resync" }]);
});

Deno.test("FakeNetlink.failNext() injects typed failures for a number of calls", async () => {
  const nl = new FakeNetlink();
  const eth0 = nl.seedLink("eth0");
  nl.failNext("routeReplace", 1, 2);
  const r = { dst: "10.5.3.0/24", index: eth0.index };
  await assert.rejects(nl.routeReplace(r), PermissionDeniedError);
  await assert.rejects(nl.routeReplace(r), PermissionDeniedError);
  await nl.routeReplace(r);
  nl.failNext("routes", new Error("boom"));
  await assert.rejects(nl.routes(), /boom/);
  assert.deepEqual(nl.calls.map((c) => c.method), [
    "routeReplace",
    "routeReplace",
    "routeReplace",
    "routes",
  ]);
  nl.close();
  await assert.rejects(nl.routes(), /closed/);
});
