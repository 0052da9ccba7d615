/**
 * `runAgent()` with fakes for every dependency: on shutdown and on revocation it returns only
 * once every loop it started has ended, so `main.ts` never closes netlink under one of them.
 */
import { unservedMetrics } from "../util/metrics.ts";
import assert from "node:assert/strict";
import { type AgentDeps, runAgent, settled } from "../agent.ts";
import createAllocBackend from "../backends/alloc.ts";
import type { BackendFactory } from "../backends/mod.ts";
import type { TrafficManager } from "../kernel/firewall/mod.ts";
import { ConfigError, parseNetworkConfig } from "../subnet/config.ts";
import { parseIP4, parseIP4Net } from "../subnet/ip.ts";
import { type Lease, LeaseRevokedError } from "../subnet/mod.ts";
import { Health } from "../util/health.ts";
import { sleep } from "../util/abort.ts";
import { eventually } from "./eventually.ts";
import { FakeNetlink } from "./fakes/netlink.ts";
import { FakeSubnetManager } from "./fakes/subnet_manager.ts";
import { recordingLogger } from "./recording_logger.ts";

const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}');
const own: Lease = {
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseIP4Net("10.5.1.0/24"),
  attrs: { publicIP: 0 },
};

/** A loop that, once aborted, still needs a few milliseconds to wind down (as real ones do). */
async function slowToStop(signal: AbortSignal, ended: Set<string>, name: string) {
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
  await sleep(30);
  ended.add(name);
}

function start(manager = new FakeSubnetManager(config, own), extra: Partial<AgentDeps> = {}) {
  const ended = new Set<string>();
  const netlink = new FakeNetlink();
  const eth0 = netlink.seedLink("eth0", { addresses: ["192.168.1.10/24"] });
  const log = recordingLogger();
  const traffic: TrafficManager = {
    mode: "iptables",
    cleanupOther: () => Promise.resolve(),
    setupMasq: () => Promise.resolve(),
    setupForward: () => Promise.resolve(),
    resync: () => Promise.resolve(0),
    run: (opts) => slowToStop(opts.signal, ended, "traffic rules"),
  };
  const ac = new AbortController();
  const done = runAgent({
    manager,
    netlink,
    log,
    metrics: unservedMetrics(),
    selectInterface: () =>
      Promise.resolve({
        name: "eth0",
        index: eth0.index,
        mtu: 1500,
        ifaceAddr: parseIP4("192.168.1.10"),
        extAddr: parseIP4("192.168.1.10"),
      }),
    loadBackend: () => Promise.resolve(createAllocBackend as BackendFactory),
    writeSubnetFile: () => Promise.resolve(),
    notify: () => Promise.resolve(false),
    isTransient: () => false,
    createTrafficManager: () => traffic,
    health: new Health(),
    runWatchdog: (opts) => slowToStop(opts.signal, ended, "watchdog"),
    ...extra,
  }, {
    subnetFile: "/nonexistent/subnet.env",
    ipMasq: true,
    blackholeRoute: true,
    resyncSeconds: 1,
    signal: ac.signal,
  }).then(() => [...ended].sort());
  return { ac, done, log, netlink };
}

Deno.test("runAgent() returns on shutdown only after every loop it started has ended", async () => {
  const a = start();
  await eventually(() => a.log.lines.includes("I Running backend."), 5000, "the agent running");
  await eventually(
    async () => (await a.netlink.routes({ dst: "10.5.1.0/24" })).length === 1,
    5000,
    "the blackhole route",
  );
  a.ac.abort();
  assert.deepEqual(await a.done, ["traffic rules", "watchdog"]);
  // The blackhole loop has ended too: nothing touches netlink once runAgent() returned.
  const calls = a.netlink.calls.length;
  await sleep(50);
  assert.equal(a.netlink.calls.length, calls);
});

Deno.test("runAgent() on revocation stops its loops itself, without the root signal", async () => {
  class Revoked extends FakeSubnetManager {
    revoke?: () => void;
    override completeLease(): Promise<void> {
      return new Promise((_, reject) =>
        this.revoke = () => reject(new LeaseRevokedError("Lease has been revoked."))
      );
    }
  }
  const manager = new Revoked(config, own);
  const a = start(manager);
  await eventually(() => manager.revoke !== undefined, 5000, "holding the lease");
  manager.revoke!();
  assert.deepEqual(await a.done, ["traffic rules", "watchdog"]);
  assert.ok(a.log.lines.includes("I Lease has been revoked. Shutting down daemon."));
  assert.equal(a.ac.signal.aborted, false);
});

Deno.test("runAgent() takes the config from the request started before it, and asks again after it failed", async (t) => {
  class Counting extends FakeSubnetManager {
    configRequests = 0;
    override getNetworkConfig() {
      this.configRequests++;
      return super.getNetworkConfig();
    }
  }
  await t.step("answered: no second request", async () => {
    const manager = new Counting(config, own);
    const a = start(manager, { firstConfig: settled(Promise.resolve(config)) });
    await eventually(() => a.log.lines.includes("I Running backend."), 5000, "the agent running");
    assert.equal(manager.configRequests, 0);
    a.ac.abort();
    await a.done;
  });
  await t.step("failed: logged, then the manager is asked", async () => {
    const manager = new Counting(config, own);
    const first = settled(Promise.reject(new ConfigError("flannel config not found")));
    const a = start(manager, { firstConfig: first });
    await eventually(() => a.log.lines.includes("I Running backend."), 5000, "the agent running");
    assert.ok(a.log.lines.includes("E Couldn't fetch network config: flannel config not found"));
    assert.equal(manager.configRequests, 1);
    a.ac.abort();
    await a.done;
  });
});
