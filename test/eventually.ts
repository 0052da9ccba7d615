/** The one polling helper tests use to wait for a condition instead of sleeping. */

/**
 * Polls `cond` every `intervalMs` until it holds; throws after `timeoutMs`, naming `what`
 * (a function is called only then, for descriptions that read the current state).
 */
export async function eventually(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string | (() => string),
  intervalMs = 20,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) {
      const text = typeof what === "string" ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
