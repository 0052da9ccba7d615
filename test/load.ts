/**
 * Traffic and churn for the long runs on the test bed (the sustained-load tests and
 * `deno task soak`): an iperf3 stream between two pods, and fake peer leases.
 */
import { type Pod, sh } from "./testbed.ts";

export interface IperfOptions {
  readonly seconds: number;
  /** Over IPv6 (the pods' `ip6`); default IPv4. */
  readonly family?: 4 | 6;
  /** iperf3 `-b` (default: unlimited). */
  readonly bitrate?: string;
  /** How much longer than `seconds` iperf3 may take before it is killed; default 30. */
  readonly slackSeconds?: number;
}

export interface IperfResult {
  /** iperf3 exited 0. */
  readonly ok: boolean;
  /** Bytes the receiver got in each second of the run. */
  readonly perSecond: number[];
  /** Bytes the receiver got in all. */
  readonly bytes: number;
  /** iperf3's own error text, if any. */
  readonly error?: string;
  /** What iperf3 printed, for failure messages. */
  readonly output: string;
}

/**
 * Runs a TCP stream from pod `from` to pod `to` for `seconds` with iperf3 (a one-off server in
 * `to`), retrying while the server does not listen yet; the receiver's figures.
 */
export async function iperf(from: Pod, to: Pod, options: IperfOptions): Promise<IperfResult> {
  const { seconds } = options;
  const target = options.family === 6 ? to.ip6 : to.ip;
  if (!target) throw new Error(`pod ${to.ns} has no IPv${options.family ?? 4} address`);
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", to.ns, "iperf3", "-s", "-1", "-J", "-B", target],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let attempt = 0;; attempt++) {
      const r = await sh([
        "timeout",
        String(seconds + (options.slackSeconds ?? 30)),
        "iperf3",
        "-c",
        target,
        "-t",
        String(seconds),
        "-i",
        "1",
        ...(options.bitrate ? ["-b", options.bitrate] : []),
        "-J",
        "--get-server-output",
        "--connect-timeout",
        "2000",
      ], { netns: from.ns, check: false });
      // The server may not listen yet: iperf3 then reports "unable to connect" (in its JSON).
      if (/unable to connect/i.test(r.stdout + r.stderr) && attempt < 50) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      let report;
      try {
        report = JSON.parse(r.stdout || "{}");
      } catch {
        report = { error: "iperf3 printed no JSON report" };
      }
      const intervals: { sum: { bytes: number } }[] = report.server_output_json?.intervals ?? [];
      return {
        ok: r.ok,
        perSecond: intervals.map((i) => i.sum.bytes),
        bytes: report.end?.sum_received?.bytes ?? 0,
        error: report.error,
        output: `${r.stdout.slice(-2000)} ${r.stderr.slice(0, 500)}`,
      };
    }
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
  }
}

/**
 * A fake peer's lease value: a real node's lease value `template` with another `PublicIP` (and
 * `PublicIPv6`, when given) and, for vxlan, the VTEP MAC `02:00:00:00:hh:ll` of number `n`
 * (unique per fake peer) in its `BackendData` and `BackendV6Data`.
 */
export function fakePeerLease(
  template: string,
  publicIP: string,
  n: number,
  publicIPv6?: string,
): string {
  const hex = (b: number) => b.toString(16).padStart(2, "0");
  const mac = `02:00:00:00:${hex(n >> 8 & 255)}:${hex(n & 255)}`;
  const value = template.replace(/"PublicIP":"[^"]*"/, `"PublicIP":"${publicIP}"`)
    .replaceAll(/"VtepMAC":"[^"]*"/g, `"VtepMAC":"${mac}"`);
  return publicIPv6 === undefined
    ? value
    : value.replace(/"PublicIPv6":"[^"]*"/, `"PublicIPv6":"${publicIPv6}"`);
}
