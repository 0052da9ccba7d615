/**
 * flanneld entry point: parses flags, builds the real dependencies once (subnet manager, netlink,
 * firewall, metrics, health server), runs the agent, and owns the process exit status.
 * Permissions: network (etcd or the Kubernetes API, health), read/write (subnet.env, TLS files,
 * procfs/sysfs, /dev/net/tun), env (FLANNELD_*, NOTIFY_SOCKET, WATCHDOG_*,
 * FLANNEL_ETCD_WATCH_CHECK_MS, NODE_NAME and the other Kubernetes variables), ffi (netlink, the
 * TUN device and udp data path, sd_notify), run (iptables/nftables, kubeconfig exec credential
 * plugins).
 *
 *   deno run -A main.ts --etcd-endpoints=http://127.0.0.1:2379 --iface=eth0
 */
import { AgentError, runAgent, type Settled, settled } from "./agent.ts";
import { selectExternalInterface } from "./backends/external_interface.ts";
import { loadBackend } from "./backends/mod.ts";
import { FlagError } from "./cli/flags.ts";
import {
  type Options,
  parseOptions,
  redactedOptions,
  usage,
  validateOptions,
} from "./cli/options.ts";
import {
  defaultRouteIndex,
  type HostInterface,
  hostInterfaces,
  ipv6DisabledInterfaces,
  routeToward,
} from "./kernel/iface.ts";
import { openNetlink } from "./kernel/netlink/mod.ts";
import { EtcdClient, EtcdUnavailableError } from "./subnet/etcd/client.ts";
import { EtcdSubnetManager } from "./subnet/etcd/manager.ts";
import { type PreviousSubnets, readPreviousSubnets, writeSubnetFile } from "./subnet/subnet_env.ts";
import type { SubnetManager } from "./subnet/mod.ts";
import { sdNotify } from "./util/sd_notify.ts";
import { createTrafficManager } from "./kernel/firewall/mod.ts";
import { Health, type HealthServer, startHealthServer } from "./util/health.ts";
import { createFlannelMetrics, type FlannelMetrics, Registry } from "./util/metrics.ts";
import { runWatchdog } from "./util/watchdog.ts";
import { TRIM_INTERVAL_MS, trimPeriodically } from "./util/malloc_trim.ts";
import { COMPACTION, compactPeriodically, exposedGc } from "./util/heap.ts";
import { createLogger, describeError, type Logger } from "./util/log.ts";
import { VERSION } from "./version.ts";

/** Flags accepted for compatibility whose behaviour is not implemented yet (logged when set). */
const NOT_IMPLEMENTED = new Set([
  "vmodule",
  "log_backtrace_at",
]);

interface Store {
  manager: SubnetManager;
  /** Whether an error of this datastore is worth retrying. */
  isTransient(err: unknown): boolean;
  close(): void;
}

/**
 * `FLANNEL_ETCD_WATCH_CHECK_MS`: how often silent etcd watches are checked (default 20 000; see
 * README, "etcd"). A tuning knob rather than a flag, so flannel's flag set stays as it is.
 */
function watchCheckMs(log: Logger): number | undefined {
  const text = Deno.env.get("FLANNEL_ETCD_WATCH_CHECK_MS");
  if (text === undefined || text === "") return undefined;
  const ms = Number(text);
  if (Number.isInteger(ms) && ms >= 100) return ms;
  log.error(`Ignoring FLANNEL_ETCD_WATCH_CHECK_MS="${text}": expected milliseconds, at least 100`);
  return undefined;
}

/** `FLANNEL_GC_STRESS=1`: collect garbage every 100 ms (with `--expose-gc`; endurance tests). */
function gcStress(): boolean {
  return Deno.env.get("FLANNEL_GC_STRESS") === "1";
}

/** The subnet manager the flags ask for: Kubernetes (`--kube-subnet-mgr`) or etcd (default). */
async function createStore(
  o: Options,
  previous: PreviousSubnets,
  log: Logger,
  metrics: FlannelMetrics,
): Promise<Store> {
  if (o.kubeSubnetMgr) {
    // Loaded only in Kubernetes mode, so etcd mode pays nothing for it at start-up.
    const { createKubeSubnetManager } = await import("./subnet/kube/mod.ts");
    const { KubeApiError } = await import("./subnet/kube/client.ts");
    const kube = await createKubeSubnetManager({
      kubeconfigFile: o.kubeconfigFile,
      apiUrl: o.kubeApiUrl,
      annotationPrefix: o.kubeAnnotationPrefix,
      netConfigPath: o.netConfigPath,
      setNodeNetworkUnavailable: o.setNodeNetworkUnavailable,
      env: Deno.env.toObject(),
      log,
    });
    return {
      manager: kube,
      isTransient: (err) => err instanceof KubeApiError,
      close: () => kube.close(),
    };
  }
  const client = await EtcdClient.create({
    endpoints: o.etcdEndpoints,
    caFile: o.etcdCafile,
    certFile: o.etcdCertfile,
    keyFile: o.etcdKeyfile,
    username: o.etcdUsername,
    password: o.etcdPassword,
    watchCheckMs: watchCheckMs(log),
    log,
    metrics,
  });
  const manager = new EtcdSubnetManager(client, {
    prefix: o.etcdPrefix,
    log,
    metrics,
    previousSubnet: previous.subnet,
    previousIPv6Subnet: previous.ipv6Subnet,
    renewMarginMinutes: o.subnetLeaseRenewMargin,
  });
  return {
    manager,
    isTransient: (err) => err instanceof EtcdUnavailableError,
    close: () => client.close(),
  };
}

async function main(args: string[]): Promise<number> {
  const argv0 = "flanneld";
  let parsed;
  try {
    parsed = parseOptions(args, Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    console.error(err.message);
    console.error(usage(argv0));
    return 2;
  }
  if (parsed.help) {
    console.error(usage(argv0));
    return 0;
  }
  const o = parsed.options;
  if (o.version) {
    console.error(VERSION);
    return 0;
  }
  const log = createLogger({ level: o.v });
  for (const e of parsed.envErrors) log.error(`Failed to set flag FLANNELD from env: ${e}`);
  log.info(`CLI flags config: ${JSON.stringify(redactedOptions(o))}`);
  try {
    validateOptions(o);
  } catch (err) {
    log.error(describeError(err));
    return 1;
  }
  for (const name of parsed.explicit) {
    if (NOT_IMPLEMENTED.has(name)) log.warn(`Flag --${name} is not implemented yet; ignoring it`);
  }
  const previous = await readPreviousSubnets(o.subnetFile, log);
  // The one metric set, served at /metrics and handed down like the logger.
  const registry = new Registry();
  const metrics = createFlannelMetrics(registry);
  metrics.buildInfo.set(1, { version: VERSION });
  let store: Store;
  try {
    store = await createStore(o, previous, log, metrics);
  } catch (err) {
    log.error(`Failed to create SubnetManager: ${describeError(err)}`);
    return 1;
  }
  const { manager } = store;
  const root = new AbortController();
  // The config request goes out now and is answered while the rest of start-up (health server,
  // netlink, the host's interfaces) runs.
  const firstConfig = settled(manager.getNetworkConfig({ signal: root.signal }));
  // As in flannel's main.go: addresses pinned by the datastore (kube node-public-ip annotations) win.
  let publicIP = o.publicIP, publicIPv6 = o.publicIPv6;
  try {
    const stored = await manager.storedPublicIPs?.();
    publicIP = stored?.ipv4 || publicIP;
    publicIPv6 = stored?.ipv6 || publicIPv6;
  } catch (err) {
    log.warn(`Could not read the node's stored public IPs: ${describeError(err)}`);
  }

  // As in flannel's main.go: the health server starts before anything can block.
  const health = new Health();
  let server: HealthServer | undefined;
  if (o.healthzPort > 0) {
    try {
      server = startHealthServer({
        hostname: o.healthzIP,
        port: o.healthzPort,
        health,
        registry,
        log,
        signal: root.signal,
      });
    } catch (err) {
      log.error(describeError(err));
      store.close();
      return 1;
    }
  }
  const onSignal = () => {
    if (root.signal.aborted) Deno.exit(1); // a second signal kills at once, as flannel's
    log.info("shutdownHandler sent cancel signal...");
    root.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  // With --v8-flags=--expose-gc (the shipped binary's flags), V8's memory-reducing collection 5 s
  // after start and then every minute (util/heap.ts): V8 counts ArrayBuffers (netlink messages,
  // HTTP chunks) as external memory and collects them only after tens of MiB, and keeps the heap
  // that the start-up burst grew. FLANNEL_GC_STRESS=1 (the endurance tests) collects every 100 ms
  // instead, so memory handed to the kernel but not kept alive fails at once, not after days.
  const gc = exposedGc();
  const gcTimer = gc && gcStress() ? setInterval(gc, 100) : undefined;
  if (!gcStress()) {
    compactPeriodically({ ...COMPACTION, signal: root.signal });
  }
  // Freed C heap (watch stream bodies, netlink buffers) back to the kernel after bursts.
  trimPeriodically(TRIM_INTERVAL_MS, root.signal);

  const netlink = openNetlink();
  // Read while the config request is in flight; used if the config comes within a second (not
  // after retries, when the host may have changed) and the network is IPv4-only (with IPv6,
  // start-up may wait for duplicate address detection).
  let firstInterfaces: Promise<Settled<HostInterface[]>> | undefined = settled(
    hostInterfaces(netlink),
  );
  const interfacesAt = Date.now();
  try {
    await runAgent({
      manager,
      netlink,
      log,
      metrics,
      firstConfig,
      selectInterface: async (config) => {
        const early = firstInterfaces && !config.enableIPv6 && Date.now() - interfacesAt < 1000
          ? await firstInterfaces
          : undefined;
        firstInterfaces = undefined;
        const ifaces = early && "value" in early ? early.value : await hostInterfaces(netlink, {
          // IPv6 only: at boot its addresses are tentative for about a second.
          settleMs: config.enableIPv6 ? 3000 : 0,
          onWait: (pending) =>
            log.info(`Waiting for duplicate address detection of ${pending.join(", ")}`),
        });
        return selectExternalInterface(
          ifaces,
          {
            iface: o.iface,
            ifaceRegex: o.ifaceRegex,
            publicIP,
            publicIPv6,
            canReach: o.ifaceCanReach ? await routeToward(netlink, o.ifaceCanReach) : undefined,
            // Only read (a route dump) when no selector chooses the interface.
            defaultRoute: o.iface.length === 0 && o.ifaceRegex.length === 0 && !o.ifaceCanReach
              ? {
                4: config.enableIPv4 ? await defaultRouteIndex(netlink, 4) : undefined,
                6: config.enableIPv6 ? await defaultRouteIndex(netlink, 6) : undefined,
              }
              : undefined,
            ipv4: config.enableIPv4,
            ipv6: config.enableIPv6,
            ipv6Disabled: config.enableIPv6 ? await ipv6DisabledInterfaces() : undefined,
          },
          log,
        );
      },
      loadBackend,
      writeSubnetFile: (content) => writeSubnetFile(o.subnetFile, content),
      notify: (state) => sdNotify(state, { NOTIFY_SOCKET: Deno.env.get("NOTIFY_SOCKET") }),
      isTransient: (err) => store.isTransient(err),
      createTrafficManager: (mode) =>
        createTrafficManager({
          mode,
          log,
          onRestored: (kind) => metrics.kernelObjectsRestored.inc({ kind }),
        }),
      health,
      runWatchdog: (opts) => runWatchdog({ log, ...opts }),
    }, {
      subnetFile: o.subnetFile,
      ipMasq: o.ipMasq,
      ipMasqFullyRandom: !o.ipMasqFullyRandomDisable,
      forwardRules: o.iptablesForwardRules,
      resyncSeconds: o.iptablesResync,
      blackholeRoute: o.ipBlackholeRoute,
      previous,
      signal: root.signal,
    });
  } catch (err) {
    if (err instanceof AgentError) {
      log.error(err.message);
      return 1;
    }
    log.error(`Unexpected error: ${describeError(err)}`);
    return 1;
  } finally {
    health.shutdown();
    root.abort();
    await server?.shutdown();
    store.close();
    netlink.close();
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    clearInterval(gcTimer);
  }
  log.info("Exiting cleanly...");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
