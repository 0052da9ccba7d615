/**
 * End to end on the multi-host test bed with its IPv6 underlay (root only): three hosts running
 * the agent in dual-stack and IPv6-only networks, for host-gw and vxlan. Pods ping each other in
 * every family on every pair of hosts; the IPv6 kernel entries have flannel's shapes; a deleted
 * IPv6 route (and for vxlan neighbour, FDB entry and `flannel-v6.1`) is back within 1 s; an agent
 * restart loses no ping in either family. Shared checks: `dualstack_checks.ts`.
 */
import assert from "node:assert/strict";
import { eventually, ping, skipUnlessRoot, TestBed } from "./testbed.ts";
import {
  dualConfig,
  expectV6Entries,
  haveV6Entries,
  lines,
  macOf,
  pingEveryPair,
  restartLosesNothing,
  V6,
  v6SubnetOf,
  wantV6Entries,
} from "./dualstack_checks.ts";
import {
  fillGolden,
  flannelChains,
  GOLDEN_FWD,
  GOLDEN_NAT,
  GOLDEN_NFT_FORWARD,
  GOLDEN_NFT_POSTRTG,
} from "./firewall_goldens.ts";

/** Host 1's IPv6 rules (`ip6tables -S` or `nft list table ip6 flannel-ipv6`) are flannel's. */
async function ipv6RulesAreFlannels(bed: TestBed, nft: boolean): Promise<void> {
  const h = bed.hosts[0];
  const net = { n: V6.IPv6Network, p: v6SubnetOf(await h.subnetEnv()) };
  const ns = { sh: async (cmd: string) => (await h.run(["sh", "-c", cmd])).stdout };
  if (nft) {
    const chains = () =>
      Promise.all(
        ["postrtg", "forward"].map((c) =>
          ns.sh(`nft list chain ip6 flannel-ipv6 ${c} 2>/dev/null || true`)
        ),
      );
    // The rules are written right after subnet.env.
    await eventually(async () => (await chains())[1] !== "", 3000, "flannel-ipv6 chains").catch(
      () => {},
    );
    const [postrtg, forward] = await chains();
    assert.equal(postrtg, fillGolden(GOLDEN_NFT_POSTRTG, net, 6));
    assert.equal(forward, fillGolden(GOLDEN_NFT_FORWARD, net, 6));
    return;
  }
  const tool = /Using iptables-legacy/.test(h.agent!.lines.join("\n"))
    ? "ip6tables-legacy"
    : "ip6tables-nft";
  await eventually(
    async () =>
      (await flannelChains(ns, tool, "nat")) === fillGolden(GOLDEN_NAT, net, 6) &&
      (await flannelChains(ns, tool, "filter")) === fillGolden(GOLDEN_FWD, net, 6),
    3000,
    `${tool} -S equal to flannel's golden rules`,
  ).catch(async (err) => {
    throw new Error(`${err.message}:\n${await flannelChains(ns, tool, "nat")}`);
  });
}

async function hostGwCase(t: Deno.TestContext, v6Only: boolean): Promise<void> {
  await using bed = await TestBed.create({
    hosts: 3,
    config: dualConfig({ Type: "host-gw" }, v6Only),
  });
  await bed.startAgents(["--ip-masq", "--v=2"]);
  const envs = await Promise.all(bed.hosts.map((h) => h.subnetEnv()));
  const v6Subnets = envs.map(v6SubnetOf);

  await t.step("subnet.env names both families (or IPv6 only) and the link MTU", () => {
    for (const e of envs) {
      assert.deepEqual(
        Object.keys(e),
        [
          ...(v6Only ? [] : ["FLANNEL_NETWORK", "FLANNEL_SUBNET"]),
          "FLANNEL_IPV6_NETWORK",
          "FLANNEL_IPV6_SUBNET",
          "FLANNEL_MTU",
          "FLANNEL_IPMASQ",
        ],
      );
      assert.equal(e.FLANNEL_IPV6_NETWORK, "fd00:244::/56");
      assert.equal(e.FLANNEL_MTU, "1500");
    }
  });

  await t.step("each host has exactly one IPv6 route per peer, via its PublicIPv6", async () => {
    for (const [i, h] of bed.hosts.entries()) {
      const want = bed.hosts.flatMap((p, j) =>
        i === j ? [] : [`${v6Subnets[j]} via ${p.ip6} dev eth0 metric 1024 pref medium`]
      ).sort();
      let have: string[] = [];
      await eventually(
        async () => {
          have = (await lines(h, ["ip", "-6", "route", "show", "proto", "101"])).sort();
          return JSON.stringify(have) === JSON.stringify(want);
        },
        5000,
        `${h.name}: IPv6 routes ${want.join("; ")}`,
      ).catch((err) => {
        throw new Error(
          `${err.message}; have ${have.join("; ")}; ${h.name}'s log:\n${h.agent!.lines.join("\n")}`,
        );
      });
      await eventually(
        async () =>
          (await lines(h, ["ip", "-4", "route", "show", "proto", "101"])).length ===
            (v6Only ? 0 : 2),
        5000,
        `${h.name}: ${v6Only ? "no" : "2"} IPv4 routes`,
      ).catch((err) => {
        console.log(h.agent!.lines.join("\n"));
        throw err;
      });
    }
  });

  await t.step("the IPv6 masquerade and forward rules are flannel's (ip6tables -S)", async () => {
    await ipv6RulesAreFlannels(bed, false);
  });

  for (const h of bed.hosts) await h.addPod();
  await t.step("pods ping each other in every family between every pair", async () => {
    await pingEveryPair(bed, v6Only);
  });

  await t.step("a deleted IPv6 route comes back within 1 s", async () => {
    const h = bed.hosts[0];
    await h.run(["ip", "-6", "route", "del", v6Subnets[1]]);
    const t0 = Date.now();
    await eventually(
      async () =>
        (await lines(h, ["ip", "-6", "route", "show", v6Subnets[1]])).some((r) =>
          r.includes(`via ${bed.hosts[1].ip6}`)
        ),
      1000,
      "IPv6 route restored",
    );
    console.log(`  IPv6 route restored after ${Date.now() - t0} ms`);
  });

  await t.step("an agent restart loses no ping in either family", async () => {
    await restartLosesNothing(bed, v6Only);
  });
}

Deno.test({
  name: "host-gw dual stack: IPv4 and IPv6 routes per peer, pings in both families, healing",
  ignore: skipUnlessRoot("dual-stack host-gw end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => hostGwCase(t, false),
});

Deno.test({
  name: "host-gw IPv6-only: IPv6 routes per peer, pings, healing",
  ignore: skipUnlessRoot("IPv6-only host-gw end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => hostGwCase(t, true),
});

async function vxlanCase(t: Deno.TestContext, v6Only: boolean, nft = false): Promise<void> {
  const config = JSON.parse(dualConfig({ Type: "vxlan" }, v6Only));
  if (nft) config.EnableNFTables = true;
  await using bed = await TestBed.create({ hosts: 3, config: JSON.stringify(config) });
  await bed.startAgents(["--ip-masq", "--v=2"]);
  const envs = await Promise.all(bed.hosts.map((h) => h.subnetEnv()));
  const v6Subnets = envs.map(v6SubnetOf);

  await t.step(
    "flannel-v6.1: kernel VXLAN over the IPv6 underlay, MTU 1430, <subnet>/128",
    async () => {
      for (const [i, h] of bed.hosts.entries()) {
        const d = (await h.run(["ip", "-d", "link", "show", "flannel-v6.1"])).stdout;
        assert.match(d, /mtu 1430 /);
        assert.match(d, new RegExp(`vxlan id 1 local ${h.ip6} dev eth0 .*dstport 8472 nolearning`));
        const addrs = await lines(h, [
          "ip",
          "-6",
          "addr",
          "show",
          "dev",
          "flannel-v6.1",
          "scope",
          "global",
        ]);
        assert.ok(
          addrs.some((l) => l.startsWith(`inet6 ${v6Subnets[i].replace("/64", "/128")}`)),
          addrs.join("\n"),
        );
        assert.equal(envs[i].FLANNEL_MTU, "1430", "the MTU that fits both families");
        if (!v6Only) {
          assert.match(
            (await h.run(["ip", "link", "show", "flannel.1"])).stdout,
            /mtu 1450 /,
          );
        } else {assert.equal(
            (await h.run(["ip", "link", "show", "flannel.1"], false)).ok,
            false,
          );}
      }
      assert.ok(bed.hosts[0].agent!.lines.some((l) => v6Only || /FLANNEL_MTU is 1430/.test(l)));
    },
  );

  await t.step(
    "the lease carries PublicIPv6 and BackendV6Data as flannel writes them",
    async () => {
      const { sh } = await import("./testbed.ts");
      const out = (await sh([
        "etcdctl",
        `--endpoints=${bed.etcdEndpoint}`,
        "get",
        "--prefix",
        "/coreos.com/network/subnets/",
      ])).stdout;
      const h = bed.hosts[0];
      const mac6 = await macOf(h, "flannel-v6.1");
      const v4 = v6Only ? "" : `"PublicIP":"${h.ip}",`;
      const data = v6Only
        ? ""
        : `,"BackendData":{"VNI":1,"VtepMAC":"${await macOf(h, "flannel.1")}"}`;
      const want = v6Only
        ? `{"PublicIP":"0.0.0.0","PublicIPv6":"${h.ip6}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${mac6}"}}`
        : `{${v4}"PublicIPv6":"${h.ip6}","BackendType":"vxlan"${data},"BackendV6Data":{"VNI":1,"VtepMAC":"${mac6}"}}`;
      assert.ok(out.includes(want), `want ${want} in\n${out}`);
    },
  );

  await t.step(
    `the IPv6 masquerade and forward rules are flannel's (${
      nft ? "nft list table ip6 flannel-ipv6" : "ip6tables -S"
    })`,
    async () => {
      await ipv6RulesAreFlannels(bed, nft);
    },
  );

  await t.step("per peer exactly one IPv6 neighbour, FDB entry and onlink route", async () => {
    await expectV6Entries(bed, v6Subnets);
  });

  for (const h of bed.hosts) await h.addPod();
  await t.step("pods ping each other in every family between every pair", async () => {
    await pingEveryPair(bed, v6Only);
  });

  await t.step(
    "a deleted IPv6 route, neighbour, FDB entry and flannel-v6.1 come back within 1 s",
    async () => {
      const [h, p] = bed.hosts;
      const want = await wantV6Entries(bed, 0, v6Subnets);
      const mac = await macOf(p, "flannel-v6.1");
      const gw = v6Subnets[1].replace("/64", "");
      const cases: Array<[string, string[]]> = [
        ["route", ["ip", "-6", "route", "del", v6Subnets[1], "dev", "flannel-v6.1"]],
        ["neighbour", ["ip", "-6", "neigh", "del", gw, "dev", "flannel-v6.1"]],
        ["FDB entry", ["bridge", "fdb", "del", mac, "dev", "flannel-v6.1", "dst", p.ip6]],
        ["device", ["ip", "link", "del", "flannel-v6.1"]],
      ];
      for (const [what, cmd] of cases) {
        await h.run(cmd);
        const t0 = Date.now();
        await eventually(
          async () =>
            JSON.stringify(await haveV6Entries(h).catch(() => ({}))) === JSON.stringify(want),
          1000,
          `${what} restored`,
        );
        console.log(`  ${what} restored after ${Date.now() - t0} ms`);
      }
      assert.ok(await ping(h.pods[0], p.pods[0].ip6!, 2), "IPv6 traffic after the repairs");
    },
  );

  await t.step("an agent restart keeps the MAC and loses no ping in either family", async () => {
    const c = bed.hosts[2];
    const before = await macOf(c, "flannel-v6.1");
    await restartLosesNothing(bed, v6Only);
    assert.equal(await macOf(c, "flannel-v6.1"), before);
  });
}

Deno.test({
  name: "vxlan dual stack: flannel.1 and flannel-v6.1, entries, pings, healing, restart",
  ignore: skipUnlessRoot("dual-stack vxlan end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => vxlanCase(t, false),
});

Deno.test({
  name: "vxlan dual stack with nftables: flannel.1 and flannel-v6.1, entries, pings, healing",
  ignore: skipUnlessRoot("dual-stack vxlan end-to-end (nftables)"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => vxlanCase(t, false, true),
});

Deno.test({
  name: "vxlan IPv6-only with nftables: flannel-v6.1 alone, entries, pings, healing, restart",
  ignore: skipUnlessRoot("IPv6-only vxlan end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => vxlanCase(t, true, true),
});

Deno.test({
  name: "EnableIPv6 on a host with disable_ipv6=1: one clear error, no half-built data path",
  ignore: skipUnlessRoot("IPv6 precondition end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using bed = await TestBed.create({ hosts: 1, config: dualConfig({ Type: "vxlan" }) });
    const h = bed.hosts[0];
    await h.run(["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]);
    const agent = h.startAgent();
    const status = await agent.status;
    assert.notEqual(status.code, 0);
    const errors = agent.lines.filter((l) => l.startsWith("E"));
    assert.ok(
      errors.some((l) =>
        l.includes("net.ipv6.conf.eth0.disable_ipv6=1") &&
        l.includes("sysctl -w net.ipv6.conf.eth0.disable_ipv6=0")
      ),
      agent.lines.join("\n"),
    );
    assert.equal((await h.run(["ip", "link", "show", "flannel.1"], false)).ok, false);
    assert.equal((await h.run(["ip", "link", "show", "flannel-v6.1"], false)).ok, false);
  },
});
