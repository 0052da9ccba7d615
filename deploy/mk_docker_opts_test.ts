/**
 * Runs deploy/mk-docker-opts.sh under dash and bash against flannel's sample subnet.env and
 * compares the Docker env file byte for byte with flannel's dist/mk_docker_opts_test.go.
 * A fake `ip` first on PATH serves the routing table, so the host's routes never matter.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const SCRIPT = new URL("./mk-docker-opts.sh", import.meta.url).pathname;

const SAMPLE_SUBNET_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\n" +
  "FLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n";

const INDIVIDUAL = 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\n' +
  'DOCKER_OPT_IPMASQ="--ip-masq=true"\n' +
  'DOCKER_OPT_MTU="--mtu=1472"\n';
const COMBINED = " --bip=10.1.74.1/24 --ip-masq=true --mtu=1472";

/** Routes a normal flannel host has: its own subnet on the bridge, without a gateway. */
const HOST_ROUTES = "default via 192.168.1.1 dev eth0 proto dhcp metric 100\n" +
  "10.1.0.0/16 dev flannel.1 scope link\n" +
  "10.1.74.0/24 dev cni0 proto kernel scope link src 10.1.74.1\n" +
  "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.10\n";

/** The POSIX shells available here to run the script under (dash is /bin/sh on Debian). */
const SHELLS = ["dash", "bash"].filter((sh) => {
  try {
    return new Deno.Command(sh, { args: ["-c", "exit 0"] }).outputSync().success;
  } catch {
    return false;
  }
});

interface Sandbox extends AsyncDisposable {
  readonly dir: string;
  readonly input: string;
  readonly output: string;
  run(
    shell: string,
    args: string[],
    opts?: { routes?: string; env?: Record<string, string> },
  ): Promise<{ code: number; stderr: string }>;
}

async function sandbox(subnetEnv = SAMPLE_SUBNET_ENV): Promise<Sandbox> {
  const dir = await Deno.makeTempDir({ prefix: "mk_docker_opts_test_" });
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  // `ip route show` prints the routes file next to it; any other use fails loudly.
  await Deno.writeTextFile(
    join(bin, "ip"),
    '#!/bin/sh\n[ "$1 $2" = "route show" ] || { echo "fake ip: unexpected $*" >&2; exit 2; }\n' +
      'exec cat "$(dirname "$0")/routes"\n',
    { mode: 0o755 },
  );
  const input = join(dir, "subnet.env");
  await Deno.writeTextFile(input, subnetEnv);
  const output = join(dir, "docker_opts.env");
  return {
    dir,
    input,
    output,
    async run(shell, args, opts = {}) {
      await Deno.writeTextFile(join(bin, "routes"), opts.routes ?? HOST_ROUTES);
      // shell "" runs the script through its shebang line.
      const out = await new Deno.Command(shell || SCRIPT, {
        args: shell ? [SCRIPT, ...args] : args,
        cwd: dir,
        clearEnv: true,
        env: { PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`, ...opts.env },
        stdout: "null",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("mk-docker-opts.sh writes flannel's five expected outputs for the sample", async (t) => {
  const cases: [string, string[], string][] = [
    ["default (individual + combined)", [], INDIVIDUAL + `DOCKER_OPTS="${COMBINED}"\n`],
    ["individual only (-i)", ["-i"], INDIVIDUAL],
    ["combined only (-c)", ["-c"], `DOCKER_OPTS="${COMBINED}"\n`],
    ["custom key (-k CUSTOM_KEY)", ["-k", "CUSTOM_KEY"], INDIVIDUAL + `CUSTOM_KEY="${COMBINED}"\n`],
    [
      "strip ip-masq (-m)",
      ["-m"],
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_MTU="--mtu=1472"\n' +
      'DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n',
    ],
  ];
  await using box = await sandbox();
  for (const shell of SHELLS) {
    for (const [name, flags, want] of cases) {
      await t.step(`${shell}: ${name}`, async () => {
        // Stale, longer content: the script must truncate, not append.
        await Deno.writeTextFile(box.output, "STALE=1\n".repeat(20));
        const res = await box.run(shell, ["-f", box.input, "-d", box.output, ...flags]);
        assert.equal(res.code, 0, res.stderr);
        assert.equal(res.stderr, "");
        assert.equal(await Deno.readTextFile(box.output), want);
      });
    }
  }
});

Deno.test("mk-docker-opts.sh inverts FLANNEL_IPMASQ and keeps an existing combined value", async () => {
  await using box = await sandbox(SAMPLE_SUBNET_ENV.replace("IPMASQ=false", "IPMASQ=true"));
  for (const shell of SHELLS) {
    const res = await box.run(shell, ["-c", "-f", box.input, "-d", box.output], {
      env: { DOCKER_OPTS: "--log-level=warn", DOCKER_OPT_DNS: "--dns=10.0.0.10" },
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(
      await Deno.readTextFile(box.output),
      'DOCKER_OPTS="--log-level=warn  --bip=10.1.74.1/24 --dns=10.0.0.10 --ip-masq=false ' +
        '--mtu=1472"\n',
      shell,
    );
  }
});

Deno.test("mk-docker-opts.sh rejects an invalid FLANNEL_IPMASQ before touching the output", async () => {
  await using box = await sandbox(SAMPLE_SUBNET_ENV.replace("IPMASQ=false", "IPMASQ=yes"));
  for (const shell of SHELLS) {
    await Deno.writeTextFile(box.output, "UNTOUCHED=1\n");
    const res = await box.run(shell, ["-f", box.input, "-d", box.output]);
    assert.equal(res.code, 1, shell);
    assert.equal(res.stderr, "Invalid value of FLANNEL_IPMASQ: yes\n");
    assert.equal(await Deno.readTextFile(box.output), "UNTOUCHED=1\n");
    // -m skips the ip-masq option entirely, so the bad value no longer matters.
    const skipped = await box.run(shell, ["-m", "-f", box.input, "-d", box.output]);
    assert.equal(skipped.code, 0, skipped.stderr);
  }
});

Deno.test("mk-docker-opts.sh fails when a gateway route already covers the subnet", async () => {
  await using box = await sandbox();
  const conflict = "10.1.74.0/24 via 192.168.1.12 dev eth0";
  for (const shell of SHELLS) {
    const res = await box.run(shell, ["-f", box.input, "-d", box.output], {
      routes: HOST_ROUTES + conflict + "\n",
    });
    assert.equal(res.code, 1, shell);
    assert.equal(res.stderr, `Your routing table already contains the subnet: ${conflict}\n`);
    // The options were written before the check, as flannel's script does.
    assert.match(await Deno.readTextFile(box.output), /^DOCKER_OPTS=" --bip=10\.1\.74\.1\/24 /m);
  }
});

Deno.test("mk-docker-opts.sh prints usage and exits 1 for -h, -? and unknown options", async () => {
  await using box = await sandbox();
  for (const shell of SHELLS) {
    for (const flag of ["-h", "-?", "-x"]) {
      const res = await box.run(shell, [flag]);
      assert.equal(res.code, 1, `${shell} ${flag}`);
      assert.match(res.stderr, /\[-f FLANNEL-ENV-FILE\] \[-d DOCKER-ENV-FILE\]/);
    }
  }
  await assert.rejects(Deno.stat(box.output), Deno.errors.NotFound);
});

Deno.test("mk-docker-opts.sh runs with a missing env file and a relative -f", async () => {
  await using box = await sandbox();
  for (const shell of SHELLS) {
    const missing = await box.run(shell, ["-f", join(box.dir, "absent.env"), "-d", box.output]);
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal(await Deno.readTextFile(box.output), 'DOCKER_OPTS=""\n');
    const relative = await box.run(shell, ["-i", "-f", "subnet.env", "-d", "docker_opts.env"]);
    assert.equal(relative.code, 0, relative.stderr);
    assert.equal(await Deno.readTextFile(box.output), INDIVIDUAL);
  }
});

Deno.test("mk-docker-opts.sh is executable through its shebang", async () => {
  const info = await Deno.stat(SCRIPT);
  assert.ok((info.mode! & 0o111) !== 0, "deploy/mk-docker-opts.sh must be executable");
  await using box = await sandbox();
  const res = await box.run("", ["-f", box.input, "-d", box.output]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(await Deno.readTextFile(box.output), INDIVIDUAL + `DOCKER_OPTS="${COMBINED}"\n`);
});
