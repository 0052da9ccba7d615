import assert from "node:assert/strict";
import { silentLogger } from "../../util/log.ts";
import { FakeXtables } from "../../test/fakes/xtables.ts";
import { fail, ok, ScriptedRunner } from "../../test/fakes/scripted_runner.ts";
import { MissingToolError } from "./command.ts";
import { createTrafficManager, type TrafficManager } from "./mod.ts";

const MASQ = { network: "10.42.0.0/16", subnet: "10.42.1.0/24", fullyRandom: true };
const JUMP = `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`;

function setup(
  opts: { nft?: (argv: readonly string[]) => ReturnType<ScriptedRunner["handler"]> } = {},
) {
  const xt = new FakeXtables();
  const restored: string[] = [];
  const runner = new ScriptedRunner((argv, o) =>
    argv[0] === "nft" ? opts.nft?.(argv) : xt.handle(argv, o.stdin)
  );
  const tm: TrafficManager = createTrafficManager({
    mode: "iptables",
    log: silentLogger,
    run: runner.run,
    onRestored: (kind) => restored.push(kind),
  });
  return { xt, runner, tm, restored };
}

Deno.test("IptablesManager.setupMasq() sends the golden payload in one restore per family", async () => {
  const { runner, tm, xt } = setup();
  await tm.setupMasq({ ...MASQ, ipv6Network: "fd42::/56", ipv6Subnet: "fd42:0:0:1:ffff::/64" });
  const restores = runner.calls.filter((c) => c.argv[0].endsWith("-restore"));
  assert.deepEqual(restores.map((c) => c.argv), [
    ["iptables-restore", "--noflush", "--wait"],
    ["ip6tables-restore", "--noflush", "--wait"],
  ]);
  assert.equal(
    restores[0].stdin,
    `*nat
:FLANNEL-POSTRTG - [0:0]
${JUMP}
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
COMMIT
`,
  );
  // The IPv6 subnet is given with host bits: it is written in network form.
  assert.match(restores[1].stdin!, /-s fd42:0:0:1::\/64 -d fd42::\/56 .* -j RETURN/);
  assert.match(restores[1].stdin!, /! -d ff00::\/8 /);
  assert.equal(xt.rules(4, "filter", "FORWARD")?.length, 0, "filter untouched");
  // Every iptables call takes the xtables lock.
  for (const c of runner.calls.filter((c) => /^ip6?tables$/.test(c.argv[0]))) {
    if (c.argv[1] !== "--version") assert.equal(c.argv[1], "-w");
  }
});

Deno.test("IptablesManager.setupMasq() leaves out --random-fully when disabled or unsupported", async (t) => {
  await t.step("disabled by flag", async () => {
    const { runner, tm } = setup();
    await tm.setupMasq({ ...MASQ, fullyRandom: false });
    assert.doesNotMatch(runner.inputs("iptables-restore")[0], /random-fully/);
  });
  await t.step("iptables 1.4.21: no --random-fully, no restore --wait", async () => {
    const { runner, tm, xt } = setup();
    xt.version = "iptables v1.4.21";
    await tm.setupMasq(MASQ);
    assert.doesNotMatch(runner.inputs("iptables-restore")[0], /random-fully/);
    const restore = runner.calls.find((c) => c.argv[0] === "iptables-restore");
    assert.deepEqual(restore?.argv, ["iptables-restore", "--noflush"]);
  });
});

Deno.test("IptablesManager.setupMasq() of a new network replaces the old network's rules", async () => {
  const { tm, xt } = setup();
  await tm.setupMasq({ network: "10.5.0.0/16", subnet: "10.5.3.0/24", fullyRandom: true });
  // An older flannel put rules straight into POSTROUTING.
  xt.rules(4, "nat", "POSTROUTING")!.push(
    `-A POSTROUTING -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN`,
    "-A POSTROUTING -j KUBE-POSTROUTING",
  );
  await tm.setupMasq({ ...MASQ, prevNetwork: "10.5.0.0/16", prevSubnet: "10.5.3.0/24" });
  assert.deepEqual(xt.rules(4, "nat", "POSTROUTING"), [JUMP, "-A POSTROUTING -j KUBE-POSTROUTING"]);
  const chain = xt.rules(4, "nat", "FLANNEL-POSTRTG")!;
  assert.equal(chain.length, 6);
  assert.ok(chain.every((l) => !l.includes("10.5.")), chain.join("\n"));
});

Deno.test("IptablesManager.resync() restores what was removed and nothing else", async (t) => {
  const { tm, xt, runner, restored } = setup();
  await tm.setupMasq(MASQ);
  await tm.setupForward({ network: "10.42.0.0/16" });
  const golden = {
    nat: [...xt.rules(4, "nat", "FLANNEL-POSTRTG")!],
    fwd: [...xt.rules(4, "filter", "FLANNEL-FWD")!],
  };
  await t.step("no drift: only listings, no restore", async () => {
    runner.calls.length = 0;
    assert.equal(await tm.resync(), 0);
    assert.equal(runner.calls.filter((c) => c.argv[0].endsWith("-restore")).length, 0);
    assert.equal(runner.calls.length, 4, "two listings per installed chain");
  });
  const cases: [string, () => void][] = [
    ["a rule deleted", () => xt.rules(4, "nat", "FLANNEL-POSTRTG")!.splice(2, 1)],
    ["the chain flushed", () => xt.rules(4, "nat", "FLANNEL-POSTRTG")!.splice(0)],
    ["the jump deleted", () => xt.rules(4, "nat", "POSTROUTING")!.splice(0)],
    ["the jump duplicated", () => xt.rules(4, "nat", "POSTROUTING")!.push(JUMP)],
    [
      "a foreign rule in our chain",
      () => xt.rules(4, "nat", "FLANNEL-POSTRTG")!.unshift("-A FLANNEL-POSTRTG -j ACCEPT"),
    ],
    ["the chain deleted", () => {
      xt.rules(4, "nat", "POSTROUTING")!.splice(0);
      xt.chains.delete("4/nat/FLANNEL-POSTRTG");
    }],
  ];
  for (const [name, damage] of cases) {
    await t.step(name, async () => {
      damage();
      restored.length = 0;
      assert.equal(await tm.resync(), 1);
      assert.deepEqual(restored, ["iptables"]);
      assert.deepEqual(xt.rules(4, "nat", "FLANNEL-POSTRTG"), golden.nat);
      assert.deepEqual(xt.rules(4, "nat", "POSTROUTING"), [JUMP]);
      assert.deepEqual(xt.rules(4, "filter", "FLANNEL-FWD"), golden.fwd);
      assert.equal(await tm.resync(), 0);
    });
  }
});

Deno.test("IptablesManager.run() resyncs periodically until aborted", async () => {
  const { tm, xt } = setup();
  await tm.setupForward({ network: "10.42.0.0/16" });
  xt.rules(4, "filter", "FLANNEL-FWD")!.splice(0);
  const ac = new AbortController();
  let ticks = 0;
  const done = tm.run({
    signal: ac.signal,
    resyncSeconds: 0.01,
    onTick: () => {
      if (++ticks === 2) ac.abort();
    },
  });
  await done;
  assert.equal(ticks, 2);
  assert.equal(xt.rules(4, "filter", "FLANNEL-FWD")?.length, 2);
});

Deno.test("IptablesManager with --ip-masq off never touches the nat table", async () => {
  const { tm, runner } = setup({ nft: () => ok("") });
  await tm.cleanupOther();
  await tm.setupForward({ network: "10.42.0.0/16" });
  await tm.resync();
  const natCalls = runner.calls.filter((c) => c.argv.includes("nat") || c.stdin?.includes("*nat"));
  assert.deepEqual(natCalls, []);
});

Deno.test("IptablesManager.cleanupOther() deletes only flannel's nftables tables", async (t) => {
  await t.step("tables present", async () => {
    const { tm, runner } = setup({
      nft: (argv) =>
        argv[1] === "list"
          ? ok("table ip nat\ntable ip flannel-ipv4\ntable ip6 flannel-ipv6\n")
          : ok(),
    });
    await tm.cleanupOther();
    assert.deepEqual(runner.inputs("nft").filter((s) => s !== ""), [
      "delete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\n",
    ]);
  });
  await t.step("nothing there: read only", async () => {
    const { tm, runner } = setup({ nft: () => ok("table ip filter\n") });
    await tm.cleanupOther();
    assert.deepEqual(runner.calls.map((c) => c.argv), [["nft", "list", "tables"]]);
  });
  await t.step("nft not installed: skipped", async () => {
    const runner = new ScriptedRunner(() => undefined);
    const tm = createTrafficManager({
      mode: "iptables",
      log: silentLogger,
      run: (argv, o) =>
        argv[0] === "nft"
          ? Promise.reject(new MissingToolError("nft", "not installed"))
          : runner.run(argv, o),
    });
    await tm.cleanupOther();
  });
});

Deno.test("IptablesManager reports bad input with the cause and the fix", async (t) => {
  await t.step("iptables not installed", async () => {
    const tm = createTrafficManager({
      mode: "iptables",
      log: silentLogger,
      run: (argv) => Promise.reject(new MissingToolError(argv[0], "not installed")),
    });
    await assert.rejects(tm.setupMasq(MASQ), (err: Error) => {
      assert.ok(err instanceof MissingToolError);
      assert.match(err.message, /"iptables": it is not installed/);
      assert.match(err.message, /apt-get install iptables/);
      assert.match(err.message, /"EnableNFTables": true/);
      return true;
    });
  });
  await t.step("a rule the kernel refuses", async () => {
    const { tm, xt } = setup();
    xt.failRestore = "iptables-restore: line 3 failed: No chain/target/match by that name.";
    await assert.rejects(tm.setupMasq(MASQ), (err: Error) => {
      assert.match(
        err.message,
        /Cannot install the flanneld masq rules \(IPv4 nat FLANNEL-POSTRTG\)/,
      );
      assert.match(err.message, /line 3 failed/);
      assert.match(err.message, /modprobe/);
      assert.match(err.message, /\*nat\n/, "the payload is shown");
      return true;
    });
  });
  await t.step("a network without the own subnet", async () => {
    const { tm } = setup();
    await assert.rejects(tm.setupMasq({ network: "10.42.0.0/16", fullyRandom: true }), TypeError);
  });
  await t.step("a CIDR that does not parse", async () => {
    const { tm } = setup();
    await assert.rejects(
      tm.setupForward({ network: "10.42.0.0/33" }),
      /Cannot parse network "10.42.0.0\/33" as a CIDR/,
    );
    await assert.rejects(
      tm.setupForward({ ipv6Network: "10.42.0.0/16" }),
      /not an IPv6 CIDR/,
    );
  });
  await t.step("a failing version probe is retried next time", async () => {
    let calls = 0;
    const xt = new FakeXtables();
    const tm = createTrafficManager({
      mode: "iptables",
      log: silentLogger,
      run: (argv, o) =>
        Promise.resolve(
          argv[1] === "--version" && calls++ === 0 ? fail("boom") : xt.handle(argv, o?.stdin)!,
        ),
    });
    await assert.rejects(tm.setupMasq(MASQ), /iptables --version/);
    await tm.setupMasq(MASQ);
    assert.equal(xt.rules(4, "nat", "FLANNEL-POSTRTG")?.length, 6);
  });
});
