/** Small helpers shared by the benchmarks. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** Resident set size of a process in MiB, from /proc/<pid>/status. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Prints one benchmark figure as a ratio against its same-run reference, with the target. */
export function report(name: string, value: string, ratio: string, target: string): void {
  console.log(`${name.padEnd(46)} ${value.padEnd(34)} ${ratio.padEnd(14)} target ${target}`);
}

/**
 * iperf3 TCP from namespace `ns` to `to` for `seconds` (after a 1 s warm-up), optionally bound to
 * `bind`, `-6` for an IPv6 target; the receiver's Gbit/s.
 */
export async function iperfGbps(
  ns: string,
  to: string,
  seconds: number,
  bind?: string,
): Promise<number> {
  const args = ["netns", "exec", ns, "iperf3", ...(to.includes(":") ? ["-6"] : [])];
  args.push("-c", to, "-t", String(seconds), "-O", "1", "-J");
  if (bind) args.push("-B", bind);
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`iperf3 to ${to} failed: ${text.slice(0, 400)}`);
  return JSON.parse(text).end.sum_received.bits_per_second / 1e9;
}

export interface PathPair {
  /** Namespaces of the iperf3 client and server pods. */
  readonly clientNs: string;
  readonly serverNs: string;
  /** The server pod's address over the agent's path. */
  readonly agentTo: string;
  /** The server's and the client's addresses over the hand-made reference path. */
  readonly handTo: string;
  readonly handFrom: string;
  readonly rounds: number;
  readonly seconds: number;
}

/**
 * iperf3 over the agent's path and over a hand-made reference path between the same two pods,
 * in `rounds` rounds that alternate which path goes first (so a trend in the machine's load
 * favours neither); Gbit/s per round for each.
 */
export async function interleavedIperf(p: PathPair): Promise<{ agent: number[]; hand: number[] }> {
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", p.serverNs, "iperf3", "-s"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 300));
    const agent: number[] = [], hand: number[] = [];
    for (let r = 0; r < p.rounds; r++) {
      const runAgent = async () => agent.push(await iperfGbps(p.clientNs, p.agentTo, p.seconds));
      const runHand = async () =>
        hand.push(await iperfGbps(p.clientNs, p.handTo, p.seconds, p.handFrom));
      for (const f of r % 2 === 0 ? [runAgent, runHand] : [runHand, runAgent]) await f();
    }
    return { agent, hand };
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
}

/** Lines of a child process's stdout, each stamped with the time it arrived. */
export function stampedLines(child: Deno.ChildProcess, onLine: (line: string, t: number) => void) {
  return (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const t = performance.now();
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const p of parts) onLine(p, t);
    }
  })();
}
