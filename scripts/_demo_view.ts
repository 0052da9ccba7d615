/**
 * What `deno task demo` shows of one host, as aligned text: its subnet.env and the kernel state
 * its backend keeps (routes; or the VXLAN device, neighbours and FDB; or the TUN `flannel0`), in
 * dual stack for both families (IPv6 routes; `flannel-v6.1` and its entries).
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

/** IPv6 routes without the defaults `ip -6` spells out (metric 1024, pref medium). */
function short6(route: string): string {
  return route.replace(/ metric 1024| pref medium/g, "");
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
export async function hostView(
  host: Host,
  backend: DemoBackend,
  dualStack = false,
): Promise<string[]> {
  const env = (await Deno.readTextFile(host.subnetFile)).trim().split("\n");
  const eth0 = dualStack ? `${host.ip}, ${host.ip6}` : host.ip;
  const out = [`${host.name} · eth0 ${eth0}`, ...block("subnet.env", env)];
  if (backend === "host-gw") {
    const families = dualStack ? ["-4", "-6"] : ["-4"];
    const routes = (await Promise.all(
      families.map((f) => lines(host, ["ip", f, "route", "show", "proto", "101"])),
    )).flat().map(short6);
    out.push(...block("routes", routes.map((r) => `${r} proto 101`)));
  } else if (backend === "vxlan") {
    const devices: Array<[string, string]> = [["flannel.1", "-4"]];
    if (dualStack) devices.push(["flannel-v6.1", "-6"]);
    for (const [dev, f] of devices) {
      // Only the backend's own (permanent) neighbours: IPv6 keeps discovered ones too.
      const neigh = (await lines(host, ["ip", f, "neigh", "show", "dev", dev]))
        .filter((l) => f === "-4" || l.endsWith("PERMANENT"));
      out.push(...block("device", await device(host, dev)));
      out.push(...block("neighbours", neigh));
      out.push(...block("fdb", await lines(host, ["bridge", "fdb", "show", "dev", dev])));
      // IPv6 also lists the kernel's own routes on the device (its /128, fe80::/64).
      const routes = (await lines(host, ["ip", f, "route", "show", "dev", dev]))
        .filter((l) => f === "-4" || l.includes(" proto 101 ")).map(short6);
      out.push(...block("routes", routes));
    }
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
  dualStack = false,
): Promise<boolean> {
  if (backend === "udp") {
    return (await lines(host, ["ip", "route", "show", "dev", "flannel0"])).length > 0;
  }
  const families: Array<[string, string]> = [["-4", "flannel.1"]];
  if (dualStack) families.push(["-6", "flannel-v6.1"]);
  for (const [f, dev] of families) {
    const cmd = backend === "host-gw"
      ? ["ip", f, "route", "show", "proto", "101"]
      : ["ip", f, "route", "show", "dev", dev];
    if ((await lines(host, cmd)).length < peers) return false;
  }
  return true;
}
