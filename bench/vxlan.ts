/**
 * vxlan benchmarks (issue 4), root only:
 * - throughput: iperf3 TCP from a pod on host 1 to a pod on host 2 over the agent's `flannel.1`,
 *   as a ratio to the same pods talking over a VXLAN path configured by hand with `ip`/`bridge`
 *   (second device, VNI 99, port 4799, same MTU) in the same run, runs interleaved;
 * - 5 000 peers (15 000 kernel objects: neighbour, FDB entry, route each) programmed by the
 *   backend in-process (fake subnet manager, real rtnetlink) inside a throwaway namespace
 *   (`unshare --net`), as a ratio to `ip -batch` + `bridge -batch` doing the same; plus the time
 *   of an idle reconcile pass over 5 000 peers and of re-programming all of them after the device
 *   is deleted.
 */
import { interleavedIperf, median, report } from "./_util.ts";
import { sh, TestBed } from "../test/testbed.ts";

const PEERS = 5000;
const ROUNDS = 4;
const SECONDS = 10;

// ---------------------------------------------------------------------------------------------
// Throughput

/** A second VXLAN path between the two hosts, configured by hand, for the pods' `10.250.i.2`. */
async function handPath(bed: TestBed): Promise<void> {
  const macs: string[] = [];
  for (const [i, h] of bed.hosts.entries()) {
    const n = i + 1;
    await h.run([
      ..."ip link add vxref mtu 1450 type vxlan id 99 dstport 4799 dev eth0 nolearning local"
        .split(" "),
      h.ip,
    ]);
    await h.run(["ip", "addr", "add", `10.250.${n}.0/32`, "dev", "vxref"]);
    await h.run(["ip", "link", "set", "vxref", "up"]);
    await h.run(["ip", "addr", "add", `10.250.${n}.1/24`, "dev", "cni0"]);
    await sh(["ip", "addr", "add", `10.250.${n}.2/24`, "dev", "eth0"], { netns: h.pods[0].ns });
    const link = (await h.run(["ip", "link", "show", "vxref"])).stdout;
    macs.push(/link\/ether (\S+)/.exec(link)![1]);
  }
  for (const [i, h] of bed.hosts.entries()) {
    const j = 1 - i, n = j + 1;
    const peer = bed.hosts[j];
    await h.run(
      `ip neigh replace 10.250.${n}.0 lladdr ${macs[j]} dev vxref nud permanent`.split(" "),
    );
    await h.run(`bridge fdb replace ${macs[j]} dev vxref dst ${peer.ip} self permanent`.split(" "));
    await h.run(`ip route replace 10.250.${n}.0/24 via 10.250.${n}.0 dev vxref onlink`.split(" "));
  }
}

async function benchThroughput(): Promise<void> {
  await using bed = await TestBed.create({
    hosts: 2,
    config: '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}',
  });
  await bed.startAgents();
  for (const h of bed.hosts) await h.addPod();
  await handPath(bed);
  const [client, server] = [bed.hosts[0].pods[0], bed.hosts[1].pods[0]];
  const { agent, hand } = await interleavedIperf({
    clientNs: client.ns,
    serverNs: server.ns,
    agentTo: server.ip,
    handTo: "10.250.2.2",
    handFrom: "10.250.1.2",
    rounds: ROUNDS,
    seconds: SECONDS,
  });
  const a = median(agent), h = median(hand);
  report(
    "iperf3 pod→pod TCP over flannel.1",
    `${a.toFixed(2)} Gbit/s vs hand-made vxlan ${h.toFixed(2)}`,
    `${(a / h).toFixed(2)}`,
    "≥ 0.95",
  );
}

// ---------------------------------------------------------------------------------------------
// 5 000 peers, inside `unshare --net` (child mode of this file)

const CHILD_ENV = "VXLAN_BENCH_PEERS_CHILD";

function peer(i: number) {
  const subnet = `10.${1 + (i >> 8)}.${i & 255}.0`;
  const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, "0")}:${
    ((i >> 8) & 255).toString(16).padStart(2, "0")
  }:${(i & 255).toString(16).padStart(2, "0")}`;
  return { subnet, mac, publicIP: `172.16.${i >> 8}.${i & 255}` };
}

async function run(...argv: string[]): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().slice(0, 500);
    throw new Error(`${argv.join(" ")} failed: ${err}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function count(...argv: string[]): Promise<number> {
  return (await run(...argv)).split("\n").filter((l) => l.trim() !== "").length;
}

/** Runs inside the throwaway namespace; prints one `result:` JSON line. */
async function peersChild(): Promise<void> {
  const { openNetlink } = await import("../kernel/netlink/mod.ts");
  const { registerVxlanNetwork } = await import("../backends/vxlan/mod.ts");
  const { FakeSubnetManager } = await import("../test/fakes/subnet_manager.ts");
  const { parseNetworkConfig } = await import("../subnet/config.ts");
  const { parseIP4, parseIP4Net } = await import("../subnet/ip.ts");
  const { silentLogger } = await import("../util/log.ts");
  const { unservedMetrics } = await import("../util/metrics.ts");

  await run("ip", "link", "set", "lo", "up");
  // A port-less bridge stands in for the underlay NIC (kernels without CONFIG_DUMMY exist).
  await run("ip", "link", "add", "eth0", "type", "bridge");
  await run("ip", "addr", "add", "192.168.0.1/16", "dev", "eth0");
  await run("ip", "link", "set", "eth0", "up");
  const peers = Array.from({ length: PEERS }, (_, i) => peer(i));

  // Reference: ip -batch (neighbours, routes) + bridge -batch (FDB) on a hand-made device.
  await run(
    ..."ip link add vxref type vxlan id 2 dstport 4790 local 192.168.0.1 dev eth0 nolearning"
      .split(" "),
  );
  await run("ip", "link", "set", "vxref", "up");
  const dir = await Deno.makeTempDir();
  const ipBatch = peers.flatMap((p) => [
    `neigh replace ${p.subnet} lladdr ${p.mac} dev vxref nud permanent`,
    `route replace ${p.subnet}/24 via ${p.subnet} dev vxref onlink proto 101`,
  ]).join("\n") + "\n";
  const bridgeBatch =
    peers.map((p) => `fdb replace ${p.mac} dev vxref dst ${p.publicIP} self permanent`).join("\n") +
    "\n";
  await Deno.writeTextFile(`${dir}/ip`, ipBatch);
  await Deno.writeTextFile(`${dir}/bridge`, bridgeBatch);
  const t0 = performance.now();
  await run("ip", "-batch", `${dir}/ip`);
  await run("bridge", "-batch", `${dir}/bridge`);
  const batchMs = performance.now() - t0;
  const refObjects = await count("ip", "route", "show", "dev", "vxref") +
    await count("ip", "neigh", "show", "dev", "vxref") +
    await count("bridge", "fdb", "show", "dev", "vxref");
  await run("ip", "link", "del", "vxref");
  await Deno.remove(dir, { recursive: true });

  // The backend, in-process, on the real kernel.
  const config = parseNetworkConfig(
    '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
  );
  const own = {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net("10.0.1.0/24"),
    attrs: { publicIP: 0 },
  };
  const manager = new FakeSubnetManager(config, own);
  const netlink = openNetlink();
  const eth0 = (await netlink.linkByName("eth0"))!;
  let onPass: ((written: number) => void) | undefined;
  const network = await registerVxlanNetwork(
    {
      subnetManager: manager,
      netlink,
      log: silentLogger,
      metrics: unservedMetrics(),
      extIface: {
        name: "eth0",
        index: eth0.index,
        mtu: 1500,
        ifaceAddr: parseIP4("192.168.0.1"),
        extAddr: parseIP4("192.168.0.1"),
      },
    },
    config,
    { onReconciled: (s) => onPass?.(s.written) },
  );
  const leases = peers.map((p) => ({
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(`${p.subnet}/24`),
    attrs: {
      publicIP: parseIP4(p.publicIP),
      backendType: "vxlan",
      backendData: `{"VNI":1,"VtepMAC":"${p.mac}"}`,
    },
  }));
  const ac = new AbortController();
  const running = network.run({ signal: ac.signal });
  const passWriting = (n: number) =>
    new Promise<void>((resolve) => onPass = (written) => written >= n && resolve());
  const t1 = performance.now();
  const programmed = passWriting(3 * PEERS);
  manager.push({ snapshot: leases });
  await programmed;
  const agentMs = performance.now() - t1;
  const agentObjects = await count("ip", "route", "show", "dev", "flannel.1") +
    await count("ip", "neigh", "show", "dev", "flannel.1") +
    await count("bridge", "fdb", "show", "dev", "flannel.1");

  const t2 = performance.now();
  await network.reconcile();
  const idleMs = performance.now() - t2;

  const healed = passWriting(3 * PEERS);
  const t3 = performance.now();
  await run("ip", "link", "del", "flannel.1");
  await healed;
  const healMs = performance.now() - t3;

  ac.abort();
  await running;
  netlink.close();
  console.log(
    "result: " + JSON.stringify({ batchMs, refObjects, agentMs, agentObjects, idleMs, healMs }),
  );
}

interface PeersResult {
  batchMs: number;
  refObjects: number;
  agentMs: number;
  agentObjects: number;
  idleMs: number;
  healMs: number;
}

async function peersRun(): Promise<PeersResult> {
  const out = await new Deno.Command("unshare", {
    args: [
      "--net",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      new URL(import.meta.url).pathname,
    ],
    env: { [CHILD_ENV]: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("result: "));
  if (!out.success || !line) {
    throw new Error(
      `vxlan peers benchmark failed:\n${stdout}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(line.slice(8));
}

/** Three runs (each in a fresh namespace); figures are medians. */
async function benchPeers(): Promise<void> {
  const runs: PeersResult[] = [];
  for (let i = 0; i < 3; i++) runs.push(await peersRun());
  const m = (f: (r: PeersResult) => number) => median(runs.map(f));
  const r = {
    batchMs: m((x) => x.batchMs),
    agentMs: m((x) => x.agentMs),
    idleMs: m((x) => x.idleMs),
    healMs: m((x) => x.healMs),
    refObjects: Math.min(...runs.map((x) => x.refObjects)),
    agentObjects: Math.min(...runs.map((x) => x.agentObjects)),
  };
  const want = 3 * PEERS;
  if (r.refObjects !== want || r.agentObjects !== want) {
    throw new Error(
      `expected ${want} kernel objects, got ${r.refObjects} (ip) and ${r.agentObjects} (agent)`,
    );
  }
  report(
    `${PEERS} vxlan peers → ${want} kernel objects`,
    `${r.agentMs.toFixed(0)} ms vs ip+bridge -batch ${r.batchMs.toFixed(0)} ms`,
    `${m((x) => x.agentMs / x.batchMs).toFixed(2)}×`,
    "≤ 2×",
  );
  report(
    `idle reconcile pass over ${PEERS} peers`,
    `${r.idleMs.toFixed(0)} ms`,
    `${(r.idleMs / r.batchMs).toFixed(2)}× batch`,
    "(info)",
  );
  report(
    `flannel.1 deleted → ${PEERS} peers re-programmed`,
    `${r.healMs.toFixed(0)} ms`,
    `${(r.healMs / r.batchMs).toFixed(2)}× batch`,
    "(info)",
  );
}

export async function benchVxlan(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("vxlan benchmarks skipped: need root (network namespaces)");
    return;
  }
  await benchPeers();
  await benchThroughput();
}

if (import.meta.main) {
  if (Deno.env.get(CHILD_ENV) === "1") await peersChild();
  else await benchVxlan();
}
