/**
 * Splits the gateway's watch stream (newline-delimited JSON) into lines, whatever the chunking:
 * a chunk may end mid-line or mid-UTF-8-sequence.
 */
export class LineSplitter {
  #decoder = new TextDecoder();
  #buffer = "";

  /** Feeds one chunk; returns the complete, non-blank lines it finished. */
  push(chunk: Uint8Array): string[] {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    const parts = this.#buffer.split("\n");
    this.#buffer = parts.pop()!;
    return parts.map((l) => l.trim()).filter((l) => l !== "");
  }

  /** Whatever is left after the stream ended (a line without its newline), if not blank. */
  flush(): string | undefined {
    const rest = (this.#buffer + this.#decoder.decode()).trim();
    this.#buffer = "";
    return rest === "" ? undefined : rest;
  }
}
