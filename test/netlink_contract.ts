/**
 * One contract for the {@link Netlink} seam, run against `FakeNetlink` (`test/fakes/netlink_test.ts`)
 * and against the real kernel in a private network namespace (`test/netlink_kernel_cases.ts`,
 * root only), so the fake cannot drift from what the kernel does where backends can tell.
 *
 * Every case creates its own links and routes (protocol {@link PROTO}) and removes them, so the
 * cases can share one namespace. Assertions look only at what the case made: the kernel adds
 * things of its own (prefix and local routes, IPv6 link-local addresses, multicast FDB entries).
 */
import assert from "node:assert/strict";
import {
  ExistsError,
  type Fdb,
  type KernelEvent,
  type Link,
  type Netlink,
  NetlinkError,
  NotFoundError,
} from "../kernel/netlink/mod.ts";

/** The routing protocol number of every route a case writes. */
export const PROTO = 77;

/** What a case gets: the seam, a base link, and ways for "someone else" to change the host. */
export interface ContractHost {
  readonly nl: Netlink;
  /** Up, MTU 1500, with 10.88.0.1/24 and fd88::1/64. */
  readonly base: Link;
  /** `bridge fdb append MAC dev NAME dst IP self permanent`, by someone else. */
  appendFdb(device: string, fdb: Fdb): Promise<void>;
  /** `ip route del DST`, by someone else. */
  deleteRoute(dst: string): Promise<void>;
}

export interface ContractOptions {
  /** Skips every case (the kernel run outside its namespace). */
  readonly ignore?: boolean;
}

/** Registers the contract's cases as `Deno.test`s named after `target`. */
export function netlinkContract(
  target: string,
  withHost: (fn: (host: ContractHost) => Promise<void>) => Promise<void>,
  options: ContractOptions = {},
): void {
  for (const [name, fn] of Object.entries(cases)) {
    Deno.test({
      name: `Netlink contract (${target}): ${name}`,
      ignore: options.ignore ?? false,
      fn: () => withHost(fn),
    });
  }
}

/** Adds a bridge named `name` (a link every kernel has), removed again after `fn`. */
async function withLink<T>(
  nl: Netlink,
  name: string,
  fn: (link: Link) => Promise<T>,
  options: { up?: boolean; mtu?: number; mac?: string } = {},
): Promise<T> {
  await nl.linkAdd({ kind: "bridge", name, mtu: options.mtu, mac: options.mac });
  const link = await nl.linkByName(name);
  assert.ok(link, `${name} exists after linkAdd()`);
  try {
    if (options.up) await nl.linkSet(link.index, { up: true });
    return await fn((await nl.linkByIndex(link.index))!);
  } finally {
    await nl.linkDelete(link.index).catch(() => {});
  }
}

/** A vxlan device on the base link, removed again after `fn`. */
async function withVxlan<T>(host: ContractHost, name: string, fn: (link: Link) => Promise<T>) {
  const { nl, base } = host;
  await nl.linkAdd({ kind: "vxlan", name, vni: 7, local: "10.88.0.1", dev: base.index });
  const link = (await nl.linkByName(name))!;
  try {
    await nl.linkSet(link.index, { up: true });
    return await fn(link);
  } finally {
    await nl.linkDelete(link.index).catch(() => {});
  }
}

/**
 * Reads `events` one at a time, skipping those `keep` rejects (the kernel's own traffic: IPv6
 * link-local routes, multicast neighbours, repeated link state changes); fails after 2 s.
 */
function reader(events: AsyncIterable<KernelEvent>, keep: (e: KernelEvent) => boolean) {
  const it = events[Symbol.asyncIterator]();
  return async (what: string): Promise<string> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within 2 s: ${what}`)), 2000);
    });
    try {
      for (;;) {
        const next = await Promise.race([it.next(), timeout]);
        assert.ok(!next.done, `the subscription ended before ${what}`);
        if (keep(next.value)) return describe(next.value);
      }
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Route events of our protocol, FDB events, deletions of links. */
function ours(e: KernelEvent): boolean {
  if (e.kind === "route") return e.route.protocol === PROTO;
  if (e.kind === "link") return e.op === "del";
  return e.kind === "fdb";
}

/** An event as one comparable line: `route new 10.97.0.0/24`, `fdb del 0a:… 10.88.0.9`. */
function describe(e: KernelEvent): string {
  switch (e.kind) {
    case "route":
      return `route ${e.op} ${e.route.dst}`;
    case "link":
      return `link ${e.op} ${e.link.name}`;
    case "fdb":
      return `fdb ${e.op} ${e.fdb.mac} ${e.fdb.dst}`;
    case "neigh":
      return `neigh ${e.op} ${e.neigh.ip} ${e.neigh.mac}`;
    case "address":
      return `address ${e.op} ${e.address.address}`;
    case "resync":
      return "resync";
  }
}

const permanentFdbs = async (nl: Netlink, index: number) =>
  (await nl.fdbs(index)).filter((f) => f.index === index && ((f.state ?? 0) & 0x80) !== 0)
    .map((f) => `${f.mac} ${f.dst}`).sort();

const cases: Record<string, (host: ContractHost) => Promise<void>> = {
  "links are added, read back, changed and deleted; errors are typed": async ({ nl }) => {
    await withLink(nl, "nlc1", async (link) => {
      assert.deepEqual([link.kind, link.mtu, link.mac, link.up], [
        "bridge",
        1400,
        "02:00:00:00:00:11",
        false,
      ]);
      await nl.linkSet(link.index, { up: true, mtu: 1300, mac: "02:00:00:00:00:12" });
      const set = await nl.linkByIndex(link.index);
      assert.deepEqual([set?.up, set?.mtu, set?.mac, set?.name], [
        true,
        1300,
        "02:00:00:00:00:12",
        "nlc1",
      ]);
      assert.ok((await nl.links()).some((l) => l.index === link.index && l.name === "nlc1"));
      await assert.rejects(nl.linkAdd({ kind: "bridge", name: "nlc1" }), ExistsError);
      await nl.linkDelete(link.index);
      assert.equal(await nl.linkByName("nlc1"), undefined);
      assert.equal(await nl.linkByIndex(link.index), undefined);
      await assert.rejects(nl.linkDelete(link.index), NotFoundError);
    }, { mtu: 1400, mac: "02:00:00:00:00:11" });
  },

  "a vxlan link reads back its attributes; its default MTU leaves room for the headers": async (
    { nl, base },
  ) => {
    const made: number[] = [];
    try {
      await nl.linkAdd({
        kind: "vxlan",
        name: "nlcvx4",
        vni: 7,
        local: "10.88.0.1",
        dev: base.index,
        port: 8472,
        learning: false,
        gbp: true,
        mac: "0a:00:00:00:07:01",
      });
      await nl.linkAdd({
        kind: "vxlan",
        name: "nlcvx6",
        vni: 8,
        local: "fd88::1",
        dev: base.index,
      });
      await nl.linkAdd({ kind: "vxlan", name: "nlcvx0", vni: 9, port: 4789, learning: true });
      const [v4, v6, v0] = await Promise.all(
        ["nlcvx4", "nlcvx6", "nlcvx0"].map((n) => nl.linkByName(n)),
      );
      made.push(v4!.index, v6!.index, v0!.index);
      assert.deepEqual([v4?.kind, v4?.mac, v4?.mtu], ["vxlan", "0a:00:00:00:07:01", 1450]);
      assert.deepEqual(v4?.vxlan, {
        vni: 7,
        local: "10.88.0.1",
        dev: base.index,
        port: 8472,
        learning: false,
        gbp: true,
      });
      assert.equal(v6?.mtu, 1430, "IPv6 underlay: 70 bytes of headers");
      assert.deepEqual(v0?.vxlan, { vni: 9, port: 4789, learning: true, gbp: false });
      assert.equal(v0?.mtu, 1500, "no underlay device: the Ethernet default");
    } finally {
      for (const index of made) await nl.linkDelete(index);
    }
  },

  "addresses are added, listed by family and deleted; errors are typed": async ({ nl, base }) => {
    const a4 = { index: base.index, address: "10.88.1.7/32" };
    const a6 = { index: base.index, address: "fd88::7/128" };
    await nl.addressAdd(a4);
    await nl.addressAdd(a6);
    const v4 = (await nl.addresses(base.index, 4)).map((a) => a.address);
    assert.ok(v4.includes("10.88.1.7/32") && v4.includes("10.88.0.1/24"), v4.join());
    assert.ok(v4.every((a) => !a.includes(":")));
    assert.ok((await nl.addresses(base.index, 6)).some((a) => a.address === "fd88::7/128"));
    assert.equal((await nl.addresses()).find((a) => a.address === "10.88.1.7/32")?.scope, 0);
    await assert.rejects(nl.addressAdd(a4), ExistsError);
    await nl.addressDelete(a4);
    await nl.addressDelete(a6);
    assert.ok(!(await nl.addresses()).some((a) => a.address === "10.88.1.7/32"));
    await assert.rejects(nl.addressDelete(a4), NotFoundError);
  },

  "routeReplace() fills in what the kernel reports and keeps one route per key": async (
    { nl, base },
  ) => {
    const r = { dst: "10.90.0.0/16", gateway: "10.88.0.2", index: base.index, protocol: PROTO };
    try {
      await nl.routeReplace(r);
      await nl.routeReplace({ ...r, gateway: "10.88.0.3" });
      assert.deepEqual(await nl.routes({ protocol: PROTO }), [{
        ...r,
        gateway: "10.88.0.3",
        table: 254,
        scope: 0,
        type: "unicast",
        metric: 0,
      }]);
      await assert.rejects(nl.routeAdd(r), ExistsError);
      await nl.routeAdd({ ...r, metric: 10 });
      assert.deepEqual((await nl.routes({ protocol: PROTO })).map((x) => x.metric).sort(), [0, 10]);
      await nl.routeReplace({
        dst: "fd90::/64",
        gateway: "fd88::2",
        index: base.index,
        protocol: PROTO,
      });
      assert.equal((await nl.routes({ protocol: PROTO, family: 6 }))[0]?.metric, 1024);
    } finally {
      for (const x of await nl.routes({ protocol: PROTO })) await nl.routeDelete(x);
    }
  },

  "a gateway outside the link's subnets needs onlink; a link that is down takes no route": async (
    { nl, base },
  ) => {
    const onlink = {
      dst: "10.91.0.0/24",
      gateway: "10.200.0.1",
      index: base.index,
      protocol: PROTO,
    };
    try {
      await assert.rejects(
        nl.routeReplace(onlink),
        (e) => e instanceof NetlinkError && e.code === "ENETUNREACH",
      );
      await nl.routeReplace({ ...onlink, onlink: true });
      assert.equal((await nl.routes({ dst: "10.91.0.0/24" }))[0]?.onlink, true);
      await nl.routeReplace({ dst: "10.91.1.0/24", gateway: "10.88.0.5", protocol: PROTO });
      assert.equal((await nl.routes({ dst: "10.91.1.0/24" }))[0]?.index, base.index, "dev found");
      await assert.rejects(
        nl.routeReplace({ dst: "10.91.2.1/24", index: base.index, protocol: PROTO }),
        (e) => e instanceof NetlinkError && e.code === "EINVAL",
      );
      await withLink(nl, "nlcdown", async (down) => {
        await assert.rejects(
          nl.routeReplace({ dst: "10.91.3.0/24", index: down.index, protocol: PROTO }),
          (e) => e instanceof NetlinkError && e.code === "ENETDOWN",
        );
      });
    } finally {
      for (const x of await nl.routes({ protocol: PROTO })) await nl.routeDelete(x);
    }
  },

  "routes() filters by table, family, destination and device; routeGet() takes the longest prefix":
    async ({ nl, base }) => {
      const dev = base.index;
      try {
        await nl.routeReplace({
          dst: "10.92.0.0/16",
          gateway: "10.88.0.2",
          index: dev,
          protocol: PROTO,
        });
        await nl.routeReplace({
          dst: "10.92.1.0/24",
          gateway: "10.88.0.3",
          index: dev,
          protocol: PROTO,
        });
        await nl.routeReplace({ dst: "10.94.0.0/24", index: dev, table: 100, protocol: PROTO });
        await nl.routeReplace({ dst: "fd92::/64", index: dev, protocol: PROTO });
        await nl.routeReplace({ dst: "10.88.0.64/26", index: dev, protocol: PROTO });
        const main = (await nl.routes({ protocol: PROTO })).map((r) => r.dst).sort();
        assert.deepEqual(main, ["10.88.0.64/26", "10.92.0.0/16", "10.92.1.0/24", "fd92::/64"]);
        const t100 = await nl.routes({ table: 100 });
        assert.deepEqual(t100.map((r) => [r.dst, r.scope, r.table]), [["10.94.0.0/24", 253, 100]]);
        assert.deepEqual((await nl.routes({ protocol: PROTO, family: 6 })).map((r) => r.dst), [
          "fd92::/64",
        ]);
        assert.deepEqual((await nl.routes({ dst: "10.92.1.0/24" })).map((r) => r.gateway), [
          "10.88.0.3",
        ]);
        assert.ok((await nl.routes({ index: dev, table: 0 })).some((r) => r.table === 100));
        assert.deepEqual(await nl.routes({ index: 999_999 }), []);
        const got = await nl.routeGet("10.92.1.9");
        assert.deepEqual([got?.gateway, got?.index], ["10.88.0.3", dev]);
        assert.equal((await nl.routeGet("10.92.2.9"))?.gateway, "10.88.0.2");
        const direct = await nl.routeGet("10.88.0.77");
        assert.deepEqual([direct?.gateway, direct?.index], [undefined, dev], "on-link: no gateway");
        assert.equal(await nl.routeGet("192.0.2.1"), undefined);
      } finally {
        for (const x of await nl.routes({ protocol: PROTO, table: 0 })) await nl.routeDelete(x);
      }
    },

  "routeDelete() matches the fields given; a missing route is NotFoundError": async (
    { nl, base },
  ) => {
    const r = { dst: "10.93.0.0/24", gateway: "10.88.0.2", index: base.index, protocol: PROTO };
    await nl.routeReplace(r);
    await assert.rejects(nl.routeDelete({ ...r, gateway: "10.88.0.99" }), NotFoundError);
    await nl.routeDelete({ dst: "10.93.0.0/24" });
    await assert.rejects(nl.routeDelete(r), NotFoundError);
    await assert.rejects(nl.routeDelete({ dst: "fd93::/64" }), NotFoundError);
    await nl.routeReplace({ dst: "10.93.1.0/24", type: "blackhole", protocol: PROTO });
    const [bh] = await nl.routes({ dst: "10.93.1.0/24" });
    assert.deepEqual([bh?.type, bh?.index, bh?.protocol], ["blackhole", undefined, PROTO]);
    await nl.routeDelete({ dst: "10.93.1.0/24", type: "blackhole" });
    assert.deepEqual(await nl.routes({ dst: "10.93.1.0/24" }), []);
  },

  "neighReplace() keeps one permanent entry per address; neighDelete() removes it": async (
    host,
  ) => {
    await withVxlan(host, "nlcvxn", async (vx) => {
      const { nl } = host;
      const n = { index: vx.index, ip: "10.93.0.5", mac: "0a:00:00:00:09:05" };
      await nl.neighReplace(n);
      await nl.neighReplace({ ...n, mac: "0a:00:00:00:09:06" });
      await nl.neighReplace({ index: vx.index, ip: "fd93::5", mac: "0a:00:00:00:09:07" });
      // Only permanent entries: IPv6 may add NOARP multicast entries (ff02::…) to the device.
      const permanent = async () =>
        (await nl.neighs(vx.index)).filter((x) => x.state === 0x80).map((x) => `${x.ip} ${x.mac}`)
          .sort();
      assert.deepEqual(await permanent(), [
        "10.93.0.5 0a:00:00:00:09:06",
        "fd93::5 0a:00:00:00:09:07",
      ]);
      await nl.neighDelete(n);
      await nl.neighDelete({ index: vx.index, ip: "fd93::5" });
      assert.deepEqual(await permanent(), []);
      await assert.rejects(nl.neighDelete(n), NotFoundError);
    });
  },

  "a unicast MAC has one FDB remote: replace rewrites it, append is ignored": async (host) => {
    await withVxlan(host, "nlcvxf", async (vx) => {
      const { nl } = host;
      const f = { index: vx.index, mac: "0a:00:00:00:0a:01", dst: "10.88.0.9" };
      await nl.fdbReplace(f);
      await nl.fdbReplace({ ...f, dst: "10.88.0.10" });
      assert.deepEqual(await permanentFdbs(nl, vx.index), ["0a:00:00:00:0a:01 10.88.0.10"]);
      assert.deepEqual((await nl.fdbs(vx.index)).find((e) => e.mac === f.mac), {
        ...f,
        dst: "10.88.0.10",
        state: 0x80,
      });
      await host.appendFdb("nlcvxf", { ...f, dst: "10.88.0.11" });
      assert.deepEqual(await permanentFdbs(nl, vx.index), ["0a:00:00:00:0a:01 10.88.0.10"]);
      // With `dst`, only that remote goes; a dst the entry lacks is quietly ignored.
      await nl.fdbDelete(f);
      assert.deepEqual(await permanentFdbs(nl, vx.index), ["0a:00:00:00:0a:01 10.88.0.10"]);
      await nl.fdbDelete({ index: vx.index, mac: f.mac });
      assert.deepEqual(await permanentFdbs(nl, vx.index), []);
      await assert.rejects(nl.fdbDelete(f), NotFoundError);
    });
  },

  "the all-zero MAC keeps one FDB entry per remote; replace refuses it": async (host) => {
    await withVxlan(host, "nlcvxz", async (vx) => {
      const { nl } = host;
      const zero = { index: vx.index, mac: "00:00:00:00:00:00" };
      await host.appendFdb("nlcvxz", { ...zero, dst: "10.88.0.21" });
      await host.appendFdb("nlcvxz", { ...zero, dst: "10.88.0.22" });
      await host.appendFdb("nlcvxz", { ...zero, dst: "10.88.0.23" });
      assert.deepEqual(await permanentFdbs(nl, vx.index), [
        "00:00:00:00:00:00 10.88.0.21",
        "00:00:00:00:00:00 10.88.0.22",
        "00:00:00:00:00:00 10.88.0.23",
      ]);
      await assert.rejects(
        nl.fdbReplace({ ...zero, dst: "10.88.0.24" }),
        (e) => e instanceof NetlinkError && e.code === "EOPNOTSUPP",
      );
      await nl.fdbDelete({ ...zero, dst: "10.88.0.22" });
      assert.deepEqual(await permanentFdbs(nl, vx.index), [
        "00:00:00:00:00:00 10.88.0.21",
        "00:00:00:00:00:00 10.88.0.23",
      ]);
      await nl.fdbDelete(zero);
      assert.deepEqual(await permanentFdbs(nl, vx.index), [], "without dst every remote goes");
    });
  },

  "subscribe() reports route, link and FDB changes, also by someone else, and only changes": async (
    host,
  ) => {
    const { nl, base } = host;
    const ac = new AbortController();
    const events = nl.subscribe(["ipv4-route", "link", "neigh"], { signal: ac.signal });
    const next = reader(events, ours);
    try {
      const r = { dst: "10.95.0.0/24", gateway: "10.88.0.2", index: base.index, protocol: PROTO };
      await nl.routeReplace(r);
      assert.equal(await next("route added"), "route new 10.95.0.0/24");
      await host.deleteRoute("10.95.0.0/24");
      assert.equal(await next("route deleted by someone else"), "route del 10.95.0.0/24");

      await withVxlan(host, "nlcvxe", async (vx) => {
        const f = { index: vx.index, mac: "0a:00:00:00:0e:01", dst: "10.88.0.9" };
        await nl.fdbReplace(f);
        assert.equal(await next("FDB added"), "fdb new 0a:00:00:00:0e:01 10.88.0.9");
        await nl.fdbReplace(f); // no change: no notification
        await nl.fdbReplace({ ...f, dst: "10.88.0.10" });
        assert.equal(await next("FDB changed"), "fdb new 0a:00:00:00:0e:01 10.88.0.10");
        await nl.fdbDelete({ index: vx.index, mac: f.mac });
        assert.equal(await next("FDB deleted"), "fdb del 0a:00:00:00:0e:01 10.88.0.10");
      });
      assert.equal(await next("link deleted"), "link del nlcvxe");
    } finally {
      ac.abort();
      for (const x of await nl.routes({ protocol: PROTO })) await nl.routeDelete(x);
    }
  },

  "a link set down loses its routes; only IPv6 ones are notified": async ({ nl, base }) => {
    const ac = new AbortController();
    const next = reader(nl.subscribe(["ipv4-route", "ipv6-route"], { signal: ac.signal }), ours);
    try {
      await withLink(nl, "nlcflush", async (link) => {
        await nl.routeReplace({ dst: "10.97.0.0/24", index: link.index, protocol: PROTO });
        assert.equal(await next("IPv4 route added"), "route new 10.97.0.0/24");
        await nl.routeReplace({ dst: "fd97::/64", index: link.index, protocol: PROTO });
        assert.equal(await next("IPv6 route added"), "route new fd97::/64");
        await nl.linkSet(link.index, { up: false });
        assert.deepEqual(await nl.routes({ protocol: PROTO, index: link.index }), []);
        assert.equal(await next("IPv6 route flushed"), "route del fd97::/64");
        // The next IPv4 event is this marker: the flushed IPv4 route was not notified.
        await nl.routeReplace({ dst: "10.97.1.0/24", index: base.index, protocol: PROTO });
        assert.equal(await next("marker route"), "route new 10.97.1.0/24");
      }, { up: true });
    } finally {
      ac.abort();
      for (const x of await nl.routes({ protocol: PROTO })) await nl.routeDelete(x);
    }
  },

  "deleting a link takes its routes, neighbours and FDB entries with it": async (host) => {
    const { nl } = host;
    let index = 0;
    await withVxlan(host, "nlcvxd", async (vx) => {
      index = vx.index;
      await nl.neighReplace({ index, ip: "10.98.0.0", mac: "0a:00:00:00:0d:01" });
      await nl.fdbReplace({ index, mac: "0a:00:00:00:0d:01", dst: "10.88.0.9" });
      await nl.routeReplace({
        dst: "10.98.0.0/24",
        gateway: "10.98.0.0",
        index,
        onlink: true,
        protocol: PROTO,
      });
      await nl.linkDelete(index);
    });
    assert.deepEqual(await nl.routes({ protocol: PROTO }), []);
    assert.ok(!(await nl.neighs()).some((n) => n.index === index));
    assert.ok(!(await nl.fdbs()).some((f) => f.index === index));
  },
};
