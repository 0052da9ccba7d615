/**
 * Start-up benchmark (issue 2): time from spawning the agent (alloc backend, local etcd) until
 * subnet.env is written, median of 10 runs, as a ratio to spawning an empty Deno script in the
 * same run; and the idle RSS of a running agent against flannel's 50 MiB request.
 */
import { EtcdClient } from "../subnet/etcd/client.ts";
import { startEtcd } from "../test/etcd_server.ts";
import { AgentProcess } from "../test/agent_process.ts";
import { median, report, rssMiB } from "./_util.ts";

const RUNS = 10;

async function timeEmptyDeno(dir: string): Promise<number> {
  const script = `${dir}/empty.ts`;
  await Deno.writeTextFile(script, "");
  const t0 = performance.now();
  await new Deno.Command(Deno.execPath(), { args: ["run", "--quiet", script] }).output();
  return performance.now() - t0;
}

async function timeAgentStart(endpoint: string, dir: string, i: number): Promise<number> {
  const subnetFile = `${dir}/subnet-${i}.env`;
  const t0 = performance.now();
  await using agent = new AgentProcess([
    `--etcd-endpoints=${endpoint}`,
    `--subnet-file=${subnetFile}`,
    "--iface=lo",
    `--public-ip=10.250.${i >> 8}.${i & 255}`,
    "--iptables-forward-rules=false",
  ]);
  await agent.waitFor(/Wrote subnet file/, 30_000);
  const elapsed = performance.now() - t0;
  await agent.stop();
  return elapsed;
}

export async function benchStartup(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flannel-bench-" });
  await using etcd = await startEtcd();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    await client.put(
      "/coreos.com/network/config",
      '{"Network":"10.99.0.0/16","Backend":{"Type":"alloc"}}',
    );
    // Warm-up (module cache, npm cache) is not measured.
    await timeEmptyDeno(dir);
    await timeAgentStart(etcd.endpoint, dir, 999);
    const agentMs: number[] = [];
    const emptyMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      emptyMs.push(await timeEmptyDeno(dir));
      agentMs.push(await timeAgentStart(etcd.endpoint, dir, i));
    }
    const a = median(agentMs), e = median(emptyMs);
    report(
      "start → subnet.env (alloc, local etcd)",
      `${a.toFixed(0)} ms vs empty deno ${e.toFixed(0)} ms`,
      `${(a / e).toFixed(2)}×`,
      "≤ 3×",
    );

    await using agent = new AgentProcess([
      `--etcd-endpoints=${etcd.endpoint}`,
      `--subnet-file=${dir}/idle.env`,
      "--iface=lo",
      "--public-ip=10.251.0.1",
      "--iptables-forward-rules=false",
    ]);
    await agent.waitFor(/Wrote subnet file/, 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    const rss = await rssMiB(agent.pid);
    report(
      "idle RSS of the running agent",
      `${rss.toFixed(1)} MiB`,
      `${(rss / 50).toFixed(2)}× of 50 MiB`,
      "≤ 50 MiB",
    );
    await agent.stop();
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await benchStartup();
