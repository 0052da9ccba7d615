import assert from "node:assert/strict";
import {
  compatible4,
  freeSubnets4,
  leaseCompatible,
  MAX_CANDIDATES,
  OutOfSubnetsError,
  pickFreeSubnet,
} from "./allocate.ts";
import { parseIP4, parseIP4Net, parseIP6, parseIP6Net } from "./ip.ts";
import type { Lease, NetworkConfig } from "./mod.ts";

function config(over: Partial<NetworkConfig> = {}): NetworkConfig {
  return {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    network: parseIP4Net("10.3.0.0/16"),
    subnetLen: 24,
    subnetMin: parseIP4("10.3.1.0"),
    subnetMax: parseIP4("10.3.25.0"),
    ipv6SubnetLen: 0,
    ipv6SubnetMin: 0n,
    ipv6SubnetMax: 0n,
    backendType: "udp",
    backend: {},
    ...over,
  };
}

function lease(subnet: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseIP4Net(subnet),
    attrs: { publicIP: parseIP4("1.2.3.4") },
  };
}

Deno.test("compatible4() accepts only subnets of the right size inside [SubnetMin, SubnetMax]", async (t) => {
  const c = config();
  for (
    const [subnet, ok] of [
      ["10.3.1.0/24", true],
      ["10.3.25.0/24", true],
      ["10.3.26.0/24", false],
      ["10.3.0.0/24", false],
      ["10.3.6.0/25", false],
      ["10.4.1.0/24", false],
    ] as const
  ) {
    await t.step(`${subnet} → ${ok}`, () => assert.equal(compatible4(c, parseIP4Net(subnet)), ok));
  }
});

Deno.test("leaseCompatible() requires no IPv6 subnet when IPv6 is disabled", () => {
  const l = { ...lease("10.3.2.0/24"), ipv6Subnet: parseIP6Net("fc00:0:0:1::/64") };
  assert.equal(leaseCompatible(config(), l), false);
  const c6 = config({
    enableIPv6: true,
    ipv6Network: parseIP6Net("fc00::/48"),
    ipv6SubnetLen: 64,
    ipv6SubnetMin: parseIP6("fc00:0:0:1::"),
    ipv6SubnetMax: parseIP6("fc00:0:0:ffff::"),
  });
  assert.equal(leaseCompatible(c6, l), true);
});

Deno.test("freeSubnets4() skips leased and overlapping subnets", () => {
  const free = freeSubnets4(config(), [lease("10.3.1.0/24"), lease("10.3.4.0/23")]);
  const ips = free.map((s) => s.ip);
  assert.ok(!ips.includes(parseIP4("10.3.1.0")));
  assert.ok(!ips.includes(parseIP4("10.3.4.0")));
  assert.ok(!ips.includes(parseIP4("10.3.5.0")));
  assert.equal(free.length, 25 - 3);
  assert.equal(free[0].ip, parseIP4("10.3.2.0"));
});

Deno.test("freeSubnets4() collects at most 100 candidates", () => {
  const c = config({
    network: parseIP4Net("10.0.0.0/8"),
    subnetMin: parseIP4("10.0.1.0"),
    subnetMax: parseIP4("10.255.255.0"),
  });
  assert.equal(freeSubnets4(c, []).length, MAX_CANDIDATES);
});

Deno.test("freeSubnets4() stays fast with 5 000 leases", () => {
  const c = config({
    network: parseIP4Net("10.0.0.0/8"),
    subnetMin: parseIP4("10.0.1.0"),
    subnetMax: parseIP4("10.255.255.0"),
  });
  const leases = Array.from({ length: 5000 }, (_, i) => lease(`10.${i >> 8}.${i & 255}.0/24`));
  const free = freeSubnets4(c, leases);
  assert.equal(free.length, MAX_CANDIDATES);
  assert.equal(free[0].ip, parseIP4(`10.${5000 >> 8}.${5000 & 255}.0`));
});

Deno.test("pickFreeSubnet() picks among the free candidates with the injected random", () => {
  const c = config();
  const pick = (random: () => number) => pickFreeSubnet(c, [], { leasesAt: "/n/subnets", random });
  assert.equal(pick(() => 0).subnet.ip, parseIP4("10.3.1.0"));
  assert.equal(pick(() => 0.9999).subnet.ip, parseIP4("10.3.25.0"));
});

Deno.test("pickFreeSubnet() throws OutOfSubnetsError naming where the leases are", () => {
  const c = config({ subnetMax: parseIP4("10.3.2.0") });
  const leases = [lease("10.3.1.0/24"), lease("10.3.2.0/24")];
  assert.throws(
    () => pickFreeSubnet(c, leases, { leasesAt: "/vxlan/network/subnets" }),
    (err) =>
      err instanceof OutOfSubnetsError &&
      /^out of subnets: every \/24 .* under \/vxlan\/network\/subnets or widen/.test(err.message),
  );
});
