/**
 * deploy/kube-flannel.yml parses and holds what flannel's manifest holds (REFERENCE §4.7, §4.8,
 * §10): namespace, RBAC, service account, ConfigMap, DaemonSet.
 */
import assert from "node:assert/strict";
import { parseOptions } from "../cli/options.ts";
import { parseNetworkConfig } from "../subnet/config.ts";
import { loadAll } from "js-yaml";

// deno-lint-ignore no-explicit-any
type Yaml = any;

const text = Deno.readTextFileSync(new URL("./kube-flannel.yml", import.meta.url));
const docs: Yaml[] = loadAll(text);
const find = (kind: string) => {
  const hits = docs.filter((d) => d?.kind === kind);
  assert.equal(hits.length, 1, `one ${kind}`);
  return hits[0];
};

Deno.test("kube-flannel.yml has flannel's objects and no others", () => {
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`).sort(),
    [
      "ClusterRole/flannel",
      "ClusterRoleBinding/flannel",
      "ConfigMap/kube-flannel-cfg",
      "DaemonSet/kube-flannel-ds",
      "Namespace/kube-flannel",
      "ServiceAccount/flannel",
    ],
  );
  const ns = find("Namespace");
  assert.deepEqual(ns.metadata.labels, {
    "k8s-app": "flannel",
    "pod-security.kubernetes.io/enforce": "privileged",
  });
  for (const kind of ["ServiceAccount", "ConfigMap", "DaemonSet"]) {
    assert.equal(find(kind).metadata.namespace, "kube-flannel", kind);
  }
});

Deno.test("kube-flannel.yml grants exactly flannel's RBAC (§4.7)", () => {
  const role = find("ClusterRole");
  assert.equal(role.metadata.labels["k8s-app"], "flannel");
  const rules = role.rules.map((r: Yaml) => ({
    groups: r.apiGroups,
    resources: r.resources,
    verbs: [...r.verbs].sort(),
  }));
  assert.deepEqual(rules, [
    { groups: [""], resources: ["pods"], verbs: ["get"] },
    { groups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
    { groups: [""], resources: ["nodes/status"], verbs: ["patch"] },
  ]);
  const binding = find("ClusterRoleBinding");
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "flannel",
  });
  assert.deepEqual(binding.subjects, [{
    kind: "ServiceAccount",
    name: "flannel",
    namespace: "kube-flannel",
  }]);
});

Deno.test("kube-flannel.yml ConfigMap holds §10's cni-conf.json and net-conf.json", () => {
  const cm = find("ConfigMap");
  assert.deepEqual(cm.metadata.labels, { tier: "node", "k8s-app": "flannel", app: "flannel" });
  assert.deepEqual(JSON.parse(cm.data["cni-conf.json"]), {
    name: "cbr0",
    cniVersion: "0.3.1",
    plugins: [
      { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  });
  assert.deepEqual(JSON.parse(cm.data["net-conf.json"]), {
    Network: "10.244.0.0/16",
    EnableNFTables: false,
    Backend: { Type: "vxlan" },
  });
  const conf = parseNetworkConfig(cm.data["net-conf.json"]);
  assert.equal(conf.backendType, "vxlan");
});

Deno.test("kube-flannel.yml DaemonSet matches §4.8", () => {
  const ds = find("DaemonSet");
  assert.deepEqual(ds.metadata.labels, { tier: "node", app: "flannel", "k8s-app": "flannel" });
  assert.deepEqual(ds.spec.selector.matchLabels, { app: "flannel" });
  const pod = ds.spec.template.spec;
  assert.deepEqual(ds.spec.template.metadata.labels, { tier: "node", app: "flannel" });
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.priorityClassName, "system-node-critical");
  assert.equal(pod.serviceAccountName, "flannel");
  assert.deepEqual(pod.tolerations, [{ operator: "Exists", effect: "NoSchedule" }]);
  assert.deepEqual(
    pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    [{ matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }] }],
  );
  // Init containers: the CNI plugin binary and the conflist.
  const [plugin, conf] = pod.initContainers;
  assert.equal(plugin.name, "install-cni-plugin");
  assert.equal(plugin.image, "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3");
  assert.deepEqual([plugin.command, plugin.args], [["cp"], [
    "-f",
    "/flannel",
    "/opt/cni/bin/flannel",
  ]]);
  assert.equal(conf.name, "install-cni");
  assert.match(conf.args[0], /\/etc\/kube-flannel\/cni-conf\.json/);
  assert.match(conf.args[0], /mv -f \S+ \/etc\/cni\/net\.d\/10-flannel\.conflist$/);

  const [c] = pod.containers;
  assert.equal(c.name, "kube-flannel");
  assert.deepEqual(c.command, ["/opt/bin/flanneld"]);
  // The args are flags this agent accepts.
  const parsed = parseOptions(c.args, {});
  assert.equal(parsed.options.kubeSubnetMgr, true);
  assert.equal(parsed.options.ipMasq, true);
  const port = parsed.options.healthzPort;
  assert.ok(port > 0);
  assert.deepEqual(c.ports, [{ name: "healthz", containerPort: port, protocol: "TCP" }]);
  assert.deepEqual(c.livenessProbe, {
    httpGet: { path: "/healthz", port: "healthz" },
    initialDelaySeconds: 10,
    periodSeconds: 30,
  });
  assert.deepEqual(c.readinessProbe, {
    httpGet: { path: "/readyz", port: "healthz" },
    initialDelaySeconds: 5,
    periodSeconds: 10,
  });
  assert.deepEqual(c.resources, { requests: { cpu: "100m", memory: "50Mi" } });
  assert.deepEqual(c.securityContext, {
    privileged: false,
    capabilities: { add: ["NET_ADMIN", "NET_RAW"] },
  });
  const env = Object.fromEntries(
    c.env.map((e: Yaml) => [e.name, e.value ?? `fieldRef:${e.valueFrom.fieldRef.fieldPath}`]),
  );
  assert.deepEqual(env, {
    NODE_NAME: "fieldRef:spec.nodeName",
    POD_NAME: "fieldRef:metadata.name",
    POD_NAMESPACE: "fieldRef:metadata.namespace",
    EVENT_QUEUE_DEPTH: "5000",
    CONT_WHEN_CACHE_NOT_READY: "false",
  });
  const mounts = (x: Yaml) =>
    Object.fromEntries(x.volumeMounts.map((m: Yaml) => [m.name, m.mountPath]));
  assert.deepEqual(mounts(c), {
    run: "/run/flannel",
    "flannel-cfg": "/etc/kube-flannel/",
    "xtables-lock": "/run/xtables.lock",
  });
  assert.deepEqual(mounts(plugin), { "cni-plugin": "/opt/cni/bin" });
  assert.deepEqual(mounts(conf), { cni: "/etc/cni/net.d", "flannel-cfg": "/etc/kube-flannel/" });
  assert.deepEqual(pod.volumes, [
    { name: "run", hostPath: { path: "/run/flannel" } },
    { name: "cni-plugin", hostPath: { path: "/opt/cni/bin" } },
    { name: "cni", hostPath: { path: "/etc/cni/net.d" } },
    { name: "flannel-cfg", configMap: { name: "kube-flannel-cfg" } },
    { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
  ]);
  // The agent and install-cni run the image built from deploy/Containerfile.
  assert.equal(conf.image, c.image);
  const containerfile = Deno.readTextFileSync(new URL("./Containerfile", import.meta.url));
  assert.match(containerfile, /\/opt\/bin\/flanneld/);
  for (const pkg of ["iproute2", "iptables", "nftables"]) {
    assert.match(containerfile, new RegExp(`\\b${pkg}\\b`), pkg);
  }
});
