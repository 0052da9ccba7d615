/**
 * The agent's life cycle behind `main.ts` (REFERENCE §0 steps 8-23): wait for a valid network
 * config, choose the external interface, register the backend's network (acquiring the lease),
 * write subnet.env, notify systemd, run the backend and hold the lease until aborted.
 * Every dependency comes in through `AgentDeps`, so tests drive it without a real host.
 */
import type { Backend, BackendFactory, ExternalInterface } from "./backends/mod.ts";
import type { Netlink } from "./kernel/netlink/types.ts";
import { ConfigError } from "./subnet/config.ts";
import { LeaseRevokedError, type NetworkConfig, type SubnetManager } from "./subnet/mod.ts";
import { formatIP4Net } from "./subnet/ip.ts";
import { formatSubnetEnv } from "./subnet/subnet_env.ts";
import { sleep } from "./util/abort.ts";
import { describeError, type Logger } from "./util/log.ts";

export interface AgentDeps {
  readonly manager: SubnetManager;
  /** Kernel access handed to the backend. */
  readonly netlink: Netlink;
  readonly log: Logger;
  /** Chooses the external interface once the config (and so the IP stack) is known. */
  selectInterface(config: NetworkConfig): Promise<ExternalInterface>;
  loadBackend(type: string): Promise<BackendFactory>;
  writeSubnetFile(content: string): Promise<void>;
  /** systemd `sd_notify`; resolves false when not under systemd. */
  notify(state: string): Promise<boolean>;
  /** Whether an error is worth retrying (an unreachable datastore) rather than fatal. */
  isTransient(err: unknown): boolean;
}

export interface AgentOptions {
  readonly subnetFile: string;
  readonly ipMasq: boolean;
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

async function untilConfig(
  deps: AgentDeps,
  opts: AgentOptions,
): Promise<NetworkConfig | undefined> {
  let lastMessage = "";
  while (!opts.signal.aborted) {
    try {
      return await deps.manager.getNetworkConfig({ signal: opts.signal });
    } catch (err) {
      if (opts.signal.aborted) return undefined;
      if (!(err instanceof ConfigError) && !deps.isTransient(err)) throw err;
      const message = describeError(err);
      // flannel logs every second; we log each distinct problem once, then every 30th retry.
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
  const { log, signal } = { log: deps.log, signal: opts.signal };
  log.info(`Created subnet manager: ${deps.manager.name}`);

  const config = await untilConfig(deps, opts);
  if (!config) return;
  log.info(`Found network config - Backend type: ${config.backendType}`);

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
    backend = await factory({ subnetManager: deps.manager, netlink: deps.netlink, extIface, log });
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
  log.info(
    `Acquired lease ${formatIP4Net(lease.subnet)} on ${extIface.name}, MTU ${network.mtu}, ` +
      `backend ${config.backendType}`,
  );

  try {
    await deps.writeSubnetFile(formatSubnetEnv(config, lease, network.mtu, opts.ipMasq));
    log.info(`Wrote subnet file to ${opts.subnetFile}`);
    log.info("flannel is ready");
  } catch (err) {
    log.warn(`Failed to write subnet file: ${describeError(err)}`);
  }

  // The backend stops when we are asked to, or when the own lease is revoked.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  log.info("Running backend.");
  const running = network.run({ signal: stop.signal }).catch((err) => {
    if (!stop.signal.aborted) log.error(`Backend stopped: ${describeError(err)}`);
  });

  try {
    await deps.notify("READY=1");
  } catch (err) {
    log.error(`Failed to notify systemd the message READY=1: ${describeError(err)}`);
  }

  try {
    await deps.manager.completeLease(lease, { signal });
    // A manager without renewal (Kubernetes) returns at once; keep serving until asked to stop.
    while (!signal.aborted) await sleep(86_400_000, signal);
  } catch (err) {
    if (err instanceof LeaseRevokedError) {
      log.info("Lease has been revoked. Shutting down daemon.");
    } else if (!signal.aborted) {
      // flannel keeps serving the data path (without renewals) until asked to stop.
      log.error(`Stopped monitoring lease: ${describeError(err)}`);
      while (!signal.aborted) await sleep(86_400_000, signal);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    stop.abort();
  }
  await running;
}
