/**
 * The parts of Go's `encoding/json` that flannel's wire formats depend on: case-insensitive
 * struct-field matching, the raw text of a member (`json.RawMessage`), compaction with HTML
 * escaping (what `json.Marshal` does to a `RawMessage`), and Go's string quoting.
 *
 * Decoding goes through `JSON.parse` first, so every function here rejects malformed JSON with
 * the `SyntaxError` that `JSON.parse` throws; the scanners below then only walk text known to be
 * valid.
 */

/** One member of a JSON object: its decoded key and the exact text of its value. */
export interface JSONMember {
  readonly key: string;
  readonly raw: string;
}

/** The type of a JSON value, named as in error messages. */
export type JSONKind = "object" | "array" | "string" | "number" | "boolean" | "null";

const WS = new Set([" ", "\t", "\n", "\r"]);

/** The kind of the (valid, trimmed) JSON value `raw`, from its first character. */
export function jsonKind(raw: string): JSONKind {
  switch (raw[0]) {
    case "{":
      return "object";
    case "[":
      return "array";
    case '"':
      return "string";
    case "t":
    case "f":
      return "boolean";
    case "n":
      return "null";
    default:
      return "number";
  }
}

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && WS.has(text[i])) i++;
  return i;
}

/** Index just past the string literal starting at `i` (which is `"`). */
function skipString(text: string, i: number): number {
  for (i++; text[i] !== '"'; i++) {
    if (text[i] === "\\") i++;
  }
  return i + 1;
}

/** Index just past the value starting at `i`. */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    while (i < text.length) {
      const d = text[i];
      if (d === '"') {
        i = skipString(text, i);
        continue;
      }
      if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") depth--;
      i++;
      if (depth === 0) return i;
    }
    return i;
  }
  while (
    i < text.length && !WS.has(text[i]) && text[i] !== "," && text[i] !== "}" && text[i] !== "]"
  ) {
    i++;
  }
  return i;
}

/**
 * The top-level members of the JSON object `text`, in document order, duplicates included (Go
 * assigns each in turn, so the last one wins). Returns `null` when `text` is the JSON literal
 * `null` (Go's `Unmarshal` leaves the target untouched). Throws `SyntaxError` for malformed JSON
 * and `TypeError` naming the kind when the value is not an object.
 */
export function objectMembers(text: string): JSONMember[] | null {
  JSON.parse(text); // validation only: throws SyntaxError with position information
  let i = skipWhitespace(text, 0);
  const kind = jsonKind(text.slice(i));
  if (kind === "null") return null;
  if (kind !== "object") throw new TypeError(`expected a JSON object, got ${kind}`);
  const members: JSONMember[] = [];
  i = skipWhitespace(text, i + 1);
  if (text[i] === "}") return members;
  for (;;) {
    const keyEnd = skipString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWhitespace(text, keyEnd) + 1; // past ':'
    const start = skipWhitespace(text, i);
    const end = skipValue(text, start);
    members.push({ key, raw: text.slice(start, end) });
    i = skipWhitespace(text, end);
    if (text[i] === "}") return members;
    i = skipWhitespace(text, i + 1); // past ','
  }
}

/**
 * Whether JSON key `key` selects the struct field `field` the way Go's `encoding/json` matches
 * them: equal under Unicode simple case folding. For the ASCII field names we use that means ASCII
 * case-insensitive, plus `ſ` (U+017F) matching `s` and the Kelvin sign (U+212A) matching `k`.
 */
export function foldEquals(key: string, field: string): boolean {
  if (key.length !== field.length) return false;
  for (let i = 0; i < key.length; i++) {
    const k = key[i];
    const f = field[i].toLowerCase();
    if (k.toLowerCase() === f && k.charCodeAt(0) < 0x80) continue;
    if (k === "\u017f" && f === "s") continue;
    if (k === "\u212a" && f === "k") continue;
    return false;
  }
  return true;
}

/** The member Go would assign last to field `field`: the last one whose key folds to it. */
export function lookupMember(
  members: readonly JSONMember[],
  field: string,
): JSONMember | undefined {
  for (let i = members.length - 1; i >= 0; i--) {
    if (foldEquals(members[i].key, field)) return members[i];
  }
  return undefined;
}

/**
 * Case-insensitive property lookup on an already decoded object (`JSON.parse` output), for
 * backends reading their `Backend` keys: an exact match is preferred, else the last key that
 * folds to `name`. (Decoded objects have lost document order between keys that differ only in
 * case, so in that rare case this approximates Go's "last wins"; use `objectMembers` where it
 * matters.)
 */
export function getFold(obj: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  let found: unknown = undefined;
  for (const key of Object.keys(obj)) {
    if (foldEquals(key, name)) found = obj[key];
  }
  return found;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/**
 * Go's `json.Compact` with HTML escaping, as `json.Marshal` applies it to a `json.RawMessage`:
 * removes whitespace outside strings, keeps key order and number spelling, and escapes `<`, `>`,
 * `&`, U+2028 and U+2029 inside strings as `\u003c` etc. Throws `SyntaxError` for invalid JSON.
 */
export function compactJSON(text: string): string {
  JSON.parse(text);
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(text, i);
      out += text.slice(i, end).replace(/[<>&\u2028\u2029]/g, (m) => HTML_ESCAPES[m]);
      i = end;
    } else {
      if (!WS.has(c)) out += c;
      i++;
    }
  }
  return out;
}

/**
 * A string as Go's `json.Marshal` writes it: short escapes for `"`, `\`, `\b`, `\f`, `\n`, `\r`,
 * `\t` (Go ≥ 1.22), `\u00XX` for other control characters, HTML escaping of `<`, `>`, `&`, U+2028
 * and U+2029, and U+FFFD for lone surrogates (Go's replacement of invalid UTF-8).
 */
export function quoteJSON(s: string): string {
  let out = '"';
  for (const ch of s.toWellFormed()) {
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case "\\":
        out += "\\\\";
        break;
      case "\b":
        out += "\\b";
        break;
      case "\f":
        out += "\\f";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\t":
        out += "\\t";
        break;
      default:
        if (Object.hasOwn(HTML_ESCAPES, ch)) out += HTML_ESCAPES[ch];
        else if (ch < " ") out += `\\u00${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
        else out += ch;
    }
  }
  return out + '"';
}

/** Decodes the raw JSON string token `raw` as Go does (lone surrogates become U+FFFD). */
export function decodeJSONString(raw: string): string {
  return (JSON.parse(raw) as string).toWellFormed();
}

/**
 * The text Go's address types parse from a raw value: flannel's `UnmarshalJSON` methods strip
 * every leading and trailing `"` from the raw bytes (so escapes are not decoded and `null` stays
 * `null`).
 */
export function trimQuotes(raw: string): string {
  return raw.replace(/^"+|"+$/g, "");
}
