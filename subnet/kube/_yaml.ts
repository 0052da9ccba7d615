/**
 * A YAML subset parser, enough for kubeconfig files (as kubectl and cloud CLIs write them) and
 * Kubernetes manifests: block mappings and sequences, compact `- key: value` items, plain,
 * single- and double-quoted scalars, literal and folded block scalars, single-line flow
 * collections, comments and `---` documents. JSON input is parsed as JSON. Anchors, aliases,
 * tags and multi-line plain scalars are refused with the line number.
 */

// deno-lint-ignore no-explicit-any
export type Yaml = any;

interface Line {
  indent: number;
  text: string;
  no: number;
}

function fail(no: number, what: string): never {
  throw new SyntaxError(`Cannot parse YAML line ${no}: ${what}`);
}

/** Removes a trailing comment (a `#` after whitespace, outside quotes). */
function stripComment(s: string): string {
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === "'" && quote === "'" && s[i + 1] === "'") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(s[i - 1])) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function plainScalar(s: string, no: number): Yaml {
  if (/^[&*!]/.test(s)) fail(no, `anchors, aliases and tags are not supported: ${s}`);
  if (s === "" || s === "~" || /^(null|Null|NULL)$/.test(s)) return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Reads one scalar or flow collection starting at `s[i]`; returns the value and the end. */
function flowValue(s: string, i: number, no: number, inFlow: boolean): [Yaml, number] {
  while (s[i] === " ") i++;
  const c = s[i];
  if (c === '"') {
    let j = i + 1;
    while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
    if (j >= s.length) fail(no, "unterminated double-quoted string");
    const raw = s.slice(i, j + 1).replace(/\\x([0-9a-fA-F]{2})/g, "\\u00$1").replace(
      /\\([0abe ])/g,
      (_m, e: string) => ({ "0": "\\u0000", a: "\\u0007", b: "\\b", e: "\\u001b", " ": " " })[e]!,
    );
    try {
      return [JSON.parse(raw), j + 1];
    } catch {
      return fail(no, `bad escape in ${raw}`);
    }
  }
  if (c === "'") {
    let j = i + 1, out = "";
    while (true) {
      if (j >= s.length) fail(no, "unterminated single-quoted string");
      if (s[j] === "'") {
        if (s[j + 1] === "'") {
          out += "'";
          j += 2;
          continue;
        }
        return [out, j + 1];
      }
      out += s[j++];
    }
  }
  if (c === "[" || c === "{") {
    const close = c === "[" ? "]" : "}";
    const arr: Yaml[] = [];
    const obj: Record<string, Yaml> = {};
    let j = i + 1;
    while (true) {
      while (s[j] === " " || s[j] === ",") j++;
      if (j >= s.length) fail(no, `unterminated flow collection`);
      if (s[j] === close) return [c === "[" ? arr : obj, j + 1];
      const [v, k] = flowValue(s, j, no, true);
      j = k;
      while (s[j] === " ") j++;
      if (c === "{") {
        if (s[j] !== ":") fail(no, `expected ":" in flow mapping`);
        const [w, m] = flowValue(s, j + 1, no, true);
        obj[String(v)] = w;
        j = m;
      } else {
        arr.push(v);
      }
    }
  }
  const stop = inFlow ? /[,\]}]|: |:$/ : /$/;
  const rest = s.slice(i);
  const m = stop.exec(rest);
  const end = m ? m.index : rest.length;
  return [plainScalar(rest.slice(0, end).trim(), no), i + end];
}

function inlineValue(s: string, no: number): Yaml {
  const [v, end] = flowValue(s, 0, no, false);
  if (s.slice(end).trim() !== "") fail(no, `unexpected text after value: ${s}`);
  return v;
}

/** Splits `key: rest` at the first `:` followed by a space or the end, outside quotes. */
function splitKey(text: string): [string, string] | undefined {
  if (text[0] === '"' || text[0] === "'") {
    const [k, end] = flowValue(text, 0, 0, true);
    if (text[end] !== ":" || (end + 1 < text.length && text[end + 1] !== " ")) return undefined;
    return [String(k), text.slice(end + 1).trim()];
  }
  const m = /:( |$)/.exec(text);
  if (!m || /^[[{]/.test(text)) return undefined;
  return [text.slice(0, m.index).trim(), text.slice(m.index + 1).trim()];
}

class Parser {
  #lines: Line[];
  #raw: string[];
  #i = 0;

  constructor(raw: string[], offset: number) {
    this.#raw = raw;
    this.#lines = [];
    raw.forEach((r, k) => {
      const body = stripComment(r);
      if (body.trim() === "") return;
      if (/^\t/.test(r)) fail(offset + k + 1, "tabs are not allowed for indentation");
      this.#lines.push({ indent: body.length - body.trimStart().length, text: body.trim(), no: k });
    });
    this.offset = offset;
  }

  offset: number;

  parse(): Yaml {
    if (this.#lines.length === 0) return null;
    const v = this.#node(this.#lines[0].indent);
    if (this.#i < this.#lines.length) this.#fail(this.#lines[this.#i], "unexpected indentation");
    return v;
  }

  #fail(line: Line, what: string): never {
    return fail(this.offset + line.no + 1, what);
  }

  #node(indent: number): Yaml {
    const line = this.#lines[this.#i];
    if (line.text === "-" || line.text.startsWith("- ")) return this.#sequence(indent);
    if (splitKey(line.text)) return this.#mapping(indent);
    this.#i++;
    return this.#scalarOrBlock(line.text, line, indent - 1);
  }

  #sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    while (this.#i < this.#lines.length) {
      const line = this.#lines[this.#i];
      if (line.indent !== indent || !(line.text === "-" || line.text.startsWith("- "))) break;
      const rest = line.text.slice(1).trimStart();
      if (rest === "") {
        this.#i++;
        const next = this.#lines[this.#i];
        out.push(next && next.indent > indent ? this.#node(next.indent) : null);
        continue;
      }
      // `- key: value` or `- - x`: the item continues at the column of `rest`.
      const col = indent + line.text.length - rest.length;
      if (rest.startsWith("- ") || rest === "-" || splitKey(rest)) {
        this.#lines[this.#i] = { indent: col, text: rest, no: line.no };
        out.push(this.#node(col));
      } else {
        this.#i++;
        out.push(this.#scalarOrBlock(rest, line, indent));
      }
    }
    return out;
  }

  #mapping(indent: number): Record<string, Yaml> {
    const out: Record<string, Yaml> = {};
    while (this.#i < this.#lines.length) {
      const line = this.#lines[this.#i];
      if (line.indent !== indent) {
        if (line.indent > indent) this.#fail(line, "unexpected indentation");
        break;
      }
      const kv = splitKey(line.text);
      if (!kv) this.#fail(line, `expected "key: value", got ${JSON.stringify(line.text)}`);
      const [key, rest] = kv;
      if (key === "<<") this.#fail(line, "merge keys are not supported");
      this.#i++;
      if (rest === "") {
        const next = this.#lines[this.#i];
        if (next && next.indent > indent) out[key] = this.#node(next.indent);
        else if (
          next && next.indent === indent && (next.text === "-" || next.text.startsWith("- "))
        ) {
          out[key] = this.#sequence(indent);
        } else out[key] = null;
      } else {
        out[key] = this.#scalarOrBlock(rest, line, indent);
      }
    }
    return out;
  }

  /** An inline value, or a `|`/`>` block scalar whose lines are indented beyond `parent`. */
  #scalarOrBlock(rest: string, line: Line, parent: number): Yaml {
    const m = /^([|>])([-+]?)(\d?)$/.exec(rest);
    if (!m) return inlineValue(rest, this.offset + line.no + 1);
    const [, style, chomp] = m;
    // Raw lines after the header, up to the next content line at or left of `parent`.
    const start = line.no + 1;
    let end = start;
    let blockIndent = -1;
    for (; end < this.#raw.length; end++) {
      const r = this.#raw[end];
      if (r.trim() === "") continue;
      const ind = r.length - r.trimStart().length;
      if (ind <= parent) break;
      if (blockIndent < 0) blockIndent = ind;
      if (ind < blockIndent) break;
    }
    while (this.#i < this.#lines.length && this.#lines[this.#i].no < end) this.#i++;
    const body = this.#raw.slice(start, end).map((r) => r.slice(Math.max(blockIndent, 0)));
    while (body.length > 0 && body[body.length - 1].trim() === "") body.pop();
    let text = style === "|" ? body.join("\n") : body.reduce(
      (acc, l, k) => k === 0 ? l : acc + (l === "" || body[k - 1] === "" ? "\n" : " ") + l,
      "",
    );
    if (chomp !== "-" && body.length > 0) text += "\n";
    return text;
  }
}

/** Parses every `---`-separated document of `text`. */
export function parseYamlDocuments(text: string): Yaml[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return [JSON.parse(trimmed)];
    } catch {
      // not JSON: parse as YAML flow below
    }
  }
  const raw = text.replace(/\r\n/g, "\n").split("\n");
  const docs: Yaml[] = [];
  let start = 0;
  for (let k = 0; k <= raw.length; k++) {
    if (k === raw.length || /^---(\s|$)/.test(raw[k]) || /^\.\.\.\s*$/.test(raw[k])) {
      const chunk = raw.slice(start, k);
      if (chunk.some((l) => stripComment(l).trim() !== "")) {
        docs.push(new Parser(chunk, start).parse());
      }
      start = k + 1;
    }
  }
  return docs;
}

/** Parses a single-document YAML (or JSON) text. */
export function parseYaml(text: string): Yaml {
  const docs = parseYamlDocuments(text);
  if (docs.length > 1) throw new SyntaxError(`Expected one YAML document, found ${docs.length}`);
  return docs[0] ?? null;
}
