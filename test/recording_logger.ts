/** The one logger tests record with, so a test can check what was logged, not only what was done. */
import type { Logger } from "../util/log.ts";

export interface RecordingLogger extends Logger {
  /** One entry per line: the severity letter, a space, the message (`"W Ignoring …"`). */
  readonly lines: string[];
}

/**
 * A logger that keeps its lines, formatted `"I …"`, `"W …"`, `"E …"`; `v(n, …)` is kept (as `I`)
 * when `level` (default 10: everything) is at least `n`, like the real logger.
 */
export function recordingLogger(level = 10): RecordingLogger {
  const lines: string[] = [];
  const keep = (severity: string) => (message: string) => {
    for (const line of message.split("\n")) lines.push(`${severity} ${line}`);
  };
  const info = keep("I");
  return {
    lines,
    level,
    info,
    warn: keep("W"),
    error: keep("E"),
    v: (l, message) => {
      if (level >= l) info(message);
    },
  };
}
