import assert from "node:assert/strict";
import { decodeBackendData, encodeBackendData, parseMac, randomMac } from "./backend_data.ts";

Deno.test("encodeBackendData() writes flannel's bytes", () => {
  assert.equal(
    encodeBackendData({ vni: 1, vtepMac: "c6:d2:32:6f:8f:44" }),
    '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}',
  );
});

Deno.test("decodeBackendData() reads flannel's format, case-insensitively", async (t) => {
  const cases: Array<[string, number, string]> = [
    ['{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}', 1, "c6:d2:32:6f:8f:44"],
    ['{"vni":7,"vtepmac":"C6-D2-32-6F-8F-44","extra":null}', 7, "c6:d2:32:6f:8f:44"],
    ['{ "VNI": 1, "VtepMAC": "c6d2.326f.8f44" }', 1, "c6:d2:32:6f:8f:44"],
  ];
  for (const [text, vni, mac] of cases) {
    await t.step(text, () => assert.deepEqual(decodeBackendData(text), { vni, vtepMac: mac }));
  }
});

Deno.test("decodeBackendData() rejects malformed data saying why", async (t) => {
  const cases: Array<[string | undefined, RegExp]> = [
    [undefined, /no BackendData/],
    ["{", /Cannot decode BackendData \{/],
    ["null", /it is null/],
    ['"x"', /Cannot decode BackendData/],
    ['{"VtepMAC":"c6:d2:32:6f:8f:44"}', /"VNI" must be an integer/],
    ['{"VNI":"1","VtepMAC":"c6:d2:32:6f:8f:44"}', /"VNI" must be an integer/],
    ['{"VNI":1}', /"VtepMAC" must be a string/],
    ['{"VNI":1,"VtepMAC":"zz:d2:32:6f:8f:44"}', /bad "VtepMAC"/],
  ];
  for (const [text, error] of cases) {
    await t.step(String(text), () => assert.throws(() => decodeBackendData(text), error));
  }
});

Deno.test("parseMac() accepts Go's 48-bit notations and refuses non-unicast MACs", async (t) => {
  assert.equal(parseMac("AA:bb:CC:dd:EE:0f"), "aa:bb:cc:dd:ee:0f");
  for (
    const bad of ["aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "a:bb:cc:dd:ee:ff", "", "aabbccddeeff"]
  ) {
    await t.step(`"${bad}" is not a MAC`, () => assert.throws(() => parseMac(bad), SyntaxError));
  }
  assert.throws(() => parseMac("00:00:00:00:00:00"), /all zeros/);
  assert.throws(() => parseMac("01:00:5e:00:00:01"), /multicast/);
});

Deno.test("randomMac() sets the locally administered bit and clears the multicast bit", () => {
  assert.equal(randomMac((b) => b.fill(0xff)), "fe:ff:ff:ff:ff:ff");
  assert.equal(randomMac((b) => b.fill(0)), "02:00:00:00:00:00");
  for (let i = 0; i < 50; i++) {
    const mac = randomMac();
    assert.equal(parseMac(mac), mac);
    assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2);
  }
});
