/**
 * The agent's life cycle behind `main.ts` (flannel main.go's start-up order): wait for a valid network
 * config, choose the external interface, register the backend's network (acquiring the lease),
 * write subnet.env, notify systemd, run the backend and hold the lease until aborted.
 * Every dependency comes in through `AgentDeps`, so tests drive it without a real host.
 */
import type { Backend, BackendFactory, ExternalInterface } from "./backends/mod.ts";
import type { Netlink } from "./kernel/netlink/types.ts";
import { ConfigError } from "./subnet/config.ts";
import {
  type Lease,
  LeaseRevokedError,
  type NetworkConfig,
  type SubnetManager,
} from "./subnet/mod.ts";
import { formatIP4, formatIP4Net, formatIP6Net } from "./subnet/ip.ts";
import { formatSubnetEnv } from "./subnet/subnet_env.ts";
import type { TrafficManager, TrafficMode } from "./kernel/firewall/mod.ts";
import { runBlackholeRoutes } from "./kernel/blackhole.ts";
import type { PreviousSubnets } from "./subnet/subnet_env.ts";
import type { Health } from "./util/health.ts";
import type { FlannelMetrics } from "./util/metrics.ts";
import { sleep } from "./util/abort.ts";
import { describeError, type Logger } from "./util/log.ts";

export interface AgentDeps {
  readonly manager: SubnetManager;
  /** Kernel access handed to the backend. */
  readonly netlink: Netlink;
  readonly log: Logger;
  /** Where the agent and its backend count what they do (served at `/metrics`). */
  readonly metrics: FlannelMetrics;
  /**
   * The first network config request, started by the caller as early as it can so that the
   * request overlaps its own start-up work; settled as a result, never rejected. Later attempts
   * (after a failure) go to `manager.getNetworkConfig()`.
   */
  readonly firstConfig?: Promise<Settled<NetworkConfig>>;
  /** Chooses the external interface once the config (and so the IP stack) is known. */
  selectInterface(config: NetworkConfig): Promise<ExternalInterface>;
  loadBackend(type: string): Promise<BackendFactory>;
  writeSubnetFile(content: string): Promise<void>;
  /** systemd `sd_notify`; resolves false when not under systemd. */
  notify(state: string): Promise<boolean>;
  /** Whether an error is worth retrying (an unreachable datastore) rather than fatal. */
  isTransient(err: unknown): boolean;
  /** Builds the firewall manager for the configured mode (iptables or nftables). */
  createTrafficManager(mode: TrafficMode): TrafficManager;
  /** Liveness and readiness, served on `/healthz` and `/readyz`. */
  readonly health: Health;
  /** systemd watchdog loop (`WATCHDOG=1`); a no-op when `WATCHDOG_USEC` is unset. */
  runWatchdog(opts: { signal: AbortSignal; isHealthy: () => boolean }): Promise<void>;
}

export interface AgentOptions {
  readonly subnetFile: string;
  readonly ipMasq: boolean;
  /** `--ip-masq-fully-random-disable` negated. */
  readonly ipMasqFullyRandom?: boolean;
  /** `--iptables-forward-rules` (default true). */
  readonly forwardRules?: boolean;
  /** `--iptables-resync` seconds (default 5). */
  readonly resyncSeconds?: number;
  /** `--ip-blackhole-route`. */
  readonly blackholeRoute?: boolean;
  /** Subnets of the previous subnet.env, for removing rules of an old network or subnet. */
  readonly previous?: PreviousSubnets;
  readonly signal: AbortSignal;
  /** Delay between config fetch attempts (flannel: 1 s). */
  readonly retryMs?: number;
}

/** A failure that should end the process with exit status 1, with the log line to print. */
export class AgentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AgentError";
  }
}

/** A promise's outcome as a value, so that it can wait unobserved without an unhandled rejection. */
export type Settled<T> = { readonly value: T } | { readonly error: unknown };

/** `promise` settled as a value (see {@link Settled}). */
export function settled<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}

async function untilConfig(
  deps: AgentDeps,
  opts: AgentOptions,
): Promise<NetworkConfig | undefined> {
  let lastMessage = "";
  let first = deps.firstConfig;
  while (!opts.signal.aborted) {
    try {
      if (first) {
        const outcome = await first;
        first = undefined;
        if ("error" in outcome) throw outcome.error;
        return outcome.value;
      }
      return await deps.manager.getNetworkConfig({ signal: opts.signal });
    } catch (err) {
      if (opts.signal.aborted) return undefined;
      if (!(err instanceof ConfigError) && !deps.isTransient(err)) {
        // E.g. etcd's auth refusing us: a setting to fix, named by the error.
        throw new AgentError(`Couldn't fetch network config: ${describeError(err)}`, {
          cause: err,
        });
      }
      const message = describeError(err);
      // flannel logs every second; we log each distinct problem once.
      if (message !== lastMessage) deps.log.error(`Couldn't fetch network config: ${message}`);
      lastMessage = message;
      await sleep(opts.retryMs ?? 1000, opts.signal);
    }
  }
  return undefined;
}

/**
 * Runs the agent until `opts.signal` aborts or the own lease is revoked. Resolves normally in
 * both cases (exit 0); throws `AgentError` for failures that end the process with status 1.
 */
export async function runAgent(deps: AgentDeps, opts: AgentOptions): Promise<void> {
  const { log, metrics } = deps, signal = opts.signal;
  log.info(`Created subnet manager: ${deps.manager.name}`);

  const config = await untilConfig(deps, opts);
  if (!config) return;
  log.info(`Found network config - Backend type: ${config.backendType}`);

  // As in flannel's main.go: bridged pod traffic only reaches iptables with br_netfilter. flannel exits;
  // we warn, since routing between hosts works without it.
  if (!config.enableNFTables && !(await exists("/proc/sys/net/bridge/bridge-nf-call-iptables"))) {
    log.warn(
      "Failed to check br_netfilter: /proc/sys/net/bridge/bridge-nf-call-iptables does not exist; " +
        "traffic between pods on the same bridge will bypass iptables (run: modprobe br_netfilter)",
    );
  }

  // As in flannel's main.go (first half): remove the other firewall mode's leftovers while the lease is acquired.
  const traffic = deps.createTrafficManager(config.enableNFTables ? "nftables" : "iptables");
  const cleanup = traffic.cleanupOther({ signal }).then(() => undefined, (err) => err);

  let extIface: ExternalInterface;
  try {
    extIface = await deps.selectInterface(config);
  } catch (err) {
    throw new AgentError(`Failed to find any valid interface to use: ${describeError(err)}`, {
      cause: err,
    });
  }

  let backend: Backend;
  try {
    const factory = await deps.loadBackend(config.backendType);
    backend = await factory({
      subnetManager: deps.manager,
      netlink: deps.netlink,
      extIface,
      log,
      metrics,
    });
  } catch (err) {
    throw new AgentError(`Error fetching backend: ${describeError(err)}`, { cause: err });
  }

  let network;
  while (true) {
    try {
      network = await backend.registerNetwork(config, { signal });
      break;
    } catch (err) {
      if (signal.aborted) return;
      if (!deps.isTransient(err)) {
        throw new AgentError(`Error registering network: ${describeError(err)}`, { cause: err });
      }
      log.error(`Error registering network (retrying in 1 s): ${describeError(err)}`);
      await sleep(opts.retryMs ?? 1000, signal);
    }
  }
  const lease = network.lease;
  deps.health.setReady("lease", true);
  if (lease.expiration !== undefined) metrics.leaseExpiry.set(lease.expiration / 1000);
  log.info(
    `Acquired lease ${formatIP4Net(lease.subnet)}: interface ${extIface.name}, public IP ${
      formatIP4(extIface.extAddr ?? 0)
    }, backend ${config.backendType}, MTU ${network.mtu}`,
  );

  // Every loop started from here on (rule resync, blackhole routes, backend, heartbeat,
  // watchdog) runs until `stop` aborts, on shutdown or revocation, and is awaited before we
  // return: main.ts then closes netlink and the health server under none of them.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  const loops: Promise<void>[] = [];
  const track = (name: string, loop: Promise<unknown>) =>
    loops.push(loop.then(() => {}, (err) => {
      if (!stop.signal.aborted) log.error(`${name} stopped: ${describeError(err)}`);
    }));
  try {
    await installTrafficRules(deps, opts, config, lease, traffic, await cleanup, {
      signal: stop.signal,
      track,
    });

    if (opts.blackholeRoute) {
      const subnets = [formatIP4Net(lease.subnet)];
      if (lease.ipv6Subnet) subnets.push(formatIP6Net(lease.ipv6Subnet));
      track(
        "Blackhole route check",
        runBlackholeRoutes({
          netlink: deps.netlink,
          subnets,
          periodSeconds: opts.resyncSeconds ?? 5,
          log,
          signal: stop.signal,
          onRestored: () => metrics.kernelObjectsRestored.inc({ kind: "blackhole" }),
        }),
      );
    }

    try {
      await deps.writeSubnetFile(formatSubnetEnv(config, lease, network.mtu, opts.ipMasq));
      deps.health.setReady("subnet-file", true);
      log.info(`Wrote subnet file to ${opts.subnetFile}`);
      log.info("flannel is ready");
    } catch (err) {
      log.warn(`Failed to write subnet file: ${describeError(err)}`);
    }

    log.info("Running backend.");
    track(
      "Backend",
      network.run({ signal: stop.signal }).finally(() => deps.health.setReady("backend", false)),
    );
    deps.health.setReady("backend", true);
    // Proves the event loop is not blocked (a stuck synchronous call would stop it).
    track("Event-loop heartbeat", beat(deps.health, "event-loop", 5_000, stop.signal));

    try {
      await deps.notify("READY=1");
    } catch (err) {
      log.error(`Failed to notify systemd the message READY=1: ${describeError(err)}`);
    }
    track(
      "Watchdog",
      deps.runWatchdog({ signal: stop.signal, isHealthy: () => deps.health.stale().length === 0 }),
    );

    try {
      await deps.manager.completeLease(lease, { signal });
    } catch (err) {
      if (err instanceof LeaseRevokedError) {
        log.info("Lease has been revoked. Shutting down daemon.");
      } else if (!signal.aborted) {
        // flannel keeps serving the data path (without renewals) until asked to stop.
        log.error(`Stopped monitoring lease: ${describeError(err)}`);
        while (!signal.aborted) await sleep(86_400_000, signal);
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    stop.abort();
    await Promise.all(loops);
  }
}

/** flannel main.go's start-up order: the other mode's leftovers gone, masquerade and forward rules, resync loop. */
async function installTrafficRules(
  deps: AgentDeps,
  opts: AgentOptions,
  config: NetworkConfig,
  lease: Lease,
  traffic: TrafficManager,
  cleanupError: unknown,
  loops: { signal: AbortSignal; track(name: string, loop: Promise<unknown>): void },
): Promise<void> {
  const log = deps.log, signal = loops.signal;
  if (cleanupError) {
    throw new AgentError(
      `Failed to clean up ${
        traffic.mode === "iptables" ? "nftables" : "iptables"
      } rules of the other mode: ${describeError(cleanupError)}`,
      { cause: cleanupError },
    );
  }
  const network = config.network ? formatIP4Net(config.network) : undefined;
  const ipv6Network = config.ipv6Network ? formatIP6Net(config.ipv6Network) : undefined;
  if (opts.ipMasq) {
    const prev = opts.previous ?? {};
    try {
      await traffic.setupMasq({
        network,
        subnet: network ? formatIP4Net(lease.subnet) : undefined,
        ipv6Network,
        ipv6Subnet: ipv6Network && lease.ipv6Subnet ? formatIP6Net(lease.ipv6Subnet) : undefined,
        prevNetwork: prev.network && formatIP4Net(prev.network),
        prevSubnet: prev.subnet && formatIP4Net(prev.subnet),
        prevIpv6Network: prev.ipv6Network && formatIP6Net(prev.ipv6Network),
        prevIpv6Subnet: prev.ipv6Subnet && formatIP6Net(prev.ipv6Subnet),
        fullyRandom: opts.ipMasqFullyRandom ?? true,
        signal,
      });
    } catch (err) {
      throw new AgentError(`Failed to setup masq rules: ${describeError(err)}`, { cause: err });
    }
  }
  if (opts.forwardRules ?? true) {
    try {
      await traffic.setupForward({ network, ipv6Network, signal });
    } catch (err) {
      log.error(`Failed to setup forward rules: ${describeError(err)}`);
    }
  }
  deps.health.setReady("rules", true);
  if (opts.ipMasq || (opts.forwardRules ?? true)) {
    const resyncSeconds = opts.resyncSeconds ?? 5;
    const hb = deps.health.heartbeat("traffic-rules", (3 * resyncSeconds + 10) * 1000);
    loops.track(
      "Traffic rule resync",
      traffic.run({ signal, resyncSeconds, onTick: () => hb.beat() }).finally(() => hb.stop()),
    );
  }
}

/** Beats a heartbeat named `name` every `everyMs` until `signal` aborts. */
async function beat(health: Health, name: string, everyMs: number, signal: AbortSignal) {
  const hb = health.heartbeat(name, everyMs * 3);
  while (await sleep(everyMs, signal)) hb.beat();
  hb.stop();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
