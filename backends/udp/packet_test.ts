import assert from "node:assert/strict";
import {
  buildNetUnreachable,
  checkHeader,
  decrementTtl,
  internetChecksum,
  readU32,
  Verdict,
} from "./packet.ts";

/** An ICMP echo request 10.5.1.2 → 10.5.2.3, TTL 64 (header checksum 0x0755, from Python). */
const ECHO = new Uint8Array([
  0x45,
  0x00,
  0x00,
  0x54,
  0x1c,
  0x46,
  0x40,
  0x00,
  0x40,
  0x01,
  0x07,
  0x55,
  0x0a,
  0x05,
  0x01,
  0x02,
  0x0a,
  0x05,
  0x02,
  0x03,
  0x08,
  0x00,
  0xf7,
  0xff,
  0x00,
  0x01,
  0x00,
  0x01,
  ...new Uint8Array(56),
]);

/** A TCP SYN header 10.5.1.2:40000 → 10.5.9.9:80 (header checksum filled in by `fixed`). */
function tcpSyn(ttl = 64, frag = 0x4000): Uint8Array {
  const b = new Uint8Array(60);
  b.set([
    0x45,
    0,
    0,
    60,
    0x12,
    0x34,
    frag >> 8,
    frag & 255,
    ttl,
    6,
    0,
    0,
    10,
    5,
    1,
    2,
    10,
    5,
    9,
    9,
  ]);
  b.set([0x9c, 0x40, 0x00, 0x50, 1, 2, 3, 4], 20);
  const c = internetChecksum(b, 0, 20);
  b[10] = c >> 8;
  b[11] = c & 255;
  return b;
}

Deno.test("internetChecksum() verifies a valid header and matches RFC 1071's example", () => {
  assert.equal(internetChecksum(ECHO, 0, 20), 0, "a valid header sums to zero");
  // RFC 1071 §3: words 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d.
  assert.equal(
    internetChecksum(new Uint8Array([0, 1, 0xf2, 3, 0xf4, 0xf5, 0xf6, 0xf7]), 0, 8),
    0x220d,
  );
});

Deno.test("decrementTtl() lowers the TTL and keeps the checksum equal to a from-scratch one", async (t) => {
  await t.step("echo request fixture", () => {
    const b = ECHO.slice();
    assert.equal(decrementTtl(b, 0), true);
    assert.equal(b[8], 63);
    assert.equal(internetChecksum(b, 0, 20), 0);
    assert.deepEqual(b.subarray(10, 12), new Uint8Array([0x08, 0x55]));
  });
  await t.step("at an offset inside a larger buffer", () => {
    const b = new Uint8Array(200);
    b.set(ECHO, 100);
    assert.equal(decrementTtl(b, 100), true);
    assert.equal(b[108], 63);
    assert.equal(internetChecksum(b, 100, 20), 0);
  });
  await t.step("10 000 random headers, every TTL, against a recomputed checksum", () => {
    const b = new Uint8Array(20);
    for (let i = 0; i < 10_000; i++) {
      crypto.getRandomValues(b);
      b[0] = 0x45;
      b[8] = 2 + (i % 254);
      b[10] = b[11] = 0;
      const c = internetChecksum(b, 0, 20);
      b[10] = c >> 8;
      b[11] = c & 255;
      const want = b.slice();
      want[8]--;
      want[10] = want[11] = 0;
      const wc = internetChecksum(want, 0, 20);
      assert.equal(decrementTtl(b, 0), true);
      assert.equal((b[10] << 8) | b[11], wc, `header ${i}`);
    }
  });
  await t.step("TTL 1 and 0 are refused and left alone", () => {
    for (const ttl of [1, 0]) {
      const b = tcpSyn(ttl);
      const before = b.slice();
      assert.equal(decrementTtl(b, 0), false);
      assert.deepEqual(b, before);
    }
  });
});

Deno.test("checkHeader() accepts IPv4 and names what is wrong otherwise", async (t) => {
  const cases: [string, Uint8Array, number, number][] = [
    ["valid echo", ECHO, ECHO.length, 84],
    ["link padding beyond total length", new Uint8Array([...ECHO, 0, 0, 0]), 87, 84],
    ["shorter than a header", ECHO.subarray(0, 19), 19, -Verdict.short],
    ["empty", new Uint8Array(0), 0, -Verdict.short],
    ["IPv6", Uint8Array.from([0x60, ...ECHO.subarray(1)]), 84, -Verdict.malformed],
    ["ihl 4", Uint8Array.from([0x44, ...ECHO.subarray(1)]), 84, -Verdict.malformed],
    ["ihl beyond packet", Uint8Array.from([0x4f, ...ECHO.subarray(1, 40)]), 40, -Verdict.malformed],
    ["truncated (total 84, got 60)", ECHO.subarray(0, 60), 60, -Verdict.malformed],
  ];
  for (const [name, b, len, want] of cases) {
    await t.step(name, () => assert.equal(checkHeader(b, 0, len), want));
  }
});

Deno.test("buildNetUnreachable() writes flannel's ICMP reply, and none where flannel sends none", async (t) => {
  const tunAddr = 0x0a050100; // 10.5.1.0
  await t.step("reply to a TCP SYN", () => {
    const out = new Uint8Array(200);
    const syn = tcpSyn();
    const n = buildNetUnreachable(syn, 0, 60, tunAddr, out);
    assert.equal(n, 20 + 8 + 20 + 8);
    const p = out.subarray(0, n);
    assert.deepEqual(
      [...p.subarray(0, 10)],
      [0x45, 0, 0, n, 0, 0, 0, 0, 8, 1],
      "version/ihl, tos, length, id 0, no flags, TTL 8, ICMP",
    );
    assert.equal(readU32(p, 12), tunAddr);
    assert.deepEqual(p.subarray(16, 20), new Uint8Array([10, 5, 1, 2]), "to the offender's source");
    assert.equal(internetChecksum(p, 0, 20), 0, "IP checksum");
    assert.deepEqual([...p.subarray(20, 28)], [3, 0, p[22], p[23], 0, 0, 0, 0]);
    assert.equal(internetChecksum(p, 20, n - 20), 0, "ICMP checksum");
    assert.deepEqual(p.subarray(28), syn.subarray(0, 28), "offender header + 8 bytes");
  });
  await t.step("offender with options quotes its whole header", () => {
    const b = new Uint8Array(64);
    b.set(tcpSyn().subarray(0, 20));
    b[0] = 0x46;
    const n = buildNetUnreachable(b, 0, 64, tunAddr, new Uint8Array(200));
    assert.equal(n, 28 + 24 + 8);
  });
  await t.step("short offender: quoted bytes beyond it are zero", () => {
    const out = new Uint8Array(200).fill(0xee);
    const syn = tcpSyn().subarray(0, 22);
    const n = buildNetUnreachable(syn, 0, 22, tunAddr, out);
    assert.equal(n, 56);
    assert.deepEqual([...out.subarray(50, 56)], [0, 0, 0, 0, 0, 0]);
    assert.equal(internetChecksum(out, 20, n - 20), 0);
  });
  const none: [string, Uint8Array][] = [
    ["about ICMP", ECHO],
    ["non-first fragment", tcpSyn(64, 0x2005)],
    ["offset without MF", tcpSyn(64, 0x0001)],
    [
      "ihl 15 (flannel: malformed)",
      Uint8Array.from([0x4f, ...tcpSyn().subarray(1), ...new Uint8Array(20)]),
    ],
  ];
  for (const [name, b] of none) {
    await t.step(`no reply: ${name}`, () => {
      assert.equal(buildNetUnreachable(b, 0, b.length, tunAddr, new Uint8Array(200)), 0);
    });
  }
  await t.step("first fragment (MF set, offset 0) does get a reply", () => {
    assert.ok(buildNetUnreachable(tcpSyn(64, 0x2000), 0, 60, tunAddr, new Uint8Array(200)) > 0);
  });
});
