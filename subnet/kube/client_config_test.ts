import assert from "node:assert/strict";
import { fromKubeconfig } from "./client_config.ts";

async function withFile<T>(text: string, fn: (path: string) => Promise<T> | T): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config`, text);
    return await fn(`${dir}/config`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fromKubeconfig() reads a kubeconfig as kubectl writes it", async () => {
  const text = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${btoa("CA PEM")}
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind # trailing comment
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    token: 'it''s #not a comment'
`;
  const config = await withFile(text, (p) => fromKubeconfig(p));
  assert.equal(config.server, "https://127.0.0.1:6443");
  assert.deepEqual(config.caCerts, ["CA PEM"]);
  assert.deepEqual(await config.credentials?.get(false), { token: "it's #not a comment" });
  assert.match(config.source, /context "kind-kind"$/);
});

Deno.test("fromKubeconfig() reads JSON and names the file of YAML it cannot parse", async () => {
  const json = JSON.stringify({
    "current-context": "c",
    contexts: [{ name: "c", context: { cluster: "k" } }],
    clusters: [{ name: "k", cluster: { server: "https://10.0.0.1:6443/" } }],
  });
  assert.equal((await withFile(json, (p) => fromKubeconfig(p))).server, "https://10.0.0.1:6443");
  await withFile("clusters: [unclosed", async (p) => {
    await assert.rejects(fromKubeconfig(p), (e: Error) => {
      assert.equal(e.message, `Cannot parse --kubeconfig-file "${p}"`);
      assert.match(String((e.cause as Error).message), /\(1:20\)/, "says where");
      return true;
    });
  });
});
