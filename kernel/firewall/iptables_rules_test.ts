import assert from "node:assert/strict";
import {
  expectedChainListing,
  forwardRules,
  installPayload,
  masqRules,
  removePayload,
  strayParentLines,
  supportsRandomFully,
} from "./iptables_rules.ts";

// flannel pkg/trafficmngr/iptables/iptables.go (masquerade rules): the e2e golden `iptables -t nat -S` lines (chain part), P=10.42.1.0/24, N=10.42.0.0/16.
const GOLDEN_NAT = `-N FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`;

const JUMP = `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`;

Deno.test("masqRules() matches the golden iptables -S listing", () => {
  const set = masqRules(4, "10.42.0.0/16", "10.42.1.0/24", true);
  assert.equal(expectedChainListing(set).join("\n"), GOLDEN_NAT);
});

Deno.test("masqRules() uses ff00::/8 for IPv6 and drops --random-fully when asked", () => {
  const set = masqRules(6, "fd42::/56", "fd42:0:0:1::/64", false);
  assert.equal(
    set.rules[4],
    `-s fd42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE`,
  );
  assert.equal(
    set.rules[5],
    `! -s fd42::/56 -d fd42::/56 -m comment --comment "flanneld masq" -j MASQUERADE`,
  );
});

Deno.test("forwardRules() matches flannel pkg/trafficmngr/iptables/iptables.go (forward rules)", () => {
  assert.deepEqual(expectedChainListing(forwardRules(4, "10.42.0.0/16")), [
    "-N FLANNEL-FWD",
    `-A FLANNEL-FWD -s 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
    `-A FLANNEL-FWD -d 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
  ]);
});

Deno.test("installPayload() declares (flushes) the chain, appends the jump once, then the rules", async (t) => {
  const set = masqRules(4, "10.42.0.0/16", "10.42.1.0/24", true);
  const body = GOLDEN_NAT.split("\n").slice(1).join("\n");
  await t.step("fresh host", () => {
    assert.equal(
      installPayload(set, ["-P POSTROUTING ACCEPT"]),
      `*nat\n:FLANNEL-POSTRTG - [0:0]\n${JUMP}\n${body}\nCOMMIT\n`,
    );
  });
  await t.step("jump already present: kept in place", () => {
    const listing = ["-P POSTROUTING ACCEPT", "-A POSTROUTING -j KUBE-POSTROUTING", JUMP];
    assert.equal(installPayload(set, listing), `*nat\n:FLANNEL-POSTRTG - [0:0]\n${body}\nCOMMIT\n`);
  });
  await t.step("duplicate jumps and old-style rules of a previous network are deleted", () => {
    const legacy =
      `-A POSTROUTING -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN`;
    const listing = [
      JUMP,
      legacy,
      "-A POSTROUTING -j KUBE-POSTROUTING",
      JUMP,
      "-A POSTROUTING -j FLANNEL-POSTRTG",
    ];
    assert.equal(
      installPayload(set, listing),
      `*nat\n:FLANNEL-POSTRTG - [0:0]\n` +
        legacy.replace("-A", "-D") + "\n" +
        JUMP.replace("-A", "-D") + "\n" +
        "-D POSTROUTING -j FLANNEL-POSTRTG\n" +
        `${body}\nCOMMIT\n`,
    );
  });
});

Deno.test("strayParentLines() leaves foreign rules alone", () => {
  const set = forwardRules(4, "10.42.0.0/16");
  const listing = [
    "-P FORWARD DROP",
    "-A FORWARD -j DOCKER-USER",
    `-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
    `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`,
    `-A FORWARD -j FLANNEL-FWD-OTHER`,
  ];
  assert.deepEqual(strayParentLines(set, listing), []);
});

Deno.test("removePayload() deletes jumps and the chain, and is empty when nothing is there", async (t) => {
  await t.step("leftovers", () => {
    assert.equal(
      removePayload("nat", "POSTROUTING", "FLANNEL-POSTRTG", "flanneld masq", [JUMP], true),
      `*nat\n${JUMP.replace("-A", "-D")}\n-F FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n`,
    );
  });
  await t.step("jump without chain", () => {
    assert.equal(
      removePayload("nat", "POSTROUTING", "FLANNEL-POSTRTG", "flanneld masq", [JUMP], false),
      `*nat\n${JUMP.replace("-A", "-D")}\nCOMMIT\n`,
    );
  });
  await t.step("clean host", () => {
    assert.equal(
      removePayload("nat", "POSTROUTING", "FLANNEL-POSTRTG", "flanneld masq", [
        "-P POSTROUTING ACCEPT",
      ], false),
      "",
    );
  });
});

Deno.test("supportsRandomFully() needs iptables 1.6.2", async (t) => {
  const cases: [string, boolean][] = [
    ["iptables v1.8.9 (nf_tables)", true],
    ["iptables v1.6.2", true],
    ["iptables v1.6.1", false],
    ["iptables v1.4.21", false],
    ["iptables v1.10.0 (legacy)", true],
    ["garbage", false],
  ];
  for (const [text, want] of cases) {
    await t.step(text, () => assert.equal(supportsRandomFully(text), want));
  }
});
