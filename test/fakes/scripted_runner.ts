/** A {@link CommandRunner} for tests: records every call and answers from a handler. */
import type { CommandResult, CommandRunner, RunOptions } from "../../kernel/firewall/command.ts";

export interface Call {
  readonly argv: readonly string[];
  readonly stdin?: string;
}

export type Handler = (argv: readonly string[], opts: RunOptions) => CommandResult | undefined;

export class ScriptedRunner {
  readonly calls: Call[] = [];
  handler: Handler;

  constructor(handler: Handler) {
    this.handler = handler;
  }

  readonly run: CommandRunner = (argv, opts = {}) => {
    this.calls.push({ argv: [...argv], stdin: opts.stdin });
    const res = this.handler(argv, opts);
    return Promise.resolve(res ?? { code: 1, stdout: "", stderr: `unscripted: ${argv.join(" ")}` });
  };

  /** The stdin of every call whose program is `program`. */
  inputs(program: string): string[] {
    return this.calls.filter((c) => c.argv[0] === program).map((c) => c.stdin ?? "");
  }
}

export function ok(stdout = ""): CommandResult {
  return { code: 0, stdout, stderr: "" };
}

export function fail(stderr: string, code = 1): CommandResult {
  return { code, stdout: "", stderr };
}
