import assert from "node:assert/strict";
import { parseYaml, parseYamlDocuments } from "./_yaml.ts";

Deno.test("parseYaml() reads a kubectl-written kubeconfig", () => {
  const text = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
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
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - token
      - --cluster-id
      - "my cluster"
      command: aws
      env: null
      provideClusterInfo: false
    insecure-skip-tls-verify: true
    token: 'it''s #not a comment'
`;
  assert.deepEqual(parseYaml(text), {
    apiVersion: "v1",
    clusters: [{
      cluster: {
        "certificate-authority-data": "LS0tLS1CRUdJTg==",
        server: "https://127.0.0.1:6443",
      },
      name: "kind-kind",
    }],
    contexts: [{ context: { cluster: "kind-kind", user: "kind-kind" }, name: "kind-kind" }],
    "current-context": "kind-kind",
    kind: "Config",
    preferences: {},
    users: [{
      name: "kind-kind",
      user: {
        exec: {
          apiVersion: "client.authentication.k8s.io/v1beta1",
          args: ["token", "--cluster-id", "my cluster"],
          command: "aws",
          env: null,
          provideClusterInfo: false,
        },
        "insecure-skip-tls-verify": true,
        token: "it's #not a comment",
      },
    }],
  });
});

Deno.test("parseYamlDocuments() splits documents and keeps block scalars", () => {
  const text = `---
kind: ConfigMap
data:
  net-conf.json: |
    {
      "Network": "10.244.0.0/16"
    }
  folded: >-
    a
    b
---
# only a comment
---
list:
  - x: 1
    y: [a, "b, c", 3]
  - - nested
  -
    deeper: yes
`;
  const docs = parseYamlDocuments(text);
  assert.equal(docs.length, 2);
  assert.deepEqual(docs[0], {
    kind: "ConfigMap",
    data: { "net-conf.json": '{\n  "Network": "10.244.0.0/16"\n}\n', folded: "a b" },
  });
  assert.deepEqual(docs[1], {
    list: [{ x: 1, y: ["a", "b, c", 3] }, ["nested"], { deeper: "yes" }],
  });
});

Deno.test("parseYaml() accepts JSON and refuses what it does not support", async (t) => {
  await t.step("JSON", () => assert.deepEqual(parseYaml('{"a": [1, 2]}'), { a: [1, 2] }));
  for (const bad of ["a: &x 1", "a: *x", "a:\n  b: 1\n c: 2", 'a: "open'] as const) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseYaml(bad), /Cannot parse YAML line \d+/);
    });
  }
});
