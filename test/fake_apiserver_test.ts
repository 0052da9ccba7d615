import assert from "node:assert/strict";
import { applyPatch, FakeApiServer } from "./fake_apiserver.ts";
import { makeTlsFiles } from "./tls.ts";

const node = (name: string, podCIDR?: string) => ({
  metadata: { name, annotations: { a: "1" } },
  spec: podCIDR ? { podCIDR } : {},
  status: { conditions: [{ type: "Ready", status: "True" }] },
});

/** Reads watch lines until `count` arrived; returns them parsed. */
async function readLines(res: Response, count: number) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const out = [];
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    out.push(...parts.filter((p) => p).map((p) => JSON.parse(p)));
  }
  await reader.cancel();
  return out;
}

Deno.test("FakeApiServer lists with a resourceVersion and watches from it", async () => {
  await using api = await FakeApiServer.start();
  api.setNode(node("a", "10.244.1.0/24"));
  api.setNode(node("b", "10.244.2.0/24"));
  const list = await (await fetch(`${api.url}/api/v1/nodes?limit=1`)).json();
  assert.equal(list.items.length, 1);
  assert.ok(list.metadata.continue);
  const page2 = await (await fetch(
    `${api.url}/api/v1/nodes?limit=1&continue=${list.metadata.continue}`,
  )).json();
  assert.deepEqual(page2.items.map((n: { metadata: { name: string } }) => n.metadata.name), ["b"]);
  const rv = Number(list.metadata.resourceVersion);
  api.updateNode("a", (n) => n.metadata!.annotations!.a = "2");
  const res = await fetch(`${api.url}/api/v1/nodes?watch=1&resourceVersion=${rv}`);
  const pending = readLines(res, 2);
  api.deleteNode("b");
  const events = await pending;
  assert.deepEqual(events.map((e) => [e.type, e.object.metadata.name]), [
    ["MODIFIED", "a"],
    ["DELETED", "b"],
  ]);
  assert.ok(Number(events[1].object.metadata.resourceVersion) > rv);
});

Deno.test("FakeApiServer answers an expired resourceVersion with 410", async (t) => {
  await t.step("as an ERROR event", async () => {
    await using api = await FakeApiServer.start();
    api.setNode(node("a"));
    api.compact();
    const res = await fetch(`${api.url}/api/v1/nodes?watch=1&resourceVersion=1`);
    assert.equal(res.status, 200);
    const [ev] = await readLines(res, 1);
    assert.equal(ev.type, "ERROR");
    assert.equal(ev.object.code, 410);
  });
  await t.step("as HTTP 410", async () => {
    await using api = await FakeApiServer.start({ goneAsHttp: true });
    api.setNode(node("a"));
    api.compact();
    const res = await fetch(`${api.url}/api/v1/nodes?watch=1&resourceVersion=1`);
    assert.equal(res.status, 410);
    await res.body?.cancel();
  });
});

Deno.test("FakeApiServer sends bookmarks, drops streams and restarts", async () => {
  await using api = await FakeApiServer.start({ bookmarkMs: 50 });
  api.setNode(node("a"));
  const res = await fetch(
    `${api.url}/api/v1/nodes?watch=1&resourceVersion=${api.resourceVersion}&allowWatchBookmarks=true`,
  );
  const [bm] = await readLines(res, 1);
  assert.equal(bm.type, "BOOKMARK");
  assert.equal(bm.object.metadata.resourceVersion, String(api.resourceVersion));

  const res2 = await fetch(
    `${api.url}/api/v1/nodes?watch=1&resourceVersion=${api.resourceVersion}`,
  );
  const text = res2.text();
  api.dropWatches();
  assert.equal(await text, "");

  const url = api.url;
  await api.restart();
  assert.equal(api.url, url);
  const list = await (await fetch(`${url}/api/v1/nodes`)).json();
  assert.equal(list.items.length, 1, "the store survives a restart");
});

Deno.test("FakeApiServer ends a watch at timeoutSeconds, with a bookmark 2 s before", async () => {
  await using api = await FakeApiServer.start();
  api.setNode(node("a"));
  const t0 = performance.now();
  const res = await fetch(
    `${api.url}/api/v1/nodes?watch=1&resourceVersion=${api.resourceVersion}` +
      "&allowWatchBookmarks=true&timeoutSeconds=3",
  );
  api.setNode(node("b"));
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
  const ms = performance.now() - t0;
  assert.deepEqual(lines.map((l) => l.type), ["ADDED", "BOOKMARK"]);
  assert.equal(lines[1].object.metadata.resourceVersion, String(api.resourceVersion));
  assert.ok(ms >= 2900 && ms < 4000, `ended after ${ms} ms`);
});

Deno.test("FakeApiServer patches nodes and nodes/status like the real server", async () => {
  await using api = await FakeApiServer.start();
  api.setNode(node("a", "10.244.1.0/24"));
  const patch = (path: string, type: string, body: unknown) =>
    fetch(`${api.url}/api/v1/nodes/a${path}`, {
      method: "PATCH",
      headers: { "content-type": type },
      body: JSON.stringify(body),
    });
  let r = await patch("/status", "application/strategic-merge-patch+json", {
    metadata: { annotations: { b: "x" } },
    spec: { podCIDR: "10.9.9.0/24" },
    status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] },
  });
  assert.equal(r.status, 200);
  await r.body?.cancel();
  let n = api.getNode("a")!;
  assert.deepEqual(n.metadata!.annotations, { a: "1", b: "x" });
  assert.equal(n.spec!.podCIDR, "10.244.1.0/24", "status subresource ignores spec");
  assert.deepEqual(n.status!.conditions!.map((c) => c.type), ["Ready", "NetworkUnavailable"]);

  r = await patch("", "application/merge-patch+json", {
    metadata: { annotations: { a: null } },
    status: { conditions: [] },
  });
  await r.body?.cancel();
  n = api.getNode("a")!;
  assert.deepEqual(n.metadata!.annotations, { b: "x" });
  assert.equal(n.status!.conditions!.length, 2, "main resource ignores status");

  r = await patch("", "application/json-patch+json", []);
  assert.equal(r.status, 415);
  await r.body?.cancel();
  r = await fetch(`${api.url}/api/v1/nodes/zz/status`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: "{}",
  });
  assert.equal(r.status, 404);
  await r.body?.cancel();
});

Deno.test("applyPatch() merges conditions by type only under strategic merge", () => {
  const target = { status: { conditions: [{ type: "A", status: "1" }] } };
  const p = { status: { conditions: [{ type: "A", status: "2" }, { type: "B", status: "3" }] } };
  assert.deepEqual(applyPatch(target, p, true).status.conditions, p.status.conditions);
  assert.deepEqual(
    applyPatch(target, { status: { conditions: [{ type: "B" }] } }, false).status.conditions,
    [{ type: "B" }],
  );
});

Deno.test("FakeApiServer authenticates bearer tokens and client certificates", async () => {
  await using tls = await makeTlsFiles();
  const read = (p: string) => Deno.readTextFileSync(p);
  await using api = await FakeApiServer.start({
    tokens: ["secret"],
    tls: { cert: read(tls.serverCertFile), key: read(tls.serverKeyFile) },
    clientCA: read(tls.caFile),
  });
  const anon = Deno.createHttpClient({ caCerts: [read(tls.caFile)] });
  const withCert = Deno.createHttpClient({
    caCerts: [read(tls.caFile)],
    cert: read(tls.clientCertFile),
    key: read(tls.clientKeyFile),
  });
  try {
    let r = await fetch(`${api.url}/api/v1/nodes`, { client: anon });
    assert.equal(r.status, 401);
    await r.body?.cancel();
    r = await fetch(`${api.url}/api/v1/nodes`, {
      client: anon,
      headers: { authorization: "Bearer secret" },
    });
    assert.equal(r.status, 200);
    await r.body?.cancel();
    r = await fetch(`${api.url}/api/v1/nodes`, { client: withCert });
    assert.equal(r.status, 200);
    await r.body?.cancel();
  } finally {
    anon.close();
    withCert.close();
  }
});
