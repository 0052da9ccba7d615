/**
 * The one way this folder reaches the firewall tools: a {@link CommandRunner} runs an argv with
 * optional stdin and reports exit code and output. Tests pass a scripted runner; root tests pass
 * {@link netnsRunner} to act inside a throwaway network namespace.
 */

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Text written to the command's standard input. */
  readonly stdin?: string;
  readonly signal?: AbortSignal;
}

/**
 * Runs `argv` (program first) and resolves with its exit code and output, whatever the code.
 * Rejects with {@link MissingToolError} when the program is not installed.
 */
export type CommandRunner = (argv: readonly string[], opts?: RunOptions) => Promise<CommandResult>;

/** The program a firewall mode needs is not installed (the message names the fix). */
export class MissingToolError extends Error {
  readonly tool: string;
  constructor(tool: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MissingToolError";
    this.tool = tool;
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A runner that spawns the program directly (the production runner). */
export const systemRunner: CommandRunner = async (argv, opts = {}) => {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: opts.signal,
      env: { LC_ALL: "C" },
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new MissingToolError(argv[0], `Cannot run "${argv[0]}": it is not installed`, {
        cause: err,
      });
    }
    throw new Error(`Cannot run "${argv.join(" ")}"`, { cause: err });
  }
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(encoder.encode(opts.stdin));
      await writer.close();
    } catch {
      // The program exited without reading its input; its exit code tells the story.
    }
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
};

/** A runner that runs every command inside network namespace `name` (`ip netns exec`). */
export function netnsRunner(name: string, inner: CommandRunner = systemRunner): CommandRunner {
  return (argv, opts) => inner(["ip", "netns", "exec", name, ...argv], opts);
}

/** `argv` as a shell-like string for messages. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => /^[\w./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a)).join(" ");
}
