/**
 * Root-only: external interface selection against real kernel addresses, in a throwaway network
 * namespace (`unshare --net`: it dies with the child process, so nothing is left to clean up).
 * `test/iface_selection_netns_test.ts` runs this file inside the namespace.
 *
 * v0 (peer v1, both up) holds IPv6 addresses in every state the kernel reports: a permanent one,
 * a dynamic one (finite lifetime), a deprecated one (`preferred_lft 0`), one that failed DAD
 * (v1 already has it), a `mngtmpaddr` one with its temporary (privacy) address, and the
 * link-local one. v2's peer is down, so its address stays tentative. d0 (peer d1) carries an IPv6-only
 * route for `--iface-can-reach`.
 */
import assert from "node:assert/strict";
import {
  InterfaceNotFoundError,
  selectExternalInterface,
  type SelectionOptions,
} from "../backends/external_interface.ts";
import {
  defaultRouteIndex,
  type HostInterface,
  hostInterfaces,
  routeToward,
} from "../kernel/iface.ts";
import { IFA_F, openNetlink } from "../kernel/netlink/mod.ts";
import { formatIP4, formatIP6 } from "../subnet/ip.ts";
import { silentLogger } from "../util/log.ts";
import { sh } from "./testbed.ts";

const IN_NETNS = Deno.env.get("IFACE_TEST_IN_NETNS") === "1";

async function setUp(): Promise<void> {
  const { stdout } = await sh(["ip", "-o", "link", "show"]);
  assert.deepEqual(stdout.trim().split("\n").length, 1, "refusing to run outside a fresh netns");
  for (
    const cmd of [
      "ip link set lo up",
      "ip link add v0 type veth peer name v1",
      "ip link set v1 up",
      "ip link set v0 up",
      "sysctl -qw net.ipv6.conf.v0.use_tempaddr=2",
      "ip addr add 10.1.0.5/24 dev v0",
      "ip -6 addr add fd00:1::5/64 dev v1 nodad",
      "ip -6 addr add fd00:1::9/64 dev v0 nodad",
      "ip -6 addr add fd00:1::8/64 dev v0 nodad valid_lft 3600 preferred_lft 3600",
      "ip -6 addr add fd00:1::7/64 dev v0 nodad preferred_lft 0",
      "ip -6 addr add fd00:1::5/64 dev v0",
      "ip -6 addr add fd00:4::1/64 dev v0 mngtmpaddr valid_lft 3600 preferred_lft 3600",
      "ip route add default dev v0",
      "ip -6 route add default dev v0",
      "ip link add v2 type veth peer name v3",
      "ip link set v2 up",
      "ip addr add 10.2.0.5/24 dev v2",
      "ip -6 addr add fd00:2::1/64 dev v2",
      "ip link add d0 type veth peer name d1",
      "ip link set d1 up",
      "ip link set d0 up",
      "ip -6 addr add fd00:3::1/64 dev d0 nodad",
    ]
  ) await sh(cmd.split(" "));
}

/**
 * Waits until DAD has run its course on v0 (fd00:1::5 failed, the others valid, a temporary
 * address made), then takes fd00:1::5 off v1: only v0's failed copy is left.
 */
async function settled(): Promise<HostInterface[]> {
  const nl = openNetlink();
  try {
    for (let i = 0; i < 100; i++) {
      const v0 = (await hostInterfaces(nl)).find((i) => i.name === "v0")!;
      const has = (bit: number) => v0.addresses.some((a) => a.flags & bit);
      const pending = v0.addresses.some((a) =>
        (a.flags & (IFA_F.TENTATIVE | IFA_F.DADFAILED)) === IFA_F.TENTATIVE
      );
      if (has(IFA_F.DADFAILED) && has(IFA_F.TEMPORARY) && !pending) {
        await sh(["ip", "-6", "addr", "del", "fd00:1::5/64", "dev", "v1"]);
        return await hostInterfaces(nl);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("DAD did not settle on v0 within 10 s");
  } finally {
    nl.close();
  }
}

Deno.test({ name: "interface selection cases", ignore: !IN_NETNS }, async (t) => {
  await setUp();
  const ifaces = await settled();
  const nl = openNetlink();
  const base: SelectionOptions = {
    iface: [],
    ifaceRegex: [],
    publicIP: "",
    publicIPv6: "",
    defaultRoute: { 4: await defaultRouteIndex(nl, 4), 6: await defaultRouteIndex(nl, 6) },
    ipv4: true,
    ipv6: true,
  };
  const v6only = { ...base, ipv4: false };
  const select = (o: SelectionOptions) => selectExternalInterface(ifaces, o, silentLogger);
  const v0 = ifaces.find((i) => i.name === "v0")!;
  const temporary = (await sh(["ip", "-6", "-o", "addr", "show", "dev", "v0", "temporary"]))
    .stdout.match(/inet6 ([0-9a-f:]+)\//)![1];
  const linkLocal = v0.addresses.find((a) => a.ip.startsWith("fe80:"))!.ip;
  try {
    await t.step("candidates: permanent, dynamic, temporary, link-local; bad ones skipped", () => {
      assert.deepEqual(v0.ipv6, ["fd00:1::9", "fd00:4::1", "fd00:1::8", temporary, linkLocal]);
      assert.deepEqual(v0.ipv4, ["10.1.0.5"]);
    });
    await t.step("default routes (dual stack): v0 with its permanent IPv6 address", () => {
      const e = select(base);
      assert.equal(e.name, "v0");
      assert.equal(formatIP4(e.extAddr!), "10.1.0.5");
      assert.equal(formatIP6(e.extV6Addr!), "fd00:1::9");
    });
    await t.step("--iface by name and --iface-regex by IPv6 address", () => {
      assert.equal(formatIP6(select({ ...v6only, iface: ["v0"] }).extV6Addr!), "fd00:1::9");
      const e = select({ ...v6only, ifaceRegex: ["^fd00:1::[5-8]$"] });
      assert.equal(formatIP6(e.extV6Addr!), "fd00:1::8", "not the deprecated or failed one");
    });
    await t.step("--iface-can-reach an IPv6 destination: route lookup and its source", async () => {
      const canReach = await routeToward(nl, "fd00:3::99");
      const e = select({ ...v6only, canReach });
      assert.equal(e.name, "d0");
      assert.equal(formatIP6(e.extV6Addr!), "fd00:3::1");
    });
    await t.step("--iface naming a DAD-failed or missing address: one error with the fix", () => {
      assert.throws(
        () => select({ ...base, iface: ["fd00:1::5"] }),
        (err) =>
          err instanceof InterfaceNotFoundError &&
          err.message.includes("--iface=fd00:1::5: the address fd00:1::5 given by") &&
          err.message.includes("is dadfailed"),
      );
      assert.throws(
        () => select({ ...base, iface: ["fd00:1::99"] }),
        /--iface=fd00:1::99: no local interface has the address fd00:1::99/,
      );
    });
    await t.step("an interface with only a tentative IPv6 address under EnableIPv6", () => {
      assert.throws(
        () => select({ ...base, iface: ["v2"] }),
        (err) =>
          err instanceof InterfaceNotFoundError &&
          /--iface=v2: interface v2 has no usable IPv6 address \(fd00:2::1 is tentative/
            .test(err.message) &&
          err.message.includes('"EnableIPv6": false'),
      );
    });
  } finally {
    nl.close();
  }
});
