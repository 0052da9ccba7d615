/**
 * End to end on the test bed (root only): etcd's side of the agent's connections vanishes and
 * the resets never reach the agent's host (an etcd host crash, a NAT or load-balancer timeout).
 * The agent's sockets stay ESTABLISHED and silent; lease changes made afterwards still reach
 * its routes, with one log line saying the watch was restarted.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { eventually, type Host, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const CONFIG = '{"Network":"10.100.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}';
const PREFIX = "/deadconn/network";
/** The check period the agent runs with (the default, 20 s, is proven in etcd_manager_test.ts). */
const CHECK_MS = 5000;

/** `local peer` of the host's established TCP connections to etcd. */
async function etcdConnections(h: Host): Promise<string[]> {
  const etcd = new URL(h.bed.etcdEndpoint);
  const r = await h.run(["ss", "-tnH", "state", "established", "dst", etcd.host]);
  return r.stdout.trim().split("\n").filter((l) => l !== "").map((l) =>
    l.trim().split(/\s+/).slice(2, 4).join(" ")
  ).sort();
}

Deno.test({
  name: "host-gw: leases changed after the agent's etcd connections died silently reach its routes",
  ignore: skipUnlessRoot("etcd dead-connection end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using bed = await TestBed.create({ hosts: 1, config: CONFIG, prefix: PREFIX });
    const h = bed.hosts[0];
    const client = new EtcdClient({ endpoints: [bed.etcdEndpoint] });
    const peer = (n: number) => ({
      key: `${PREFIX}/subnets/10.100.${n}.0-24`,
      route: `10.100.${n}.0/24 via ${bed.underlayIP(n)} dev eth0`,
      value: `{"PublicIP":"${bed.underlayIP(n)}","PublicIPv6":null,"BackendType":"host-gw"}`,
    });
    const routed = async (route: string) => (await h.routes()).some((r) => r.startsWith(route));
    try {
      await client.put(peer(50).key, peer(50).value);
      const agent = h.startAgent([], { env: { FLANNEL_ETCD_WATCH_CHECK_MS: String(CHECK_MS) } });
      await agent.waitFor(/Wrote subnet file/, 30_000);
      await eventually(() => routed(peer(50).route), 5000, "the first peer's route");

      await h.run([
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--tcp-flags",
        "RST",
        "RST",
        "-j",
        "DROP",
      ]);
      const before = await etcdConnections(h);
      assert.ok(before.length >= 2, `both watches connected: ${before.join(", ")}`);
      await sh(["ss", "-K", "dst", h.ip]); // in etcd's namespace: its side of them is gone
      assert.equal((await sh(["ss", "-tnH", "dst", h.ip])).stdout.trim(), "", "etcd side gone");
      const after = await etcdConnections(h);
      for (const c of before) assert.ok(after.includes(c), `${c} still ESTABLISHED: ${after}`);

      await client.delete(peer(50).key);
      await client.put(peer(51).key, peer(51).value);
      const t0 = Date.now();
      await eventually(
        async () => (await routed(peer(51).route)) && !(await routed(peer(50).route)),
        30_000,
        "routes after the lease changes",
      );
      console.log(
        `  routes converged ${Date.now() - t0} ms after the changes (check ${CHECK_MS} ms)`,
      );
      const restarts = agent.lines.filter((l) => /restarted/.test(l));
      assert.equal(restarts.length, 1, agent.lines.join("\n"));
      assert.match(restarts[0], /watch prefix .*subnets\/" restarted .*silent for \d+s/);
    } finally {
      client.close();
    }
  },
});
