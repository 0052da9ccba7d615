/**
 * Fast unit tests of the etcd subnet manager against the in-memory etcd
 * (`test/fakes/etcd_kv.ts`), with virtual time where it sleeps. The same manager against a
 * real etcd: `test/etcd_manager_test.ts`.
 */
import assert from "node:assert/strict";
import { eventually } from "../../test/eventually.ts";
import { MemoryEtcd } from "../../test/fakes/etcd_kv.ts";
import { fakeTime } from "../../test/fake_time.ts";
import { type RecordingLogger, recordingLogger } from "../../test/recording_logger.ts";
import { createFlannelMetrics, Registry } from "../../util/metrics.ts";

/** The metric set every manager of these tests reports to, and its registry. */
const registry = new Registry();
const metrics = createFlannelMetrics(registry);
import { formatIP4Net, formatIP6Net, parseIP4, parseIP4Net, parseIP6 } from "../ip.ts";
import { LeaseWatcher } from "../lease_watcher.ts";
import { type Lease, LeaseRevokedError, type LeaseWatchResult } from "../mod.ts";
import { EtcdSubnetManager, type EtcdSubnetManagerOptions } from "./manager.ts";

const PREFIX = "/coreos.com/network";
const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
const DAY_MS = 86_400_000;

async function etcd(now?: () => number): Promise<MemoryEtcd> {
  const kv = new MemoryEtcd({ now });
  await kv.put(`${PREFIX}/config`, CONFIG);
  return kv;
}

function manager(kv: MemoryEtcd, extra: Partial<EtcdSubnetManagerOptions> = {}) {
  const log = recordingLogger();
  // random 0: the first free candidate, so tests know which subnet a node gets.
  const m = new EtcdSubnetManager(kv, {
    prefix: PREFIX,
    log,
    metrics,
    random: () => 0,
    ...extra,
  });
  return Object.assign(m, { log });
}

function attrs(ip: string) {
  return { publicIP: parseIP4(ip), backendType: "host-gw" };
}

function value(ip: string) {
  return `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`;
}

const keyOf = (subnet: string) => `${PREFIX}/subnets/${subnet.replace("/", "-")}`;
const leaseKey = (l: Lease) => keyOf(formatIP4Net(l.subnet));
const calls = (kv: MemoryEtcd, method: string) => kv.calls.filter((c) => c.method === method);

/** The value of one sample as `/metrics` shows it, e.g. `flanneld_x_total{result="success"}`. */
function sample(series: string): number {
  const line = registry.render().split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const RENEWED = 'flanneld_lease_renewals_total{result="success"}';
const RENEW_FAILED = 'flanneld_lease_renewals_total{result="error"}';

/** Collects watch results into a LeaseWatcher in the background. */
function watchInto(m: EtcdSubnetManager, signal: AbortSignal) {
  const watcher = new LeaseWatcher(undefined);
  const results: LeaseWatchResult[] = [];
  const done = (async () => {
    for await (const r of m.watchLeases({ signal })) {
      results.push(r);
      watcher.apply(r);
    }
  })();
  const has = (subnet: string) => watcher.leases.some((l) => formatIP4Net(l.subnet) === subnet);
  return { watcher, results, done, has };
}

/** Polls `cond` (the watch retries wait 100 ms of real time, so allow a few seconds). */
function until(cond: () => boolean, what: string): Promise<void> {
  return eventually(cond, 3000, what, 2);
}

function warnings(log: RecordingLogger): string[] {
  return log.lines.filter((l) => l.startsWith("W "));
}

Deno.test("acquireLease() writes flannel's bytes under a fresh 24 h etcd lease", async () => {
  const kv = await etcd(() => 1_000);
  const m = manager(kv, { now: () => 1_000 });
  const lease = await m.acquireLease(attrs("192.168.1.1"));
  const { kv: stored } = await kv.get(leaseKey(lease));
  assert.equal(stored?.value, value("192.168.1.1"));
  assert.equal(await kv.leaseTimeToLive(stored!.lease), 86_400);
  assert.equal(lease.expiration, 1_000 + DAY_MS);
  assert.ok(lease.subnet.ip >= parseIP4("10.3.1.0") && lease.subnet.ip <= parseIP4("10.3.25.0"));
});

Deno.test("acquireLease() reusing its public IP's lease moves it to a new etcd lease and revokes the old", async () => {
  const kv = await etcd();
  const old = await kv.grantLease(86_400);
  await kv.put(keyOf("10.3.7.0/24"), value("192.168.1.50"), { lease: old.id });
  const m = manager(kv);
  const lease = await m.acquireLease(attrs("192.168.1.50"));
  assert.equal(formatIP4Net(lease.subnet), "10.3.7.0/24");
  const { kv: stored } = await kv.get(keyOf("10.3.7.0/24"));
  assert.notEqual(stored?.lease, old.id);
  assert.equal(await kv.leaseTimeToLive(stored!.lease), 86_400);
  assert.equal(await kv.leaseTimeToLive(old.id), -1, "the old etcd lease is revoked");
  assert.deepEqual(calls(kv, "revokeLease").map((c) => c.args[0]), [old.id]);
  assert.ok(m.log.lines.includes(
    "I Found lease (ip: 10.3.7.0/24 ipv6: ::/0) for current IP (192.168.1.50), reusing",
  ));
});

Deno.test("acquireLease() reuses a reservation and keeps it a reservation", async () => {
  const kv = await etcd();
  await kv.put(keyOf("10.3.20.0/24"), '{"PublicIP":"192.168.3.20","PublicIPv6":null}');
  const lease = await manager(kv).acquireLease(attrs("192.168.3.20"));
  assert.equal(formatIP4Net(lease.subnet), "10.3.20.0/24");
  assert.equal(lease.expiration, undefined);
  const { kv: stored } = await kv.get(keyOf("10.3.20.0/24"));
  assert.deepEqual([stored?.lease, stored?.value], ["0", value("192.168.3.20")]);
  // The etcd lease requested along with the listing is not needed for a reservation: revoked.
  const revoked = calls(kv, "revokeLease").map((c) => c.args[0] as string);
  assert.equal(revoked.length, calls(kv, "grantLease").length);
  for (const id of revoked) assert.equal(await kv.leaseTimeToLive(id), -1);
});

Deno.test("acquireLease() asks for config, listing and etcd lease at once, and leaves no etcd lease it did not use", async (t) => {
  const granted = (kv: MemoryEtcd) => calls(kv, "grantLease").length;
  /** Every etcd lease ever granted by `kv`, recorded as it answers. */
  const grants = new WeakMap<MemoryEtcd, string[]>();
  const recording = (kv: MemoryEtcd) => {
    const grant = kv.grantLease.bind(kv);
    const ids: string[] = [];
    grants.set(kv, ids);
    kv.grantLease = async (ttl, opts) => {
      const g = await grant(ttl, opts);
      ids.push(g.id);
      return g;
    };
    return kv;
  };
  const alive = async (kv: MemoryEtcd) => {
    let n = 0;
    for (const id of grants.get(kv)!) if (await kv.leaseTimeToLive(id) > 0) n++;
    return n;
  };
  await t.step("a new subnet: one etcd lease, holding the key", async () => {
    const kv = await etcd();
    const lease = await manager(kv).acquireLease(attrs("192.168.7.1"));
    const { kv: stored } = await kv.get(keyOf(formatIP4Net(lease.subnet)));
    assert.equal(granted(kv), 1);
    assert.equal(await kv.leaseTimeToLive(stored!.lease), 86_400);
    assert.deepEqual(calls(kv, "revokeLease"), []);
  });
  await t.step("the listing fails: the etcd lease granted with it is revoked", async () => {
    const kv = recording(await etcd());
    kv.failNext("range");
    await assert.rejects(manager(kv).acquireLease(attrs("192.168.7.2")), /unavailable/);
    assert.equal(granted(kv), 1);
    assert.equal(await alive(kv), 0);
  });
  await t.step("the config is missing: the etcd lease is revoked", async () => {
    const kv = recording(new MemoryEtcd());
    await assert.rejects(manager(kv).acquireLease(attrs("192.168.7.3")), /config not found/);
    assert.equal(granted(kv), 1);
    assert.equal(await alive(kv), 0);
  });
  await t.step(
    "a lost creation race: that pass's etcd lease is revoked, the retry's holds",
    async () => {
      const kv = recording(await etcd());
      const m = manager(kv);
      // Another node creates the subnet the first pass will pick, between its listing and its txn.
      const original = kv.createIfAbsent.bind(kv);
      let raced = false;
      kv.createIfAbsent = async (key, value, opts) => {
        if (!raced) {
          raced = true;
          await original(key, '{"PublicIP":"192.168.7.99","PublicIPv6":null}');
        }
        return original(key, value, opts);
      };
      const lease = await m.acquireLease(attrs("192.168.7.4"));
      assert.equal(granted(kv), 2);
      assert.equal(calls(kv, "revokeLease").length, 1);
      assert.equal(await alive(kv), 1, "only the etcd lease holding our key");
      assert.equal(lease.attrs.publicIP, attrs("192.168.7.4").publicIP);
    },
  );
});

Deno.test("acquireLease() takes the previous subnet from subnet.env when it is free", async () => {
  const kv = await etcd();
  const prev = parseIP4Net("10.3.9.0/24");
  const lease = await manager(kv, { previousSubnet: prev }).acquireLease(attrs("192.168.2.6"));
  assert.deepEqual(lease.subnet, prev);
  const other = await manager(kv, { previousSubnet: prev }).acquireLease(attrs("192.168.2.7"));
  assert.notDeepEqual(other.subnet, prev, "taken by now");
});

Deno.test("acquireLease() in dual stack: of two nodes that took one IPv4 subnet with different IPv6 subnets, the later yields", async () => {
  // The two keys differ (`10.3.1.0-24&fd00:3::-64`, `10.3.1.0-24&fd00:3:0:32::-64`), so the
  // create-if-absent transaction cannot tell; the creation revisions do.
  const kv = new MemoryEtcd();
  await kv.put(
    `${PREFIX}/config`,
    '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0", ' +
      '"EnableIPv6": true, "IPv6Network": "fd00:3::/56", "IPv6SubnetLen": 64 }',
  );
  // Both take the first free IPv4 subnet; b a different IPv6 one (the 51st free).
  let draws = 0;
  const a = manager(kv);
  const b = manager(kv, { random: () => (draws++ % 2 === 0 ? 0 : 0.5) });
  const dual = (i: number) => ({ ...attrs(`192.168.5.${i}`), publicIPv6: parseIP6(`fd99::${i}`) });
  const leases = await Promise.all([a.acquireLease(dual(1)), b.acquireLease(dual(2))]);
  const v4 = leases.map((l) => formatIP4Net(l.subnet));
  const v6 = leases.map((l) => formatIP6Net(l.ipv6Subnet!));
  assert.notEqual(v4[0], v4[1], `IPv4 subnets ${v4.join(", ")}`);
  assert.notEqual(v6[0], v6[1], `IPv6 subnets ${v6.join(", ")}`);
  const { kvs } = await kv.range(`${PREFIX}/subnets/`);
  assert.equal(kvs.length, 2, kvs.map((k) => k.key).join(", "));
  assert.ok(
    [a, b].some((m) => m.log.lines.some((l) => l.includes("Subnet collision with another node"))),
  );
  // The earlier-created key stays and the later one is the one deleted (the fake runs calls in
  // order, so the first create is the lower revision).
  const [first, second] = calls(kv, "createIfAbsent").map((c) => c.args[0] as string);
  const keys = kvs.map((k) => k.key);
  assert.ok(keys.includes(first), `the earlier key ${first} stays: ${keys.join(", ")}`);
  assert.ok(!keys.includes(second), `the later key ${second} yields: ${keys.join(", ")}`);
  assert.deepEqual(calls(kv, "delete").map((c) => c.args[0]), [second]);
});

Deno.test("bad keys and values are skipped, each with a warning naming it", async () => {
  const kv = await etcd();
  await kv.put(`${PREFIX}/subnets/garbage`, "x");
  await kv.put(keyOf("10.3.21.0/24"), "{not json");
  await kv.put(keyOf("10.3.22.0/24"), value("192.168.3.22"));
  const m = manager(kv);
  const lease = await m.acquireLease(attrs("192.168.3.99"));
  assert.equal(formatIP4Net(lease.subnet), "10.3.1.0/24");
  assert.deepEqual(warnings(m.log).map((l) => l.replace(/: .*/, "")), [
    `W Ignoring lease "${keyOf("10.3.21.0/24")}" with a bad value`,
    `W Ignoring bad subnet node "${PREFIX}/subnets/garbage"`,
  ]);

  const ac = new AbortController();
  const w = watchInto(m, ac.signal);
  try {
    await until(() => w.has(formatIP4Net(lease.subnet)), "the own lease");
    assert.deepEqual(
      w.watcher.leases.map((l) => formatIP4Net(l.subnet)).sort(),
      [formatIP4Net(lease.subnet), "10.3.22.0/24"].sort(),
    );
    await kv.put(keyOf("10.3.23.0/24"), "[]");
    await kv.put(keyOf("10.3.24.0/24"), value("192.168.3.24"));
    await until(() => w.has("10.3.24.0/24"), "the good lease after the bad one");
    assert.ok(!w.has("10.3.23.0/24"));
    assert.match(warnings(m.log).at(-1)!, /^W Ignoring lease ".*10\.3\.23\.0-24" with a bad value/);
  } finally {
    ac.abort();
    await w.done;
  }
});

Deno.test("watchLeases() starts from the acquisition's listing and misses nothing since", async () => {
  let now = 0;
  const kv = await etcd();
  const m = manager(kv, { now: () => now });
  const own = await m.acquireLease(attrs("192.168.4.1"));
  assert.equal(calls(kv, "range").length, 1);
  await kv.put(keyOf("10.3.24.0/24"), value("192.168.4.2")); // another node, meanwhile
  const ac = new AbortController();
  const w = watchInto(m, ac.signal);
  try {
    await until(() => w.has("10.3.24.0/24"), "the lease written after the listing");
    assert.ok(w.has(formatIP4Net(own.subnet)), "the own lease, created after the listing");
    assert.equal(calls(kv, "range").length, 1, "no second listing");
    assert.deepEqual(w.results[0].snapshot, [], "the listing made before the own lease existed");
  } finally {
    ac.abort();
    await w.done;
  }
  // A listing older than 30 s is not reused (nor a used one): the next watch lists again.
  await m.acquireLease(attrs("192.168.4.1"));
  now += 30_001;
  const ac2 = new AbortController();
  const w2 = watchInto(m, ac2.signal);
  await until(() => w2.results.length === 1, "snapshot");
  ac2.abort();
  await w2.done;
  assert.equal(calls(kv, "range").length, 3);
});

Deno.test("watchLeases() resumes after a broken stream and re-lists after compaction", async () => {
  const kv = await etcd();
  const m = manager(kv);
  await kv.put(keyOf("10.3.2.0/24"), value("192.168.5.2"));
  const reconnects = sample('flanneld_watch_reconnects_total{source="etcd"}');
  const ac = new AbortController();
  const w = watchInto(m, ac.signal);
  try {
    await until(() => w.results.length === 1 && kv.watchCount === 1, "watching");
    kv.breakWatches();
    await kv.put(keyOf("10.3.3.0/24"), value("192.168.5.3"));
    await kv.delete(keyOf("10.3.2.0/24"));
    await until(() => w.has("10.3.3.0/24") && !w.has("10.3.2.0/24"), "resumed");
    assert.equal(w.results.filter((r) => r.snapshot).length, 1, "resumed, not re-listed");
    assert.equal(sample('flanneld_watch_reconnects_total{source="etcd"}'), reconnects + 1);

    kv.breakWatches();
    await kv.delete(keyOf("10.3.3.0/24"));
    await kv.put(keyOf("10.3.4.0/24"), value("192.168.5.4"));
    kv.compact();
    await until(() => w.has("10.3.4.0/24") && !w.has("10.3.3.0/24"), "re-listed");
    assert.equal(w.results.filter((r) => r.snapshot).length, 2);
    assert.ok(warnings(m.log).some((l) => /fell behind compaction .*re-listing/.test(l)));
  } finally {
    ac.abort();
    await w.done;
  }
});

/** A manager holding a lease that is due for renewal one minute after acquisition. */
async function holding(clock: { readonly now: number }) {
  const kv = await etcd(() => clock.now);
  const m = manager(kv, { renewMarginMinutes: 1439, now: () => clock.now });
  const lease = await m.acquireLease(attrs("192.168.6.1"));
  const key = leaseKey(lease);
  const first = (await kv.get(key)).kv!.lease;
  const ac = new AbortController();
  const outcome = m.completeLease(lease, { signal: ac.signal }).then(() => "resolved", (e) => e);
  const etcdLease = async () => (await kv.get(key)).kv?.lease;
  return { kv, m, key, first, ac, outcome, etcdLease };
}

Deno.test("completeLease() renews on time, revokes the old etcd lease and counts it", async () => {
  using clock = fakeTime();
  const h = await holding(clock);
  const renewed = sample(RENEWED);
  await clock.tickAsync(59_000);
  assert.equal(await h.etcdLease(), h.first, "not yet");
  await clock.tickAsync(1_000);
  const next = await h.etcdLease();
  assert.notEqual(next, h.first, "moved to a fresh etcd lease");
  assert.equal(await h.kv.leaseTimeToLive(next!), 86_400);
  assert.equal(await h.kv.leaseTimeToLive(h.first), -1, "the old etcd lease is revoked");
  assert.equal((await h.kv.get(h.key)).kv?.value, value("192.168.6.1"));
  assert.equal(sample(RENEWED), renewed + 1);
  assert.ok(h.m.log.lines.includes("I Waiting for 1m0s to renew lease"));
  assert.ok(h.m.log.lines.includes(
    `I Lease renewed, new expiration: ${new Date(clock.now + DAY_MS).toISOString()}`,
  ));
  h.ac.abort();
  assert.equal(await h.outcome, "resolved");
});

Deno.test("completeLease() retries a failed renewal a minute later", async () => {
  using clock = fakeTime();
  const h = await holding(clock);
  const renewed = sample(RENEWED), failed = sample(RENEW_FAILED);
  h.kv.failNext("grantLease");
  await clock.tickAsync(60_000);
  assert.equal(await h.etcdLease(), h.first);
  assert.equal(sample(RENEW_FAILED), failed + 1);
  assert.match(h.m.log.lines.at(-2)!, /^E Error renewing lease \(trying again in 1 min\): /);
  assert.equal(h.m.log.lines.at(-1), "I Waiting for 1m0s to renew lease");
  await clock.tickAsync(59_000);
  assert.equal(await h.etcdLease(), h.first, "not before the minute is up");
  await clock.tickAsync(1_000);
  assert.notEqual(await h.etcdLease(), h.first, "renewed on the retry");
  assert.equal(sample(RENEWED), renewed + 1);
  h.ac.abort();
  assert.equal(await h.outcome, "resolved");
});

Deno.test("completeLease() ends with LeaseRevokedError when the own key is deleted", async () => {
  using clock = fakeTime();
  const h = await holding(clock);
  await clock.tickAsync(10);
  await h.kv.delete(h.key);
  await clock.tickAsync(10);
  const outcome = await h.outcome;
  assert.ok(outcome instanceof LeaseRevokedError, `ended with ${outcome}`);
  assert.equal(outcome.message, "Lease has been revoked. Shutting down daemon.");
});
