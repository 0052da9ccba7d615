/**
 * EtcdClient against a real etcd (Debian's etcd-server, see test/etcd_server.ts), plus the pure
 * wire helpers.
 */
import assert from "node:assert/strict";
import { eventually } from "../../test/eventually.ts";
import { startEtcd } from "../../test/etcd_server.ts";
import { TcpProxy } from "../../test/tcp_proxy.ts";
import { makeTlsFiles } from "../../test/tls.ts";
import { recordingLogger } from "../../test/recording_logger.ts";
import { describeError } from "../../util/log.ts";
import { decodeText, encodeText, prefixRangeEnd } from "./_codec.ts";
import { LineSplitter } from "./_ndjson.ts";
import { parseWatchMessage } from "./_wire.ts";
import {
  EtcdAuthError,
  EtcdClient,
  EtcdCompactedError,
  EtcdUnavailableError,
  type WatchResponse,
} from "./client.ts";

/** A loopback URL nothing listens on. */
function deadEndpoint(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

/** Polls `cond` every 10 ms; fails after 10 s. */
function until(cond: () => boolean, what: string): Promise<void> {
  return eventually(cond, 10_000, what, 10);
}

/** The revision a watch must start from to see every write made after this call. */
async function nextRevision(client: EtcdClient): Promise<bigint> {
  return (await client.get("/")).revision + 1n;
}

/** Watches until `count` events or a compaction arrived; fails after 10 s. */
async function collect(
  client: EtcdClient,
  prefix: string,
  from: bigint,
  count: number,
  opts: { prefix?: boolean } = {},
): Promise<{ responses: WatchResponse[]; events: string[] }> {
  const responses: WatchResponse[] = [];
  const events: string[] = [];
  const signal = AbortSignal.timeout(10_000);
  for await (const r of client.watch(prefix, from, { ...opts, signal })) {
    responses.push(r);
    for (const e of r.events) events.push(`${e.type} ${e.kv.key}=${e.kv.value}`);
    if (events.length >= count || r.compactRevision !== undefined) break;
  }
  if (signal.aborted) throw new Error(`watch of ${prefix} saw only ${events.join(", ")}`);
  return { responses, events };
}

Deno.test("LineSplitter.push() rebuilds lines split anywhere, even inside a UTF-8 sequence", () => {
  const text = '{"a":"é€"}\n\n{"b":2}\r\n{"c":3}';
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const s = new LineSplitter();
      const lines = [
        ...s.push(bytes.subarray(0, i)),
        ...s.push(bytes.subarray(i, j)),
        ...s.push(bytes.subarray(j)),
      ];
      assert.deepEqual(lines, ['{"a":"é€"}', '{"b":2}'], `split at ${i},${j}`);
      assert.equal(s.flush(), '{"c":3}');
    }
  }
});

Deno.test("prefixRangeEnd() increments the last byte below 0xff", async (t) => {
  const cases: [string, number[]][] = [
    ["/a/b", [0x2f, 0x61, 0x2f, 0x63]],
    ["a\u00ff", [0x61, 0xc3, 0xc0]], // UTF-8 c3 bf → c3 c0
    ["", [0]],
  ];
  for (const [prefix, want] of cases) {
    await t.step(JSON.stringify(prefix), () => {
      const got = Uint8Array.from(atob(prefixRangeEnd(prefix)), (c) => c.charCodeAt(0));
      assert.deepEqual([...got], want);
    });
  }
  assert.equal(decodeText(encodeText("héllo/€")), "héllo/€");
});

Deno.test("parseWatchMessage() classifies lines etcd 3.4 sent", async (t) => {
  const h = (rev?: string) => ({ cluster_id: "1", member_id: "2", raft_term: "2", revision: rev });
  const cases: [string, unknown, unknown][] = [
    ["creation ack", { result: { header: h("3"), created: true } }, {
      kind: "created",
      revision: 3n,
    }],
    ["events", {
      result: {
        header: h("4"),
        events: [
          {
            kv: {
              key: "Zm9v",
              create_revision: "4",
              mod_revision: "4",
              version: "1",
              value: "cXV4",
              lease: "7",
            },
          },
          { type: "DELETE", kv: { key: "Zm9v", mod_revision: "5" } },
        ],
      },
    }, {
      kind: "response",
      response: {
        revision: 4n,
        events: [
          {
            type: "put",
            kv: {
              key: "foo",
              value: "qux",
              lease: "7",
              modRevision: 4n,
              createRevision: 4n,
              version: 1n,
            },
          },
          {
            type: "delete",
            kv: {
              key: "foo",
              value: "",
              lease: "0",
              modRevision: 5n,
              createRevision: 0n,
              version: 0n,
            },
          },
        ],
      },
    }],
    ["compaction (no header revision)", {
      result: { header: h(), canceled: true, compact_revision: "3" },
    }, {
      kind: "response",
      response: { revision: 9n, events: [], compactRevision: 3n, canceled: true },
    }],
    ["cancel with reason", {
      result: {
        header: h("4"),
        watch_id: "-1",
        created: true,
        canceled: true,
        cancel_reason: "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
      },
    }, { kind: "error", error: { code: 16, message: "etcdserver: invalid auth token" } }],
    ["stream error", {
      error: { grpc_code: 14, http_code: 503, message: "etcdserver: no leader" },
    }, { kind: "error", error: { code: 14, message: "etcdserver: no leader" } }],
  ];
  for (const [name, msg, want] of cases) {
    await t.step(name, () => assert.deepEqual(parseWatchMessage(msg, 9n), want));
  }
});

Deno.test("new EtcdClient() names the flag and value of a bad setting", async (t) => {
  await t.step("endpoint with an unknown scheme", () => {
    assert.throws(
      () => new EtcdClient({ endpoints: ["unix:///run/etcd.sock"] }),
      /--etcd-endpoints entry "unix:\/\/\/run\/etcd.sock".*unsupported scheme/,
    );
  });
  await t.step("endpoint that is not a URL", () => {
    assert.throws(
      () => new EtcdClient({ endpoints: ["127.0.0.1:2379 "] }),
      /--etcd-endpoints entry "127.0.0.1:2379 "/,
    );
  });
  await t.step("no endpoint", () => {
    assert.throws(() => new EtcdClient({ endpoints: [] }), /--etcd-endpoints/);
  });
  for (const flag of ["certFile", "keyFile", "caFile"] as const) {
    await t.step(`missing ${flag}`, async () => {
      await using tls = await makeTlsFiles();
      const files = {
        caFile: tls.caFile,
        certFile: tls.clientCertFile,
        keyFile: tls.clientKeyFile,
      };
      files[flag] = `${tls.dir}/missing.pem`;
      const name = `--etcd-${flag.toLowerCase()}`;
      await assert.rejects(
        () => EtcdClient.create({ endpoints: ["https://127.0.0.1:2379"], ...files }),
        (err: Error) => {
          assert.match(err.message, new RegExp(`${name} ".*/missing.pem": file does not exist`));
          assert.match(err.message, /existing PEM file/);
          return true;
        },
      );
    });
  }
  await t.step("CA alone is ignored with flannel's warning", () => {
    const log = recordingLogger();
    new EtcdClient({ endpoints: ["http://127.0.0.1:2379"], caFile: "/nonexistent/ca.pem", log })
      .close();
    assert.match(log.lines.join(""), /no certificate provided: connecting to etcd with http/);
    assert.match(log.lines.join(""), /Ignoring --etcd-cafile "\/nonexistent\/ca.pem"/);
  });
});

Deno.test("EtcdClient against a real etcd", async (t) => {
  await using etcd = await startEtcd();
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  try {
    await t.step("put(), get(), range() and delete()", async () => {
      const r1 = await client.put("/t/kv/b", "2");
      const r2 = await client.put("/t/kv/a", "1 é");
      await client.put("/t/kv0", "outside the prefix");
      assert.equal(r2, r1 + 1n);
      const got = await client.get("/t/kv/a");
      assert.equal(got.kv?.value, "1 é");
      assert.equal(got.kv?.lease, "0");
      assert.equal(got.kv?.modRevision, r2);
      assert.equal(got.kv?.version, 1n);
      assert.ok(got.revision >= r2 + 1n);
      assert.equal((await client.get("/t/kv/none")).kv, undefined);
      const { kvs } = await client.range("/t/kv/");
      assert.deepEqual(kvs.map((kv) => [kv.key, kv.value]), [["/t/kv/a", "1 é"], ["/t/kv/b", "2"]]);
      assert.equal(await client.delete("/t/kv/a"), 1);
      assert.equal(await client.delete("/t/kv/a"), 0);
      assert.deepEqual((await client.range("/t/kv/")).kvs.map((kv) => kv.key), ["/t/kv/b"]);
    });

    await t.step("createIfAbsent() writes once", async () => {
      assert.equal(await client.createIfAbsent("/t/once", "first"), true);
      assert.equal(await client.createIfAbsent("/t/once", "second"), false);
      assert.equal((await client.get("/t/once")).kv?.value, "first");
    });

    await t.step("leases: grant, time to live, attach, revoke", async () => {
      const lease = await client.grantLease(60);
      assert.equal(lease.ttl, 60);
      assert.match(lease.id, /^\d+$/);
      const ttl = await client.leaseTimeToLive(lease.id);
      assert.ok(ttl > 55 && ttl <= 60, `ttl ${ttl}`);
      assert.equal(await client.createIfAbsent("/t/leased", "x", { lease: lease.id }), true);
      assert.equal((await client.get("/t/leased")).kv?.lease, lease.id);
      await client.revokeLease(lease.id);
      assert.equal((await client.get("/t/leased")).kv, undefined, "the key goes with its lease");
      assert.equal(await client.leaseTimeToLive(lease.id), -1);
      assert.equal(await client.leaseTimeToLive("0"), -1);
      await client.revokeLease(lease.id); // already gone: no error
      await assert.rejects(
        () => client.put("/t/bad-lease", "x", { lease: "12345" }),
        /Cannot put "\/t\/bad-lease": etcdserver: requested lease not found/,
      );
    });

    await t.step("watch() delivers puts and deletes from a revision and resumes", async () => {
      const start = await client.put("/t/w/a", "1");
      await client.put("/t/w/b", "2");
      await client.put("/t/wx", "not under /t/w/");
      await client.delete("/t/w/a");
      const first = await collect(client, "/t/w/", start, 3);
      assert.deepEqual(first.events, ["put /t/w/a=1", "put /t/w/b=2", "delete /t/w/a="]);
      const last = first.responses.at(-1)!.revision;
      // Live event, after resuming from the last revision + 1: nothing is delivered twice.
      const resumed = collect(client, "/t/w/", last + 1n, 1);
      await client.put("/t/w/c", "3");
      assert.deepEqual((await resumed).events, ["put /t/w/c=3"]);
      // A single key (prefix: false) does not match /t/w/c.
      const single = collect(client, "/t/w/", start, 1, { prefix: false });
      await client.put("/t/w/", "exact");
      assert.deepEqual((await single).events, ["put /t/w/=exact"]);
    });

    await t.step("watch() ends at once when aborted, and leaves nothing open", async () => {
      const abort = new AbortController();
      const seen: WatchResponse[] = [];
      const from = await nextRevision(client);
      const done = (async () => {
        for await (const r of client.watch("/t/abort/", from, { signal: abort.signal })) {
          seen.push(r);
        }
      })();
      await client.put("/t/abort/x", "1");
      await until(() => seen.length > 0, "the watch's first event");
      const t0 = performance.now();
      abort.abort();
      await done;
      assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
    });

    await t.step("watch() below the compacted revision reports compactRevision", async () => {
      const early = await client.put("/t/c/a", "1");
      const compactAt = await client.put("/t/c/a", "2");
      await client.compact(compactAt);
      await assert.rejects(() => client.compact(early), EtcdCompactedError);
      const { responses } = await collect(client, "/t/c/", early, 1);
      assert.equal(responses.length, 1);
      assert.equal(responses[0].compactRevision, compactAt);
      assert.equal(responses[0].canceled, true);
      assert.deepEqual(responses[0].events, []);
    });

    await t.step("an error etcd answers with is not a failover reason", async () => {
      const dead = deadEndpoint();
      const c = new EtcdClient({ endpoints: [etcd.endpoint, dead] });
      await assert.rejects(
        () => c.compact(1_000_000n),
        (err: Error) => {
          assert.ok(!(err instanceof EtcdUnavailableError));
          assert.match(err.message, /required revision is a future revision/);
          return true;
        },
      );
      assert.equal(c.endpoint, etcd.endpoint);
      c.close();
    });

    await t.step("failover skips a dead endpoint and sticks to the live one", async () => {
      const dead = deadEndpoint();
      const log = recordingLogger();
      const c = new EtcdClient({ endpoints: [dead, etcd.endpoint], log });
      await c.put("/t/failover", "1");
      assert.equal(c.endpoint, etcd.endpoint);
      assert.match(log.lines.join(""), /Switched to etcd endpoint/);
      const watched = collect(c, "/t/failover", await nextRevision(c), 1, { prefix: false });
      await client.put("/t/failover", "2");
      assert.deepEqual((await watched).events, ["put /t/failover=2"]);
      c.close();
    });

    await t.step("no live endpoint gives EtcdUnavailableError naming them", async () => {
      const dead = [deadEndpoint(), deadEndpoint()];
      const c = new EtcdClient({ endpoints: dead, requestTimeoutMs: 2000 });
      await assert.rejects(() => c.get("/t/x"), (err: Error) => {
        assert.ok(err instanceof EtcdUnavailableError);
        assert.ok(err.message.includes(dead[0]) && err.message.includes(dead[1]));
        assert.match(err.message, /--etcd-endpoints/);
        assert.ok(err.cause instanceof Error);
        return true;
      });
      const watch = c.watch("/t/", 0n, {})[Symbol.asyncIterator]();
      await assert.rejects(() => watch.next(), EtcdUnavailableError);
      c.close();
    });

    await t.step(
      "a request on a silently dead pooled connection is retried on a new one",
      async () => {
        await using proxy = new TcpProxy(etcd.endpoint);
        const c = new EtcdClient({ endpoints: [proxy.endpoint], requestTimeoutMs: 1000 });
        try {
          await c.put("/t/dead", "1"); // leaves one idle connection in the pool
          const opened = proxy.accepted;
          proxy.freeze();
          const t0 = performance.now();
          assert.equal((await c.get("/t/dead")).kv?.value, "1");
          const ms = performance.now() - t0;
          assert.ok(
            ms >= 1000 && ms < 3000,
            `took ${ms} ms: the first try went to the dead socket`,
          );
          assert.equal(proxy.accepted, opened + 1, "the retry opened one new connection");
          // The dead connection left the pool: the next requests share one new pooled one.
          for (let i = 0; i < 3; i++) assert.equal((await c.get("/t/dead")).kv?.value, "1");
          assert.equal(proxy.accepted, opened + 2);
        } finally {
          c.close();
        }
      },
    );

    await t.step("watch() throws when etcd goes away, so the caller can resume", async () => {
      const before = await client.put("/t/r/a", "1");
      const seen: string[] = [];
      const watching = (async () => {
        for await (const r of client.watch("/t/r/", before, {})) {
          for (const e of r.events) seen.push(e.kv.key);
        }
      })();
      watching.catch(() => {}); // asserted below, after the restart
      await until(() => seen.length > 0, "the watch's first event");
      await etcd.restart();
      await assert.rejects(() => watching, /stream (broke|ended)/);
      // Resuming from the last seen revision + 1 delivers only what came after.
      const resumed = collect(client, "/t/r/", before + 1n, 1);
      await client.put("/t/r/b", "2");
      assert.deepEqual((await resumed).events, ["put /t/r/b=2"]);
    });
  } finally {
    client.close();
  }
});

Deno.test("EtcdClient over TLS with a client certificate", async (t) => {
  await using tls = await makeTlsFiles();
  await using etcd = await startEtcd({ tls });
  await t.step("works with --etcd-cafile, --etcd-certfile and --etcd-keyfile", async () => {
    const client = await EtcdClient.create({
      endpoints: [etcd.endpoint],
      caFile: tls.caFile,
      certFile: tls.clientCertFile,
      keyFile: tls.clientKeyFile,
    });
    try {
      await client.put("/tls/k", "v");
      assert.equal((await client.get("/tls/k")).kv?.value, "v");
      const watched = collect(client, "/tls/", await nextRevision(client), 1);
      await client.put("/tls/w", "x");
      assert.deepEqual((await watched).events, ["put /tls/w=x"]);
    } finally {
      client.close();
    }
  });
  /** The messages of `tries` failed reads, after checking each is an EtcdUnavailableError. */
  const failures = async (client: EtcdClient, tries = 1) => {
    const seen: string[] = [];
    for (let i = 0; i < tries; i++) {
      await assert.rejects(() => client.get("/tls/k"), (err: Error) => {
        assert.ok(err instanceof EtcdUnavailableError);
        seen.push(describeError(err));
        return true;
      });
    }
    client.close();
    return seen;
  };
  await t.step(
    "a lone --etcd-cafile cannot stand in for a required client certificate",
    async () => {
      const log = recordingLogger();
      const client = new EtcdClient({ endpoints: [etcd.endpoint], caFile: tls.caFile, log });
      const [message] = await failures(client);
      assert.match(
        message,
        /^etcd at https:\/\/127\.0\.0\.1:\d+ requires a client certificate \(received fatal alert: BadCertificate\): set --etcd-certfile and --etcd-keyfile$/,
      );
      assert.doesNotMatch(log.lines.join(""), /connecting to etcd with http/);
    },
  );
  await t.step("a client certificate of another CA: one clear message on every retry", async () => {
    await using other = await makeTlsFiles();
    const client = new EtcdClient({
      endpoints: [etcd.endpoint],
      caFile: tls.caFile,
      certFile: other.clientCertFile,
      keyFile: other.clientKeyFile,
    });
    const messages = await failures(client, 6);
    assert.equal(new Set(messages).size, 1, messages.join("\n"));
    assert.match(
      messages[0],
      /^etcd at https:.* refused the client certificate --etcd-certfile ".*\/client\.pem" \(received fatal alert: BadCertificate\): use a certificate signed by a CA in etcd's --trusted-ca-file$/,
    );
  });
});

Deno.test("EtcdClient over TLS without client certificates (server authentication only)", async (t) => {
  await using tls = await makeTlsFiles();
  await using etcd = await startEtcd({ tls, clientCertAuth: false });
  await t.step("--etcd-cafile alone verifies etcd's certificate", async () => {
    const log = recordingLogger();
    const client = new EtcdClient({ endpoints: [etcd.endpoint], caFile: tls.caFile, log });
    try {
      await client.put("/tls/k", "v");
      assert.equal((await client.get("/tls/k")).kv?.value, "v");
    } finally {
      client.close();
    }
    assert.doesNotMatch(log.lines.join(""), /connecting to etcd with http|Ignoring/);
    assert.match(log.lines.join(""), /Verifying etcd's certificate with --etcd-cafile/);
  });
  await t.step(
    "without --etcd-cafile the cause comes first, with no --etcd-endpoints hint",
    async () => {
      const client = new EtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 2000 });
      await assert.rejects(() => client.get("/tls/k"), (err: Error) => {
        assert.ok(err instanceof EtcdUnavailableError);
        assert.match(
          describeError(err),
          /^etcd's TLS certificate at https:\/\/127\.0\.0\.1:\d+ is not trusted \(invalid peer certificate: UnknownIssuer\): set --etcd-cafile to the CA that signed it$/,
        );
        return true;
      });
      client.close();
    },
  );
  await t.step("a --etcd-cafile that did not sign etcd's certificate is named", async () => {
    await using other = await makeTlsFiles();
    const client = new EtcdClient({ endpoints: [etcd.endpoint], caFile: other.caFile });
    await assert.rejects(() => client.get("/tls/k"), (err: Error) => {
      assert.match(
        err.message,
        /is not trusted \(invalid peer certificate: \w+\): it is not signed by --etcd-cafile ".*\/ca\.pem"/,
      );
      return true;
    });
    client.close();
  });
});

Deno.test("EtcdClient with etcd auth", async (t) => {
  const password = "s3cret-pw";
  await using etcd = await startEtcd({ auth: { user: "flannel", password } });
  await t.step(
    "username and password work, and survive a token invalidated by restart",
    async () => {
      const log = recordingLogger();
      const client = new EtcdClient({
        endpoints: [etcd.endpoint],
        username: "flannel",
        password,
        log,
      });
      try {
        await client.put("/auth/k", "v");
        const watched = collect(client, "/auth/", await nextRevision(client), 1);
        await client.put("/auth/w", "1");
        assert.deepEqual((await watched).events, ["put /auth/w=1"]);
        // etcd's simple tokens live in memory: after a restart the cached one is invalid.
        await etcd.restart();
        assert.equal((await client.get("/auth/k")).kv?.value, "v");
        const rewatched = collect(client, "/auth/", await nextRevision(client), 1);
        await client.put("/auth/w", "2");
        assert.deepEqual((await rewatched).events, ["put /auth/w=2"]);
        assert.ok(!log.lines.join("").includes(password), "the password is never logged");
        const auths = log.lines.filter((l) =>
          l.includes('Authenticated to etcd as user "flannel"')
        );
        assert.equal(auths.length, 2, "authenticated again after the restart");
      } finally {
        client.close();
      }
    },
  );
  await t.step("a wrong password gives EtcdAuthError", async () => {
    const client = new EtcdClient({
      endpoints: [etcd.endpoint],
      username: "flannel",
      password: "x",
    });
    await assert.rejects(() => client.get("/auth/k"), (err: Error) => {
      assert.ok(err instanceof EtcdAuthError);
      assert.match(err.message, /as user "flannel".*--etcd-password/);
      assert.ok(!err.message.includes(password));
      return true;
    });
    client.close();
  });
  await t.step("no username gives EtcdAuthError naming --etcd-username", async () => {
    const client = new EtcdClient({ endpoints: [etcd.endpoint] });
    await assert.rejects(() => client.get("/auth/k"), (err: Error) => {
      assert.ok(err instanceof EtcdAuthError);
      assert.match(err.message, /--etcd-username/);
      return true;
    });
    const watch = client.watch("/auth/", 0n, {})[Symbol.asyncIterator]();
    await assert.rejects(() => watch.next(), EtcdAuthError);
    client.close();
  });
});
