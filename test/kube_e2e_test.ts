/**
 * End to end on the multi-host test bed (root only) with the fake Kubernetes API server instead
 * of etcd: three hosts run the agent with `--kube-subnet-mgr` and vxlan, take their subnets from
 * the nodes' podCIDRs, annotate their nodes as flannel does, and pods ping each other; a node
 * deleted in the API loses its route on the peers.
 */
import assert from "node:assert/strict";
import { AgentProcess } from "./agent_process.ts";
import { FakeApiServer } from "./fake_apiserver.ts";
import { bareNode, PREFIX } from "./kube_harness.ts";
import { eventually, ping, skipUnlessRoot, TestBed } from "./testbed.ts";

const NET_CONF = '{"Network":"10.100.0.0/16","Backend":{"Type":"vxlan"}}';

Deno.test({
  name: "kube e2e: three vxlan hosts get podCIDR leases, annotate their nodes and route pods",
  ignore: skipUnlessRoot("Kubernetes end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 3, config: NET_CONF });
    await using api = await FakeApiServer.start({ hostname: bed.underlayIP(254) });
    const dir = await Deno.makeTempDir({ prefix: "flannel-kube-e2e-" });
    try {
      const netConf = `${dir}/net-conf.json`;
      await Deno.writeTextFile(netConf, NET_CONF);
      for (const [i] of bed.hosts.entries()) {
        api.setNode(bareNode(`host${i + 1}`, `10.100.${i + 1}.0/24`));
      }
      for (const [i, h] of bed.hosts.entries()) {
        h.agent = new AgentProcess([
          "--kube-subnet-mgr",
          `--kube-api-url=${api.url}`,
          `--net-config-path=${netConf}`,
          `--subnet-file=${h.subnetFile}`,
          "--iface=eth0",
        ], { netns: h.ns, env: { NODE_NAME: `host${i + 1}` } });
      }
      await Promise.all(bed.hosts.map((h) => h.agent!.waitFor(/Wrote subnet file/, 30_000)));

      await t.step("subnets are the podCIDRs; annotations are flannel's", async () => {
        for (const [i, h] of bed.hosts.entries()) {
          const env = await h.subnetEnv();
          assert.equal(env.FLANNEL_SUBNET, `10.100.${i + 1}.1/24`);
          assert.equal(env.FLANNEL_NETWORK, "10.100.0.0/16");
          const ann = api.getNode(`host${i + 1}`)!.metadata!.annotations!;
          assert.equal(ann[`${PREFIX}backend-type`], "vxlan");
          assert.equal(ann[`${PREFIX}kube-subnet-manager`], "true");
          assert.equal(ann[`${PREFIX}public-ip`], h.ip);
          assert.match(
            ann[`${PREFIX}backend-data`],
            /^\{"VNI":1,"VtepMAC":"[0-9a-f]{2}(:[0-9a-f]{2}){5}"\}$/,
          );
        }
        await eventually(
          () =>
            Promise.resolve(
              bed.hosts.every((_, i) =>
                api.getNode(`host${i + 1}`)!.status!.conditions!.some((c) =>
                  c.type === "NetworkUnavailable" && c.status === "False"
                )
              ),
            ),
          5000,
          "NetworkUnavailable=False on every node",
        );
      });

      for (const h of bed.hosts) await h.addPod();
      await t.step("pod-to-pod ping works between every pair", async () => {
        for (const a of bed.hosts) {
          for (const b of bed.hosts) {
            if (a === b) continue;
            await eventually(
              () => ping(a.pods[0], b.pods[0].ip, 1),
              10_000,
              `${a.name} pod → ${b.name} pod`,
            );
          }
        }
      });

      await t.step("a node deleted in the API loses its route on the peers", async () => {
        api.deleteNode("host3");
        await eventually(
          async () => !(await bed.hosts[0].routes()).some((r) => r.startsWith("10.100.3.0/24")),
          5000,
          "route to 10.100.3.0/24 removed on host1",
        );
        assert.ok(await ping(bed.hosts[0].pods[0], bed.hosts[1].pods[0].ip, 1));
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
