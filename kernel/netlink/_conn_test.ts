import assert from "node:assert/strict";
import { Buffer, NLM_F_DUMP_INTR, NLM_F_MULTI, RTM_GETROUTE, RTM_NEWROUTE } from "./_codec.ts";
import { Connection, DUMP_ATTEMPTS } from "./_conn.ts";
import {
  doneMessage,
  errorMessage,
  kernelMessage,
  ScriptedSocket,
} from "../../test/fakes/scripted_socket.ts";
import { ExistsError, NetlinkError, NotFoundError, PermissionDeniedError } from "./errors.ts";

const body: [Uint8Array, Uint8Array[]] = [Buffer.alloc(12), []];

function route(seq: number, n: number, flags = NLM_F_MULTI) {
  return kernelMessage(RTM_NEWROUTE, flags, seq, Buffer.from([n, 0, 0, 0]));
}

Deno.test("Connection.dump() reads a multipart answer across datagrams until NLMSG_DONE", async () => {
  const sock = new ScriptedSocket((req) => [
    [route(req.seq, 1), route(req.seq, 2)],
    [route(req.seq, 3)],
    [route(req.seq, 4), doneMessage(req.seq)],
  ]);
  const conn = new Connection(sock, 100);
  const msgs = await conn.dump(RTM_GETROUTE, body, "list");
  assert.deepEqual(msgs.map((m) => m.data[0]), [1, 2, 3, 4]);
  assert.equal(sock.requests[0].flags & 0x300, 0x300, "NLM_F_DUMP set");
  assert.equal(sock.requests[0].seq, 101);
});

Deno.test("Connection.dump() retries a dump the kernel marks NLM_F_DUMP_INTR", async (t) => {
  await t.step("succeeds when a retry is consistent", async () => {
    let attempt = 0;
    const sock = new ScriptedSocket((req) => {
      attempt++;
      const flags = attempt === 1 ? NLM_F_MULTI | NLM_F_DUMP_INTR : NLM_F_MULTI;
      return [[route(req.seq, attempt, flags), doneMessage(req.seq)]];
    });
    const msgs = await new Connection(sock).dump(RTM_GETROUTE, body, "list");
    assert.equal(attempt, 2);
    assert.deepEqual(msgs.map((m) => m.data[0]), [2]);
  });
  await t.step("gives up after DUMP_ATTEMPTS interrupted dumps", async () => {
    let attempt = 0;
    const sock = new ScriptedSocket((req) => {
      attempt++;
      return [[doneMessage(req.seq).map((b, i) => i === 6 ? b | NLM_F_DUMP_INTR : b)]];
    });
    await assert.rejects(new Connection(sock).dump(RTM_GETROUTE, body, "list routes"), (err) => {
      assert.ok(err instanceof NetlinkError);
      assert.match(err.message, /^list routes: dump interrupted by concurrent changes 5 times/);
      return true;
    });
    assert.equal(attempt, DUMP_ATTEMPTS);
  });
});

Deno.test("Connection.request() maps NLMSG_ERROR to typed errors", async (t) => {
  const cases: Array<[string, number, new (...a: never[]) => Error, string | undefined]> = [
    ["EEXIST", 17, ExistsError, "Route exists"],
    ["ENOENT", 2, NotFoundError, undefined],
    ["ESRCH", 3, NotFoundError, undefined],
    ["ENODEV", 19, NotFoundError, undefined],
    ["EPERM", 1, PermissionDeniedError, undefined],
    ["EACCES", 13, PermissionDeniedError, undefined],
    ["EINVAL", 22, NetlinkError, "Invalid prefix"],
  ];
  for (const [code, errno, cls, text] of cases) {
    await t.step(code, async () => {
      const sock = new ScriptedSocket((req) => [[errorMessage(req.seq, errno, text)]]);
      await assert.rejects(
        new Connection(sock).request(RTM_NEWROUTE, 0, body, "Cannot add route 10.1.0.0/24"),
        (err) => {
          assert.ok(err instanceof cls, `${err} is a ${cls.name}`);
          assert.ok(err instanceof NetlinkError);
          assert.equal(err.errno, errno);
          assert.equal(err.code, code);
          assert.ok(err.message.startsWith(`Cannot add route 10.1.0.0/24: `), err.message);
          if (text) assert.ok(err.message.endsWith(`(kernel: ${text})`), err.message);
          if (cls === NetlinkError) {
            assert.ok(!(err instanceof ExistsError || err instanceof NotFoundError));
          }
          return true;
        },
      );
    });
  }
});

Deno.test("Connection.request() returns replies before the ACK and skips stale sequence numbers", async () => {
  const sock = new ScriptedSocket((req) => [
    [route(req.seq - 1, 9), errorMessage(req.seq - 1, 0)],
    [route(req.seq, 1, 0), errorMessage(req.seq, 0)],
  ]);
  const msgs = await new Connection(sock).request(RTM_GETROUTE, 0, body, "get");
  assert.deepEqual(msgs.map((m) => m.data[0]), [1]);
  assert.equal(sock.requests[0].flags & 0x5, 0x5, "NLM_F_REQUEST|NLM_F_ACK");
});

Deno.test("Connection.request() runs one request at a time", async () => {
  const sock = new ScriptedSocket((req) => [[errorMessage(req.seq, 0)]]);
  const conn = new Connection(sock);
  // ScriptedSocket.send throws if a request is sent while the previous answer is unread.
  await Promise.all(Array.from({ length: 20 }, () => conn.request(RTM_NEWROUTE, 0, body, "add")));
  const seqs = sock.requests.map((r) => r.seq);
  assert.equal(new Set(seqs).size, 20);
  // A failed request does not wedge the queue.
  const failing = new ScriptedSocket((req) =>
    req.seq % 2 ? [[errorMessage(req.seq, 17)]] : [[errorMessage(req.seq, 0)]]
  );
  const c2 = new Connection(failing, 0);
  const results = await Promise.allSettled([1, 2, 3, 4].map(() => c2.request(24, 0, body, "add")));
  assert.deepEqual(results.map((r) => r.status), [
    "rejected",
    "fulfilled",
    "rejected",
    "fulfilled",
  ]);
});

Deno.test("Connection.request() fails when the socket closes mid-request", async () => {
  const sock = new ScriptedSocket(() => []);
  const conn = new Connection(sock);
  const p = conn.request(RTM_GETROUTE, 0, body, "Cannot get route");
  conn.close();
  await assert.rejects(p, /Cannot get route: the netlink socket was closed/);
});
