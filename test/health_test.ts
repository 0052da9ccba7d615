/**
 * The health server over HTTP on loopback: liveness and readiness through an agent's life
 * (before the lease, ready, a stuck loop, shutdown), metrics, 404s and bad addresses.
 */
import assert from "node:assert/strict";
import { Health, startHealthServer } from "../util/health.ts";
import { silentLogger } from "../util/log.ts";
import { createFlannelMetrics, Registry } from "../util/metrics.ts";

async function get(port: number, path: string, host = "127.0.0.1") {
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
  const res = await fetch(url);
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
}

Deno.test("startHealthServer() reports health and readiness over an agent's life", async () => {
  let now = 0;
  const health = new Health({ now: () => now });
  const registry = new Registry();
  const metrics = createFlannelMetrics(registry);
  const ac = new AbortController();
  const server = startHealthServer({
    hostname: "127.0.0.1",
    port: 0,
    health,
    registry,
    log: silentLogger,
    signal: ac.signal,
  });
  try {
    const port = server.port;
    assert.equal(server.address, `127.0.0.1:${port}`);

    // Before the lease: alive, not ready, all conditions missing.
    assert.deepEqual(await get(port, "/healthz"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "flanneld is running",
    });
    let r = await get(port, "/readyz");
    assert.equal(r.status, 503);
    assert.equal(r.type, "application/json");
    assert.deepEqual(JSON.parse(r.body), {
      ready: false,
      message: "flanneld is not ready yet",
      missing: ["lease", "rules", "subnet-file", "backend"],
    });

    // Lease and rules in place, subnet.env not yet written.
    health.setReady("lease", true);
    health.setReady("rules", true);
    assert.deepEqual(JSON.parse((await get(port, "/readyz")).body).missing, [
      "subnet-file",
      "backend",
    ]);

    health.setReady("subnet-file", true);
    health.setReady("backend", true);
    assert.deepEqual(await get(port, "/readyz"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "flanneld is ready",
    });

    // A loop that stops beating makes /healthz fail, naming it; beating again heals it.
    const renew = health.heartbeat("lease-renewal", 60_000);
    const routes = health.heartbeat("route-reconcile", 30_000);
    now = 45_000;
    renew.beat();
    r = await get(port, "/healthz");
    assert.equal(r.status, 500);
    assert.equal(
      r.body,
      `flanneld is not healthy: loop "route-reconcile" last reported 45.0 s ago (limit 30.0 s)`,
    );
    routes.beat();
    assert.equal((await get(port, "/healthz")).status, 200);
    now = 200_000;
    routes.stop();
    renew.stop();
    assert.equal((await get(port, "/healthz")).status, 200, "stopped loops are not watched");

    // Datastore down: the lead clears "lease"; readiness says so.
    health.setReady("lease", false);
    assert.deepEqual(JSON.parse((await get(port, "/readyz")).body).missing, ["lease"]);
    health.setReady("lease", true);

    // Metrics move with the agent.
    metrics.peersKnown.set(2, { family: "ipv4" });
    r = await get(port, "/metrics");
    assert.equal(r.status, 200);
    assert.equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    assert.match(r.body, /\nflanneld_peers_known\{family="ipv4"\} 2\n/);
    metrics.peersKnown.set(1, { family: "ipv4" });
    assert.match((await get(port, "/metrics")).body, /\nflanneld_peers_known\{family="ipv4"\} 1\n/);

    for (const path of ["/", "/healthzz", "/readyz/x"]) {
      assert.equal((await get(port, path)).status, 404, path);
    }
    // Any method, like flannel.
    const post = await fetch(`http://127.0.0.1:${port}/healthz`, { method: "POST", body: "x" });
    assert.equal(post.status, 200);
    await post.body?.cancel();
  } finally {
    const started = performance.now();
    ac.abort();
    await server.shutdown();
    await server.finished;
    assert.ok(performance.now() - started < 3500);
  }
  assert.deepEqual(health.missing(), ["shutting-down"]);
});

Deno.test("startHealthServer() listens on IPv6 and prints the address bracketed", async () => {
  const server = startHealthServer({
    hostname: "[::1]",
    port: 0,
    health: new Health({ conditions: [] }),
    log: silentLogger,
  });
  try {
    assert.equal(server.address, `[::1]:${server.port}`);
    assert.deepEqual(await get(server.port, "/readyz", "::1"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "flanneld is ready",
    });
    assert.equal((await get(server.port, "/metrics", "::1")).status, 404, "no registry given");
  } finally {
    await server.shutdown();
  }
});

Deno.test("startHealthServer() names the flag and the fix when the port is in use", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    assert.throws(
      () =>
        startHealthServer({ hostname: "127.0.0.1", port, health: new Health(), log: silentLogger }),
      (err: Error) => {
        assert.equal(
          err.message,
          `Cannot start the health server on 127.0.0.1:${port}: the port is already in use; ` +
            `stop the other process or choose a free port with --healthz-port (0 disables the server)`,
        );
        assert.ok(err.cause instanceof Deno.errors.AddrInUse);
        return true;
      },
    );
  } finally {
    taken.close();
  }
});

Deno.test("startHealthServer() names --healthz-ip for an address this host does not have", () => {
  assert.throws(
    // TEST-NET-1: never a local address.
    () =>
      startHealthServer({
        hostname: "192.0.2.1",
        port: 0,
        health: new Health(),
        log: silentLogger,
      }),
    /192\.0\.2\.1:0: no local interface has that address; set --healthz-ip/,
  );
});

Deno.test("Health.setReady() rejects unknown conditions", () => {
  assert.throws(
    () => new Health().setReady("leases", true),
    /Unknown readiness condition "leases"/,
  );
});
