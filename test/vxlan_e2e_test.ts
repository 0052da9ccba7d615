/**
 * End to end on the multi-host test bed (root only): three hosts running the agent with the vxlan
 * backend exchange pod traffic through `flannel.1`; the device, neighbour, FDB and route entries
 * have flannel's shapes (flannel pkg/backend/vxlan/vxlan_network.go); hand deletions heal within 1 s; an agent restart keeps
 * the MAC and drops no packet. A second bed checks DirectRouting on the shared L2 underlay.
 */
import assert from "node:assert/strict";
import { eventually, type Host, ping, pingDuring, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const PREFIX = "/coreos.com/network";
const config = (backend: Record<string, unknown> = {}) =>
  JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan", ...backend } });

function subnetOf(env: Record<string, string>): string {
  return env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");
}

async function lines(h: Host, cmd: string[]): Promise<string[]> {
  return (await h.run(cmd)).stdout.trim().split("\n").map((l) => l.trim()).filter((l) => l);
}

async function macOf(h: Host): Promise<string> {
  const out = (await h.run(["ip", "link", "show", "flannel.1"])).stdout;
  return /link\/ether ([0-9a-f:]{17})/.exec(out)![1];
}

/** The lease value this bed's etcd holds for `subnet`. */
async function leaseValue(bed: TestBed, subnet: string): Promise<string> {
  const out = await sh([
    "etcdctl",
    `--endpoints=${bed.etcdEndpoint}`,
    "get",
    "--print-value-only",
    `${PREFIX}/subnets/${subnet.replace("/", "-")}`,
  ]);
  return out.stdout.trim();
}

Deno.test({
  name: "vxlan: three hosts exchange pod traffic over flannel.1, heal and restart cleanly",
  ignore: skipUnlessRoot("vxlan end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 3, config: config(), prefix: PREFIX });
    await bed.startAgents();
    const envs = await Promise.all(bed.hosts.map((h) => h.subnetEnv()));
    const subnets = envs.map(subnetOf);
    const macs = await Promise.all(bed.hosts.map(macOf));
    const net = (s: string) => s.split("/")[0];

    await t.step("distinct subnets, FLANNEL_MTU 1450, flannel's lease bytes", async () => {
      assert.equal(new Set(subnets).size, 3);
      for (const [i, e] of envs.entries()) {
        assert.match(subnets[i], /^10\.244\.\d+\.0\/24$/);
        assert.equal(e.FLANNEL_MTU, "1450");
        assert.equal(
          await leaseValue(bed, subnets[i]),
          `{"PublicIP":"${bed.hosts[i].ip}","PublicIPv6":null,"BackendType":"vxlan",` +
            `"BackendData":{"VNI":1,"VtepMAC":"${macs[i]}"}}`,
        );
      }
    });

    await t.step("ip -d link show flannel.1 has flannel's attributes", async () => {
      for (const [i, h] of bed.hosts.entries()) {
        const out = (await h.run(["ip", "-d", "link", "show", "flannel.1"])).stdout;
        assert.match(out, /flannel\.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 /);
        assert.match(out, new RegExp(`link/ether ${macs[i]} brd ff:ff:ff:ff:ff:ff`));
        assert.match(
          out,
          new RegExp(
            `vxlan id 1 local ${h.ip.replaceAll(".", "\\.")} dev eth0 .*dstport 8472 nolearning`,
          ),
        );
        const addrs = await lines(h, ["ip", "-4", "-o", "addr", "show", "dev", "flannel.1"]);
        assert.equal(addrs.length, 1);
        assert.match(addrs[0], new RegExp(`inet ${net(subnets[i])}/32 `));
      }
    });

    await t.step(
      "neighbour, FDB and route entries match flannel pkg/backend/vxlan/vxlan_network.go shapes exactly",
      async () => {
        for (const [i, h] of bed.hosts.entries()) {
          const peers = [0, 1, 2].filter((j) => j !== i);
          const want = {
            neigh: peers.map((j) => `${net(subnets[j])} lladdr ${macs[j]} PERMANENT`).sort(),
            fdb: peers.map((j) => `${macs[j]} dst ${bed.hosts[j].ip} self permanent`).sort(),
            route: peers.map((j) =>
              `${subnets[j]} via ${net(subnets[j])} dev flannel.1 proto 101 onlink`
            ).sort(),
          };
          const have = async () => ({
            neigh: (await lines(h, ["ip", "neigh", "show", "dev", "flannel.1"])).sort(),
            fdb: (await lines(h, ["bridge", "fdb", "show", "dev", "flannel.1"])).sort(),
            route: (await h.routes()).filter((r) => r.includes(" dev flannel.1 ")).map((r) =>
              r.trim()
            )
              .sort(),
          });
          await eventually(
            async () => {
              try {
                assert.deepEqual(await have(), want);
                return true;
              } catch {
                return false;
              }
            },
            5000,
            `${h.name} entries`,
          ).catch(async (err) => {
            assert.deepEqual(await have(), want, String(err));
          });
          // No route for the whole network, as in flannel.
          assert.ok(!(await h.routes()).some((r) => r.startsWith("10.244.0.0/16")));
        }
      },
    );

    for (const h of bed.hosts) await h.addPod();
    await t.step("pod-to-pod ping works between every pair", async () => {
      for (const a of bed.hosts) {
        for (const b of bed.hosts) {
          if (a === b) continue;
          assert.ok(await ping(a.pods[0], b.pods[0].ip, 2), `${a.name} pod → ${b.name} pod`);
        }
      }
    });

    const h = bed.hosts[0];
    const peer = 1;
    const healed = async (what: string, cmd: string[], check: () => Promise<boolean>) => {
      await h.run(cmd);
      const t0 = Date.now();
      await eventually(check, 1000, `${what} restored`);
      console.log(`  ${what} restored after ${Date.now() - t0} ms`);
    };
    await t.step("a route deleted by hand is back within 1 s", async () => {
      await healed(
        "route",
        ["ip", "route", "del", subnets[peer]],
        async () => (await h.routes()).some((r) => r.startsWith(`${subnets[peer]} via`)),
      );
    });
    await t.step("a neighbour entry deleted by hand is back within 1 s", async () => {
      await healed(
        "neighbour",
        ["ip", "neigh", "del", net(subnets[peer]), "dev", "flannel.1"],
        async () =>
          (await lines(h, ["ip", "neigh", "show", "dev", "flannel.1"])).includes(
            `${net(subnets[peer])} lladdr ${macs[peer]} PERMANENT`,
          ),
      );
    });
    await t.step("an FDB entry deleted by hand is back within 1 s", async () => {
      await healed(
        "FDB entry",
        ["bridge", "fdb", "del", macs[peer], "dev", "flannel.1", "dst", bed.hosts[peer].ip],
        async () =>
          (await lines(h, ["bridge", "fdb", "show", "dev", "flannel.1"])).includes(
            `${macs[peer]} dst ${bed.hosts[peer].ip} self permanent`,
          ),
      );
    });
    await t.step("flannel.1 deleted by hand is recreated with every peer within 1 s", async () => {
      await healed("device and peers", ["ip", "link", "del", "flannel.1"], async () => {
        const routes = (await h.routes()).filter((r) => r.includes("dev flannel.1"));
        const fdb = (await h.run(["bridge", "fdb", "show", "dev", "flannel.1"], false)).stdout;
        return routes.length === 2 && fdb.split("\n").filter((l) => l.includes("dst")).length === 2;
      });
      assert.equal(await macOf(h), macs[0], "same MAC");
      for (const j of [1, 2]) {
        assert.ok(await ping(h.pods[0], bed.hosts[j].pods[0].ip, 2), `host1 pod → host${j + 1}`);
      }
    });

    await t.step("restarting an agent keeps the MAC and drops no ping", async () => {
      const r = bed.hosts[2];
      const [sent, received] = await pingDuring(h.pods[0], r.pods[0].ip, async () => {
        await r.stopAgent();
        r.startAgent();
        await r.agent!.waitFor(/Wrote subnet file/, 30_000);
        await r.agent!.waitFor(/Running backend/, 10_000);
      });
      console.log(`  restart: ${sent} sent, ${sent - received} lost`);
      assert.equal(await macOf(r), macs[2]);
      assert.ok(sent > 10, `only ${sent} pings sent`);
      assert.equal(received, sent, `${sent - received} of ${sent} pings lost`);
      assert.ok(!r.agent!.lines.some((l) => /recreating device|Created VXLAN device/.test(l)));
    });
  },
});

Deno.test({
  name: "vxlan DirectRouting: hosts on the shared L2 underlay use plain routes",
  ignore: skipUnlessRoot("vxlan DirectRouting end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using bed = await TestBed.create({
      hosts: 2,
      config: config({ DirectRouting: true }),
      prefix: PREFIX,
    });
    await bed.startAgents();
    const subnets = await Promise.all(bed.hosts.map(async (h) => subnetOf(await h.subnetEnv())));
    for (const [i, h] of bed.hosts.entries()) {
      const j = 1 - i;
      await eventually(
        async () =>
          (await h.routes()).includes(`${subnets[j]} via ${bed.hosts[j].ip} dev eth0 proto 101`),
        5000,
        `${h.name}: direct route to ${subnets[j]}`,
      );
      assert.deepEqual(await lines(h, ["ip", "neigh", "show", "dev", "flannel.1"]), []);
      assert.ok(
        h.agent!.lines.some((l) => l.includes(`Adding direct route to subnet: ${subnets[j]}`)),
      );
      await h.addPod();
    }
    assert.ok(await ping(bed.hosts[0].pods[0], bed.hosts[1].pods[0].ip, 2));
    assert.ok(await ping(bed.hosts[1].pods[0], bed.hosts[0].pods[0].ip, 2));
  },
});
