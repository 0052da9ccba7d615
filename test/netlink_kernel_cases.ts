/**
 * The real kernel's cases, run by `kernel/netlink/rtnetlink_test.ts` with `deno test` inside a fresh
 * network namespace (`unshare --net`) and `NETLINK_TEST_IN_NETNS=1`: the {@link netlinkContract}
 * that `FakeNetlink` passes too, then what only the kernel can show (what `ip` prints, ENOBUFS,
 * timings). Without that variable every case is ignored, so running this file by hand cannot
 * touch the host's network.
 */
import assert from "node:assert/strict";
import {
  type KernelEvent,
  type Link,
  type Netlink,
  NetlinkError,
  openNetlink,
} from "../kernel/netlink/mod.ts";
import { netlinkContract, PROTO } from "./netlink_contract.ts";

const IN_NETNS = Deno.env.get("NETLINK_TEST_IN_NETNS") === "1";

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

netlinkContract("kernel", (fn) =>
  withNetlink((nl, base) =>
    fn({
      nl,
      base,
      appendFdb: async (device, f) => {
        await sh(
          "bridge",
          "fdb",
          "append",
          f.mac,
          "dev",
          device,
          "dst",
          f.dst!,
          "self",
          "permanent",
        );
      },
      deleteRoute: async (dst) => {
        await sh("ip", "route", "del", dst);
      },
    })
  ), { ignore: !IN_NETNS });

test("what the seam writes is what ip(8) and bridge(8) print", async (nl, base) => {
  await nl.linkAdd({ kind: "bridge", name: "nlt1", mtu: 1300, mac: "02:00:00:00:00:12" });
  const link = (await nl.linkByName("nlt1"))!;
  await nl.linkSet(link.index, { up: true });
  assert.match(
    await sh("ip", "-o", "link", "show", "dev", "nlt1"),
    /mtu 1300 .*link\/ether 02:00:00:00:00:12/,
  );
  await nl.addressAdd({ index: base.index, address: "10.88.1.7/32" });
  assert.match(await sh("ip", "-o", "addr", "show", "dev", "nl0"), /inet 10\.88\.1\.7\/32/);
  await nl.addressDelete({ index: base.index, address: "10.88.1.7/32" });
  assert.doesNotMatch(await sh("ip", "-o", "addr", "show", "dev", "nl0"), /10\.88\.1\.7/);

  await nl.routeReplace({
    dst: "10.90.0.0/16",
    gateway: "10.88.0.3",
    index: base.index,
    protocol: PROTO,
  });
  await nl.routeReplace({
    dst: "10.91.0.0/24",
    gateway: "10.200.0.1",
    index: base.index,
    onlink: true,
    protocol: PROTO,
  });
  await nl.routeReplace({ dst: "10.94.0.0/24", index: base.index, table: 100, protocol: PROTO });
  await nl.routeReplace({ dst: "10.92.0.0/24", type: "blackhole", protocol: PROTO });
  const shown = await sh("ip", "route", "show", "proto", String(PROTO));
  assert.match(shown, /10\.90\.0\.0\/16 via 10\.88\.0\.3 dev nl0/);
  assert.match(shown, /10\.91\.0\.0\/24 via 10\.200\.0\.1 dev nl0 .*onlink/);
  assert.match(
    await sh("ip", "route", "show", "table", "100"),
    /10\.94\.0\.0\/24 dev nl0 proto 77 scope link/,
  );
  assert.match(
    await sh("ip", "route", "show", "type", "blackhole"),
    /blackhole 10\.92\.0\.0\/24 proto 77/,
  );
  for (const r of await nl.routes({ protocol: PROTO, table: 0 })) await nl.routeDelete(r);

  await nl.linkAdd({
    kind: "vxlan",
    name: "vxt0",
    vni: 7,
    local: "10.88.0.1",
    dev: base.index,
    gbp: true,
  });
  await nl.linkAdd({
    kind: "vxlan",
    name: "vxt6",
    vni: 8,
    local: "fd88::1",
    port: 4789,
    learning: true,
  });
  const vx = (await nl.linkByName("vxt0"))!;
  const vxShown = await sh("ip", "-d", "link", "show", "vxt0");
  assert.match(vxShown, /vxlan id 7 local 10\.88\.0\.1 dev nl0 .*dstport 8472 nolearning/s);
  assert.match(vxShown, / gbp /);
  assert.match(
    await sh("ip", "-d", "link", "show", "vxt6"),
    /vxlan id 8 local fd88::1 .*dstport 4789/s,
  );
  await nl.linkSet(vx.index, { up: true });
  await nl.neighReplace({ index: vx.index, ip: "10.93.0.5", mac: "0a:00:00:00:09:06" });
  assert.match(
    await sh("ip", "neigh", "show", "dev", "vxt0"),
    /10\.93\.0\.5 lladdr 0a:00:00:00:09:06 PERMANENT/,
  );
  await nl.fdbReplace({ index: vx.index, mac: "0a:00:00:00:0a:01", dst: "10.88.0.10" });
  assert.match(
    await sh("bridge", "fdb", "show", "dev", "vxt0"),
    /0a:00:00:00:0a:01 dst 10\.88\.0\.10 self permanent/,
  );
  for (const name of ["nlt1", "vxt0", "vxt6"]) {
    await nl.linkDelete((await nl.linkByName(name))!.index);
  }
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
