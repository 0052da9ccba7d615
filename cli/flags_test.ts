import assert from "node:assert/strict";
import { type FlagDef, FlagError, FlagSet } from "./flags.ts";

const DEFS: readonly FlagDef[] = [
  { name: "name", kind: "string", default: "def", usage: "a string" },
  { name: "port", kind: "int", default: 7, usage: "an int" },
  { name: "on", kind: "bool", default: false, usage: "a bool" },
  { name: "yes", kind: "bool", default: true, usage: "a bool defaulting to true" },
  { name: "item", kind: "list", default: [], usage: "a list" },
];

function parsed(args: string[]): FlagSet {
  const fs = new FlagSet(DEFS);
  assert.deepEqual(fs.parse(args), { help: false });
  return fs;
}

function parseError(args: string[]): string {
  const fs = new FlagSet(DEFS);
  try {
    fs.parse(args);
  } catch (err) {
    assert.ok(err instanceof FlagError, `expected a FlagError, got ${err}`);
    return err.message;
  }
  assert.fail(`parse(${JSON.stringify(args)}) did not throw`);
}

Deno.test("FlagSet.parse() accepts Go's flag syntax", async (t) => {
  const cases: [string[], string][] = [
    [["-name", "a"], "a"],
    [["--name", "a"], "a"],
    [["-name=a"], "a"],
    [["--name=a"], "a"],
    [["--name=a=b"], "a=b"],
    [["--name="], ""],
    [["--name", "-x"], "-x"], // Go takes the next argument even when it looks like a flag
    [["--name=a", "--name=b"], "b"], // last one wins
  ];
  for (const [args, want] of cases) {
    await t.step(args.join(" "), () => {
      const fs = parsed(args);
      assert.equal(fs.string("name"), want);
      assert.ok(fs.explicit.has("name"));
    });
  }
});

Deno.test("FlagSet.parse() accepts booleans only as --flag or --flag=value", async (t) => {
  const cases: [string[], boolean, boolean][] = [
    [["--on"], true, true],
    [["-on"], true, true],
    [["--yes=false"], false, false],
    [["--on=1", "--yes=0"], true, false],
    [["--on=t", "--yes=f"], true, false],
    [["--on=T", "--yes=F"], true, false],
    [["--on=TRUE", "--yes=FALSE"], true, false],
    [["--on=True", "--yes=False"], true, false],
    [["--on=true", "--on=false"], false, true],
  ];
  for (const [args, on, yes] of cases) {
    await t.step(args.join(" "), () => {
      const fs = parsed(args);
      assert.equal(fs.bool("on"), on);
      assert.equal(fs.bool("yes"), yes);
    });
  }
  await t.step("--on false leaves false as a rejected positional argument", () => {
    assert.equal(
      parseError(["--on", "false"]),
      'unexpected argument "false": a boolean flag takes its value after "=", as in --on=false',
    );
  });
  for (const bad of ["yes", "no", "", "TrUe", "2"]) {
    await t.step(`--on=${bad} is rejected`, () => {
      assert.equal(
        parseError([`--on=${bad}`]),
        `invalid boolean value ${JSON.stringify(bad)} for -on: parse error`,
      );
    });
  }
});

Deno.test("FlagSet.parse() reads Go integer syntax", async (t) => {
  const cases: [string, number][] = [
    ["0", 0],
    ["42", 42],
    ["-42", -42],
    ["+42", 42],
    ["-0", 0],
    ["0x1f", 31],
    ["0X1F", 31],
    ["-0x10", -16],
    ["0o17", 15],
    ["0O17", 15],
    ["017", 15],
    ["00", 0],
    ["0b101", 5],
    ["0B101", 5],
    ["1_000", 1000],
    ["0x_ff", 255],
    ["0_7", 7],
    ["9007199254740991", Number.MAX_SAFE_INTEGER],
    ["-9007199254740991", -Number.MAX_SAFE_INTEGER],
  ];
  for (const [text, want] of cases) {
    await t.step(`${text} → ${want}`, () => {
      assert.equal(parsed(["--port", text]).int("port"), want);
      assert.equal(parsed([`--port=${text}`]).int("port"), want);
    });
  }
  const bad: [string, string][] = [
    ["", "parse error"],
    ["-", "parse error"],
    ["+", "parse error"],
    ["abc", "parse error"],
    ["1.5", "parse error"],
    ["08", "parse error"],
    ["0x", "parse error"],
    ["0o", "parse error"],
    ["0b", "parse error"],
    ["0b102", "parse error"],
    ["0xg", "parse error"],
    [" 1", "parse error"],
    ["1 ", "parse error"],
    ["1e3", "parse error"],
    ["_1", "parse error"],
    ["1_", "parse error"],
    ["1__0", "parse error"],
    ["--1", "parse error"],
    ["9007199254740992", "value out of range"],
    ["-0x20000000000000", "value out of range"],
  ];
  for (const [text, reason] of bad) {
    await t.step(`${JSON.stringify(text)} is rejected (${reason})`, () => {
      assert.equal(
        parseError([`--port=${text}`]),
        `invalid value ${JSON.stringify(text)} for flag -port: ${reason}`,
      );
    });
  }
});

Deno.test("FlagSet.parse() appends each occurrence of a list flag", () => {
  const fs = parsed(["--item", "a", "-item=b", "--item=a"]);
  assert.deepEqual(fs.list("item"), ["a", "b", "a"]);
  assert.deepEqual(parsed([]).list("item"), []);
});

Deno.test("FlagSet.parse() keeps defaults and tracks explicit flags", () => {
  const fs = parsed(["--port=7"]);
  assert.equal(fs.string("name"), "def");
  assert.equal(fs.int("port"), 7);
  assert.equal(fs.bool("yes"), true);
  assert.deepEqual([...fs.explicit], ["port"]); // set to its default value, still explicit
});

Deno.test("FlagSet.parse() stops at -- and rejects positional arguments", async (t) => {
  await t.step("-- alone ends the flags", () => {
    assert.equal(parsed(["--on", "--"]).bool("on"), true);
  });
  const cases: [string[], string][] = [
    [["--", "--on"], 'unexpected argument "--on": no positional arguments are accepted'],
    [["--port=1", "extra"], 'unexpected argument "extra": no positional arguments are accepted'],
    [["-"], 'unexpected argument "-": no positional arguments are accepted'],
    [["x", "--on"], 'unexpected argument "x": no positional arguments are accepted'],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => assert.equal(parseError(args), message));
  }
});

Deno.test("FlagSet.parse() reports mistakes in Go's words", async (t) => {
  const cases: [string[], string][] = [
    [["--foo"], "flag provided but not defined: -foo"],
    [["-foo=1"], "flag provided but not defined: -foo"],
    [["--name"], "flag needs an argument: -name"],
    [["--on", "--port"], "flag needs an argument: -port"],
    [["---name=a"], "bad flag syntax: ---name=a"],
    [["-=a"], "bad flag syntax: -=a"],
    [["--=a"], "bad flag syntax: --=a"],
    [["--port", "x"], 'invalid value "x" for flag -port: parse error'],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => assert.equal(parseError(args), message));
  }
});

Deno.test("FlagSet.parse() returns help for -h, -help and --help", async (t) => {
  for (const args of [["-h"], ["-help"], ["--help"], ["--h"], ["--on", "-h", "--bogus"]]) {
    await t.step(args.join(" "), () => {
      assert.deepEqual(new FlagSet(DEFS).parse(args), { help: true });
    });
  }
  await t.step("a defined -h flag is an ordinary flag", () => {
    const fs = new FlagSet([{ name: "h", kind: "bool", default: false, usage: "h" }]);
    assert.deepEqual(fs.parse(["-h"]), { help: false });
    assert.equal(fs.bool("h"), true);
  });
});

Deno.test("FlagSet.set() applies a value with the flag's parser and marks it explicit", () => {
  const fs = new FlagSet(DEFS);
  fs.set("port", "0x10");
  fs.set("item", "one");
  fs.set("on", "T");
  assert.equal(fs.int("port"), 16);
  assert.deepEqual(fs.list("item"), ["one"]);
  assert.equal(fs.bool("on"), true);
  assert.deepEqual([...fs.explicit].sort(), ["item", "on", "port"]);
  assert.throws(() => fs.set("nope", "1"), FlagError);
  assert.throws(
    () => fs.set("port", "seven"),
    (err) => err instanceof FlagError && err.cause instanceof SyntaxError,
  );
  assert.equal(fs.int("port"), 16, "a failed set leaves the value alone");
});

Deno.test("FlagSet readers refuse a name of another kind", () => {
  const fs = new FlagSet(DEFS);
  assert.throws(() => fs.int("name"), TypeError);
  assert.throws(() => fs.string("missing"), TypeError);
  assert.throws(() => new FlagSet([DEFS[0], DEFS[0]]), TypeError);
});

Deno.test("FlagSet.list() returns a copy", () => {
  const fs = parsed(["--item=a"]);
  fs.list("item").push("b");
  assert.deepEqual(fs.list("item"), ["a"]);
});

Deno.test("FlagSet.printDefaults() follows Go's PrintDefaults layout", () => {
  const fs = new FlagSet([
    ...DEFS,
    { name: "x", kind: "bool", default: false, usage: "one-letter bool" },
    { name: "z", kind: "string", default: "", usage: "two\nlines", typeName: "value" },
  ]);
  assert.equal(
    fs.printDefaults(),
    [
      "  -item value",
      "    \ta list",
      "  -name string",
      '    \ta string (default "def")',
      "  -on",
      "    \ta bool",
      "  -port int",
      "    \tan int (default 7)",
      "  -x\tone-letter bool",
      "  -yes",
      "    \ta bool defaulting to true (default true)",
      "  -z value",
      "    \ttwo",
      "    \tlines",
      "",
    ].join("\n"),
  );
});
