import assert from "node:assert/strict";
import { parseIP4, parseIP6 } from "./ip.ts";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "./lease_attrs.ts";

Deno.test("encodeLeaseAttrs() writes flannel's bytes", async (t) => {
  const cases: [string, Parameters<typeof encodeLeaseAttrs>[0], string][] = [
    [
      "registry_test.go",
      { publicIP: parseIP4("1.2.3.4") },
      '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
    ],
    [
      "reservations.md vxlan",
      {
        publicIP: parseIP4("192.168.64.3"),
        backendType: "vxlan",
        backendData: '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}',
      },
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    ],
    [
      "dual-stack vxlan",
      {
        publicIP: parseIP4("192.168.1.11"),
        publicIPv6: parseIP6("fd00::11"),
        backendType: "vxlan",
        backendData: '{"VNI":1,"VtepMAC":"aa:00:00:00:00:01"}',
        backendV6Data: '{"VNI":1,"VtepMAC":"bb:00:00:00:00:01"}',
      },
      '{"PublicIP":"192.168.1.11","PublicIPv6":"fd00::11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:00:00:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"bb:00:00:00:00:01"}}',
    ],
    [
      "host-gw",
      { publicIP: parseIP4("192.168.1.11"), backendType: "host-gw" },
      '{"PublicIP":"192.168.1.11","PublicIPv6":null,"BackendType":"host-gw"}',
    ],
    [
      "udp: empty strings omitted",
      { publicIP: parseIP4("192.168.1.11"), backendType: "", backendData: "" },
      '{"PublicIP":"192.168.1.11","PublicIPv6":null}',
    ],
    ["unset PublicIP", { publicIP: 0 }, '{"PublicIP":"0.0.0.0","PublicIPv6":null}'],
    [
      "backend data compacted and HTML-escaped, IPv6 canonical",
      {
        publicIP: parseIP4("10.0.0.1"),
        publicIPv6: parseIP6("FD00:0:0::0011"),
        backendType: "x<y>&",
        backendData: '{ "b" : [ 1 , 2.50 ],\n "a":"<&>" }',
      },
      '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::11","BackendType":"x\\u003cy\\u003e\\u0026","BackendData":{"b":[1,2.50],"a":"\\u003c\\u0026\\u003e"}}',
    ],
  ];
  for (const [name, attrs, want] of cases) {
    await t.step(name, () => assert.equal(encodeLeaseAttrs(attrs), want));
  }
  await t.step("invalid backend data throws SyntaxError", () => {
    assert.throws(() => encodeLeaseAttrs({ publicIP: 1, backendData: "{oops" }), SyntaxError);
  });
});

Deno.test("decodeLeaseAttrs() then encodeLeaseAttrs() reproduces flannel's values byte for byte", async (t) => {
  const golden = [
    '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    '{"PublicIP":"192.168.1.11","PublicIPv6":"fd00::11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}',
    '{"PublicIP":"192.168.1.11","PublicIPv6":null,"BackendType":"host-gw"}',
    '{"PublicIP":"192.168.1.11","PublicIPv6":null,"BackendData":null}',
    '{"PublicIP":"192.168.1.11","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"a+b/c=","Note":"\\u003c\\u2028"}}',
  ];
  for (const text of golden) {
    await t.step(text, () => assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(text)), text));
  }
});

Deno.test("decodeLeaseAttrs() reads values as Go's encoding/json does", async (t) => {
  await t.step("reservations.md vxlan value", () => {
    assert.deepEqual(
      decodeLeaseAttrs(
        '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
      ),
      {
        publicIP: parseIP4("192.168.64.3"),
        backendType: "vxlan",
        backendData: '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}',
      },
    );
  });
  await t.step("fuzz seeds (flannel test fixtures)", () => {
    assert.deepEqual(decodeLeaseAttrs('{"PublicIP":"192.168.0.1","BackendType":"vxlan"}'), {
      publicIP: parseIP4("192.168.0.1"),
      backendType: "vxlan",
    });
    assert.deepEqual(decodeLeaseAttrs('{"PublicIP":"192.168.0.1","PublicIPv6":"fc00::1"}'), {
      publicIP: parseIP4("192.168.0.1"),
      publicIPv6: parseIP6("fc00::1"),
    });
  });
  await t.step("whitespace and key case; backend data compacted", () => {
    const a = decodeLeaseAttrs(
      ' {\n "publicip" : "10.1.2.3", "PUBLICIPV6": "FD00::0011",\n "backendtype":"vxlan",\n "backenddata": { "VNI" : 1 ,\n "VtepMAC" : "a<b" },"BACKENDV6DATA":[ 1, 2 ] }',
    );
    assert.deepEqual(a, {
      publicIP: parseIP4("10.1.2.3"),
      publicIPv6: parseIP6("fd00::11"),
      backendType: "vxlan",
      backendData: '{"VNI":1,"VtepMAC":"a\\u003cb"}',
      backendV6Data: "[1,2]",
    });
  });
  await t.step("missing PublicIP is Go's zero value 0.0.0.0", () => {
    assert.deepEqual(decodeLeaseAttrs("{}"), { publicIP: 0 });
    assert.deepEqual(decodeLeaseAttrs("null"), { publicIP: 0 });
    assert.equal(
      encodeLeaseAttrs(decodeLeaseAttrs("{}")),
      '{"PublicIP":"0.0.0.0","PublicIPv6":null}',
    );
  });
  await t.step("duplicates: last wins; null PublicIPv6 unsets, null BackendType is ignored", () => {
    assert.deepEqual(
      decodeLeaseAttrs(
        '{"PublicIP":"1.1.1.1","publicIP":"2.2.2.2","PublicIPv6":"fd00::1","PublicIPv6":null,"BackendType":"udp","BackendType":null,"Extra":{"x":1}}',
      ),
      { publicIP: parseIP4("2.2.2.2"), backendType: "udp" },
    );
  });
  await t.step("escapes in BackendType are decoded and re-encoded Go's way", () => {
    const a = decodeLeaseAttrs('{"PublicIP":"1.2.3.4","BackendType":"v\\u0078lan\\ud800"}');
    assert.equal(a.backendType, "vxlan\ufffd");
  });
});

Deno.test("decodeLeaseAttrs() rejects bad values with a SyntaxError naming the problem", async (t) => {
  const cases: [string, RegExp][] = [
    ['{"PublicIP":"x"}', /: PublicIP "x" is not an IPv4 address$/],
    ['{"PublicIP":"fd00::1"}', /PublicIP "fd00::1" is not an IPv4 address/],
    ['{"PublicIP":null}', /PublicIP "null" is not an IPv4 address/],
    ['{"PublicIP":1234}', /PublicIP "1234" is not an IPv4 address/],
    ['{"PublicIP":"1.2.3.\\u0034"}', /is not an IPv4 address/], // Go parses the raw text
    [
      '{"PublicIP":"1.2.3.4","PublicIPv6":"1.2.3.4"}',
      /PublicIPv6 "1.2.3.4" is not an IPv6 address/,
    ],
    ['{"PublicIP":"1.2.3.4","PublicIPv6":true}', /PublicIPv6 "true" is not an IPv6 address/],
    ['{"PublicIP":"1.2.3.4","backendType":5}', /backendType must be a string, got number/],
    ['{"PublicIP":"1.2.3.4"', /^Cannot decode lease value "\{\\"PublicIP\\":\\"1.2.3.4\\"": /],
    ["", /^Cannot decode lease value "": /],
    ["[]", /expected a JSON object, got array/],
    ['"1.2.3.4"', /expected a JSON object, got string/],
  ];
  for (const [text, message] of cases) {
    await t.step(text || "(empty)", () => {
      assert.throws(() => decodeLeaseAttrs(text), (err: unknown) => {
        assert.ok(err instanceof SyntaxError, `expected SyntaxError, got ${err}`);
        assert.match(err.message, /^Cannot decode lease value /);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

Deno.test("decodeLeaseAttrs() only ever throws SyntaxError on random input", () => {
  let seed = 0xf1a77e1;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const seeds = [
    '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    '{"PublicIP":"192.168.0.1","PublicIPv6":"fc00::1","BackendV6Data":[1,{"a":"<"}]}',
  ];
  const alphabet = '{}[]":,.0123456789abcdefnul \\<\n';
  let decoded = 0;
  for (let i = 0; i < 3000; i++) {
    const chars = [...seeds[i % seeds.length]];
    for (let n = Math.floor(rand() * 3); n >= 0; n--) {
      const at = Math.floor(rand() * chars.length);
      const c = alphabet[Math.floor(rand() * alphabet.length)];
      const op = rand();
      if (op < 0.4) chars.splice(at, 1, c);
      else if (op < 0.7) chars.splice(at, 0, c);
      else chars.splice(at, 1);
    }
    const text = chars.join("");
    try {
      const attrs = decodeLeaseAttrs(text);
      decoded++;
      // Whatever decodes re-encodes, and the encoding is a fixed point.
      const encoded = encodeLeaseAttrs(attrs);
      assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(encoded)), encoded);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  assert.ok(decoded > 100, `only ${decoded} random values decoded`);
});
