/**
 * Kubernetes-mode benchmarks (issue 6), against the fake API server:
 * - RSS of a process running the Kubernetes subnet manager's lease watch over 1 000 nodes (after
 *   the initial list and 1 000 updates), as a ratio to an idle Deno process; target ≤ 60 MiB.
 * - Node added in the API → lease event delivered by `watchLeases` (through `LeaseWatcher`, as a
 *   backend sees it): median over 50 nodes, as a ratio to a plain fetch watch client that only
 *   splits and parses the same stream.
 *
 *   deno run -A bench/kube.ts
 */
import { LeaseWatcher } from "../subnet/lease_watcher.ts";
import { createKubeSubnetManager } from "../subnet/kube/mod.ts";
import { silentLogger } from "../util/log.ts";
import { TRIM_INTERVAL_MS, trimPeriodically } from "../util/malloc_trim.ts";
import { COMPACTION, compactPeriodically } from "../util/heap.ts";
import { SHIPPED_V8_FLAGS } from "../scripts/compile.ts";
import type { FakeApiServer as FakeApiServerType } from "../test/fake_apiserver.ts";
import { median, report, rssMiB } from "./_util.ts";

// The fake API server and its node:http stack load only in the parent, so the child's RSS is the
// manager's own.
async function startApi(options: { historyLimit?: number } = {}): Promise<FakeApiServerType> {
  const { FakeApiServer } = await import("../test/fake_apiserver.ts");
  return await FakeApiServer.start(options);
}

const PREFIX = "flannel.alpha.coreos.com/";

const NODES = 1000;
/** Wait after the churn before reading the RSS. */
const SETTLE_MS = 1500;
/**
 * V8 flags tried for the watching process besides the defaults: a 1 MiB young-generation
 * semi-space (the burst of updates otherwise grows it to 16 MiB), and that plus `--lite-mode`
 * (no optimising compiler: fine for the control plane, not for the udp backend's packet loop).
 */
const V8_VARIANTS = [
  "",
  "--max-semi-space-size=1",
  SHIPPED_V8_FLAGS,
  "--max-semi-space-size=1,--lite-mode",
];
/** The RSS is read again this long after the churn: past a first compaction 5 s after start. */
const SETTLED_MS = 6000;
const LATENCY_NODES = 50;
const NET_CONF = '{"Network":"10.0.0.0/8","Backend":{"Type":"host-gw"}}';

/** A node run by flannel with host-gw (as `test/kube_harness.ts` `flannelNode`). */
function nodeFor(i: number) {
  const cidr = `10.${(i >> 8) & 255}.${i & 255}.0/24`;
  return {
    metadata: {
      name: `node-${i}`,
      annotations: {
        [`${PREFIX}backend-data`]: "null",
        [`${PREFIX}backend-type`]: "host-gw",
        [`${PREFIX}kube-subnet-manager`]: "true",
        [`${PREFIX}public-ip`]: `192.168.${(i >> 8) & 255}.${i & 255}`,
      },
    },
    spec: { podCIDR: cidr, podCIDRs: [cidr] },
  };
}

/** Child mode: watch leases until stdin closes; print the peer count after every batch. */
async function child(url: string, netConfigPath: string): Promise<void> {
  const manager = await createKubeSubnetManager({
    apiUrl: url,
    netConfigPath,
    env: { NODE_NAME: "node-0" },
    log: silentLogger,
  });
  const watcher = new LeaseWatcher(undefined);
  const ac = new AbortController();
  // As main.ts does (the compaction only with --expose-gc).
  trimPeriodically(TRIM_INTERVAL_MS, ac.signal);
  compactPeriodically({ ...COMPACTION, signal: ac.signal });
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* until closed */ }
    ac.abort();
  })();
  const enc = new TextEncoder();
  for await (const result of manager.watchLeases({ signal: ac.signal })) {
    watcher.apply(result);
    await Deno.stdout.write(enc.encode(`peers ${watcher.leases.length}\n`));
    if (Deno.env.get("KUBE_BENCH_DEBUG")) {
      const m = Deno.memoryUsage();
      console.error(
        Object.entries(m).map(([k, v]) => `${k}=${(v / 1048576).toFixed(1)}`).join(" "),
      );
    }
  }
  manager.close();
}

async function idleDenoRss(dir: string): Promise<number> {
  const script = `${dir}/idle.ts`;
  await Deno.writeTextFile(script, "setTimeout(() => {}, 60_000);\n");
  const p = new Deno.Command(Deno.execPath(), { args: ["run", "--quiet", script] }).spawn();
  await new Promise((r) => setTimeout(r, 700));
  const rss = await rssMiB(p.pid);
  p.kill("SIGKILL");
  await p.status;
  return rss;
}

async function benchRss(dir: string, v8Flags: string, idle: number): Promise<void> {
  await using api = await startApi({ historyLimit: 2000 });
  for (let i = 0; i < NODES; i++) api.setNode(nodeFor(i));
  const conf = `${dir}/net-conf.json`;
  await Deno.writeTextFile(conf, NET_CONF);
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
      new URL(import.meta.url).pathname,
      "--child",
      api.url,
      conf,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream());
  let last = "";
  const reader = lines.getReader();
  const until = async (want: string) => {
    while (!last.includes(want)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child ended before "${want}"`);
      last = value.trim().split("\n").pop() ?? "";
    }
  };
  await until(`peers ${NODES}`); // no own lease given: every node is a peer
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const listed = await rssMiB(proc.pid);
  // Churn: every node's public IP changes once, in bursts of 100 (a worst case: a real
  // cluster's heartbeats are far sparser).
  for (let i = 1; i < NODES; i++) {
    api.updateNode(`node-${i}`, (n) => {
      n.metadata!.annotations![`${PREFIX}public-ip`] = `172.16.${i >> 8}.${i & 255}`;
    });
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const rss = await rssMiB(proc.pid);
  await new Promise((r) => setTimeout(r, SETTLED_MS - SETTLE_MS));
  const settled = await rssMiB(proc.pid);
  await proc.stdin.close();
  await reader.cancel();
  await proc.status;
  report(
    `kube: RSS watching 1000 nodes${v8Flags ? ` (${v8Flags})` : ""}`,
    `${rss.toFixed(1)} MiB (${settled.toFixed(1)} at 6 s; listed ${listed.toFixed(1)}, idle deno ${
      idle.toFixed(1)
    })`,
    `${(rss / idle).toFixed(2)}x idle`,
    "≤ 60 MiB",
  );
}

/** A plain watch client: fetch, split lines, JSON.parse, note ADDED names. */
async function plainWatch(
  url: string,
  rv: string,
  seen: (name: string) => void,
  signal: AbortSignal,
) {
  const res = await fetch(`${url}/api/v1/nodes?watch=1&resourceVersion=${rv}`, { signal });
  let buf = "";
  try {
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const p of parts) {
        if (!p) continue;
        const ev = JSON.parse(p);
        if (ev.type === "ADDED") seen(ev.object.metadata.name);
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

async function benchLatency(dir: string): Promise<void> {
  await using api = await startApi();
  const conf = `${dir}/net-conf-lat.json`;
  await Deno.writeTextFile(conf, NET_CONF);
  const manager = await createKubeSubnetManager({
    apiUrl: api.url,
    netConfigPath: conf,
    env: { NODE_NAME: "self" },
    log: silentLogger,
  });
  const ac = new AbortController();
  const waiters = new Map<string, { manager?: () => void; plain?: () => void }>();
  const watcher = new LeaseWatcher(undefined);
  let listed!: () => void;
  const ready = new Promise<void>((r) => (listed = r));
  const managerLoop = (async () => {
    for await (const result of manager.watchLeases({ signal: ac.signal })) {
      if (result.snapshot) listed();
      for (const e of watcher.apply(result)) {
        if (e.type !== "added") continue;
        const name = `node-${(e.lease.subnet.ip >>> 8) & 255}`;
        waiters.get(name)?.manager?.();
      }
    }
  })();
  await ready;
  const plainLoop = plainWatch(
    api.url,
    String(api.resourceVersion),
    (name) => waiters.get(name)?.plain?.(),
    ac.signal,
  );
  await new Promise((r) => setTimeout(r, 200));
  const ours: number[] = [], plain: number[] = [];
  for (let i = 1; i <= LATENCY_NODES; i++) {
    const name = `node-${i}`;
    const t0 = performance.now();
    const w: { manager?: () => void; plain?: () => void } = {};
    const a = new Promise<void>((
      r,
    ) => (w.manager = () => (ours.push(performance.now() - t0), r())));
    const b = new Promise<void>((r) => (w.plain = () => (plain.push(performance.now() - t0), r())));
    waiters.set(name, w);
    api.setNode(nodeFor(i));
    await Promise.all([a, b]);
    waiters.delete(name);
    await new Promise((r) => setTimeout(r, 10));
  }
  ac.abort();
  await Promise.all([managerLoop, plainLoop]);
  manager.close();
  const m = median(ours), p = median(plain);
  report(
    "kube: node added → lease event (median of 50)",
    `${m.toFixed(2)} ms (plain watch ${p.toFixed(2)} ms)`,
    `${(m / p).toFixed(2)}x plain`,
    "close to a plain watch",
  );
}

export async function benchKube(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flannel-bench-kube-" });
  try {
    const idle = await idleDenoRss(dir);
    for (const flags of V8_VARIANTS) await benchRss(dir, flags, idle);
    await benchLatency(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") await child(Deno.args[1], Deno.args[2]);
  else await benchKube();
}
