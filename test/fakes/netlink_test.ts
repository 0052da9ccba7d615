import assert from "node:assert/strict";
import {
  ExistsError,
  type KernelEvent,
  NetlinkError,
  NotFoundError,
  PermissionDeniedError,
} from "../../kernel/netlink/mod.ts";
import { FakeNetlink } from "./netlink.ts";

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

Deno.test("FakeNetlink routes follow kernel keys, replace semantics and errors", async (t) => {
  const nl = new FakeNetlink();
  const eth0 = nl.seedLink("eth0", { addresses: ["192.168.1.10/24"] });
  const r = { dst: "10.5.3.0/24", gateway: "192.168.1.12", index: eth0.index, protocol: 101 };

  await t.step("replace fills in what the kernel reports and keeps one route per key", async () => {
    await nl.routeReplace(r);
    await nl.routeReplace({ ...r, gateway: "192.168.1.13" });
    assert.deepEqual(await nl.routes({ protocol: 101 }), [{
      dst: "10.5.3.0/24",
      gateway: "192.168.1.13",
      index: eth0.index,
      table: 254,
      protocol: 101,
      scope: 0,
      type: "unicast",
      metric: 0,
    }]);
  });
  await t.step("add of an existing key is ExistsError; another metric is another key", async () => {
    await assert.rejects(nl.routeAdd(r), ExistsError);
    await nl.routeAdd({ ...r, metric: 10 });
    assert.equal((await nl.routes({ dst: "10.5.3.0/24" })).length, 2);
    await nl.routeDelete({ dst: "10.5.3.0/24", metric: 10 });
  });
  await t.step("delete matches given fields only; a missing route is NotFoundError", async () => {
    await assert.rejects(nl.routeDelete({ ...r, gateway: "192.168.1.99" }), NotFoundError);
    await nl.routeDelete({ dst: "10.5.3.0/24" });
    await assert.rejects(
      nl.routeDelete(r),
      (err) => err instanceof NotFoundError && err.code === "ESRCH",
    );
    await assert.rejects(
      nl.routeDelete({ dst: "fd00::/64" }),
      (err) => err instanceof NotFoundError && err.code === "ENOENT",
    );
  });
  await t.step("nexthops are checked like the kernel's", async () => {
    await assert.rejects(
      nl.routeReplace({ dst: "10.5.4.0/24", gateway: "10.5.4.0", index: eth0.index }),
      (err) =>
        err instanceof NetlinkError && err.code === "EINVAL" && /invalid gateway/.test(err.message),
    );
    await nl.routeReplace({
      dst: "10.5.4.0/24",
      gateway: "10.5.4.0",
      index: eth0.index,
      onlink: true,
    });
    await assert.rejects(nl.routeReplace({ dst: "10.5.5.0/24", index: 99 }), NotFoundError);
    await assert.rejects(
      nl.routeReplace({ dst: "10.5.5.1/24", index: eth0.index }),
      /Invalid prefix/,
    );
    await nl.routeReplace({ dst: "10.5.6.0/24", gateway: "192.168.1.12" });
    assert.equal(
      (await nl.routes({ dst: "10.5.6.0/24" }))[0].index,
      eth0.index,
      "dev found from gateway",
    );
    const lenient = new FakeNetlink({ lenientNexthops: true });
    await lenient.routeReplace({ dst: "10.5.4.0/24", gateway: "10.9.9.9" });
  });
  await t.step("filters and routeGet", async () => {
    await nl.routeReplace({ dst: "10.7.0.0/16", index: eth0.index, table: 100 });
    await nl.routeReplace({ dst: "10.8.0.0/16", type: "blackhole" });
    assert.deepEqual((await nl.routes({ table: 100 })).map((x) => x.scope), [253]);
    assert.equal((await nl.routes({ table: 0, index: eth0.index })).length, 3);
    assert.equal((await nl.routeGet("10.5.4.9"))?.gateway, "10.5.4.0");
    assert.equal(await nl.routeGet("172.16.0.1"), undefined);
    await assert.rejects(nl.routeGet("10.8.1.1"), NetlinkError);
  });
  await t.step("setting the link down flushes its routes", async () => {
    await nl.linkSet(eth0.index, { up: false });
    assert.deepEqual(await nl.routes({ index: eth0.index, table: 0 }), []);
  });
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

Deno.test("FakeNetlink keeps links, addresses, neighbours and FDB entries like the kernel", async () => {
  const nl = new FakeNetlink();
  await nl.linkAdd({ kind: "vxlan", name: "flannel.1", vni: 1, mac: "0A:00:00:00:00:01" });
  await assert.rejects(nl.linkAdd({ kind: "dummy", name: "flannel.1" }), ExistsError);
  const vx = (await nl.linkByName("flannel.1"))!;
  assert.deepEqual([vx.up, vx.mac, vx.kind], [false, "0a:00:00:00:00:01", "vxlan"]);
  await nl.linkSet(vx.index, { up: true, mtu: 1400 });
  assert.deepEqual([(await nl.linkByIndex(vx.index))?.up, (await nl.linkByIndex(vx.index))?.mtu], [
    true,
    1400,
  ]);

  await nl.addressAdd({ index: vx.index, address: "10.5.3.0/32" });
  await assert.rejects(nl.addressAdd({ index: vx.index, address: "10.5.3.0/32" }), ExistsError);
  assert.deepEqual(await nl.addresses(vx.index, 4), [{
    index: vx.index,
    address: "10.5.3.0/32",
    scope: 0,
  }]);
  assert.deepEqual(await nl.addresses(vx.index, 6), []);
  await nl.addressDelete({ index: vx.index, address: "10.5.3.0/32" });
  await assert.rejects(
    nl.addressDelete({ index: vx.index, address: "10.5.3.0/32" }),
    NotFoundError,
  );

  await nl.neighReplace({ index: vx.index, ip: "10.5.4.0", mac: "0a:00:00:00:00:02" });
  await nl.neighReplace({ index: vx.index, ip: "10.5.4.0", mac: "0a:00:00:00:00:03" });
  assert.deepEqual(await nl.neighs(vx.index), [{
    index: vx.index,
    ip: "10.5.4.0",
    mac: "0a:00:00:00:00:03",
    state: 0x80,
  }]);
  await nl.neighDelete({ index: vx.index, ip: "10.5.4.0" });
  await assert.rejects(nl.neighDelete({ index: vx.index, ip: "10.5.4.0" }), NotFoundError);

  const f = { index: vx.index, mac: "0a:00:00:00:00:03", dst: "192.168.1.12" };
  await nl.fdbReplace(f);
  await nl.fdbReplace({ ...f, dst: "192.168.1.13" });
  assert.deepEqual(await nl.fdbs(), [{ ...f, dst: "192.168.1.13", state: 0x80 }]);
  await nl.fdbDelete(f); // stale dst: quietly ignored, as by the kernel
  assert.equal((await nl.fdbs(vx.index)).length, 1);
  await nl.fdbDelete({ index: vx.index, mac: f.mac });
  await assert.rejects(nl.fdbDelete(f), NotFoundError);

  await nl.neighReplace({ index: vx.index, ip: "10.5.4.0", mac: "0a:00:00:00:00:02" });
  await nl.linkDelete(vx.index);
  assert.equal(await nl.linkByName("flannel.1"), undefined);
  assert.deepEqual(await nl.neighs(), []);
  await assert.rejects(nl.linkDelete(vx.index), NotFoundError);
});
