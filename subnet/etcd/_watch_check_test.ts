import assert from "node:assert/strict";
import { silentLogger } from "../../util/log.ts";
import { type CheckedWatch, type KeyState, WatchChecker } from "./_watch_check.ts";

/** A checker on a fake clock and store; `watch()` adds a watch that records its restarts. */
function setup(store: Map<string, KeyState>) {
  let now = 100_000;
  const probes: string[] = [];
  const removers: (() => void)[] = [];
  const closed = new AbortController();
  const checker = new WatchChecker({
    everyMs: 20_000,
    graceMs: 0,
    log: silentLogger,
    closed: closed.signal,
    now: () => now,
    probe: (key) => {
      probes.push(key);
      const state = store.get(key);
      return state ? Promise.resolve(state) : Promise.reject(new Error("etcd is down"));
    },
  });
  const watch = (key: string, single: boolean, covered: bigint, present?: boolean) => {
    const restarts: bigint[] = [];
    const w: CheckedWatch = {
      key,
      single,
      heardAt: now,
      covered,
      present,
      restart: (why) => restarts.push(why.revision),
    };
    removers.push(checker.add(w));
    return { w, restarts };
  };
  return {
    checker,
    probes,
    watch,
    advance: (ms: number) => now += ms,
    [Symbol.dispose]: () => {
      for (const remove of removers) remove();
      closed.abort();
    },
  };
}

Deno.test("WatchChecker.check() restarts only watches that missed something", async (t) => {
  await t.step("a prefix watch behind etcd's revision", async () => {
    using s = setup(new Map([["/p/", { revision: 12n }]]));
    const behind = s.watch("/p/", false, 10n);
    const current = s.watch("/p/", false, 12n);
    s.advance(10_000);
    await s.checker.check();
    assert.deepEqual(behind.restarts, [12n]);
    assert.deepEqual(current.restarts, []);
    assert.deepEqual(s.probes, ["/p/"], "one probe for both");
  });
  await t.step("watches that spoke within half the period are not checked", async () => {
    using s = setup(new Map([["/p/", { revision: 12n }]]));
    const w = s.watch("/p/", false, 10n);
    s.advance(9_999);
    await s.checker.check();
    assert.deepEqual(w.restarts, []);
    assert.deepEqual(s.probes, []);
  });
  await t.step("a key watch: by the key's mod revision, not etcd's", async () => {
    using s = setup(new Map([["/k", { revision: 50n, modRevision: 7n }]]));
    const fine = s.watch("/k", true, 9n);
    const behind = s.watch("/k", true, 6n);
    const prefix = s.watch("/p/", false, 40n);
    s.advance(10_000);
    await s.checker.check();
    assert.deepEqual(fine.restarts, []);
    assert.deepEqual(behind.restarts, [7n]);
    assert.deepEqual(prefix.restarts, [50n], "the key's probe gave the revision");
    assert.deepEqual(s.probes, ["/k"]);
  });
  await t.step("a deleted key: once, unless the watch saw the delete", async () => {
    using s = setup(new Map([["/k", { revision: 50n }]]));
    const sawIt = s.watch("/k", true, 9n, false);
    const unknown = s.watch("/k", true, 9n);
    s.advance(10_000);
    await s.checker.check();
    await s.checker.check();
    assert.deepEqual(sawIt.restarts, []);
    assert.deepEqual(unknown.restarts, [50n]);
  });
  await t.step("a failed probe restarts nothing", async () => {
    using s = setup(new Map());
    const w = s.watch("/p/", false, 1n);
    s.advance(10_000);
    await s.checker.check();
    assert.deepEqual(w.restarts, []);
  });
});
