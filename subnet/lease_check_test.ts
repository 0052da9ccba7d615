import assert from "node:assert/strict";
import { parseNetworkConfig } from "./config.ts";
import { parseIP4, parseIP4Net, parseIP6, parseIP6Net } from "./ip.ts";
import { peerLeaseProblem, publicIPProblem, publicIPv6Problem } from "./lease_check.ts";
import type { Lease } from "./mod.ts";

/** `undefined`: the address is usable; a RegExp: what the refusal says. */
function assertProblem(got: string | undefined, want: RegExp | undefined): void {
  if (want) assert.match(got ?? "", want);
  else assert.equal(got, undefined);
}

Deno.test("publicIPProblem() and publicIPv6Problem() refuse what cannot be a peer's unicast address", async (t) => {
  const cases: [string, RegExp | undefined][] = [
    ["192.168.1.1", undefined],
    ["10.0.0.1", undefined],
    ["203.0.113.5", undefined], // documentation range: test clusters use it
    ["169.254.10.1", undefined], // link-local: dubious, accepted (see lease_check.ts)
    ["100.64.0.1", undefined],
    ["0.0.0.0", /unset/],
    ["0.1.2.3", /0\.0\.0\.0\/8/],
    ["127.0.0.1", /loopback/],
    ["127.255.0.9", /loopback/],
    ["224.0.0.1", /multicast/],
    ["239.255.255.255", /multicast/],
    ["240.0.0.1", /reserved/],
    ["254.1.1.1", /reserved/],
    ["255.255.255.255", /broadcast/],
    ["fd00::11", undefined],
    ["2001:db8::1", undefined],
    ["fe80::1", undefined],
    ["::", /unset/],
    ["::1", /loopback/],
    ["ff02::1", /multicast/],
    ["::ffff:192.168.1.1", /IPv4-mapped/],
  ];
  for (const [text, want] of cases) {
    await t.step(text, () => {
      const v6 = text.includes(":");
      assertProblem(v6 ? publicIPv6Problem(parseIP6(text)) : publicIPProblem(parseIP4(text)), want);
    });
  }
});

Deno.test("peerLeaseProblem() checks the IPv6 half of a dual-stack lease", async (t) => {
  const config = parseNetworkConfig(
    '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"host-gw"}}',
  );
  const dual = (v6: string, ip6?: string): Lease => ({
    enableIPv4: true,
    enableIPv6: true,
    subnet: parseIP4Net("10.5.2.0/24"),
    ipv6Subnet: parseIP6Net(v6),
    attrs: {
      publicIP: parseIP4("192.168.1.12"),
      ...(ip6 && { publicIPv6: parseIP6(ip6) }),
      backendType: "host-gw",
    },
  });
  const mine = dual("fd00:5:0:1::/64", "fd01::10");
  const own = {
    ...mine,
    subnet: parseIP4Net("10.5.1.0/24"),
    attrs: { ...mine.attrs, publicIP: parseIP4("192.168.1.10") },
  };
  const rules = { config, own, backendTypes: ["host-gw"] as [string] };
  const cases: [string, Lease, RegExp | undefined][] = [
    ["good", dual("fd00:5:0:2::/64", "fd01::12"), undefined],
    ["no PublicIPv6", dual("fd00:5:0:2::/64"), /PublicIPv6 is missing/],
    ["PublicIPv6 ::1", dual("fd00:5:0:2::/64", "::1"), /PublicIPv6 ::1 is the loopback/],
    ["outside", dual("fd00:6::/64", "fd01::12"), /outside the IPv6Network fd00:5::\/56/],
    ["overlapping ours", dual("fd00:5::/60", "fd01::12"), /overlaps our own subnet/],
    [
      "host bits (as an etcd key can carry them)",
      {
        ...dual("fd00:5:0:2::/64", "fd01::12"),
        ipv6Subnet: { ip: parseIP6("fd00:5:0:2::1"), prefix: 64 },
      },
      /host bits set/,
    ],
    ["PublicIPv6 ours", dual("fd00:5:0:2::/64", "fd01::10"), /own address/],
    ["PublicIPv6 in its subnet", dual("fd00:5:0:2::/64", "fd00:5:0:2::9"), /inside the subnet/],
    [
      "PublicIPv6 elsewhere in the IPv6Network",
      dual("fd00:5:0:2::/64", "fd00:5:0:9::9"),
      undefined,
    ],
  ];
  for (const [name, lease, want] of cases) {
    await t.step(name, () => assertProblem(peerLeaseProblem(lease, rules), want));
  }
  await t.step("IPv4-only networks ignore the IPv6 half", () => {
    const v4 = parseNetworkConfig('{"Network":"10.5.0.0/16"}');
    assert.equal(peerLeaseProblem(dual("fd00:6::/64", "::1"), { ...rules, config: v4 }), undefined);
  });
});

Deno.test("peerLeaseProblem() accepts a PublicIP elsewhere in a Network that covers the hosts", () => {
  const config = parseNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"host-gw"}}');
  const lease = (subnet: string, ip: string): Lease => ({
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4(ip), backendType: "host-gw" },
  });
  const rules = {
    config,
    own: lease("10.1.1.0/24", "10.199.0.1"),
    backendTypes: ["host-gw"] as [string],
  };
  assert.equal(peerLeaseProblem(lease("10.1.2.0/24", "10.199.0.2"), rules), undefined);
  assert.match(
    peerLeaseProblem(lease("10.1.2.0/24", "10.1.2.1"), rules)!,
    /the subnet it announces/,
  );
});
