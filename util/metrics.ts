/**
 * A tiny Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms
 * with labels, and flanneld's own metrics as ready-made handles ({@link createFlannelMetrics}).
 * There is no process-wide instance: `main.ts` builds one registry and its handles and passes
 * them down like the logger (the registry to `util/health.ts`, which serves it at `/metrics`).
 */

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The content type of {@link Registry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface MetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds in increasing order; `+Inf` is implied. */
  readonly buckets?: readonly number[];
}

/** Seconds; from 1 ms to 10 s, for reconcile passes and kernel calls. */
export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

abstract class Metric<V> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: "counter" | "gauge" | "histogram";
  protected readonly series = new Map<string, { labels: Labels; value: V }>();

  constructor(opts: MetricOptions) {
    if (!METRIC_NAME.test(opts.name)) throw new TypeError(`Invalid metric name "${opts.name}"`);
    for (const l of opts.labelNames ?? []) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || l === "le") {
        throw new TypeError(`Invalid label name "${l}" for metric "${opts.name}"`);
      }
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
  }

  /** The series for `labels` (exactly the declared label names), created with `init()`. */
  protected entry(labels: Labels, init: () => V): { labels: Labels; value: V } {
    const keys = Object.keys(labels);
    if (
      keys.length !== this.labelNames.length || !this.labelNames.every((n) => n in labels)
    ) {
      throw new TypeError(
        `Metric "${this.name}" takes labels [${this.labelNames.join(", ")}], got ` +
          `[${keys.join(", ")}]`,
      );
    }
    const key = this.labelNames.map((n) => labels[n]).join("\u0000");
    let e = this.series.get(key);
    if (!e) {
      e = { labels: { ...labels }, value: init() };
      this.series.set(key, e);
    }
    return e;
  }

  protected labelText(labels: Labels, extra?: [string, string]): string {
    const parts = this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return parts.length ? `{${parts.join(",")}}` : "";
  }

  /** HELP, TYPE and sample lines. */
  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    for (const { labels, value } of this.series.values()) {
      lines.push(...this.samples(labels, value));
    }
    return lines;
  }

  protected abstract samples(labels: Labels, value: V): string[];
}

/** A monotonically increasing count. */
export class Counter extends Metric<number> {
  readonly type = "counter";

  constructor(opts: MetricOptions) {
    super(opts);
    if (this.labelNames.length === 0) this.entry({}, () => 0);
  }

  inc(labels: Labels = {}, n = 1): void {
    if (!(n >= 0)) throw new RangeError(`Counter "${this.name}" cannot be increased by ${n}`);
    this.entry(labels, () => 0).value += n;
  }

  get(labels: Labels = {}): number {
    return this.entry(labels, () => 0).value;
  }

  protected samples(labels: Labels, value: number): string[] {
    return [`${this.name}${this.labelText(labels)} ${formatValue(value)}`];
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric<number> {
  readonly type = "gauge";

  constructor(opts: MetricOptions) {
    super(opts);
    if (this.labelNames.length === 0) this.entry({}, () => 0);
  }

  set(value: number, labels: Labels = {}): void {
    this.entry(labels, () => 0).value = value;
  }

  inc(labels: Labels = {}, n = 1): void {
    this.entry(labels, () => 0).value += n;
  }

  dec(labels: Labels = {}, n = 1): void {
    this.entry(labels, () => 0).value -= n;
  }

  get(labels: Labels = {}): number {
    return this.entry(labels, () => 0).value;
  }

  protected samples(labels: Labels, value: number): string[] {
    return [`${this.name}${this.labelText(labels)} ${formatValue(value)}`];
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Metric<HistogramValue> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions) {
    super(opts);
    const b = opts.buckets ?? DEFAULT_BUCKETS;
    if (b.some((v, i) => i > 0 && v <= b[i - 1]) || b.some((v) => !Number.isFinite(v))) {
      throw new TypeError(`Buckets of histogram "${opts.name}" must be finite and increasing`);
    }
    this.buckets = b;
  }

  #init = (): HistogramValue => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 });

  observe(value: number, labels: Labels = {}): void {
    const v = this.entry(labels, this.#init).value;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) v.counts[i]++;
    v.sum += value;
    v.count++;
  }

  /** Starts a timer; the returned function observes the elapsed seconds and returns them. */
  startTimer(
    labels: Labels = {},
    now: () => number = performance.now.bind(performance),
  ): () => number {
    const start = now();
    return () => {
      const seconds = (now() - start) / 1000;
      this.observe(seconds, labels);
      return seconds;
    };
  }

  /** The number of observations for `labels`. */
  count(labels: Labels = {}): number {
    return this.entry(labels, this.#init).value.count;
  }

  protected samples(labels: Labels, v: HistogramValue): string[] {
    const lines = this.buckets.map((b, i) =>
      `${this.name}_bucket${this.labelText(labels, ["le", formatValue(b)])} ${v.counts[i]}`
    );
    lines.push(
      `${this.name}_bucket${this.labelText(labels, ["le", "+Inf"])} ${v.count}`,
      `${this.name}_sum${this.labelText(labels)} ${formatValue(v.sum)}`,
      `${this.name}_count${this.labelText(labels)} ${v.count}`,
    );
    return lines;
  }
}

/** A set of metrics rendered together. */
export class Registry {
  readonly #metrics = new Map<string, Metric<unknown>>();

  #add<M extends Metric<unknown>>(m: M): M {
    if (this.#metrics.has(m.name)) throw new TypeError(`Metric "${m.name}" is already registered`);
    this.#metrics.set(m.name, m);
    return m;
  }

  counter(opts: MetricOptions): Counter {
    return this.#add(new Counter(opts));
  }

  gauge(opts: MetricOptions): Gauge {
    return this.#add(new Gauge(opts));
  }

  histogram(opts: HistogramOptions): Histogram {
    return this.#add(new Histogram(opts));
  }

  /** The exposition text of every metric, in registration order. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.#metrics.values()) lines.push(...m.render());
    return lines.join("\n") + "\n";
  }
}

/** flanneld's metrics. Kinds and sources are short lower-case words (`route`, `etcd`, ...). */
export interface FlannelMetrics {
  /** `flanneld_build_info{version}` = 1. */
  readonly buildInfo: Gauge;
  /** Unix time (s) at which the own lease expires unless renewed. */
  readonly leaseExpiry: Gauge;
  /** Renewals of the own lease, `result` = `ok` | `error`. */
  readonly leaseRenewals: Counter;
  /** Peers (remote leases) the agent knows about. */
  readonly peersKnown: Gauge;
  /** Peers whose data path (routes, neighbours, FDB) is programmed. */
  readonly peersProgrammed: Gauge;
  /** Reconcile passes per `kind`: the backend's (`route` for host-gw, `vxlan`, `udp`). */
  readonly reconcileRuns: Counter;
  /** Failed reconcile passes per `kind`, plus one per peer a pass could not program. */
  readonly reconcileErrors: Counter;
  /** Duration of reconcile passes per `kind`, in seconds. */
  readonly reconcileDuration: Histogram;
  /** Watch streams re-established, per `source` (`etcd`, `kube`, `netlink`). */
  readonly watchReconnects: Counter;
  /** Kernel objects put back by self-healing, per `kind` (a backend's, `iptables`, `blackhole`…). */
  readonly kernelObjectsRestored: Counter;
  /**
   * Kernel change notifications lost (netlink `ENOBUFS`: the socket's buffer overflowed, or a
   * message that could not be decoded), per `kind`; each is answered by one full reconcile.
   */
  readonly kernelEventOverflows: Counter;
  /** Packets through the udp backend, `direction` = `tx` (to a peer) | `rx` (from a peer). */
  readonly udpPackets: Counter;
  /** Packets the udp backend dropped, per `reason` (`no_route`, `ttl`, `bad_packet`, `send_error`, ...). */
  readonly udpDrops: Counter;
}

/** Registers flanneld's metrics in `registry` and returns their handles. */
export function createFlannelMetrics(registry: Registry): FlannelMetrics {
  return {
    buildInfo: registry.gauge({
      name: "flanneld_build_info",
      help: "Always 1; the version label names the running flanneld.",
      labelNames: ["version"],
    }),
    leaseExpiry: registry.gauge({
      name: "flanneld_lease_expiry_timestamp_seconds",
      help: "Unix time at which the own subnet lease expires unless renewed.",
    }),
    leaseRenewals: registry.counter({
      name: "flanneld_lease_renewals_total",
      help: "Renewals of the own subnet lease, by result.",
      labelNames: ["result"],
    }),
    peersKnown: registry.gauge({
      name: "flanneld_peers_known",
      help: "Remote leases (peers) known to the agent, by address family (ipv4, ipv6).",
      labelNames: ["family"],
    }),
    peersProgrammed: registry.gauge({
      name: "flanneld_peers_programmed",
      help: "Peers whose data path is programmed in the kernel, by address family (ipv4, ipv6).",
      labelNames: ["family"],
    }),
    reconcileRuns: registry.counter({
      name: "flanneld_reconcile_runs_total",
      help: "Reconcile passes, by object kind.",
      labelNames: ["kind"],
    }),
    reconcileErrors: registry.counter({
      name: "flanneld_reconcile_errors_total",
      help: "Reconcile passes that failed, by object kind.",
      labelNames: ["kind"],
    }),
    reconcileDuration: registry.histogram({
      name: "flanneld_reconcile_duration_seconds",
      help: "Duration of reconcile passes, by object kind.",
      labelNames: ["kind"],
    }),
    watchReconnects: registry.counter({
      name: "flanneld_watch_reconnects_total",
      help: "Watch streams re-established, by source.",
      labelNames: ["source"],
    }),
    kernelObjectsRestored: registry.counter({
      name: "flanneld_kernel_objects_restored_total",
      help: "Kernel objects that disappeared and were put back by self-healing, by kind.",
      labelNames: ["kind"],
    }),
    kernelEventOverflows: registry.counter({
      name: "flanneld_kernel_event_overflows_total",
      help: "Kernel change notifications lost (netlink ENOBUFS), each answered by a full " +
        "reconcile, by kind.",
      labelNames: ["kind"],
    }),
    udpPackets: registry.counter({
      name: "flanneld_udp_packets_total",
      help: "Packets forwarded by the udp backend, by direction (tx, rx).",
      labelNames: ["direction"],
    }),
    udpDrops: registry.counter({
      name: "flanneld_udp_dropped_packets_total",
      help: "Packets dropped by the udp backend, by reason.",
      labelNames: ["reason"],
    }),
  };
}

/** Handles in a registry of their own that nobody serves: for parts run without metrics. */
export function unservedMetrics(): FlannelMetrics {
  return createFlannelMetrics(new Registry());
}
