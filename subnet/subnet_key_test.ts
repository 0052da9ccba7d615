import assert from "node:assert/strict";
import { parseIP4, parseIP6 } from "./ip.ts";
import { makeSubnetKey, parseSubnetKey } from "./subnet_key.ts";

Deno.test("makeSubnetKey() and parseSubnetKey() round-trip an IPv4 key (TestSubnetNodev4)", () => {
  const parsed = parseSubnetKey("10.12.13.0-24");
  assert.deepEqual(parsed, { subnet: { ip: parseIP4("10.12.13.0"), prefix: 24 } });
  assert.equal(makeSubnetKey(parsed.subnet, parsed.ipv6Subnet), "10.12.13.0-24");
});

Deno.test("makeSubnetKey() and parseSubnetKey() round-trip a dual-stack key (TestSubnetNodev6)", () => {
  const parsed = parseSubnetKey("10.12.13.0-24&fd00:12:13::-56");
  assert.deepEqual(parsed, {
    subnet: { ip: parseIP4("10.12.13.0"), prefix: 24 },
    ipv6Subnet: { ip: parseIP6("fd00:12:13::"), prefix: 56 },
  });
  assert.equal(makeSubnetKey(parsed.subnet, parsed.ipv6Subnet), "10.12.13.0-24&fd00:12:13::-56");
});

Deno.test("makeSubnetKey() writes canonical IPv6 and omits an empty ::/0 subnet", () => {
  const v4 = { ip: parseIP4("10.5.34.0"), prefix: 24 };
  assert.equal(makeSubnetKey(v4), "10.5.34.0-24");
  assert.equal(makeSubnetKey(v4, { ip: 0n, prefix: 0 }), "10.5.34.0-24");
  assert.equal(
    makeSubnetKey(v4, { ip: parseIP6("FD00:0000:0012::"), prefix: 64 }),
    "10.5.34.0-24&fd00:0:12::-64",
  );
  assert.equal(makeSubnetKey({ ip: 0, prefix: 0 }), "0.0.0.0-0");
});

Deno.test("parseSubnetKey() accepts a full etcd key path and flannel's edge values", async (t) => {
  const cases: [string, string, number][] = [
    ["/coreos.com/network/subnets/10.5.34.0-24", "10.5.34.0", 24],
    ["prefix10.1.2.0-24", "10.1.2.0", 24],
    ["10.1.2.0-31", "10.1.2.0", 31],
    ["10.1.2.0-024", "10.1.2.0", 24], // strconv.ParseUint allows leading zeros
    ["10.1.2.7-24", "10.1.2.7", 24], // host bits are kept, as in flannel
  ];
  for (const [key, ip, prefix] of cases) {
    await t.step(key, () => {
      assert.deepEqual(parseSubnetKey(key), { subnet: { ip: parseIP4(ip), prefix } });
    });
  }
  await t.step("dual-stack key under a prefix", () => {
    const got = parseSubnetKey("/x/subnets/10.1.2.0-24&2001:db8::-64");
    assert.deepEqual(got.ipv6Subnet, { ip: parseIP6("2001:db8::"), prefix: 64 });
    assert.equal(parseSubnetKey("10.1.2.0-24&2001::-127").ipv6Subnet?.prefix, 127);
  });
});

Deno.test("parseSubnetKey() rejects malformed keys (TestSubnetNodeInvalid)", async (t) => {
  const cases: [string, RegExp][] = [
    ["10.12.13.0-24hi", /expected <a\.b\.c\.d>-<prefix>/],
    ["10.12.13.300-24", /"10\.12\.13\.300" is not an IPv4 address/],
    ["&2001::-56", /expected/],
    ["10.12.13.0-24&20011::-56", /"20011::" is not an IPv6 address/],
    ["10.12.13.0-24&2001::", /expected/],
    ["10.12.13.0-32", /out of range 0\.\.31 \(flannel does not parse \/32 keys\)/],
    ["10.12.13.0-99999999999999999999", /out of range 0\.\.31/],
    ["10.12.13.0-24&2001::-128", /IPv6 prefix length 128 is out of range 0\.\.127/],
    ["10.12.13.0-24&2001:DB8::-64", /expected/], // flannel's regex allows lowercase hex only
    ["10.12.13.0-24&2001-64", /"2001" is not an IPv6 address/],
    ["10.12y13z0-24", /"10.12y13z0" is not an IPv4 address/], // unescaped dots in the regex
    ["10x12.13.0-24", /expected/],
    ["010.12.13.0-24", /"010\.12\.13\.0" is not an IPv4 address/],
    ["10.12.13.0-24\n", /expected/],
    ["", /expected/],
  ];
  for (const [key, reason] of cases) {
    await t.step(JSON.stringify(key), () => {
      assert.throws(() => parseSubnetKey(key), (err: unknown) => {
        assert.ok(err instanceof SyntaxError);
        assert.ok(err.message.startsWith(`Cannot parse subnet key ${JSON.stringify(key)}: `));
        assert.match(err.message, reason);
        return true;
      });
    });
  }
});

Deno.test("parseSubnetKey() only ever throws SyntaxError on random input", () => {
  let seed = 0x5eed;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const alphabet = "0123456789.-&:abcdefx/ \n";
  const seeds = ["10.12.13.0-24", "10.12.13.0-24&fd00:12:13::-56", "/coreos.com/network/subnets/"];
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    const chars = [...seeds[i % seeds.length]];
    for (let n = Math.floor(rand() * 4); n >= 0; n--) {
      const at = Math.floor(rand() * (chars.length + 1));
      const c = alphabet[Math.floor(rand() * alphabet.length)];
      const op = rand();
      if (op < 0.4) chars.splice(at, 1, c);
      else if (op < 0.7) chars.splice(at, 0, c);
      else chars.splice(at, 1);
    }
    const key = chars.join("");
    try {
      const { subnet, ipv6Subnet } = parseSubnetKey(key);
      parsed++;
      // Whatever parses re-parses to the same value from its canonical form.
      assert.deepEqual(parseSubnetKey(makeSubnetKey(subnet, ipv6Subnet)).subnet, subnet);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  assert.ok(parsed > 100, `only ${parsed} random keys parsed`);
});

Deno.test("parseSubnetKey() refuses a 1 MB key at once, with a short message", async (t) => {
  for (
    const [name, tail] of [["digits", "1".repeat(1_000_000)], [
      "padded prefix",
      "10.5.3.0-" + "0".repeat(1_000_000) + "24",
    ]]
  ) {
    await t.step(name, () => {
      const t0 = performance.now();
      assert.throws(
        () => parseSubnetKey(`/coreos.com/network/subnets/${tail}`),
        (err: Error) =>
          err instanceof SyntaxError && err.message.length < 300 &&
          /^Cannot parse subnet key "\/coreos\.com\/network\/subnets\/[\d.-]+"… \(\d+ bytes\): longer than 1024 characters$/
            .test(err.message),
      );
      assert.ok(performance.now() - t0 < 100, "no regexp backtracking over the digits");
    });
  }
});
