/**
 * The two Go `strconv` parsers that Go's `flag` package uses for flanneld's flags:
 * `ParseInt(s, 0, 64)` (integer syntax with base prefixes) and `ParseBool`.
 * Errors carry Go's `flag` wording (`parse error`, `value out of range`).
 */

const BOOL_TEXT: ReadonlyMap<string, boolean> = new Map([
  ["1", true],
  ["t", true],
  ["T", true],
  ["TRUE", true],
  ["true", true],
  ["True", true],
  ["0", false],
  ["f", false],
  ["F", false],
  ["FALSE", false],
  ["false", false],
  ["False", false],
]);

/** Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`. */
export function parseGoBool(text: string): boolean {
  const value = BOOL_TEXT.get(text);
  if (value === undefined) throw new SyntaxError("parse error");
  return value;
}

const PREFIX_BASE: ReadonlyMap<string, number> = new Map([["b", 2], ["o", 8], ["x", 16]]);

function digitValue(c: string): number {
  const code = c.toLowerCase().charCodeAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30; // 0-9
  if (code >= 0x61 && code <= 0x7a) return code - 0x61 + 10; // a-z
  return Infinity;
}

/**
 * Go's `underscoreOK`: an underscore may only sit between digits, or between a base prefix and a
 * digit (`1_000`, `0x_ff`), never at either end or doubled.
 */
function underscoreOK(text: string): boolean {
  let s = text;
  if (s.startsWith("+") || s.startsWith("-")) s = s.slice(1);
  let saw = "^";
  let i = 0;
  let hex = false;
  const prefix = s[1]?.toLowerCase();
  if (s.length >= 2 && s[0] === "0" && (prefix === "b" || prefix === "o" || prefix === "x")) {
    i = 2;
    saw = "0";
    hex = prefix === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i];
    const d = digitValue(c);
    if (d < 10 || (hex && d < 16)) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/**
 * Go's `strconv.ParseInt(text, 0, 64)`: optional sign, then decimal, `0x`/`0X` hex, `0o`/`0O` or a
 * leading `0` octal, `0b`/`0B` binary, with Go's underscore rules. Throws `SyntaxError("parse
 * error")` for bad syntax and `RangeError("value out of range")` beyond ±(2^53−1) (Go allows the
 * full int64 range; a JavaScript number holds integers exactly only up to 2^53−1).
 */
export function parseGoInt(text: string): number {
  let s = text;
  let negative = false;
  if (s.startsWith("+") || s.startsWith("-")) {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "") throw new SyntaxError("parse error");
  let base = 10;
  if (s[0] === "0") {
    const prefixed = s.length >= 3 ? PREFIX_BASE.get(s[1].toLowerCase()) : undefined;
    base = prefixed ?? 8;
    s = s.slice(prefixed === undefined ? 1 : 2);
  }
  let n = 0n;
  let underscores = false;
  for (const c of s) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const d = digitValue(c);
    if (d >= base) throw new SyntaxError("parse error");
    n = n * BigInt(base) + BigInt(d);
  }
  if (underscores && !underscoreOK(text)) throw new SyntaxError("parse error");
  const value = negative ? -n : n;
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError("value out of range");
  }
  return Number(value);
}
