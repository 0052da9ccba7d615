/**
 * `deno task demo --kube`: the agents as the DaemonSet in deploy/kube-flannel.yml runs them (its
 * flags, env and net-conf.json), against the test fake Kubernetes API server holding nodes with
 * podCIDRs and the agent pods; and the table of what the agents did to their nodes.
 */
import { parseYamlDocuments, type Yaml } from "../test/manifest_fields.ts";
import type { FakeApiServer } from "../test/fake_apiserver.ts";
import { bareNode } from "../test/kube_harness.ts";
import { AgentProcess } from "../test/agent_process.ts";
import { eventually, type Host, type TestBed } from "../test/testbed.ts";
import { type DemoBackend, table } from "./_demo_view.ts";

const PREFIX = "flannel.alpha.coreos.com/";

/** The DaemonSet's agent flags and env, from deploy/kube-flannel.yml, and its net-conf.json. */
function manifest(backend: DemoBackend) {
  const docs: Yaml[] = parseYamlDocuments(
    Deno.readTextFileSync(new URL("../deploy/kube-flannel.yml", import.meta.url)),
  );
  const ds = docs.find((d) => d?.kind === "DaemonSet");
  const c = ds.spec.template.spec.containers.find((x: Yaml) => x.name === "kube-flannel");
  const netConf = JSON.parse(docs.find((d) => d?.kind === "ConfigMap").data["net-conf.json"]);
  netConf.Backend = { Type: backend };
  const env = Object.fromEntries(
    c.env.filter((e: Yaml) => e.value !== undefined).map((e: Yaml) => [e.name, e.value]),
  );
  return { args: c.args as string[], env: env as Record<string, string>, netConf };
}

/** Nodes and agent pods as a cluster would have them, and the agents as the DaemonSet runs them. */
export async function startKubeAgents(
  bed: TestBed,
  api: FakeApiServer,
  backend: DemoBackend,
  dir: string,
) {
  const m = manifest(backend);
  const netConfPath = `${dir}/net-conf.json`;
  await Deno.writeTextFile(netConfPath, JSON.stringify(m.netConf));
  const env = ["POD_NAME", "POD_NAMESPACE", ...Object.entries(m.env).map(([k, v]) => `${k}=${v}`)];
  console.log("as the DaemonSet in deploy/kube-flannel.yml runs it:");
  console.log(
    table([
      ["flags", m.args.join(" ")],
      ["env", env.join(" ")],
      ["net-conf.json", JSON.stringify(m.netConf)],
    ], "  ").join("\n") + "\n",
  );
  for (const [i, h] of bed.hosts.entries()) {
    const pod = `kube-flannel-ds-${h.name}`;
    api.setNode(bareNode(h.name, `10.244.${i + 1}.0/24`));
    api.setPod("kube-flannel", {
      metadata: { name: pod },
      spec: { nodeName: h.name, containers: [] },
    });
    h.agent = new AgentProcess([
      ...m.args,
      `--kube-api-url=${api.url}`,
      `--net-config-path=${netConfPath}`,
      `--subnet-file=${h.subnetFile}`,
      "--iface=eth0",
    ], { netns: h.ns, env: { ...m.env, POD_NAME: pod, POD_NAMESPACE: "kube-flannel" } });
  }
  return m.args.find((a) => a.startsWith("--healthz-port="))?.split("=")[1];
}

async function readyz(host: Host, port: string | undefined): Promise<string> {
  if (!port) return "-";
  try {
    const res = await fetch(`http://${host.ip}:${port}/readyz`);
    return `${res.status} ${(await res.text()).trim()}`;
  } catch {
    return "unreachable";
  }
}

/** An annotation value for the table: missing and empty ones (udp's backend-type) named. */
function shown(v: string | undefined): string {
  return v === undefined ? "(none)" : v === "" ? '""' : v;
}

export async function nodeTable(bed: TestBed, api: FakeApiServer, port: string | undefined) {
  const up = (h: Host) =>
    api.getNode(h.name)?.status?.conditions?.some((c) =>
      c.type === "NetworkUnavailable" && c.status === "False"
    ) ?? false;
  await eventually(() => bed.hosts.every(up), 5000, "NetworkUnavailable=False").catch(() => {});
  const rows = [["node", "podCIDR", "public-ip", "backend-type", "NetworkUnavailable", "/readyz"]];
  for (const h of bed.hosts) {
    const node = api.getNode(h.name)!;
    const ann = node.metadata?.annotations ?? {};
    const cond = node.status?.conditions?.find((c) => c.type === "NetworkUnavailable");
    rows.push([
      h.name,
      node.spec?.podCIDR ?? "-",
      shown(ann[`${PREFIX}public-ip`]),
      shown(ann[`${PREFIX}backend-type`]),
      cond ? `${cond.status} (${cond.reason})` : "not set",
      await readyz(h, port),
    ]);
  }
  console.log(table(rows).join("\n"));
  const first = bed.hosts[0].name;
  const ann = Object.entries(api.getNode(first)!.metadata?.annotations ?? {})
    .filter(([k]) => k.startsWith(PREFIX)).sort();
  console.log(`\nannotations the agent wrote on node ${first}`);
  console.log(table(ann.map(([k, v]) => [k, shown(v)]), "  ").join("\n") + "\n");
}
