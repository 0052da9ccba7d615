import assert from "node:assert/strict";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import {
  candidateAddresses,
  defaultRouteIndex,
  type HostAddress,
  hostInterfaces,
  unusableReason,
} from "./iface.ts";
import { IFA_F, openNetlink } from "./netlink/mod.ts";

const { PERMANENT, TEMPORARY, DEPRECATED, TENTATIVE, DADFAILED, OPTIMISTIC, NODAD } = IFA_F;

const a = (ip: string, flags: number = PERMANENT): HostAddress => ({ ip, flags });

Deno.test("candidateAddresses() ranks like flannel's compareAddrs()", async (t) => {
  await t.step("global before link-local", () => {
    assert.deepEqual(candidateAddresses([a("fe80::1"), a("fd00::1")], 6), ["fd00::1", "fe80::1"]);
    assert.deepEqual(candidateAddresses([a("169.254.0.1"), a("10.0.0.1")], 4), [
      "10.0.0.1",
      "169.254.0.1",
    ]);
  });
  await t.step("permanent before dynamic (autoconfigured or with a finite lifetime)", () => {
    assert.deepEqual(candidateAddresses([a("2001:db8::a", 0), a("2001:db8::b")], 6), [
      "2001:db8::b",
      "2001:db8::a",
    ]);
  });
  await t.step("non-temporary before temporary (privacy addresses)", () => {
    assert.deepEqual(candidateAddresses([a("2001:db8::7", TEMPORARY), a("2001:db8::8", 0)], 6), [
      "2001:db8::8",
      "2001:db8::7",
    ]);
  });
  await t.step("kernel order otherwise (stable)", () => {
    const same = ["fd00::3", "fd00::1", "fd00::2"].map((ip) => a(ip));
    assert.deepEqual(candidateAddresses(same, 6), ["fd00::3", "fd00::1", "fd00::2"]);
  });
  await t.step("the rules nest: kind, then permanence, then temporariness", () => {
    const got = candidateAddresses([
      a("fe80::1"),
      a("2001:db8::7", TEMPORARY),
      a("2001:db8::8", 0),
      a("2001:db8::9"),
    ], 6);
    assert.deepEqual(got, ["2001:db8::9", "2001:db8::8", "2001:db8::7", "fe80::1"]);
  });
  await t.step("loopback only as a last resort (flannel never uses it)", () => {
    assert.deepEqual(candidateAddresses([a("127.0.0.1"), a("10.0.0.1")], 4), [
      "10.0.0.1",
      "127.0.0.1",
    ]);
    assert.deepEqual(candidateAddresses([a("::1"), a("fe80::1")], 6), ["fe80::1", "::1"]);
  });
  await t.step("one family at a time", () => {
    assert.deepEqual(candidateAddresses([a("10.0.0.1"), a("fd00::1")], 4), ["10.0.0.1"]);
    assert.deepEqual(candidateAddresses([a("10.0.0.1"), a("fd00::1")], 6), ["fd00::1"]);
  });
});

Deno.test("candidateAddresses() skips deprecated, tentative and DAD-failed addresses", async (t) => {
  const cases: Array<[string, number, string | undefined]> = [
    ["deprecated (flannel skips it too)", PERMANENT | DEPRECATED, "deprecated"],
    ["tentative: DAD still running", PERMANENT | TENTATIVE, "tentative"],
    ["dadfailed: another host has it", PERMANENT | TENTATIVE | DADFAILED, "dadfailed"],
    ["optimistic DAD: usable meanwhile (RFC 4429)", TENTATIVE | OPTIMISTIC, undefined],
    ["nodad", PERMANENT | NODAD, undefined],
  ];
  for (const [name, flags, reason] of cases) {
    await t.step(name, () => {
      const got = candidateAddresses([a("2001:db8::1", flags), a("fe80::1")], 6);
      assert.deepEqual(got, reason ? ["fe80::1"] : ["2001:db8::1", "fe80::1"]);
      assert.equal(unusableReason(a("2001:db8::1", flags))?.split(" ")[0], reason);
    });
  }
  await t.step("IPv4 too", () => {
    assert.deepEqual(candidateAddresses([a("10.0.0.1", DEPRECATED), a("10.0.0.2")], 4), [
      "10.0.0.2",
    ]);
  });
  await t.step("a deprecated address the operator names is still fine", () => {
    assert.equal(unusableReason(a("2001:db8::1", DEPRECATED), true), undefined);
    assert.match(unusableReason(a("2001:db8::1", TENTATIVE), true)!, /^tentative/);
  });
});

Deno.test("hostInterfaces() reads links and flagged addresses from netlink", async () => {
  const nl = new FakeNetlink();
  nl.seedLink("eth0", {
    mtu: 9000,
    addresses: [
      "192.168.1.10/24",
      { address: "fd00::5/64", flags: PERMANENT | TENTATIVE | DADFAILED },
      { address: "fd00::6/64", flags: 0 },
      "fd00::7/64",
      { address: "fe80::1/64", flags: PERMANENT },
    ],
  });
  nl.seedLink("eth1");
  const ifaces = await hostInterfaces(nl);
  assert.deepEqual(ifaces.map((i) => [i.name, i.index, i.mtu]), [
    ["lo", 1, 65536],
    ["eth0", 2, 9000],
    ["eth1", 3, 1500],
  ]);
  const eth0 = ifaces[1];
  assert.deepEqual(eth0.ipv4, ["192.168.1.10"]);
  assert.deepEqual(eth0.ipv6, ["fd00::7", "fd00::6", "fe80::1"]);
  assert.deepEqual(eth0.addresses.map((x) => x.ip), [
    "192.168.1.10",
    "fd00::5",
    "fd00::6",
    "fd00::7",
    "fe80::1",
  ]);
  assert.deepEqual(ifaces[2].addresses, []);
});

Deno.test("hostInterfaces() waits for duplicate address detection to finish", async (t) => {
  await t.step("re-reads until the tentative address is valid", async () => {
    const nl = new FakeNetlink();
    const eth0 = nl.seedLink("eth0", { addresses: [{ address: "fd00::5/64", flags: TENTATIVE }] });
    const told: string[][] = [];
    let polls = 0;
    const done = hostInterfaces(nl, {
      settleMs: 5000,
      pollMs: 5,
      onWait: (p) => told.push(p),
    });
    // DAD completes: the kernel clears the flag (here: the address comes back permanent).
    const timer = setTimeout(async () => {
      polls = nl.calls.filter((c) => c.method === "addresses").length;
      await nl.external.addressDelete({ index: eth0.index, address: "fd00::5/64" });
      await nl.external.addressAdd({ index: eth0.index, address: "fd00::5/64" });
    }, 30);
    const ifaces = await done;
    clearTimeout(timer);
    assert.deepEqual(ifaces[1].ipv6, ["fd00::5"]);
    assert.deepEqual(told, [["fd00::5 on eth0"]], "told once");
    assert.ok(polls >= 2, `polled ${polls} times`);
  });
  await t.step(
    "gives up after settleMs; never waits for a DAD failure or a link-local address",
    async () => {
      const nl = new FakeNetlink();
      nl.seedLink("eth0", { addresses: [{ address: "fd00::5/64", flags: TENTATIVE }] });
      const start = Date.now();
      const ifaces = await hostInterfaces(nl, { settleMs: 40, pollMs: 5 });
      assert.ok(Date.now() - start >= 40);
      assert.deepEqual(ifaces[1].ipv6, []);
      const failed = new FakeNetlink();
      failed.seedLink("eth0", {
        addresses: [{ address: "fd00::5/64", flags: TENTATIVE | DADFAILED }],
      });
      failed.seedLink("eth1", { addresses: [{ address: "fe80::1/64", flags: TENTATIVE }] });
      let waited = false;
      await hostInterfaces(failed, { settleMs: 5000, onWait: () => waited = true });
      assert.equal(waited, false, "nor for a link-local address");
    },
  );
});

Deno.test("defaultRouteIndex() takes the first main-table default route of the family", async () => {
  const nl = new FakeNetlink({ lenientNexthops: true });
  const eth0 = nl.seedLink("eth0");
  const eth1 = nl.seedLink("eth1");
  assert.equal(await defaultRouteIndex(nl, 4), undefined);
  await nl.routeAdd({ dst: "0.0.0.0/0", gateway: "192.168.1.1", index: eth0.index });
  await nl.routeAdd({ dst: "::/0", gateway: "fe80::1", index: eth1.index });
  await nl.routeAdd({ dst: "::/0", index: eth0.index, table: 100 });
  assert.equal(await defaultRouteIndex(nl, 4), eth0.index);
  assert.equal(await defaultRouteIndex(nl, 6), eth1.index);
});

Deno.test("hostInterfaces() lists loopback from the real kernel", async () => {
  const nl = openNetlink();
  try {
    const lo = (await hostInterfaces(nl)).find((i) => i.name === "lo");
    assert.ok(lo, "lo is listed");
    assert.ok(lo.index >= 1);
    assert.ok(lo.mtu > 0);
    assert.ok(lo.ipv4.includes("127.0.0.1"));
    assert.ok(lo.addresses.every((x) => typeof x.flags === "number"));
  } finally {
    nl.close();
  }
});
