/**
 * Dual-stack interop (root only): a fourth host configured by hand exactly as flanneld configures
 * a dual-stack vxlan node, and three hosts running the agent, reach each other's pods in both
 * families and both directions.
 *
 * The hand node follows flannel's pkg/backend/vxlan (vxlan.go, device.go, vxlan_network.go):
 * `flannel.1` and `flannel-v6.1` (VNI 1, `dev eth0`, `local` its PublicIP / PublicIPv6,
 * nolearning, MTU underlay − 50 asked for both — flannel does not subtract the larger IPv6
 * header; the kernel caps the IPv6 device at 1430 itself),
 * `accept_ra` 0 on both, `<subnet>/32` and `<IPv6 subnet>/128`; per peer a permanent neighbour,
 * FDB entry and onlink route in each family; its lease under `<v4>-24&<v6>-64` with the value
 * `lease.LeaseAttrs` marshals to (PublicIP, PublicIPv6, BackendType, BackendData, BackendV6Data).
 */
import assert from "node:assert/strict";
import { eventually, type Host, ping, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const PREFIX = "/coreos.com/network";
const CONFIG = JSON.stringify({
  Network: "10.244.0.0/16",
  EnableIPv6: true,
  IPv6Network: "fd00:244::/56",
  IPv6SubnetLen: 64,
  Backend: { Type: "vxlan" },
});
const HAND = {
  subnet: "10.244.200.0/24",
  net: "10.244.200.0",
  subnet6: "fd00:244:0:c8::/64",
  net6: "fd00:244:0:c8::",
  key: "10.244.200.0-24&fd00:244:0:c8::-64",
  // Locally administered, unicast, as flannel's pkg/mac draws them.
  mac: "c6:d2:32:6f:8f:44",
  mac6: "9a:2b:4c:6d:8e:0f",
};

async function lines(h: Host, cmd: string[]): Promise<string[]> {
  return (await h.run(cmd)).stdout.trim().split("\n").map((l) => l.trim()).filter((l) => l);
}

async function macOf(h: Host, dev: string): Promise<string> {
  const out = (await h.run(["ip", "link", "show", dev])).stdout;
  return /link\/ether ([0-9a-f:]{17})/.exec(out)![1];
}

/** What one node advertises: its subnets, network addresses, VTEP MACs and public addresses. */
interface Node {
  h: Host;
  subnet: string;
  net: string;
  subnet6: string;
  net6: string;
  mac: string;
  mac6: string;
}

/** The flannel node's devices, as `newVXLANDevice` creates them and `Configure` addresses them. */
async function configureFlannelDevices(f: Host): Promise<void> {
  for (
    const [dev, mac, local] of [
      ["flannel.1", HAND.mac, f.ip],
      ["flannel-v6.1", HAND.mac6, f.ip6],
    ]
  ) {
    await f.run([
      ..."ip link add".split(" "),
      dev,
      "address",
      mac,
      ..."mtu 1450 type vxlan id 1 dev eth0 local".split(" "),
      local,
      "nolearning",
    ]);
    await f.run(["sh", "-c", `echo 0 > /proc/sys/net/ipv6/conf/${dev}/accept_ra`]);
  }
}

async function addressFlannelDevices(f: Host): Promise<void> {
  await f.run(["ip", "addr", "add", `${HAND.net}/32`, "dev", "flannel.1"]);
  await f.run(["ip", "link", "set", "flannel.1", "up"]);
  await f.run(["ip", "-6", "addr", "add", `${HAND.net6}/128`, "dev", "flannel-v6.1"]);
  await f.run(["ip", "link", "set", "flannel-v6.1", "up"]);
}

/** The flannel node programs one peer, IPv4 then IPv6, in flannel's order (neighbour, FDB, route). */
async function flannelAddsPeer(f: Host, p: Node): Promise<void> {
  for (
    const [fam, dev, net, subnet, mac, dst] of [
      ["-4", "flannel.1", p.net, p.subnet, p.mac, p.h.ip],
      ["-6", "flannel-v6.1", p.net6, p.subnet6, p.mac6, p.h.ip6],
    ]
  ) {
    await f.run([
      "ip",
      fam,
      "neigh",
      "replace",
      net,
      "lladdr",
      mac,
      "dev",
      dev,
      "nud",
      "permanent",
    ]);
    await f.run(["bridge", "fdb", "replace", mac, "dev", dev, "dst", dst, "self", "permanent"]);
    await f.run(["ip", fam, "route", "replace", subnet, "via", net, "dev", dev, "onlink"]);
  }
}

/** The entries `h` must hold for `peers` on both devices, as `ip`/`bridge` print them. */
function wantEntries(peers: Node[]) {
  const sorted = (xs: string[]) => xs.sort();
  return {
    neigh4: sorted(peers.map((p) => `${p.net} lladdr ${p.mac} PERMANENT`)),
    fdb4: sorted(peers.map((p) => `${p.mac} dst ${p.h.ip} self permanent`)),
    routes4: sorted(peers.map((p) => `${p.subnet} via ${p.net} onlink`)),
    neigh6: sorted(peers.map((p) => `${p.net6} lladdr ${p.mac6} PERMANENT`)),
    fdb6: sorted(peers.map((p) => `${p.mac6} dst ${p.h.ip6} self permanent`)),
    routes6: sorted(peers.map((p) => `${p.subnet6} via ${p.net6} metric 1024 onlink pref medium`)),
  };
}

async function haveEntries(h: Host) {
  const of = async (fam: string, dev: string) => {
    const neigh = (await lines(h, ["ip", fam, "neigh", "show", "dev", dev]))
      .filter((l) => l.includes("PERMANENT"));
    const fdb = (await lines(h, ["bridge", "fdb", "show", "dev", dev]))
      .filter((l) => !l.startsWith("00:00:00:00:00:00")).map((l) => l.replace(/ via \S+/, ""));
    const routes = await lines(h, ["ip", fam, "route", "show", "proto", "101", "dev", dev]);
    return { neigh: neigh.sort(), fdb: fdb.sort(), routes: routes.sort() };
  };
  const v4 = await of("-4", "flannel.1");
  const v6 = await of("-6", "flannel-v6.1");
  return {
    neigh4: v4.neigh,
    fdb4: v4.fdb,
    routes4: v4.routes,
    neigh6: v6.neigh,
    fdb6: v6.fdb,
    routes6: v6.routes,
  };
}

Deno.test({
  name: "vxlan dual-stack interop: a hand-configured flannel node and agent hosts reach each other",
  ignore: skipUnlessRoot("dual-stack vxlan interop"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using bed = await TestBed.create({ hosts: 4, config: CONFIG, prefix: PREFIX });
    const agentHosts = bed.hosts.slice(0, 3);
    const f = bed.hosts[3];
    const etcdctl = (...args: string[]) =>
      sh(["etcdctl", `--endpoints=${bed.etcdEndpoint}`, ...args]);

    // The flannel node: devices, then its lease (flanneld creates the devices before acquiring,
    // so their MACs can go into the lease), then the addresses from the lease.
    await configureFlannelDevices(f);
    const grant = (await etcdctl("lease", "grant", "600")).stdout;
    const leaseId = /lease ([0-9a-f]+) granted/.exec(grant)![1];
    const value = `{"PublicIP":"${f.ip}","PublicIPv6":"${f.ip6}","BackendType":"vxlan",` +
      `"BackendData":{"VNI":1,"VtepMAC":"${HAND.mac}"},` +
      `"BackendV6Data":{"VNI":1,"VtepMAC":"${HAND.mac6}"}}`;
    await etcdctl("put", `--lease=${leaseId}`, `${PREFIX}/subnets/${HAND.key}`, value);
    await addressFlannelDevices(f);
    await Deno.writeTextFile(
      f.subnetFile,
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.200.1/24\n" +
        "FLANNEL_IPV6_NETWORK=fd00:244::/56\nFLANNEL_IPV6_SUBNET=fd00:244:0:c8::1/64\n" +
        "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
    );

    for (const h of agentHosts) h.startAgent();
    await Promise.all(agentHosts.map((h) => h.agent!.waitFor(/Wrote subnet file/, 30_000)));
    const agents: Node[] = await Promise.all(agentHosts.map(async (h) => {
      const env = await h.subnetEnv();
      const subnet = env.FLANNEL_SUBNET.replace(/\.1\/24$/, ".0/24");
      const subnet6 = env.FLANNEL_IPV6_SUBNET.replace(/::1\/64$/, "::/64");
      return {
        h,
        subnet,
        net: subnet.split("/")[0],
        subnet6,
        net6: subnet6.split("/")[0],
        mac: await macOf(h, "flannel.1"),
        mac6: await macOf(h, "flannel-v6.1"),
      };
    }));
    const hand: Node = { h: f, ...HAND };
    for (const a of agents) await flannelAddsPeer(f, a);

    await t.step("the flannel node's devices are as flanneld makes them", async () => {
      // flanneld asks for 1450 on both; the kernel caps a VXLAN device over an IPv6 underlay at
      // the lower device's MTU minus its 70-byte headroom, so flannel-v6.1 gets 1430 there too.
      const devices = [["flannel.1", f.ip, 1450], ["flannel-v6.1", f.ip6, 1430]] as const;
      for (const [dev, local, mtu] of devices) {
        const d = (await f.run(["ip", "-d", "link", "show", dev])).stdout;
        assert.match(d, new RegExp(`mtu ${mtu} `));
        assert.match(d, new RegExp(`vxlan id 1 local ${local} dev eth0 .*dstport 8472 nolearning`));
      }
    });

    await t.step(
      "each agent programs exactly the entries of its peers and the flannel node",
      async () => {
        for (const a of agents) {
          const want = wantEntries([...agents.filter((p) => p !== a), hand]);
          let have: unknown;
          await eventually(
            async () => {
              have = await haveEntries(a.h);
              return JSON.stringify(have) === JSON.stringify(want);
            },
            5000,
            `${a.h.name}: entries for both families`,
          ).catch((err) => {
            throw new Error(
              `${err.message}:\nwant ${JSON.stringify(want)}\nhave ${JSON.stringify(have)}`,
            );
          });
        }
      },
    );

    for (const h of bed.hosts) await h.addPod();
    const fpod = f.pods[0];
    await t.step("IPv4 pods reach each other in both directions", async () => {
      for (const a of agentHosts) {
        assert.ok(await ping(a.pods[0], fpod.ip, 2), `${a.name} pod → flannel pod`);
        assert.ok(await ping(fpod, a.pods[0].ip, 2), `flannel pod → ${a.name} pod`);
      }
    });

    await t.step("IPv6 pods reach each other in both directions", async () => {
      for (const a of agentHosts) {
        const apod = a.pods[0];
        for (
          const [from, to, what] of [
            [apod, fpod, `${a.name} pod → flannel pod`],
            [fpod, apod, `flannel pod → ${a.name} pod`],
          ] as const
        ) {
          // The first packet may wait out a lost neighbour solicitation on the test bed's
          // underlay: reachability first, then no loss.
          await eventually(() => ping(from, to.ip6!, 1), 5000, `${what} (IPv6) reachable`);
          assert.ok(await ping(from, to.ip6!, 2), `${what} (IPv6)`);
        }
      }
    });

    await t.step("the agents' leases are in flannel's key and byte format", async () => {
      for (const a of agents) {
        const key = `${PREFIX}/subnets/${a.subnet.replace("/", "-")}&` +
          a.subnet6.replace("/", "-");
        const stored = (await etcdctl("get", "--print-value-only", key)).stdout.trim();
        assert.equal(
          stored,
          `{"PublicIP":"${a.h.ip}","PublicIPv6":"${a.h.ip6}","BackendType":"vxlan",` +
            `"BackendData":{"VNI":1,"VtepMAC":"${a.mac}"},` +
            `"BackendV6Data":{"VNI":1,"VtepMAC":"${a.mac6}"}}`,
        );
      }
    });

    await t.step("the flannel node leaving removes its entries of both families", async () => {
      await etcdctl("lease", "revoke", leaseId);
      for (const a of agents) {
        const want = wantEntries(agents.filter((p) => p !== a));
        await eventually(
          async () => JSON.stringify(await haveEntries(a.h)) === JSON.stringify(want),
          5000,
          `${a.h.name}: the flannel node's entries removed, the agents' kept`,
        );
      }
    });
  },
});
