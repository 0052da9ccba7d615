/**
 * The environment flannel's kube-flannel.yml and Helm chart give the container (no NODE_NAME:
 * the node comes from the pod; EVENT_QUEUE_DEPTH and CONT_WHEN_CACHE_NOT_READY set) works with
 * the Kubernetes subnet manager, and the two tuning variables are acknowledged in the log.
 */
import assert from "node:assert/strict";
import { createKubeSubnetManager } from "../subnet/kube/mod.ts";
import { bareNode, captureLog, KubeCluster } from "./kube_harness.ts";

Deno.test("createKubeSubnetManager() runs with flannel's DaemonSet env and names what it accepts", async () => {
  await using cluster = await KubeCluster.start();
  cluster.api.setNode(bareNode("node-a", "10.244.3.0/24"));
  cluster.api.setPod("kube-flannel", {
    metadata: { name: "kube-flannel-ds-x7k2p", namespace: "kube-flannel" },
    spec: { nodeName: "node-a", containers: [] },
  });
  const log = captureLog();
  const manager = await createKubeSubnetManager({
    apiUrl: cluster.api.url,
    netConfigPath: cluster.netConfigPath,
    env: {
      POD_NAME: "kube-flannel-ds-x7k2p",
      POD_NAMESPACE: "kube-flannel",
      EVENT_QUEUE_DEPTH: "5000",
      CONT_WHEN_CACHE_NOT_READY: "false",
    },
    log,
  });
  try {
    assert.ok(log.lines.some((l) => l.includes('node "node-a"')), log.lines.join("\n"));
    const accepted = log.lines.filter((l) => l.includes("Accepted EVENT_QUEUE_DEPTH=5000 "));
    assert.equal(accepted.length, 1, log.lines.join("\n"));
    assert.match(accepted[0], /CONT_WHEN_CACHE_NOT_READY=false \(no effect: /);
  } finally {
    manager.close();
  }
});
