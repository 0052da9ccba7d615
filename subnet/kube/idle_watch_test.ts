/**
 * The one real-timing case of the Kubernetes watch (up to about 45 s): with default settings, a
 * watch whose connection went silently dead (no event, no bookmark, no end) is re-opened from
 * its resourceVersion within 60 s, with one log line. Variants with injected timings are in
 * test/kube_test.ts.
 */
import assert from "node:assert/strict";
import {
  captureLog,
  eventually,
  flannelNode,
  KubeCluster,
  PeerView,
} from "../../test/kube_harness.ts";

Deno.test("watchLeases() gets a change made after its watch died silently, within 60 s by default", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(flannelNode("n1", "10.244.1.0/24", "192.168.0.1"));
  const log = captureLog();
  const m = await c.manager("me", { log });
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  await eventually(() => c.api.watchCount === 1, () => "no open watch");
  c.api.freezeWatches();
  const t0 = performance.now();
  c.api.setNode(flannelNode("n2", "10.244.2.0/24", "192.168.0.2"));
  await view.until(["10.244.1.0/24 via 192.168.0.1", "10.244.2.0/24 via 192.168.0.2"], 60_000);
  const ms = performance.now() - t0;
  console.log(`  change delivered ${Math.round(ms)} ms after it was made`);
  const watches = c.api.requests.filter((r) => r.url.includes("watch=1"));
  const seconds = Number(new URL(watches[0].url, c.api.url).searchParams.get("timeoutSeconds"));
  assert.ok(seconds >= 30 && seconds <= 39, `timeoutSeconds=${seconds}`);
  const lines = log.lines.filter((l) => /Watch of nodes/.test(l));
  assert.equal(lines.length, 1, log.lines.join("\n"));
  assert.match(lines[0], /Watch of nodes restarted from resourceVersion \d+: silent for \d+s/);
  const lists =
    c.api.requests.filter((r) => r.url.startsWith("/api/v1/nodes?") && !r.url.includes("watch=1"))
      .length;
  assert.equal(lists, 1, "resumed, not re-listed");
});
