import assert from "node:assert/strict";
import { join } from "node:path";
import { recordingLogger } from "../test/recording_logger.ts";
import { formatIP4Net, formatIP6Net, parseIP4Net, parseIP6Net } from "./ip.ts";
import type { Lease, NetworkConfig } from "./mod.ts";
import {
  formatSubnetEnv,
  parseDotenv,
  readPreviousSubnets,
  writeSubnetFile,
} from "./subnet_env.ts";

function config(network?: string, ipv6Network?: string): NetworkConfig {
  return {
    enableIPv4: network !== undefined,
    enableIPv6: ipv6Network !== undefined,
    enableNFTables: false,
    network: network === undefined ? undefined : parseIP4Net(network),
    subnetLen: 24,
    subnetMin: 0,
    subnetMax: 0,
    ipv6Network: ipv6Network === undefined ? undefined : parseIP6Net(ipv6Network),
    ipv6SubnetLen: 64,
    ipv6SubnetMin: 0n,
    ipv6SubnetMax: 0n,
    backendType: "vxlan",
    backend: {},
  };
}

function lease(subnet: string, ipv6Subnet?: string): Lease {
  return {
    enableIPv4: true,
    enableIPv6: ipv6Subnet !== undefined,
    subnet: parseIP4Net(subnet),
    ipv6Subnet: ipv6Subnet === undefined ? undefined : parseIP6Net(ipv6Subnet),
    attrs: { publicIP: 0 },
  };
}

Deno.test("formatSubnetEnv() matches flannel's examples byte for byte", async (t) => {
  const cases: [string, string, NetworkConfig, Lease, number, boolean][] = [
    [
      "dist/sample_subnet.env",
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\n" +
      "FLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n",
      config("10.1.0.0/16"),
      lease("10.1.74.0/24"),
      1472,
      false,
    ],
    [
      "typical vxlan",
      "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\n" +
      "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
      config("10.5.0.0/16"),
      lease("10.5.72.0/24"),
      1450,
      false,
    ],
    [
      "dual stack",
      "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\n" +
      "FLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\n" +
      "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
      config("10.42.0.0/16", "2001:cafe:42:0::/56"),
      lease("10.42.0.0/24", "2001:CAFE:0042:0000::/64"),
      1450,
      true,
    ],
  ];
  for (const [name, want, cfg, l, mtu, masq] of cases) {
    await t.step(name, () => assert.equal(formatSubnetEnv(cfg, l, mtu, masq), want));
  }
});

Deno.test("formatSubnetEnv() writes only the enabled families", async (t) => {
  await t.step("IPv6 only", () => {
    const cfg = { ...config(undefined, "fd00:10::/48") };
    const l = { ...lease("0.0.0.0/0", "fd00:10:0:2a00::/56") };
    assert.equal(
      formatSubnetEnv(cfg, l, 1430, false),
      "FLANNEL_IPV6_NETWORK=fd00:10::/48\nFLANNEL_IPV6_SUBNET=fd00:10:0:2a00::1/56\n" +
        "FLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
    );
  });
  await t.step("IPv6 enabled but the lease has no IPv6 subnet", () => {
    assert.equal(
      formatSubnetEnv(config("10.1.0.0/16", "fd00::/48"), lease("10.1.2.0/24"), 1500, true),
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.2.1/24\n" +
        "FLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n",
    );
  });
  await t.step("the first usable address crosses an octet", () => {
    assert.match(
      formatSubnetEnv(config("10.0.0.0/8"), lease("10.3.255.0/24"), 1450, false),
      /^FLANNEL_SUBNET=10\.3\.255\.1\/24$/m,
    );
  });
});

Deno.test("formatSubnetEnv() rejects an IPv4 config without a network", () => {
  const cfg = { ...config("10.1.0.0/16"), network: undefined };
  assert.throws(() => formatSubnetEnv(cfg, lease("10.1.2.0/24"), 1450, false), /no Network/);
});

Deno.test("writeSubnetFile() writes the content as is, mode 0644", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "run", "flannel", "subnet.env");
    const content = formatSubnetEnv(config("10.1.0.0/16"), lease("10.1.74.0/24"), 1472, false);
    await writeSubnetFile(path, content);
    assert.equal(await Deno.readTextFile(path), content);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseDotenv() tolerates what godotenv tolerates", async (t) => {
  const cases: [string, string, Record<string, string>][] = [
    ["plain", "A=1\nB=two\n", { A: "1", B: "two" }],
    ["CRLF and blank lines", "A=1\r\n\r\nB=2\r\n", { A: "1", B: "2" }],
    ["comments", "# header\nA=1 # trailing\n  # indented\nB=x#y\n", { A: "1", B: "x#y" }],
    ["export prefix", "export A=1\nexport  B=2\n", { A: "1", B: "2" }],
    ["single quotes are literal", "A='x\\ny # z'\n", { A: "x\\ny # z" }],
    ["double quotes unescape", 'A="x\\ny \\"q\\" # z" # c\n', { A: 'x\ny "q" # z' }],
    ["multi-line quoted value", 'A="l1\nl2"\nB=3\n', { A: "l1\nl2", B: "3" }],
    ["spaces and colon separator", "  A = 1  \nB: 2\n", { A: "1", B: "2" }],
    ["empty value", "A=\nB=''\n", { A: "", B: "" }],
    ["later key wins", "A=1\nA=2\n", { A: "2" }],
    ["no trailing newline", "A=1", { A: "1" }],
    ["garbage lines skipped", "not a pair\nA=1\n", { A: "1" }],
  ];
  for (const [name, text, want] of cases) {
    await t.step(name, () => assert.deepEqual(Object.fromEntries(parseDotenv(text)), want));
  }
});

async function withSubnetFile<T>(
  contents: string | undefined,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "subnet.env");
    if (contents !== undefined) await Deno.writeTextFile(path, contents, { mode: 0o600 });
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function show(r: Awaited<ReturnType<typeof readPreviousSubnets>>): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.subnet) out.subnet = formatIP4Net(r.subnet);
  if (r.network) out.network = formatIP4Net(r.network);
  if (r.ipv6Subnet) out.ipv6Subnet = formatIP6Net(r.ipv6Subnet);
  if (r.ipv6Network) out.ipv6Network = formatIP6Net(r.ipv6Network);
  return out;
}

Deno.test("readPreviousSubnets() reads back what formatSubnetEnv() wrote, masked", async () => {
  const text = formatSubnetEnv(
    config("10.42.0.0/16", "2001:cafe:42::/56"),
    lease("10.42.7.0/24", "2001:cafe:42:7::/64"),
    1450,
    true,
  );
  const log = recordingLogger(0);
  const got = await withSubnetFile(text, (p) => readPreviousSubnets(p, log));
  assert.deepEqual(show(got), {
    subnet: "10.42.7.0/24",
    network: "10.42.0.0/16",
    ipv6Subnet: "2001:cafe:42:7::/64",
    ipv6Network: "2001:cafe:42::/56",
  });
  assert.deepEqual(log.lines, []);
});

Deno.test("readPreviousSubnets() follows flannel's main_test.go cases", async (t) => {
  await t.step("several valid IPv4 entries among an invalid one → none", async () => {
    const log = recordingLogger(0);
    const [got, path] = await withSubnetFile(
      "FLANNEL_SUBNET=10.244.1.0/24,not-a-cidr,10.244.2.0/24\n",
      async (p) => [await readPreviousSubnets(p, log), p] as const,
    );
    assert.equal(got.subnet, undefined);
    assert.deepEqual(log.lines.slice(0, 2), [
      `E Couldn't parse previous FLANNEL_SUBNET from subnet file at ${path}: ` +
      "invalid CIDR address: not-a-cidr",
      `E error reading subnet: more than 1 entry found for key: FLANNEL_SUBNET in file ${path}: `,
    ]);
  });
  await t.step("several valid IPv6 entries among an invalid one → none", async () => {
    const log = recordingLogger(0);
    const got = await withSubnetFile(
      "FLANNEL_IPV6_SUBNET=fd00::/64,not-a-cidr,fd01::/64\n",
      (p) => readPreviousSubnets(p, log),
    );
    assert.equal(got.ipv6Subnet, undefined);
    assert.ok(
      log.lines.some((l) =>
        /^E Couldn't parse previous FLANNEL_IPV6_SUBNET .*: invalid CIDR address: not-a-cidr$/.test(
          l,
        )
      ),
    );
    assert.ok(
      log.lines.some((l) =>
        /^E error reading subnet: more than 1 entry found for key: FLANNEL_IPV6_SUBNET /.test(l)
      ),
    );
  });
  await t.step("only an invalid IPv4 entry → none, with a warning", async () => {
    const log = recordingLogger(0);
    const got = await withSubnetFile(
      "FLANNEL_SUBNET=not-a-cidr\n",
      (p) => readPreviousSubnets(p, log),
    );
    assert.equal(got.subnet, undefined);
    assert.match(log.lines[0], /^E Couldn't parse previous FLANNEL_SUBNET .*: not-a-cidr$/);
    assert.match(
      log.lines[1],
      /^W no subnet found for key: FLANNEL_SUBNET in file: \/.*subnet\.env$/,
    );
  });
  await t.step("only an invalid IPv6 entry → none", async () => {
    const log = recordingLogger(0);
    const got = await withSubnetFile(
      "FLANNEL_IPV6_SUBNET=not-a-cidr\n",
      (p) => readPreviousSubnets(p, log),
    );
    assert.equal(got.ipv6Subnet, undefined);
    assert.ok(
      log.lines.some((l) => l.startsWith("W no subnet found for key: FLANNEL_IPV6_SUBNET")),
    );
  });
  await t.step("one valid entry among invalid ones → used, masked", async () => {
    const log = recordingLogger(0);
    const got = await withSubnetFile(
      "FLANNEL_SUBNET=bogus,10.244.1.7/24,fd00::/64\nFLANNEL_IPV6_SUBNET='fd00::1/64'\n",
      (p) => readPreviousSubnets(p, log),
    );
    assert.equal(show(got).subnet, "10.244.1.0/24");
    assert.equal(show(got).ipv6Subnet, "fd00::/64");
    assert.equal(
      log.lines.filter((l) => l.includes("Couldn't parse previous FLANNEL_SUBNET")).length,
      2,
    );
  });
});

Deno.test("readPreviousSubnets() reads a hand-edited dotenv file", async () => {
  const text = '# written by hand\r\nexport FLANNEL_SUBNET="10.5.72.1/24"\r\n' +
    "FLANNEL_NETWORK='10.5.0.0/16' # pod network\r\n\r\nFLANNEL_MTU=1450\r\n";
  const got = await withSubnetFile(text, (p) => readPreviousSubnets(p, recordingLogger(0)));
  assert.deepEqual(show(got), { subnet: "10.5.72.0/24", network: "10.5.0.0/16" });
});

Deno.test("readPreviousSubnets() returns nothing for a missing file", async () => {
  const log = recordingLogger(0);
  const got = await withSubnetFile(undefined, (p) => readPreviousSubnets(p, log));
  assert.deepEqual(show(got), {});
  assert.equal(log.lines.length, 4);
  assert.ok(log.lines.every((l) => l.startsWith("W no subnet found for key: FLANNEL_")));
});

Deno.test("readPreviousSubnets() logs and returns nothing when the file is unreadable", async () => {
  const log = recordingLogger(0);
  // A directory where the file should be: reading fails with something other than NotFound.
  const got = await withSubnetFile(undefined, async (p) => {
    await Deno.mkdir(p);
    return await readPreviousSubnets(p, log);
  });
  assert.deepEqual(show(got), {});
  assert.match(log.lines[0], /^E Couldn't fetch previous FLANNEL_SUBNET from subnet file at /);
});
