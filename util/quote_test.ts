import assert from "node:assert/strict";
import { clip, quote, QUOTE_LIMIT } from "./quote.ts";

Deno.test("quote() shows short values whole and cuts long ones with their size", async (t) => {
  await t.step("short strings are JSON-quoted", () => {
    assert.equal(quote("10.5.0.0/16"), '"10.5.0.0/16"');
    assert.equal(quote('a"b\n'), '"a\\"b\\n"');
  });
  await t.step("a 1 MB string gives the first 200 characters and the byte count", () => {
    const got = quote("a".repeat(1_000_000));
    assert.equal(got, `"${"a".repeat(QUOTE_LIMIT)}"… (1000000 bytes)`);
  });
  await t.step("escapes count against the limit", () => {
    const got = quote("\u0001".repeat(150));
    assert.ok(got.length <= QUOTE_LIMIT + 40, got);
    assert.match(got, /^"(\\u0001)+"… \(150 bytes\)$/);
  });
  await t.step("the byte count is UTF-8", () => {
    assert.match(quote("é".repeat(300)), /… \(600 bytes\)$/);
  });
  await t.step("non-strings as bounded JSON, however deep", () => {
    assert.equal(quote(8285), "8285");
    assert.equal(quote({ VNI: 1 }), '{"VNI":1}');
    assert.equal(quote(undefined), "undefined");
    const deep = JSON.parse("[".repeat(100_000) + "]".repeat(100_000));
    const got = quote(deep);
    assert.equal(got, `${"[".repeat(QUOTE_LIMIT)}… (200000 bytes)`);
  });
});

Deno.test("clip() cuts raw text without quoting it", () => {
  assert.equal(clip("[1,2]"), "[1,2]");
  assert.equal(clip("x".repeat(250), 10), "xxxxxxxxxx… (250 bytes)");
});
