/**
 * Checks shared by the dual-stack and IPv6-only end-to-end tests (etcd and Kubernetes mode): the
 * network config, pings in every family between every pair, the IPv6 kernel entries vxlan
 * installs per peer, and a restart that loses no ping.
 */
import assert from "node:assert/strict";
import { eventually, type Host, ping, pingDuring, type TestBed } from "./testbed.ts";

export const V4 = { Network: "10.244.0.0/16" };
export const V6 = { EnableIPv6: true, IPv6Network: "fd00:244::/56", IPv6SubnetLen: 64 };

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
      // The first packet to a peer may wait out a lost neighbour solicitation on the test bed's
      // underlay (about 1 s, longer than ping's timeout): reachability first, then no loss.
      await eventually(
        () => ping(a.pods[0], b.pods[0].ip6!, 1),
        5000,
        `${a.name} → ${b.name} (IPv6) reachable`,
      );
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

/** The MAC of a device on `h`. */
export async function macOf(h: Host, dev: string): Promise<string> {
  const out = (await h.run(["ip", "link", "show", dev])).stdout;
  return /link\/ether ([0-9a-f:]{17})/.exec(out)![1];
}

/** The IPv6 entries `h` must have for every peer on `flannel-v6.1`, as `ip`/`bridge` print them. */
export async function wantV6Entries(bed: TestBed, i: number, v6Subnets: string[]) {
  const neigh: string[] = [], fdb: string[] = [], routes: string[] = [];
  for (const [j, p] of bed.hosts.entries()) {
    if (j === i) continue;
    const mac = await macOf(p, "flannel-v6.1");
    const gw = v6Subnets[j].replace("/64", "");
    neigh.push(`${gw} lladdr ${mac} PERMANENT`);
    fdb.push(`${mac} dst ${p.ip6} self permanent`);
    routes.push(`${v6Subnets[j]} via ${gw} metric 1024 onlink pref medium`);
  }
  return { neigh: neigh.sort(), fdb: fdb.sort(), routes: routes.sort() };
}

export async function haveV6Entries(h: Host) {
  const dev = ["dev", "flannel-v6.1"];
  const neigh = (await lines(h, ["ip", "-6", "neigh", "show", ...dev]))
    .filter((l) => l.includes("PERMANENT"));
  const fdb = (await lines(h, ["bridge", "fdb", "show", ...dev]))
    .filter((l) => !l.startsWith("00:00:00:00:00:00")).map((l) => l.replace(/ via \S+/, ""));
  const routes = await lines(h, ["ip", "-6", "route", "show", "proto", "101", ...dev]);
  return { neigh: neigh.sort(), fdb: fdb.sort(), routes: routes.sort() };
}

/** Every host has exactly the IPv6 neighbour, FDB entry and onlink route per peer (within 5 s). */
export async function expectV6Entries(bed: TestBed, v6Subnets: string[]): Promise<void> {
  for (const [i, h] of bed.hosts.entries()) {
    const want = await wantV6Entries(bed, i, v6Subnets);
    let have: unknown;
    await eventually(
      async () => {
        have = await haveV6Entries(h);
        return JSON.stringify(have) === JSON.stringify(want);
      },
      5000,
      `${h.name} IPv6 entries`,
    ).catch((err) => {
      throw new Error(`${err.message}: want ${JSON.stringify(want)} have ${JSON.stringify(have)}`);
    });
  }
}
