import assert from "node:assert/strict";
import { join } from "node:path";
import { sdNotify, sockaddrUn } from "./sd_notify.ts";

// `Deno.listenDatagram({ transport: "unixpacket" })` needs --unstable-net, so the receiving
// side is built with libc through FFI too: a non-blocking datagram socket bound to the address.
const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_UNIX = 1;
const SOCK_DGRAM_NONBLOCK_CLOEXEC = 2 | 0o4000 | 0o2000000;

interface Receiver extends Disposable {
  /** The next queued datagram as text; throws when none is queued (never waits). */
  take(): string;
  /** Queues "filler" datagrams until the receive queue is full; returns how many. */
  fill(): number;
}

function errno(lib: Deno.DynamicLibrary<typeof SYMBOLS>): number {
  return new Deno.UnsafePointerView(lib.symbols.__errno_location()!).getInt32();
}

function listenUnixgram(socket: string): Receiver {
  const lib = Deno.dlopen("libc.so.6", SYMBOLS);
  const fd = lib.symbols.socket(AF_UNIX, SOCK_DGRAM_NONBLOCK_CLOEXEC, 0);
  if (fd < 0) {
    lib.close();
    throw new Error(`socket failed: errno ${errno(lib)}`);
  }
  const { addr, len } = sockaddrUn(socket);
  if (lib.symbols.bind(fd, addr, len) !== 0) {
    const e = errno(lib);
    lib.symbols.close(fd);
    lib.close();
    throw new Error(`bind "${socket}" failed: errno ${e}`);
  }
  return {
    take() {
      const buf = new Uint8Array(4096);
      const n = Number(lib.symbols.recv(fd, buf, BigInt(buf.length), 0));
      if (n < 0) throw new Error(`recv on "${socket}" failed: errno ${errno(lib)}`);
      return new TextDecoder().decode(buf.subarray(0, n));
    },
    fill() {
      const tx = lib.symbols.socket(AF_UNIX, SOCK_DGRAM_NONBLOCK_CLOEXEC, 0);
      const msg = new TextEncoder().encode("filler");
      let count = 0;
      try {
        while (lib.symbols.sendto(tx, msg, BigInt(msg.length), 0, addr, len) >= 0) {
          if (++count > 100_000) throw new Error("receive queue never filled");
        }
        assert.equal(errno(lib), 11, "queue full should report EAGAIN");
        return count;
      } finally {
        lib.symbols.close(tx);
      }
    },
    [Symbol.dispose]() {
      lib.symbols.close(fd);
      lib.close();
    },
  };
}

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
