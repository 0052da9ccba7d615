/**
 * Bounded quoting of foreign values (network config settings, etcd keys and lease values, node
 * annotations, server answers) into log lines and error messages. A value longer than the limit
 * is cut and followed by its full size, so a 1 MB setting costs one short line, not a megabyte.
 */

/** How many characters of a foreign value a message shows. */
export const QUOTE_LIMIT = 200;

const encoder = new TextEncoder();

function cut(shown: string, whole: string): string {
  return `${shown}… (${encoder.encode(whole).byteLength} bytes)`;
}

/**
 * `text` as it is when at most `limit` characters long, else its first `limit` characters and
 * `… (N bytes)`. For raw JSON text and other values shown without quotes.
 */
export function clip(text: string, limit = QUOTE_LIMIT): string {
  if (text.length <= limit) return text;
  return cut(text.slice(0, limit).toWellFormed(), text);
}

/**
 * A foreign value for a message: a string JSON-quoted (`"10.5.0.0/16"`), anything else as its
 * JSON text; at most `limit` characters of it (escapes included), then `… (N bytes)`.
 * `JSON.stringify` walks deep nesting without overflowing the stack (no recursion of ours).
 */
export function quote(value: unknown, limit = QUOTE_LIMIT): string {
  if (typeof value !== "string") {
    if (value === null || typeof value !== "object") return clip(String(value), limit);
    let text: string | undefined;
    try {
      text = JSON.stringify(value); // no replacer: with one, V8 recurses and deep values overflow
    } catch {
      // cyclic, or holding a bigint
    }
    return clip(text ?? `(an ${Array.isArray(value) ? "array" : "object"})`, limit);
  }
  if (value.length <= limit) {
    const quoted = JSON.stringify(value);
    if (quoted.length <= limit + 2) return quoted;
  }
  let body = "";
  for (const ch of value) {
    const escaped = JSON.stringify(ch).slice(1, -1);
    if (body.length + escaped.length > limit) break;
    body += escaped;
  }
  return cut(`"${body}"`, value);
}
