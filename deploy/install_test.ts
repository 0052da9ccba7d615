/**
 * deploy/install.sh in a temporary root: installs the binary, mk-docker-opts.sh, the unit and the
 * environment file; a second run changes nothing; an edited environment file is kept; uninstall
 * removes what install put there and nothing else. Fake `ip`, `iptables`, `etcdctl` and
 * `systemctl` first on PATH record any call: none may happen.
 */
import assert from "node:assert/strict";

const SCRIPT = new URL("./install.sh", import.meta.url).pathname;
const hasSetpriv = new Deno.Command("sh", { args: ["-c", "command -v setpriv"] }).outputSync()
  .success;
const SAMPLE_ENV = Deno.readTextFileSync(new URL("./flanneld.env", import.meta.url));
const INSTALLED = [
  "etc/default/flanneld",
  "etc/systemd/system/flanneld.service",
  "run/flannel/subnet.env",
  "usr/local/bin/flanneld",
  "usr/local/bin/mk-docker-opts.sh",
];

async function sandbox() {
  const dir = await Deno.makeTempDir({ prefix: "flanneld-install-" });
  const root = `${dir}/root`;
  const fakes = `${dir}/fakes`;
  await Deno.mkdir(`${root}/run/flannel`, { recursive: true });
  await Deno.writeTextFile(`${root}/run/flannel/subnet.env`, "FLANNEL_SUBNET=10.5.72.1/24\n");
  await Deno.mkdir(fakes);
  for (const tool of ["ip", "iptables", "etcdctl", "systemctl"]) {
    await Deno.writeTextFile(`${fakes}/${tool}`, `#!/bin/sh\necho "${tool} $*" >>${dir}/calls\n`, {
      mode: 0o755,
    });
  }
  const binary = `${dir}/flanneld`;
  await Deno.writeTextFile(binary, "#!/bin/sh\necho v1\n", { mode: 0o755 });
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("sh", {
      args: [SCRIPT, ...args],
      env: { PATH: `${fakes}:${Deno.env.get("PATH")}` },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, lines: text.trim().split("\n") };
  };
  const files = () => {
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of Deno.readDirSync(d)) {
        if (e.isDirectory) walk(`${d}/${e.name}`);
        else found.push(`${d}/${e.name}`.slice(root.length + 1));
      }
    };
    walk(root);
    return found.sort();
  };
  const calls = () => Deno.readTextFile(`${dir}/calls`).catch(() => "");
  const mode = (f: string) => Deno.statSync(`${root}/${f}`).mode! & 0o777;
  return {
    dir,
    root,
    binary,
    run,
    files,
    calls,
    mode,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("install.sh installs the four files and a second run changes nothing", async () => {
  await using s = await sandbox();
  const first = await s.run("--binary", s.binary, "--root", s.root);
  assert.equal(first.code, 0, first.lines.join("\n"));
  assert.deepEqual(first.lines.slice(0, 4), [
    "installed  /usr/local/bin/flanneld",
    "installed  /usr/local/bin/mk-docker-opts.sh",
    "installed  /etc/systemd/system/flanneld.service",
    "installed  /etc/default/flanneld",
  ]);
  assert.match(first.lines[4], /^Next: .* systemctl enable --now flanneld$/);
  assert.deepEqual(s.files(), INSTALLED);
  assert.deepEqual(
    INSTALLED.slice(0, 2).concat(INSTALLED.slice(3)).map(s.mode),
    [0o600, 0o644, 0o755, 0o755],
  );
  assert.equal(await Deno.readTextFile(`${s.root}/etc/default/flanneld`), SAMPLE_ENV);
  const before = s.files().map((f) => Deno.statSync(`${s.root}/${f}`).mtime?.getTime());
  const second = await s.run("--binary", s.binary, "--root", s.root);
  assert.equal(second.code, 0);
  assert.deepEqual(
    second.lines.slice(0, 4).map((l) => l.split(" ")[0]),
    Array(4).fill("unchanged"),
  );
  assert.deepEqual(s.files().map((f) => Deno.statSync(`${s.root}/${f}`).mtime?.getTime()), before);
  // A new binary replaces the old one, and only that.
  await Deno.writeTextFile(s.binary, "#!/bin/sh\necho v2\n");
  const third = await s.run("--binary", s.binary, "--root", s.root);
  assert.deepEqual(third.lines.filter((l) => l.startsWith("installed")), [
    "installed  /usr/local/bin/flanneld",
  ]);
  assert.equal(await s.calls(), "", "no systemctl, ip, iptables or etcdctl call");
});

Deno.test("install.sh keeps an edited environment file and puts the new sample beside it", async () => {
  await using s = await sandbox();
  await s.run("--binary", s.binary, "--root", s.root);
  const edited = SAMPLE_ENV.replace("http://127.0.0.1:2379", "https://10.0.0.5:2379");
  await Deno.writeTextFile(`${s.root}/etc/default/flanneld`, edited);
  const again = await s.run("--binary", s.binary, "--root", s.root);
  assert.equal(again.code, 0);
  assert.ok(
    again.lines.includes(
      "kept       /etc/default/flanneld (edited; the current sample is /etc/default/flanneld.dist)",
    ),
    again.lines.join("\n"),
  );
  assert.equal(await Deno.readTextFile(`${s.root}/etc/default/flanneld`), edited);
  assert.equal(await Deno.readTextFile(`${s.root}/etc/default/flanneld.dist`), SAMPLE_ENV);
});

Deno.test("install.sh --uninstall removes what it installed and leaves the network state alone", async (t) => {
  await t.step("edited environment file: kept", async () => {
    await using s = await sandbox();
    await s.run("--binary", s.binary, "--root", s.root);
    await Deno.writeTextFile(`${s.root}/etc/default/flanneld`, "FLANNELD_IFACE=eth1\n");
    const out = await s.run("--uninstall", "--root", s.root);
    assert.equal(out.code, 0, out.lines.join("\n"));
    assert.deepEqual(out.lines, [
      "removed    /usr/local/bin/flanneld",
      "removed    /usr/local/bin/mk-docker-opts.sh",
      "removed    /etc/systemd/system/flanneld.service",
      "kept       /etc/default/flanneld (edited)",
      "Routes, devices, firewall rules, subnet.env and the lease are left in place.",
    ]);
    assert.deepEqual(s.files(), ["etc/default/flanneld", "run/flannel/subnet.env"]);
    assert.equal(await s.calls(), "");
    // Idempotent.
    assert.equal((await s.run("--uninstall", "--root", s.root)).code, 0);
  });
  await t.step("untouched environment file: removed", async () => {
    await using s = await sandbox();
    await s.run("--binary", s.binary, "--root", s.root);
    await s.run("--uninstall", "--root", s.root);
    assert.deepEqual(s.files(), ["run/flannel/subnet.env"]);
  });
});

Deno.test("install.sh fails with one line naming the problem", async (t) => {
  await using s = await sandbox();
  const cases: [string, string[], RegExp][] = [
    [
      "no binary",
      ["--binary", `${s.dir}/none`, "--root", s.root],
      /no flanneld binary at .*none: build it with `deno task compile`/,
    ],
    ["unknown argument", ["--frobnicate"], /unknown argument "--frobnicate"/],
    ["--root without a folder", ["--root"], /--root needs a folder/],
  ];
  for (const [name, args, want] of cases) {
    await t.step(name, async () => {
      const out = await s.run(...args);
      assert.equal(out.code, 1);
      assert.equal(out.lines.length, 1, out.lines.join("\n"));
      assert.match(out.lines[0], want);
    });
  }
  await t.step({
    name: "not root, installing into /",
    ignore: Deno.uid() !== 0 || !hasSetpriv, // drops to nobody with setpriv
    fn: async () => {
      const out = await new Deno.Command("setpriv", {
        args: ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", SCRIPT],
        stderr: "piped",
      }).output();
      assert.equal(out.code, 1);
      assert.match(
        new TextDecoder().decode(out.stderr),
        /^install\.sh: installing into \/ needs root: .*\n$/,
      );
    },
  });
  assert.deepEqual(s.files(), ["run/flannel/subnet.env"]);
});
