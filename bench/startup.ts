/**
 * Start-up and idle-memory benchmark (issues 2 and 13), on a one-host test bed with a local etcd
 * (root only). The reference is the floor the design's npm packages impose: a Deno script that
 * only loads the Node compatibility layer (`node:module` + `node:buffer`), run the same way, in
 * the same namespace, in the same run.
 * - start → subnet.env, host-gw: median of 10 spawns of `deno run -A main.ts`, and of the
 *   bundle (`deno task bundle`, the form `deno compile` embeds), against the floor script;
 * - idle RSS of a host-gw agent holding 50 peers, against the floor script's RSS.
 */
import { EtcdClient } from "../subnet/etcd/client.ts";
import { AgentProcess } from "../test/agent_process.ts";
import { type Host, TestBed } from "../test/testbed.ts";
import { bundle } from "../scripts/bundle.ts";
import { SHIPPED_V8_FLAGS } from "../scripts/compile.ts";
import { median, report, rssMiB } from "./_util.ts";

const RUNS = 10;
const PEERS = 50;
const PREFIX = "/coreos.com/network";
const FLOOR = 'import "node:module";\nimport "node:buffer";\n';

/** Time from spawning `deno run` of `script` in `host`'s namespace until it exits. */
async function timeFloor(host: Host, script: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", host.ns, Deno.execPath(), "run", "--quiet", "-A", script],
  }).output();
  if (!out.success) throw new Error(`floor script failed: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - t0;
}

function agentArgs(bed: TestBed, subnetFile: string): string[] {
  return [
    `--etcd-endpoints=${bed.etcdEndpoint}`,
    `--subnet-file=${subnetFile}`,
    "--iface=eth0",
    "--iptables-forward-rules=false",
  ];
}

/** Time from spawning the agent until it has written subnet.env. */
async function timeAgent(host: Host, bed: TestBed, dir: string, main?: string): Promise<number> {
  const t0 = performance.now();
  await using agent = new AgentProcess(agentArgs(bed, `${dir}/subnet.env`), {
    netns: host.ns,
    ...(main ? { main } : {}),
  });
  await agent.waitFor(/Wrote subnet file/, 30_000);
  const elapsed = performance.now() - t0;
  await agent.stop();
  return elapsed;
}

export async function benchStartup(): Promise<void> {
  if (Deno.uid() !== 0) {
    console.log("start-up benchmarks skipped: need root (network namespaces)");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "flannel-bench-" });
  await using bed = await TestBed.create({
    hosts: 1,
    config: '{"Network":"10.98.0.0/16","Backend":{"Type":"host-gw"}}',
  });
  const host = bed.hosts[0];
  try {
    const floor = `${dir}/floor.ts`;
    await Deno.writeTextFile(floor, FLOOR);
    await bundle(`${dir}/bundle`);
    const bundled = `${dir}/bundle/flanneld.js`;
    // Warm-up (module cache, npm cache, first lease) is not measured.
    await timeFloor(host, floor);
    await timeAgent(host, bed, dir);
    await timeAgent(host, bed, dir, bundled);
    const floorMs: number[] = [], agentMs: number[] = [], bundleMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      floorMs.push(await timeFloor(host, floor));
      agentMs.push(await timeAgent(host, bed, dir));
      bundleMs.push(await timeAgent(host, bed, dir, bundled));
    }
    const f = median(floorMs), a = median(agentMs), b = median(bundleMs);
    report(
      "start → subnet.env (host-gw, local etcd)",
      `${a.toFixed(0)} ms vs floor script ${f.toFixed(0)} ms`,
      `${(a / f).toFixed(2)}×`,
      "≤ 2.0×",
    );
    report(
      "start → subnet.env, bundled (as compiled)",
      `${b.toFixed(0)} ms vs floor script ${f.toFixed(0)} ms`,
      `${(b / f).toFixed(2)}×`,
      "≤ 2.0×",
    );

    // Idle RSS with 50 peers (their routes in the kernel), against the floor script's RSS.
    const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
    try {
      await Promise.all(Array.from({ length: PEERS }, (_, i) =>
        client.put(
          `${PREFIX}/subnets/10.98.${100 + i}.0-24`,
          `{"PublicIP":"${bed.underlayIP(10 + i)}","PublicIPv6":null,"BackendType":"host-gw"}`,
        )));
    } finally {
      client.close();
    }
    const idle = `${dir}/floor_idle.ts`;
    await Deno.writeTextFile(idle, FLOOR + "setInterval(() => {}, 60_000);\n");
    const floorChild = new Deno.Command("ip", {
      args: ["netns", "exec", host.ns, Deno.execPath(), "run", "--quiet", "-A", idle],
    }).spawn();
    try {
      for (
        const [label, denoArgs] of [["", []], [" (the binary's V8 flags)", [
          `--v8-flags=${SHIPPED_V8_FLAGS}`,
        ]]] as const
      ) {
        await using agent = new AgentProcess(agentArgs(bed, `${dir}/idle.env`), {
          netns: host.ns,
          denoArgs: [...denoArgs],
        });
        await agent.waitFor(new RegExp(`Synced ${PEERS} peers`), 30_000);
        // Idle: past the first compaction the binary's flags allow (5 s after start).
        await new Promise((r) => setTimeout(r, 7000));
        const floorPid = await childPid(floorChild.pid);
        const rss = await rssMiB(agent.pid), floorRss = await rssMiB(floorPid);
        report(
          `idle RSS, host-gw, ${PEERS} peers${label}`,
          `${rss.toFixed(1)} MiB vs floor script ${floorRss.toFixed(1)} MiB`,
          `${(rss / floorRss).toFixed(2)}×`,
          "≤ 1.3×",
        );
        await agent.stop();
      }
    } finally {
      floorChild.kill();
      await floorChild.status;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The deno process `ip netns exec` became (it execs, so usually the same pid). */
async function childPid(pid: number): Promise<number> {
  const comm = (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
  if (comm !== "ip") return pid;
  const children = (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim();
  return Number(children.split(" ")[0]);
}

if (import.meta.main) await benchStartup();
