/**
 * End to end on the multi-host test bed with its IPv6 underlay (root only): three hosts running
 * the agent in dual-stack and IPv6-only networks, for host-gw and vxlan. Pods ping each other in
 * every family on every pair of hosts; the IPv6 kernel entries have flannel's shapes; a deleted
 * IPv6 route (and for vxlan neighbour, FDB entry and `flannel-v6.1`) is back within 1 s; an agent
 * restart loses no ping in either family.
 */
import assert from "node:assert/strict";
import { eventually, type Host, ping, pingDuring, skipUnlessRoot, TestBed } from "./testbed.ts";

const V4 = { Network: "10.244.0.0/16" };
const V6 = { EnableIPv6: true, IPv6Network: "fd00:244::/56", IPv6SubnetLen: 64 };

export function dualConfig(backend: Record<string, unknown>, v6Only = false): string {
  return JSON.stringify({
    ...(v6Only ? { EnableIPv4: false } : V4),
    ...V6,
    Backend: backend,
  });
}

export async function lines(h: Host, cmd: string[]): Promise<string[]> {
  return (await h.run(cmd)).stdout.trim().split("\n").map((l) => l.trim()).filter((l) => l);
}

/** The IPv6 subnet of a host's subnet.env: `fd00:244:0:2a::1/64` → `fd00:244:0:2a::/64`. */
export function v6SubnetOf(env: Record<string, string>): string {
  return env.FLANNEL_IPV6_SUBNET.replace(/::1\/64$/, "::/64");
}

/** Every pod pings every other host's pod in each family it has. */
export async function pingEveryPair(bed: TestBed, v6Only: boolean): Promise<void> {
  for (const a of bed.hosts) {
    for (const b of bed.hosts) {
      if (a === b) continue;
      if (!v6Only) assert.ok(await ping(a.pods[0], b.pods[0].ip, 2), `${a.name} → ${b.name}`);
      assert.ok(await ping(a.pods[0], b.pods[0].ip6!, 2), `${a.name} → ${b.name} (IPv6)`);
    }
  }
}

/** A restart of host 3's agent while host 1's pod pings it in every family: nothing lost. */
export async function restartLosesNothing(bed: TestBed, v6Only: boolean): Promise<void> {
  const [a, , c] = bed.hosts;
  const restart = async () => {
    await c.stopAgent();
    c.startAgent();
    await c.agent!.waitFor(/Synced \d+ peers/, 30_000);
  };
  const targets = v6Only ? [c.pods[0].ip6!] : [c.pods[0].ip, c.pods[0].ip6!];
  // One restart serves every family's pinger.
  let restarted: Promise<void> | undefined;
  const once = () => (restarted ??= restart());
  const results = await Promise.all(targets.map((t) => pingDuring(a.pods[0], t, once)));
  for (const [i, [sent, received]] of results.entries()) {
    assert.ok(sent > 5, `sent ${sent}`);
    assert.equal(received, sent, `${targets[i]}: ${sent - received} of ${sent} lost`);
  }
}

async function hostGwCase(t: Deno.TestContext, v6Only: boolean): Promise<void> {
  await using bed = await TestBed.create({
    hosts: 3,
    config: dualConfig({ Type: "host-gw" }, v6Only),
  });
  await bed.startAgents();
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
        throw new Error(`${err.message}; have ${have.join("; ")}`);
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
