import assert from "node:assert/strict";
import { join } from "node:path";
import { atomicWriteFile } from "./atomic_write.ts";

async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "atomic_write_test_" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test("atomicWriteFile() gives a new file exactly 0644 even under umask 077", async () => {
  await using dir = await tempDir();
  const target = join(dir.path, "subnet.env");
  // umask is process-wide: change it only in a child process, not under parallel tests.
  const moduleUrl = new URL("./atomic_write.ts", import.meta.url).href;
  const code = `import { atomicWriteFile } from ${JSON.stringify(moduleUrl)};
await atomicWriteFile(${JSON.stringify(target)}, "FLANNEL_MTU=1450\\n");`;
  const out = await new Deno.Command("sh", {
    args: ["-c", 'umask 077 && exec "$@"', "sh", Deno.execPath(), "eval", "--no-config", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(await modeOf(target), 0o644);
  assert.equal(await Deno.readTextFile(target), "FLANNEL_MTU=1450\n");
  assert.deepEqual(await entries(dir.path), ["subnet.env"]);
});

Deno.test("atomicWriteFile() applies the given mode to a new file", async () => {
  await using dir = await tempDir();
  const target = join(dir.path, "secret");
  await atomicWriteFile(target, "x", { mode: 0o640 });
  assert.equal(await modeOf(target), 0o640);
});

Deno.test("atomicWriteFile() keeps the permission bits of an existing file", async (t) => {
  for (const mode of [0o600, 0o640, 0o755]) {
    await t.step(`0${mode.toString(8)}`, async () => {
      await using dir = await tempDir();
      const target = join(dir.path, "subnet.env");
      await Deno.writeTextFile(target, "old contents that are longer than the new ones\n");
      await Deno.chmod(target, mode);
      await atomicWriteFile(target, "new\n");
      assert.equal(await modeOf(target), mode);
      assert.equal(await Deno.readTextFile(target), "new\n");
      assert.deepEqual(await entries(dir.path), ["subnet.env"]);
    });
  }
});

Deno.test("atomicWriteFile() creates missing parent directories", async () => {
  await using dir = await tempDir();
  const target = join(dir.path, "run", "flannel", "subnet.env");
  const bytes = new Uint8Array([0, 1, 2, 255, 10]);
  await atomicWriteFile(target, bytes);
  assert.deepEqual(await Deno.readFile(target), bytes);
  assert.ok((await Deno.stat(join(dir.path, "run", "flannel"))).isDirectory);
  assert.deepEqual(await entries(join(dir.path, "run", "flannel")), ["subnet.env"]);
});

Deno.test("atomicWriteFile() replaces the file by rename (old inode untouched)", async () => {
  await using dir = await tempDir();
  const target = join(dir.path, "subnet.env");
  await Deno.writeTextFile(target, "old\n");
  const reader = await Deno.open(target);
  try {
    await atomicWriteFile(target, "new\n");
    // A reader holding the old file still sees the old, complete contents.
    const buf = new Uint8Array(16);
    const n = await reader.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "old\n");
  } finally {
    reader.close();
  }
  assert.equal(await Deno.readTextFile(target), "new\n");
});

Deno.test("atomicWriteFile() removes its temp file and names the path on failure", async () => {
  await using dir = await tempDir();
  const target = join(dir.path, "subnet.env");
  await Deno.mkdir(target);
  await Deno.writeTextFile(join(target, "keep"), "");
  await assert.rejects(atomicWriteFile(target, "data\n"), (err: Error) => {
    assert.match(err.message, /subnet\.env/);
    assert.ok(err.cause instanceof Error);
    return true;
  });
  assert.deepEqual(await entries(dir.path), ["subnet.env"]);
  assert.ok((await Deno.stat(target)).isDirectory);
});

Deno.test("atomicWriteFile() fails with the path named when the parent cannot be created", async () => {
  await using dir = await tempDir();
  const blocker = join(dir.path, "file");
  await Deno.writeTextFile(blocker, "");
  await assert.rejects(
    atomicWriteFile(join(blocker, "sub", "subnet.env"), "x"),
    /Cannot write file ".*file\/sub\/subnet\.env"/,
  );
  assert.deepEqual(await entries(dir.path), ["file"]);
});
