/**
 * End to end on the multi-host test bed (root only): three hosts running the agent with host-gw
 * route pod traffic to each other; routes survive an agent stop, follow lease removal, heal after
 * a manual delete, and a fourth host joins.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { eventually, ping, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const CONFIG = '{"Network":"10.100.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}';
const PREFIX = "/docker-subnet/network";

function subnetOf(env: Record<string, string>): string {
  return env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");
}

Deno.test({
  name: "host-gw: three hosts route pod traffic to each other",
  ignore: skipUnlessRoot("host-gw end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 3, config: CONFIG, prefix: PREFIX });
    await bed.startAgents();
    const envs = await Promise.all(bed.hosts.map((h) => h.subnetEnv()));
    const subnets = envs.map(subnetOf);

    await t.step("every host has a distinct /24 of 10.100.0.0/16", () => {
      assert.equal(new Set(subnets).size, 3);
      for (const s of subnets) assert.match(s, /^10\.100\.\d+\.0\/24$/);
      for (const e of envs) assert.equal(e.FLANNEL_NETWORK, "10.100.0.0/16");
    });

    await t.step("each host routes every peer's subnet via the peer", async () => {
      for (const [i, h] of bed.hosts.entries()) {
        for (const [j, peer] of bed.hosts.entries()) {
          if (i === j) continue;
          await eventually(
            async () =>
              (await h.routes()).some((r) => r.startsWith(`${subnets[j]} via ${peer.ip} dev eth0`)),
            5000,
            `${h.name}: route to ${subnets[j]} via ${peer.ip}`,
          );
        }
      }
    });

    for (const h of bed.hosts) await h.addPod();
    await t.step("pod-to-pod ping works in both directions between every pair", async () => {
      for (const a of bed.hosts) {
        for (const b of bed.hosts) {
          if (a === b) continue;
          assert.ok(await ping(a.pods[0], b.pods[0].ip, 2), `${a.name} pod → ${b.name} pod`);
        }
      }
    });

    await t.step("a route deleted by hand comes back within 1 s", async () => {
      const h = bed.hosts[0];
      await h.run(["ip", "route", "del", subnets[1]]);
      const t0 = Date.now();
      await eventually(
        async () => (await h.routes()).some((r) => r.startsWith(`${subnets[1]} via`)),
        1000,
        "route restored",
      );
      console.log(`  route restored after ${Date.now() - t0} ms`);
    });

    await t.step("a host that stops its agent keeps its routes", async () => {
      const h = bed.hosts[2];
      const before = (await h.routes()).filter((r) => r.includes("proto 101")).sort();
      await h.stopAgent();
      const after = (await h.routes()).filter((r) => r.includes("proto 101")).sort();
      assert.deepEqual(after, before);
      assert.ok(await ping(h.pods[0], bed.hosts[0].pods[0].ip), "traffic still flows");
      h.startAgent();
      await h.agent!.waitFor(/Wrote subnet file/, 30_000);
    });

    await t.step("a fourth host joining is routed by the others", async () => {
      const h4 = await bed.addHost();
      h4.startAgent();
      await h4.agent!.waitFor(/Wrote subnet file/, 30_000);
      const s4 = subnetOf(await h4.subnetEnv());
      await h4.addPod();
      for (const h of bed.hosts.slice(0, 3)) {
        await eventually(
          async () => (await h.routes()).some((r) => r.startsWith(`${s4} via ${h4.ip}`)),
          5000,
          `${h.name}: route to the newcomer`,
        );
        assert.ok(await ping(h.pods[0], h4.pods[0].ip, 2), `${h.name} pod → host4 pod`);
      }
    });

    await t.step("a host whose lease is deleted disappears from its peers' routes", async () => {
      const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
      try {
        const gone = subnets[1];
        await client.delete(`${PREFIX}/subnets/${gone.replace("/", "-")}`);
        for (const h of [bed.hosts[0], bed.hosts[2]]) {
          await eventually(
            async () => !(await h.routes()).some((r) => r.startsWith(`${gone} `)),
            5000,
            `${h.name}: route to ${gone} removed`,
          );
        }
        await bed.hosts[1].agent!.waitFor(/Lease has been revoked/);
      } finally {
        client.close();
      }
    });

    await t.step("nothing but our own routes carries our protocol number", async () => {
      const r = await sh(["ip", "route", "show", "proto", "101"], { netns: bed.hosts[0].ns });
      for (const line of r.stdout.trim().split("\n")) {
        assert.match(line, /^10\.100\.\d+\.0\/24 via/);
      }
    });
  },
});
