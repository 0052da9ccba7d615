/**
 * Scale benchmarks (issue 13), on a two-host test bed with a local etcd and a fake Kubernetes API
 * server (root only). Every figure is a ratio against a reference measured in the same run:
 *
 * - growth curves: the host-gw agent started over 100, 1 000 and 5 000 leases (etcd, host 1) and
 *   nodes (`--kube-subnet-mgr`, host 2), each mode after one unmeasured start: start → subnet.env (ratio: against the 100 point),
 *   start → every route in the kernel (ratio: against `ip -batch` of the same routes), RSS once
 *   converged, and the memory cost per lease from the least-squares slope of RSS over the count;
 * - the agent's load on its datastore at idle: both agents (holding 5 000 peers each) idle for
 *   {@link IDLE_MS}, requests counted by etcd (`grpc_server_started_total`: every JSON-gateway
 *   call is one gRPC call) and by the fake API server, scaled to a minute;
 * - a burst: 1 000 leases written within a second while the etcd agent runs: first write → last
 *   route, against `etcdctl watch` seeing the last write plus `ip -batch` installing the same
 *   routes; the agent's `flanneld_kernel_event_overflows_total` (netlink ENOBUFS, each answered by
 *   one resync) is printed from its `/metrics`.
 *
 *   deno run -A bench/scale.ts
 */
import { EtcdClient } from "../subnet/etcd/client.ts";
import { AgentProcess } from "../test/agent_process.ts";
import type { FakeApiServer } from "../test/fake_apiserver.ts";
import { bareNode, flannelNode } from "../test/kube_harness.ts";
import { type Host, sh, TestBed } from "../test/testbed.ts";
import { SHIPPED_V8_FLAGS } from "../scripts/compile.ts";
import { report, rssMiB, stampedLines } from "./_util.ts";

/** `deno run` options for the compiled binary's V8 flags. */
const SHIPPED = [`--v8-flags=${SHIPPED_V8_FLAGS}`] as const;

const SIZES = (Deno.env.get("SCALE_SIZES") ?? "100,1000,5000").split(",").map(Number);
/** Idle window for the datastore load (two etcd watch-check periods); scaled to a minute. */
const IDLE_MS = Number(Deno.env.get("SCALE_IDLE_MS") ?? 40_000);
const BURST = 1000;
const HEALTH_PORT = 9471;
const NET_CONF = '{"Network":"10.64.0.0/10","SubnetLen":24,"Backend":{"Type":"host-gw"}}';
const PREFIX = "/coreos.com/network";
/** Leases and nodes settle this long after converging before their RSS is read. */
const SETTLE_MS = 1500;
/**
 * ... and this long for the "settled" reading: past the shipped binary's first memory-reducing
 * collection, 5 s after start (util/heap.ts).
 */
const SETTLED_MS = 7500;

/**
 * The etcd agent's own subnet as an index into 10.64.0.0/10's /24s, once known: the agent takes
 * a free one at its first start, which later peers must not overwrite.
 */
let ownIndex = Infinity;

/** Peer `i`'s subnet (i < 16 000): 10.64.0.0/24, 10.64.1.0/24, ..., skipping the agent's own. */
function peerSubnet(i: number): string {
  const k = i >= ownIndex ? i + 1 : i;
  return `10.${64 + (k >> 8)}.${k & 255}.0`;
}

async function learnOwnIndex(host: Host): Promise<void> {
  const [a, b] = (await host.subnetEnv()).FLANNEL_SUBNET.split(".").slice(1, 3).map(Number);
  ownIndex = ((a - 64) << 8) | b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ip monitor route` in a host's namespace: when each proto-101 route (by prefix) appeared. */
class RouteMonitor {
  readonly seen = new Map<string, number>();
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;

  constructor(ns: string) {
    const child = new Deno.Command("ip", {
      args: ["-n", ns, "monitor", "route"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#reading = stampedLines(child, (line, t) => {
      const m = /^(10\.\d+\.\d+\.0)\/24 via .* proto 101/.exec(line);
      if (m) this.seen.set(m[1], t);
    });
  }

  /** Waits until `n` routes were seen; the time the last of them appeared. */
  async until(n: number, timeoutMs = 120_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (this.seen.size < n) {
      if (Date.now() > end) throw new Error(`only ${this.seen.size} of ${n} routes appeared`);
      await sleep(10);
    }
    return Math.max(...this.seen.values());
  }

  async close(): Promise<void> {
    this.#child.kill();
    await Promise.allSettled([this.#reading, this.#child.status]);
  }
}

/** `ip -batch` installing `subnets` via the underlay, timed, then the routes removed again. */
async function ipBatch(bed: TestBed, host: Host, subnets: string[]): Promise<number> {
  const file = await Deno.makeTempFile({ suffix: ".batch" });
  try {
    await Deno.writeTextFile(
      file,
      subnets.map((s, i) =>
        `route replace ${s}/24 via ${bed.underlayIP(10 + (i % 200))} dev eth0 proto 102\n`
      ).join(""),
    );
    const t0 = performance.now();
    await sh(["ip", "-n", host.ns, "-batch", file]);
    const ms = performance.now() - t0;
    await sh(["ip", "-n", host.ns, "route", "flush", "proto", "102"]);
    return ms;
  } finally {
    await Deno.remove(file);
  }
}

interface Point {
  n: number;
  startMs: number;
  convergeMs: number;
  ipBatchMs: number;
  rss: number;
  settledRss: number;
}

/** One agent start over `n` peers: subnet.env, every route, RSS. The agent is left running. */
async function measurePoint(
  bed: TestBed,
  host: Host,
  n: number,
  start: () => AgentProcess,
): Promise<{ point: Point; agent: AgentProcess }> {
  const subnets = Array.from({ length: n }, (_, i) => peerSubnet(i));
  const ipBatchMs = await ipBatch(bed, host, subnets);
  await sh(["ip", "-n", host.ns, "route", "flush", "proto", "101"]);
  const monitor = new RouteMonitor(host.ns);
  try {
    await sleep(100);
    const t0 = performance.now();
    const agent = start();
    await agent.waitFor(/Wrote subnet file/, 60_000);
    const startMs = performance.now() - t0;
    const convergeMs = (await monitor.until(n)) - t0;
    await sleep(SETTLE_MS);
    const rss = await rssMiB(agent.pid);
    await sleep(SETTLED_MS - SETTLE_MS);
    const settledRss = await rssMiB(agent.pid);
    return { point: { n, startMs, convergeMs, ipBatchMs, rss, settledRss }, agent };
  } finally {
    await monitor.close();
  }
}

/** Least-squares slope of RSS (`rss` or `settledRss`) over the lease count, in KiB per lease. */
function kibPerLease(points: Point[], key: "rss" | "settledRss" = "rss"): number {
  const mx = points.reduce((s, p) => s + p.n, 0) / points.length;
  const my = points.reduce((s, p) => s + p[key], 0) / points.length;
  let num = 0, den = 0;
  for (const p of points) {
    num += (p.n - mx) * (p[key] - my);
    den += (p.n - mx) ** 2;
  }
  return (num / den) * 1024;
}

function reportCurve(mode: string, what: string, points: Point[]): void {
  const first = points[0];
  for (const p of points) {
    report(
      `${mode}: ${p.n} ${what}: start → subnet.env`,
      `${p.startMs.toFixed(0)} ms`,
      `${(p.startMs / first.startMs).toFixed(2)}× of ${first.n}`,
      "grows gently",
    );
    report(
      `${mode}: ${p.n} ${what}: start → every route`,
      `${p.convergeMs.toFixed(0)} ms (${
        (p.convergeMs - p.startMs).toFixed(0)
      } after) vs ip -batch ${p.ipBatchMs.toFixed(0)} ms`,
      `${(p.convergeMs / p.ipBatchMs).toFixed(2)}×`,
      "≤ 2×",
    );
    report(
      `${mode}: ${p.n} ${what}: RSS`,
      `${p.rss.toFixed(1)} MiB at 1.5 s, ${p.settledRss.toFixed(1)} at 7.5 s`,
      `${(p.rss / first.rss).toFixed(2)}× of ${first.n}`,
      "(printed)",
    );
  }
  const slope = kibPerLease(points);
  const settled = kibPerLease(points, "settledRss");
  report(
    `${mode}: memory per ${what.replace(/s$/, "")} (RSS slope)`,
    `${slope.toFixed(2)} KiB at 1.5 s, ${settled.toFixed(2)} at 7.5 s`,
    `${(slope / 4).toFixed(2)}× / ${(settled / 4).toFixed(2)}× of 4 KiB`,
    "≤ 4 KiB",
  );
}

/** Writes peers `from` … `to - 1`, `inFlight` puts at a time. */
async function putLeases(
  client: EtcdClient,
  bed: TestBed,
  from: number,
  to: number,
  inFlight = 100,
) {
  const value = (i: number) =>
    `{"PublicIP":"${bed.underlayIP(10 + (i % 200))}","PublicIPv6":null,"BackendType":"host-gw"}`;
  for (let i = from; i < to; i += inFlight) {
    await Promise.all(
      Array.from(
        { length: Math.min(inFlight, to - i) },
        (_, j) => client.put(`${PREFIX}/subnets/${peerSubnet(i + j)}-24`, value(i + j)),
      ),
    );
  }
}

function addNodes(api: FakeApiServer, bed: TestBed, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    api.setNode(flannelNode(`peer-${i}`, `${peerSubnet(i)}/24`, bed.underlayIP(10 + (i % 200))));
  }
}

async function etcdRequests(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("grpc_server_started_total")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

async function agentMetric(host: Host, name: string): Promise<number> {
  const text = await (await fetch(`http://${host.ip}:${HEALTH_PORT}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  }
  return sum;
}

/** The burst: `BURST` leases written at once while the etcd agent on `host` runs. */
async function benchBurst(
  bed: TestBed,
  host: Host,
  other: Host,
  client: EtcdClient,
  agent: AgentProcess,
  first: number,
): Promise<void> {
  const subnets = Array.from({ length: BURST }, (_, i) => peerSubnet(first + i));
  const ipBatchMs = await ipBatch(bed, other, subnets);
  const overflowsBefore = await agentMetric(host, "flanneld_kernel_event_overflows_total");
  const watch = new Deno.Command("etcdctl", {
    args: [`--endpoints=${bed.etcdEndpoint}`, "watch", "--prefix", `${PREFIX}/subnets/`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const wanted = new Set(subnets.map((s) => `${PREFIX}/subnets/${s}-24`));
  let watched = 0, watchLast = 0;
  const watching = stampedLines(watch, (line, t) => {
    if (wanted.delete(line)) (watched++, watchLast = t);
  });
  const monitor = new RouteMonitor(host.ns);
  try {
    await sleep(500);
    const t0 = performance.now();
    await putLeases(client, bed, first, first + BURST, 250);
    const writeMs = performance.now() - t0;
    let last = 0;
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      const seen = subnets.filter((s) => monitor.seen.has(s));
      if (seen.length === BURST) {
        last = Math.max(...seen.map((s) => monitor.seen.get(s)!));
        break;
      }
      await sleep(10);
    }
    if (!last) {
      const seen = subnets.filter((s) => monitor.seen.has(s)).length;
      throw new Error(
        `only ${seen} of the burst's ${BURST} routes appeared (etcd watch saw ${watched}); agent log:\n` +
          agent.lines.slice(-20).join("\n"),
      );
    }
    while (watched < BURST && Date.now() < end) await sleep(10);
    const agentMs = last - t0;
    const refMs = watchLast - t0 + ipBatchMs;
    report(
      `burst: ${BURST} leases (written in ${writeMs.toFixed(0)} ms) → routes`,
      `${agentMs.toFixed(0)} ms vs watch ${(watchLast - t0).toFixed(0)} + ip -batch ${
        ipBatchMs.toFixed(0)
      } ms`,
      `${(agentMs / refMs).toFixed(2)}×`,
      "≤ 2×",
    );
    await sleep(500);
    const overflows = await agentMetric(host, "flanneld_kernel_event_overflows_total") -
      overflowsBefore;
    const failed = agent.lines.filter((l) => /ENOBUFS|subscription failed/i.test(l)).length;
    report(
      "burst: netlink overflows (each one resync)",
      `${overflows} counted, ${failed} unhandled`,
      "",
      "every overflow counted",
    );
  } finally {
    watch.kill();
    await Promise.allSettled([watching, watch.status]);
    await monitor.close();
  }
}

export async function benchScale(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("scale benchmarks skipped: need root (network namespaces)");
    return;
  }
  await using bed = await TestBed.create({ hosts: 2, config: NET_CONF });
  const [etcdHost, kubeHost] = bed.hosts;
  const health = [`--healthz-port=${HEALTH_PORT}`, `--healthz-ip=0.0.0.0`];
  const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
  const { FakeApiServer } = await import("../test/fake_apiserver.ts");
  await using api = await FakeApiServer.start({ hostname: bed.underlayIP(254) });
  const dir = await Deno.makeTempDir({ prefix: "flannel-bench-scale-" });
  const netConf = `${dir}/net-conf.json`;
  await Deno.writeTextFile(netConf, NET_CONF);
  api.setNode(bareNode("kube-self", "10.127.250.0/24"));
  let etcdAgent: AgentProcess | undefined;
  let kubeAgent: AgentProcess | undefined;
  try {
    // Growth curves: etcd (after one unmeasured start, which also takes the agent's own lease).
    // Each point twice: under `deno run` with V8's defaults, and with the compiled binary's flags.
    const etcdPoints: Point[] = [];
    const etcdShipped: Point[] = [];
    let have = 0;
    for (const n of [0, ...SIZES]) {
      await putLeases(client, bed, have, n);
      have = n;
      for (const [points, denoArgs] of [[etcdPoints, []], [etcdShipped, SHIPPED]] as const) {
        if (n === 0 && points === etcdShipped) continue;
        await etcdAgent?.stop();
        const { point, agent } = await measurePoint(
          bed,
          etcdHost,
          n,
          () => etcdHost.startAgent(health, { denoArgs: [...denoArgs] }),
        );
        etcdAgent = agent;
        if (n > 0) points.push(point);
        if (ownIndex === Infinity) await learnOwnIndex(etcdHost);
      }
    }
    reportCurve("etcd", "leases", etcdPoints);
    reportCurve("etcd (binary's V8 flags)", "leases", etcdShipped);

    // Growth curves: Kubernetes (after one unmeasured start, which loads its modules cold).
    const kubePoints: Point[] = [];
    const kubeShipped: Point[] = [];
    have = 0;
    for (const n of [0, ...SIZES]) {
      addNodes(api, bed, have, n);
      have = n;
      for (const [points, denoArgs] of [[kubePoints, []], [kubeShipped, SHIPPED]] as const) {
        if (n === 0 && points === kubeShipped) continue;
        await kubeAgent?.stop();
        const { point, agent } = await measurePoint(bed, kubeHost, n, () => {
          kubeHost.agent = new AgentProcess([
            "--kube-subnet-mgr",
            `--kube-api-url=${api.url}`,
            `--net-config-path=${netConf}`,
            `--subnet-file=${kubeHost.subnetFile}`,
            "--iface=eth0",
            ...health,
          ], { netns: kubeHost.ns, env: { NODE_NAME: "kube-self" }, denoArgs: [...denoArgs] });
          return kubeHost.agent;
        });
        kubeAgent = agent;
        if (n > 0) points.push(point);
      }
    }
    reportCurve("kube", "nodes", kubePoints);
    reportCurve("kube (binary's V8 flags)", "nodes", kubeShipped);

    // The datastore's load: both agents idle (5 000 peers each), nobody else talking to either.
    await sleep(2000);
    const etcd0 = await etcdRequests(bed.etcdEndpoint);
    const api0 = api.requests.length;
    await sleep(IDLE_MS);
    const etcd1 = await etcdRequests(bed.etcdEndpoint);
    const apiPaths = api.requests.slice(api0).map((r) => `${r.method} ${r.url.split("?")[0]}`);
    const perMin = (count: number) => (count * 60_000 / IDLE_MS).toFixed(1);
    // The reading itself is no gRPC call (etcd serves /metrics over plain HTTP).
    report(
      "etcd: requests per minute per idle agent",
      `${perMin(etcd1 - etcd0)} (${etcd1 - etcd0} in ${IDLE_MS / 1000} s)`,
      "",
      "only the watch checks",
    );
    report(
      "kube: requests per minute per idle agent",
      `${perMin(apiPaths.length)} (${apiPaths.length} in ${IDLE_MS / 1000} s)`,
      "",
      "only watch renewals",
    );

    // Burst on the etcd agent; the reference ip -batch runs on the Kubernetes host.
    await kubeAgent?.stop();
    await benchBurst(bed, etcdHost, kubeHost, client, etcdAgent!, SIZES[SIZES.length - 1]);
  } finally {
    await etcdAgent?.stop();
    await kubeAgent?.stop();
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await benchScale();
