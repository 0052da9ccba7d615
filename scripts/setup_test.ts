/**
 * The setup behind the README's two commands (scripts/_setup.sh, scripts/install-deno.sh) on a
 * machine made to look fresh: a PATH that hides deno, etcd and friends, and fake `apt-get`,
 * `npm` and `curl` that record their calls (and fail on request) instead of reaching a network.
 * Not tested here: a really fresh machine, and Deno's real official installer (its host is
 * unreachable from our machines).
 */
import assert from "node:assert/strict";

const SCRIPTS = new URL("./", import.meta.url).pathname;
const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const FAKE_DENO = '#!/bin/sh\necho "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)"\n';

interface Machine extends AsyncDisposable {
  readonly dir: string;
  /** Runs `setup PROFILE` as demo.sh and test.sh do, then prints the deno it put on PATH. */
  setup(profile: string, env?: Record<string, string>, asUser?: boolean): Promise<Result>;
  /** Runs one of the scripts (`test.sh`, `demo.sh`) itself. */
  script(name: string, env?: Record<string, string>): Promise<Result>;
  calls(): Promise<string[]>;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Programs a test may hide; every other system program is in one shared folder. */
const HIDEABLE = ["deno", "etcd", "etcdctl", "iperf3", "socat", "npm", "curl", "apt-get"];
const BASE = await Deno.makeTempDir({ prefix: "flanneld-setup-base-" });
await Deno.chmod(BASE, 0o755); // the not-root case runs as nobody
globalThis.addEventListener("unload", () => Deno.removeSync(BASE, { recursive: true }));
const found = new Map<string, string>();
for (const d of SYSTEM_DIRS) {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(d)];
  } catch {
    continue; // not on this machine
  }
  for (const e of entries) if (!found.has(e.name)) found.set(e.name, `${d}/${e.name}`);
}
for (const [name, path] of found) {
  if (!HIDEABLE.includes(name)) Deno.symlinkSync(path, `${BASE}/${name}`);
}

/** A bin folder with the system's programs except `hide`, the fakes first. */
async function machine(hide: string[]): Promise<Machine> {
  const dir = await Deno.makeTempDir({ prefix: "flanneld-setup-" });
  await Deno.chmod(dir, 0o755);
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin);
  for (const name of HIDEABLE) {
    const path = found.get(name);
    if (path && !hide.includes(name) && !["apt-get", "npm", "curl"].includes(name)) {
      await Deno.symlink(path, `${bin}/${name}`);
    }
  }
  const calls = `${dir}/calls`;
  const fake = (name: string, body: string) =>
    Deno.writeTextFile(`${bin}/${name}`, `#!/bin/sh\necho "${name} $*" >>${calls}\n${body}`, {
      mode: 0o755,
    });
  await fake(
    "apt-get",
    `if [ -n "$FAKE_APT_FAIL" ]; then
  echo "Err:1 http://deb.debian.org/debian bookworm InRelease"
  echo "  Temporary failure resolving 'deb.debian.org'"
  echo "E: Unable to locate package etcd-server" >&2
  exit 100
fi\n`,
  );
  if (!hide.includes("npm")) {
    await fake(
      "npm",
      `mkdir -p node_modules/@deno/linux-x64-glibc
cat >node_modules/@deno/linux-x64-glibc/deno <<'X'\n${FAKE_DENO}X
chmod +x node_modules/@deno/linux-x64-glibc/deno\n`,
    );
  }
  // Serves an installer that does what Deno's does: $DENO_INSTALL/bin/deno of version $1.
  await fake(
    "curl",
    `cat <<'X'
echo "installer $1" >>${calls}
mkdir -p "$DENO_INSTALL/bin"
printf '#!/bin/sh\\necho "deno %s (stable)"\\n' "\${1#v}" >"$DENO_INSTALL/bin/deno"
chmod +x "$DENO_INSTALL/bin/deno"
X\n`,
  );
  const env = (extra: Record<string, string> = {}) => ({
    PATH: `${bin}:${BASE}`,
    HOME: dir,
    DENO_PREFIX: `${dir}/deno`,
    DENO_LINK_DIR: `${dir}/link`,
    ...extra,
  });
  await Deno.mkdir(`${dir}/link`);
  const run = async (argv: string[], e: Record<string, string>): Promise<Result> => {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: e,
      clearEnv: true,
      stdin: "null",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  };
  return {
    dir,
    setup: (profile, extra, asUser) => {
      const driver = `. ${SCRIPTS}_setup.sh; setup ${profile}; echo "deno=$(command -v deno)"`;
      const argv = [`${BASE}/bash`, "-c", driver];
      return run(
        asUser
          ? [`${BASE}/setpriv`, "--reuid=65534", "--regid=65534", "--clear-groups", ...argv]
          : argv,
        env(extra),
      );
    },
    script: (name, extra) => run([`${SCRIPTS}${name}`], env(extra)),
    calls: () => Deno.readTextFile(calls).then((t) => t.trim().split("\n"), () => []),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

const TOOLS = ["etcd", "etcdctl", "iperf3"];

Deno.test("setup is silent and installs nothing when everything is there", async () => {
  await using m = await machine([]);
  const r = await m.setup("test");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^deno=\/\S+\/deno\n$/);
  assert.deepEqual(await m.calls(), []);
});

Deno.test("setup installs the missing packages and Deno from npm, saying so, once", async () => {
  await using m = await machine([...TOOLS, "deno"]);
  const r = await m.setup("demo");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stderr.trim().split("\n"), [
    "setup: installing with apt-get: etcd-server etcd-client iperf3",
    `setup: installing Deno 2.9.6 (npm package deno) into ${m.dir}/deno`,
  ]);
  assert.equal(r.stdout, `deno=${m.dir}/deno/node_modules/@deno/linux-x64-glibc/deno\n`);
  assert.deepEqual(await m.calls(), [
    "apt-get update -qq",
    "apt-get install -y -qq --no-install-recommends etcd-server etcd-client iperf3",
    "npm install --no-audit --no-fund --silent deno@2.9.6",
  ]);
  assert.equal(
    await Deno.readLink(`${m.dir}/link/deno`),
    `${m.dir}/deno/node_modules/@deno/linux-x64-glibc/deno`,
  );
});

Deno.test("setup falls back to Deno's official installer where npm is missing", async () => {
  await using m = await machine(["deno", "npm"]);
  const r = await m.setup("test");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stderr.trim().split("\n"), [
    `setup: installing Deno 2.9.6 (Deno's official installer) into ${m.dir}/deno`,
  ]);
  assert.equal(r.stdout, `deno=${m.dir}/deno/bin/deno\n`);
  assert.deepEqual(await m.calls(), [
    "curl -fsSL https://deno.land/install.sh",
    "installer v2.9.6",
  ]);
});

Deno.test("SETUP_DRY_RUN=1 says what the two commands would install and runs nothing", async (t) => {
  for (
    const [script, packages] of [["demo.sh", "etcd-server etcd-client iperf3"], [
      "test.sh",
      "etcd-server etcd-client iperf3 socat",
    ]]
  ) {
    await t.step(script, async () => {
      await using m = await machine([...TOOLS, "socat", "deno"]);
      const r = await m.script(script, { SETUP_DRY_RUN: "1" });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stderr.trim().split("\n"), [
        `setup: would install with apt-get: ${packages}`,
        `setup: would install Deno 2.9.6 (npm package deno) into ${m.dir}/deno`,
      ]);
      assert.deepEqual(await m.calls(), []);
    });
  }
});

Deno.test("setup fails with one clear line when it cannot install", async (t) => {
  await t.step("no network", async () => {
    await using m = await machine(TOOLS);
    const r = await m.setup("demo", { FAKE_APT_FAIL: "1" });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 2, r.stderr); // what it tried, and why it failed
    assert.match(
      lines[1],
      /^setup: apt-get could not install etcd-server etcd-client iperf3 \(no network, or no such package\?\): E: Unable to locate package/,
    );
  });
  await t.step("npm cannot reach its registry", async () => {
    await using m = await machine(["deno"]);
    await Deno.writeTextFile(
      `${m.dir}/bin/npm`,
      "#!/bin/sh\necho 'npm error code EAI_AGAIN' >&2\nexit 1\n",
    );
    const r = await m.setup("demo");
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.trim().split("\n").at(-1)!,
      /^setup: could not install Deno 2\.9\.6 from npm \(no network\?\): npm error code EAI_AGAIN$/,
    );
  });
  await t.step({
    name: "not root",
    ignore: Deno.uid() !== 0 || !found.has("setpriv"), // drops to nobody with setpriv
    fn: async () => {
      await using m = await machine(TOOLS);
      const r = await m.setup("demo", {}, true);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^setup: installing etcd-server etcd-client iperf3 needs root: run this as root \(e\.g\. sudo .*\)\n$/,
      );
      assert.deepEqual(await m.calls(), []);
    },
  });
  await t.step("not Debian or Ubuntu", async () => {
    await using m = await machine(TOOLS);
    await Deno.remove(`${m.dir}/bin/apt-get`);
    const r = await m.setup("demo");
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^setup: cannot install etcd-server etcd-client iperf3: no apt-get here/,
    );
  });
});
