/**
 * A small logger: one line per event on stderr, klog-shaped
 * (`I1122 03:23:42.123456    1234 flanneld] message`) so operators' greps keep working.
 * Verbosity from `-v`: `log.v(2, ...)` prints only when the level is at least 2.
 */

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs at info severity only when the verbosity is at least `level`. */
  v(level: number, message: string): void;
  readonly level: number;
}

export interface LoggerOptions {
  /** Verbosity (`-v`), default 0. */
  level?: number;
  /** Where lines go, default stderr. */
  write?: (line: string) => void;
  /** Clock, default `Date.now`. */
  now?: () => number;
  /** Component name in the header, default "flanneld". */
  component?: string;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line));
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** Formats the klog header for one severity letter at time `ms`. */
export function klogHeader(severity: string, ms: number, pid: number, component: string): string {
  const d = new Date(ms);
  const micros = pad(d.getUTCMilliseconds(), 3) + "000";
  return `${severity}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${micros} ` +
    `${String(pid).padStart(7)} ${component}] `;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 0;
  const write = options.write ?? writeStderr;
  const now = options.now ?? Date.now;
  const component = options.component ?? "flanneld";
  const pid = Deno.pid;
  const emit = (sev: string, message: string) => {
    for (const line of message.split("\n")) {
      write(klogHeader(sev, now(), pid, component) + line + "\n");
    }
  };
  return {
    level,
    info: (m) => emit("I", m),
    warn: (m) => emit("W", m),
    error: (m) => emit("E", m),
    v: (l, m) => {
      if (level >= l) emit("I", m);
    },
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = {
  level: 0,
  info() {},
  warn() {},
  error() {},
  v() {},
};

/** Formats an error with its whole `cause` chain: `outer: inner: innermost`. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 8; depth++) {
    if (e instanceof Error) {
      if (!parts.some((p) => p.includes(e instanceof Error ? e.message : ""))) {
        parts.push(e.message);
      }
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(": ");
}
