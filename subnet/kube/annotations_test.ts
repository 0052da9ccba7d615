import assert from "node:assert/strict";
import { annotationsFor, normalizeAnnotationPrefix } from "./annotations.ts";

Deno.test("normalizeAnnotationPrefix() follows flannel's newAnnotations", async (t) => {
  const ok: [string, string][] = [
    ["flannel.alpha.coreos.com", "flannel.alpha.coreos.com/"],
    ["flannel.alpha.coreos.com/", "flannel.alpha.coreos.com/"],
    ["flannel.alpha.coreos.com/prefix", "flannel.alpha.coreos.com/prefix-"],
    ["flannel.alpha.coreos.com/prefix-", "flannel.alpha.coreos.com/prefix-"],
    ["org.com/9", "org.com/9-"],
  ];
  for (const [input, want] of ok) {
    await t.step(`"${input}" → "${want}"`, () => {
      assert.equal(normalizeAnnotationPrefix(input), want);
    });
  }
  const bad: [string, RegExp][] = [
    ["org", /must be in a format/],
    ["org/", /must be in a format/],
    ["org/prefix", /must be in a format/],
    ["org.COM", /must be in a format/],
    ["org.com/PREFIX", /must be in a format/],
    ["a.b/c/d", /at most single slash/],
  ];
  for (const [input, re] of bad) {
    await t.step(`"${input}" is rejected`, () => {
      assert.throws(() => normalizeAnnotationPrefix(input), (e: Error) => {
        assert.match(e.message, re);
        assert.ok(e.message.includes(`"${input}"`), e.message);
        return true;
      });
    });
  }
});

Deno.test("annotationsFor() builds every key from the normalised prefix", () => {
  const a = annotationsFor("example.com/x");
  assert.equal(a.backendData, "example.com/x-backend-data");
  assert.equal(a.subnetKubeManaged, "example.com/x-kube-subnet-manager");
  // flannel's annotation names, byte for byte: other nodes' flanneld read them.
  assert.deepEqual(annotationsFor(), {
    prefix: "flannel.alpha.coreos.com/",
    subnetKubeManaged: "flannel.alpha.coreos.com/kube-subnet-manager",
    backendType: "flannel.alpha.coreos.com/backend-type",
    backendData: "flannel.alpha.coreos.com/backend-data",
    backendV6Data: "flannel.alpha.coreos.com/backend-v6-data",
    backendPublicIP: "flannel.alpha.coreos.com/public-ip",
    backendPublicIPv6: "flannel.alpha.coreos.com/public-ipv6",
    backendPublicIPOverwrite: "flannel.alpha.coreos.com/public-ip-overwrite",
    backendPublicIPv6Overwrite: "flannel.alpha.coreos.com/public-ipv6-overwrite",
    nodePublicIP: "flannel.alpha.coreos.com/node-public-ip",
    nodePublicIPv6: "flannel.alpha.coreos.com/node-public-ipv6",
  });
});
