/**
 * Interop on the test bed (root only): host1 runs the agent with the udp backend; host2 is no
 * agent at all but a plain TUN-over-UDP tunnel carrying raw IPv4 packets (socat `TUN` +
 * `UDP-DATAGRAM`), announced by a lease written by hand. Pods on both sides reach each other,
 * which shows the wire format is exactly "the UDP payload is the IPv4 packet" on port 8285.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { eventually, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const CONFIG = '{"Network":"10.101.0.0/16","Backend":{"Type":"udp"}}';
const PEER_SUBNET = "10.101.200.0";

Deno.test({
  name: "udp: the agent exchanges traffic with a socat TUN/UDP tunnel",
  ignore: skipUnlessRoot("udp interop"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 2, config: CONFIG });
    const [h1, h2] = bed.hosts;
    const client = await EtcdClient.create({ endpoints: [bed.etcdEndpoint] });
    try {
      // flannel's udp lease value: PublicIP only.
      await client.put(
        `/coreos.com/network/subnets/${PEER_SUBNET}-24`,
        `{"PublicIP":"${h2.ip}","PublicIPv6":null}`,
      );
    } finally {
      client.close();
    }
    await Deno.writeTextFile(
      h2.subnetFile,
      `FLANNEL_NETWORK=10.101.0.0/16\nFLANNEL_SUBNET=10.101.200.1/24\nFLANNEL_MTU=1472\n` +
        `FLANNEL_IPMASQ=false\n`,
    );
    h1.startAgent();
    await h1.agent!.waitFor(/Wrote subnet file/, 30_000);
    await h1.agent!.waitFor(new RegExp(`Subnet added: ${PEER_SUBNET}/24 via ${h2.ip}:8285`), 5000);

    const socat = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        h2.ns,
        "socat",
        `TUN:${PEER_SUBNET}/16,tun-name=flannel0,tun-type=tun,iff-no-pi,iff-up`,
        `UDP-DATAGRAM:${h1.ip}:8285,bind=${h2.ip}:8285`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      await eventually(
        async () => (await h2.run(["ip", "link", "show", "flannel0"], false)).ok,
        5000,
        "socat's flannel0",
      );
      await h2.run(["ip", "link", "set", "flannel0", "mtu", "1472"]);
      const [p1, p2] = [await h1.addPod(), await h2.addPod()];

      await t.step(
        "pings cross in both directions, TTL decremented by the agent only",
        async () => {
          for (const [a, b, ttl] of [[p1, p2, 61], [p2, p1, 61]] as const) {
            let out = "";
            await eventually(
              async () => {
                const r = await sh(["ping", "-n", "-c", "1", "-W", "1", b.ip], {
                  netns: a.ns,
                  check: false,
                });
                out = r.stdout;
                return r.ok;
              },
              5000,
              `ping ${a.ip} → ${b.ip}`,
            );
            // 64 − sender's router − agent (one side only; socat keeps it) − receiver's router.
            assert.match(out, new RegExp(`ttl=${ttl}`), out);
          }
        },
      );

      await t.step("TCP carries 256 KiB intact each way", async () => {
        const dir = await Deno.makeTempDir({ prefix: "udp-interop-" });
        try {
          const payload = crypto.getRandomValues(new Uint8Array(65536));
          const data = new Uint8Array(256 * 1024);
          for (let i = 0; i < data.length; i += payload.length) data.set(payload, i);
          await Deno.writeFile(`${dir}/payload`, data);
          let port = 7300;
          for (const [a, b] of [[p1, p2], [p2, p1]]) {
            const dst = `${dir}/recv-${port}`;
            const server = new Deno.Command("ip", {
              args: [
                "netns",
                "exec",
                b.ns,
                "socat",
                "-u",
                `TCP-LISTEN:${port},reuseaddr`,
                `CREATE:${dst}`,
              ],
              stdout: "null",
              stderr: "null",
            }).spawn();
            await sh([
              "socat",
              "-u",
              `OPEN:${dir}/payload`,
              `TCP:${b.ip}:${port},retry=50,interval=0.1`,
            ], {
              netns: a.ns,
            });
            assert.ok((await server.status).success);
            assert.deepEqual(await Deno.readFile(dst), data, `${a.ip} → ${b.ip}`);
            port++;
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });
    } finally {
      try {
        socat.kill("SIGTERM");
      } catch { /* exited */ }
      await socat.status;
      await socat.stderr.cancel().catch(() => {});
    }
  },
});
