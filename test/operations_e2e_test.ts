/**
 * What an operator runs in production, end to end on the test bed (root only): masquerade and
 * forward rules (golden `iptables -S`), rule self-repair, health and readiness over the agent's
 * lifetime, metrics that move with peers, and a restart that loses no ping.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { eventually, ping, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const CONFIG = '{"Network":"10.102.0.0/16","Backend":{"Type":"host-gw"}}';
const PORT = 9911;
const FLAGS = ["--ip-masq", `--healthz-port=${PORT}`, "--iptables-resync=1"];

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

/** `iptables -S` of the flannel lines in `chain` (and the jump into it from `from`). */
async function flannelRules(ns: string, table: string, from: string, chain: string) {
  const jump = (await sh(["iptables", "-w", "-t", table, "-S", from], { netns: ns })).stdout
    .split("\n").filter((l) => l.includes(`-j ${chain}`));
  const own = (await sh(["iptables", "-w", "-t", table, "-S", chain], { netns: ns })).stdout
    .trim().split("\n");
  return [...jump, ...own];
}

Deno.test({
  name: "operations: rules, health, metrics and a lossless restart on the test bed",
  ignore: skipUnlessRoot("operations end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 2, config: CONFIG });
    const [h1, h2] = bed.hosts;
    const base = `http://${h1.ip}:${PORT}`;
    const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
    try {
      await t.step(
        "before the lease: /healthz 200, /readyz 503 naming what is missing",
        async () => {
          await client.delete(`${bed.prefix}/config`);
          h1.startAgent(FLAGS);
          await h1.agent!.waitFor(/Couldn't fetch network config/);
          await eventually(
            async () => (await get(`${base}/healthz`).catch(() => ({ status: 0 }))).status === 200,
            5000,
            "healthz up",
          );
          const ready = await get(`${base}/readyz`);
          assert.equal(ready.status, 503);
          assert.match(ready.body, /flanneld is not ready yet/);
          assert.match(ready.body, /lease/);
          await client.put(`${bed.prefix}/config`, CONFIG);
          await h1.agent!.waitFor(/Wrote subnet file/, 20_000);
        },
      );

      h2.startAgent(FLAGS);
      await h2.agent!.waitFor(/Wrote subnet file/, 20_000);
      const s1 = (await h1.subnetEnv()).FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");

      await t.step(
        "ready: /readyz 200 once the lease, rules, subnet.env and backend are up",
        async () => {
          await eventually(
            async () => (await get(`${base}/readyz`)).status === 200,
            5000,
            "readyz 200",
          );
          assert.match((await get(`${base}/readyz`)).body, /flanneld is ready/);
          assert.equal((await get(`${base}/healthz`)).body.trim(), "flanneld is running");
        },
      );

      await t.step("masquerade and forward rules match flannel's golden output", async () => {
        const N = "10.102.0.0/16", P = s1;
        assert.deepEqual(await flannelRules(h1.ns, "nat", "POSTROUTING", "FLANNEL-POSTRTG"), [
          `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`,
          `-N FLANNEL-POSTRTG`,
          `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN`,
          `-A FLANNEL-POSTRTG -s ${P} -d ${N} -m comment --comment "flanneld masq" -j RETURN`,
          `-A FLANNEL-POSTRTG -s ${N} -d ${P} -m comment --comment "flanneld masq" -j RETURN`,
          `-A FLANNEL-POSTRTG ! -s ${N} -d ${P} -m comment --comment "flanneld masq" -j RETURN`,
          `-A FLANNEL-POSTRTG -s ${N} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
          `-A FLANNEL-POSTRTG ! -s ${N} -d ${N} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
        ]);
        assert.deepEqual(await flannelRules(h1.ns, "filter", "FORWARD", "FLANNEL-FWD"), [
          `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`,
          `-N FLANNEL-FWD`,
          `-A FLANNEL-FWD -s ${N} -m comment --comment "flanneld forward" -j ACCEPT`,
          `-A FLANNEL-FWD -d ${N} -m comment --comment "flanneld forward" -j ACCEPT`,
        ]);
      });

      await t.step("a rule deleted by hand comes back within one resync", async () => {
        await sh([
          "iptables",
          "-w",
          "-t",
          "nat",
          "-D",
          "FLANNEL-POSTRTG",
          "-s",
          "10.102.0.0/16",
          "!",
          "-d",
          "224.0.0.0/4",
          "-m",
          "comment",
          "--comment",
          "flanneld masq",
          "-j",
          "MASQUERADE",
          "--random-fully",
        ], { netns: h1.ns });
        await eventually(
          async () =>
            (await flannelRules(h1.ns, "nat", "POSTROUTING", "FLANNEL-POSTRTG")).length === 8,
          3000,
          "masquerade rule restored",
        );
      });

      await t.step("metrics parse as Prometheus text and move when peers come and go", async () => {
        const sample = async (name: string) => {
          const text = (await get(`${base}/metrics`)).body;
          for (const line of text.split("\n")) {
            if (line === "" || line.startsWith("#")) continue;
            assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/);
          }
          const escaped = name.replace(/[{}]/g, "\\$&");
          const m = new RegExp(`^${escaped} (\\S+)$`, "m").exec(text);
          return m ? Number(m[1]) : undefined;
        };
        await eventually(
          async () => (await sample('flanneld_peers_known{family="ipv4"}')) === 1,
          5000,
          "one peer",
        );
        const h3 = await bed.addHost();
        h3.startAgent(FLAGS);
        await h3.agent!.waitFor(/Wrote subnet file/, 20_000);
        await eventually(
          async () => (await sample('flanneld_peers_known{family="ipv4"}')) === 2,
          5000,
          "two peers",
        );
        const s3 = (await h3.subnetEnv()).FLANNEL_SUBNET.replace(/\.1\/24$/, ".0-24");
        await client.delete(`${bed.prefix}/subnets/${s3}`);
        await eventually(
          async () => (await sample('flanneld_peers_known{family="ipv4"}')) === 1,
          5000,
          "back to one",
        );
        await eventually(
          async () => (await sample('flanneld_peers_programmed{family="ipv4"}')) === 1,
          5000,
          "one peer programmed",
        );
      });

      await t.step(
        "etcd down: the agent stays alive and ready, the data path keeps working",
        async () => {
          await h1.addPod();
          await h2.addPod();
          const seen = h1.agent!.lines.length;
          await bed.stopEtcd();
          await eventually(
            () => h1.agent!.lines.slice(seen).some((l) => /Watch of \S+ interrupted/.test(l)),
            10_000,
            "the agent noticing that etcd is gone",
          );
          assert.equal((await get(`${base}/healthz`)).status, 200);
          assert.equal((await get(`${base}/readyz`)).status, 200);
          assert.ok(await ping(h1.pods[0], h2.pods[0].ip, 2));
          await bed.startEtcd();
        },
      );

      await t.step("restarting the agent loses no ping between pods", async () => {
        const pinger = new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            h1.pods[0].ns,
            "ping",
            "-n",
            "-q",
            "-i",
            "0.05",
            "-w",
            "4",
            h2.pods[0].ip,
          ],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        await new Promise((r) => setTimeout(r, 500));
        const status = await h2.agent!.stop("SIGTERM", 2000);
        assert.equal(status.code, 0, "SIGTERM exits 0");
        h2.startAgent(FLAGS);
        await h2.agent!.waitFor(/Wrote subnet file/, 20_000);
        const out = new TextDecoder().decode((await pinger.output()).stdout);
        const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
        assert.ok(m, out);
        assert.ok(Number(m[1]) > 40, `enough pings sent: ${m[1]}`);
        assert.equal(m[1], m[2], `no ping lost: ${out.trim()}`);
      });

      await t.step("SIGTERM exits 0 within 2 s and leaves routes and rules in place", async () => {
        const before = (await h1.routes()).filter((r) => r.includes("proto 101"));
        const t0 = Date.now();
        const status = await h1.agent!.stop("SIGTERM", 5000);
        assert.equal(status.code, 0);
        assert.ok(Date.now() - t0 < 2000, `exited in ${Date.now() - t0} ms`);
        assert.deepEqual((await h1.routes()).filter((r) => r.includes("proto 101")), before);
        assert.equal(
          (await flannelRules(h1.ns, "nat", "POSTROUTING", "FLANNEL-POSTRTG")).length,
          8,
        );
      });
    } finally {
      client.close();
    }
  },
});
