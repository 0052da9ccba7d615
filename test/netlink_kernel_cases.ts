/**
 * Kernel cases for `kernel/netlink/rtnetlink_test.ts`, which runs this file with `deno test` inside a fresh
 * network namespace (`unshare --net`) and `NETLINK_TEST_IN_NETNS=1`. Without that variable every
 * case is ignored, so running this file by hand cannot touch the host's network.
 */
import assert from "node:assert/strict";
import {
  ExistsError,
  type KernelEvent,
  type Link,
  type Netlink,
  NetlinkError,
  NotFoundError,
  openNetlink,
} from "../kernel/netlink/mod.ts";

const IN_NETNS = Deno.env.get("NETLINK_TEST_IN_NETNS") === "1";
const PROTO = 77;

async function sh(...argv: string[]): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

function ms(start: number): string {
  return `${(performance.now() - start).toFixed(0)} ms`;
}

/** Runs `fn` with a fresh netlink handle; a shared base link "nl0" (up, 10.88.0.1/24) exists. */
async function withNetlink(fn: (nl: Netlink, base: Link) => Promise<void>): Promise<void> {
  const nl = openNetlink();
  try {
    let base = await nl.linkByName("nl0");
    if (!base) {
      // Prefer a dummy device; kernels built without CONFIG_DUMMY get a port-less bridge.
      try {
        await nl.linkAdd({ kind: "dummy", name: "nl0" });
      } catch (err) {
        if (!(err instanceof NetlinkError) || err.code !== "EOPNOTSUPP") throw err;
        await nl.linkAdd({ kind: "bridge", name: "nl0" });
      }
      base = await nl.linkByName("nl0");
      assert.ok(base);
      await nl.linkSet(base.index, { up: true });
      await nl.addressAdd({ index: base.index, address: "10.88.0.1/24" });
      await nl.addressAdd({ index: base.index, address: "fd88::1/64" });
    }
    await fn(nl, base);
  } finally {
    nl.close();
  }
}

const test = (name: string, fn: (nl: Netlink, base: Link) => Promise<void>) =>
  Deno.test({ name, ignore: !IN_NETNS, fn: () => withNetlink(fn) });

Deno.test({ name: "the namespace is private and fresh", ignore: !IN_NETNS }, async () => {
  const nl = openNetlink();
  try {
    const names = (await nl.links()).map((l) => l.name);
    assert.deepEqual(names, ["lo"], "refusing to run outside a fresh network namespace");
  } finally {
    nl.close();
  }
});

test("linkAdd()/linkSet()/linkByName()/linkDelete() manage a link", async (nl, base) => {
  await nl.linkAdd({ kind: "bridge", name: "nlt1", mtu: 1400, mac: "02:00:00:00:00:11" });
  const added = await nl.linkByName("nlt1");
  assert.ok(added);
  assert.equal(added.kind, "bridge");
  assert.equal(added.mtu, 1400);
  assert.equal(added.mac, "02:00:00:00:00:11");
  assert.equal(added.up, false);
  await nl.linkSet(added.index, { up: true, mtu: 1300, mac: "02:00:00:00:00:12" });
  const set = await nl.linkByIndex(added.index);
  assert.ok(set);
  assert.deepEqual([set.up, set.mtu, set.mac, set.name], [true, 1300, "02:00:00:00:00:12", "nlt1"]);
  const shown = await sh("ip", "-o", "link", "show", "dev", "nlt1");
  assert.match(shown, /mtu 1300 .*state /);
  assert.match(shown, /link\/ether 02:00:00:00:00:12/);
  assert.ok((await nl.links()).some((l) => l.index === base.index && l.name === "nl0"));
  await assert.rejects(nl.linkAdd({ kind: "bridge", name: "nlt1" }), ExistsError);
  await nl.linkDelete(added.index);
  assert.equal(await nl.linkByName("nlt1"), undefined);
  assert.equal(await nl.linkByIndex(added.index), undefined);
  await assert.rejects(nl.linkDelete(added.index), NotFoundError);
});

test("addressAdd()/addresses()/addressDelete() manage addresses", async (nl, base) => {
  const a4 = { index: base.index, address: "10.88.1.7/32" };
  const a6 = { index: base.index, address: "fd88::7/128" };
  await nl.addressAdd(a4);
  await nl.addressAdd(a6);
  const v4 = (await nl.addresses(base.index, 4)).map((a) => a.address);
  assert.ok(v4.includes("10.88.1.7/32") && v4.includes("10.88.0.1/24"), v4.join());
  assert.ok(v4.every((a) => !a.includes(":")));
  const v6 = (await nl.addresses(base.index, 6)).map((a) => a.address);
  assert.ok(v6.includes("fd88::7/128"), v6.join());
  assert.match(await sh("ip", "-o", "addr", "show", "dev", "nl0"), /inet 10\.88\.1\.7\/32/);
  await assert.rejects(nl.addressAdd(a4), ExistsError);
  await nl.addressDelete(a4);
  await nl.addressDelete(a6);
  assert.ok(!(await nl.addresses()).some((a) => a.address === "10.88.1.7/32"));
  assert.doesNotMatch(await sh("ip", "-o", "addr", "show", "dev", "nl0"), /10\.88\.1\.7/);
  await assert.rejects(nl.addressDelete(a4), NotFoundError);
});

test("routeReplace()/routeAdd()/routes()/routeDelete() manage routes", async (nl, base) => {
  const dev = base.index;
  const r1 = { dst: "10.90.0.0/16", gateway: "10.88.0.2", index: dev, protocol: PROTO };
  await nl.routeReplace(r1);
  let ours = await nl.routes({ protocol: PROTO });
  assert.deepEqual(ours, [{
    dst: "10.90.0.0/16",
    gateway: "10.88.0.2",
    index: dev,
    table: 254,
    protocol: PROTO,
    scope: 0,
    type: "unicast",
    metric: 0,
  }]);
  // Replace keeps one route per key and changes its gateway.
  await nl.routeReplace({ ...r1, gateway: "10.88.0.3" });
  ours = await nl.routes({ protocol: PROTO });
  assert.equal(ours.length, 1);
  assert.equal(ours[0].gateway, "10.88.0.3");
  assert.match(
    await sh("ip", "route", "show", "proto", String(PROTO)),
    /10\.90\.0\.0\/16 via 10\.88\.0\.3 dev nl0/,
  );
  await assert.rejects(nl.routeAdd(r1), ExistsError);

  // onlink through a gateway outside every local subnet, as the vxlan backend does.
  const onlink = {
    dst: "10.91.0.0/24",
    gateway: "10.200.0.1",
    index: dev,
    onlink: true,
    protocol: PROTO,
  };
  await assert.rejects(nl.routeAdd({ ...onlink, onlink: false }), NetlinkError);
  await nl.routeAdd(onlink);
  // A separate table and a device route (scope link by default).
  await nl.routeReplace({ dst: "10.94.0.0/24", index: dev, table: 100, protocol: PROTO });
  // IPv6.
  await nl.routeReplace({ dst: "fd90::/64", gateway: "fd88::2", index: dev, protocol: PROTO });

  const main = await nl.routes({ protocol: PROTO });
  assert.deepEqual(main.map((r) => r.dst).sort(), ["10.90.0.0/16", "10.91.0.0/24", "fd90::/64"]);
  assert.equal(main.find((r) => r.dst === "10.91.0.0/24")?.onlink, true);
  assert.equal(main.find((r) => r.dst === "fd90::/64")?.metric, 1024);
  assert.match(
    await sh("ip", "route", "show", "10.91.0.0/24"),
    /via 10\.200\.0\.1 dev nl0 proto 77 onlink/,
  );
  const t100 = await nl.routes({ table: 100 });
  assert.equal(t100.length, 1);
  assert.deepEqual([t100[0].dst, t100[0].scope, t100[0].table], ["10.94.0.0/24", 253, 100]);
  assert.match(
    await sh("ip", "route", "show", "table", "100"),
    /10\.94\.0\.0\/24 dev nl0 proto 77 scope link/,
  );
  assert.deepEqual((await nl.routes({ protocol: PROTO, family: 6 })).map((r) => r.dst), [
    "fd90::/64",
  ]);
  assert.deepEqual(
    (await nl.routes({ protocol: PROTO, dst: "10.91.0.0/24" })).map((r) => r.gateway),
    ["10.200.0.1"],
  );
  assert.ok((await nl.routes({ index: dev, table: 0 })).some((r) => r.table === 100));
  assert.deepEqual(await nl.routes({ index: 999999 }), []);

  const got = await nl.routeGet("10.90.1.2");
  assert.deepEqual([got?.gateway, got?.index], ["10.88.0.3", dev]);
  assert.equal(await nl.routeGet("192.0.2.1"), undefined);

  for (const r of main) await nl.routeDelete(r);
  await nl.routeDelete({ dst: "10.94.0.0/24", table: 100 });
  assert.deepEqual(await nl.routes({ protocol: PROTO, table: 0 }), []);
  await assert.rejects(nl.routeDelete(r1), NotFoundError);
});

test("routeReplace() installs a blackhole route", async (nl) => {
  await nl.routeReplace({ dst: "10.92.0.0/24", type: "blackhole", protocol: PROTO });
  const [bh] = await nl.routes({ dst: "10.92.0.0/24" });
  assert.deepEqual([bh?.type, bh?.index, bh?.protocol], ["blackhole", undefined, PROTO]);
  assert.match(
    await sh("ip", "route", "show", "type", "blackhole"),
    /blackhole 10\.92\.0\.0\/24 proto 77/,
  );
  await nl.routeDelete({ dst: "10.92.0.0/24", type: "blackhole" });
  assert.deepEqual(await nl.routes({ dst: "10.92.0.0/24" }), []);
});

test("linkAdd() creates a vxlan device whose attributes read back", async (nl, base) => {
  await nl.linkAdd({
    kind: "vxlan",
    name: "vxt0",
    vni: 7,
    local: "10.88.0.1",
    dev: base.index,
    port: 8472,
    learning: false,
    gbp: true,
    mac: "0a:00:00:00:07:01",
  });
  const vx = await nl.linkByName("vxt0");
  assert.ok(vx);
  assert.equal(vx.kind, "vxlan");
  assert.equal(vx.mac, "0a:00:00:00:07:01");
  assert.deepEqual(vx.vxlan, {
    vni: 7,
    local: "10.88.0.1",
    dev: base.index,
    port: 8472,
    learning: false,
    gbp: true,
  });
  const shown = await sh("ip", "-d", "link", "show", "vxt0");
  assert.match(shown, /vxlan id 7 local 10\.88\.0\.1 dev nl0 .*dstport 8472 nolearning/s);
  assert.match(shown, / gbp /);
  await nl.linkAdd({
    kind: "vxlan",
    name: "vxt6",
    vni: 8,
    local: "fd88::1",
    port: 4789,
    learning: true,
  });
  const v6 = await nl.linkByName("vxt6");
  assert.deepEqual(v6?.vxlan, { vni: 8, local: "fd88::1", port: 4789, learning: true, gbp: false });
  assert.match(
    await sh("ip", "-d", "link", "show", "vxt6"),
    /vxlan id 8 local fd88::1 .*dstport 4789/s,
  );
  await nl.linkDelete(v6!.index);
});

test("neighReplace()/neighs()/neighDelete() manage permanent neighbours", async (nl) => {
  const vx = await nl.linkByName("vxt0");
  assert.ok(vx, "the vxlan case runs first");
  await nl.linkSet(vx.index, { up: true });
  const n = { index: vx.index, ip: "10.93.0.5", mac: "0a:00:00:00:09:05" };
  await nl.neighReplace(n);
  await nl.neighReplace({ ...n, mac: "0a:00:00:00:09:06" });
  // Only permanent entries: IPv6 may add NOARP multicast entries (ff02::…) to the device.
  const permanent = async () => (await nl.neighs(vx.index)).filter((x) => x.state === 0x80);
  assert.deepEqual(await permanent(), [{ ...n, mac: "0a:00:00:00:09:06", state: 0x80 }]);
  assert.match(
    await sh("ip", "neigh", "show", "dev", "vxt0"),
    /10\.93\.0\.5 lladdr 0a:00:00:00:09:06 PERMANENT/,
  );
  await nl.neighReplace({ index: vx.index, ip: "fd93::5", mac: "0a:00:00:00:09:07" });
  assert.ok((await nl.neighs()).some((x) => x.ip === "fd93::5"));
  await nl.neighDelete(n);
  await nl.neighDelete({ index: vx.index, ip: "fd93::5" });
  assert.deepEqual(await permanent(), []);
  await assert.rejects(nl.neighDelete(n), NotFoundError);
});

test("fdbReplace()/fdbs()/fdbDelete() manage vxlan FDB entries", async (nl) => {
  const vx = await nl.linkByName("vxt0");
  assert.ok(vx, "the vxlan case runs first");
  const f = { index: vx.index, mac: "0a:00:00:00:0a:01", dst: "10.88.0.9" };
  await nl.fdbReplace(f);
  await nl.fdbReplace({ ...f, dst: "10.88.0.10" });
  const mine = (await nl.fdbs(vx.index)).filter((e) => e.mac === f.mac);
  assert.deepEqual(mine, [{ ...f, dst: "10.88.0.10", state: 0x80 }]);
  assert.match(
    await sh("bridge", "fdb", "show", "dev", "vxt0"),
    /0a:00:00:00:0a:01 dst 10\.88\.0\.10 self permanent/,
  );
  // With `dst`, only that remote goes; the kernel quietly ignores a dst the entry lacks.
  await nl.fdbDelete(f);
  assert.equal((await nl.fdbs(vx.index)).filter((e) => e.mac === f.mac).length, 1);
  await nl.fdbDelete({ index: vx.index, mac: f.mac });
  assert.ok(!(await nl.fdbs()).some((e) => e.mac === f.mac));
  assert.doesNotMatch(await sh("bridge", "fdb", "show", "dev", "vxt0"), /0a:00:00:00:0a:01/);
  await assert.rejects(nl.fdbDelete(f), NotFoundError);
});

test("subscribe() reports a route deleted by `ip route del` within 1 s", async (nl, base) => {
  const ac = new AbortController();
  const events = nl.subscribe(["ipv4-route", "link"], { signal: ac.signal });
  await nl.routeReplace({
    dst: "10.95.0.0/24",
    gateway: "10.88.0.2",
    index: base.index,
    protocol: PROTO,
  });
  const seen: KernelEvent[] = [];
  const timer = setTimeout(() => ac.abort(), 5000);
  let start = 0;
  const deleted = (async () => {
    for await (const ev of events) {
      seen.push(ev);
      if (ev.kind === "route" && ev.route.dst === "10.95.0.0/24" && ev.op === "del") {
        return performance.now() - start;
      }
    }
    return undefined;
  })();
  start = performance.now();
  await sh("ip", "route", "del", "10.95.0.0/24");
  const latency = await deleted;
  clearTimeout(timer);
  ac.abort();
  assert.ok(
    latency !== undefined && latency < 1000,
    `no delete event within 1 s: ${JSON.stringify(seen)}`,
  );
  const added = seen.find((e) => e.kind === "route" && e.op === "new");
  assert.equal(added?.kind === "route" && added.route.protocol, PROTO);
  console.log(`figure: route delete by ip(8) seen by subscribe() after ${latency.toFixed(1)} ms`);
});

test(
  "subscribe() yields resync after the kernel drops notifications (ENOBUFS)",
  async (nl, base) => {
    const ac = new AbortController();
    const events = nl.subscribe(["ipv4-route"], { signal: ac.signal, receiveBufferSize: 4096 });
    // Nobody reads while 300 notifications arrive: the tiny buffer overflows.
    for (let i = 0; i < 300; i++) {
      await nl.routeReplace({
        dst: `10.96.${i >> 8}.${i & 255}/32`,
        index: base.index,
        protocol: PROTO,
      });
    }
    let resync = false;
    const timer = setTimeout(() => ac.abort(), 3000);
    for await (const ev of events) {
      if (ev.kind === "resync") {
        resync = true;
        break;
      }
    }
    clearTimeout(timer);
    ac.abort();
    assert.ok(resync, "expected a resync event");
    for (const r of await nl.routes({ protocol: PROTO })) await nl.routeDelete(r);
  },
);

test("routes() dumps 10 000 routes (timed)", async (nl, base) => {
  const N = 10_000;
  const p = PROTO + 1;
  let start = performance.now();
  for (let i = 0; i < N; i++) {
    await nl.routeReplace({
      dst: `10.${128 + (i >> 8)}.${i & 255}.0/24`,
      gateway: "10.88.0.2",
      index: base.index,
      protocol: p,
    });
  }
  const insert = ms(start);
  start = performance.now();
  const ours = await nl.routes({ protocol: p });
  const dump = ms(start);
  assert.equal(ours.length, N);
  assert.ok(ours.every((r) => r.gateway === "10.88.0.2" && r.protocol === p));
  start = performance.now();
  const all = await nl.routes({ table: 0 });
  const dumpAll = ms(start);
  assert.ok(all.length > N);
  const viaIp = (await sh("ip", "route", "show", "proto", String(p))).trim().split("\n").length;
  assert.equal(viaIp, N);
  start = performance.now();
  await Promise.all(ours.map((r) => nl.routeDelete(r)));
  const del = ms(start);
  assert.deepEqual(await nl.routes({ protocol: p }), []);
  console.log(
    `figure: ${N} routes: replace one by one ${insert}, dump filtered by proto ${dump}, ` +
      `dump of all tables (${all.length} routes) ${dumpAll}, delete (queued) ${del}`,
  );
});
