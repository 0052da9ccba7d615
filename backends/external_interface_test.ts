import assert from "node:assert/strict";
import {
  InterfaceNotFoundError,
  IPv6DisabledError,
  selectExternalInterface,
} from "./external_interface.ts";
import type { HostInterface } from "../kernel/iface.ts";
import { parseIP4, parseIP6 } from "../subnet/ip.ts";
import { silentLogger } from "../util/log.ts";

const ifaces: HostInterface[] = [
  { name: "lo", index: 1, mtu: 65536, ipv4: ["127.0.0.1"], ipv6: ["::1"] },
  { name: "eth0", index: 2, mtu: 1500, ipv4: ["192.168.1.10"], ipv6: [] },
  { name: "eth1", index: 3, mtu: 9000, ipv4: ["10.0.0.5", "10.0.0.6"], ipv6: ["fd00::5"] },
];

const base = {
  iface: [] as string[],
  ifaceRegex: [] as string[],
  publicIP: "",
  publicIPv6: "",
  defaultInterface: "eth0",
  ipv4: true,
  ipv6: false,
};

Deno.test("selectExternalInterface() follows flannel's decision order", async (t) => {
  await t.step("default route interface when nothing is given", () => {
    const e = selectExternalInterface(ifaces, base, silentLogger);
    assert.equal(e.name, "eth0");
    assert.equal(e.mtu, 1500);
    assert.equal(e.extAddr, parseIP4("192.168.1.10"));
  });
  await t.step("--iface by name", () => {
    const e = selectExternalInterface(ifaces, { ...base, iface: ["eth1"] }, silentLogger);
    assert.equal(e.name, "eth1");
    assert.equal(e.ifaceAddr, parseIP4("10.0.0.5"));
  });
  await t.step("--iface by IP picks that address", () => {
    const e = selectExternalInterface(ifaces, { ...base, iface: ["10.0.0.6"] }, silentLogger);
    assert.equal(e.name, "eth1");
    assert.equal(e.extAddr, parseIP4("10.0.0.6"));
  });
  await t.step("first matching --iface wins", () => {
    const e = selectExternalInterface(
      ifaces,
      { ...base, iface: ["eth9", "eth1", "eth0"] },
      silentLogger,
    );
    assert.equal(e.name, "eth1");
  });
  await t.step("--iface-regex matches addresses before names", () => {
    const e = selectExternalInterface(
      ifaces,
      { ...base, ifaceRegex: ["^10\\.0\\."] },
      silentLogger,
    );
    assert.equal(e.name, "eth1");
    const byName = selectExternalInterface(ifaces, { ...base, ifaceRegex: ["eth0"] }, silentLogger);
    assert.equal(byName.name, "eth0");
  });
  await t.step("--public-ip alone selects the interface owning it", () => {
    const e = selectExternalInterface(ifaces, { ...base, publicIP: "10.0.0.5" }, silentLogger);
    assert.equal(e.name, "eth1");
  });
  await t.step("--public-ip overrides the advertised address", () => {
    const e = selectExternalInterface(
      ifaces,
      { ...base, iface: ["eth0"], publicIP: "203.0.113.7" },
      silentLogger,
    );
    assert.equal(e.ifaceAddr, parseIP4("192.168.1.10"));
    assert.equal(e.extAddr, parseIP4("203.0.113.7"));
  });
});

Deno.test("selectExternalInterface() explains a miss with the interfaces it saw", async (t) => {
  await t.step("no match", () => {
    assert.throws(
      () => selectExternalInterface(ifaces, { ...base, iface: ["wlan0"] }, silentLogger),
      (err) =>
        err instanceof InterfaceNotFoundError &&
        err.message.includes("Failed to find interface to use") &&
        err.message.includes("eth1:[10.0.0.5 10.0.0.6 fd00::5]"),
    );
  });
  await t.step("no default route", () => {
    assert.throws(
      () => selectExternalInterface(ifaces, { ...base, defaultInterface: undefined }, silentLogger),
      /no default route; use --iface/,
    );
  });
  await t.step("bad regex names the flag", () => {
    assert.throws(
      () => selectExternalInterface(ifaces, { ...base, ifaceRegex: ["("] }, silentLogger),
      /Invalid --iface-regex "\("/,
    );
  });
});

Deno.test("selectExternalInterface() honours --iface-can-reach after --iface and --iface-regex", async (t) => {
  await t.step("the route's interface and source address", () => {
    const e = selectExternalInterface(ifaces, {
      ...base,
      canReach: { target: "10.0.0.99", index: 3, src: "10.0.0.6" },
    }, silentLogger);
    assert.equal(e.name, "eth1");
    assert.equal(e.extAddr, parseIP4("10.0.0.6"));
  });
  await t.step("an --iface match wins over it", () => {
    const e = selectExternalInterface(ifaces, {
      ...base,
      iface: ["eth0"],
      canReach: { target: "10.0.0.99", index: 3 },
    }, silentLogger);
    assert.equal(e.name, "eth0");
  });
  await t.step("an unreachable target is named in the error", () => {
    assert.throws(
      () =>
        selectExternalInterface(
          ifaces,
          { ...base, canReach: { target: "203.0.113.1" } },
          silentLogger,
        ),
      /--iface-can-reach 203\.0\.113\.1/,
    );
  });
});

Deno.test("selectExternalInterface() checks the IPv6 preconditions of EnableIPv6", async (t) => {
  const dual = { ...base, ipv6: true, iface: ["eth1"] };
  await t.step("dual stack advertises the interface's IPv6 address", () => {
    const e = selectExternalInterface(ifaces, dual, silentLogger);
    assert.equal(e.extAddr, parseIP4("10.0.0.5"));
    assert.equal(e.extV6Addr, parseIP6("fd00::5"));
  });
  await t.step("disable_ipv6=1 on the interface or on all: one error naming the sysctl", () => {
    for (const dev of ["eth1", "all"]) {
      assert.throws(
        () =>
          selectExternalInterface(ifaces, { ...dual, ipv6Disabled: new Set([dev]) }, silentLogger),
        (err: Error) =>
          err instanceof IPv6DisabledError &&
          err.message.includes(`net.ipv6.conf.${dev}.disable_ipv6=1`) &&
          err.message.includes(`sysctl -w net.ipv6.conf.${dev}.disable_ipv6=0`),
      );
    }
  });
  await t.step("a kernel without IPv6 names ipv6.disable=1", () => {
    assert.throws(
      () =>
        selectExternalInterface(
          ifaces,
          { ...dual, ipv6Disabled: new Set(["kernel"]) },
          silentLogger,
        ),
      /ipv6\.disable=1/,
    );
  });
  await t.step("no IPv6 address on the chosen interface: the error names the fixes", () => {
    assert.throws(
      () => selectExternalInterface(ifaces, { ...dual, iface: ["eth0"] }, silentLogger),
      (err: Error) =>
        err instanceof InterfaceNotFoundError &&
        /interface eth0 has no IPv6 address: add one .* "EnableIPv6": false/.test(err.message),
    );
  });
});
