import assert from "node:assert/strict";
import { FakeApiServer } from "../../test/fake_apiserver.ts";
import { makeTlsFiles, type TlsFiles } from "../../test/tls.ts";
import { KubeApiError, KubeClient } from "./client.ts";
import { fromKubeconfig, resolveClientConfig } from "./client_config.ts";

const read = (p: string) => Deno.readTextFileSync(p);
const b64 = (s: string) => btoa(s);

async function tlsServer(tls: TlsFiles, extra: { tokens?: string[]; clientCA?: boolean } = {}) {
  const api = await FakeApiServer.start({
    tokens: extra.tokens,
    tls: { cert: read(tls.serverCertFile), key: read(tls.serverKeyFile) },
    ...(extra.clientCA && { clientCA: read(tls.caFile) }),
  });
  api.setNode({ metadata: { name: "n1" }, spec: { podCIDR: "10.244.1.0/24" } });
  return api;
}

function kubeconfig(server: string, cluster: string, user: string): string {
  return `apiVersion: v1
kind: Config
current-context: test
clusters:
- name: c
  cluster:
    server: ${server}
${cluster}
contexts:
- name: other
  context: {cluster: c, user: nobody}
- name: test
  context:
    cluster: c
    user: u
users:
- name: u
  user:
${user}
`;
}

Deno.test("KubeClient authenticates as a kubeconfig says", async (t) => {
  await using tls = await makeTlsFiles();
  await using api = await tlsServer(tls, { tokens: ["tok-1"], clientCA: true });
  const dir = tls.dir;
  const caData = `    certificate-authority-data: ${b64(read(tls.caFile))}`;
  const cases: [string, string, string][] = [
    ["token + CA data", caData, "    token: tok-1"],
    [
      "client certificate files + CA file",
      "    certificate-authority: ca.pem",
      [
        "    client-certificate: client.pem",
        "    client-key: client-key.pem",
      ].join("\n"),
    ],
    [
      "client certificate data, insecure-skip-tls-verify",
      "    insecure-skip-tls-verify: true",
      [
        `    client-certificate-data: ${b64(read(tls.clientCertFile))}`,
        `    client-key-data: ${b64(read(tls.clientKeyFile))}`,
      ].join("\n"),
    ],
    ["tokenFile", caData, `    tokenFile: ${dir}/tokfile`],
  ];
  await Deno.writeTextFile(`${dir}/tokfile`, "tok-1\n");
  for (const [name, cluster, user] of cases) {
    await t.step(name, async () => {
      const file = `${dir}/kubeconfig`;
      await Deno.writeTextFile(file, kubeconfig(api.url, cluster, user));
      const client = new KubeClient(await fromKubeconfig(file));
      try {
        assert.equal((await client.getNode("n1")).spec?.podCIDR, "10.244.1.0/24");
      } finally {
        client.close();
      }
    });
  }
  await t.step("a wrong token is refused with a hint", async () => {
    const file = `${dir}/kubeconfig`;
    await Deno.writeTextFile(file, kubeconfig(api.url, caData, "    token: wrong"));
    const client = new KubeClient(await fromKubeconfig(file));
    try {
      await assert.rejects(client.getNode("n1"), (e: KubeApiError) => {
        assert.equal(e.status, 401);
        assert.match(e.message, /credentials rejected/);
        return true;
      });
    } finally {
      client.close();
    }
  });
});

Deno.test("KubeClient runs exec credential plugins and re-runs them after a 401", async () => {
  await using tls = await makeTlsFiles();
  await using api = await tlsServer(tls, { tokens: ["first"] });
  const dir = tls.dir;
  const plugin = `${dir}/plugin.sh`;
  await Deno.writeTextFile(
    plugin,
    `#!/bin/sh
echo run >> "${dir}/runs"
case "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3;; esac
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat ${dir}/current)"
`,
  );
  await Deno.chmod(plugin, 0o755);
  await Deno.writeTextFile(`${dir}/current`, "first");
  const file = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    file,
    kubeconfig(
      api.url,
      `    certificate-authority-data: ${b64(read(tls.caFile))}`,
      `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin.sh
      args: []
      interactiveMode: Never`,
    ),
  );
  const client = new KubeClient(await fromKubeconfig(file));
  try {
    await client.getNode("n1");
    await client.getNode("n1");
    assert.equal((await Deno.readTextFile(`${dir}/runs`)).trim().split("\n").length, 1, "cached");
    api.tokens = new Set(["second"]);
    await Deno.writeTextFile(`${dir}/current`, "second");
    await client.getNode("n1");
    assert.equal((await Deno.readTextFile(`${dir}/runs`)).trim().split("\n").length, 2);
  } finally {
    client.close();
  }
});

Deno.test("in-cluster config re-reads a rotated service-account token", async () => {
  await using tls = await makeTlsFiles();
  await using api = await tlsServer(tls, { tokens: ["sa-1"] });
  const sa = `${tls.dir}/sa`;
  await Deno.mkdir(sa);
  await Deno.copyFile(tls.caFile, `${sa}/ca.crt`);
  await Deno.writeTextFile(`${sa}/token`, "sa-1");
  const port = new URL(api.url).port;
  const config = await resolveClientConfig({
    env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port },
    serviceAccountDir: sa,
  });
  assert.equal(config.server, api.url);
  const client = new KubeClient(config);
  try {
    await client.getNode("n1");
    api.tokens = new Set(["sa-2"]);
    await Deno.writeTextFile(`${sa}/token`, "sa-2");
    await client.getNode("n1"); // 401 → re-read → retry
  } finally {
    client.close();
  }
});

Deno.test("resolveClientConfig() explains what is missing", async (t) => {
  await t.step("nothing configured", async () => {
    await assert.rejects(
      resolveClientConfig({ env: {} }),
      /not running in a pod.*--kubeconfig-file/,
    );
  });
  await t.step("--kube-api-url only: no credentials", async () => {
    const c = await resolveClientConfig({ apiUrl: "http://127.0.0.1:8080/", env: {} });
    assert.equal(c.server, "http://127.0.0.1:8080");
    assert.equal(c.credentials, undefined);
  });
  await t.step("bad URL", async () => {
    await assert.rejects(resolveClientConfig({ apiUrl: "ftp://x", env: {} }), /scheme/);
  });
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kc`;
    await t.step("no current-context", async () => {
      await Deno.writeTextFile(file, "apiVersion: v1\nkind: Config\n");
      await assert.rejects(fromKubeconfig(file), /no current-context/);
    });
    await t.step("unknown user", async () => {
      await Deno.writeTextFile(
        file,
        kubeconfig("https://h:1", "", "    token: x").replace("user: u\n", "user: ghost\n"),
      );
      await assert.rejects(fromKubeconfig(file), /no user named "ghost"/);
    });
    await t.step("--kube-api-url overrides the server", async () => {
      await Deno.writeTextFile(file, kubeconfig("https://h:1", "", "    token: x"));
      assert.equal((await fromKubeconfig(file, "https://other:6443")).server, "https://other:6443");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KubeClient.watchNodes() yields events and turns ERROR 410 into KubeApiError", async () => {
  await using api = await FakeApiServer.start();
  api.setNode({ metadata: { name: "a" } });
  const client = new KubeClient({ server: api.url, source: "test" });
  try {
    const list = await client.listNodes({ limit: 1 });
    const it = client.watchNodes(list.metadata!.resourceVersion!, { idleTimeoutMs: 5000 });
    const next = it.next();
    api.setNode({ metadata: { name: "b" } });
    const ev = (await next).value!;
    assert.equal(ev.type, "ADDED");
    await it.return(undefined);
    api.compact();
    await assert.rejects(
      (async () => {
        for await (const _ of client.watchNodes("1")) { /* none */ }
      })(),
      (e: KubeApiError) => e instanceof KubeApiError && e.gone,
    );
  } finally {
    client.close();
  }
});

Deno.test("KubeClient speaks HTTP/1.1 to a server that offers HTTP/2 (a watch per connection)", async () => {
  await using tls = await makeTlsFiles();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: read(tls.serverCertFile),
    key: read(tls.serverKeyFile),
    alpnProtocols: ["h2", "http/1.1"],
  });
  const port = (listener.addr as Deno.NetAddr).port;
  const chosen = (async () => {
    const conn = await listener.accept();
    const { alpnProtocol } = await conn.handshake();
    conn.close();
    return alpnProtocol;
  })();
  const client = new KubeClient({
    server: `https://127.0.0.1:${port}`,
    caCerts: [read(tls.caFile)],
    source: "test",
  });
  await assert.rejects(() => client.getNode("n1"));
  assert.equal(await chosen, "http/1.1");
  client.close();
  listener.close();
});
