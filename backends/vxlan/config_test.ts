import assert from "node:assert/strict";
import { describeVxlanConfig, parseVxlanConfig } from "./config.ts";

Deno.test("parseVxlanConfig() applies flannel's defaults", () => {
  const c = parseVxlanConfig({ Type: "vxlan" });
  assert.deepEqual(c, {
    vni: 1,
    port: 0,
    mtu: 0,
    gbp: false,
    learning: false,
    directRouting: false,
  });
  assert.equal(
    describeVxlanConfig(c),
    "VXLAN config: VNI=1 Port=0 GBP=false Learning=false DirectRouting=false",
  );
});

Deno.test("parseVxlanConfig() reads keys case-insensitively and ignores unknown ones", () => {
  const c = parseVxlanConfig({
    vni: 42,
    PORT: 4789,
    Mtu: 9000,
    gbp: true,
    learning: true,
    directrouting: true,
    MacPrefix: "0E-2A",
    Whatever: [1],
  });
  assert.deepEqual(c, {
    vni: 42,
    port: 4789,
    mtu: 9000,
    gbp: true,
    learning: true,
    directRouting: true,
  });
});

Deno.test("parseVxlanConfig() rejects wrong types and ranges naming the key", async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ VNI: "1" }, /"VNI" must be an integer, got "1"/],
    [{ VNI: 1.5 }, /"VNI" must be an integer, got 1.5/],
    [{ VNI: 1 << 24 }, /"VNI" is 16777216; it must be between 0 and 16777215/],
    [{ Port: -1 }, /"Port" is -1/],
    [{ Port: 70000 }, /"Port" is 70000/],
    [{ MTU: "1500" }, /"MTU" must be an integer/],
    [{ GBP: "true" }, /"GBP" must be true or false, got "true"/],
    [{ Learning: 1 }, /"Learning" must be true or false, got 1/],
    [{ DirectRouting: {} }, /"DirectRouting" must be true or false/],
  ];
  for (const [input, error] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.throws(() => parseVxlanConfig(input), (err: Error) => {
        assert.match(err.message, /^error decoding VXLAN backend config: /);
        assert.match(err.message, error);
        return true;
      });
    });
  }
});
