/**
 * The etcd subnet manager against a real etcd (Debian's etcd-server, started on a free loopback
 * port with a temporary data dir): acquisition, reuse, races, byte-exact values, watches across
 * etcd restarts and compaction, renewal. The fast unit tests of the same manager, against an
 * in-memory etcd: `subnet/etcd/manager_test.ts`.
 */
import assert from "node:assert/strict";
import { EtcdClient, type EtcdClientOptions } from "../subnet/etcd/client.ts";
import { EtcdSubnetManager } from "../subnet/etcd/manager.ts";
import { formatIP4Net, parseIP4, parseIP4Net } from "../subnet/ip.ts";
import { LeaseWatcher } from "../subnet/lease_watcher.ts";
import {
  type Lease,
  type LeaseEvent,
  LeaseRevokedError,
  type LeaseWatchResult,
} from "../subnet/mod.ts";
import { createLogger, silentLogger } from "../util/log.ts";
import { recordingLogger } from "./recording_logger.ts";
import { startEtcd } from "./etcd_server.ts";
import { TcpProxy } from "./tcp_proxy.ts";
import { eventually } from "./eventually.ts";

const PREFIX = "/coreos.com/network";
const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';

function manager(
  client: EtcdClient,
  extra: Partial<ConstructorParameters<typeof EtcdSubnetManager>[1]> = {},
) {
  return new EtcdSubnetManager(client, { prefix: PREFIX, log: silentLogger, ...extra });
}

function attrs(ip: string) {
  return { publicIP: parseIP4(ip), backendType: "host-gw" };
}

/** Collects watch results into a LeaseWatcher in the background. */
function watchInto(m: EtcdSubnetManager, signal: AbortSignal) {
  const watcher = new LeaseWatcher(undefined);
  const events: LeaseEvent[] = [];
  const results: LeaseWatchResult[] = [];
  const done = (async () => {
    for await (const r of m.watchLeases({ signal })) {
      results.push(r);
      events.push(...watcher.apply(r));
    }
  })();
  return { watcher, events, results, done };
}

Deno.test("EtcdSubnetManager against a real etcd", async (t) => {
  await using etcd = await startEtcd();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    await t.step("a missing config gives flannel's error naming the key", async () => {
      await assert.rejects(
        () => manager(client).getNetworkConfig(),
        /flannel config not found in etcd store.*\/coreos.com\/network\/config/,
      );
    });
    await client.put(`${PREFIX}/config`, CONFIG);

    await t.step("two nodes get distinct subnets inside [SubnetMin, SubnetMax]", async () => {
      const a = await manager(client).acquireLease(attrs("192.168.1.1"));
      const b = await manager(client).acquireLease(attrs("192.168.1.2"));
      assert.notEqual(a.subnet.ip, b.subnet.ip);
      for (const l of [a, b]) {
        assert.ok(l.subnet.ip >= parseIP4("10.3.1.0") && l.subnet.ip <= parseIP4("10.3.25.0"));
        assert.equal(l.subnet.prefix, 24);
      }
    });

    await t.step("the stored value is byte-exact and attached to a 24 h etcd lease", async () => {
      const l = await manager(client).acquireLease({ publicIP: parseIP4("1.2.3.4") });
      const key = `${PREFIX}/subnets/${formatIP4Net(l.subnet).replace("/", "-")}`;
      const { kv } = await client.get(key);
      assert.equal(kv?.value, '{"PublicIP":"1.2.3.4","PublicIPv6":null}');
      const ttl = await client.leaseTimeToLive(kv!.lease);
      assert.ok(ttl > 86_000 && ttl <= 86_400, `ttl ${ttl}`);
    });

    await t.step("a restarted node gets its subnet back (reuse by PublicIP)", async () => {
      const first = await manager(client).acquireLease(attrs("192.168.1.50"));
      const again = await manager(client).acquireLease(attrs("192.168.1.50"));
      assert.deepEqual(again.subnet, first.subnet);
    });

    await t.step("the previous subnet from subnet.env is reused when free", async () => {
      // A free subnet of the range (earlier steps took random ones).
      const { kvs } = await client.range(`${PREFIX}/subnets/`);
      const taken = new Set(kvs.map((kv) => /(10\.3\.\d+)\.0-24$/.exec(kv.key)?.[1]));
      const free = Array.from({ length: 25 }, (_, i) => `10.3.${i + 1}`).find((p) => !taken.has(p));
      const prev = parseIP4Net(`${free}.0/24`);
      const l = await manager(client, { previousSubnet: prev }).acquireLease(attrs("192.168.2.6"));
      assert.deepEqual(l.subnet, prev);
      const outside = parseIP4Net("10.4.1.0/24");
      const o = await manager(client, { previousSubnet: outside }).acquireLease(
        attrs("192.168.2.7"),
      );
      assert.notDeepEqual(o.subnet, outside);
    });

    await t.step("a reservation is reused and stays a reservation", async () => {
      const key = `${PREFIX}/subnets/10.3.20.0-24`;
      await client.put(key, '{"PublicIP":"192.168.3.20","PublicIPv6":null}');
      const l = await manager(client).acquireLease(attrs("192.168.3.20"));
      assert.deepEqual(l.subnet, parseIP4Net("10.3.20.0/24"));
      assert.equal(l.expiration, undefined);
      const { kv } = await client.get(key);
      assert.equal(kv?.lease, "0");
      assert.equal(
        kv?.value,
        '{"PublicIP":"192.168.3.20","PublicIPv6":null,"BackendType":"host-gw"}',
      );
    });

    await t.step(
      "bad keys and values written by other tools are skipped, with a warning",
      async () => {
        await client.put(`${PREFIX}/subnets/garbage`, "x");
        await client.put(`${PREFIX}/subnets/10.3.21.0-24`, "{not json");
        const log = recordingLogger();
        const l = await manager(client, { log }).acquireLease(attrs("192.168.3.99"));
        assert.notEqual(formatIP4Net(l.subnet), "10.3.21.0/24");
        const warned = log.lines.filter((line) => line.startsWith("W "));
        assert.ok(
          warned.some((w) =>
            w.startsWith(`W Ignoring bad subnet node "${PREFIX}/subnets/garbage": `)
          ),
          warned.join("\n"),
        );
        assert.ok(
          warned.some((w) =>
            w.startsWith(`W Ignoring lease "${PREFIX}/subnets/10.3.21.0-24" with a bad value: `)
          ),
          warned.join("\n"),
        );
        await client.delete(`${PREFIX}/subnets/garbage`);
        await client.delete(`${PREFIX}/subnets/10.3.21.0-24`);
      },
    );
    await t.step("out of subnets names the configured prefix", async () => {
      const other = new EtcdSubnetManager(client, { prefix: "/other//net/", log: silentLogger });
      await client.put(
        "/other/net/config",
        '{"Network":"10.9.0.0/16","SubnetMin":"10.9.1.0","SubnetMax":"10.9.1.0"}',
      );
      await other.acquireLease(attrs("192.168.4.1"));
      await assert.rejects(
        () => other.acquireLease(attrs("192.168.4.2")),
        /^OutOfSubnetsError: out of subnets: .* under \/other\/net\/subnets or widen/,
      );
    });
  } finally {
    client.close();
  }
});

Deno.test("EtcdSubnetManager: 20 nodes racing for the same subnet all get distinct ones", async () => {
  await using etcd = await startEtcd();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    await client.put(`${PREFIX}/config`, '{"Network":"10.7.0.0/16"}');
    // Every node's "random" picks the first free candidate, so they all collide and must retry.
    const leases = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => manager(client, { random: () => 0 }).acquireLease(attrs(`192.168.7.${i + 1}`)),
      ),
    );
    const subnets = new Set(leases.map((l) => formatIP4Net(l.subnet)));
    assert.equal(subnets.size, 20);
    const { kvs } = await client.range(`${PREFIX}/subnets/`);
    assert.equal(kvs.length, 20);
  } finally {
    client.close();
  }
});

Deno.test("EtcdSubnetManager.watchLeases() loses no event across partitions, restarts and compaction", async () => {
  await using etcd = await startEtcd();
  await using proxy = new TcpProxy({
    hostname: "127.0.0.1",
    port: Number(new URL(etcd.endpoint).port),
  });
  const direct = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  const viaProxy = await EtcdClient.create({ endpoints: [proxy.endpoint] });
  const abort = new AbortController();
  // A lease is known by subnet and owner: a deleted lease's subnet may be handed out again.
  const has = (w: ReturnType<typeof watchInto>, lease: Lease) =>
    w.watcher.leases.some((l) =>
      l.subnet.ip === lease.subnet.ip && l.attrs.publicIP === lease.attrs.publicIP
    );
  try {
    await direct.put(`${PREFIX}/config`, CONFIG);
    const w = watchInto(manager(viaProxy), abort.signal);
    const a = await manager(direct).acquireLease(attrs("192.168.9.1"));
    await eventually(() => has(w, a), 10_000, "live added event");

    // Partition: events written meanwhile arrive once the watch resumes from its revision.
    proxy.cut();
    const b = await manager(direct).acquireLease(attrs("192.168.9.2"));
    await direct.delete(`${PREFIX}/subnets/${formatIP4Net(a.subnet).replace("/", "-")}`);
    proxy.heal();
    await eventually(
      () => has(w, b) && !has(w, a),
      15_000,
      "resume after partition",
    );
    const removed = w.events.find((e) => e.type === "removed" && e.lease.subnet.ip === a.subnet.ip);
    assert.equal(removed?.lease.attrs.publicIP, parseIP4("192.168.9.1"), "removal carries attrs");

    // etcd itself restarts (same data dir): the watch reconnects and keeps going.
    await etcd.restart();
    const c = await manager(direct).acquireLease(attrs("192.168.9.3"));
    await eventually(() => has(w, c), 20_000, "event after etcd restart");

    // Compaction past the watch's revision while partitioned forces a re-list and a diff.
    proxy.cut();
    await direct.delete(`${PREFIX}/subnets/${formatIP4Net(b.subnet).replace("/", "-")}`);
    const d = await manager(direct).acquireLease(attrs("192.168.9.4"));
    await direct.compact(await direct.put(`${PREFIX}/unrelated`, "x"));
    proxy.heal();
    await eventually(
      () => has(w, d) && !has(w, b),
      20_000,
      "re-list after compaction",
    );
    assert.ok(w.results.filter((r) => r.snapshot).length >= 2, "a second snapshot was delivered");

    const e = await manager(direct).acquireLease(attrs("192.168.9.5"));
    await eventually(() => has(w, e), 10_000, "live event after compaction");
    abort.abort();
    await w.done;
  } finally {
    abort.abort();
    direct.close();
    viaProxy.close();
  }
});

Deno.test("EtcdSubnetManager.completeLease() renews on time and reports revocation", async () => {
  await using etcd = await startEtcd();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  const abort = new AbortController();
  try {
    await client.put(`${PREFIX}/config`, CONFIG);
    // Margin 1439 min: renew one minute into a 24 h lease. The injected clock jumps 2 minutes
    // after acquisition, so the renewal is due at once.
    let skew = 0;
    const m = manager(client, { renewMarginMinutes: 1439, now: () => Date.now() + skew });
    const lease = await m.acquireLease(attrs("192.168.11.1"));
    const key = `${PREFIX}/subnets/${formatIP4Net(lease.subnet).replace("/", "-")}`;
    const before = (await client.get(key)).kv!;
    skew = 120_000;
    const holding = m.completeLease(lease, { signal: abort.signal }).then(
      () => "resolved",
      (e) => e,
    );
    let after = before;
    await eventually(
      async () => {
        after = (await client.get(key)).kv!;
        return after.lease !== before.lease;
      },
      10_000,
      "the key moved to a fresh etcd lease",
    );
    assert.equal(after.value, before.value);
    assert.equal(await client.leaseTimeToLive(before.lease), -1, "the old etcd lease is revoked");

    await client.delete(key);
    const outcome = await holding;
    assert.ok(outcome instanceof LeaseRevokedError, `completeLease ended with ${outcome}`);
  } finally {
    abort.abort();
    client.close();
  }
});

Deno.test("EtcdSubnetManager logs an undecodable lease once and treats a bad overwrite as a removal", async () => {
  await using etcd = await startEtcd();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  const abort = new AbortController();
  const lines: string[] = [];
  const log = { ...silentLogger, warn: (m: string) => lines.push(m) };
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  try {
    await client.put(`${PREFIX}/config`, CONFIG);
    await client.put(`${PREFIX}/subnets/10.3.7.0-24`, `{"PublicIP":${deep}}`);
    await client.put(`${PREFIX}/subnets/1${"0".repeat(100_000)}`, "{}");
    const m = manager(client, { log });
    const w = watchInto(m, abort.signal);
    await eventually(() => w.results.length > 0, 10_000, "the first snapshot");
    assert.equal(lines.length, 2, lines.join("\n").slice(0, 2000));
    assert.match(lines[0], /^Ignoring lease "\/coreos\.com\/network\/subnets\/10\.3\.7\.0-24"/);
    assert.match(lines[1], /^Ignoring bad subnet node ".*"… \(100029 bytes\): /);
    for (const line of lines) assert.ok(line.length < 1000, `${line.length} characters`);

    // A good lease, then overwritten with garbage: it is removed, not kept stale.
    await client.put(`${PREFIX}/subnets/10.3.8.0-24`, '{"PublicIP":"192.168.12.8"}');
    await eventually(() => w.watcher.leases.length === 1, 10_000, "the good lease");
    assert.equal(w.watcher.leases[0].source, 'etcd key "/coreos.com/network/subnets/10.3.8.0-24"');
    await client.put(`${PREFIX}/subnets/10.3.8.0-24`, "{");
    await eventually(() => w.watcher.leases.length === 0, 10_000, "removed once garbled");
    assert.equal(lines.length, 3);

    // A second listing (as after compaction) logs none of them again.
    const again = watchInto(m, abort.signal);
    await eventually(() => again.results.length > 0, 10_000, "the re-list");
    assert.equal(lines.length, 3, lines.slice(3).join("\n").slice(0, 2000));
  } finally {
    abort.abort();
    client.close();
  }
});

const keyOf = (l: { subnet: Parameters<typeof formatIP4Net>[0] }) =>
  `${PREFIX}/subnets/${formatIP4Net(l.subnet).replace("/", "-")}`;

/**
 * A manager whose client reaches a fresh etcd through a `TcpProxy` (so its connections can die
 * silently), logging into `lines`; plus a direct client for the test's own writes.
 */
async function proxied(
  options: {
    client?: Partial<EtcdClientOptions>;
    manager?: Parameters<typeof manager>[1];
    logLevel?: number;
  } = {},
) {
  const etcd = await startEtcd();
  const proxy = new TcpProxy(etcd.endpoint);
  const lines: string[] = [];
  const log = createLogger({ level: options.logLevel ?? 0, write: (l) => lines.push(l) });
  const client = new EtcdClient({ endpoints: [proxy.endpoint], log, ...options.client });
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  await direct.put(`${PREFIX}/config`, CONFIG);
  const abort = new AbortController();
  return {
    etcd,
    proxy,
    direct,
    m: manager(client, { log, ...options.manager }),
    signal: abort.signal,
    stop: () => abort.abort(),
    /** Every log line, then only those matching `re`. */
    log: (re = /./) => lines.filter((l) => re.test(l)),
    watchers: () => etcd.metric("etcd_debugging_mvcc_watcher_total"),
    async [Symbol.asyncDispose]() {
      abort.abort();
      client.close();
      direct.close();
      await proxy[Symbol.asyncDispose]();
      await etcd.stop();
    },
  };
}

Deno.test("watchLeases() gets changes made after its connection died silently, within 60 s by default", async () => {
  await using p = await proxied();
  const w = watchInto(p.m, p.signal);
  const has = (ip: number) => w.watcher.leases.some((l) => l.subnet.ip === ip);
  const a = await manager(p.direct).acquireLease(attrs("192.168.12.1"));
  await eventually(() => has(a.subnet.ip), 10_000, "live added event");

  p.proxy.freeze();
  const opened = p.proxy.accepted;
  await p.direct.delete(keyOf(a));
  const b = await manager(p.direct).acquireLease(attrs("192.168.12.2"));
  const t0 = Date.now();
  await eventually(() => has(b.subnet.ip) && !has(a.subnet.ip), 60_000, "both changes");
  console.log(`  changes delivered ${Date.now() - t0} ms after they were made`);
  const restarts = p.log(/restarted/);
  assert.equal(restarts.length, 1, p.log().join(""));
  assert.match(
    restarts[0],
    /^I.*etcd watch prefix "\/coreos.com\/network\/subnets\/" restarted from revision \d+: it was silent for \d+s and missed changes up to revision \d+/,
  );
  assert.ok(p.proxy.accepted > opened, "on a new connection");
  assert.deepEqual(p.log(/interrupted/), []);
});

Deno.test("EtcdClient.watch() checks silent streams without restarting healthy ones", async (t) => {
  await using p = await proxied({ client: { watchCheckMs: 300 }, logLevel: 1 });
  const w = watchInto(p.m, p.signal);
  await eventually(() => w.results.length > 0, 5000, "the snapshot");
  await t.step("a quiet healthy watch keeps its stream and connections", async () => {
    // The first check opens the connection the checks then share.
    await new Promise((r) => setTimeout(r, 500));
    const opened = p.proxy.accepted;
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(p.log(/restarted/), []);
    assert.equal(p.proxy.accepted, opened, "no new connection");
  });
  await t.step("writes elsewhere in etcd restart it quietly, losing nothing", async () => {
    await p.direct.put("/elsewhere", "x");
    await eventually(() => p.log(/restarted from/).length > 0, 3000, "a restart");
    const a = await manager(p.direct).acquireLease(attrs("192.168.13.1"));
    await eventually(
      () => w.watcher.leases.some((l) => l.subnet.ip === a.subnet.ip),
      3000,
      "the next event",
    );
    assert.deepEqual(p.log(/missed changes/), []);
  });
});

Deno.test("completeLease() renews after its connections died silently", async () => {
  // Renewal due one minute into the 24 h lease; the clock jumps 58 s ahead after acquisition,
  // so it is due 2 s into completeLease(). No watch checks meanwhile: the renewal itself is to
  // meet the dead connection.
  let skew = 0;
  await using p = await proxied({
    client: { requestTimeoutMs: 1000, watchCheckMs: 60_000 },
    manager: { renewMarginMinutes: 1439, now: () => Date.now() + skew },
    logLevel: 1,
  });
  const lease = await p.m.acquireLease(attrs("192.168.14.1"));
  const before = (await p.direct.get(keyOf(lease))).kv!;
  skew = 58_000;
  const holding = p.m.completeLease(lease, { signal: p.signal });
  await eventually(async () => (await p.watchers()) === 1, 5000, "the own-lease watch");
  await p.m.getNetworkConfig(); // leaves an idle connection in the pool, which then dies
  p.proxy.freeze();
  await eventually(
    async () => (await p.direct.get(keyOf(lease))).kv?.lease !== before.lease,
    5000,
    "the key on a fresh etcd lease",
  );
  await eventually(() => p.log(/Lease renewed/).length > 0, 2000, "log line");
  assert.deepEqual(p.log(/Error renewing/), []);
  assert.equal(
    p.log(/failed for POST \/v3\/lease\/grant: no answer within 1000 ms \(trying again/).length,
    1,
  );
  p.stop();
  await holding;
});

Deno.test("completeLease() notices revocation after its own-lease watch died silently", async () => {
  await using p = await proxied({ client: { requestTimeoutMs: 1000, watchCheckMs: 500 } });
  const lease = await p.m.acquireLease(attrs("192.168.15.1"));
  const holding = p.m.completeLease(lease, { signal: p.signal }).then(() => "ended", (e) => e);
  // etcd has the watch; its answer needs a moment more to cross the proxy.
  await eventually(async () => (await p.watchers()) === 1, 5000, "the own-lease watch");
  await new Promise((r) => setTimeout(r, 200));
  p.proxy.freeze();
  await p.direct.delete(keyOf(lease));
  const t0 = Date.now();
  const outcome = await holding;
  assert.ok(outcome instanceof LeaseRevokedError, `completeLease ended with ${outcome}`);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  const restarts = p.log(/restarted/);
  assert.equal(restarts.length, 1, p.log().join(""));
  assert.match(restarts[0], /watch key ".*10\.3\.\d+\.0-24" restarted .* missed changes/);
});
