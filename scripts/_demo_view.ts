/**
 * What `deno task demo` shows of one host, as aligned text: its subnet.env and the kernel state
 * its backend keeps (routes; or the VXLAN device, neighbours and FDB; or the TUN `flannel0`).
 */
import type { Host } from "../test/testbed.ts";

export type DemoBackend = "host-gw" | "vxlan" | "udp";

/** `label` in a column of `width`, then the first line; further lines under the first. */
export function block(label: string, lines: string[], width = 13): string[] {
  if (lines.length === 0) lines = ["(none)"];
  return lines.map((l, i) => `  ${(i === 0 ? label : "").padEnd(width)}${l}`);
}

/** Rows as columns padded to the widest cell, two spaces apart. */
export function table(rows: string[][], indent = ""): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => indent + r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
}

async function lines(host: Host, cmd: string[]): Promise<string[]> {
  const out = (await host.run(cmd, false)).stdout.trim();
  return out === "" ? [] : out.split("\n").map((l) => l.trim().replace(/\s+/g, " "));
}

/** `ip -d link show DEV` condensed: kind and its options, MTU, MAC. */
async function device(host: Host, dev: string): Promise<string[]> {
  const text = (await lines(host, ["ip", "-d", "link", "show", dev])).join(" ");
  if (text === "") return [`${dev} missing`];
  const mtu = /\bmtu (\d+)/.exec(text)?.[1];
  const mac = /link\/ether (\S+)/.exec(text)?.[1];
  const vxlan = /\bvxlan id (\d+) local (\S+) dev (\S+).*?dstport (\d+)(.*?nolearning)?/.exec(text);
  if (vxlan) {
    const [, id, local, via, port, nolearning] = vxlan;
    return [
      `${dev}  vxlan id ${id}, local ${local} dev ${via}, port ${port}${
        nolearning ? ", nolearning" : ""
      }`,
      `mtu ${mtu}, mac ${mac}`,
    ];
  }
  const kind = /\b(tun|tap)\b/.test(text) ? "tun" : "device";
  return [`${dev}  ${kind}, mtu ${mtu}`];
}

/** The host's subnet.env and its backend's kernel state, as labelled blocks. */
export async function hostView(host: Host, backend: DemoBackend): Promise<string[]> {
  const env = (await Deno.readTextFile(host.subnetFile)).trim().split("\n");
  const out = [`${host.name} · eth0 ${host.ip}`, ...block("subnet.env", env)];
  if (backend === "host-gw") {
    const routes = await lines(host, ["ip", "route", "show", "proto", "101"]);
    out.push(...block("routes", routes.map((r) => `${r} proto 101`)));
  } else if (backend === "vxlan") {
    const dev = "flannel.1";
    out.push(...block("device", await device(host, dev)));
    out.push(...block("neighbours", await lines(host, ["ip", "neigh", "show", "dev", dev])));
    out.push(...block("fdb", await lines(host, ["bridge", "fdb", "show", "dev", dev])));
    out.push(...block("routes", await lines(host, ["ip", "route", "show", "dev", dev])));
  } else {
    const dev = "flannel0";
    out.push(...block("device", await device(host, dev)));
    out.push(...block(
      "address",
      await lines(host, ["ip", "-o", "-4", "addr", "show", dev])
        .then((ls) => ls.map((l) => /inet (\S+)/.exec(l)?.[1] ?? l)),
    ));
    out.push(...block("routes", await lines(host, ["ip", "route", "show", "dev", dev])));
    const socket = await lines(host, ["ss", "-Hnul", "sport", "=", ":8285"]);
    out.push(...block("udp socket", socket.map((l) => l.split(" ")[3] ?? l)));
  }
  return out;
}

/** Whether every peer's subnet has reached this host's kernel state (the backend caught up). */
export async function knowsPeers(
  host: Host,
  backend: DemoBackend,
  peers: number,
): Promise<boolean> {
  if (backend === "udp") {
    return (await lines(host, ["ip", "route", "show", "dev", "flannel0"])).length > 0;
  }
  const cmd = backend === "host-gw"
    ? ["ip", "route", "show", "proto", "101"]
    : ["ip", "route", "show", "dev", "flannel.1"];
  return (await lines(host, cmd)).length >= peers;
}
