/**
 * Root-only: the traffic managers against the real iptables / nft inside a throwaway network
 * namespace. Compares `iptables -S` and `nft list` with flannel pkg/trafficmngr's goldens, deletes rules by
 * hand and watches the resync restore them, and switches modes both ways.
 */
import assert from "node:assert/strict";
import { createTrafficManager, netnsRunner, type TrafficMode } from "../kernel/firewall/mod.ts";
import { silentLogger } from "../util/log.ts";
import { sh, skipUnlessRoot } from "./testbed.ts";
import {
  fillGolden,
  flannelChains,
  GOLDEN_FWD,
  GOLDEN_NAT,
  GOLDEN_NFT_FORWARD,
  GOLDEN_NFT_POSTRTG,
} from "./firewall_goldens.ts";

const N = "10.42.0.0/16";
const P = "10.42.1.0/24";
const N6 = "fd42::/56";
const P6 = "fd42:0:0:1::/64";

function fill(golden: string, v: 4 | 6): string {
  return fillGolden(golden, v === 4 ? { n: N, p: P } : { n: N6, p: P6 }, v);
}

/** A network namespace that is deleted on dispose. */
async function netns(): Promise<
  AsyncDisposable & { name: string; sh(cmd: string): Promise<string> }
> {
  const name = `fwt${Deno.pid}x${Math.floor(Math.random() * 1e6)}`;
  await sh(["ip", "netns", "add", name]);
  return {
    name,
    sh: async (cmd) => (await sh(["sh", "-c", cmd], { netns: name })).stdout,
    [Symbol.asyncDispose]: async () => {
      await sh(["ip", "netns", "del", name], { check: false });
    },
  };
}

function manager(ns: string, mode: TrafficMode, restored?: string[]) {
  return createTrafficManager({
    mode,
    log: silentLogger,
    run: netnsRunner(ns),
    onRestored: (k) => restored?.push(k),
  });
}

const MASQ = { network: N, subnet: P, ipv6Network: N6, ipv6Subnet: P6, fullyRandom: true };
const FWD = { network: N, ipv6Network: N6 };
const root = {
  ignore: skipUnlessRoot("firewall e2e"),
  sanitizeResources: false,
  sanitizeOps: false,
};

Deno.test({
  ...root,
  name:
    "iptables mode: golden -S output for both families; a deleted rule comes back in one resync",
  fn: async () => {
    await using ns = await netns();
    const restored: string[] = [];
    const tm = manager(ns.name, "iptables", restored);
    await tm.cleanupOther();
    await tm.setupMasq(MASQ);
    await tm.setupForward(FWD);
    for (const [v, tool] of [[4, "iptables"], [6, "ip6tables"]] as const) {
      assert.equal(await flannelChains(ns, tool, "nat"), fill(GOLDEN_NAT, v));
      assert.equal(await flannelChains(ns, tool, "filter"), fill(GOLDEN_FWD, v));
    }
    assert.equal(await tm.resync(), 0);

    // Deleted by hand: a masquerade rule, the forward jump, the IPv6 chain's rules.
    await ns.sh("iptables -t nat -D FLANNEL-POSTRTG 3");
    await ns.sh(`iptables -D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`);
    await ns.sh("ip6tables -t nat -F FLANNEL-POSTRTG");
    const ac = new AbortController();
    const started = performance.now();
    await tm.run({ signal: ac.signal, resyncSeconds: 0.2, onTick: () => ac.abort() });
    assert.ok(performance.now() - started < 2000);
    assert.deepEqual(restored, ["iptables", "iptables", "iptables"]);
    for (const [v, tool] of [[4, "iptables"], [6, "ip6tables"]] as const) {
      assert.equal(await flannelChains(ns, tool, "nat"), fill(GOLDEN_NAT, v));
      assert.equal(await flannelChains(ns, tool, "filter"), fill(GOLDEN_FWD, v));
    }
    assert.equal(await tm.resync(), 0);
  },
});

Deno.test({
  ...root,
  name: "iptables mode: a new network replaces the old one's rules; a jump stays where it was",
  fn: async () => {
    await using ns = await netns();
    await ns.sh(
      "iptables -t nat -N KUBE-POSTROUTING && iptables -t nat -A POSTROUTING -j KUBE-POSTROUTING",
    );
    await manager(ns.name, "iptables").setupMasq({
      network: "10.5.0.0/16",
      subnet: "10.5.3.0/24",
      fullyRandom: false,
    });
    await ns.sh("iptables -t nat -A POSTROUTING -s 10.9.0.0/16 -j RETURN");
    // A restart with another network (a fresh manager, as after a restart).
    await manager(ns.name, "iptables").setupMasq({
      ...MASQ,
      ipv6Network: undefined,
      prevNetwork: "10.5.0.0/16",
      prevSubnet: "10.5.3.0/24",
    });
    assert.doesNotMatch(await ns.sh("iptables -t nat -S"), /10\.5\./);
    assert.equal(await flannelChains(ns, "iptables", "nat"), fill(GOLDEN_NAT, 4));
    assert.deepEqual(
      (await ns.sh("iptables -t nat -S POSTROUTING")).trim().split("\n"),
      [
        "-P POSTROUTING ACCEPT",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`,
        "-A POSTROUTING -s 10.9.0.0/16 -j RETURN",
      ],
    );
  },
});

Deno.test({
  ...root,
  name: "iptables mode with --ip-masq off: the nat table is never created",
  fn: async () => {
    await using ns = await netns();
    const tm = manager(ns.name, "iptables");
    await tm.cleanupOther();
    await tm.setupForward(FWD);
    await tm.resync();
    const tables = await ns.sh("nft list tables");
    assert.doesNotMatch(tables, /nat/);
    assert.match(tables, /table ip filter/);
  },
});

Deno.test({
  ...root,
  name: "nftables mode: golden nft list chain output; a deleted rule or table comes back",
  fn: async () => {
    await using ns = await netns();
    const restored: string[] = [];
    const tm = manager(ns.name, "nftables", restored);
    await tm.cleanupOther();
    await tm.setupMasq(MASQ);
    await tm.setupForward(FWD);
    for (const v of [4, 6] as const) {
      const [f, t] = v === 4 ? ["ip", "flannel-ipv4"] : ["ip6", "flannel-ipv6"];
      assert.equal(await ns.sh(`nft list chain ${f} ${t} postrtg`), fill(GOLDEN_NFT_POSTRTG, v));
      assert.equal(await ns.sh(`nft list chain ${f} ${t} forward`), fill(GOLDEN_NFT_FORWARD, v));
      assert.match(await ns.sh(`nft list table ${f} ${t}`), new RegExp(`comment "rules for ${t}"`));
    }
    assert.equal(await tm.resync(), 0);

    const handles = await ns.sh("nft -a list chain ip flannel-ipv4 postrtg");
    const handle = /daddr != 224\.0\.0\.0\/4 masquerade fully-random # handle (\d+)/.exec(handles)
      ?.[1];
    assert.ok(handle, handles);
    await ns.sh(`nft delete rule ip flannel-ipv4 postrtg handle ${handle}`);
    await ns.sh("nft delete table ip6 flannel-ipv6");
    assert.equal(await tm.resync(), 2);
    assert.deepEqual(restored, ["nftables", "nftables"]);
    assert.equal(
      await ns.sh("nft list chain ip flannel-ipv4 postrtg"),
      fill(GOLDEN_NFT_POSTRTG, 4),
    );
    assert.equal(
      await ns.sh("nft list chain ip6 flannel-ipv6 forward"),
      fill(GOLDEN_NFT_FORWARD, 6),
    );
    assert.equal(await tm.resync(), 0);
  },
});

Deno.test({
  ...root,
  name: "switching modes removes the other mode's rules, both ways",
  fn: async () => {
    await using ns = await netns();
    await ns.sh("iptables -A FORWARD -j DROP -m comment --comment 'not ours'");
    const ipt = manager(ns.name, "iptables");
    await ipt.setupMasq(MASQ);
    await ipt.setupForward(FWD);

    const nft = manager(ns.name, "nftables");
    await nft.cleanupOther();
    for (const tool of ["iptables", "ip6tables"]) {
      const all = (await ns.sh(`${tool} -t nat -S`)) + (await ns.sh(`${tool} -S`));
      assert.doesNotMatch(all, /FLANNEL|flanneld/);
    }
    assert.match(await ns.sh("iptables -S FORWARD"), /not ours/);
    await nft.setupMasq(MASQ);
    await nft.setupForward(FWD);

    await manager(ns.name, "iptables").cleanupOther();
    assert.doesNotMatch(await ns.sh("nft list tables"), /flannel/);
  },
});

Deno.test({
  ...root,
  name: "a rule set the kernel refuses fails with the cause and the fix; bad CIDRs are named",
  fn: async () => {
    await using ns = await netns();
    const tm = manager(ns.name, "iptables");
    await assert.rejects(
      tm.setupMasq({ ...MASQ, ipv6Subnet: "zz" }),
      /Cannot parse subnet "zz" as a CIDR/,
    );
    assert.doesNotMatch(
      await ns.sh("iptables -t nat -S"),
      /FLANNEL/,
      "nothing is installed when any input is bad",
    );
    // The real iptables-restore without privileges: the kernel refuses the transaction.
    const unprivileged = createTrafficManager({
      mode: "iptables",
      log: silentLogger,
      run: (argv, o) =>
        netnsRunner(ns.name)(
          argv[0].endsWith("-restore")
            ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv]
            : argv,
          o,
        ),
    });
    await assert.rejects(
      unprivileged.setupMasq({ network: N, subnet: P, fullyRandom: true }),
      (err: Error) => {
        assert.match(
          err.message,
          /Cannot install the flanneld masq rules \(IPv4 nat FLANNEL-POSTRTG\)/,
        );
        assert.match(err.message, /Permission denied \(you must be root\)/);
        assert.match(err.message, /runs as root/);
        return true;
      },
    );
  },
});
