import assert from "node:assert/strict";
import { createLogger, describeError, klogHeader } from "./log.ts";

Deno.test("klogHeader() is klog's: severity, MMDD hh:mm:ss.micros, pid, component", () => {
  const ms = Date.UTC(2026, 10, 22, 3, 23, 42, 123);
  assert.equal(klogHeader("I", ms, 1234, "flanneld"), "I1122 03:23:42.123000    1234 flanneld] ");
  assert.equal(klogHeader("E", Date.UTC(2026, 0, 5), 7, "x"), "E0105 00:00:00.000000       7 x] ");
});

Deno.test("createLogger() writes one line per message line and honours -v", () => {
  const lines: string[] = [];
  const log = createLogger({ level: 1, write: (l) => lines.push(l), now: () => 0 });
  log.warn("a\nb");
  log.v(1, "shown");
  log.v(2, "hidden");
  assert.deepEqual(lines.map((l) => l.replace(/^(\w)\S+ \S+ +\d+ flanneld\] /, "$1 ")), [
    "W a\n",
    "W b\n",
    "I shown\n",
  ]);
});

Deno.test("describeError() prints the whole cause chain once", () => {
  const inner = new Error("connection refused");
  const outer = new Error("Cannot list leases", {
    cause: new Error("fetch failed", { cause: inner }),
  });
  assert.equal(describeError(outer), "Cannot list leases: fetch failed: connection refused");
  assert.equal(describeError(new Error("a: b", { cause: new Error("b") })), "a: b");
  assert.equal(describeError("plain"), "plain");
});
