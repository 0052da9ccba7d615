/**
 * The agent as operators run it: `main.ts` as a process against a real etcd, with the `alloc`
 * backend (lease only), advertising distinct public IPs from the loopback interface.
 */
import assert from "node:assert/strict";
import { EtcdClient } from "../subnet/etcd/client.ts";
import { AgentProcess } from "./agent_process.ts";
import { startEtcd } from "./etcd_server.ts";
import { makeTlsFiles } from "./tls.ts";
import { listenUnixgram } from "./unixgram.ts";
import { eventually } from "./eventually.ts";

const PREFIX = "/docker-subnet/network";
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}';

function agentArgs(endpoint: string, subnetFile: string, publicIP: string, extra: string[] = []) {
  return [
    `--etcd-endpoints=${endpoint}`,
    `-etcd-prefix=${PREFIX}`,
    `--subnet-file=${subnetFile}`,
    "--iface=lo",
    `--public-ip=${publicIP}`,
    // These agents run in the test machine's own namespace: leave its firewall alone.
    "--iptables-forward-rules=false",
    ...extra,
  ];
}

async function readEnv(path: string): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(path);
  return Object.fromEntries(text.trim().split("\n").map((l) => l.split("=", 2)));
}

Deno.test("flanneld waits for its config, then leases a subnet and writes subnet.env", async () => {
  await using etcd = await startEtcd();
  const dir = await Deno.makeTempDir();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    const file = `${dir}/run/flannel/subnet.env`;
    await using agent = new AgentProcess(agentArgs(etcd.endpoint, file, "10.250.0.1"));
    await agent.waitFor(/Couldn't fetch network config: flannel config not found in etcd store/);
    await client.put(`${PREFIX}/config`, CONFIG);
    await agent.waitFor(/Wrote subnet file to/);
    await agent.waitFor(/flannel is ready/);

    const text = await Deno.readTextFile(file);
    const { kvs } = await client.range(`${PREFIX}/subnets/`);
    assert.equal(kvs.length, 1);
    const [, a, b, c] = /(\d+)\.(\d+)\.(\d+)\.0-24$/.exec(kvs[0].key)!;
    const mtu = Number((await Deno.readTextFile("/sys/class/net/lo/mtu")).trim());
    assert.equal(
      text,
      `FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=${a}.${b}.${c}.1/24\nFLANNEL_MTU=${mtu}\nFLANNEL_IPMASQ=false\n`,
    );
    assert.equal(kvs[0].value, '{"PublicIP":"10.250.0.1","PublicIPv6":null}');
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o644);

    // SIGTERM: exit 0, lease and file kept.
    const status = await agent.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.ok(agent.lines.some((l) => l.includes("Exiting cleanly")));
    assert.equal((await client.range(`${PREFIX}/subnets/`)).kvs.length, 1);

    // Restart: same subnet back.
    await using again = new AgentProcess(agentArgs(etcd.endpoint, file, "10.250.0.1"));
    await again.waitFor(/Wrote subnet file to/);
    assert.equal(await Deno.readTextFile(file), text);
    await again.stop();
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two flanneld agents get distinct subnets; a revoked lease stops the agent with exit 0", async () => {
  await using etcd = await startEtcd();
  const dir = await Deno.makeTempDir();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    await client.put(`${PREFIX}/config`, CONFIG);
    await using a = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/a.env`, "10.250.0.1"));
    await using b = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/b.env`, "10.250.0.2"));
    await Promise.all([a.waitFor(/Wrote subnet file/), b.waitFor(/Wrote subnet file/)]);
    const sa = (await readEnv(`${dir}/a.env`)).FLANNEL_SUBNET;
    const sb = (await readEnv(`${dir}/b.env`)).FLANNEL_SUBNET;
    assert.notEqual(sa, sb);

    const key = `${PREFIX}/subnets/${sa.replace(".1/24", ".0-24")}`;
    assert.equal(await client.delete(key), 1);
    await a.waitFor(/Lease has been revoked. Shutting down daemon./);
    assert.equal((await a.status).code, 0);
    assert.ok(!b.exited, "the other agent keeps running");
    await b.stop();
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flanneld talks TLS with client certificates to etcd", async () => {
  await using tls = await makeTlsFiles();
  await using etcd = await startEtcd({ tls });
  const dir = await Deno.makeTempDir();
  const client = await EtcdClient.create({
    endpoints: [etcd.endpoint],
    caFile: tls.caFile,
    certFile: tls.clientCertFile,
    keyFile: tls.clientKeyFile,
  });
  try {
    await client.put(`${PREFIX}/config`, CONFIG);
    await using agent = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/s.env`, "10.250.0.9", [
      `--etcd-cafile=${tls.caFile}`,
      `--etcd-certfile=${tls.clientCertFile}`,
      `--etcd-keyfile=${tls.clientKeyFile}`,
    ]));
    await agent.waitFor(/Wrote subnet file/);
    assert.match((await readEnv(`${dir}/s.env`)).FLANNEL_SUBNET, /^10\.5\.\d+\.1\/24$/);
    await agent.stop();
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flanneld explains bad input in one line and never writes a half file", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("an unknown flag prints the problem and usage, exit 2", async () => {
      await using agent = new AgentProcess(["--no-such-flag"]);
      const status = await agent.status;
      await agent.stop();
      assert.equal(status.code, 2);
      assert.ok(
        agent.lines.some((l) => l.includes("flag provided but not defined: -no-such-flag")),
      );
      assert.ok(agent.lines.some((l) => l.startsWith("Usage: ")));
    });
    await t.step("--version prints the version and exits 0", async () => {
      await using agent = new AgentProcess(["--version"]);
      assert.equal((await agent.status).code, 0);
      await agent.stop();
      assert.match(agent.lines.join("\n"), /^v\d+\.\d+/);
    });
    await t.step("a renew margin out of range exits 1 naming the flag", async () => {
      await using agent = new AgentProcess(["--subnet-lease-renew-margin=0"]);
      assert.equal((await agent.status).code, 1);
      await agent.stop();
      assert.ok(agent.lines.some((l) => l.includes("subnet-lease-renew-margin")));
    });
    await t.step("a TLS file that does not exist exits 1 naming the flag and path", async () => {
      await using agent = new AgentProcess([
        "--etcd-endpoints=https://127.0.0.1:1",
        `--etcd-certfile=${dir}/missing.pem`,
        `--etcd-keyfile=${dir}/missing-key.pem`,
        `--subnet-file=${dir}/never.env`,
      ]);
      assert.equal((await agent.status).code, 1);
      await agent.stop();
      const text = agent.lines.join("\n");
      assert.match(text, /--etcd-certfile/);
      assert.match(text, /missing\.pem/);
      assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
    });
    await t.step("an unreachable etcd is logged clearly and retried; SIGTERM exits 0", async () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (probe.addr as Deno.NetAddr).port;
      probe.close();
      await using agent = new AgentProcess([
        `--etcd-endpoints=http://127.0.0.1:${port}`,
        `--subnet-file=${dir}/never.env`,
      ]);
      await agent.waitFor(/Couldn't fetch network config: .*127\.0\.0\.1:\d+.*--etcd-endpoints/s);
      const status = await agent.stop("SIGTERM");
      assert.equal(status.code, 0);
      assert.doesNotMatch(agent.lines.join("\n"), /^\s+at /m, "no stack trace");
      await assert.rejects(Deno.stat(`${dir}/never.env`), Deno.errors.NotFound);
    });
    await t.step("etcd auth without --etcd-username exits 1 naming the flag", async () => {
      await using etcd = await startEtcd({ auth: { user: "root", password: "pw" } });
      await using agent = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/a.env`, "10.250.0.5"));
      assert.equal((await agent.status).code, 1);
      await agent.stop();
      const text = agent.lines.join("\n");
      assert.match(
        text,
        /Couldn't fetch network config: .*set --etcd-username and --etcd-password/,
      );
      assert.doesNotMatch(text, /Unexpected error/);
    });
    await t.step("an unknown backend type names the known ones, exit 1", async () => {
      await using etcd = await startEtcd();
      const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
      await client.put(`${PREFIX}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"bogus"}}');
      client.close();
      await using agent = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/x.env`, "10.250.0.3"));
      assert.equal((await agent.status).code, 1);
      await agent.stop();
      assert.match(agent.lines.join("\n"), /unknown backend type: bogus \(known types: .*alloc/);
      await assert.rejects(Deno.stat(`${dir}/x.env`), Deno.errors.NotFound);
    });
    await t.step("an invalid config is logged with the reason and retried", async () => {
      await using etcd = await startEtcd();
      const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
      await client.put(`${PREFIX}/config`, '{"Network":"10.5.0.0/30"}');
      await using agent = new AgentProcess(agentArgs(etcd.endpoint, `${dir}/y.env`, "10.250.0.4"));
      await agent.waitFor(/network is too small. Minimum useful network prefix is \/28/);
      await client.put(`${PREFIX}/config`, CONFIG);
      await agent.waitFor(/Wrote subnet file/);
      client.close();
      await agent.stop();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flanneld sends READY=1 to systemd only after subnet.env exists", async () => {
  await using etcd = await startEtcd();
  const dir = await Deno.makeTempDir();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  try {
    await client.put(`${PREFIX}/config`, CONFIG);
    const socket = `${dir}/notify`;
    using rx = listenUnixgram(socket);
    const file = `${dir}/subnet.env`;
    await using agent = new AgentProcess(agentArgs(etcd.endpoint, file, "10.250.0.7"), {
      env: { NOTIFY_SOCKET: socket },
    });
    let message: string | undefined;
    let fileThen = false;
    await eventually(
      async () => {
        try {
          message = rx.take();
        } catch {
          return false;
        }
        fileThen = await Deno.stat(file).then(() => true, () => false);
        return true;
      },
      15_000,
      "a message on NOTIFY_SOCKET",
      2,
    );
    assert.equal(message, "READY=1");
    assert.ok(fileThen, "subnet.env existed when READY=1 arrived");
    await agent.stop();
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("20 flanneld processes started at once all get distinct subnets, none exits", async () => {
  await using etcd = await startEtcd();
  const dir = await Deno.makeTempDir();
  const client = await EtcdClient.create({ endpoints: [etcd.endpoint] });
  const agents: AgentProcess[] = [];
  try {
    // A /21 cut into /26s leaves 31 allocatable subnets: 20 racing nodes collide often.
    await client.put(
      `${PREFIX}/config`,
      '{"Network":"10.6.0.0/21","SubnetLen":26,"Backend":{"Type":"alloc"}}',
    );
    for (let i = 0; i < 20; i++) {
      agents.push(
        new AgentProcess(agentArgs(etcd.endpoint, `${dir}/${i}.env`, `10.251.0.${i + 1}`)),
      );
    }
    await Promise.all(agents.map((a) => a.waitFor(/Wrote subnet file/, 60_000)));
    const subnets = await Promise.all(
      agents.map(async (_, i) => (await readEnv(`${dir}/${i}.env`)).FLANNEL_SUBNET),
    );
    assert.equal(new Set(subnets).size, 20, subnets.join(" "));
    assert.ok(agents.every((a) => !a.exited), "no agent exited");
    assert.equal((await client.range(`${PREFIX}/subnets/`)).kvs.length, 20);
  } finally {
    await Promise.all(agents.map((a) => a[Symbol.asyncDispose]()));
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
