/**
 * deploy/kube-flannel.yml against flannel's own manifest and Helm chart (golden data extracted
 * from flannel v0.28.9 in test/golden/): every field differs only where the README's list of
 * differences says so, and everything the manifest or the chart asks of the image (commands,
 * flags, env, net-conf.json) is something our image and agent provide.
 */
import assert from "node:assert/strict";
import { parseOptions } from "../cli/options.ts";
import { parseVxlanConfig } from "../backends/vxlan/config.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import {
  diffFields,
  type FieldDifference,
  type FieldValue,
  manifestFields,
  parseYamlDocuments,
  type Yaml,
} from "../test/manifest_fields.ts";

const read = (path: string) => Deno.readTextFileSync(new URL(path, import.meta.url));
const docs: Yaml[] = parseYamlDocuments(read("./kube-flannel.yml"));
const golden = JSON.parse(read("../test/golden/flannel-v0.28.9-manifests.json"));
const flannelFields = golden["kube-flannel.yml"];
const chart = golden.chart;
const daemonSet = docs.find((d) => d?.kind === "DaemonSet");
const pod = daemonSet.spec.template.spec;
const container = (name: string) =>
  [...pod.initContainers, ...pod.containers].find((c: Yaml) => c.name === name);

/** A value as the README writes it: strings bare, the rest as JSON, a missing field as "—". */
function shown(v: FieldValue): string {
  return v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v);
}

/** The rows of the README table between the `manifest-differences` markers. */
function readmeDifferences(): string[] {
  const readme = read("../README.md");
  const m = /<!-- manifest-differences[^>]*-->\n([\s\S]*?)<!-- \/manifest-differences -->/.exec(
    readme,
  );
  assert.ok(m, "README.md has the manifest-differences table");
  const rows = m[1].split("\n").filter((l) => l.startsWith("| `"));
  return rows.map((row) => {
    const cells = row.split(" | ").map((c) => c.replace(/^\|? ?`?|`? ?\|?$/g, ""));
    return cells.slice(0, 4).join(" | ");
  });
}

Deno.test("kube-flannel.yml differs from flannel's only where the README says", () => {
  const ours = manifestFields(docs);
  const differences = diffFields(ours, flannelFields).map((d: FieldDifference) => {
    const [object, ...field] = d.path.split(" ");
    return [object, field.join(" "), shown(d.ours), shown(d.flannel)].join(" | ");
  });
  assert.deepEqual(differences, readmeDifferences());
  // The comparison saw the whole manifest, not a part of it.
  assert.ok(Object.keys(flannelFields).length > 100);
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    [...new Set(Object.keys(flannelFields).map((p) => p.split(" ")[0]))],
  );
});

Deno.test("kube-flannel.yml and flannel's Helm chart run commands our image has", () => {
  const containerfile = read("./Containerfile");
  for (const bin of ["flanneld", "install-conf", "mk-docker-opts.sh"]) {
    assert.match(containerfile, new RegExp(`^COPY .* /opt/bin/${bin}$`, "m"), bin);
  }
  assert.match(containerfile, /^ENTRYPOINT \["\/opt\/bin\/flanneld"\]$/m);
  // Both iptables backends, for the detection of the host's (kernel/firewall/_xtables_backend.ts).
  assert.match(containerfile, /command -v iptables-legacy .*iptables-nft/);
  assert.deepEqual(container("install-cni").command, chart["initContainers[install-cni].command"]);
  assert.deepEqual(container("install-cni").args, chart["initContainers[install-cni].args"]);
  assert.equal(container("kube-flannel").command[0], chart["containers[kube-flannel].command"][0]);
});

Deno.test("the agent accepts the manifest's and the chart's flags, ports and env", async (t) => {
  const ours = container("kube-flannel");
  const cases: [string, string[], number][] = [
    ["kube-flannel.yml", ours.args, ours.ports[0].containerPort],
    [
      "Helm chart",
      chart["containers[kube-flannel].command"].slice(1),
      chart["containers[kube-flannel].ports[healthz].containerPort"],
    ],
  ];
  for (const [name, args, port] of cases) {
    await t.step(name, () => {
      const { options } = parseOptions(args, {});
      assert.equal(options.kubeSubnetMgr, true);
      assert.equal(options.ipMasq, true);
      assert.equal(options.healthzPort, port);
    });
  }
  const env = Object.fromEntries(
    ours.env.map((e: Yaml) => [e.name, e.value ?? `fieldRef:${e.valueFrom.fieldRef.fieldPath}`]),
  );
  assert.deepEqual(env, chart["containers[kube-flannel].env"]);
  const mounts = Object.fromEntries(ours.volumeMounts.map((m: Yaml) => [m.name, m.mountPath]));
  assert.deepEqual(mounts, chart["containers[kube-flannel].volumeMounts"]);
});

Deno.test("the agent parses every net-conf.json the manifest and the chart write", async (t) => {
  const cm = docs.find((d) => d?.kind === "ConfigMap");
  const confs: Yaml[] = [
    JSON.parse(cm.data["net-conf.json"]),
    ...chart["net-conf.json for the Linux backends the chart can select"],
  ];
  for (const conf of confs) {
    await t.step(JSON.stringify(conf), () => {
      const parsed = parseNetworkConfig(JSON.stringify(conf));
      assert.equal(parsed.backendType, conf.Backend.Type);
      if (parsed.backendType === "vxlan") parseVxlanConfig(parsed.backend);
    });
  }
});
