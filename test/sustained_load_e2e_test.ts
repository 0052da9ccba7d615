/**
 * Sustained load on the multi-host test bed (root only): for each backend, 30 s of TCP between
 * pods on two hosts while the agents run with a small young generation and frequent forced
 * garbage collection (so memory handed to the kernel through FFI that is not kept alive shows up
 * as EFAULT or a crash within the run, not after days). Asserts that bytes arrive in every second
 * of the run, pings pass afterwards, the data-path error counters stay at zero, the agents log no
 * error, and both agents exit 0 on SIGTERM. vxlan runs a second time in a dual-stack network with
 * the stream over IPv6 and a dual-stack churned peer.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { fakePeerLease, iperf } from "./load.ts";
import { eventually, type Host, ping, skipUnlessRoot, TestBed } from "./testbed.ts";

/** Seconds of traffic per backend; FLANNEL_TEST_LOAD_SECONDS makes a longer local run. */
const SECONDS = Number(Deno.env.get("FLANNEL_TEST_LOAD_SECONDS") ?? 30);
const PORT = 9931;

/**
 * V8 options for the agents: a 1 MiB semi-space, and `gc()` exposed, which makes the agent's main
 * thread collect every 100 ms and the udp workers every 256 rounds (main.ts, udp/_worker.ts).
 */
export const GC_STRESS = ["--v8-flags=--expose-gc,--max-semi-space-size=1"];

/**
 * glibc fills freed heap memory with this byte, so a pointer into memory the collector released
 * reads garbage at once (EFAULT) instead of stale but plausible data.
 */
export const MALLOC_STRESS = { MALLOC_PERTURB_: "165", FLANNEL_GC_STRESS: "1" };

/** `iperf` for `seconds`, failing unless iperf3 succeeded and the receiver reported each second. */
async function tcpFor(
  host: Host,
  peer: Host,
  seconds: number,
  family: 4 | 6,
): Promise<number[]> {
  const r = await iperf(host.pods[0], peer.pods[0], { seconds, family });
  if (!r.ok) throw new Error(`iperf3 failed: ${r.output}`);
  assert.ok(r.perSecond.length >= seconds - 1, `receiver intervals: ${r.perSecond.length}`);
  return r.perSecond;
}

async function metrics(host: Host, port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://${host.ip}:${port}/metrics`, {
    signal: AbortSignal.timeout(3000),
  });
  const m = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("#") || !line.trim()) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Sum of every sample whose name and labels match `re`. */
function total(m: Map<string, number>, re: RegExp): number {
  let n = 0;
  for (const [k, v] of m) if (re.test(k)) n += v;
  return n;
}

/**
 * Adds and removes a third peer's lease every 250 ms until `signal` aborts (a copy of `host`'s
 * lease with subnet `<a>.<b>.<third>.0/24`, another public IP and VTEP MAC), so the agents'
 * reconcilers and netlink event loops work all through the load. Resolves with the number of
 * changes made.
 */
async function churn(
  bed: TestBed,
  host: Host,
  third: number,
  signal: AbortSignal,
): Promise<number> {
  const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
  try {
    const subnets = `${bed.prefix}/subnets/`;
    const env = await host.subnetEnv();
    const own4 = env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0-24");
    // Dual stack: the key names both subnets; the fake's IPv6 /64 has `third` as its 4th group.
    const own6 = env.FLANNEL_IPV6_SUBNET?.replace(/::1\/64$/, "::-64");
    const own = own6 ? `${own4}&${own6}` : own4;
    const value = fakePeerLease(
      (await client.get(subnets + own)).kv!.value,
      bed.underlayIP(9),
      9,
      own6 ? bed.underlayIP6(9) : undefined,
    );
    const key = subnets + own4.replace(/^(\d+\.\d+)\.\d+/, `$1.${third}`) +
      (own6 ? `&${own6.replace(/^(\w+:\w+:\w+):\w+/, `$1:${third.toString(16)}`)}` : "");
    let changes = 0;
    while (!signal.aborted) {
      if (changes % 2 === 0) await client.put(key, value);
      else await client.delete(key);
      changes++;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (changes % 2 === 1) await client.delete(key);
    return changes;
  } finally {
    client.close();
  }
}

/**
 * `family` 6: a dual-stack network, the TCP stream and the pings over IPv6, and the churned
 * peer a dual-stack one (so the IPv6 reconciler works through the load too).
 */
function sustainedLoad(
  backend: string,
  config: string,
  check: (m: Map<string, number>) => void,
  family: 4 | 6 = 4,
) {
  const over = family === 6 ? " over IPv6 (dual stack)" : "";
  Deno.test({
    name: `sustained load: ${backend} carries ${SECONDS} s of TCP${over} under forced GC`,
    ignore: skipUnlessRoot(`${backend} sustained load`) ||
      (new Deno.Command("iperf3", { args: ["--version"] }).outputSync().code !== 0),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await using bed = await TestBed.create({ hosts: 2, config });
      const flags = [`--healthz-port=${PORT}`];
      await Promise.all(
        bed.hosts.map((h) =>
          h.startAgent(flags, { denoArgs: GC_STRESS, env: MALLOC_STRESS }).waitFor(/Wrote subnet/)
        ),
      );
      const [a, b] = bed.hosts;
      await a.addPod();
      await b.addPod();
      const ip = (h: Host) => family === 6 ? h.pods[0].ip6! : h.pods[0].ip;
      // The first IPv6 packet may wait out a lost neighbour solicitation on the test bed.
      await eventually(() => ping(a.pods[0], ip(b), 1), 5000, "reachable before the load");
      assert.ok(await ping(a.pods[0], ip(b), 3), "ping before the load");

      const stopChurn = new AbortController();
      // The fake peer's subnet is none of the real hosts' (that would overwrite their leases).
      const taken = (await Promise.all(bed.hosts.map((h) => h.subnetEnv()))).flatMap((e) => [
        Number(e.FLANNEL_SUBNET.split(".")[2]),
        ...(e.FLANNEL_IPV6_SUBNET ? [parseInt(e.FLANNEL_IPV6_SUBNET.split(":")[3], 16)] : []),
      ]);
      const third = [250, 251, 252].find((t) => !taken.includes(t))!;
      const churned = churn(bed, a, third, stopChurn.signal);
      let perSecond: number[];
      try {
        perSecond = await tcpFor(a, b, SECONDS, family);
      } finally {
        stopChurn.abort();
        await churned.catch(() => {});
      }
      const changes = await churned;
      assert.ok(changes >= SECONDS * 2, `lease changes during the load: ${changes}`);
      for (const h of bed.hosts) {
        await h.agent!.waitFor(new RegExp(`Subnet removed: \\d+\\.\\d+\\.${third}\\.0/24`), 5000);
        // Dual stack: the IPv6 loop programmed and removed the churned peer too.
        if (family === 6) {
          await h.agent!.waitFor(
            new RegExp(`Subnet removed: [\\w:]+:${third.toString(16)}::/64`),
            5000,
          );
        }
      }
      const empty = perSecond.map((n, i) => n > 0 ? -1 : i).filter((i) => i >= 0);
      assert.deepEqual(empty, [], `seconds without bytes: ${empty} (bytes/s: ${perSecond})`);

      assert.ok(await ping(a.pods[0], ip(b), 5), "ping after the load");
      assert.ok(await ping(b.pods[0], ip(a), 5), "ping back after the load");
      for (const h of bed.hosts) {
        const m = await metrics(h, PORT);
        assert.equal(total(m, /^flanneld_reconcile_errors_total/), 0, `${h.name} reconcile errors`);
        check(m);
      }
      for (const h of bed.hosts) {
        const status = await h.agent!.stop("SIGTERM");
        const errors = h.agent!.lines.filter((l) => /^E\d{4}|\bpanic\b|Segmentation/.test(l));
        assert.deepEqual(errors, [], `${h.name} logged errors`);
        assert.equal(status.code, 0, `${h.name} exit status (signal ${status.signal})`);
      }
    },
  });
}

sustainedLoad("udp", '{"Network":"10.111.0.0/16","Backend":{"Type":"udp"}}', (m) => {
  assert.ok(total(m, /^flanneld_udp_packets_total\{direction="rx"/) > 1000, "udp rx packets");
  const drops = [...m].filter(([k, v]) =>
    k.startsWith("flanneld_udp_dropped_packets_total") && v > 0 &&
    !/reason="(noRoute|unknownSource)"/.test(k)
  );
  assert.deepEqual(drops, [], "udp data-path errors or drops");
});

sustainedLoad("vxlan", '{"Network":"10.112.0.0/16","Backend":{"Type":"vxlan"}}', (m) => {
  assert.equal(total(m, /^flanneld_peers_programmed/), 1, "vxlan peers programmed");
});

sustainedLoad("host-gw", '{"Network":"10.113.0.0/16","Backend":{"Type":"host-gw"}}', (m) => {
  assert.equal(total(m, /^flanneld_peers_programmed/), 1, "host-gw peers programmed");
});

sustainedLoad(
  "vxlan",
  '{"Network":"10.114.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:114::/56",' +
    '"IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}',
  (m) => {
    for (const family of ["ipv4", "ipv6"]) {
      assert.equal(
        total(m, new RegExp(`^flanneld_peers_programmed\\{family="${family}"`)),
        1,
        `vxlan ${family} peers programmed`,
      );
    }
  },
  6,
);
