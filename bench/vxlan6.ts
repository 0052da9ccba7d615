/**
 * IPv6 vxlan throughput benchmark (issue 12), root only: iperf3 TCP from a pod on host 1 to a pod
 * on host 2 over the agent's `flannel-v6.1` (dual-stack network, IPv6 underlay), as a ratio to the
 * same pods talking over an IPv6 VXLAN path configured by hand with `ip`/`bridge` (second device,
 * VNI 99, port 4799, same MTU, addresses from `fd00:250::/48`) in the same run. Each run lasts
 * 10 s after a 1 s warm-up; the runs are interleaved in rounds, alternating which path goes
 * first, so a trend in the machine's load favours neither. The ratio is the median of the
 * per-round ratios: the two runs of a round share the machine's load of the moment (on 2 busy
 * cores a single 10 s run varies by ±30 %), so pairing them cancels most of it.
 */
import { interleavedIperf, median, report } from "./_util.ts";
import { sh, TestBed } from "../test/testbed.ts";

const ROUNDS = 4;
const SECONDS = 10;

/**
 * A second IPv6 VXLAN path between the two hosts, configured by hand as flannel programs
 * `flannel-v6.1`, for the pods' `fd00:250:i::2`.
 */
async function handPath6(bed: TestBed): Promise<void> {
  const macs: string[] = [];
  for (const [i, h] of bed.hosts.entries()) {
    const n = i + 1;
    const mtu = (await h.subnetEnv()).FLANNEL_MTU;
    await h.run([
      ...`ip link add vx6ref mtu ${mtu} type vxlan id 99 dstport 4799 dev eth0 nolearning local`
        .split(" "),
      h.ip6,
    ]);
    await h.run(["ip", "-6", "addr", "add", `fd00:250:${n}::/128`, "dev", "vx6ref"]);
    await h.run(["ip", "link", "set", "vx6ref", "up"]);
    await h.run(["ip", "-6", "addr", "add", `fd00:250:${n}::1/64`, "dev", "cni0", "nodad"]);
    await sh(["ip", "-6", "addr", "add", `fd00:250:${n}::2/64`, "dev", "eth0", "nodad"], {
      netns: h.pods[0].ns,
    });
    const link = (await h.run(["ip", "link", "show", "vx6ref"])).stdout;
    macs.push(/link\/ether (\S+)/.exec(link)![1]);
  }
  for (const [i, h] of bed.hosts.entries()) {
    const j = 1 - i, n = j + 1;
    const peer = bed.hosts[j];
    await h.run(
      `ip -6 neigh replace fd00:250:${n}:: lladdr ${macs[j]} dev vx6ref nud permanent`.split(" "),
    );
    await h.run(
      `bridge fdb replace ${macs[j]} dev vx6ref dst ${peer.ip6} self permanent`.split(" "),
    );
    await h.run(
      `ip -6 route replace fd00:250:${n}::/64 via fd00:250:${n}:: dev vx6ref onlink`.split(" "),
    );
  }
}

/** Waits until `to` answers a `ping -6` from the pod (the first may wait out neighbour discovery). */
async function reachable(ns: string, to: string, from?: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const args = ["-6", "-n", "-c", "1", "-W", "1", ...(from ? ["-I", from] : []), to];
    if ((await sh(["ping", ...args], { netns: ns, check: false })).ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${to} unreachable from ${ns}`);
}

export async function benchVxlan6(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("IPv6 vxlan benchmark skipped: needs root (network namespaces)");
    return;
  }
  await using bed = await TestBed.create({
    hosts: 2,
    config: JSON.stringify({
      Network: "10.244.0.0/16",
      EnableIPv6: true,
      IPv6Network: "fd00:244::/56",
      IPv6SubnetLen: 64,
      Backend: { Type: "vxlan" },
    }),
  });
  await bed.startAgents();
  for (const h of bed.hosts) await h.addPod();
  await handPath6(bed);
  const [client, server] = [bed.hosts[0].pods[0], bed.hosts[1].pods[0]];
  await reachable(client.ns, server.ip6!);
  await reachable(client.ns, "fd00:250:2::2", "fd00:250:1::2");
  const { agent, hand } = await interleavedIperf({
    clientNs: client.ns,
    serverNs: server.ns,
    agentTo: server.ip6!,
    handTo: "fd00:250:2::2",
    handFrom: "fd00:250:1::2",
    rounds: ROUNDS,
    seconds: SECONDS,
  });
  const a = median(agent), h = median(hand);
  const ratio = median(agent.map((x, i) => x / hand[i]));
  report(
    `iperf3 pod→pod TCP over flannel-v6.1 (${SECONDS} s ×${ROUNDS})`,
    `${a.toFixed(2)} Gbit/s vs hand-made IPv6 vxlan ${h.toFixed(2)}`,
    `${ratio.toFixed(2)}`,
    "≥ 0.95",
  );
  const runs = agent.map((x, i) => `${x.toFixed(2)}/${hand[i].toFixed(2)}`).join(" ");
  console.log(`  (agent/hand per round, Gbit/s: ${runs})`);
}

if (import.meta.main) await benchVxlan6();
