import assert from "node:assert/strict";
import { createFlannelMetrics, Registry } from "./metrics.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format as far as we emit it: HELP and TYPE once per
 * family and before its samples, valid names, quoted and escaped label values, numeric values,
 * histogram buckets cumulative and ending in `+Inf` equal to `_count`. Throws on any violation.
 */
function parseExposition(text: string): Map<string, { type: string; samples: Sample[] }> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const families = new Map<string, { type: string; samples: Sample[] }>();
  const helped = new Set<string>();
  const SAMPLE =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/;
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      assert.ok(!helped.has(m[1]), `HELP twice for ${m[1]}`);
      helped.add(m[1]);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.ok(!families.has(m[1]), `TYPE twice for ${m[1]}`);
      families.set(m[1], { type: m[2], samples: [] });
      continue;
    }
    m = SAMPLE.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const [, name, labelText, valueText] = m;
    const family = [...families.entries()].find(([f, { type }]) =>
      name === f || (type === "histogram" && /^(.*)_(bucket|sum|count)$/.exec(name)?.[1] === f)
    );
    assert.ok(family, `sample ${name} before its TYPE`);
    const labels: Record<string, string> = {};
    for (const lm of (labelText ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    }
    const value = valueText === "+Inf"
      ? Infinity
      : valueText === "-Inf"
      ? -Infinity
      : Number(valueText);
    assert.ok(valueText === "NaN" || !Number.isNaN(value), `bad value ${valueText}`);
    family[1].samples.push({ name, labels, value });
  }
  for (const [name, { type, samples }] of families) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${name}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(
          Number(buckets[i].labels.le.replace("+Inf", "Infinity")) >
            Number(buckets[i - 1].labels.le),
        );
        assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} buckets not cumulative`);
      }
      assert.equal(buckets.at(-1)!.labels.le, "+Inf");
      const count = samples.find((s) =>
        s.name === `${name}_count` && JSON.stringify(s.labels) === key
      );
      assert.equal(count?.value, buckets.at(-1)!.value, `${name} +Inf bucket equals _count`);
    }
  }
  return families;
}

function value(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const { samples } of parseExposition(text).values()) {
    const s = samples.find((s) =>
      s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels)
    );
    if (s) return s.value;
  }
  return undefined;
}

Deno.test("Registry.render() of flanneld's metrics parses as Prometheus text and moves", () => {
  const reg = new Registry();
  const m = createFlannelMetrics(reg);
  const before = reg.render();
  const families = parseExposition(before);
  assert.deepEqual([...families.keys()].filter((n) => !n.startsWith("flanneld_")), []);
  assert.equal(families.get("flanneld_reconcile_duration_seconds")?.type, "histogram");
  assert.equal(value(before, "flanneld_peers_known", { family: "ipv4" }), undefined);

  m.peersKnown.set(3, { family: "ipv4" });
  m.peersKnown.set(4, { family: "ipv6" });
  m.peersProgrammed.set(2, { family: "ipv4" });
  m.leaseExpiry.set(1_790_000_000.5);
  m.reconcileRuns.inc({ kind: "route" });
  m.reconcileRuns.inc({ kind: "route" });
  m.reconcileErrors.inc({ kind: "fdb" });
  m.reconcileDuration.observe(0.003, { kind: "route" });
  m.reconcileDuration.observe(7, { kind: "route" });
  m.reconcileDuration.observe(20, { kind: "route" });
  m.kernelObjectsRestored.inc({ kind: "iptables" }, 2);
  m.udpDrops.inc({ reason: "no_route" });
  m.buildInfo.set(1, { version: "v0.1.0" });
  const after = reg.render();
  assert.equal(value(after, "flanneld_peers_known", { family: "ipv4" }), 3);
  assert.equal(value(after, "flanneld_peers_known", { family: "ipv6" }), 4);
  assert.equal(value(after, "flanneld_peers_programmed", { family: "ipv4" }), 2);
  assert.equal(value(after, "flanneld_lease_expiry_timestamp_seconds"), 1_790_000_000.5);
  assert.equal(value(after, "flanneld_reconcile_runs_total", { kind: "route" }), 2);
  assert.equal(value(after, "flanneld_reconcile_errors_total", { kind: "fdb" }), 1);
  assert.equal(
    value(after, "flanneld_reconcile_duration_seconds_bucket", { kind: "route", le: "0.005" }),
    1,
  );
  assert.equal(
    value(after, "flanneld_reconcile_duration_seconds_bucket", { kind: "route", le: "10" }),
    2,
  );
  assert.equal(
    value(after, "flanneld_reconcile_duration_seconds_bucket", { kind: "route", le: "+Inf" }),
    3,
  );
  assert.equal(value(after, "flanneld_reconcile_duration_seconds_sum", { kind: "route" }), 27.003);
  assert.equal(value(after, "flanneld_kernel_objects_restored_total", { kind: "iptables" }), 2);
  assert.equal(value(after, "flanneld_udp_dropped_packets_total", { reason: "no_route" }), 1);
  assert.equal(value(after, "flanneld_build_info", { version: "v0.1.0" }), 1);

  m.peersKnown.set(1, { family: "ipv4" });
  assert.equal(value(reg.render(), "flanneld_peers_known", { family: "ipv4" }), 1);
});

Deno.test("Registry escapes label values and help text", () => {
  const reg = new Registry();
  const c = reg.counter({ name: "x_total", help: "line1\nback\\slash", labelNames: ["path"] });
  c.inc({ path: 'a"b\\c\nd' });
  const text = reg.render();
  assert.match(text, /# HELP x_total line1\\nback\\\\slash\n/);
  assert.match(text, /x_total\{path="a\\"b\\\\c\\nd"\} 1\n/);
  assert.equal(value(text, "x_total", { path: 'a"b\\c\nd' }), 1);
});

Deno.test("Registry rejects misuse with the metric named", async (t) => {
  const reg = new Registry();
  const c = reg.counter({ name: "runs_total", help: "h", labelNames: ["kind"] });
  await t.step("wrong labels", () => {
    assert.throws(() => c.inc({}), /"runs_total" takes labels \[kind\], got \[\]/);
    assert.throws(() => c.inc({ kind: "a", other: "b" }), TypeError);
  });
  await t.step(
    "negative counter increment",
    () => assert.throws(() => c.inc({ kind: "a" }, -1), RangeError),
  );
  await t.step(
    "duplicate name",
    () => assert.throws(() => reg.gauge({ name: "runs_total", help: "h" }), /already registered/),
  );
  await t.step("bad names", () => {
    assert.throws(() => reg.gauge({ name: "1bad", help: "h" }), /Invalid metric name "1bad"/);
    assert.throws(
      () => reg.gauge({ name: "ok", help: "h", labelNames: ["le"] }),
      /Invalid label name "le"/,
    );
  });
  await t.step("unsorted buckets", () => {
    assert.throws(() => reg.histogram({ name: "h", help: "h", buckets: [1, 0.5] }), /increasing/);
  });
});

Deno.test("Histogram.startTimer() observes elapsed seconds", () => {
  const reg = new Registry();
  const h = reg.histogram({ name: "d_seconds", help: "h", buckets: [1] });
  let now = 1000;
  const stop = h.startTimer({}, () => now);
  now = 1500;
  assert.equal(stop(), 0.5);
  assert.equal(h.count(), 1);
  assert.equal(value(reg.render(), "d_seconds_bucket", { le: "1" }), 1);
});

Deno.test("Gauge values cover special floats", () => {
  const reg = new Registry();
  const g = reg.gauge({ name: "g", help: "h" });
  for (
    const [v, text] of [[NaN, "NaN"], [Infinity, "+Inf"], [-Infinity, "-Inf"], [
      -2.5,
      "-2.5",
    ]] as const
  ) {
    g.set(v);
    assert.ok(reg.render().includes(`\ng ${text}\n`), text);
    parseExposition(reg.render());
  }
});
