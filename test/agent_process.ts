/**
 * Runs the agent (`main.ts`) as a child process for integration tests: collects its log lines,
 * waits for a line to appear, stops it with a signal, and always kills it on dispose.
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

export interface AgentProcessOptions {
  /** Extra environment (FLANNELD_*, NOTIFY_SOCKET ...). */
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec NS`). */
  netns?: string;
  /** Extra `deno run` options before the script (e.g. `--v8-flags=...`). */
  denoArgs?: string[];
  /** The module to run instead of this tree's `main.ts` (a moved copy, a bundle). */
  main?: string;
  /** Working directory of the agent (default: the test's). */
  cwd?: string;
}

export class AgentProcess implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #waiters = new Set<() => void>();
  readonly #reading: Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(args: string[], options: AgentProcessOptions = {}) {
    const deno = Deno.execPath();
    const argv = [
      deno,
      "run",
      "-A",
      "--quiet",
      ...(options.denoArgs ?? []),
      options.main ?? MAIN,
      ...args,
    ];
    const [cmd, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...argv] : argv;
    this.#child = new Deno.Command(cmd, {
      args: rest,
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reading = Promise.all([
      this.#collect(this.#child.stderr),
      this.#collect(this.#child.stdout),
    ]).then(() => {});
    this.status = this.#child.status.then((s) => {
      this.#exited = true;
      this.#wake();
      return s;
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
      if (Deno.env.get("TEST_AGENT_LOG")) { for (const p of parts) console.error(`[agent] ${p}`); }
      this.#wake();
    }
    if (rest) this.lines.push(rest);
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  /**
   * Resolves with the first log line matching `re` (at or after line number `from`); rejects
   * after `timeoutMs` or on exit.
   */
  waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find((l, i) => i >= from && re.test(l));
        if (hit !== undefined) {
          done();
          resolve(hit);
        } else if (this.#exited) {
          done();
          reject(new Error(`agent exited before logging ${re}:\n${this.lines.join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${re}; agent log:\n${this.lines.join("\n")}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Sends `signal` and waits for the exit status (SIGKILL after `timeoutMs`). */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 5000): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, timeoutMs);
      await this.status;
      clearTimeout(timer);
    }
    await this.#reading;
    return await this.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
