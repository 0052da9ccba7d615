/**
 * A multi-host test bed on one machine: N "hosts" as network namespaces joined by a bridge (the
 * underlay, in its own namespace), each running the agent, with pod namespaces behind a `cni0`
 * bridge addressed from the host's subnet.env; a real etcd reachable from every host. Only the
 * test bed's own addresses are used. Everything is torn down on dispose, also after a failure,
 * and each bed picks a number no live bed uses, so parallel test files do not collide.
 *
 *   root ns ── veth ──┐
 *                     br0 (underlay ns "<id>ul", 10.199.K.0/24)
 *   host ns "<id>h1" ─┘ eth0 10.199.K.1 ── cni0 (FLANNEL_SUBNET) ── pod ns "<id>h1p1" eth0 .2
 */
import { AgentProcess } from "./agent_process.ts";
import { eventually as poll } from "./eventually.ts";
import { type EtcdServer, startEtcd } from "./etcd_server.ts";

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
  readonly ip: string;
}

export class Host {
  readonly pods: Pod[] = [];
  agent?: AgentProcess;

  constructor(
    readonly bed: TestBed,
    readonly name: string,
    readonly ns: string,
    readonly ip: string,
    readonly subnetFile: string,
  ) {}

  /** Runs a command inside the host's namespace. */
  run(cmd: string[], check = true) {
    return sh(cmd, { netns: this.ns, check });
  }

  /** Starts (or restarts) the agent on this host with the test bed's etcd and prefix. */
  startAgent(
    extra: string[] = [],
    options: { denoArgs?: string[]; env?: Record<string, string> } = {},
  ): AgentProcess {
    this.agent = new AgentProcess([
      `--etcd-endpoints=${this.bed.etcdEndpoint}`,
      `--etcd-prefix=${this.bed.prefix}`,
      `--subnet-file=${this.subnetFile}`,
      "--iface=eth0",
      ...extra,
    ], { netns: this.ns, denoArgs: options.denoArgs, env: options.env });
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
    const [first, len] = env.FLANNEL_SUBNET.split("/");
    const base = first.split(".").map(Number);
    const n = this.pods.length + 1;
    const ip = `${base[0]}.${base[1]}.${base[2]}.${base[3] + n}`;
    const ns = `${this.ns}p${n}`;
    if (this.pods.length === 0) {
      await this.run(["ip", "link", "add", "cni0", "type", "bridge"]);
      await this.run(["ip", "addr", "add", `${first}/${len}`, "dev", "cni0"]);
      await this.run(["ip", "link", "set", "cni0", "mtu", env.FLANNEL_MTU, "up"]);
    }
    this.bed.namespaces.push(ns);
    await sh(["ip", "netns", "add", ns]);
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
    await inPod(["ip", "addr", "add", `${ip}/${len}`, "dev", "eth0"]);
    await inPod(["ip", "link", "set", "eth0", "mtu", env.FLANNEL_MTU, "up"]);
    await inPod(["ip", "route", "add", "default", "via", first]);
    const pod = { ns, ip };
    this.pods.push(pod);
    return pod;
  }

  /** IPv4 routes of the host, one per line as `ip route show` prints them. */
  async routes(): Promise<string[]> {
    return (await this.run(["ip", "route", "show"])).stdout.trim().split("\n");
  }
}

/** `ping -c N -W 1` from a pod namespace; true when every reply came back. */
export async function ping(from: Pod, to: string, count = 1): Promise<boolean> {
  const r = await sh(["ping", "-n", "-q", "-c", String(count), "-i", "0.2", "-W", "1", to], {
    netns: from.ns,
    check: false,
  });
  return r.ok;
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

  static async create(opts: TestBedOptions): Promise<TestBed> {
    const k = await freeBedNumber();
    const bed = new TestBed(`ft${k}`, k, opts.prefix ?? "/coreos.com/network");
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
    const ul = this.underlayNs;
    this.namespaces.push(ul);
    await sh(["ip", "netns", "add", ul]);
    const inUl = (cmd: string[]) => sh(cmd, { netns: ul });
    await inUl(["ip", "link", "set", "lo", "up"]);
    await inUl(["ip", "link", "add", "br0", "type", "bridge"]);
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
    await run(["ip", "link", "set", "eth0", "up"]);
    await run(["ip", "route", "add", "default", "via", this.underlayIP(254)]);
    await run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const host = new Host(this, `host${i}`, ns, this.underlayIP(i), `${this.#dir}/host${i}.env`);
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

/** A test-bed number no other live test bed uses (its namespaces and root veth are absent). */
async function freeBedNumber(): Promise<number> {
  const netns = (await sh(["ip", "netns", "list"], { check: false })).stdout;
  const links = (await sh(["ip", "-o", "link", "show"], { check: false })).stdout;
  for (let tries = 0; tries < 1000; tries++) {
    const k = 20 + Math.floor(Math.random() * 200);
    if (!netns.includes(`ft${k}`) && !links.includes(`ft${k}r`)) return k;
  }
  throw new Error("no free test-bed number: remove stale ft* namespaces (ip netns list)");
}
