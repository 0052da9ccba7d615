import assert from "node:assert/strict";
import {
  InterfaceNotFoundError,
  IPv6DisabledError,
  selectExternalInterface,
  type SelectionOptions,
} from "./external_interface.ts";
import { type HostInterface, hostInterfaces } from "../kernel/iface.ts";
import { IFA_F } from "../kernel/netlink/mod.ts";
import { parseIP4, parseIP6 } from "../subnet/ip.ts";
import { FakeNetlink } from "../test/fakes/netlink.ts";
import { silentLogger } from "../util/log.ts";
import { recordingLogger } from "../test/recording_logger.ts";

const { PERMANENT, TEMPORARY, DEPRECATED, TENTATIVE, DADFAILED } = IFA_F;

/**
 * lo 1, eth0 2 (IPv4 only), eth1 3 (dual), eth2 4 (dual, IPv6 in every state), eth3 5 (IPv6
 * only tentative), as the fake netlink reports them.
 */
async function host(): Promise<HostInterface[]> {
  const nl = new FakeNetlink();
  await nl.addressAdd({ index: 1, address: "127.0.0.1/8" });
  await nl.addressAdd({ index: 1, address: "::1/128" });
  nl.seedLink("eth0", { addresses: ["192.168.1.10/24"] });
  nl.seedLink("eth1", { mtu: 9000, addresses: ["10.0.0.5/24", "10.0.0.6/24", "fd00::5/64"] });
  nl.seedLink("eth2", {
    addresses: [
      "172.16.0.2/24",
      { address: "fe80::2/64", flags: PERMANENT },
      { address: "2001:db8::1/64", flags: TEMPORARY },
      { address: "2001:db8::2/64", flags: 0 },
      { address: "2001:db8::3/64", flags: PERMANENT | DEPRECATED },
      { address: "2001:db8::4/64", flags: PERMANENT | TENTATIVE | DADFAILED },
      { address: "2001:db8::5/64", flags: PERMANENT | TENTATIVE },
      { address: "2001:db8::6/64", flags: PERMANENT },
    ],
  });
  nl.seedLink("eth3", {
    addresses: ["172.17.0.2/24", { address: "2001:db8:3::1/64", flags: PERMANENT | TENTATIVE }],
  });
  return await hostInterfaces(nl);
}

const ifaces = await host();

const base: SelectionOptions = {
  iface: [],
  ifaceRegex: [],
  publicIP: "",
  publicIPv6: "",
  defaultRoute: { 4: 2 },
  ipv4: true,
  ipv6: false,
};
const dual: SelectionOptions = { ...base, ipv6: true, defaultRoute: { 4: 4, 6: 4 } };
const v6only: SelectionOptions = { ...base, ipv4: false, ipv6: true, defaultRoute: { 6: 4 } };

const select = (opts: SelectionOptions) => selectExternalInterface(ifaces, opts, silentLogger);

Deno.test("selectExternalInterface() follows flannel's decision order", async (t) => {
  await t.step("default route interface when nothing is given", () => {
    const e = select(base);
    assert.equal(e.name, "eth0");
    assert.equal(e.mtu, 1500);
    assert.equal(e.extAddr, parseIP4("192.168.1.10"));
  });
  await t.step("--iface by name", () => {
    const e = select({ ...base, iface: ["eth1"] });
    assert.equal(e.name, "eth1");
    assert.equal(e.ifaceAddr, parseIP4("10.0.0.5"));
  });
  await t.step("--iface by IP picks that address", () => {
    const e = select({ ...base, iface: ["10.0.0.6"] });
    assert.equal(e.name, "eth1");
    assert.equal(e.extAddr, parseIP4("10.0.0.6"));
  });
  await t.step("first matching --iface wins", () => {
    assert.equal(select({ ...base, iface: ["eth9", "eth1", "eth0"] }).name, "eth1");
  });
  await t.step(
    "an --iface without an address of a needed family is a miss, the next one wins",
    () => {
      assert.equal(select({ ...dual, iface: ["eth0", "eth1"] }).name, "eth1");
    },
  );
  await t.step("--iface-regex matches addresses before names", () => {
    assert.equal(select({ ...base, ifaceRegex: ["^10\\.0\\."] }).name, "eth1");
    assert.equal(select({ ...base, ifaceRegex: ["eth0"] }).name, "eth0");
  });
  await t.step("--public-ip alone selects the interface owning it", () => {
    assert.equal(select({ ...base, publicIP: "10.0.0.5" }).name, "eth1");
  });
  await t.step("--public-ip overrides the advertised address", () => {
    const e = select({ ...base, iface: ["eth0"], publicIP: "203.0.113.7" });
    assert.equal(e.ifaceAddr, parseIP4("192.168.1.10"));
    assert.equal(e.extAddr, parseIP4("203.0.113.7"));
  });
  await t.step("--iface=lo works (loopback as a last-resort candidate, for local tests)", () => {
    assert.equal(select({ ...base, iface: ["lo"] }).ifaceAddr, parseIP4("127.0.0.1"));
  });
});

Deno.test("selectExternalInterface() explains a miss with the interfaces it saw", async (t) => {
  await t.step("no match", () => {
    assert.throws(
      () => select({ ...base, iface: ["wlan0"] }),
      (err) =>
        err instanceof InterfaceNotFoundError &&
        err.message.includes("Failed to find interface to use") &&
        err.message.includes("--iface=wlan0: no interface named wlan0") &&
        err.message.includes("eth1:[10.0.0.5 10.0.0.6 fd00::5]") &&
        err.message.includes("eth3:[172.17.0.2 2001:db8:3::1(tentative)]"),
    );
  });
  await t.step("an --iface IP that no interface has", () => {
    assert.throws(
      () => select({ ...v6only, iface: ["2001:db8::99"] }),
      (err) =>
        err instanceof InterfaceNotFoundError &&
        err.message.includes(
          "--iface=2001:db8::99: no local interface has the address 2001:db8::99 given by " +
            "--iface=2001:db8::99",
        ),
    );
  });
  await t.step("no default route", () => {
    assert.throws(
      () => select({ ...base, defaultRoute: {} }),
      /no default route; use --iface, --iface-regex or --iface-can-reach/,
    );
  });
  await t.step("bad regex names the flag", () => {
    assert.throws(() => select({ ...base, ifaceRegex: ["("] }), /Invalid --iface-regex "\("/);
  });
});

Deno.test("selectExternalInterface() honours --iface-can-reach after --iface and --iface-regex", async (t) => {
  await t.step("the route's interface and source address", () => {
    const e = select({ ...base, canReach: { target: "10.0.0.99", index: 3, src: "10.0.0.6" } });
    assert.equal(e.name, "eth1");
    assert.equal(e.extAddr, parseIP4("10.0.0.6"));
  });
  await t.step("an IPv6 target: the IPv6 source address, IPv4 the first candidate", () => {
    const e = select({
      ...dual,
      canReach: { target: "2001:db8:9::1", index: 4, src: "2001:db8::2" },
    });
    assert.equal(e.name, "eth2");
    assert.equal(e.extV6Addr, parseIP6("2001:db8::2"));
    assert.equal(e.extAddr, parseIP4("172.16.0.2"));
  });
  await t.step("an --iface match wins over it", () => {
    const e = select({ ...base, iface: ["eth0"], canReach: { target: "10.0.0.99", index: 3 } });
    assert.equal(e.name, "eth0");
  });
  await t.step("an unreachable target is named in the error", () => {
    assert.throws(
      () => select({ ...base, canReach: { target: "203.0.113.1" } }),
      /--iface-can-reach=203\.0\.113\.1: no route to 203\.0\.113\.1/,
    );
  });
});

Deno.test("selectExternalInterface() picks the IPv6 address by the kernel's flags", async (t) => {
  await t.step("permanent global first; deprecated, tentative and DAD-failed skipped", () => {
    for (const opts of [v6only, dual, { ...v6only, iface: ["eth2"] }]) {
      const e = select(opts);
      assert.equal(e.name, "eth2");
      assert.equal(e.ifaceV6Addr, parseIP6("2001:db8::6"));
      assert.equal(e.extV6Addr, parseIP6("2001:db8::6"));
    }
  });
  await t.step("--iface-regex matches candidates only, in preference order", () => {
    const e = select({ ...v6only, ifaceRegex: ["^2001:db8::[1-5]$"] });
    assert.equal(e.ifaceV6Addr, parseIP6("2001:db8::2"), "dynamic before temporary");
  });
  await t.step(
    "--iface-regex in dual stack needs an IPv4 and an IPv6 match on one interface",
    () => {
      const e = select({ ...dual, ifaceRegex: ["^(10\\.0\\.0\\.6|fd00::5)$"] });
      assert.equal(e.name, "eth1");
      assert.equal(e.ifaceAddr, parseIP4("10.0.0.6"));
      assert.equal(e.ifaceV6Addr, parseIP6("fd00::5"));
      // Only an IPv4 match: falls back to names, where nothing matches.
      assert.throws(() => select({ ...dual, ifaceRegex: ["^10\\.0\\.0\\.6$"] }), /could not match/);
    },
  );
  await t.step("--iface=IPv6 selects the interface holding it", () => {
    const e = select({ ...dual, iface: ["2001:db8:0:0::2"] });
    assert.equal(e.name, "eth2");
    assert.equal(e.ifaceV6Addr, parseIP6("2001:db8::2"));
    assert.equal(e.ifaceAddr, parseIP4("172.16.0.2"));
  });
  await t.step("an explicit deprecated address is honoured", () => {
    assert.equal(select({ ...v6only, iface: ["2001:db8::3"] }).extV6Addr, parseIP6("2001:db8::3"));
  });
  await t.step("an explicit tentative or DAD-failed address is refused, saying why", () => {
    assert.throws(
      () => select({ ...v6only, iface: ["2001:db8::4"] }),
      /2001:db8::4 given by --iface=2001:db8::4 on eth2 is dadfailed \(another host has it\)/,
    );
    assert.throws(() => select({ ...v6only, iface: ["2001:db8::5"] }), /is tentative/);
  });
  await t.step("an address on two interfaces: the one where it is usable", async () => {
    const nl = new FakeNetlink();
    nl.seedLink("a0", { addresses: [{ address: "fd00::9/64", flags: TENTATIVE | DADFAILED }] });
    nl.seedLink("a1", { addresses: ["fd00::9/64"] });
    const e = selectExternalInterface(await hostInterfaces(nl), {
      ...v6only,
      iface: ["fd00::9"],
    }, silentLogger);
    assert.equal(e.name, "a1");
  });
  await t.step("an IPv4 --iface in an IPv6-only network", () => {
    assert.throws(
      () => select({ ...v6only, iface: ["10.0.0.5"] }),
      /10\.0\.0\.5 given by --iface=10\.0\.0\.5 is an IPv4 address but the network config has EnableIPv4 off/,
    );
  });
});

Deno.test("selectExternalInterface() in dual stack, as flannel's LookupExtIface", async (t) => {
  await t.step("default routes of both families must leave by one interface", () => {
    assert.throws(
      () => select({ ...dual, defaultRoute: { 4: 2, 6: 4 } }),
      /v6 default route interface eth2 must be the same with v4 default route interface eth0/,
    );
    assert.throws(() => select({ ...dual, defaultRoute: { 4: 4 } }), /no default v6 route/);
  });
  await t.step("--iface=IPv4 with --public-ipv6: the IPv6 must be on the same interface", () => {
    const e = select({ ...dual, iface: ["10.0.0.5"], publicIPv6: "fd00::5" });
    assert.equal(e.ifaceV6Addr, parseIP6("fd00::5"));
    assert.throws(
      () => select({ ...dual, iface: ["10.0.0.5"], publicIPv6: "2001:db8::6" }),
      /v6 interface eth2 must be the same with v4 interface eth1/,
    );
  });
  await t.step("--public-ipv6 alone selects the interface owning it", () => {
    const e = select({ ...dual, publicIPv6: "fd00::5" });
    assert.equal(e.name, "eth1");
    assert.equal(e.ifaceAddr, parseIP4("10.0.0.5"));
  });
  await t.step("the IPv6 address of the IPv4-selected interface is its first candidate", () => {
    const e = select({ ...dual, iface: ["172.16.0.2"] });
    assert.equal(e.ifaceV6Addr, parseIP6("2001:db8::6"));
  });
  await t.step("a miss is logged as flannel does", () => {
    const log = recordingLogger();
    selectExternalInterface(ifaces, { ...dual, iface: ["eth0", "eth2"] }, log);
    assert.ok(
      log.lines.some((l) =>
        l.startsWith("W Could not find valid interface matching eth0: interface eth0 has no usable")
      ),
      log.lines.join("\n"),
    );
  });
  await t.step("flannel's log lines", () => {
    const log = recordingLogger();
    selectExternalInterface(ifaces, { ...dual, iface: ["eth2"] }, log);
    const text = log.lines.join("\n");
    assert.match(text, /Using interface with name eth2 and address 172\.16\.0\.2/);
    assert.match(text, /Using interface with name eth2 and v6 address 2001:db8::6/);
    assert.match(text, /Defaulting external v6 address to interface address \(2001:db8::6\)/);
  });
});

Deno.test("selectExternalInterface() checks the IPv6 preconditions of EnableIPv6", async (t) => {
  const d = { ...dual, iface: ["eth1"] };
  await t.step("dual stack advertises the interface's IPv6 address", () => {
    const e = select(d);
    assert.equal(e.extAddr, parseIP4("10.0.0.5"));
    assert.equal(e.extV6Addr, parseIP6("fd00::5"));
  });
  await t.step("disable_ipv6=1 on the interface or on all: one error naming the sysctl", () => {
    for (const dev of ["eth1", "all"]) {
      assert.throws(
        () => select({ ...d, ipv6Disabled: new Set([dev]) }),
        (err: Error) =>
          err instanceof IPv6DisabledError &&
          err.message.includes(`net.ipv6.conf.${dev}.disable_ipv6=1`) &&
          err.message.includes(`sysctl -w net.ipv6.conf.${dev}.disable_ipv6=0`),
      );
    }
  });
  await t.step("a kernel without IPv6 names ipv6.disable=1", () => {
    assert.throws(() => select({ ...d, ipv6Disabled: new Set(["kernel"]) }), /ipv6\.disable=1/);
  });
  await t.step(
    "no IPv6 address on the chosen interface: the error names the flag and fixes",
    () => {
      assert.throws(
        () => select({ ...d, iface: ["eth0"] }),
        (err: Error) =>
          err instanceof InterfaceNotFoundError &&
          /--iface=eth0: interface eth0 has no usable IPv6 address: add one \(ip -6 addr add ADDR\/LEN dev eth0\).* "EnableIPv6": false/
            .test(err.message),
      );
    },
  );
  await t.step("only a tentative IPv6 address: the error says so", () => {
    assert.throws(
      () => select({ ...d, iface: ["eth3"] }),
      /interface eth3 has no usable IPv6 address \(2001:db8:3::1 is tentative \(duplicate address detection has not finished/,
    );
  });
  await t.step("the default-route interface without IPv6: the same error, unprefixed", () => {
    assert.throws(
      () => select({ ...dual, defaultRoute: { 4: 2, 6: 2 } }),
      /^InterfaceNotFoundError: interface eth0 has no usable IPv6 address/,
    );
  });
});
