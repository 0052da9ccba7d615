/**
 * Kubernetes subnet manager against the fake API server: leases from podCIDRs, byte-exact
 * annotations, peers via list+watch, node add/delete, idle and restarted watches, 410 re-lists,
 * clear errors for a missing or foreign podCIDR, and bad input skipped with the node's name.
 */
import assert from "node:assert/strict";
import { parseIP4, parseIP6 } from "../subnet/ip.ts";
import type { Lease } from "../subnet/mod.ts";
import { createKubeSubnetManager } from "../subnet/kube/mod.ts";
import { AgentProcess } from "./agent_process.ts";
import { makeTlsFiles } from "./tls.ts";
import {
  bareNode,
  captureLog,
  eventually,
  flannelNode,
  KubeCluster,
  PeerView,
  PREFIX,
} from "./kube_harness.ts";

const HOSTGW = (ip: string) => ({ publicIP: parseIP4(ip), backendType: "host-gw" });

Deno.test("three managers get their podCIDRs, write flannel's annotations and see each other", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(bareNode("n1", "10.244.1.0/24"));
  c.api.setNode(bareNode("n2", "10.244.2.0/24"));
  c.api.setNode(bareNode("n3", "10.244.3.0/24"));
  const signal = c.signal();
  const views: PeerView[] = [];
  const leases: Lease[] = [];
  for (const i of [1, 2, 3]) {
    const m = await c.manager(`n${i}`);
    assert.equal(m.name, `Kubernetes Subnet Manager - n${i}`);
    const attrs = i === 3
      ? {
        publicIP: parseIP4("192.168.77.13"),
        backendType: "vxlan",
        backendData: '{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}',
      }
      : HOSTGW(`192.168.77.1${i}`);
    const lease = await m.acquireLease(attrs, { signal });
    leases.push(lease);
    assert.equal(lease.subnet.ip, parseIP4(`10.244.${i}.0`));
    assert.equal(lease.subnet.prefix, 24);
    views.push(new PeerView(m, lease, signal));
  }
  // Byte-exact annotations and patch (flannel pkg/subnet/kube/kube.go (AcquireLease)).
  assert.deepEqual(c.api.getNode("n1")!.metadata!.annotations, {
    "node.alpha.kubernetes.io/ttl": "0",
    [`${PREFIX}backend-data`]: "null",
    [`${PREFIX}backend-type`]: "host-gw",
    [`${PREFIX}kube-subnet-manager`]: "true",
    [`${PREFIX}public-ip`]: "192.168.77.11",
  });
  const patch = c.api.requests.find((r) => r.method === "PATCH" && r.url.includes("/n3/"))!;
  assert.equal(patch.url, "/api/v1/nodes/n3/status");
  assert.equal(patch.contentType, "application/strategic-merge-patch+json");
  assert.equal(
    patch.body,
    '{"metadata":{"annotations":{' +
      `"${PREFIX}backend-data":"{\\"VNI\\":1,\\"VtepMAC\\":\\"12:c6:65:89:b4:e3\\"}",` +
      `"${PREFIX}backend-type":"vxlan",` +
      `"${PREFIX}kube-subnet-manager":"true",` +
      `"${PREFIX}public-ip":"192.168.77.13"}}}`,
  );
  await views[0].until(["10.244.2.0/24 via 192.168.77.12", "10.244.3.0/24 via 192.168.77.13"]);
  await views[1].until(["10.244.1.0/24 via 192.168.77.11", "10.244.3.0/24 via 192.168.77.13"]);
  await views[2].until(["10.244.1.0/24 via 192.168.77.11", "10.244.2.0/24 via 192.168.77.12"]);
  const vx = views[0].watcher.leases.find((l) => l.attrs.backendType === "vxlan")!;
  assert.equal(vx.attrs.backendData, '{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}');

  // A node added (a real flannel node) and one deleted reach every peer.
  c.api.setNode(flannelNode("n4", "10.244.4.0/24", "192.168.77.14"));
  for (const v of views) await eventually(() => v.peers.length === 3, () => v.peers.join());
  c.api.deleteNode("n2");
  await views[0].until(["10.244.3.0/24 via 192.168.77.13", "10.244.4.0/24 via 192.168.77.14"]);
  await views[2].until(["10.244.1.0/24 via 192.168.77.11", "10.244.4.0/24 via 192.168.77.14"]);

  // Re-acquiring with unchanged attributes patches nothing.
  const patches = c.api.requests.filter((r) => r.method === "PATCH").length;
  const m1 = await c.manager("n1");
  await m1.acquireLease(HOSTGW("192.168.77.11"), { signal });
  assert.equal(c.api.requests.filter((r) => r.method === "PATCH").length, patches);
});

Deno.test("acquireLease() honours public-ip-overwrite and completeLease() sets NetworkUnavailable", async () => {
  await using c = await KubeCluster.start();
  const n = bareNode("n1", "10.244.1.0/24");
  n.metadata!.annotations![`${PREFIX}public-ip-overwrite`] = "203.0.113.9";
  n.metadata!.annotations![`${PREFIX}node-public-ip`] = "192.168.1.5";
  c.api.setNode(n);
  const m = await c.manager("n1");
  assert.deepEqual(await m.storedPublicIPs(), { ipv4: "192.168.1.5" });
  const lease = await m.acquireLease(HOSTGW("192.168.1.5"));
  assert.equal(c.api.getNode("n1")!.metadata!.annotations![`${PREFIX}public-ip`], "203.0.113.9");
  const ac = new AbortController();
  let held = true;
  const holding = m.completeLease(lease, { signal: ac.signal }).finally(() => (held = false));
  const networkUnavailable = () =>
    c.api.getNode("n1")!.status!.conditions!.find((x) => x.type === "NetworkUnavailable");
  await eventually(() => networkUnavailable() !== undefined, () => "NetworkUnavailable patched");
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(held, "completeLease() holds the lease until aborted");
  ac.abort();
  await holding;
  const cond = networkUnavailable()!;
  assert.equal(cond.status, "False");
  assert.equal(cond.reason, "FlannelIsUp");
  assert.equal(cond.message, "Flannel is running on this node");
  assert.match(cond.lastHeartbeatTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(cond.lastTransitionTime, cond.lastHeartbeatTime);
  assert.equal(c.api.getNode("n1")!.status!.conditions!.length, 2, "Ready is kept");
});

Deno.test("IPv6 only: node-public-ipv6 is stored, the lease is the IPv6 podCIDR, annotations are flannel's", async () => {
  const conf = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56",' +
    '"Backend":{"Type":"vxlan"}}';
  await using c = await KubeCluster.start(conf);
  const n = bareNode("n1", ["fd00:10:244:1::/64"]);
  n.metadata!.annotations![`${PREFIX}node-public-ipv6`] = "2001:db8::5";
  c.api.setNode(n);
  const m = await c.manager("n1");
  assert.deepEqual(await m.storedPublicIPs(), { ipv6: "2001:db8::5" });
  const vtep = '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}';
  const lease = await m.acquireLease({
    publicIP: 0,
    publicIPv6: parseIP6("2001:db8::5"),
    backendType: "vxlan",
    backendV6Data: vtep,
  });
  assert.equal(lease.enableIPv4, false);
  assert.equal(lease.enableIPv6, true);
  assert.deepEqual(lease.ipv6Subnet, { ip: parseIP6("fd00:10:244:1::"), prefix: 64 });
  assert.deepEqual(c.api.getNode("n1")!.metadata!.annotations, {
    "node.alpha.kubernetes.io/ttl": "0",
    [`${PREFIX}backend-type`]: "vxlan",
    [`${PREFIX}backend-v6-data`]: vtep,
    [`${PREFIX}kube-subnet-manager`]: "true",
    [`${PREFIX}node-public-ipv6`]: "2001:db8::5",
    [`${PREFIX}public-ipv6`]: "2001:db8::5",
  });
  assert.deepEqual(await m.storedMacAddresses(), { v6: "aa:bb:cc:dd:ee:00" });
});

Deno.test("acquireLease() under EnableIPv6 for a node with only an IPv4 podCIDR: one clear error", async () => {
  const conf = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56",' +
    '"Backend":{"Type":"host-gw"}}';
  await using c = await KubeCluster.start(conf);
  c.api.setNode(bareNode("n1", "10.244.1.0/24"));
  const log = captureLog();
  const m = await c.manager("n1", { log, retryMs: 20 });
  const ac = new AbortController();
  const pending = m.acquireLease(HOSTGW("192.168.1.1"), { signal: ac.signal });
  await eventually(
    () => c.api.requests.filter((r) => r.url === "/api/v1/nodes/n1").length >= 4,
    () => "no retries",
  );
  ac.abort();
  await assert.rejects(pending);
  const errors = log.lines.filter((l) => l.includes("Failed to acquire lease"));
  assert.equal(errors.length, 1, log.lines.join("\n"));
  assert.match(
    errors[0],
    /node "n1" has no IPv6 pod CIDR \(podCIDRs 10\.244\.1\.0\/24\) but "EnableIPv6" is true in .*net-conf\.json: give the node an IPv6 podCIDR .* set "EnableIPv6": false$/,
  );
  assert.equal(c.api.requests.filter((r) => r.method === "PATCH").length, 0, "nothing written");
});

Deno.test("storedMacAddresses() reads the VTEP MAC from the own backend-data", async () => {
  await using c = await KubeCluster.start();
  const n = bareNode("n1", "10.244.1.0/24");
  n.metadata!.annotations![`${PREFIX}backend-data`] = '{"VNI":1,"VtepMAC":"96:59:b2:3f:04:ee"}';
  c.api.setNode(n);
  const m = await c.manager("n1");
  assert.deepEqual(await m.storedMacAddresses(), { v4: "96:59:b2:3f:04:ee" });
});

Deno.test("acquireLease() waits for a podCIDR with one clear log line, then succeeds", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(bareNode("n1"));
  const log = captureLog();
  const m = await c.manager("n1", { log, retryMs: 30 });
  const pending = m.acquireLease(HOSTGW("192.168.1.1"), { signal: c.signal() });
  await eventually(
    () => c.api.requests.filter((r) => r.url === "/api/v1/nodes/n1").length >= 4,
    () => "no retries",
  );
  const errors = log.lines.filter((l) => l.includes("pod cidr not assigned"));
  assert.equal(errors.length, 1, log.lines.join("\n"));
  assert.match(errors[0], /node "n1" pod cidr not assigned.*--allocate-node-cidrs/);
  c.api.updateNode("n1", (n) => n.spec = { podCIDR: "10.244.9.0/24", podCIDRs: ["10.244.9.0/24"] });
  const lease = await pending;
  assert.equal(lease.subnet.ip, parseIP4("10.244.9.0"));
});

Deno.test("acquireLease() names both CIDRs and the fix when the podCIDR is outside Network", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(bareNode("n1", "100.244.1.0/24"));
  const log = captureLog();
  const m = await c.manager("n1", { log });
  const ac = new AbortController();
  const pending = m.acquireLease(HOSTGW("192.168.1.1"), { signal: ac.signal });
  await eventually(() => log.lines.some((l) => l.includes("doesn't contain")), () => "no error");
  ac.abort();
  await assert.rejects(pending);
  const line = log.lines.find((l) => l.includes("doesn't contain"))!;
  assert.match(line, /subnet "10\.244\.0\.0\/16" .* doesn't contain "100\.244\.1\.0\/24" PodCIDR/);
  assert.match(line, /set "Network" in .*net-conf\.json/);
  assert.equal(c.api.requests.filter((r) => r.method === "PATCH").length, 0, "node untouched");
});

Deno.test("watchLeases() survives silent streams, drops, 410 and API server restarts", async (t) => {
  await using c = await KubeCluster.start();
  c.api.setNode(flannelNode("n1", "10.244.1.0/24", "192.168.0.1"));
  c.api.setNode(flannelNode("n2", "10.244.2.0/24", "192.168.0.2"));
  const log = captureLog();
  const m = await c.manager("n1", { log, idleTimeoutMs: 300 });
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1", "10.244.2.0/24 via 192.168.0.2"]);
  const watches = () => c.api.requests.filter((r) => r.url.includes("watch=1")).length;

  await t.step("a silent stream is re-opened from the last resourceVersion", async () => {
    const before = watches();
    await eventually(() => watches() >= before + 2, () => `watches ${before} → ${watches()}`, 3000);
    c.api.setNode(flannelNode("n3", "10.244.3.0/24", "192.168.0.3"));
    await eventually(() => view.peers.length === 3, () => view.peers.join());
  });

  await t.step("a dropped stream resumes without a re-list", async () => {
    const lists = c.api.requests.filter((r) => r.url.startsWith("/api/v1/nodes?limit")).length;
    c.api.dropWatches({ abrupt: true });
    c.api.setNode(flannelNode("n4", "10.244.4.0/24", "192.168.0.4"));
    await eventually(() => view.peers.length === 4, () => view.peers.join());
    assert.equal(
      c.api.requests.filter((r) => r.url.startsWith("/api/v1/nodes?limit")).length,
      lists,
    );
  });

  await t.step("410 Gone re-lists and the snapshot diff reports what was missed", async () => {
    c.api.compact();
    c.api.dropWatches();
    c.api.deleteNode("n3");
    c.api.compact();
    await view.until([
      "10.244.1.0/24 via 192.168.0.1",
      "10.244.2.0/24 via 192.168.0.2",
      "10.244.4.0/24 via 192.168.0.4",
    ]);
    assert.ok(log.lines.some((l) => l.includes("410 Gone): re-listing")), log.lines.join("\n"));
  });

  await t.step("the start lists from the watch cache; the re-list after 410 is consistent", () => {
    const lists = c.api.requests.filter((r) =>
      r.method === "GET" && /^\/api\/v1\/nodes\?/.test(r.url)
    )
      .map((r) => new URL(r.url, "http://x").searchParams);
    assert.ok(lists.length >= 2, `${lists.length} node lists`);
    assert.equal(lists[0].get("resourceVersion"), "0");
    assert.equal(lists[0].get("limit"), null);
    const after410 = lists.at(-1)!;
    assert.equal(after410.get("resourceVersion"), null);
    assert.equal(after410.get("limit"), "500");
  });

  await t.step("changes while the API server restarts are not lost", async () => {
    for (const keepHistory of [true, false]) {
      await c.api.stop();
      c.api.updateNode("n2", (n) => n.metadata!.annotations![`${PREFIX}public-ip`] = "192.168.9.2");
      c.api.deleteNode("n4");
      await new Promise((r) => setTimeout(r, 200)); // the client retries against a closed port
      await c.api.restart({ keepHistory });
      await view.until(["10.244.1.0/24 via 192.168.0.1", "10.244.2.0/24 via 192.168.9.2"]);
      // Restore for the next round.
      c.api.updateNode("n2", (n) => n.metadata!.annotations![`${PREFIX}public-ip`] = "192.168.0.2");
      c.api.setNode(flannelNode("n4", "10.244.4.0/24", "192.168.0.4"));
      await eventually(() => view.peers.length === 3, () => view.peers.join());
    }
  });
});

Deno.test("watchLeases() keeps an idle stream open while bookmarks arrive", async () => {
  await using c = await KubeCluster.start(undefined, { bookmarkMs: 100 });
  c.api.setNode(flannelNode("n1", "10.244.1.0/24", "192.168.0.1"));
  const m = await c.manager("n2", { idleTimeoutMs: 400 });
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(c.api.requests.filter((r) => r.url.includes("watch=1")).length, 1);
  c.api.setNode(flannelNode("n3", "10.244.3.0/24", "192.168.0.3"));
  await eventually(() => view.peers.length === 2, () => view.peers.join());
});

Deno.test("watchLeases() re-watches when the server ends a stream, and when one dies silently", async (t) => {
  await using c = await KubeCluster.start();
  c.api.setNode(flannelNode("n1", "10.244.1.0/24", "192.168.0.1"));
  const log = captureLog();
  const m = await c.manager("n2", { log, watchTimeoutSeconds: 1, idleTimeoutMs: 1500 });
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  const watchLines = () => log.lines.filter((l) => /Watch of nodes/.test(l));

  await t.step("streams the server ends at timeoutSeconds are re-opened quietly", async () => {
    const watches = () => c.api.requests.filter((r) => r.url.includes("watch=1"));
    await eventually(() => watches().length >= 3, () => `${watches().length} watches`, 3000);
    assert.match(watches()[0].url, /allowWatchBookmarks=true&timeoutSeconds=1$/);
    c.api.setNode(flannelNode("n3", "10.244.3.0/24", "192.168.0.3"));
    await eventually(() => view.peers.length === 2, () => view.peers.join());
    assert.deepEqual(watchLines(), []);
  });

  await t.step(
    "a silently dead stream is re-opened after the idle bound, logged once",
    async () => {
      await eventually(() => c.api.watchCount === 1, () => "no open watch");
      c.api.freezeWatches();
      c.api.setNode(flannelNode("n4", "10.244.4.0/24", "192.168.0.4"));
      const t0 = Date.now();
      await eventually(() => view.peers.length === 3, () => view.peers.join(), 3000);
      assert.ok(Date.now() - t0 <= 1600, `took ${Date.now() - t0} ms`);
      assert.equal(watchLines().length, 1, log.lines.join("\n"));
      assert.match(
        watchLines()[0],
        /Watch of nodes restarted from resourceVersion \d+: silent for 2s \(nothing for 1500 ms/,
      );
    },
  );
});

Deno.test("watchLeases() propagates podCIDR and single-family changes", async () => {
  const conf = '{"Network":"10.244.0.0/16","IPv6Network":"fd00:10:244::/56","EnableIPv6":true,' +
    '"Backend":{"Type":"host-gw"}}';
  await using c = await KubeCluster.start(conf);
  const n = flannelNode("n1", "10.244.1.0/24", "192.168.0.1");
  n.spec = { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"] };
  Object.assign(n.metadata!.annotations!, {
    [`${PREFIX}backend-v6-data`]: "null",
    [`${PREFIX}public-ipv6`]: "fc00::1",
  });
  c.api.setNode(n);
  const m = await c.manager("n2");
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  c.api.updateNode("n1", (x) => x.metadata!.annotations![`${PREFIX}public-ipv6`] = "fc00::2");
  await eventually(
    () => view.watcher.leases[0]?.attrs.publicIPv6 === 0xfc000000000000000000000000000002n,
    () => "IPv6-only change not seen",
  );
  c.api.updateNode("n1", (x) => x.spec!.podCIDRs = ["10.244.7.0/24", "fd00:10:244:7::/64"]);
  await view.until(["10.244.7.0/24 via 192.168.0.1"]);
});

Deno.test("bad nodes and bad answers are logged with the node name and skipped", async () => {
  await using c = await KubeCluster.start();
  c.api.setNode(flannelNode("good", "10.244.1.0/24", "192.168.0.1"));
  const three = flannelNode("three", "10.244.2.0/24", "192.168.0.2");
  three.spec!.podCIDRs = ["10.244.2.0/24", "fd00::/64", "10.244.3.0/24"];
  c.api.setNode(three);
  const badIP = flannelNode("badip", "10.244.4.0/24", "192.168.0.4");
  badIP.metadata!.annotations![`${PREFIX}public-ip`] = "not-an-ip";
  c.api.setNode(badIP);
  const badData = flannelNode("baddata", "10.244.5.0/24", "192.168.0.5");
  badData.metadata!.annotations![`${PREFIX}backend-data`] = "{VNI:1";
  c.api.setNode(badData);
  c.api.setNode(bareNode("unmanaged", "10.244.6.0/24"));
  // The node list (from the watch cache at start: resourceVersion=0), not the watch.
  const nodeList = /^\/api\/v1\/nodes\?(resourceVersion=0$|limit=)/;
  c.api.failNext(1, 500, undefined, nodeList);
  c.api.failNext(1, 200, "<html>not json</html>", nodeList);
  const log = captureLog();
  const m = await c.manager("me", { log });
  const view = new PeerView(m, undefined, c.signal());
  await view.until(["10.244.1.0/24 via 192.168.0.1"]);
  for (const name of ["three", "badip", "baddata"]) {
    assert.ok(
      log.lines.some((l) => l.includes(`Error turning node "${name}" to lease`)),
      `${name}: ${log.lines.join("\n")}`,
    );
  }
  assert.ok(log.lines.some((l) => l.includes("pod cidrs should be IPv4/IPv6 only or dualstack")));
  assert.ok(
    log.lines.some((l) => /Cannot list nodes.*(500|non-JSON)/.test(l)),
    log.lines.join("\n"),
  );
  // Garbage on the watch stream: logged, stream resumed, later events still arrive.
  await eventually(() => c.api.watchCount > 0, () => "no watch");
  c.api.sendRawWatchLine("this is not json");
  c.api.setNode(flannelNode("late", "10.244.8.0/24", "192.168.0.8"));
  await view.until(["10.244.1.0/24 via 192.168.0.1", "10.244.8.0/24 via 192.168.0.8"]);
  assert.ok(log.lines.some((l) => l.includes("undecodable line")), log.lines.join("\n"));
  // A bad update keeps the node's last good lease; fixing it propagates.
  c.api.updateNode("good", (n) => n.metadata!.annotations![`${PREFIX}public-ip`] = "");
  c.api.updateNode("good", (n) => n.metadata!.annotations![`${PREFIX}public-ip`] = "192.168.0.11");
  await view.until(["10.244.1.0/24 via 192.168.0.11", "10.244.8.0/24 via 192.168.0.8"]);
});

Deno.test("createKubeSubnetManager() finds the node through the pod and explains failures", async (t) => {
  await using c = await KubeCluster.start();
  c.api.setPod("kube-flannel", {
    metadata: { name: "flannel-x" },
    spec: { nodeName: "worker-1", containers: [] },
  });
  c.api.setPod("kube-flannel", { metadata: { name: "pending" }, spec: { containers: [] } });
  const make = (env: Record<string, string>, netConfigPath = c.netConfigPath) =>
    createKubeSubnetManager({ apiUrl: c.api.url, netConfigPath, env, log: captureLog() });
  await t.step("POD_NAME/POD_NAMESPACE", async () => {
    const m = await make({ POD_NAME: "flannel-x", POD_NAMESPACE: "kube-flannel" });
    assert.equal(m.nodeName, "worker-1");
    m.close();
  });
  const cases: [string, Record<string, string>, RegExp, string?][] = [
    ["no env", {}, /env variables POD_NAME and POD_NAMESPACE must be set/],
    [
      "no pod",
      { POD_NAME: "nope", POD_NAMESPACE: "kube-flannel" },
      /error retrieving pod spec for 'kube-flannel\/nope'.*404/,
    ],
    [
      "no nodeName",
      { POD_NAME: "pending", POD_NAMESPACE: "kube-flannel" },
      /node name not present in pod spec 'kube-flannel\/pending'/,
    ],
    [
      "no net-conf",
      { NODE_NAME: "x" },
      /failed to read net conf: ".*missing\.json"/,
      `${c.dir}/missing.json`,
    ],
    [
      "bad queue depth",
      { NODE_NAME: "x", EVENT_QUEUE_DEPTH: "lots" },
      /EVENT_QUEUE_DEPTH=lots format error/,
    ],
  ];
  for (const [name, env, re, path] of cases) {
    await t.step(name, async () => {
      await assert.rejects(make(env, path), (e: Error) => {
        const all = [
          e.message,
          (e.cause as Error | undefined)?.message,
          ((e.cause as Error | undefined)?.cause as Error | undefined)?.message,
        ].join(": ");
        assert.match(all, re);
        return true;
      });
    });
  }
  await t.step("no Network", async () => {
    await Deno.writeTextFile(`${c.dir}/nonet.json`, '{"Backend":{"Type":"vxlan"}}');
    await assert.rejects(make({ NODE_NAME: "x" }, `${c.dir}/nonet.json`), /"Network" is missing/);
  });
});

Deno.test({
  name: "flanneld --kube-subnet-mgr --kubeconfig-file waits for a podCIDR, then serves",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using tls = await makeTlsFiles();
    const read = (p: string) => Deno.readTextFileSync(p);
    await using c = await KubeCluster.start(
      '{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}',
      {
        tokens: ["agent-token"],
        tls: { cert: read(tls.serverCertFile), key: read(tls.serverKeyFile) },
      },
    );
    c.api.setNode(bareNode("proc-node"));
    const kubeconfig = `${c.dir}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: t",
        "clusters:",
        "- name: c",
        "  cluster:",
        `    server: ${c.api.url}`,
        `    certificate-authority: ${tls.caFile}`,
        "contexts:",
        "- name: t",
        "  context: {cluster: c, user: u}",
        "users:",
        "- name: u",
        "  user:",
        "    token: agent-token",
      ].join("\n"),
    );
    await using agent = new AgentProcess([
      "--kube-subnet-mgr",
      `--kubeconfig-file=${kubeconfig}`,
      `--net-config-path=${c.netConfigPath}`,
      `--subnet-file=${c.dir}/subnet.env`,
      "--iface=lo",
      "--iptables-forward-rules=false",
    ], { env: { NODE_NAME: "proc-node" } });
    await agent.waitFor(/node "proc-node" pod cidr not assigned/, 20_000);
    assert.equal(agent.exited, false, "no crash loop");
    c.api.updateNode("proc-node", (n) => n.spec = { podCIDR: "10.244.42.0/24" });
    await agent.waitFor(/Wrote subnet file/, 20_000);
    const env = await Deno.readTextFile(`${c.dir}/subnet.env`);
    assert.match(env, /FLANNEL_SUBNET=10\.244\.42\.1\/24/);
    const ann = c.api.getNode("proc-node")!.metadata!.annotations!;
    assert.equal(ann[`${PREFIX}kube-subnet-manager`], "true");
    assert.equal(ann[`${PREFIX}public-ip`], "127.0.0.1");
    const status = await agent.stop("SIGTERM");
    assert.equal(status.code, 0);
  },
});
