/**
 * `deno task soak [--minutes N] [--bitrate 200M]` (root, Linux): one test bed per backend
 * (host-gw, vxlan, udp; two hosts each, own etcd), a TCP stream between pods on every bed for the
 * whole run, and lease churn (a fake peer added, later removed, about one change a second per
 * bed). In the middle every etcd is restarted; later, every agent's etcd connections are made
 * half-open (etcd's side killed with `ss -K` while the agent's host drops the resets).
 *
 * Prints, per backend: bytes moved and seconds without bytes; per churn event kind the
 * convergence time (both agents logged the change and the kernel holds it) as median / p99 / max;
 * per agent RSS and open descriptors at minute 1 and at the end (growth is a leak: the goal is at
 * most 5 MiB and 0 descriptors), log lines per minute, and how it exited. Sized for two cores.
 */
import { EtcdClient } from "../subnet/etcd/client.ts";
import { eventually } from "../test/eventually.ts";
import { fakePeerLease, iperf } from "../test/load.ts";
import { type Host, sh, TestBed } from "../test/testbed.ts";

function option(name: string, fallback: string): string {
  const args = Deno.args;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1] ?? fallback;
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return fallback;
}

const MINUTES = Number(option("minutes", "3"));
const BITRATE = option("bitrate", "200M");
const BACKENDS = option("backends", "host-gw,vxlan,udp").split(",");
/**
 * `--agent-v8-flags F`: V8 flags for the agents. The default is what the shipped binary bakes in
 * (scripts/compile.ts); `--expose-gc` (a collection every 100 ms) tells a leak from lazy GC.
 */
const AGENT_V8 = option("agent-v8-flags", "--max-semi-space-size=1,--expose-gc");
if (!(MINUTES >= 1)) {
  console.error(`--minutes must be at least 1 (got "${option("minutes", "")}")`);
  Deno.exit(2);
}
if (Deno.uid() !== 0) {
  console.error("The soak run builds network namespaces: run it as root (sudo deno task soak).");
  Deno.exit(1);
}
const RUN_MS = MINUTES * 60_000;
/** The longest a churn event may take before it counts as lost. */
const EVENT_TIMEOUT_MS = 120_000;

interface Sample {
  rssKiB: number;
  fds: number;
}

function sample(pid: number): Sample | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    let fds = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
    return { rssKiB, fds };
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Bed {
  backend: string;
  bed: TestBed;
  client: EtcdClient;
  iperf?: Promise<{ bytes: number; stalls: number; seconds: number; error?: string }>;
  events: { add: number[]; remove: number[]; lost: number; writeRetries: number };
  atMinute1: Map<Host, Sample | undefined>;
}

/** Waits until both agents logged `what` for `subnet` after their line `from`. */
async function converged(b: Bed, what: "added" | "removed", subnet: string, from: number[]) {
  const re = new RegExp(`Subnet ${what}: ${subnet.replaceAll(".", "\\.")}\\b`);
  await Promise.all(
    b.bed.hosts.map((h, i) => h.agent!.waitFor(re, EVENT_TIMEOUT_MS, from[i])),
  );
  // The kernel must agree: the peer's route is there, or gone (host-gw, vxlan; the udp backend
  // keeps its peers in its own table, which the log line above reports).
  if (b.backend === "udp") return;
  for (const h of b.bed.hosts) {
    await eventually(
      async () => {
        const routes = (await h.run(["ip", "route", "show", subnet])).stdout.trim();
        return (routes !== "") === (what === "added");
      },
      10_000,
      `${h.name}: route ${subnet} ${what} in the kernel`,
    );
  }
}

async function churn(b: Bed, signal: AbortSignal): Promise<void> {
  const [a] = b.bed.hosts;
  const subnets = `${b.bed.prefix}/subnets/`;
  const own = (await a.subnetEnv()).FLANNEL_SUBNET.replace(/\.1\/24$/, ".0-24");
  const template = (await b.client.get(subnets + own)).kv!.value;
  const network = own.split(".").slice(0, 2).join(".");
  // The fake peers never take a real host's subnet (that would overwrite, then delete, its lease).
  const taken = new Set<number>();
  for (const h of b.bed.hosts) {
    taken.add(Number((await h.subnetEnv()).FLANNEL_SUBNET.split(".")[2]));
  }
  const free = Array.from({ length: 150 }, (_, i) => 100 + i).filter((t) => !taken.has(t));
  const live: number[] = [];
  for (let n = 0; !signal.aborted; n++) {
    const third = free[n % free.length];
    const remove = live.length >= 3;
    const target = remove ? live.shift()! : third;
    const subnet = `${network}.${target}.0/24`;
    const key = `${subnets}${network}.${target}.0-24`;
    // The write itself is retried until etcd takes it (it may be restarting): only what the
    // agents do after the successful write is measured.
    const from = b.bed.hosts.map((h) => h.agent!.lines.length);
    let t0 = performance.now();
    for (;;) {
      t0 = performance.now();
      try {
        if (remove) await b.client.delete(key, { signal });
        else await b.client.put(key, fakePeerLease(template, b.bed.underlayIP(9), n), { signal });
        break;
      } catch {
        if (signal.aborted) break;
        b.events.writeRetries++;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (signal.aborted) break;
    try {
      await converged(b, remove ? "removed" : "added", subnet, from);
      (remove ? b.events.remove : b.events.add).push(performance.now() - t0);
      if (!remove) live.push(target);
    } catch (err) {
      if (signal.aborted) break;
      b.events.lost++;
      console.error(`  ${b.backend}: churn event ${subnet} lost: ${String(err).split("\n")[0]}`);
      if (!remove) live.push(target);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const t of live) await b.client.delete(`${subnets}${network}.${t}.0-24`).catch(() => {});
}

function startIperf(b: Bed, seconds: number): void {
  const [a, c] = b.bed.hosts;
  b.iperf = iperf(a.pods[0], c.pods[0], { seconds, bitrate: BITRATE, slackSeconds: 60 }).then(
    (r) => ({
      bytes: r.bytes,
      stalls: r.perSecond.filter((n) => n === 0).length,
      seconds: r.perSecond.length,
      error: r.error,
    }),
  );
}

const at = (ms: number) => {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

const started = performance.now();
const elapsed = () => at(performance.now() - started);
const beds: Bed[] = [];
const notes: string[] = [];
try {
  console.log(
    `soak: ${MINUTES} min, backends ${BACKENDS.join(", ")} (2 hosts each), TCP at ${BITRATE}, ` +
      `agent V8 flags "${AGENT_V8}"`,
  );
  for (const [i, backend] of BACKENDS.entries()) {
    const config = `{"Network":"10.${130 + i}.0.0/16","Backend":{"Type":"${backend}"}}`;
    const bed = await TestBed.create({ hosts: 2, config });
    const b: Bed = {
      backend,
      bed,
      client: await EtcdClient.create({ endpoints: [bed.etcdEndpoint] }),
      events: { add: [], remove: [], lost: 0, writeRetries: 0 },
      atMinute1: new Map(),
    };
    beds.push(b);
    const denoArgs = AGENT_V8 ? [`--v8-flags=${AGENT_V8}`] : [];
    await Promise.all(
      bed.hosts.map((h) => h.startAgent([], { denoArgs }).waitFor(/Wrote subnet file/, 30_000)),
    );
    for (const h of bed.hosts) await h.addPod();
  }
  const stop = new AbortController();
  for (const b of beds) startIperf(b, Math.floor(RUN_MS / 1000));
  const churning = beds.map((b) => churn(b, stop.signal));

  const sleepUntil = (ms: number) =>
    new Promise((r) => setTimeout(r, Math.max(0, ms - (performance.now() - started))));
  await sleepUntil(60_000);
  for (const b of beds) for (const h of b.bed.hosts) b.atMinute1.set(h, sample(h.agent!.pid));

  await sleepUntil(RUN_MS * 0.4);
  notes.push(`${elapsed()} every etcd restarted (3 s down)`);
  console.error(`  ${notes.at(-1)}`);
  await Promise.all(beds.map((b) => b.bed.stopEtcd()));
  await new Promise((r) => setTimeout(r, 3000));
  await Promise.all(beds.map((b) => b.bed.startEtcd()));

  await sleepUntil(RUN_MS * 0.65);
  notes.push(`${elapsed()} every agent's etcd connections made half-open (resets dropped 90 s)`);
  console.error(`  ${notes.at(-1)}`);
  const dropRst = ["INPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP"];
  for (const b of beds) {
    for (const h of b.bed.hosts) await h.run(["iptables", "-w", "-I", ...dropRst]);
    const url = new URL(b.bed.etcdEndpoint);
    await sh(["ss", "-K", "src", url.hostname, "sport", "=", `:${url.port}`], { check: false });
  }
  await new Promise((r) => setTimeout(r, 90_000));
  for (const b of beds) {
    for (const h of b.bed.hosts) await h.run(["iptables", "-w", "-D", ...dropRst], false);
  }

  await sleepUntil(RUN_MS);
  stop.abort();
  await Promise.all(churning);
  // The streams end on their own (-t); wait for them before stopping the agents under them.
  await Promise.all(beds.map((b) => b.iperf));
  const ends = new Map<Host, Sample | undefined>();
  for (const b of beds) for (const h of b.bed.hosts) ends.set(h, sample(h.agent!.pid));
  const exits = new Map<Host, string>();
  for (const b of beds) {
    for (const h of b.bed.hosts) {
      const diedEarly = h.agent!.exited;
      const s = await h.agent!.stop("SIGTERM");
      exits.set(h, diedEarly ? `DIED (${s.code})` : s.code === 0 ? "0 on SIGTERM" : `${s.code}`);
    }
  }

  console.log("\nData path (TCP between pods on two hosts, whole run):");
  console.log("  backend   MB moved  seconds  seconds without bytes  error");
  for (const b of beds) {
    const r = await b.iperf!;
    console.log(
      `  ${b.backend.padEnd(8)} ${(r.bytes / 1e6).toFixed(0).padStart(9)} ${
        String(r.seconds).padStart(8)
      } ${String(r.stalls).padStart(22)}  ${r.error ?? "-"}`,
    );
  }
  console.log("\nConvergence per churn event (put/delete → both agents and kernels), ms:");
  console.log("  backend   event    count  median     p99     max  lost  write retries");
  for (const b of beds) {
    for (const [kind, list] of Object.entries({ add: b.events.add, remove: b.events.remove })) {
      const s = [...list].sort((x, y) => x - y);
      console.log(
        `  ${b.backend.padEnd(8)}  ${kind.padEnd(7)} ${String(s.length).padStart(5)} ${
          percentile(s, 50).toFixed(0).padStart(7)
        } ${percentile(s, 99).toFixed(0).padStart(7)} ${(s.at(-1) ?? NaN).toFixed(0).padStart(7)} ${
          kind === "add"
            ? `${String(b.events.lost).padStart(5)} ${String(b.events.writeRetries).padStart(14)}`
            : ""
        }`,
      );
    }
  }
  console.log("\nAgents (goal: growth from minute 1 to the end ≤ 5 MiB RSS and 0 descriptors):");
  console.log("  agent            RSS@1m   RSS@end  growth  fds@1m fds@end  log lines/min  exit");
  let leaks = 0;
  for (const b of beds) {
    for (const h of b.bed.hosts) {
      const m1 = b.atMinute1.get(h), end = ends.get(h);
      const grow = m1 && end ? (end.rssKiB - m1.rssKiB) / 1024 : NaN;
      const fdGrow = m1 && end ? end.fds - m1.fds : NaN;
      if (!(grow <= 5 && fdGrow <= 0)) leaks++;
      const perMin = h.agent!.lines.length / MINUTES;
      console.log(
        `  ${`${b.backend}/${h.name}`.padEnd(15)} ${
          ((m1?.rssKiB ?? NaN) / 1024).toFixed(1).padStart(6)
        } MiB ${((end?.rssKiB ?? NaN) / 1024).toFixed(1).padStart(6)} MiB ${
          grow.toFixed(1).padStart(5)
        } ${String(m1?.fds ?? "?").padStart(7)} ${String(end?.fds ?? "?").padStart(7)} ${
          perMin.toFixed(1).padStart(14)
        }  ${exits.get(h)}`,
      );
    }
  }
  console.log(`\nFaults injected: ${notes.join("; ")}.`);
  const lost = beds.reduce((n, b) => n + b.events.lost, 0);
  const stalls = (await Promise.all(beds.map((b) => b.iperf!))).reduce((n, r) => n + r.stalls, 0);
  const died = [...exits.values()].filter((e) => e !== "0 on SIGTERM").length;
  const verdict = lost === 0 && stalls === 0 && died === 0 && leaks === 0;
  console.log(
    `${verdict ? "PASS" : "FAIL"}: ${lost} lost events, ${stalls} seconds without bytes, ${died} ` +
      `agents not exiting 0, ${leaks} agents over the growth goal.`,
  );
  if (!verdict) Deno.exitCode = 1;
} finally {
  for (const b of beds) {
    b.client.close();
    await b.bed[Symbol.asyncDispose]();
  }
}
