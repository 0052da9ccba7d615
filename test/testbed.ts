/**
 * A multi-host test bed on one machine: N "hosts" as network namespaces joined by a bridge (the
 * underlay, in its own namespace), each running the agent, with pod namespaces behind a `cni0`
 * bridge addressed from the host's subnet.env; a real etcd reachable from every host. Only the
 * test bed's own addresses are used. Everything is torn down on dispose, also after a failure,
 * and each bed picks a number no live bed uses, so parallel test files do not collide.
 *
 *   root ns ── veth ──┐
 *                     br0 (underlay ns "<id>ul", 10.199.K.0/24 and fd99:K::/64)
 *   host ns "<id>h1" ─┘ eth0 10.199.K.1, fd99:K::1 ── cni0 (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET)
 *                                                       └── pod ns "<id>h1p1" eth0 .2, ::2
 *
 * The IPv6 underlay is on the same bridge (ULA addresses, no DAD, so they are usable at once);
 * pods get an address of each family subnet.env names.
 */
import { AgentProcess } from "./agent_process.ts";
import { eventually as poll } from "./eventually.ts";
import { type EtcdServer, startEtcd } from "./etcd_server.ts";
import { formatIP6, parseIP6 } from "../subnet/ip.ts";

export const IS_ROOT = Deno.uid() === 0;

/** For `Deno.test({ ignore })`: root-only tests skip, with a line saying why. */
export function skipUnlessRoot(what: string): boolean {
  if (!IS_ROOT) console.error(`skipping ${what}: needs root (network namespaces)`);
  return !IS_ROOT;
}

export async function sh(cmd: string[], opts: { check?: boolean; netns?: string } = {}) {
  const argv = opts.netns ? ["ip", "netns", "exec", opts.netns, ...cmd] : cmd;
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if ((opts.check ?? true) && !out.success) {
    throw new Error(`${argv.join(" ")} failed (${out.code}): ${stderr.trim()}`);
  }
  return { ok: out.success, stdout, stderr };
}

export interface Pod {
  readonly ns: string;
  /** The IPv4 address; "" on an IPv6-only host. */
  readonly ip: string;
  /** The IPv6 address, when the host has an IPv6 subnet. */
  readonly ip6?: string;
}

/** Where a host's agent takes its subnet in Kubernetes mode (instead of the bed's etcd). */
export interface KubeMode {
  /** `--kube-api-url`. */
  apiUrl: string;
  /** `--net-config-path`. */
  netConfigPath: string;
}

export class Host {
  readonly pods: Pod[] = [];
  agent?: AgentProcess;
  /** When set, `startAgent()` runs `--kube-subnet-mgr` against it, as node `name`. */
  kube?: KubeMode;

  constructor(
    readonly bed: TestBed,
    readonly name: string,
    readonly ns: string,
    readonly ip: string,
    readonly subnetFile: string,
    readonly ip6: string = "",
  ) {}

  /** Runs a command inside the host's namespace. */
  run(cmd: string[], check = true) {
    return sh(cmd, { netns: this.ns, check });
  }

  /**
   * Starts (or restarts) the agent on this host with the test bed's etcd and prefix, or in
   * Kubernetes mode (`kube`) as the node named like the host.
   */
  startAgent(
    extra: string[] = [],
    options: { denoArgs?: string[]; env?: Record<string, string> } = {},
  ): AgentProcess {
    const datastore = this.kube
      ? [
        "--kube-subnet-mgr",
        `--kube-api-url=${this.kube.apiUrl}`,
        `--net-config-path=${this.kube.netConfigPath}`,
      ]
      : [`--etcd-endpoints=${this.bed.etcdEndpoint}`, `--etcd-prefix=${this.bed.prefix}`];
    const env = this.kube ? { NODE_NAME: this.name, ...options.env } : options.env;
    this.agent = new AgentProcess([
      ...datastore,
      `--subnet-file=${this.subnetFile}`,
      "--iface=eth0",
      ...extra,
    ], { netns: this.ns, denoArgs: options.denoArgs, env });
    return this.agent;
  }

  async stopAgent(): Promise<void> {
    await this.agent?.stop();
  }

  /** Parsed subnet.env of this host. */
  async subnetEnv(): Promise<Record<string, string>> {
    const text = await Deno.readTextFile(this.subnetFile);
    return Object.fromEntries(
      text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  }

  /**
   * Adds a pod namespace behind `cni0`, as the flannel CNI plugin's bridge delegate would: cni0
   * gets FLANNEL_SUBNET's first address, the pod the next free one, default route via cni0.
   */
  async addPod(): Promise<Pod> {
    const env = await this.subnetEnv();
    const n = this.pods.length + 1;
    const v4 = env.FLANNEL_SUBNET?.split("/");
    const v6 = env.FLANNEL_IPV6_SUBNET?.split("/");
    const ip = v4 ? nthAddress4(v4[0], n) : "";
    const ip6 = v6 ? formatIP6(parseIP6(v6[0]) + BigInt(n)) : undefined;
    const ns = `${this.ns}p${n}`;
    if (this.pods.length === 0) {
      // No multicast snooping: a neighbour solicitation to a pod is never held back by a
      // snooping table that has not yet seen the pod's MLD report.
      await this.run(["ip", "link", "add", "cni0", "type", "bridge", "mcast_snooping", "0"]);
      if (v4) await this.run(["ip", "addr", "add", `${v4[0]}/${v4[1]}`, "dev", "cni0"]);
      if (v6) await this.run(["ip", "addr", "add", `${v6[0]}/${v6[1]}`, "dev", "cni0", "nodad"]);
      await this.run(["ip", "link", "set", "cni0", "mtu", env.FLANNEL_MTU, "up"]);
    }
    this.bed.namespaces.push(ns);
    await sh(["ip", "netns", "add", ns]);
    // No duplicate address detection on the pod's link-local address either: usable at once.
    await sh(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"], { netns: ns });
    await this.run([
      "ip",
      "link",
      "add",
      `vp${n}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      ns,
    ]);
    await this.run(["ip", "link", "set", `vp${n}`, "master", "cni0", "mtu", env.FLANNEL_MTU, "up"]);
    const inPod = (cmd: string[]) => sh(cmd, { netns: ns });
    await inPod(["ip", "link", "set", "lo", "up"]);
    if (v4) await inPod(["ip", "addr", "add", `${ip}/${v4[1]}`, "dev", "eth0"]);
    if (v6) await inPod(["ip", "addr", "add", `${ip6}/${v6[1]}`, "dev", "eth0", "nodad"]);
    await inPod(["ip", "link", "set", "eth0", "mtu", env.FLANNEL_MTU, "up"]);
    if (v4) await inPod(["ip", "route", "add", "default", "via", v4[0]]);
    if (v6) await inPod(["ip", "-6", "route", "add", "default", "via", v6[0]]);
    const pod = { ns, ip, ...(ip6 ? { ip6 } : {}) };
    this.pods.push(pod);
    return pod;
  }

  /** IPv4 routes of the host, one per line as `ip route show` prints them. */
  async routes(): Promise<string[]> {
    return (await this.run(["ip", "route", "show"])).stdout.trim().split("\n");
  }
}

/** `n` added to the IPv4 address `first`. */
function nthAddress4(first: string, n: number): string {
  const b = first.split(".").map(Number);
  return `${b[0]}.${b[1]}.${b[2]}.${b[3] + n}`;
}

/**
 * `ping -c N -W 1` from a pod namespace (`ping -6` to an IPv6 address); true when every reply
 * came back.
 */
export async function ping(from: Pod, to: string, count = 1): Promise<boolean> {
  const family = to.includes(":") ? ["-6"] : [];
  const args = [...family, "-n", "-q", "-c", String(count), "-i", "0.2", "-W", "1", to];
  const r = await sh(["ping", ...args], {
    netns: from.ns,
    check: false,
  });
  return r.ok;
}

/** Pings `to` every 50 ms from `from` while `during` runs; returns [sent, received]. */
export async function pingDuring(from: Pod, to: string, during: () => Promise<void>) {
  const family = to.includes(":") ? ["-6"] : [];
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", from.ns, "ping", ...family, "-n", "-i", "0.05", "-W", "1", to],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 300));
    await during();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    child.kill("SIGINT");
  }
  const out = new TextDecoder().decode((await child.output()).stdout);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new Error(`ping summary missing: ${out}`);
  return [Number(m[1]), Number(m[2])];
}

/** Polls at 50 ms: each poll of a test bed usually spawns `ip`. */
export function eventually(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  return poll(cond, timeoutMs, what, 50);
}

export interface TestBedOptions {
  hosts: number;
  /** Network config JSON written to `<prefix>/config`. */
  config: string;
  prefix?: string;
}

export class TestBed implements AsyncDisposable {
  readonly hosts: Host[] = [];
  readonly namespaces: string[] = [];
  etcdEndpoint = "";
  #etcd?: EtcdServer;
  #rootVeth = "";
  #dir = "";

  private constructor(readonly id: string, readonly k: number, readonly prefix: string) {}

  get underlayNs(): string {
    return `${this.id}ul`;
  }

  /** Underlay address of host `i` (1-based); .254 is the root namespace side (etcd). */
  underlayIP(i: number): string {
    return `10.199.${this.k}.${i}`;
  }

  /** IPv6 underlay address of host `i` (1-based); `::fe` is the root namespace side. */
  underlayIP6(i: number): string {
    return `fd99:${this.k.toString(16)}::${i.toString(16)}`;
  }

  static async create(opts: TestBedOptions): Promise<TestBed> {
    const k = await claimBedNumber(); // its underlay namespace exists from here on
    const bed = new TestBed(`ft${k}`, k, opts.prefix ?? "/coreos.com/network");
    bed.namespaces.push(bed.underlayNs);
    trackForInterrupt(bed);
    try {
      await bed.#build(opts);
    } catch (err) {
      await bed[Symbol.asyncDispose]();
      throw err;
    }
    return bed;
  }

  async #build(opts: TestBedOptions): Promise<void> {
    this.#dir = await Deno.makeTempDir({ prefix: `${this.id}-` });
    const ul = this.underlayNs; // created (and listed for removal) in create()
    const inUl = (cmd: string[]) => sh(cmd, { netns: ul });
    await inUl(["ip", "link", "set", "lo", "up"]);
    await inUl(["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
    await inUl(["ip", "link", "set", "br0", "up"]);
    // The root namespace joins the underlay, so etcd (run here) is reachable from every host.
    this.#rootVeth = `${this.id}r`;
    await sh([
      "ip",
      "link",
      "add",
      this.#rootVeth,
      "type",
      "veth",
      "peer",
      "name",
      "root",
      "netns",
      ul,
    ]);
    await inUl(["ip", "link", "set", "root", "master", "br0", "up"]);
    await sh(["ip", "addr", "add", `${this.underlayIP(254)}/24`, "dev", this.#rootVeth]);
    await sh([
      "ip",
      "-6",
      "addr",
      "add",
      `${this.underlayIP6(254)}/64`,
      "dev",
      this.#rootVeth,
      "nodad",
    ]);
    await sh(["ip", "link", "set", this.#rootVeth, "up"]);
    this.#etcd = await startEtcd({ host: this.underlayIP(254) });
    this.etcdEndpoint = this.#etcd.endpoint;
    await sh([
      "etcdctl",
      `--endpoints=${this.etcdEndpoint}`,
      "put",
      `${this.prefix}/config`,
      opts.config,
    ]);
    for (let i = 1; i <= opts.hosts; i++) await this.addHost();
  }

  /** Adds one more host namespace on the underlay (the agent is not started). */
  async addHost(): Promise<Host> {
    const i = this.hosts.length + 1;
    const ns = `${this.id}h${i}`;
    this.namespaces.push(ns);
    await sh(["ip", "netns", "add", ns]);
    const run = (cmd: string[]) => sh(cmd, { netns: ns });
    await run(["ip", "link", "set", "lo", "up"]);
    await run([
      "ip",
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      `h${i}`,
      "netns",
      this.underlayNs,
    ]);
    await sh(["ip", "link", "set", `h${i}`, "master", "br0", "up"], { netns: this.underlayNs });
    await run(["ip", "addr", "add", `${this.underlayIP(i)}/24`, "dev", "eth0"]);
    await run(["ip", "-6", "addr", "add", `${this.underlayIP6(i)}/64`, "dev", "eth0", "nodad"]);
    await run(["ip", "link", "set", "eth0", "up"]);
    await run(["ip", "route", "add", "default", "via", this.underlayIP(254)]);
    await run(["ip", "-6", "route", "add", "default", "via", this.underlayIP6(254)]);
    await run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    await run(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    const host = new Host(
      this,
      `host${i}`,
      ns,
      this.underlayIP(i),
      `${this.#dir}/host${i}.env`,
      this.underlayIP6(i),
    );
    this.hosts.push(host);
    return host;
  }

  /** Stops etcd (keeping its data), as an outage. */
  async stopEtcd(): Promise<void> {
    await this.#etcd?.pause();
  }

  async startEtcd(): Promise<void> {
    await this.#etcd?.start();
  }

  /** Starts every host's agent and waits until each wrote its subnet.env. */
  async startAgents(extra: string[] = []): Promise<void> {
    const agents = this.hosts.map((h) => h.startAgent(extra));
    await Promise.all(agents.map((a) => a.waitFor(/Wrote subnet file/, 30_000)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    liveBeds.delete(this);
    await Promise.allSettled(this.hosts.map((h) => h.agent?.[Symbol.asyncDispose]()));
    await Promise.resolve(this.#etcd?.[Symbol.asyncDispose]()).catch(() => {});
    for (const ns of [...this.namespaces].reverse()) {
      await sh(["ip", "netns", "del", ns], { check: false });
    }
    if (this.#rootVeth) await sh(["ip", "link", "del", this.#rootVeth], { check: false });
    if (this.#dir) await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

const liveBeds = new Set<TestBed>();

/** Ctrl-C or SIGTERM tears down every live test bed before the process exits. */
function trackForInterrupt(bed: TestBed): void {
  if (liveBeds.size === 0) {
    const onSignal = async () => {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      console.error("interrupted: tearing down the test bed");
      await Promise.allSettled([...liveBeds].map((b) => b[Symbol.asyncDispose]()));
      Deno.exit(130);
    };
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  }
  liveBeds.add(bed);
}

/**
 * Claims a test-bed number no other test bed uses, by creating its underlay namespace
 * `ft<k>ul`: `ip netns add` fails when the name exists, so two test beds started at the same
 * moment (test files run in parallel) cannot both get `k`. Looking first only skips numbers
 * that are plainly taken; the claim is what decides.
 */
async function claimBedNumber(): Promise<number> {
  const netns = (await sh(["ip", "netns", "list"], { check: false })).stdout;
  const links = (await sh(["ip", "-o", "link", "show"], { check: false })).stdout;
  for (let tries = 0; tries < 1000; tries++) {
    const k = 20 + Math.floor(Math.random() * 200);
    if (netns.includes(`ft${k}h`) || netns.includes(`ft${k}ul`) || links.includes(`ft${k}r`)) {
      continue;
    }
    if ((await sh(["ip", "netns", "add", `ft${k}ul`], { check: false })).ok) return k;
  }
  throw new Error("no free test-bed number: remove stale ft* namespaces (ip netns list)");
}
