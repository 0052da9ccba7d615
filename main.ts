/**
 * flanneld entry point: parses flags, builds the real dependencies once, runs the agent, and owns
 * the process exit status. Permissions: network (etcd, health), read/write (subnet.env, TLS files,
 * procfs/sysfs), env (FLANNELD_*, NOTIFY_SOCKET), ffi (netlink, sd_notify), run (none yet).
 *
 *   deno run -A main.ts --etcd-endpoints=http://127.0.0.1:2379 --iface=eth0
 */
import { AgentError, runAgent } from "./agent.ts";
import { selectExternalInterface } from "./backends/external_interface.ts";
import { loadBackend } from "./backends/mod.ts";
import { FlagError } from "./cli/flags.ts";
import { parseOptions, redactedOptions, usage, validateOptions } from "./cli/options.ts";
import { defaultRouteInterface, hostInterfaces } from "./kernel/iface.ts";
import { type Netlink, openNetlink } from "./kernel/netlink/mod.ts";
import { EtcdClient, EtcdUnavailableError } from "./subnet/etcd/client.ts";
import { EtcdSubnetManager } from "./subnet/etcd/manager.ts";
import { readPreviousSubnets, writeSubnetFile } from "./subnet/subnet_env.ts";
import { sdNotify } from "./util/sd_notify.ts";
import { createTrafficManager } from "./kernel/firewall/mod.ts";
import { Health, type HealthServer, startHealthServer } from "./util/health.ts";
import { metrics, registry } from "./util/metrics.ts";
import { runWatchdog } from "./util/watchdog.ts";
import { createLogger, describeError } from "./util/log.ts";
import { VERSION } from "./version.ts";

/** Flags accepted for compatibility whose behaviour is not implemented yet (logged when set). */
const NOT_IMPLEMENTED = new Set([
  "kube-api-url",
  "kube-annotation-prefix",
  "kubeconfig-file",
  "net-config-path",
  "set-node-network-unavailable",
  "vmodule",
  "log_backtrace_at",
]);

/** `ip route get TARGET`: which interface and source address reach `--iface-can-reach`. */
async function resolveCanReach(netlink: Netlink, target: string) {
  try {
    const route = await netlink.routeGet(target);
    return { target, index: route?.index, src: route?.src };
  } catch {
    return { target };
  }
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
  if (o.kubeSubnetMgr) {
    log.error(
      "--kube-subnet-mgr is not implemented yet; run with the etcd subnet manager (--etcd-endpoints)",
    );
    return 1;
  }

  const previous = await readPreviousSubnets(o.subnetFile, log);
  let client: EtcdClient;
  try {
    client = await EtcdClient.create({
      endpoints: o.etcdEndpoints,
      caFile: o.etcdCafile,
      certFile: o.etcdCertfile,
      keyFile: o.etcdKeyfile,
      username: o.etcdUsername,
      password: o.etcdPassword,
      log,
    });
  } catch (err) {
    log.error(`Failed to create SubnetManager: ${describeError(err)}`);
    return 1;
  }
  const manager = new EtcdSubnetManager(client, {
    prefix: o.etcdPrefix,
    log,
    previousSubnet: previous.subnet,
    previousIPv6Subnet: previous.ipv6Subnet,
    renewMarginMinutes: o.subnetLeaseRenewMargin,
  });

  const root = new AbortController();
  // §0 step 7: the health server starts before anything can block.
  const health = new Health();
  metrics.buildInfo.set(1, { version: VERSION });
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
      client.close();
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

  const netlink = openNetlink();
  try {
    await runAgent({
      manager,
      netlink,
      log,
      selectInterface: async (config) =>
        selectExternalInterface(await hostInterfaces(), {
          iface: o.iface,
          ifaceRegex: o.ifaceRegex,
          publicIP: o.publicIP,
          publicIPv6: o.publicIPv6,
          canReach: o.ifaceCanReach ? await resolveCanReach(netlink, o.ifaceCanReach) : undefined,
          defaultInterface: await defaultRouteInterface(config.enableIPv4 ? 4 : 6),
          ipv4: config.enableIPv4,
          ipv6: config.enableIPv6,
        }, log),
      loadBackend,
      writeSubnetFile: (content) => writeSubnetFile(o.subnetFile, content),
      notify: (state) => sdNotify(state, { NOTIFY_SOCKET: Deno.env.get("NOTIFY_SOCKET") }),
      isTransient: (err) => err instanceof EtcdUnavailableError,
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
    client.close();
    netlink.close();
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  log.info("Exiting cleanly...");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
