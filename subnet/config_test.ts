import assert from "node:assert/strict";
import { ConfigError, formatNetworkConfigSummary, parseNetworkConfig } from "./config.ts";
import { formatIP4, formatIP4Net, formatIP6, formatIP6Net, parseIP4, parseIP6 } from "./ip.ts";
import type { NetworkConfig } from "./mod.ts";
import { describeError } from "../util/log.ts";

/** The resolved IPv4/IPv6 ranges as text, for readable assertions. */
function ranges(c: NetworkConfig) {
  return {
    network: c.network && formatIP4Net(c.network),
    subnetLen: c.subnetLen,
    subnetMin: formatIP4(c.subnetMin),
    subnetMax: formatIP4(c.subnetMax),
    ipv6Network: c.ipv6Network && formatIP6Net(c.ipv6Network),
    ipv6SubnetLen: c.ipv6SubnetLen,
    ipv6SubnetMin: formatIP6(c.ipv6SubnetMin),
    ipv6SubnetMax: formatIP6(c.ipv6SubnetMax),
  };
}

function throwsConfigError(text: string, message: string | RegExp, validate = true) {
  assert.throws(() => parseNetworkConfig(text, { validate }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    if (typeof message === "string") {
      assert.ok(err.message.startsWith(message), `"${err.message}" should start with "${message}"`);
    } else assert.match(err.message, message);
    return true;
  });
}

Deno.test("parseNetworkConfig() applies flannel's defaults (TestConfigDefaults)", () => {
  const c = parseNetworkConfig('{ "network": "10.3.0.0/16" }');
  assert.deepEqual(ranges(c), {
    network: "10.3.0.0/16",
    subnetLen: 24,
    subnetMin: "10.3.1.0",
    subnetMax: "10.3.255.0",
    ipv6Network: undefined,
    ipv6SubnetLen: 0,
    ipv6SubnetMin: "::",
    ipv6SubnetMax: "::",
  });
  assert.equal(c.enableIPv4, true);
  assert.equal(c.enableIPv6, false);
  assert.equal(c.enableNFTables, false);
  assert.equal(c.backendType, "udp"); // flannel's code default; its docs say vxlan
  assert.deepEqual(c.backend, {});
});

Deno.test("parseNetworkConfig() applies IPv6 defaults (TestIPv6ConfigDefaults)", () => {
  const c = parseNetworkConfig(
    '{ "enableIPv6": true, "ipv6Network": "fc00::/48", "enableIPv4": false }',
  );
  assert.equal(c.enableIPv4, false);
  assert.equal(c.enableIPv6, true);
  assert.equal(c.network, undefined);
  assert.equal(formatIP6Net(c.ipv6Network!), "fc00::/48");
  assert.equal(c.ipv6SubnetLen, 64);
  assert.equal(formatIP6(c.ipv6SubnetMin), "fc00:0:0:1::");
  assert.equal(formatIP6(c.ipv6SubnetMax), "fc00:0:0:ffff::");
});

Deno.test("parseNetworkConfig() keeps explicit values (TestConfigOverrides)", async (t) => {
  await t.step("IPv4", () => {
    const c = parseNetworkConfig(
      '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }',
    );
    assert.equal(c.subnetLen, 28);
    assert.equal(c.subnetMin, parseIP4("10.3.5.0"));
    assert.equal(c.subnetMax, parseIP4("10.3.8.0"));
  });
  await t.step("IPv6 (TestIPv6ConfigOverrides)", () => {
    const c = parseNetworkConfig(
      '{ "Network": "10.3.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fc00:0:0:1::", "IPv6SubnetMax": "fc00:0:0:f::", "IPv6SubnetLen": 64 }',
    );
    assert.equal(c.enableIPv4, true);
    assert.equal(c.ipv6SubnetLen, 64);
    assert.equal(c.ipv6SubnetMin, parseIP6("fc00:0:0:1::"));
    assert.equal(c.ipv6SubnetMax, parseIP6("fc00:0:0:f::"));
    assert.equal(c.subnetLen, 24);
  });
});

Deno.test("parseNetworkConfig() derives SubnetLen and the range from the Network size", async (t) => {
  const cases: [string, number, string, string][] = [
    ["10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"],
    ["10.5.0.0/22", 24, "10.5.1.0", "10.5.3.0"],
    ["10.5.0.0/23", 25, "10.5.0.128", "10.5.1.128"],
    ["10.5.0.0/28", 30, "10.5.0.4", "10.5.0.12"],
    ["255.255.0.0/16", 24, "255.255.1.0", "255.255.255.0"],
    ["10.5.1.7/16", 24, "10.5.1.0", "10.5.255.0"], // host bits masked like net.ParseCIDR
  ];
  for (const [network, len, min, max] of cases) {
    await t.step(network, () => {
      const c = ranges(parseNetworkConfig(JSON.stringify({ Network: network })));
      assert.deepEqual([c.subnetLen, c.subnetMin, c.subnetMax], [len, min, max]);
    });
  }
  await t.step("IPv6 /63 splits into four", () => {
    const c = ranges(parseNetworkConfig(
      '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/63"}',
    ));
    assert.deepEqual([c.ipv6SubnetLen, c.ipv6SubnetMin, c.ipv6SubnetMax], [
      65,
      "fd00::8000:0:0:0", // RFC 5952: leftmost of two equal zero runs
      "fd00:0:0:1:8000::",
    ]);
  });
  await t.step("explicit 0.0.0.0 / :: count as unset", () => {
    const c = ranges(parseNetworkConfig(
      '{"Network":"10.1.0.0/16","SubnetMin":"0.0.0.0","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMax":"::"}',
    ));
    assert.equal(c.subnetMin, "10.1.1.0");
    assert.equal(c.ipv6SubnetMax, "fd00:0:0:ffff::");
  });
});

Deno.test("parseNetworkConfig() reports every validation error with flannel's text", async (t) => {
  const cases: [string, string][] = [
    ["{}", "please define a correct Network parameter in the flannel config"],
    ['{"Network":"0.0.0.0/0"}', "please define a correct Network parameter in the flannel config"],
    ['{"Network":"10.0.0.0/8","SubnetLen":31}', "SubnetLen must be less than /31"],
    [
      '{"Network":"10.0.0.0/16","SubnetLen":17}',
      "network must be able to accommodate at least four subnets",
    ],
    [
      '{"Network":"10.5.0.0/30"}',
      'network is too small. Minimum useful network prefix is /28 (Network "10.5.0.0/30"): use a /28 or larger Network',
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetMin":"10.6.0.0"}',
      "SubnetMin is not in the range of the Network",
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetMax":"10.4.0.0"}',
      "SubnetMax is not in the range of the Network",
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetMin":"10.5.1.1"}',
      "SubnetMin is not on a SubnetLen boundary: 10.5.1.1",
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetMax":"10.5.9.128"}',
      "SubnetMax is not on a SubnetLen boundary: 10.5.9.128",
    ],
    [
      '{"EnableIPv6":true,"Network":"10.5.0.0/16"}',
      "please define a correct IPv6Network parameter in the flannel config",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/64","IPv6SubnetLen":127}',
      "SubnetLen must be less than /127",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/64","IPv6SubnetLen":65}',
      "network must be able to accommodate at least four subnets",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/125"}',
      "IPv6Network is too small. Minimum useful network prefix is /124",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd01::"}',
      "IPv6SubnetMin is not in the range of the IPv6Network",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/48","IPv6SubnetMax":"fe00::"}',
      "IPv6SubnetMax is not in the range of the IPv6Network",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00::1"}',
      "IPv6SubnetMin is not on a SubnetLen boundary: fd00::1",
    ],
    [
      '{"EnableIPv6":true,"EnableIPv4":false,"IPv6Network":"fd00::/48","IPv6SubnetMax":"fd00:0:0:5:1::"}',
      "IPv6SubnetMax is not on a SubnetLen boundary: fd00:0:0:5:1::",
    ],
  ];
  for (const [text, message] of cases) {
    await t.step(message, () => {
      throwsConfigError(text, message);
      // Kubernetes mode does not validate.
      parseNetworkConfig(text, { validate: false });
    });
  }
  await t.step("Min > Max is not checked (as in flannel)", () => {
    const c = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.2.0"}',
    );
    assert.equal(formatIP4(c.subnetMin), "10.5.9.0");
  });
});

Deno.test("parseNetworkConfig() rejects malformed JSON, wrong types and bad addresses", async (t) => {
  const cases: [string, string | RegExp][] = [
    ["", "invalid network config JSON: "],
    ['{"Network": "10.5.0.0/16"', "invalid network config JSON: "],
    ["[1]", "invalid network config JSON: expected a JSON object, got array"],
    ['"x"', "invalid network config JSON: expected a JSON object, got string"],
    [
      '{"Network":"10.5.0.0/16","SubnetLen":"24"}',
      /SubnetLen must be a non-negative integer.*string "24"/,
    ],
    [
      '{"Network":"10.5.0.0/16","SubnetLen":-1}',
      /SubnetLen must be a non-negative integer.*number -1/,
    ],
    ['{"Network":"10.5.0.0/16","SubnetLen":24.0}', /SubnetLen must be a non-negative integer/],
    ['{"Network":"10.5.0.0/16","SubnetLen":2.4e1}', /SubnetLen must be a non-negative integer/],
    ['{"Network":"10.5.0.0/16","SubnetLen":18446744073709551616}', /SubnetLen must be/],
    ['{"Network":"10.5.0.0/16","ipv6subnetlen":true}', /ipv6subnetlen must be a non-negative/],
    [
      '{"Network":"10.5.0.0/16","EnableIPv6":"yes"}',
      /EnableIPv6 must be a JSON boolean.*string "yes"/,
    ],
    ['{"Network":"10.5.0.0/16","enableNFTables":1}', /enableNFTables must be a JSON boolean/],
    ['{"Network":null}', 'invalid IPv4 CIDR format: Network "null"'],
    ['{"Network":"fd00::/48"}', "invalid IPv4 CIDR format"],
    ['{"Network":"10.5.0.0"}', "invalid IPv4 CIDR format"],
    ['{"Network":"10.5.0.0/33"}', "invalid IPv4 CIDR format"],
    ['{"Network":16}', "invalid IPv4 CIDR format"],
    ['{"Network":"10.5.0.0\\/16"}', "invalid IPv4 CIDR format"], // Go parses the raw, escaped text
    ['{"IPv6Network":"10.0.0.0/8"}', "invalid IPv6 CIDR format"],
    ['{"Network":"10.5.0.0/16","SubnetMin":"10.5.0.0/24"}', "invalid IPv4 address format"],
    ['{"Network":"10.5.0.0/16","SubnetMax":null}', "invalid IPv4 address format"],
    ['{"IPv6SubnetMin":"fd00::/64"}', "invalid IP address format"],
    [
      '{"Network":"10.5.0.0/16","Backend":"vxlan"}',
      /^error decoding Backend property of config: Backend must be a JSON object, got string "vxlan"/,
    ],
    ['{"Network":"10.5.0.0/16","Backend":[]}', "error decoding Backend property of config"],
    [
      '{"Network":"10.5.0.0/16","Backend":{"type":5}}',
      /^error decoding Backend property of config: Backend.type must be a string/,
    ],
    [
      '{"Network":"10.5.0.0/16","EnableIPv4":false}',
      /^none defined stack: .*EnableIPv4 and EnableIPv6/,
    ],
    // A bad member fails even when a later duplicate is fine (Go reports the first error).
    ['{"Network":"10.5.0.0/16","SubnetLen":"x","SubnetLen":24}', /SubnetLen must be/],
  ];
  for (const [text, message] of cases) {
    await t.step(text || "(empty)", () => {
      throwsConfigError(text, message);
      throwsConfigError(text, message, false);
    });
  }
  await t.step("the JSON error is the cause", () => {
    try {
      parseNetworkConfig("{");
      assert.fail("no error");
    } catch (err) {
      assert.ok(err instanceof ConfigError && err.cause instanceof SyntaxError);
    }
  });
});

Deno.test("parseNetworkConfig() keeps errors short for huge and deeply nested values", async (t) => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const cases: [string, string, RegExp][] = [
    [
      "a 1 MB Network string",
      JSON.stringify({ Network: "1".repeat(1_000_000) }),
      /^invalid IPv4 CIDR format: Network "1{200}"… \(1000000 bytes\): expected an IPv4 CIDR such as "10\.244\.0\.0\/16"/,
    ],
    [
      "a 100 000-deep array as Network",
      `{"Network": ${deep}}`,
      /^invalid IPv4 CIDR format: Network "\[{200}"… \(200000 bytes\): expected an IPv4 CIDR/,
    ],
    [
      "a 100 000-deep array as SubnetLen",
      `{"Network": "10.5.0.0/16", "SubnetLen": ${deep}}`,
      /SubnetLen must be a non-negative integer \(a prefix length such as 24\), got array \[{200}… \(200000 bytes\)/,
    ],
    [
      "a 100 000-deep array as Backend",
      `{"Network": "10.5.0.0/16", "Backend": ${deep}}`,
      /Backend must be a JSON object, got array \[+… \(200000 bytes\): use e\.g\. \{"Type": "vxlan"\}/,
    ],
  ];
  for (const [name, text, want] of cases) {
    await t.step(name, () => {
      let err: unknown;
      try {
        parseNetworkConfig(text);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof ConfigError, String(err));
      const shown = describeError(err); // what the log line carries, causes included
      assert.ok(shown.length < 500, `${shown.length} characters: ${shown.slice(0, 600)}`);
      assert.match(shown, want);
    });
  }
});

Deno.test("parseNetworkConfig() matches keys case-insensitively, last duplicate wins", async (t) => {
  await t.step("mixed case everywhere", () => {
    const c = parseNetworkConfig(
      '{"NETWORK":"10.7.0.0/16","subnetlen":26,"sUbNeTmIn":"10.7.0.64","enableipv6":true,"ipV6NetWork":"fd00::/56","BACKEND":{"TYPE":"VXLAN","vni":4}}',
    );
    const r = ranges(c);
    assert.deepEqual([r.network, r.subnetLen, r.subnetMin, r.subnetMax], [
      "10.7.0.0/16",
      26,
      "10.7.0.64",
      "10.7.255.192",
    ]);
    assert.equal(r.ipv6Network, "fd00::/56");
    assert.equal(c.backendType, "vxlan");
    assert.deepEqual(c.backend, { TYPE: "VXLAN", vni: 4 });
  });
  await t.step("last duplicate wins across spellings", () => {
    const c = parseNetworkConfig(
      '{"Network":"10.1.0.0/16","network":"10.2.0.0/16","Backend":{"Type":"udp","type":"host-gw"}}',
    );
    assert.equal(formatIP4Net(c.network!), "10.2.0.0/16");
    assert.equal(c.backendType, "host-gw");
  });
  await t.step("Go's Unicode folding: ſ and the Kelvin sign", () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/16","\u017fubnetLen":20,"Bac\u212aend":{}}');
    assert.equal(c.subnetLen, 20);
    assert.equal(c.backendType, "");
  });
  await t.step("nulls leave defaults; IPv6 pointers reset", () => {
    const c = parseNetworkConfig(
      '{"Network":"10.1.0.0/16","EnableIPv4":null,"SubnetLen":null,"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00:0:0:2::","IPv6SubnetMin":null}',
    );
    assert.equal(c.enableIPv4, true);
    assert.equal(c.subnetLen, 24);
    assert.equal(formatIP6(c.ipv6SubnetMin), "fd00:0:0:1::");
  });
  await t.step("unknown keys are ignored", () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/16","Foo":[1,{"x":null}],"Networks":5}');
    assert.equal(c.subnetLen, 24);
  });
});

Deno.test("parseNetworkConfig() resolves the backend type as flannel does", async (t) => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['{"Network":"10.1.0.0/16"}', "udp", {}],
    ['{"Network":"10.1.0.0/16","Backend":null}', "", {}],
    ['{"Network":"10.1.0.0/16","Backend":{}}', "", {}],
    ['{"Network":"10.1.0.0/16","Backend":{"Type":null}}', "", { Type: null }],
    ['{"Network":"10.1.0.0/16","Backend":{"Type":"Host-GW","Port":1}}', "host-gw", {
      Type: "Host-GW",
      Port: 1,
    }],
  ];
  for (const [text, type, backend] of cases) {
    await t.step(text, () => {
      const c = parseNetworkConfig(text);
      assert.equal(c.backendType, type);
      assert.deepEqual(c.backend, backend);
    });
  }
});

Deno.test("parseNetworkConfig() accepts the reference fixtures (flannel test fixtures)", async (t) => {
  const cases: [string, string][] = [
    [
      '{ "Network": "10.5.0.0/16", "Backend": {"Type": "vxlan"}}',
      "Network=10.5.0.0/16 SubnetLen=24 SubnetMin=10.5.1.0 SubnetMax=10.5.255.0 Backend=vxlan",
    ],
    [
      '{\n\t"Network": "10.0.0.0/8",\n\t"SubnetLen": 20,\n\t"SubnetMin": "10.10.0.0",\n\t"SubnetMax": "10.99.0.0",\n\t"Backend": {\n\t\t"Type": "udp",\n\t\t"Port": 7890\n\t}\n}',
      "Network=10.0.0.0/8 SubnetLen=20 SubnetMin=10.10.0.0 SubnetMax=10.99.0.0 Backend=udp",
    ],
    [
      '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }',
      "Network=10.3.0.0/16 SubnetLen=24 SubnetMin=10.3.1.0 SubnetMax=10.3.25.0 Backend=udp",
    ],
    [
      '{ "Network": "10.1.0.0/16", "Backend": { "Type": "host-gw" } }',
      "Network=10.1.0.0/16 SubnetLen=24 SubnetMin=10.1.1.0 SubnetMax=10.1.255.0 Backend=host-gw",
    ],
    [
      '{"Network": "10.11.0.0/16", "Backend": {"Type": "vxlan"}}',
      "Network=10.11.0.0/16 SubnetLen=24 SubnetMin=10.11.1.0 SubnetMax=10.11.255.0 Backend=vxlan",
    ],
    [
      '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
      "Network=10.0.0.0/8 SubnetLen=24 SubnetMin=10.0.1.0 SubnetMax=10.255.255.0 Backend=vxlan",
    ],
    [
      '{"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}',
      "", // IPv4 stays enabled without a Network: flannel rejects this in etcd mode
    ],
    [
      '{\n  "Network": "10.244.0.0/16",\n  "EnableNFTables": false,\n  "Backend": {\n    "Type": "vxlan"\n  }\n}',
      "Network=10.244.0.0/16 SubnetLen=24 SubnetMin=10.244.1.0 SubnetMax=10.244.255.0 Backend=vxlan",
    ],
    [
      '{ "Network": "10.42.0.0/16", "IPv6Network": "fd00:10:244::/56", "EnableIPv6": true, "Backend": { "Type": "vxlan" }, "EnableNFTables": false }',
      "Network=10.42.0.0/16 SubnetLen=24 SubnetMin=10.42.1.0 SubnetMax=10.42.255.0 IPv6Network=fd00:10:244::/56 IPv6SubnetLen=64 IPv6SubnetMin=fd00:10:244:1:: IPv6SubnetMax=fd00:10:244:ff:: Backend=vxlan",
    ],
  ];
  for (const [text, summary] of cases) {
    await t.step(text, () => {
      if (summary === "") {
        throwsConfigError(text, "please define a correct Network parameter");
        const c = parseNetworkConfig(text, { validate: false });
        assert.equal(c.ipv6SubnetLen, 64);
        return;
      }
      assert.equal(formatNetworkConfigSummary(parseNetworkConfig(text)), summary);
    });
  }
});

Deno.test("parseNetworkConfig({ validate: false }) parses and defaults without checking", async (t) => {
  await t.step("kube net-conf.json gets the cheap defaults", () => {
    const c = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}', {
      validate: false,
    });
    assert.deepEqual([c.subnetLen, formatIP4(c.subnetMin)], [24, "10.244.1.0"]);
  });
  await t.step("a too-small Network is kept, nothing defaulted", () => {
    const c = parseNetworkConfig('{"Network":"10.5.0.0/30"}', { validate: false });
    assert.equal(formatIP4Net(c.network!), "10.5.0.0/30");
    assert.deepEqual([c.subnetLen, c.subnetMin, c.subnetMax], [0, 0, 0]);
  });
  await t.step("no Network at all", () => {
    const c = parseNetworkConfig("{}", { validate: false });
    assert.equal(c.network, undefined);
    assert.equal(c.backendType, "udp");
  });
  await t.step("JSON null is an empty config, as in Go", () => {
    throwsConfigError("null", "please define a correct Network parameter");
    assert.equal(parseNetworkConfig("null", { validate: false }).enableIPv4, true);
  });
});

Deno.test("formatNetworkConfigSummary() describes IPv6-only, nftables and empty backends", () => {
  const c = parseNetworkConfig(
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","EnableNFTables":true,"Backend":{}}',
  );
  assert.equal(
    formatNetworkConfigSummary(c),
    'EnableIPv4=false IPv6Network=fc00::/48 IPv6SubnetLen=64 IPv6SubnetMin=fc00:0:0:1:: IPv6SubnetMax=fc00:0:0:ffff:: EnableNFTables=true Backend=""',
  );
});

Deno.test("parseNetworkConfig() only ever throws ConfigError on random input", () => {
  let seed = 20240814;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const keys = [
    "Network",
    "network",
    "IPv6Network",
    "EnableIPv4",
    "EnableIPv6",
    "EnableNFTables",
    "SubnetLen",
    "IPv6SubnetLen",
    "SubnetMin",
    "SubnetMax",
    "IPv6SubnetMin",
    "IPv6SubnetMax",
    "Backend",
    "Other",
  ];
  const values = [
    '"10.5.0.0/16"',
    '"10.5.0.0/29"',
    '"0.0.0.0/0"',
    '"10.5.3.0"',
    '"10.5.3.7"',
    '"fc00::/48"',
    '"fc00::/126"',
    '"fc00:0:0:3::"',
    '"fc00::1"',
    '"::"',
    "true",
    "false",
    "null",
    "0",
    "24",
    "31",
    "64",
    "127",
    "-1",
    "1e2",
    "99999999999999999999999",
    '{"Type":"vxlan"}',
    '{"type":7}',
    "[]",
    '"x"',
    "{}",
  ];
  const seeds = [
    '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
    '{"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}',
  ];
  const alphabet = '{}[]":,.0123456789/-abcfnrtuelsxINS \\';
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    let text: string;
    if (i % 2 === 0) {
      const members = Array.from(
        { length: Math.floor(rand() * 6) },
        () => `"${pick(keys)}":${pick(values)}`,
      );
      text = `{${members.join(",")}}`;
    } else {
      const chars = [...pick(seeds)];
      for (let n = Math.floor(rand() * 3); n >= 0; n--) {
        const at = Math.floor(rand() * chars.length);
        const op = rand();
        if (op < 0.4) chars.splice(at, 1, pick([...alphabet]));
        else if (op < 0.7) chars.splice(at, 0, pick([...alphabet]));
        else chars.splice(at, 1);
      }
      text = chars.join("");
    }
    for (const validate of [true, false]) {
      try {
        const c = parseNetworkConfig(text, { validate });
        if (validate) {
          accepted++;
          // Every accepted config is internally consistent.
          if (c.enableIPv4) {
            assert.ok(c.network && c.subnetLen >= c.network.prefix + 2 && c.subnetLen <= 30);
          }
          if (c.enableIPv6) assert.ok(c.ipv6Network && c.ipv6SubnetLen <= 126);
        }
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }
  }
  assert.ok(accepted > 100, `only ${accepted} random configs accepted`);
});
