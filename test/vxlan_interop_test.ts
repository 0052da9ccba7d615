/**
 * Interop (root only): a host configured by hand exactly as flanneld configures a vxlan node
 * (device, `/32` address, neighbour/FDB/route entries with `ip` and `bridge`, and its lease written
 * to etcd in flannel's byte format, with a TTL) and two hosts running the agent reach each other's
 * pods in both directions.
 */
import assert from "node:assert/strict";
import { eventually, ping, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const PREFIX = "/coreos.com/network";
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
const HAND_SUBNET = "10.244.200.0/24";
const HAND_MAC = "c6:d2:32:6f:8f:44";

Deno.test({
  name: "vxlan interop: a hand-configured flannel node and agent hosts reach each other",
  ignore: skipUnlessRoot("vxlan interop"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 3, config: CONFIG, prefix: PREFIX });
    const [a1, a2, flannel] = bed.hosts;
    const etcdctl = (...args: string[]) =>
      sh(["etcdctl", `--endpoints=${bed.etcdEndpoint}`, ...args]);

    // The flannel node: its lease first (as flanneld acquires it before programming peers).
    const grant = (await etcdctl("lease", "grant", "600")).stdout;
    const leaseId = /lease ([0-9a-f]+) granted/.exec(grant)![1];
    const value = `{"PublicIP":"${flannel.ip}","PublicIPv6":null,"BackendType":"vxlan",` +
      `"BackendData":{"VNI":1,"VtepMAC":"${HAND_MAC}"}}`;
    await etcdctl("put", `--lease=${leaseId}`, `${PREFIX}/subnets/10.244.200.0-24`, value);
    const f = (...cmd: string[]) => flannel.run(cmd);
    await f(
      "ip",
      "link",
      "add",
      "flannel.1",
      "address",
      HAND_MAC,
      "mtu",
      "1450",
      "type",
      "vxlan",
      "id",
      "1",
      "dev",
      "eth0",
      "local",
      flannel.ip,
      "nolearning",
    );
    await f("ip", "addr", "add", "10.244.200.0/32", "dev", "flannel.1");
    await f("ip", "link", "set", "flannel.1", "up");
    await Deno.writeTextFile(
      flannel.subnetFile,
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.200.1/24\nFLANNEL_MTU=1450\n" +
        "FLANNEL_IPMASQ=false\n",
    );

    for (const h of [a1, a2]) h.startAgent();
    await Promise.all([a1, a2].map((h) => h.agent!.waitFor(/Wrote subnet file/, 30_000)));
    const agents = await Promise.all([a1, a2].map(async (h) => {
      const env = await h.subnetEnv();
      const subnet = env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");
      const dev = (await h.run(["ip", "link", "show", "flannel.1"])).stdout;
      return { h, subnet, net: subnet.split("/")[0], mac: /link\/ether (\S+)/.exec(dev)![1] };
    }));

    // The flannel node programs the agents as flanneld would.
    for (const a of agents) {
      await f(
        "ip",
        "neigh",
        "replace",
        a.net,
        "lladdr",
        a.mac,
        "dev",
        "flannel.1",
        "nud",
        "permanent",
      );
      await f(
        "bridge",
        "fdb",
        "replace",
        a.mac,
        "dev",
        "flannel.1",
        "dst",
        a.h.ip,
        "self",
        "permanent",
      );
      await f("ip", "route", "replace", a.subnet, "via", a.net, "dev", "flannel.1", "onlink");
    }

    await t.step("the agents program the flannel node from its lease", async () => {
      for (const a of agents) {
        await eventually(
          async () =>
            (await a.h.routes()).some((r) =>
              r.startsWith(`${HAND_SUBNET} via 10.244.200.0 dev flannel.1 proto 101 onlink`)
            ),
          5000,
          `${a.h.name}: route to the flannel node`,
        );
        const neigh = (await a.h.run(["ip", "neigh", "show", "dev", "flannel.1"])).stdout;
        assert.match(neigh, new RegExp(`^10\\.244\\.200\\.0 lladdr ${HAND_MAC} PERMANENT`, "m"));
        const fdb = (await a.h.run(["bridge", "fdb", "show", "dev", "flannel.1"])).stdout;
        assert.match(fdb, new RegExp(`^${HAND_MAC} dst ${flannel.ip} self permanent`, "m"));
      }
    });

    for (const h of [a1, a2, flannel]) await h.addPod();
    await t.step("pods reach each other in both directions", async () => {
      for (const a of [a1, a2]) {
        assert.ok(await ping(a.pods[0], flannel.pods[0].ip, 2), `${a.name} pod → flannel pod`);
        assert.ok(await ping(flannel.pods[0], a.pods[0].ip, 2), `flannel pod → ${a.name} pod`);
      }
      assert.ok(await ping(a1.pods[0], a2.pods[0].ip, 2), "agent pod → agent pod");
    });

    await t.step("the agents' leases are in flannel's byte format", async () => {
      for (const a of agents) {
        const key = `${PREFIX}/subnets/${a.subnet.replace("/", "-")}`;
        const stored = (await etcdctl("get", "--print-value-only", key)).stdout.trim();
        assert.equal(
          stored,
          `{"PublicIP":"${a.h.ip}","PublicIPv6":null,"BackendType":"vxlan",` +
            `"BackendData":{"VNI":1,"VtepMAC":"${a.mac}"}}`,
        );
      }
    });

    await t.step("the flannel node leaving removes its entries from the agents", async () => {
      await etcdctl("lease", "revoke", leaseId);
      for (const a of agents) {
        await eventually(
          async () => {
            const routes = await a.h.routes();
            const fdb = (await a.h.run(["bridge", "fdb", "show", "dev", "flannel.1"])).stdout;
            const neigh = (await a.h.run(["ip", "neigh", "show", "dev", "flannel.1"])).stdout;
            return !routes.some((r) => r.startsWith(HAND_SUBNET)) && !fdb.includes(HAND_MAC) &&
              !neigh.includes(HAND_MAC);
          },
          5000,
          `${a.h.name}: flannel node's entries removed`,
        );
      }
    });
  },
});
