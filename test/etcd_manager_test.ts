/**
 * The etcd subnet manager against a real etcd (Debian's etcd-server, started on a free loopback
 * port with a temporary data dir): acquisition, reuse, races, byte-exact values, watches across
 * etcd restarts and compaction, renewal. The fast unit tests of the same manager, against an
 * in-memory etcd: `subnet/etcd/manager_test.ts`.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { EtcdSubnetManager } from "../subnet/etcd/manager.ts";
import { formatIP4Net, parseIP4, parseIP4Net } from "../subnet/ip.ts";
import { LeaseWatcher } from "../subnet/lease_watcher.ts";
import { type LeaseEvent, LeaseRevokedError, type LeaseWatchResult } from "../subnet/mod.ts";
import { silentLogger } from "../util/log.ts";
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
  const has = (w: ReturnType<typeof watchInto>, ip: number) =>
    w.watcher.leases.some((l) => l.subnet.ip === ip);
  try {
    await direct.put(`${PREFIX}/config`, CONFIG);
    const w = watchInto(manager(viaProxy), abort.signal);
    const a = await manager(direct).acquireLease(attrs("192.168.9.1"));
    await eventually(() => has(w, a.subnet.ip), 10_000, "live added event");

    // Partition: events written meanwhile arrive once the watch resumes from its revision.
    proxy.cut();
    const b = await manager(direct).acquireLease(attrs("192.168.9.2"));
    await direct.delete(`${PREFIX}/subnets/${formatIP4Net(a.subnet).replace("/", "-")}`);
    proxy.heal();
    await eventually(
      () => has(w, b.subnet.ip) && !has(w, a.subnet.ip),
      15_000,
      "resume after partition",
    );
    const removed = w.events.find((e) => e.type === "removed" && e.lease.subnet.ip === a.subnet.ip);
    assert.equal(removed?.lease.attrs.publicIP, parseIP4("192.168.9.1"), "removal carries attrs");

    // etcd itself restarts (same data dir): the watch reconnects and keeps going.
    await etcd.restart();
    const c = await manager(direct).acquireLease(attrs("192.168.9.3"));
    await eventually(() => has(w, c.subnet.ip), 20_000, "event after etcd restart");

    // Compaction past the watch's revision while partitioned forces a re-list and a diff.
    proxy.cut();
    await direct.delete(`${PREFIX}/subnets/${formatIP4Net(b.subnet).replace("/", "-")}`);
    const d = await manager(direct).acquireLease(attrs("192.168.9.4"));
    await direct.compact(await direct.put(`${PREFIX}/unrelated`, "x"));
    proxy.heal();
    await eventually(
      () => has(w, d.subnet.ip) && !has(w, b.subnet.ip),
      20_000,
      "re-list after compaction",
    );
    assert.ok(w.results.filter((r) => r.snapshot).length >= 2, "a second snapshot was delivered");

    const e = await manager(direct).acquireLease(attrs("192.168.9.5"));
    await eventually(() => has(w, e.subnet.ip), 10_000, "live event after compaction");
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
