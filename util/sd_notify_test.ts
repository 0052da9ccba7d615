import assert from "node:assert/strict";
import { join } from "node:path";
import { sdNotify, sockaddrUn } from "./sd_notify.ts";
import { listenUnixgram } from "../test/unixgram.ts";

Deno.test("sdNotify() sends READY=1 to a path socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sd_notify_test_" });
  try {
    const path = join(dir, "notify");
    using rx = listenUnixgram(path);
    assert.equal(await sdNotify("READY=1", { NOTIFY_SOCKET: path }), true);
    assert.equal(rx.take(), "READY=1");
    assert.equal(await sdNotify("STATUS=two\nREADY=1", { NOTIFY_SOCKET: path }), true);
    assert.equal(rx.take(), "STATUS=two\nREADY=1");
    assert.throws(() => rx.take(), /errno 11/); // nothing else queued (EAGAIN)
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sdNotify() sends to an abstract socket named with @", async () => {
  const name = `@flannel-sd-notify-test-${Deno.pid}-${crypto.randomUUID()}`;
  using rx = listenUnixgram(name);
  assert.equal(await sdNotify("READY=1", { NOTIFY_SOCKET: name }), true);
  assert.equal(rx.take(), "READY=1");
  // The abstract name is length-delimited: a prefix of it is a different, unbound address.
  await assert.rejects(sdNotify("READY=1", { NOTIFY_SOCKET: name.slice(0, -1) }));
});

Deno.test("sdNotify() retries while the receiver's queue is full", async () => {
  const name = `@flannel-sd-notify-test-${Deno.pid}-${crypto.randomUUID()}`;
  using rx = listenUnixgram(name);
  const queued = rx.fill();
  const sent = sdNotify("READY=1", { NOTIFY_SOCKET: name }); // first sendto hits EAGAIN
  for (let i = 0; i < queued; i++) assert.equal(rx.take(), "filler");
  assert.equal(await sent, true);
  assert.equal(rx.take(), "READY=1");
});

Deno.test("sdNotify() is a no-op when NOTIFY_SOCKET is unset or empty", async (t) => {
  await t.step("unset", async () => assert.equal(await sdNotify("READY=1", {}), false));
  await t.step("empty", async () => {
    assert.equal(await sdNotify("READY=1", { NOTIFY_SOCKET: "" }), false);
  });
});

Deno.test("sdNotify() throws naming the socket when nobody listens", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sd_notify_test_" });
  try {
    const path = join(dir, "absent");
    await assert.rejects(sdNotify("READY=1", { NOTIFY_SOCKET: path }), (err: Error) => {
      assert.ok(err.message.includes(`"${path}"`), err.message);
      assert.match(String((err.cause as Error).message), /sendto failed: No such file/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sockaddrUn() lays out struct sockaddr_un", async (t) => {
  await t.step("path: family, bytes, NUL counted", () => {
    const { addr, len } = sockaddrUn("/run/x");
    assert.deepEqual([...addr.subarray(0, 9)], [1, 0, 47, 114, 117, 110, 47, 120, 0]);
    assert.equal(len, 2 + 6 + 1);
  });
  await t.step("abstract: leading NUL, no terminator counted", () => {
    const { addr, len } = sockaddrUn("@ab");
    assert.deepEqual([...addr.subarray(0, 5)], [1, 0, 0, 97, 98]);
    assert.equal(len, 2 + 1 + 2);
  });
  await t.step(
    "too long",
    () => assert.throws(() => sockaddrUn("/" + "x".repeat(107)), RangeError),
  );
  await t.step("longest path fits", () => assert.equal(sockaddrUn("/" + "x".repeat(106)).len, 110));
});
