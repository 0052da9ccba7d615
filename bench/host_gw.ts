/**
 * host-gw benchmarks (issue 3), on a one-host test bed with a local etcd (root only):
 * - 5 000 leases in etcd, agent started: time until all 5 000 routes are in the kernel, as a
 *   ratio to `ip -batch` installing the same 5 000 routes in the same run;
 * - convergence: a lease written to etcd → its route on the host; median and p99 over 50 leases,
 *   as a ratio to an `etcdctl watch` process seeing the same writes;
 * - RSS of the agent holding 5 050 leases, under `deno run` with V8's defaults and with the
 *   compiled binary's V8 flags (after a restart, once its first heap compaction has run).
 */
import { EtcdClient } from "../subnet/etcd/client.ts";
import { sh, TestBed } from "../test/testbed.ts";
import { SHIPPED_V8_FLAGS } from "../scripts/compile.ts";
import { median, percentile, report, rssMiB, stampedLines } from "./_util.ts";

const LEASES = 5000;
const CONVERGE = 50;
const PREFIX = "/coreos.com/network";

function leaseSubnet(i: number): string {
  return `10.${64 + (i >> 8)}.${i & 255}.0`;
}

async function countRoutes(ns: string): Promise<number> {
  const out = await sh(["ip", "-n", ns, "-4", "route", "show", "proto", "101"]);
  return out.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

export async function benchHostGw(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("host-gw benchmarks skipped: need root (network namespaces)");
    return;
  }
  await using bed = await TestBed.create({
    hosts: 1,
    config: '{"Network":"10.64.0.0/10","SubnetLen":24,"Backend":{"Type":"host-gw"}}',
  });
  const host = bed.hosts[0];
  const gw = (i: number) => bed.underlayIP(2 + (i % 200));

  // Reference: ip -batch installs the same 5 000 routes.
  const batch = Array.from(
    { length: LEASES },
    (_, i) => `route replace ${leaseSubnet(i)}/24 via ${gw(i)} dev eth0 proto 101`,
  ).join("\n");
  const batchFile = await Deno.makeTempFile({ suffix: ".batch" });
  await Deno.writeTextFile(batchFile, batch + "\n");
  const t0 = performance.now();
  await sh(["ip", "-n", host.ns, "-batch", batchFile]);
  const ipBatchMs = performance.now() - t0;
  if (await countRoutes(host.ns) !== LEASES) {
    throw new Error("ip -batch did not install every route");
  }
  await sh(["ip", "-n", host.ns, "route", "flush", "proto", "101"]);
  await Deno.remove(batchFile);

  // 5 000 leases in etcd, then the agent.
  const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
  try {
    for (let i = 0; i < LEASES; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, LEASES - i) }, (_, j) =>
        client.put(
          `${PREFIX}/subnets/${leaseSubnet(i + j)}-24`,
          `{"PublicIP":"${gw(i + j)}","PublicIPv6":null,"BackendType":"host-gw"}`,
        )));
    }
    const monitor = new Deno.Command("ip", {
      args: ["-n", host.ns, "monitor", "route"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let seen = 0;
    let allAt = 0;
    const routeSeen = new Map<string, number>();
    const reading = stampedLines(monitor, (line, t) => {
      const m = /^(10\.\d+\.\d+\.0\/24) via .* proto 101/.exec(line);
      if (!m) return;
      routeSeen.set(m[1], t);
      if (++seen === LEASES) allAt = t;
    });
    const start = performance.now();
    const agent = host.startAgent();
    await agent.waitFor(/Wrote subnet file/, 60_000);
    const deadline = Date.now() + 120_000;
    while (allAt === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (allAt === 0) throw new Error(`only ${seen} of ${LEASES} routes appeared`);
    const agentMs = allAt - start;
    report(
      `${LEASES} leases → routes in the kernel (agent start)`,
      `${agentMs.toFixed(0)} ms vs ip -batch ${ipBatchMs.toFixed(0)} ms`,
      `${(agentMs / ipBatchMs).toFixed(2)}×`,
      "≤ 2×",
    );

    // Convergence: one lease at a time, route on the host vs etcdctl watch.
    const watch = new Deno.Command("etcdctl", {
      args: [`--endpoints=${bed.etcdEndpoint}`, "watch", "--prefix", `${PREFIX}/subnets/10.127.`],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const watchSeen = new Map<string, number>();
    const watchReading = stampedLines(watch, (line, t) => {
      const m = /subnets\/(10\.127\.\d+\.0)-24$/.exec(line);
      if (m) watchSeen.set(`${m[1]}/24`, t);
    });
    await new Promise((r) => setTimeout(r, 500));
    const routeLag: number[] = [];
    const watchLag: number[] = [];
    for (let i = 0; i < CONVERGE; i++) {
      const subnet = `10.127.${i}.0/24`;
      const t = performance.now();
      await client.put(
        `${PREFIX}/subnets/10.127.${i}.0-24`,
        `{"PublicIP":"${gw(i)}","PublicIPv6":null,"BackendType":"host-gw"}`,
      );
      const end = Date.now() + 10_000;
      while ((!routeSeen.has(subnet) || !watchSeen.has(subnet)) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!routeSeen.has(subnet) || !watchSeen.has(subnet)) throw new Error(`${subnet} not seen`);
      routeLag.push(routeSeen.get(subnet)! - t);
      watchLag.push(watchSeen.get(subnet)! - t);
    }
    const rm = median(routeLag), wm = median(watchLag);
    report(
      "lease written → route on the host (median)",
      `${rm.toFixed(1)} ms vs etcdctl watch ${wm.toFixed(1)} ms`,
      `${(rm / wm).toFixed(2)}×`,
      "≤ 2×",
    );
    const rp = percentile(routeLag, 99), wp = percentile(watchLag, 99);
    report(
      "lease written → route on the host (p99)",
      `${rp.toFixed(1)} ms vs etcdctl watch ${wp.toFixed(1)} ms`,
      `${(rp / wp).toFixed(2)}×`,
      "(printed)",
    );

    const rss = await rssMiB(agent.pid);
    report(
      `RSS of the agent holding ${LEASES + CONVERGE} leases (deno run, V8 defaults)`,
      `${rss.toFixed(1)} MiB`,
      `${(rss / 70).toFixed(2)}× of 70 MiB`,
      "≤ 70 MiB",
    );
    for (const c of [monitor, watch]) c.kill();
    await Promise.allSettled([reading, watchReading, monitor.status, watch.status]);

    // The shipped form: the compiled binary's V8 flags (deno task start runs the same), whose
    // first memory-reducing collection comes 5 s after start (util/heap.ts). A restart, so the
    // routes are in place already, as after any restart.
    await host.stopAgent();
    const shipped = host.startAgent([], { denoArgs: [`--v8-flags=${SHIPPED_V8_FLAGS}`] });
    await shipped.waitFor(new RegExp(`Synced ${LEASES + CONVERGE} peers`), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const early = await rssMiB(shipped.pid);
    await new Promise((r) => setTimeout(r, 6000));
    const settled = await rssMiB(shipped.pid);
    report(
      `RSS of the agent holding ${LEASES + CONVERGE} leases (the binary's V8 flags)`,
      `${settled.toFixed(1)} MiB 7.5 s after its sync (${early.toFixed(1)} at 1.5 s)`,
      `${(settled / 70).toFixed(2)}× of 70 MiB`,
      "≤ 70 MiB",
    );
  } finally {
    client.close();
  }
}

if (import.meta.main) await benchHostGw();
