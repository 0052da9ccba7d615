/**
 * Root-only: iptables backend detection against the real `iptables-legacy` and `iptables-nft` of
 * this machine, each in a throwaway network namespace (both tables are per namespace). A host
 * whose rules live in one backend gets ours in the same one; on a host-gw test bed whose hosts
 * have a legacy `FORWARD DROP` policy, pods still reach each other because our accept rules went
 * to legacy too.
 */
import assert from "node:assert/strict";
import { createTrafficManager, netnsRunner } from "../kernel/firewall/mod.ts";
import { createLogger } from "../util/log.ts";
import { eventually, ping, sh, skipUnlessRoot, TestBed } from "./testbed.ts";

const root = {
  ignore: skipUnlessRoot("iptables backend e2e"),
  sanitizeResources: false,
  sanitizeOps: false,
};

async function inNetns(fn: (name: string, run: (cmd: string) => Promise<string>) => Promise<void>) {
  const name = `ibt${Deno.pid}x${Math.floor(Math.random() * 1e6)}`;
  await sh(["ip", "netns", "add", name]);
  try {
    await fn(name, async (cmd) => (await sh(["sh", "-c", cmd], { netns: name })).stdout);
  } finally {
    await sh(["ip", "netns", "del", name], { check: false });
  }
}

for (const [backend, other] of [["legacy", "nft"], ["nft", "legacy"]] as const) {
  Deno.test({
    ...root,
    name: `iptables mode: a host whose rules are in iptables-${backend} gets ours there too`,
    fn: () =>
      inNetns(async (ns, run) => {
        // What kube-proxy and Docker leave behind, in this backend only.
        await run(
          `iptables-${backend} -N KUBE-FORWARD && iptables-${backend} -A FORWARD -j KUBE-FORWARD` +
            ` && iptables-${backend} -t nat -N DOCKER && iptables-${backend} -P FORWARD DROP`,
        );
        const lines: string[] = [];
        const tm = createTrafficManager({
          mode: "iptables",
          log: createLogger({ level: 0, write: (l) => lines.push(l) }),
          run: netnsRunner(ns),
        });
        await tm.setupMasq({ network: "10.42.0.0/16", subnet: "10.42.1.0/24", fullyRandom: true });
        await tm.setupForward({ network: "10.42.0.0/16" });
        assert.equal(await tm.resync(), 0);
        assert.ok(
          lines.some((l) => l.includes(`Using iptables-${backend}: the host's rules are there`)),
          lines.join("\n"),
        );
        const mine = await run(`iptables-${backend}-save`);
        assert.match(mine, /-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD/);
        assert.match(mine, /-A FLANNEL-POSTRTG .* -j MASQUERADE --random-fully/);
        assert.doesNotMatch(await run(`iptables-${other}-save`), /FLANNEL/);
      }),
  });
}

Deno.test({
  ...root,
  name: "host-gw with a legacy FORWARD DROP policy on every host: pods still reach each other",
  fn: async () => {
    const config = '{"Network":"10.100.0.0/16","Backend":{"Type":"host-gw"}}';
    await using bed = await TestBed.create({ hosts: 2, config });
    for (const h of bed.hosts) await h.run(["iptables-legacy", "-P", "FORWARD", "DROP"]);
    await bed.startAgents();
    for (const h of bed.hosts) {
      await h.agent!.waitFor(/Using iptables-legacy: /, 5000);
      await h.addPod();
    }
    const [a, b] = bed.hosts;
    await eventually(() => ping(a.pods[0], b.pods[0].ip), 10_000, "pod on host1 → pod on host2");
    const save = (await a.run(["iptables-legacy-save", "-t", "filter"])).stdout;
    assert.match(save, /-A FLANNEL-FWD -s 10\.100\.0\.0\/16 .* -j ACCEPT/);
  },
});
