import assert from "node:assert/strict";
import type { EventGroup, KernelEvent, Netlink } from "../kernel/netlink/types.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { formatIP4, parseIP4, parseIP4Net } from "../subnet/ip.ts";
import type { Lease } from "../subnet/mod.ts";
import { createLogger } from "../util/log.ts";
import { createFlannelMetrics, type FlannelMetrics, Registry } from "../util/metrics.ts";
import { eventually } from "../test/eventually.ts";
import { FakeSubnetManager } from "../test/fakes/subnet_manager.ts";
import { LeaseIntake } from "./_lease_intake.ts";
import { RECONCILE_INTERVAL_MS } from "./mod.ts";
import {
  type Concern,
  type Pass,
  ReconcileLoop,
  type ReconcilePolicy,
  type ReconcileStats,
} from "./reconcile_loop.ts";

const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"test"}}');
const own = lease("10.5.1.0/24", "192.168.1.10");

function lease(subnet: string, publicIP: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(publicIP), backendType: "test" },
  };
}

/** A gate a policy call waits at until the test opens it. */
function gate() {
  let open!: () => void;
  const closed = new Promise<void>((resolve) => (open = resolve));
  return { closed, open };
}

/**
 * A policy that records what the loop asks of it. The desired object of a lease is its public
 * IP; sweeps can be held at a gate, made to fail a peer, or made to throw.
 */
class RecordingPolicy implements ReconcilePolicy<string> {
  readonly kind = "test";
  readonly name = "Test";
  readonly eventGroups: readonly EventGroup[] = ["ipv4-route"];
  readonly calls: string[] = [];
  readonly events: KernelEvent[] = [];
  hold?: Promise<void>;
  failing = 0;
  throwing = 0;
  /** What `concerns` answers for a route event, by destination. */
  answers = new Map<string, Concern>();

  desire(l: Lease): string {
    return formatIP4(l.attrs.publicIP);
  }

  apply(key: string, want: string, pass: Pass<string>): Promise<void> {
    this.calls.push(`apply ${key} ${want}`);
    pass.wrote();
    pass.ok(key);
    return Promise.resolve();
  }

  remove(key: string, old: string): Promise<void> {
    this.calls.push(`remove ${key} ${old}`);
    return Promise.resolve();
  }

  async sweep(pass: Pass<string>): Promise<void> {
    this.calls.push(`sweep [${[...pass.desired.keys()].join(" ")}]${pass.synced ? " synced" : ""}`);
    await this.hold;
    if (this.throwing > 0) {
      this.throwing--;
      throw new Error("the dump failed");
    }
    for (const key of pass.desired.keys()) {
      if (this.failing > 0) pass.fail(key, `cannot program ${key}`);
      else pass.ok(key);
    }
    if (this.failing > 0) this.failing--;
  }

  concerns(event: KernelEvent): Concern | undefined {
    this.events.push(event);
    return event.kind === "route" ? this.answers.get(event.route.dst) : undefined;
  }

  sweeps(): number {
    return this.calls.filter((c) => c.startsWith("sweep")).length;
  }
}

/** Kernel notifications the test pushes. */
class Events implements Pick<Netlink, "subscribe"> {
  groups?: readonly EventGroup[];
  #queue: KernelEvent[] = [];
  #wake?: () => void;

  push(event: KernelEvent): void {
    this.#queue.push(event);
    this.#wake?.();
  }

  async *subscribe(
    groups: readonly EventGroup[],
    options?: { signal?: AbortSignal },
  ): AsyncIterable<KernelEvent> {
    this.groups = groups;
    const signal = options?.signal;
    const wake = () => this.#wake?.();
    signal?.addEventListener("abort", wake);
    try {
      while (!signal?.aborted) {
        const next = this.#queue.shift();
        if (next) yield next;
        else await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      signal?.removeEventListener("abort", wake);
    }
  }
}

/** A clock the test advances: every wait the loop starts is listed until the test ends it. */
class ManualClock {
  readonly waits: Array<{ ms: number; end: (slept: boolean) => void }> = [];

  sleep = (ms: number, signal?: AbortSignal): Promise<boolean> => {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wait = { ms, end: resolve };
      this.waits.push(wait);
      signal?.addEventListener("abort", () => resolve(false), { once: true });
    });
  };

  /** The durations being waited for, in the order the waits began. */
  pending(): number[] {
    return this.waits.map((w) => w.ms);
  }

  /** Ends the first wait of `ms`. */
  elapse(ms: number): void {
    const i = this.waits.findIndex((w) => w.ms === ms);
    assert.notEqual(i, -1, `nothing waits ${ms} ms (waits: ${this.pending()})`);
    this.waits.splice(i, 1)[0].end(true);
  }
}

function value(
  m: FlannelMetrics,
  what: "runs" | "errors" | "restored" | "overflows",
): number {
  const labels = { kind: "test" };
  if (what === "runs") return m.reconcileRuns.get(labels);
  if (what === "errors") return m.reconcileErrors.get(labels);
  if (what === "overflows") return m.kernelEventOverflows.get(labels);
  return m.kernelObjectsRestored.get(labels);
}

/** A running loop with the recording policy, a fake lease watch, fake events and clock. */
function setup(policy = new RecordingPolicy()) {
  const lines: string[] = [];
  const log = createLogger({
    level: 2,
    write: (l) => lines.push(l.slice(l.indexOf("] ") + 2).trimEnd()),
  });
  const manager = new FakeSubnetManager(config, own);
  const events = new Events();
  const clock = new ManualClock();
  const metrics = createFlannelMetrics(new Registry());
  const passes: ReconcileStats[] = [];
  const loop = new ReconcileLoop<string>({
    manager,
    intake: new LeaseIntake({ config, own, backendTypes: ["test"], log }),
    netlink: events,
    log,
    metrics,
    policy,
    lease: own,
    mtu: 1500,
    sleep: clock.sleep,
    onReconciled: (s) => passes.push(s),
  });
  const abort = new AbortController();
  const running = loop.run({ signal: abort.signal });
  return {
    policy,
    loop,
    manager,
    events,
    clock,
    metrics,
    lines,
    passes,
    /** Waits until `n` passes in all have run. */
    passed: (n: number) => eventually(() => passes.length >= n, 2000, `${n} passes`, 1),
    until: (cond: () => boolean, what: string) => eventually(cond, 2000, what, 1),
    async [Symbol.asyncDispose]() {
      abort.abort();
      await running;
    },
  };
}

const A = () => lease("10.5.2.0/24", "192.168.1.12");
const B = () => lease("10.5.3.0/24", "192.168.1.13");

Deno.test("ReconcileLoop sweeps after a listing and writes the changes of a batch alone", async () => {
  await using s = setup();
  s.manager.push({ snapshot: [A(), B()] });
  await s.passed(1);
  s.manager.push({
    events: [
      { type: "removed", lease: A() },
      { type: "added", lease: lease("10.5.3.0/24", "192.168.1.33") },
    ],
  });
  await s.passed(2);
  assert.deepEqual(s.policy.calls, [
    "sweep [10.5.2.0/24 10.5.3.0/24] synced",
    "remove 10.5.2.0/24 192.168.1.12",
    "apply 10.5.3.0/24 192.168.1.33",
  ]);
  assert.deepEqual([...s.loop.desired], [["10.5.3.0/24", "192.168.1.33"]]);
  assert.ok(s.lines.includes("Subnet removed: 10.5.2.0/24"));
  assert.equal(s.metrics.peersKnown.get({ family: "ipv4" }), 1);
  assert.equal(value(s.metrics, "runs"), 2);
});

Deno.test("ReconcileLoop runs one more sweep for every request made during a sweep", async () => {
  await using s = setup();
  const held = gate();
  s.policy.hold = held.closed;
  const first = s.loop.reconcile();
  await s.until(() => s.policy.sweeps() === 1, "the first sweep");
  const during = [s.loop.reconcile(), s.loop.reconcile(), s.loop.reconcile()];
  let settled = false;
  void Promise.all(during).then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(settled, false, "the requests wait for a pass that starts after them");
  held.open();
  await Promise.all([first, ...during]);
  assert.equal(s.policy.sweeps(), 2, s.policy.calls.join("\n"));
});

Deno.test("ReconcileLoop coalesces kernel events that arrive during a pass", async () => {
  await using s = setup();
  s.manager.push({ snapshot: [A(), B()] });
  await s.passed(1);
  s.policy.answers.set("10.5.2.0/24", {
    what: "Route to 10.5.2.0/24 was deleted",
    key: "10.5.2.0/24",
  });
  s.policy.answers.set("10.5.3.0/24", { key: "10.5.3.0/24" });
  const held = gate();
  s.policy.hold = held.closed;
  const sweep = s.loop.reconcile();
  await s.until(() => s.policy.sweeps() === 2, "a sweep under way");
  const route = (dst: string): KernelEvent => ({ kind: "route", op: "del", route: { dst } });
  for (const dst of ["10.5.2.0/24", "10.5.3.0/24", "10.5.2.0/24", "10.5.9.0/24"]) {
    s.events.push(route(dst));
  }
  await s.until(() => s.policy.events.length === 4, "the events seen");
  held.open();
  await sweep;
  await s.passed(3);
  assert.deepEqual(s.policy.calls.slice(2), [
    "apply 10.5.2.0/24 192.168.1.12",
    "apply 10.5.3.0/24 192.168.1.13",
  ]);
  assert.equal(s.policy.sweeps(), 2, "a key to write again needs no sweep");
  assert.equal(s.lines.filter((l) => l.endsWith("by someone else, restoring")).length, 2);
  assert.equal(value(s.metrics, "restored"), 2);
  assert.deepEqual(s.events.groups, ["ipv4-route"]);
});

Deno.test("ReconcileLoop answers lost notifications and keyless concerns with a sweep", async (t) => {
  await using s = setup();
  s.manager.push({ snapshot: [A()] });
  await s.passed(1);
  await t.step(
    "resync (overflow): one full sweep, counted, never shown to the policy",
    async () => {
      assert.equal(value(s.metrics, "overflows"), 0);
      s.events.push({ kind: "resync" });
      await s.passed(2);
      assert.equal(s.policy.sweeps(), 2);
      assert.deepEqual(s.policy.events, []);
      assert.equal(value(s.metrics, "overflows"), 1);
    },
  );
  await t.step("a concern without a key: a full sweep, not logged", async () => {
    s.policy.answers.set("10.5.2.0/24", {});
    s.events.push({ kind: "route", op: "new", route: { dst: "10.5.2.0/24" } });
    await s.passed(3);
    assert.equal(s.policy.sweeps(), 3);
    assert.ok(!s.lines.some((l) => l.includes("restoring")));
    assert.equal(value(s.metrics, "restored"), 0);
    assert.equal(value(s.metrics, "overflows"), 1, "no overflow: not counted");
  });
  await t.step("no concern: nothing", async () => {
    s.events.push({ kind: "route", op: "del", route: { dst: "10.5.9.0/24" } });
    await s.until(() => s.policy.events.length === 2, "the event seen");
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.passes.length, 3);
  });
});

Deno.test("ReconcileLoop sweeps on its timer, every 10 s by default", async () => {
  await using s = setup();
  await s.until(() => s.clock.pending().includes(RECONCILE_INTERVAL_MS), "the timer");
  assert.equal(RECONCILE_INTERVAL_MS, 10_000);
  for (let i = 1; i <= 3; i++) {
    s.clock.elapse(RECONCILE_INTERVAL_MS);
    await s.passed(i);
    await s.until(() => s.clock.pending().includes(RECONCILE_INTERVAL_MS), "the next period");
  }
  assert.deepEqual(
    s.policy.calls,
    ["sweep []", "sweep []", "sweep []"],
    "not synced: no listing yet",
  );
});

Deno.test("ReconcileLoop retries a failed pass with backoff, one retry at a time", async () => {
  await using s = setup();
  s.manager.push({ snapshot: [A(), B()] });
  await s.passed(1);
  const retries = () => s.clock.pending().filter((ms) => ms !== RECONCILE_INTERVAL_MS);

  s.policy.failing = 3;
  await s.loop.reconcile();
  assert.deepEqual(retries(), [100]);
  assert.equal(s.metrics.peersProgrammed.get({ family: "ipv4" }), 0);
  assert.equal(value(s.metrics, "errors"), 2, "one per peer that failed");
  await s.loop.reconcile(); // fails too, while the retry waits: no second retry
  assert.deepEqual(retries(), [100]);
  s.clock.elapse(100);
  await s.until(() => retries().length === 1 && retries()[0] === 200, "the doubled wait");
  assert.equal(s.policy.sweeps(), 4);
  s.clock.elapse(200);
  await s.until(() => s.policy.sweeps() === 5, "the retry that succeeds");
  await s.passed(5);
  assert.deepEqual(retries(), [], "no retry after a pass that succeeded");
  assert.equal(s.metrics.peersProgrammed.get({ family: "ipv4" }), 2);
  const logged = s.lines.filter((l) => l.startsWith("cannot program"));
  assert.deepEqual(logged, ["cannot program 10.5.2.0/24", "cannot program 10.5.3.0/24"]);

  s.policy.failing = 1;
  await s.loop.reconcile();
  assert.deepEqual(retries(), [100], "backoff starts again after a success");
});

Deno.test("ReconcileLoop counts a sweep that throws, logs it once while it repeats, retries", async () => {
  await using s = setup();
  s.manager.push({ snapshot: [A()] });
  await s.passed(1);
  s.policy.throwing = 2;
  await s.loop.reconcile();
  assert.equal(s.passes.length, 1, "no stats for a pass that threw");
  s.clock.elapse(100);
  await s.until(() => s.clock.pending().includes(200), "the second retry");
  s.clock.elapse(200);
  await s.passed(2);
  assert.deepEqual(s.lines.filter((l) => l.includes("failed")), [
    "Test reconciliation failed: the dump failed",
  ]);
  assert.equal(value(s.metrics, "errors"), 2);
  assert.equal(value(s.metrics, "runs"), 4);
  assert.equal(s.metrics.reconcileDuration.count({ kind: "test" }), 4);
});

Deno.test("ReconcileLoop sweeps for every change when the policy cannot write one alone", async () => {
  const policy = new RecordingPolicy();
  Object.assign(policy, { apply: undefined, remove: undefined });
  await using s = setup(policy);
  s.manager.push({ events: [{ type: "added", lease: A() }] });
  await s.passed(1);
  s.manager.push({ snapshot: [B()] });
  await s.passed(2);
  s.manager.push({ events: [] });
  await s.passed(3);
  assert.deepEqual(s.policy.calls, [
    "sweep [10.5.2.0/24]",
    "sweep [10.5.3.0/24] synced",
    "sweep [10.5.3.0/24] synced",
  ]);
});
