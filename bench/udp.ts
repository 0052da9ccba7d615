/**
 * udp backend benchmarks (issue 5), on a two-host test bed (root only), same namespaces and pods
 * for every variant:
 * - iperf3 TCP throughput pod → pod through the agents' udp backend, as a ratio to a socat
 *   userspace TUN/UDP tunnel (`TUN` + `UDP-DATAGRAM`) between the same hosts; CPU seconds per
 *   Gbit of both tunnel processes (utime + stime from /proc/<pid>/stat);
 * - ping RTT median pod → pod through each;
 * - alternatives of our data path, run as a bare tunnel (this file with `tunnel ...`): one packet
 *   per system call (batch 1) against the default batch.
 */
import { DataPath, DEFAULT_BATCH } from "../backends/udp/datapath.ts";
import { PeerTable } from "../backends/udp/peers.ts";
import { openTun, openUdpSocket } from "../kernel/tun.ts";
import { parseIP4, parseIP4Net } from "../subnet/ip.ts";
import { silentLogger } from "../util/log.ts";
import { type Host, sh, TestBed } from "../test/testbed.ts";
import { median, report } from "./_util.ts";

const SECONDS = 20;
const PINGS = 300;
const PORT = 8285;

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

interface Figures {
  gbps: number;
  cpuPerGbit: number;
  rttMs: number;
}

async function measure(a: Host, b: Host, pids: number[]): Promise<Figures> {
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", b.pods[0].ns, "iperf3", "-s", "-1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 300));
    const cpu0 = await Promise.all(pids.map(cpuSeconds));
    const out = await sh(
      ["iperf3", "-c", b.pods[0].ip, "-t", String(SECONDS), "-J"],
      { netns: a.pods[0].ns },
    );
    const cpu1 = await Promise.all(pids.map(cpuSeconds));
    const bps = JSON.parse(out.stdout).end.sum_received.bits_per_second as number;
    const gbit = (bps * SECONDS) / 1e9;
    const cpu = cpu1.reduce((s, c, i) => s + c - cpu0[i], 0);
    const ping = await sh(
      ["ping", "-n", "-c", String(PINGS), "-i", "0.01", b.pods[0].ip],
      { netns: a.pods[0].ns },
    );
    const rtts = [...ping.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    return { gbps: bps / 1e9, cpuPerGbit: cpu / gbit, rttMs: median(rtts) };
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
  }
}

function spawnIn(ns: string, argv: string[]): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...argv],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

async function stopAll(children: Deno.ChildProcess[]): Promise<void> {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* exited */ }
  }
  await Promise.all(children.map((c) => c.status));
}

/** Waits until `flannel0` exists in every host (a tunnel came up). */
async function waitForTun(hosts: Host[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await Promise.all(
      hosts.map((h) => h.run(["ip", "link", "show", "flannel0"], false).then((r) => r.ok)),
    );
    if (ok.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("tunnel device flannel0 did not appear");
}

function line(f: Figures): string {
  return `${f.gbps.toFixed(2)} Gbit/s, ${f.cpuPerGbit.toFixed(2)} CPU-s/Gbit`;
}

export async function benchUdp(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("udp benchmarks skipped: need root (network namespaces)");
    return;
  }
  await using bed = await TestBed.create({
    hosts: 2,
    config: '{"Network":"10.102.0.0/16","Backend":{"Type":"udp"}}',
  });
  await bed.startAgents();
  const [h1, h2] = bed.hosts;
  await h1.addPod();
  await h2.addPod();
  const subnets = await Promise.all(
    bed.hosts.map(async (h) => (await h.subnetEnv()).FLANNEL_SUBNET.replace(/\.1\/24$/, ".0")),
  );
  await h1.agent!.waitFor(/Subnet added/, 10_000);
  await h2.agent!.waitFor(/Subnet added/, 10_000);

  const agent = await measure(h1, h2, [h1.agent!.pid, h2.agent!.pid]);
  await h1.stopAgent();
  await h2.stopAgent();

  // socat: the same addresses, device name, MTU and port, point to point.
  const socats = bed.hosts.map((h, i) =>
    spawnIn(h.ns, [
      "socat",
      `TUN:${subnets[i]}/16,tun-name=flannel0,tun-type=tun,iff-no-pi,iff-up`,
      `UDP-DATAGRAM:${bed.hosts[1 - i].ip}:${PORT},bind=${h.ip}:${PORT}`,
    ])
  );
  let socat: Figures;
  try {
    await waitForTun(bed.hosts);
    for (const h of bed.hosts) await h.run(["ip", "link", "set", "flannel0", "mtu", "1472"]);
    socat = await measure(h1, h2, socats.map((c) => c.pid));
  } finally {
    await stopAll(socats);
  }

  // Our data path as a bare tunnel, one packet per system call.
  const tunnel = (batch: number) =>
    bed.hosts.map((h, i) =>
      spawnIn(h.ns, [
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        new URL(import.meta.url).pathname,
        "tunnel",
        h.ip,
        bed.hosts[1 - i].ip,
        subnets[i],
        subnets[1 - i],
        String(batch),
      ])
    );
  const alt: Record<number, Figures> = {};
  for (const batch of [1, DEFAULT_BATCH]) {
    const procs = tunnel(batch);
    try {
      await waitForTun(bed.hosts);
      await new Promise((r) => setTimeout(r, 300));
      alt[batch] = await measure(h1, h2, procs.map((c) => c.pid));
    } finally {
      await stopAll(procs);
    }
  }

  report(
    "udp: iperf3 TCP pod→pod, agent vs socat",
    `${agent.gbps.toFixed(2)} vs ${socat.gbps.toFixed(2)} Gbit/s`,
    `${(agent.gbps / socat.gbps).toFixed(2)}×`,
    "≥ 1.0×",
  );
  report(
    "udp: CPU per Gbit (both ends), agent vs socat",
    `${agent.cpuPerGbit.toFixed(2)} vs ${socat.cpuPerGbit.toFixed(2)} CPU-s/Gbit`,
    `${(agent.cpuPerGbit / socat.cpuPerGbit).toFixed(2)}×`,
    "(lower is better)",
  );
  report(
    "udp: ping RTT median pod→pod, agent vs socat",
    `${agent.rttMs.toFixed(3)} vs ${socat.rttMs.toFixed(3)} ms`,
    `${(agent.rttMs / socat.rttMs).toFixed(2)}×`,
    "≤ 1.0×",
  );
  report(
    `udp: data path batch ${DEFAULT_BATCH} vs batch 1`,
    `${line(alt[DEFAULT_BATCH])} vs ${line(alt[1])}`,
    `${(alt[DEFAULT_BATCH].gbps / alt[1].gbps).toFixed(2)}×`,
    "(alternative)",
  );
}

/** `tunnel LOCAL PEER OWN_NET PEER_NET BATCH`: a bare two-host tunnel on our data path. */
async function runTunnel(args: string[]): Promise<void> {
  const [local, peer, own, other, batch] = args;
  const tun = openTun("flannel%d");
  await sh(["ip", "addr", "add", `${own}/32`, "dev", tun.name]);
  await sh(["ip", "link", "set", tun.name, "mtu", "1472", "up"]);
  await sh(["ip", "route", "replace", "10.102.0.0/16", "dev", tun.name]);
  const udp = openUdpSocket(parseIP4(local), PORT);
  const peers = new PeerTable(4);
  const net = parseIP4Net(`${other}/24`);
  peers.publish([{ net: net.ip, prefix: 24, publicIP: parseIP4(peer), port: PORT }]);
  const dp = await DataPath.start({
    tunFd: tun.fd,
    udpFd: udp.fd,
    tunAddr: parseIP4(own),
    mtu: 1472,
    peers,
    log: silentLogger,
    batch: Number(batch),
  });
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
  await dp.stop();
  udp.close();
  tun.close();
}

if (import.meta.main) {
  if (Deno.args[0] === "tunnel") await runTunnel(Deno.args.slice(1));
  else await benchUdp();
}
