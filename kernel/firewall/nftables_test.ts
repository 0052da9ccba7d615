import assert from "node:assert/strict";
import { silentLogger } from "../../util/log.ts";
import { FakeXtables } from "../../test/fakes/xtables.ts";
import { fail, ok, ScriptedRunner } from "../../test/fakes/scripted_runner.ts";
import { MissingToolError } from "./command.ts";
import { createTrafficManager } from "./mod.ts";
import { forwardRules, installPayload, masqRules } from "./iptables_rules.ts";

const MASQ = { network: "10.42.0.0/16", subnet: "10.42.1.0/24", fullyRandom: true };

/** nft whose "kernel" holds, per table, the last script that created it (as its listing). */
class FakeNft {
  readonly tables = new Map<string, string>();
  fullyRandom = true;
  failApply?: string;

  handle(argv: readonly string[], stdin = "") {
    if (argv[0] !== "nft") return undefined;
    const args = argv.slice(1).join(" ");
    if (args === "-c -f -") {
      return this.fullyRandom || !stdin.includes("fully-random") ? ok() : fail("Error: syntax");
    }
    if (args === "-f -") {
      if (this.failApply) return fail(this.failApply);
      for (const m of stdin.matchAll(/^delete table (\S+ \S+)$/gm)) this.tables.delete(m[1]);
      for (const m of stdin.matchAll(/^add table (\S+ \S+) \{/gm)) this.tables.set(m[1], stdin);
      return ok();
    }
    if (args === "list tables") {
      return ok([...this.tables.keys()].map((t) => `table ${t}\n`).join(""));
    }
    const m = /^list table (\S+) (\S+)$/.exec(args);
    if (m) {
      const t = this.tables.get(`${m[1]} ${m[2]}`);
      return t === undefined ? fail("Error: No such file or directory") : ok(t);
    }
    return undefined;
  }
}

function setup() {
  const nft = new FakeNft();
  const xt = new FakeXtables();
  const restored: string[] = [];
  const runner = new ScriptedRunner((argv, o) =>
    nft.handle(argv, o.stdin) ?? xt.handle(argv, o.stdin)
  );
  const tm = createTrafficManager({
    mode: "nftables",
    log: silentLogger,
    run: runner.run,
    onRestored: (k) => restored.push(k),
  });
  return { nft, xt, runner, tm, restored };
}

Deno.test("NftablesManager installs each family's table in one nft -f transaction", async () => {
  const { tm, runner, nft } = setup();
  await tm.setupMasq({ ...MASQ, ipv6Network: "fd42::/56", ipv6Subnet: "fd42:0:0:1::/64" });
  await tm.setupForward({ network: "10.42.0.0/16", ipv6Network: "fd42::/56" });
  const applied = runner.calls.filter((c) => c.argv.join(" ") === "nft -f -").map((c) => c.stdin!);
  assert.equal(applied.length, 4);
  // The last IPv4 script holds both chains: the table is replaced whole each time.
  const v4 = nft.tables.get("ip flannel-ipv4")!;
  assert.match(v4, /^add table ip flannel-ipv4\ndelete table ip flannel-ipv4\n/);
  assert.match(
    v4,
    /add rule ip flannel-ipv4 postrtg ip saddr 10.42.0.0\/16 ip daddr != 224.0.0.0\/4 masquerade fully-random\n/,
  );
  assert.match(v4, /add rule ip flannel-ipv4 forward ip daddr 10.42.0.0\/16 accept\n/);
  assert.match(
    nft.tables.get("ip6 flannel-ipv6")!,
    /ip6 saddr fd42::\/56 ip6 daddr != ff00::\/8 masquerade fully-random/,
  );
});

Deno.test("NftablesManager probes fully-random once and falls back to plain masquerade", async () => {
  const { tm, runner, nft } = setup();
  nft.fullyRandom = false;
  await tm.setupMasq(MASQ);
  await tm.setupMasq(MASQ);
  assert.equal(runner.calls.filter((c) => c.argv[1] === "-c").length, 1);
  assert.doesNotMatch(nft.tables.get("ip flannel-ipv4")!, /fully-random/);
  assert.match(nft.tables.get("ip flannel-ipv4")!, / masquerade\n/);
});

Deno.test("NftablesManager.setupMasq() with fully-random disabled does not probe", async () => {
  const { tm, runner, nft } = setup();
  await tm.setupMasq({ ...MASQ, fullyRandom: false });
  assert.equal(runner.calls.filter((c) => c.argv[1] === "-c").length, 0);
  assert.doesNotMatch(nft.tables.get("ip flannel-ipv4")!, /fully-random/);
});

Deno.test("NftablesManager.resync() recreates a table that changed or vanished", async (t) => {
  const { tm, nft, restored } = setup();
  await tm.setupMasq(MASQ);
  const good = nft.tables.get("ip flannel-ipv4")!;
  await t.step("unchanged", async () => assert.equal(await tm.resync(), 0));
  await t.step("changed", async () => {
    nft.tables.set("ip flannel-ipv4", good.replace(/.*daddr != 224.*\n/, ""));
    assert.equal(await tm.resync(), 1);
    assert.equal(nft.tables.get("ip flannel-ipv4"), good);
  });
  await t.step("deleted", async () => {
    nft.tables.delete("ip flannel-ipv4");
    assert.equal(await tm.resync(), 1);
    assert.equal(nft.tables.get("ip flannel-ipv4"), good);
    assert.equal(await tm.resync(), 0);
  });
  assert.deepEqual(restored, ["nftables", "nftables"]);
});

Deno.test("NftablesManager.cleanupOther() removes iptables-mode chains and jumps of both families", async () => {
  const { tm, xt } = setup();
  // Leave what iptables mode installs, plus a foreign rule that must survive.
  for (const family of [4, 6] as const) {
    const net = family === 4 ? "10.42.0.0/16" : "fd42::/56";
    const sub = family === 4 ? "10.42.1.0/24" : "fd42:0:0:1::/64";
    for (const set of [masqRules(family, net, sub, true), forwardRules(family, net)]) {
      xt.handle([family === 4 ? "iptables-restore" : "ip6tables-restore"], installPayload(set, []));
    }
  }
  xt.rules(4, "filter", "FORWARD")!.push("-A FORWARD -j KUBE-FORWARD");
  await tm.cleanupOther();
  for (const family of [4, 6] as const) {
    assert.equal(xt.rules(family, "nat", "FLANNEL-POSTRTG"), undefined);
    assert.equal(xt.rules(family, "filter", "FLANNEL-FWD"), undefined);
    assert.deepEqual(xt.rules(family, "nat", "POSTROUTING"), []);
  }
  assert.deepEqual(xt.rules(4, "filter", "FORWARD"), ["-A FORWARD -j KUBE-FORWARD"]);
});

Deno.test("NftablesManager.cleanupOther() only reads on a clean host, and skips without iptables", async (t) => {
  await t.step("clean host", async () => {
    const { tm, runner } = setup();
    await tm.cleanupOther();
    assert.ok(runner.calls.every((c) => !c.argv[0].endsWith("-restore")));
  });
  await t.step("no iptables", async () => {
    const nft = new FakeNft();
    const tm = createTrafficManager({
      mode: "nftables",
      log: silentLogger,
      run: (argv, o) =>
        argv[0] === "nft"
          ? Promise.resolve(nft.handle(argv, o?.stdin)!)
          : Promise.reject(new MissingToolError(argv[0], "not installed")),
    });
    await tm.cleanupOther();
    await tm.setupMasq(MASQ);
  });
});

Deno.test("NftablesManager reports bad input with the cause and the fix", async (t) => {
  await t.step("nft not installed", async () => {
    const tm = createTrafficManager({
      mode: "nftables",
      log: silentLogger,
      run: (argv) => Promise.reject(new MissingToolError(argv[0], "not installed")),
    });
    await assert.rejects(tm.setupForward({ network: "10.42.0.0/16" }), (err: Error) => {
      assert.ok(err instanceof MissingToolError);
      assert.match(
        err.message,
        /"nft": it is not installed; install it \(apt-get install nftables/,
      );
      assert.match(err.message, /remove "EnableNFTables"/);
      return true;
    });
  });
  await t.step("a script the kernel refuses", async () => {
    const { tm, nft } = setup();
    nft.failApply = "Error: Could not process rule: No such file or directory";
    await assert.rejects(tm.setupMasq(MASQ), (err: Error) => {
      assert.match(
        err.message,
        /Cannot install the nftables table ip flannel-ipv4 with "nft -f -"/,
      );
      assert.match(err.message, /Could not process rule/);
      assert.match(err.message, /modprobe nf_tables/);
      return true;
    });
  });
});
