/**
 * One real idle case (about 62 s): with default settings and an API server that sends nothing
 * (no events, no bookmarks) for over 60 s, the node watch is still live and delivers the next
 * change at once, without a re-list. Faster variants with a short idle timeout are in
 * test/kube_test.ts.
 */
import assert from "node:assert/strict";
import { flannelNode, KubeCluster, PeerView } from "../../test/kube_harness.ts";

Deno.test("watchLeases() delivers a change after 61 s of silence on the watch", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(flannelNode("n1", "10.244.1.0/24", "192.168.0.1"));
  const m = await c.manager("me");
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  await new Promise((r) => setTimeout(r, 61_000));
  const t0 = performance.now();
  c.api.setNode(flannelNode("n2", "10.244.2.0/24", "192.168.0.2"));
  await view.until(["10.244.1.0/24 via 192.168.0.1", "10.244.2.0/24 via 192.168.0.2"], 2000);
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `took ${ms} ms`);
  const lists = c.api.requests.filter((r) => r.url.startsWith("/api/v1/nodes?limit")).length;
  const watches = c.api.requests.filter((r) => r.url.includes("watch=1")).length;
  assert.equal(lists, 1, "no re-list");
  assert.equal(watches, 1, "the same stream stayed open");
});
