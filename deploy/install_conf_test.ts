/**
 * deploy/install-conf, the install-cni init container's command (flannel's cmd/install_conf),
 * under dash (Debian's /bin/sh, as in the image) and bash.
 */
import assert from "node:assert/strict";

const SCRIPT = new URL("./install-conf", import.meta.url).pathname;
const SHELLS = ["dash", "bash"].filter((sh) => {
  try {
    return new Deno.Command(sh, { args: ["-c", "exit 0"] }).outputSync().success;
  } catch {
    return false;
  }
});
const CONFLIST = '{\n  "name": "cbr0",\n  "cniVersion": "0.3.1"\n}\n';

async function installConf(shell: string, args: string[]) {
  const out = await new Deno.Command(shell, { args: [SCRIPT, ...args], stdin: "null" }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function sandbox() {
  const dir = await Deno.makeTempDir({ prefix: "install-conf-" });
  await Deno.mkdir(`${dir}/net.d`);
  await Deno.writeTextFile(`${dir}/cni-conf.json`, CONFLIST, { mode: 0o640 });
  await Deno.chmod(`${dir}/cni-conf.json`, 0o640);
  return {
    dir,
    src: `${dir}/cni-conf.json`,
    dest: `${dir}/net.d/10-flannel.conflist`,
    list: () => [...Deno.readDirSync(`${dir}/net.d`)].map((e) => e.name).sort(),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

for (const shell of SHELLS) {
  Deno.test(`install-conf (${shell}) copies SRC to DEST with SRC's mode, leaving no temp file`, async () => {
    await using s = await sandbox();
    // A temp file of an interrupted earlier run, and an older config that gets replaced.
    await Deno.writeTextFile(`${s.dir}/net.d/.10-flannel.conflist.tmp`, "{half");
    await Deno.writeTextFile(s.dest, "old");
    const before = await Deno.open(s.dest);
    const r = await installConf(shell, [s.src, s.dest]);
    assert.deepEqual(r, { code: 0, stderr: "" });
    assert.equal(await Deno.readTextFile(s.dest), CONFLIST);
    assert.equal((await Deno.stat(s.dest)).mode! & 0o777, 0o640);
    assert.deepEqual(s.list(), ["10-flannel.conflist"]);
    // Replaced by a rename: a reader that had the old file open still reads it whole.
    const old = new Uint8Array(16);
    const n = await before.read(old);
    before.close();
    assert.equal(new TextDecoder().decode(old.subarray(0, n ?? 0)), "old");
    // Idempotent.
    assert.equal((await installConf(shell, [s.src, s.dest])).code, 0);
    assert.deepEqual(s.list(), ["10-flannel.conflist"]);
  });

  Deno.test(`install-conf (${shell}) prints the usage and exits 1 unless given exactly two arguments`, async () => {
    await using s = await sandbox();
    for (const args of [[], [s.src], [s.src, s.dest, "extra"]]) {
      const r = await installConf(shell, args);
      assert.equal(r.code, 1, `${args.length} arguments`);
      assert.match(r.stderr, /^usage: \S*install-conf <src> <dest>\n$/);
    }
    assert.deepEqual(s.list(), []);
  });

  Deno.test(`install-conf (${shell}) fails with one line naming the problem`, async () => {
    await using s = await sandbox();
    const missing = await installConf(shell, [`${s.dir}/nope.json`, s.dest]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error installing ".*nope\.json": cannot open file/);
    const noDir = await installConf(shell, [s.src, `${s.dir}/absent/10-flannel.conflist`]);
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /destination folder ".*absent" does not exist\n$/);
    assert.deepEqual(s.list(), []);
  });
}
