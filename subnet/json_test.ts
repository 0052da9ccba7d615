import assert from "node:assert/strict";
import {
  compactJSON,
  foldEquals,
  getFold,
  jsonKind,
  lookupMember,
  objectMembers,
  quoteJSON,
  trimQuotes,
} from "./json.ts";

Deno.test("objectMembers() lists members in order with raw value text", () => {
  const members = objectMembers(
    ' { "a" : { "x" : [1, "}]"] } , "b":"q\\"}" ,"a":null,"c" :-1.50e+3 , "": true}\n',
  );
  assert.deepEqual(members, [
    { key: "a", raw: '{ "x" : [1, "}]"] }' },
    { key: "b", raw: '"q\\"}"' },
    { key: "a", raw: "null" },
    { key: "c", raw: "-1.50e+3" },
    { key: "", raw: "true" },
  ]);
  assert.deepEqual(objectMembers("{}"), []);
  assert.deepEqual(objectMembers('{"k\\u0041":1}'), [{ key: "kA", raw: "1" }]);
});

Deno.test("objectMembers() returns null for JSON null and rejects other inputs", async (t) => {
  assert.equal(objectMembers(" null "), null);
  for (const [text, kind] of [["[]", "array"], ['"x"', "string"], ["1", "number"]]) {
    await t.step(`${text} is a TypeError`, () => {
      assert.throws(() => objectMembers(text), { name: "TypeError", message: new RegExp(kind) });
    });
  }
  for (const text of ["", "{", '{"a":}', "{'a':1}", '{"a":1,}', "nul", '{"a":1}x']) {
    await t.step(`${JSON.stringify(text)} is a SyntaxError`, () => {
      assert.throws(() => objectMembers(text), SyntaxError);
    });
  }
});

Deno.test("foldEquals() matches keys to fields as Go's encoding/json does", () => {
  assert.ok(foldEquals("network", "Network"));
  assert.ok(foldEquals("NETWORK", "Network"));
  assert.ok(foldEquals("\u017fubnetLen", "SubnetLen")); // ſ folds to s in Go
  assert.ok(foldEquals("bac\u212Aend", "Backend")); // Kelvin sign folds to k
  assert.ok(!foldEquals("Network ", "Network"));
  assert.ok(!foldEquals("Netw0rk", "Network"));
  assert.ok(!foldEquals("\u0130pv6", "ipv6")); // İ does not fold to i in Go
});

Deno.test("lookupMember() returns the last member folding to the field", () => {
  const members = objectMembers('{"Type":"a","type":"b","TYPE":"c","other":1}')!;
  assert.equal(lookupMember(members, "Type")?.raw, '"c"');
  assert.equal(lookupMember(members, "Missing"), undefined);
});

Deno.test("getFold() prefers an exact key, else a case-insensitive one", () => {
  assert.equal(getFold({ type: "x", Type: "y" }, "Type"), "y");
  assert.equal(getFold({ TYPE: "x" }, "Type"), "x");
  assert.equal(getFold({ TYPEs: "x" }, "Type"), undefined);
  assert.equal(getFold({}, "toString"), undefined);
});

Deno.test("compactJSON() removes whitespace only outside strings and escapes like Go", async (t) => {
  const cases: [string, string][] = [
    ['{ "VNI" : 1,\n\t"VtepMAC":"c6:d2:32:6f:8f:44" }', '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}'],
    ['{"b":1,"a":2}', '{"b":1,"a":2}'],
    ["[ 1.50 , 1e3 , -0 ]", "[1.50,1e3,-0]"],
    ['{"s":" a  b "}', '{"s":" a  b "}'],
    ['"<a & b>"', '"\\u003ca \\u0026 b\\u003e"'],
    ['"\u2028\u2029"', '"\\u2028\\u2029"'],
    ['"\\u003c already \\n escaped"', '"\\u003c already \\n escaped"'],
    ['{"q":"\\"} {"}', '{"q":"\\"} {"}'],
    [" null ", "null"],
  ];
  for (const [input, want] of cases) {
    await t.step(input, () => assert.equal(compactJSON(input), want));
  }
  await t.step("invalid JSON throws SyntaxError", () => {
    assert.throws(() => compactJSON("{1:2}"), SyntaxError);
    assert.throws(() => compactJSON(""), SyntaxError);
  });
});

Deno.test("quoteJSON() writes strings as Go's json.Marshal", () => {
  assert.equal(quoteJSON("vxlan"), '"vxlan"');
  assert.equal(quoteJSON('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoteJSON("\b\f\n\r\t\x01\x1f\x7f"), '"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"');
  assert.equal(quoteJSON("<&>\u2028"), '"\\u003c\\u0026\\u003e\\u2028"');
  assert.equal(quoteJSON("é😀"), '"é😀"');
  assert.equal(quoteJSON("\ud800x"), '"\ufffdx"');
});

Deno.test("jsonKind() and trimQuotes() classify and strip raw values", () => {
  assert.deepEqual(
    ["{}", "[]", '""', "true", "false", "null", "-1"].map(jsonKind),
    ["object", "array", "string", "boolean", "boolean", "null", "number"],
  );
  assert.equal(trimQuotes('"10.0.0.0/8"'), "10.0.0.0/8");
  assert.equal(trimQuotes("null"), "null");
  assert.equal(trimQuotes('""'), "");
});
