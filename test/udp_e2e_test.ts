/**
 * End to end on the multi-host test bed (root only): three hosts running the agent with the udp
 * backend carry pod-to-pod ping and TCP between every pair through `flannel0`; a datagram from a
 * stranger is dropped and logged; a removed lease stops traffic to that peer.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { internetChecksum } from "../backends/udp/packet.ts";
import { eventually, type Pod, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const CONFIG = '{"Network":"10.101.0.0/16","Backend":{"Type":"udp"}}';

function subnetOf(env: Record<string, string>): string {
  return env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");
}

/** `ping` from a pod; the whole output, and whether every reply came back. */
async function pingOut(from: Pod, to: string, count = 2) {
  const r = await sh(["ping", "-n", "-c", String(count), "-i", "0.2", "-W", "1", to], {
    netns: from.ns,
    check: false,
  });
  return { ok: r.ok, text: r.stdout + r.stderr };
}

/** Sends `bytes` from pod `a` to pod `b` over TCP (socat) and checks they arrive unchanged. */
async function tcpTransfer(a: Pod, b: Pod, dir: string, bytes: Uint8Array, port: number) {
  const src = `${dir}/payload`;
  const dst = `${dir}/recv-${port}`;
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", b.ns, "socat", "-u", `TCP-LISTEN:${port},reuseaddr`, `CREATE:${dst}`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await sh([
      "socat",
      "-u",
      `OPEN:${src}`,
      `TCP:${b.ip}:${port},retry=50,interval=0.1`,
    ], { netns: a.ns });
    const status = await server.status;
    assert.ok(status.success, `socat server in ${b.ns} failed`);
    const got = await Deno.readFile(dst);
    assert.equal(got.length, bytes.length, `${a.ip} → ${b.ip}: byte count`);
    assert.deepEqual(got, bytes, `${a.ip} → ${b.ip}: content`);
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.stderr.cancel().catch(() => {});
  }
}

/** An ICMP echo request `src` → `dst` as raw IPv4 bytes. */
function echoRequest(src: string, dst: string): Uint8Array {
  const b = new Uint8Array(28);
  b.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0]);
  b.set(src.split(".").map(Number), 12);
  b.set(dst.split(".").map(Number), 16);
  const c = internetChecksum(b, 0, 20);
  b[10] = c >> 8;
  b[11] = c & 255;
  b[20] = 8;
  const ic = internetChecksum(b, 20, 8);
  b[22] = ic >> 8;
  b[23] = ic & 255;
  return b;
}

Deno.test({
  name: "udp: three hosts carry pod traffic through flannel0",
  ignore: skipUnlessRoot("udp end-to-end"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 3, config: CONFIG });
    await bed.startAgents();
    const envs = await Promise.all(bed.hosts.map((h) => h.subnetEnv()));
    const subnets = envs.map(subnetOf);
    const dir = await Deno.makeTempDir({ prefix: "udp-e2e-" });
    try {
      await t.step("subnet.env has MTU = eth0 MTU - 28 and flannel0 is set up", async () => {
        for (const [i, h] of bed.hosts.entries()) {
          assert.equal(envs[i].FLANNEL_MTU, "1472");
          const link = (await h.run(["ip", "-o", "addr", "show", "dev", "flannel0"])).stdout;
          assert.match(link, new RegExp(`inet ${subnets[i].replace("/24", "/32")} `));
          const mtu = (await h.run(["ip", "-o", "link", "show", "dev", "flannel0"])).stdout;
          assert.match(mtu, /mtu 1472 /);
          assert.ok(
            (await h.routes()).some((r) => r.startsWith("10.101.0.0/16 dev flannel0 proto 101")),
          );
        }
      });

      for (const h of bed.hosts) await h.addPod();
      await t.step("pod-to-pod ping works in both directions between every pair", async () => {
        for (const a of bed.hosts) {
          for (const b of bed.hosts) {
            if (a === b) continue;
            let r = { ok: false, text: "" };
            // The first packets may race the peer table of a freshly started agent.
            await eventually(
              async () => (r = await pingOut(a.pods[0], b.pods[0].ip, 1)).ok,
              5000,
              `${a.name} pod → ${b.name} pod\n${r.text}`,
            );
            r = await pingOut(a.pods[0], b.pods[0].ip, 3);
            assert.ok(r.ok, `${a.name} pod → ${b.name} pod:\n${r.text}`);
            // TTL 64, decremented by the sender's router, both agents and the receiver's router.
            assert.match(r.text, /ttl=60/);
          }
        }
      });

      await t.step("a TCP transfer arrives intact between every pair", async () => {
        const bytes = crypto.getRandomValues(new Uint8Array(65536));
        const payload = new Uint8Array(512 * 1024);
        for (let i = 0; i < payload.length; i += bytes.length) payload.set(bytes, i);
        await Deno.writeFile(`${dir}/payload`, payload);
        let port = 7100;
        for (const a of bed.hosts) {
          for (const b of bed.hosts) {
            if (a !== b) await tcpTransfer(a.pods[0], b.pods[0], dir, payload, port++);
          }
        }
      });

      await t.step("a datagram from a stranger is dropped and counted", async () => {
        const h1 = bed.hosts[0];
        // From the root namespace (the underlay's .254, no lease), aimed at host1's pod.
        const sock = dgram.createSocket("udp4");
        const packet = echoRequest(subnets[1].replace(".0/24", ".2"), h1.pods[0].ip);
        await new Promise<void>((resolve, reject) =>
          sock.send(packet, 8285, h1.ip, (err) => (err ? reject(err) : resolve()))
        );
        sock.close();
        await h1.agent!.waitFor(
          new RegExp(
            `dropped 1 datagrams from addresses that are no peer's public IP .*last ${
              bed.underlayIP(254).replaceAll(".", "\\.")
            }`,
          ),
          5000,
        );
      });

      await t.step("a removed lease stops traffic to that peer", async () => {
        const [h1, h2] = bed.hosts;
        const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
        try {
          await client.delete(`/coreos.com/network/subnets/${subnets[1].replace("/", "-")}`);
        } finally {
          client.close();
        }
        await h1.agent!.waitFor(
          new RegExp(`Subnet removed: ${subnets[1].replaceAll(".", "\\.")}`),
          5000,
        );
        const r = await pingOut(h1.pods[0], h2.pods[0].ip, 1);
        assert.ok(!r.ok, "ping to the removed peer must fail");
        // TCP learns it at once: flannel's ICMP net unreachable (never sent about ICMP itself).
        const c = await sh([
          "socat",
          "-u",
          "-T",
          "3",
          "STDIN",
          `TCP:${h2.pods[0].ip}:7999,connect-timeout=3`,
        ], {
          netns: h1.pods[0].ns,
          check: false,
        });
        assert.ok(!c.ok, "TCP connect to the removed peer must fail");
        assert.match(c.stderr, /Network is unreachable/);
        await h1.agent!.waitFor(/dropped \d+ packets to subnets no peer leases/, 3000);
        const third = await pingOut(h1.pods[0], bed.hosts[2].pods[0].ip, 1);
        assert.ok(third.ok, `the other peer still answers:\n${third.text}`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
