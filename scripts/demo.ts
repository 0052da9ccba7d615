/**
 * `deno task demo`: a flannel network of several hosts on this machine (root, Linux). Each host
 * is a network namespace on one bridge with a pod behind `cni0`; the agent runs on each with the
 * chosen backend, against a local etcd or, with `--kube`, against the test fake Kubernetes API
 * server in `--kube-subnet-mgr` mode with the DaemonSet's own flags and env. Prints each host's
 * subnet.env and kernel state, a cross-host pod ping and a short iperf3 figure, then tears
 * everything down (also on Ctrl-C). `--dual-stack` (host-gw, vxlan; etcd mode) adds an IPv6
 * network on the test bed's IPv6 underlay: the IPv6 lines of subnet.env, the IPv6 routes (and
 * `flannel-v6.1` with its entries), and a `ping -6` across hosts.
 */
import { parseArgs } from "node:util";
import { FakeApiServer } from "../test/fake_apiserver.ts";
import { eventually, type Host, ping, sh, TestBed } from "../test/testbed.ts";
import { nodeTable, startKubeAgents } from "./_demo_kube.ts";
import { block, type DemoBackend, hostView, knowsPeers } from "./_demo_view.ts";

const BACKENDS: DemoBackend[] = ["host-gw", "vxlan", "udp"];
const USAGE =
  "usage: deno task demo [--backend host-gw|vxlan|udp] [--hosts N] [--kube | --dual-stack]";

function usageError(message: string): never {
  console.error(`demo: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function parse(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        backend: { type: "string", default: "host-gw" },
        hosts: { type: "string", default: "3" },
        kube: { type: "boolean", default: false },
        "dual-stack": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    usageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const backend = values.backend as DemoBackend;
  if (!BACKENDS.includes(backend)) {
    usageError(`unknown backend "${values.backend}": choose one of ${BACKENDS.join(", ")}`);
  }
  const hosts = Number(values.hosts);
  if (!Number.isInteger(hosts) || hosts < 2 || hosts > 20) {
    usageError(`--hosts ${values.hosts}: a whole number from 2 to 20`);
  }
  const dualStack = values["dual-stack"];
  if (dualStack && (backend === "udp" || values.kube)) {
    usageError("--dual-stack works with --backend host-gw or vxlan, in etcd mode (no --kube)");
  }
  return { backend, hosts, kube: values.kube, dualStack };
}

/**
 * Ctrl-C or SIGTERM: the test bed tears itself down and exits 130; meanwhile what fails because
 * its namespaces and agents are going away is not reported.
 */
let interrupted = false;

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** iperf3 for one second, pod to pod; undefined when iperf3 is not installed or fails. */
async function iperf(from: Host, to: Host): Promise<string | undefined> {
  const have = await sh(["sh", "-c", "command -v iperf3"], { check: false });
  if (!have.ok) return undefined;
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", to.pods[0].ns, "iperf3", "-s", "-1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      // Bounded: an iperf3 client whose connection stalls waits for the server for ever.
      const out = await sh(["timeout", "10", "iperf3", "-c", to.pods[0].ip, "-t", "1", "-J"], {
        netns: from.pods[0].ns,
        check: false,
      });
      if (!out.ok) continue;
      const bps = JSON.parse(out.stdout).end.sum_received.bits_per_second as number;
      return `pod on ${from.name} → pod on ${to.name}: ${(bps / 1e9).toFixed(2)} Gbit/s ` +
        `(TCP, 1 s)`;
    }
    return undefined;
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* already gone */ }
    await server.status;
  }
}

/** Three pings pod to pod, IPv4 or (`ping -6`) IPv6, summed up in one line. */
async function pingLine(from: Host, to: Host, v6 = false): Promise<{ ok: boolean; text: string }> {
  const [src, dst] = v6 ? [from.pods[0].ip6!, to.pods[0].ip6!] : [from.pods[0].ip, to.pods[0].ip];
  const r = await sh(
    ["ping", ...(v6 ? ["-6"] : []), "-n", "-c", "3", "-i", "0.2", "-W", "1", dst],
    { netns: from.pods[0].ns, check: false },
  );
  const replies = /(\d+) received/.exec(r.stdout)?.[1] ?? "0";
  const avg = /= [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1];
  return {
    ok: r.ok,
    text: `pod ${src} on ${from.name} → pod ${dst} on ${to.name}: ` +
      `${replies}/3 replies${avg ? `, ${avg} ms average` : ""}`,
  };
}

function agentTail(bed: TestBed): string {
  return bed.hosts.map((h) =>
    `── ${h.name} agent log (last lines)\n${
      (h.agent?.lines ?? []).filter((l) => !l.includes("CLI flags config")).slice(-12).join("\n")
    }`
  ).join("\n");
}

interface Options {
  backend: DemoBackend;
  hosts: number;
  kube: boolean;
  dualStack: boolean;
}

async function run(o: Options): Promise<boolean> {
  const config = JSON.stringify({
    Network: "10.100.0.0/16",
    ...(o.dualStack ? { EnableIPv6: true, IPv6Network: "fd00:100::/56", IPv6SubnetLen: 64 } : {}),
    Backend: { Type: o.backend },
  });
  const dir = await Deno.makeTempDir({ prefix: "flanneld-demo-" });
  const removeDir = () => Deno.removeSync(dir, { recursive: true });
  const onSignal = () => {
    interrupted = true;
    removeDir();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let api: FakeApiServer | undefined;
  try {
    await using bed = await TestBed.create({ hosts: o.hosts, config });
    const names = bed.hosts.map((h) => h.name).join(" ");
    let port: string | undefined;
    if (o.kube) {
      api = await FakeApiServer.start({ hostname: bed.underlayIP(254) });
      console.log(
        `flanneld demo: ${o.hosts} nodes, --kube-subnet-mgr, backend ${o.backend}, ` +
          `fake Kubernetes API server at ${api.url}\n`,
      );
      port = await startKubeAgents(bed, api, o.backend, dir);
    } else {
      console.log(
        `flanneld demo: ${o.hosts} hosts, backend ${o.backend}${
          o.dualStack ? ", dual stack (IPv4 + IPv6)" : ""
        }, etcd at ${bed.etcdEndpoint}\n`,
      );
      console.log(`network config (${bed.prefix}/config)  ${config}\n`);
    }
    const started = performance.now();
    console.log(`starting flanneld on ${names} ...`);
    try {
      if (o.kube) {
        await Promise.all(bed.hosts.map((h) => h.agent!.waitFor(/Wrote subnet file/, 30_000)));
      } else {
        await bed.startAgents();
      }
      await eventually(
        async () =>
          (await Promise.all(
            bed.hosts.map((h) => knowsPeers(h, o.backend, o.hosts - 1, o.dualStack)),
          ))
            .every(Boolean),
        10_000,
        "every host to program its peers",
      );
    } catch (err) {
      if (interrupted) return await new Promise<never>(() => {});
      console.log(`✘ the agents did not come up: ${(err as Error).message}\n${agentTail(bed)}`);
      return false;
    }
    console.log(`every host has its lease and its peers, in ${seconds(started)}\n`);
    for (const h of bed.hosts) await h.addPod();
    if (api) await nodeTable(bed, api, port);
    for (const h of bed.hosts) {
      console.log((await hostView(h, o.backend, o.dualStack)).join("\n") + "\n");
    }

    const [a, b] = [bed.hosts[0], bed.hosts[bed.hosts.length - 1]];
    await eventually(() => ping(a.pods[0], b.pods[0].ip), 5000, "a first reply").catch(() => {});
    let p = await pingLine(a, b);
    console.log(block("ping", [p.text], 8).join("\n").slice(2));
    if (o.dualStack) {
      // The first IPv6 packet may wait out a lost neighbour solicitation on the underlay.
      await eventually(() => ping(a.pods[0], b.pods[0].ip6!), 5000, "a first IPv6 reply")
        .catch(() => {});
      const p6 = await pingLine(a, b, true);
      console.log(block("ping -6", [p6.text], 8).join("\n").slice(2));
      p = { ok: p.ok && p6.ok, text: "" };
    }
    const speed = p.ok ? await iperf(a, b) : undefined;
    if (speed) console.log(block("iperf3", [speed], 8).join("\n").slice(2));
    console.log();
    if (p.ok) {
      console.log(
        `✔ it works: a pod on ${a.name} reached a pod on ${b.name} through the ${o.backend} ` +
          `backend${o.kube ? ", with subnets from the nodes' podCIDRs" : ""}` +
          `${o.dualStack ? ", in IPv4 and IPv6" : ""}`,
      );
    } else {
      console.log(`✘ pods on ${a.name} and ${b.name} cannot reach each other\n${agentTail(bed)}`);
    }
    console.log(`tearing down (namespaces, agents, ${o.kube ? "API server" : "etcd"}) ...`);
    return p.ok;
  } finally {
    await api?.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (!interrupted) removeDir();
  }
}

if (import.meta.main) {
  const options = parse(Deno.args);
  if (Deno.uid() !== 0) {
    console.error("demo: it creates network namespaces: run it as root (sudo deno task demo)");
    Deno.exit(1);
  }
  const ok = await run(options).catch(async (err) => {
    if (interrupted) return await new Promise<never>(() => {});
    throw err;
  });
  console.log("done");
  Deno.exit(ok ? 0 : 1);
}
