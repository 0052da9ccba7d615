/**
 * End to end in Kubernetes mode with dual-stack and IPv6-only networks (root only): three test-bed
 * hosts run the agent with `--kube-subnet-mgr` against the fake API server, their nodes carry one
 * podCIDR per family (or an IPv6 one only). Each host's subnets are its podCIDRs, the annotations
 * it writes on its node are flannel's byte for byte, the IPv6 kernel entries are exact, pods ping
 * each other in every family on every pair, a restart loses no ping, and the vxlan IPv6 MAC comes
 * back from the node's `backend-v6-data` when the device is gone. A node without an IPv6 podCIDR
 * under EnableIPv6 gets one clear error. Shared checks: `dualstack_checks.ts`.
 */
import assert from "node:assert/strict";
import { FakeApiServer } from "./fake_apiserver.ts";
import { bareNode, PREFIX } from "./kube_harness.ts";
import { eventually, type Host, ping, skipUnlessRoot, TestBed } from "./testbed.ts";
import {
  dualConfig,
  expectV6Entries,
  haveV6Entries,
  lines,
  macOf,
  pingEveryPair,
  restartLosesNothing,
} from "./dualstack_checks.ts";

/** Host `i`'s (1-based) podCIDRs: one per family, or IPv6 only. */
function podCIDRs(i: number, v6Only: boolean): string[] {
  const v6 = `fd00:244:0:${i.toString(16)}::/64`;
  return v6Only ? [v6] : [`10.244.${i}.0/24`, v6];
}

/** A test bed whose hosts run in Kubernetes mode against a fake API server, with their nodes. */
class KubeBed implements AsyncDisposable {
  private constructor(
    readonly bed: TestBed,
    readonly api: FakeApiServer,
    readonly dir: string,
  ) {}

  static async create(config: string, v6Only: boolean, hosts = 3): Promise<KubeBed> {
    const bed = await TestBed.create({ hosts, config });
    let api: FakeApiServer | undefined, dir: string | undefined;
    try {
      api = await FakeApiServer.start({ hostname: bed.underlayIP(254) });
      dir = await Deno.makeTempDir({ prefix: "flannel-kube-ds-" });
      const netConfigPath = `${dir}/net-conf.json`;
      await Deno.writeTextFile(netConfigPath, config);
      for (const [i, h] of bed.hosts.entries()) {
        h.kube = { apiUrl: api.url, netConfigPath };
        api.setNode(bareNode(h.name, podCIDRs(i + 1, v6Only)));
      }
      return new KubeBed(bed, api, dir);
    } catch (err) {
      await api?.stop();
      if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      await bed[Symbol.asyncDispose]();
      throw err;
    }
  }

  /** The annotations on `h`'s node, without the one kubeadm set. */
  annotations(h: Host): Record<string, string> {
    const ann = { ...this.api.getNode(h.name)!.metadata!.annotations! };
    delete ann["node.alpha.kubernetes.io/ttl"];
    return ann;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.bed[Symbol.asyncDispose]();
    await this.api.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** subnet.env names the podCIDRs' first addresses, each family's Network and the MTU. */
async function subnetEnvIsPodCIDRs(bed: TestBed, v6Only: boolean, mtu: string): Promise<void> {
  for (const [i, h] of bed.hosts.entries()) {
    const want: Record<string, string> = {
      ...(v6Only
        ? {}
        : { FLANNEL_NETWORK: "10.244.0.0/16", FLANNEL_SUBNET: `10.244.${i + 1}.1/24` }),
      FLANNEL_IPV6_NETWORK: "fd00:244::/56",
      FLANNEL_IPV6_SUBNET: `fd00:244:0:${i + 1}::1/64`,
      FLANNEL_MTU: mtu,
      FLANNEL_IPMASQ: "true",
    };
    assert.deepEqual(await h.subnetEnv(), want, h.name);
  }
}

/** Host `i`'s IPv6 pod subnet, as `ip` prints it. */
const v6Subnet = (i: number) => `fd00:244:0:${i + 1}::/64`;

async function vxlanCase(t: Deno.TestContext, v6Only: boolean): Promise<void> {
  const config = dualConfig({ Type: "vxlan" }, v6Only);
  await using k = await KubeBed.create(config, v6Only);
  const { bed } = k;
  await bed.startAgents(["--ip-masq"]);
  const v6Subnets = bed.hosts.map((_, i) => v6Subnet(i));

  await t.step("subnet.env carries the podCIDRs and the MTU that fits both families", async () => {
    await subnetEnvIsPodCIDRs(bed, v6Only, "1430");
  });

  await t.step("each node's annotations are exactly what flannel writes", async () => {
    for (const h of bed.hosts) {
      const vtep6 = `{"VNI":1,"VtepMAC":"${await macOf(h, "flannel-v6.1")}"}`;
      // flannel writes public-ip and backend-data for vxlan only when there is IPv4 backend data.
      const v4 = v6Only ? {} : {
        [`${PREFIX}backend-data`]: `{"VNI":1,"VtepMAC":"${await macOf(h, "flannel.1")}"}`,
        [`${PREFIX}public-ip`]: h.ip,
      };
      assert.deepEqual(k.annotations(h), {
        ...v4,
        [`${PREFIX}backend-type`]: "vxlan",
        [`${PREFIX}backend-v6-data`]: vtep6,
        [`${PREFIX}kube-subnet-manager`]: "true",
        [`${PREFIX}public-ipv6`]: h.ip6,
      }, h.name);
    }
  });

  await t.step("per peer exactly one IPv6 neighbour, FDB entry and onlink route", async () => {
    await expectV6Entries(bed, v6Subnets);
    for (const h of bed.hosts) {
      if (v6Only) {
        assert.equal((await h.run(["ip", "link", "show", "flannel.1"], false)).ok, false);
      }
    }
  });

  for (const h of bed.hosts) await h.addPod();
  await t.step("pods ping each other in every family between every pair", async () => {
    await pingEveryPair(bed, v6Only);
  });

  await t.step("an agent restart keeps the MAC and loses no ping in either family", async () => {
    const c = bed.hosts[2];
    const before = await macOf(c, "flannel-v6.1");
    await restartLosesNothing(bed, v6Only);
    assert.equal(await macOf(c, "flannel-v6.1"), before);
  });

  await t.step(
    "with the devices gone, a restart takes the MACs from the node's backend(-v6)-data",
    async () => {
      const [a, , c] = bed.hosts;
      const mac6 = await macOf(c, "flannel-v6.1");
      const mac4 = v6Only ? undefined : await macOf(c, "flannel.1");
      await c.stopAgent();
      await c.run(["ip", "link", "del", "flannel-v6.1"]);
      if (!v6Only) await c.run(["ip", "link", "del", "flannel.1"]);
      c.startAgent(["--ip-masq"]);
      await c.agent!.waitFor(/Synced \d+ peers/, 30_000);
      assert.equal(await macOf(c, "flannel-v6.1"), mac6);
      if (mac4) assert.equal(await macOf(c, "flannel.1"), mac4);
      assert.equal(
        k.annotations(c)[`${PREFIX}backend-v6-data`],
        `{"VNI":1,"VtepMAC":"${mac6}"}`,
      );
      await eventually(() => ping(a.pods[0], c.pods[0].ip6!, 1), 5000, "IPv6 ping after restart");
      if (!v6Only) assert.ok(await ping(a.pods[0], c.pods[0].ip, 2), "IPv4 ping after restart");
    },
  );
}

Deno.test({
  name: "kube vxlan dual stack: podCIDR leases, flannel's annotations, IPv6 entries, pings, MACs",
  ignore: skipUnlessRoot("Kubernetes dual-stack vxlan end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => vxlanCase(t, false),
});

Deno.test({
  name: "kube vxlan IPv6-only: flannel-v6.1 alone, flannel's annotations, pings, MAC restored",
  ignore: skipUnlessRoot("Kubernetes IPv6-only vxlan end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => vxlanCase(t, true),
});

async function hostGwCase(t: Deno.TestContext, v6Only: boolean): Promise<void> {
  const config = dualConfig({ Type: "host-gw" }, v6Only);
  await using k = await KubeBed.create(config, v6Only);
  const { bed } = k;
  await bed.startAgents(["--ip-masq"]);

  await t.step("subnet.env carries the podCIDRs and the link MTU", async () => {
    await subnetEnvIsPodCIDRs(bed, v6Only, "1500");
  });

  await t.step("each node's annotations are exactly what flannel writes", () => {
    for (const h of bed.hosts) {
      // host-gw writes public-ip even without IPv4: Go's zero IPv4 address, "0.0.0.0".
      assert.deepEqual(k.annotations(h), {
        [`${PREFIX}backend-data`]: "null",
        [`${PREFIX}backend-type`]: "host-gw",
        [`${PREFIX}backend-v6-data`]: "null",
        [`${PREFIX}kube-subnet-manager`]: "true",
        [`${PREFIX}public-ip`]: v6Only ? "0.0.0.0" : h.ip,
        [`${PREFIX}public-ipv6`]: h.ip6,
      }, h.name);
    }
  });

  await t.step("each host has exactly one IPv6 route per peer, via its PublicIPv6", async () => {
    for (const [i, h] of bed.hosts.entries()) {
      const want6 = bed.hosts.flatMap((p, j) =>
        i === j ? [] : [`${v6Subnet(j)} via ${p.ip6} dev eth0 metric 1024 pref medium`]
      ).sort();
      const want4 = v6Only
        ? []
        : bed.hosts.flatMap((p, j) => i === j ? [] : [`10.244.${j + 1}.0/24 via ${p.ip} dev eth0`])
          .sort();
      let have: string[][] = [];
      await eventually(
        async () => {
          have = [
            (await lines(h, ["ip", "-6", "route", "show", "proto", "101"])).sort(),
            (await lines(h, ["ip", "-4", "route", "show", "proto", "101"])).sort(),
          ];
          return JSON.stringify(have) === JSON.stringify([want6, want4]);
        },
        5000,
        `${h.name}: routes ${[...want6, ...want4].join("; ")}`,
      ).catch((err) => {
        throw new Error(`${err.message}; have ${have.flat().join("; ")}`);
      });
    }
  });

  for (const h of bed.hosts) await h.addPod();
  await t.step("pods ping each other in every family between every pair", async () => {
    await pingEveryPair(bed, v6Only);
  });

  await t.step("an agent restart loses no ping in either family", async () => {
    await restartLosesNothing(bed, v6Only);
  });

  await t.step("a node deleted in the API loses its routes on the peers", async () => {
    const [a, b, c] = bed.hosts;
    k.api.deleteNode(c.name);
    await eventually(
      async () =>
        (await lines(a, ["ip", "-6", "route", "show", "proto", "101"])).join() ===
          `${v6Subnet(1)} via ${b.ip6} dev eth0 metric 1024 pref medium` &&
        (v6Only || (await lines(a, ["ip", "-4", "route", "show", "proto", "101"])).length === 1),
      5000,
      `${a.name}: only the route to ${b.name} left`,
    );
    assert.ok(await ping(a.pods[0], b.pods[0].ip6!, 2), "IPv6 to the remaining peer");
  });
}

Deno.test({
  name: "kube host-gw IPv6-only: podCIDR leases, flannel's annotations, IPv6 routes, pings",
  ignore: skipUnlessRoot("Kubernetes IPv6-only host-gw end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => hostGwCase(t, true),
});

Deno.test({
  name: "kube host-gw dual stack: podCIDR leases, flannel's annotations, routes, pings",
  ignore: skipUnlessRoot("Kubernetes dual-stack host-gw end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => hostGwCase(t, false),
});

Deno.test({
  name: "kube vxlan IPv6-only: --public-ipv6 and the node-public-ipv6 annotation pick the address",
  ignore: skipUnlessRoot("Kubernetes IPv6 public address end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using k = await KubeBed.create(dualConfig({ Type: "vxlan" }, true), true);
    const { bed, api } = k;
    const [h1, h2, h3] = bed.hosts;
    // Hosts 2 and 3 get a second underlay address to advertise instead of their first.
    const extra = [bed.underlayIP6(0x102), bed.underlayIP6(0x103)];
    for (const [i, h] of [h2, h3].entries()) {
      await h.run(["ip", "-6", "addr", "add", `${extra[i]}/64`, "dev", "eth0", "nodad"]);
    }
    // The annotation wins over the flag (flannel's main.go), so host 3's flag names eth0's own.
    api.updateNode(
      h3.name,
      (n) => n.metadata!.annotations![`${PREFIX}node-public-ipv6`] = extra[1],
    );
    const agents = [
      h1.startAgent(),
      h2.startAgent([`--public-ipv6=${extra[0]}`]),
      h3.startAgent([`--public-ipv6=${h3.ip6}`]),
    ];
    await Promise.all(agents.map((a) => a.waitFor(/Wrote subnet file/, 30_000)));
    const public6 = [h1.ip6, ...extra];

    await t.step("public-ipv6 and the VXLAN local address are the chosen ones", async () => {
      for (const [i, h] of bed.hosts.entries()) {
        assert.equal(k.annotations(h)[`${PREFIX}public-ipv6`], public6[i], h.name);
        const d = (await h.run(["ip", "-d", "link", "show", "flannel-v6.1"])).stdout;
        assert.match(d, new RegExp(`vxlan id 1 local ${public6[i]} dev eth0 `), h.name);
      }
    });

    await t.step("peers send to the chosen addresses (FDB dst)", async () => {
      for (const [i, h] of bed.hosts.entries()) {
        const want: string[] = [];
        for (const [j, p] of bed.hosts.entries()) {
          if (i !== j) {
            want.push(`${await macOf(p, "flannel-v6.1")} dst ${public6[j]} self permanent`);
          }
        }
        let have: string[] = [];
        await eventually(
          async () => {
            have = (await haveV6Entries(h)).fdb;
            return JSON.stringify(have) === JSON.stringify(want.sort());
          },
          5000,
          `${h.name} FDB ${want.join("; ")}`,
        ).catch((err) => {
          throw new Error(`${err.message}; have ${have.join("; ")}`);
        });
      }
    });

    for (const h of bed.hosts) await h.addPod();
    await t.step("pods ping each other between every pair", async () => {
      await pingEveryPair(bed, true);
    });
  },
});

Deno.test({
  name: "kube EnableIPv6 with an IPv4-only podCIDR: one clear error naming the setting and the fix",
  ignore: skipUnlessRoot("Kubernetes IPv6 podCIDR precondition end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using k = await KubeBed.create(dualConfig({ Type: "host-gw" }), false, 1);
    const h = k.bed.hosts[0];
    k.api.setNode(bareNode(h.name, "10.244.1.0/24"));
    const agent = h.startAgent();
    const first = await agent.waitFor(/Failed to acquire lease/, 30_000);
    assert.match(
      first,
      /node "host1" has no IPv6 pod CIDR \(podCIDRs 10\.244\.1\.0\/24\) but "EnableIPv6" is true in \S+net-conf\.json: give the node an IPv6 podCIDR .* set "EnableIPv6": false$/,
    );
    // Retried every 3 s, logged once.
    const gets = () => k.api.requests.filter((r) => r.url === `/api/v1/nodes/${h.name}`).length;
    const before = gets();
    await eventually(() => gets() >= before + 2, 10_000, "two more attempts");
    assert.equal(agent.lines.filter((l) => l.startsWith("E")).length, 1, agent.lines.join("\n"));
    assert.equal(k.api.requests.filter((r) => r.method === "PATCH").length, 0, "nothing written");
    await assert.rejects(Deno.stat(h.subnetFile), Deno.errors.NotFound);
  },
});
